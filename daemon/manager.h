/* The daemon as a whole: configuration, profiles, the HTTP client, the socket server, the
 * event loop, signals and sd_notify. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "loop/http.h"
#include "outputs/metrics-file.h"
#include "outputs/outputs.h"
#include "profile/profile.h"
#include "server/requests.h"
#include "shared/config.h"

typedef struct Manager Manager;
typedef struct Server Server;
typedef struct ReloadWaiter ReloadWaiter;
typedef struct Worker Worker;

struct Manager {
        sd_event *event;
        Config *config;
        ConfigEnv env;
        char *home; /* owned storage behind env.home */
        char *config_path;
        HttpClient *http;
        ProfileContext profile_ctx; /* what every profile sees of the daemon */
        RequestContext requests;    /* what the socket's requests may ask of the daemon */
        ConnectionHandler handler;  /* requests_handle_line() over requests */
        Server *server;
        Profile **profiles;
        size_t n_profiles;
        int lock_fd;
        bool allow_root;
        char *tokenctl_path; /* owned storage behind profile_ctx.outputs_exec */
        usec_t start_time;   /* realtime, for the metrics */
        char *user;          /* the metrics' user label */
        MetricsFile *metrics_file;
        StateKey state_key;            /* state_protection in force, and its key (wiped at the end) */
        Worker *config_reader;         /* reads the configuration file for a reload */
        bool reload_reading;           /* a read is under way */
        bool reload_queued;            /* a reload was asked for while one was reading */
        ReloadWaiter *reload_waiters;  /* answered when the reload reading now is applied */
        ReloadWaiter *reload_queued_w; /* asked while reading: answered after the next read */
};

/* env is the process's environment as main() read it once (config_env_from_process()); its home
 * points into home, which the manager takes over. */
int manager_new(const char *config_path, Config *config, const ConfigEnv *env, char *home, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Lock the state dir, listen, start profiles, READY=1. */
int manager_start(Manager *m);
int manager_run(Manager *m);

/* Re-read the configuration: the file is read in a worker thread (a hung file system never
 * stalls the loop), then applied on the loop, preparing everything that can fail first and
 * committing with code that cannot; on error the old one is kept and every problem logged.
 * RELOADING=1 when the read starts, READY=1 once the result is applied. A reload asked for
 * while one is reading queues behind it (the file may have changed since that read began):
 * one more read follows, however many were asked for. done (may be NULL) runs on the loop
 * with the outcome, never inside this call; ret_waiter (may be NULL) is for
 * manager_cancel_reload(). */
int manager_request_reload(Manager *m, reload_done_fn done, void *userdata, ReloadWaiter **ret_waiter);
void manager_cancel_reload(Manager *m, ReloadWaiter *w);

Profile *manager_find_profile(Manager *m, const char *name); /* NULL name = the default */
