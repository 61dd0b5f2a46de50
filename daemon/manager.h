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
        StateKey state_key; /* state_protection in force, and its key (wiped at the end) */
};

/* env is the process's environment as main() read it once (config_env_from_process()); its home
 * points into home, which the manager takes over. */
int manager_new(const char *config_path, Config *config, const ConfigEnv *env, char *home, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Lock the state dir, listen, start profiles, READY=1. */
int manager_start(Manager *m);
int manager_run(Manager *m);

/* Re-read the configuration; on error keep the old one and log every problem.
 * reterr_errors (may be NULL) receives the problems for a `reload` answer when it fails.
 * Prepares everything that can fail first, then commits with code that cannot. */
int manager_reload(Manager *m, ConfigErrors *reterr_errors);

Profile *manager_find_profile(Manager *m, const char *name); /* NULL name = the default */
