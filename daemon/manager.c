/* The daemon as a whole: configuration, profiles, HTTP client, socket server, signals and
 * sd_notify, all on one sd-event loop. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "base/log.h"
#include "loop/loop.h"
#include "loop/worker.h"
#include "manager.h"
#include "outputs/metrics.h"
#include "profile/schedule.h"
#include "profile/store.h"
#include "server/server.h"
#include "shared/config-load.h"
#include "version.h"

static void manager_notify_status(Manager *m, const char *prefix);

/* Recompute STATUS= after any profile changed state. */
static void on_profile_changed(Profile *p, void *userdata) {
        Manager *m = userdata;

        manager_notify_status(m, NULL);
        metrics_file_changed(m->metrics_file);
}

/* The daemon-wide settings the profiles read, from the configuration in force. */
static void manager_update_profile_context(Manager *m) {
        m->profile_ctx.sources.http_timeout = m->config->http_timeout;
        m->profile_ctx.state_dir = m->config->state_dir;
        m->profile_ctx.notify_command = m->config->notify_command;
}

static Profile *requests_find_profile(void *userdata, const char *name) {
        return manager_find_profile(userdata, name);
}

static size_t requests_list_profiles(void *userdata, Profile *const **ret) {
        Manager *m = userdata;

        *ret = m->profiles;
        return m->n_profiles;
}

static int requests_reload(void *userdata, reload_done_fn done, void *done_userdata, void **ret_waiter) {
        ReloadWaiter *w = NULL;
        int r;

        r = manager_request_reload(userdata, done, done_userdata, &w);
        if (r >= 0)
                *ret_waiter = w;
        return r;
}

static void requests_reload_cancel(void *userdata, void *waiter) {
        manager_cancel_reload(userdata, waiter);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received %s, stopping.", strsignal((int) si->ssi_signo));
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Stopping.");
        return sd_event_exit(m->event, 0);
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        int r;

        log_info("Received SIGHUP, reloading the configuration from %s.", m->config_path);
        r = manager_request_reload(m, NULL, NULL, NULL);
        if (r < 0)
                log_error_errno(r, "Failed to start reading the configuration, keeping the running one: %m");
        return 0;
}

/* The metrics text of every profile, for the metrics file and the `metrics` request. */
static int manager_metrics_text(void *userdata, char **ret) {
        Manager *m = userdata;
        _cleanup_free_ ProfileSnapshot *snaps = calloc(MAX(m->n_profiles, (size_t) 1), sizeof *snaps);
        MetricsDaemon d = { .version = PACKAGE_VERSION, .user = m->user, .start_time = m->start_time };

        if (!snaps)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_profiles; i++)
                profile_snapshot(m->profiles[i], &snaps[i]);
        return metrics_render(&d, snaps, m->n_profiles, ret);
}

/* $AKSSPARK_TOKEND_METRICS_FILE, else the configuration's metrics_file. */
static void manager_apply_metrics_file(Manager *m) {
        const char *path = m->env.metrics_file ?: m->config->metrics_file;

        if (metrics_file_set_path(m->metrics_file, path) < 0)
                log_oom();
}

int manager_new(const char *config_path, Config *config, const ConfigEnv *env, char *home, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        struct passwd *pw;
        sigset_t mask;
        int r;

        m = calloc(1, sizeof *m);
        if (!m) {
                free(home);
                return -ENOMEM;
        }
        m->lock_fd = -EBADF;
        m->env = *env;
        m->home = home;
        m->config_path = strdup(config_path);
        if (!m->config_path)
                return -ENOMEM;

        r = sd_event_default(&m->event);
        if (r < 0)
                return r;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_sigterm, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m);
        if (r < 0)
                return r;

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                return r;

        r = http_client_new(m->event, &m->http);
        if (r < 0)
                return r;

        m->start_time = now_realtime();
        pw = getpwuid(getuid());
        if (pw && pw->pw_name)
                m->user = strdup(pw->pw_name);
        else
                (void) asprintf(&m->user, "%u", (unsigned) getuid());
        if (!m->user)
                return -ENOMEM;
        r = metrics_file_new(m->event, manager_metrics_text, m, &m->metrics_file);
        if (r < 0)
                return r;

        m->config = config;
        m->profile_ctx = (ProfileContext) {
                .sources = { .event = m->event, .http = m->http },
                .refresh_floor = env->refresh_floor,
                .on_changed = on_profile_changed,
                .userdata = m,
        };
        manager_update_profile_context(m);
        m->requests = (RequestContext) {
                .event = m->event,
                .find_profile = requests_find_profile,
                .list_profiles = requests_list_profiles,
                .reload = requests_reload,
                .reload_cancel = requests_reload_cancel,
                .metrics = manager_metrics_text,
                .userdata = m,
        };
        m->handler = (ConnectionHandler) {
                .on_line = requests_handle_line,
                .userdata = &m->requests,
        };
        *ret = TAKE_PTR(m);
        return 0;
}

struct ReloadWaiter {
        reload_done_fn done;
        void *userdata;
        ReloadWaiter *next;
};

static void reload_waiters_free(ReloadWaiter *w) {
        while (w) {
                ReloadWaiter *next = w->next;
                free(w);
                w = next;
        }
}

static void manager_free_profiles(Manager *m) {
        for (size_t i = 0; i < m->n_profiles; i++)
                profile_free(m->profiles[i]);
        free(m->profiles);
        m->profiles = NULL;
        m->n_profiles = 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* The server first: its waiters are cancelled before the profiles answer them. */
        server_free(m->server);
        /* A read still hanging is left to its thread; its result is dropped. */
        worker_abandon(m->config_reader);
        reload_waiters_free(m->reload_waiters);
        reload_waiters_free(m->reload_queued_w);
        m->metrics_file = metrics_file_free(m->metrics_file);
        manager_free_profiles(m);
        http_client_free(m->http);
        sd_event_unref(m->event);
        safe_close(m->lock_fd);
        config_free(m->config);
        free(m->tokenctl_path);
        free(m->config_path);
        free(m->home);
        free(m->user);
        state_key_clear(&m->state_key);
        free(m);
        return NULL;
}

static void manager_notify_status(Manager *m, const char *prefix) {
        _cleanup_free_ char *status = NULL;
        usec_t now = now_realtime();
        StrBuf b = {};

        for (size_t i = 0; i < m->n_profiles; i++) {
                _cleanup_free_ char *line = profile_status_line(m->profiles[i], now);
                strbuf_appendf(&b, "%s%s", i > 0 ? "; " : "",
                               line             ? line
                               : m->profiles[i] ? profile_name(m->profiles[i])
                                                : "");
        }
        status = strbuf_take(&b);
        if (!status)
                return;
        (void) sd_notifyf(0, "%sSTATUS=%s", prefix ? prefix : "", status);
}

Profile *manager_find_profile(Manager *m, const char *name) {
        const ProfileConfig *pc;

        if (!name) {
                pc = config_default_profile(m->config);
                if (!pc)
                        return NULL;
                name = pc->name;
        }
        for (size_t i = 0; i < m->n_profiles; i++)
                if (strcmp(profile_name(m->profiles[i]), name) == 0)
                        return m->profiles[i];
        return NULL;
}

static int manager_start_profiles(Manager *m) {
        int r;

        m->profiles = calloc(MAX(m->config->n_profiles, (size_t) 1), sizeof(Profile *));
        if (!m->profiles)
                return -ENOMEM;
        for (size_t i = 0; i < m->config->n_profiles; i++) {
                r = profile_new(&m->profile_ctx, m->config->profiles[i], &m->profiles[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up profile %s: %m", m->config->profiles[i]->name);
                m->n_profiles++;
        }
        for (size_t i = 0; i < m->n_profiles; i++)
                (void) profile_start(m->profiles[i]);
        return 0;
}

/* The aksspark-tokenctl that kubeconfig outputs run: the one beside this daemon's own
 * executable when there is one (an installed pair in the same bindir, or a build tree, whose
 * daemon must not send clients to an older installed client), else BINDIR's. An upgraded
 * daemon's /proc/self/exe ends in " (deleted)"; its directory still holds the new client. */
static int manager_find_tokenctl(char **ret) {
        char exe[PATH_MAX], *slash, *path;
        ssize_t n;

        n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
                exe[n] = 0;
                slash = strrchr(exe, '/');
                if (slash && slash > exe) {
                        *slash = 0;
                        if (asprintf(&path, "%s/aksspark-tokenctl", exe) < 0)
                                return -ENOMEM;
                        if (access(path, X_OK) >= 0) {
                                *ret = path;
                                return 0;
                        }
                        free(path);
                }
        }
        path = strdup(BINDIR "/aksspark-tokenctl");
        if (!path)
                return -ENOMEM;
        *ret = path;
        return 0;
}

/* Before any profile loads its state. The Secret Service is asked on the loop's thread, but
 * before the loop serves anything, and each of its answers is awaited at most this long. */
#define KEYRING_TIMEOUT (2 * USEC_PER_SEC)

static void manager_load_state_key(Manager *m) {
        StateProtection wanted = m->config->state_protection;
        StateKey *k = &m->state_key;

        state_key_load(wanted, getenv("CREDENTIALS_DIRECTORY"), KEYRING_TIMEOUT, k);
        m->profile_ctx.state_key = k;

        if (k->protection == STATE_PROTECTION_NONE && wanted == STATE_PROTECTION_AUTO)
                log_notice("The state directory keeps refresh tokens in clear (state_protection = none): no "
                           "state-key credential and no unlocked Secret Service (%s).",
                           strerror(-k->error));
        else if (k->protection == STATE_PROTECTION_NONE)
                log_notice("The state directory keeps refresh tokens in clear (state_protection = none).");
        else if (!k->available)
                log_error_errno(k->error,
                                "state_protection = %s, but its key cannot be had (%m): saved sign-ins cannot be "
                                "read and new ones are not saved. %s",
                                state_protection_to_string(k->protection),
                                k->protection == STATE_PROTECTION_SYSTEMD_CREDS
                                        ? "Give the service LoadCredentialEncrypted=state-key:... with 32 bytes."
                                        : "Unlock the keyring of the session (org.freedesktop.secrets).");
        else
                log_info("Refresh tokens in the state directory are sealed (state_protection = %s).",
                         state_protection_to_string(k->protection));
}

int manager_start(Manager *m) {
        pid_t holder = 0;
        int r;

        r = store_lock(m->config->state_dir, &m->lock_fd, &holder);
        if (r == -EBUSY) {
                if (holder > 0)
                        return log_error_errno(
                                r,
                                "Another aksspark-tokend (pid %d) already runs on the state directory %s; "
                                "stop it first, or give this one its own state_dir.",
                                (int) holder, m->config->state_dir);
                return log_error_errno(r, "Another aksspark-tokend already runs on the state directory %s.",
                                       m->config->state_dir);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to lock the state directory %s: %m", m->config->state_dir);

        r = server_new(m->event, m->config->socket_path, &m->handler, &m->server);
        if (r < 0)
                return r; /* server_new says why */

        r = manager_find_tokenctl(&m->tokenctl_path);
        if (r < 0)
                return log_oom();
        m->profile_ctx.outputs_exec = (OutputsExec) {
                .socket_path = server_path(m->server),
                .tokenctl_path = m->tokenctl_path,
        };
        log_debug("Kubeconfig outputs run %s --socket %s.", m->tokenctl_path, server_path(m->server));

        manager_load_state_key(m);
        manager_apply_metrics_file(m);
        r = manager_start_profiles(m);
        if (r < 0)
                return r;

        log_info("aksspark-tokend %s serving %s with %zu profile%s.", PACKAGE_VERSION, server_path(m->server),
                 m->n_profiles, m->n_profiles == 1 ? "" : "s");
        manager_notify_status(m, "READY=1\n");
        return 0;
}

int manager_run(Manager *m) {
        LoopStats stats = {};

        return loop_run(m->event, &stats);
}

/* Settings that only a restart can change keep their old values; say so. */
static int keep_restart_only(Manager *m, Config *c) {
        if (!streq_ptr(c->state_dir, m->config->state_dir)) {
                log_warning("state_dir changed to %s; this takes effect when the daemon restarts.",
                            c->state_dir ? c->state_dir : "(default)");
                free(c->state_dir);
                c->state_dir = strdup(m->config->state_dir);
                if (!c->state_dir)
                        return -ENOMEM;
        }
        if (c->state_protection != m->config->state_protection) {
                log_warning("state_protection changed to %s; this takes effect when the daemon restarts.",
                            state_protection_to_string(c->state_protection));
                c->state_protection = m->config->state_protection;
        }
        if (!streq_ptr(c->socket_path, m->config->socket_path)) {
                log_warning("socket changed to %s; this takes effect when the daemon restarts.",
                            c->socket_path ? c->socket_path : "(default)");
                free(c->socket_path);
                c->socket_path = m->config->socket_path ? strdup(m->config->socket_path) : NULL;
                if (m->config->socket_path && !c->socket_path)
                        return -ENOMEM;
        }
        return 0;
}

/* Everything a reload needs, built before anything running changes. */
typedef struct ReloadPlan {
        Config *config;
        size_t n;           /* profiles in the new configuration */
        Profile **profiles; /* [n]: the new profiles made for it (kept ones are filled in at commit) */
        Profile **old;      /* [n]: the running profile of the same name, kept, or NULL */
        Outputs **outputs;  /* [n]: the new outputs of each kept profile */
} ReloadPlan;

static void reload_plan_clear(ReloadPlan *plan) {
        for (size_t i = 0; plan->profiles && i < plan->n; i++)
                profile_free(plan->profiles[i]);
        for (size_t i = 0; plan->outputs && i < plan->n; i++)
                outputs_free(plan->outputs[i]);
        free(plan->profiles);
        free(plan->old);
        free(plan->outputs);
        config_free(plan->config);
        *plan = (ReloadPlan) {};
}

/* Everything that can fail, with no effect on the running profiles; logs why it failed.
 * read_result, text, len: what config_read() gave in the worker thread. */
static int manager_reload_prepare(Manager *m, ReloadPlan *plan, int read_result, const char *text, size_t len,
                                  ConfigErrors *ret_errors) {
        ConfigErrors errors = {};
        size_t n;
        int r;

        r = config_load_text(m->config_path, read_result, text, len, &m->env, &plan->config, &errors);
        if (r < 0) {
                log_error("The new configuration in %s has %zu problem%s; keeping the running one:", m->config_path,
                          errors.n, errors.n == 1 ? "" : "s");
                for (size_t i = 0; i < errors.n; i++)
                        log_error("%s", errors.lines[i]);
                *ret_errors = errors;
                return r;
        }

        n = plan->n = plan->config->n_profiles;
        r = keep_restart_only(m, plan->config);
        if (r < 0)
                goto fail;
        plan->profiles = calloc(MAX(n, (size_t) 1), sizeof(Profile *));
        plan->old = calloc(MAX(n, (size_t) 1), sizeof(Profile *));
        plan->outputs = calloc(MAX(n, (size_t) 1), sizeof(Outputs *));
        if (!plan->profiles || !plan->old || !plan->outputs) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < n; i++) {
                const ProfileConfig *pc = plan->config->profiles[i];

                for (size_t j = 0; j < m->n_profiles; j++)
                        if (streq(profile_name(m->profiles[j]), pc->name))
                                plan->old[i] = m->profiles[j];
                r = plan->old[i] ? outputs_new(pc, &m->profile_ctx.outputs_exec, &plan->outputs[i])
                                 : profile_new(&m->profile_ctx, pc, &plan->profiles[i]);
                if (r < 0) {
                        log_error_errno(r, "Failed to set up profile %s: %m", pc->name);
                        goto fail;
                }
        }
        return 0;

fail:
        return log_error_errno(r, "Failed to apply the new configuration, keeping the running one: %m");
}

/* The switch, which cannot fail. The manager holds the new profile list and configuration
 * before any profile is freed or changed: their callbacks (answers to waiters, STATUS=) look at
 * the manager and must find it consistent. The old configuration lives until every profile has
 * let go of it. */
static void manager_commit_reload_plan(Manager *m, ReloadPlan *plan) {
        _cleanup_free_ Profile **removed = NULL;
        Config *old_config;
        size_t n = plan->n, n_removed;

        for (size_t i = 0; i < n; i++)
                if (plan->old[i])
                        plan->profiles[i] = plan->old[i];
        removed = TAKE_PTR(m->profiles);
        n_removed = m->n_profiles;
        m->profiles = TAKE_PTR(plan->profiles);
        m->n_profiles = n;
        old_config = TAKE_PTR(m->config);
        m->config = TAKE_PTR(plan->config);
        manager_update_profile_context(m);
        log_set_max_level(m->config->log_level);

        for (size_t j = 0; j < n_removed; j++) {
                bool kept = false;
                for (size_t i = 0; i < n; i++)
                        kept = kept || plan->old[i] == removed[j];
                if (!kept) {
                        log_info("Profile %s was removed from the configuration.", profile_name(removed[j]));
                        profile_free(removed[j]);
                }
        }
        for (size_t i = 0; i < n; i++)
                if (plan->old[i])
                        profile_reconfigure(plan->old[i], m->config->profiles[i], TAKE_PTR(plan->outputs[i]));
        config_free(old_config);

        for (size_t i = 0; i < n; i++)
                if (!plan->old[i])
                        (void) profile_start(m->profiles[i]);

        manager_apply_metrics_file(m);
        metrics_file_changed(m->metrics_file);
        log_info("Configuration reloaded: %zu profile%s.", m->n_profiles, m->n_profiles == 1 ? "" : "s");
}

/* The configuration file's content, read off the loop. */
typedef struct ConfigReadJob {
        char *path;
        char *text;
        size_t len;
        int result;
} ConfigReadJob;

static void config_read_job_run(void *job) {
        ConfigReadJob *j = job;

        j->result = config_read(j->path, &j->text, &j->len);
}

static void config_read_job_free(void *job) {
        ConfigReadJob *j = job;

        free(j->path);
        free(j->text);
        free(j);
}

static void on_config_read(Worker *w, void *job, void *userdata);

static int manager_start_reload_read(Manager *m) {
        ConfigReadJob *j;
        int r;

        if (!m->config_reader) {
                r = worker_new(m->event, "config", config_read_job_run, on_config_read, config_read_job_free, m,
                               &m->config_reader);
                if (r < 0)
                        return r;
        }
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->path = strdup(m->config_path);
        if (!j->path) {
                free(j);
                return -ENOMEM;
        }
        r = worker_submit(m->config_reader, j);
        if (r < 0)
                return r;
        m->reload_reading = true;
        (void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading the configuration.",
                          (unsigned long long) now_monotonic());
        return 0;
}

/* Answer and free a list of waiters. */
static void reload_waiters_answer(ReloadWaiter *list, int result, const ConfigErrors *errors) {
        while (list) {
                ReloadWaiter *next = list->next;
                list->done(result, errors, list->userdata);
                free(list);
                list = next;
        }
}

static void manager_start_queued_reload(Manager *m) {
        ReloadWaiter **tail = &m->reload_waiters;
        int r;

        if (!m->reload_queued || m->reload_reading)
                return;
        m->reload_queued = false;
        while (*tail)
                tail = &(*tail)->next;
        *tail = TAKE_PTR(m->reload_queued_w);
        r = manager_start_reload_read(m);
        if (r < 0) {
                log_error_errno(r, "Failed to start reading the configuration, keeping the running one: %m");
                reload_waiters_answer(TAKE_PTR(m->reload_waiters), r, NULL);
        }
}

static void on_config_read(Worker *w, void *job, void *userdata) {
        _cleanup_(reload_plan_clear) ReloadPlan plan = {};
        _cleanup_(config_errors_clear) ConfigErrors errors = {};
        ConfigReadJob *j = job;
        Manager *m = userdata;
        int r;

        r = manager_reload_prepare(m, &plan, j->result, j->text, j->len, &errors);
        config_read_job_free(j);
        if (r >= 0)
                manager_commit_reload_plan(m, &plan);
        m->reload_reading = false;
        manager_notify_status(m, "READY=1\n");
        /* Answering may take the next request of a connection, which may ask for a reload again. */
        reload_waiters_answer(TAKE_PTR(m->reload_waiters), r < 0 ? r : 0, &errors);
        manager_start_queued_reload(m);
}

int manager_request_reload(Manager *m, reload_done_fn done, void *userdata, ReloadWaiter **ret_waiter) {
        ReloadWaiter *w = NULL;
        int r;

        if (done) {
                w = calloc(1, sizeof *w);
                if (!w)
                        return -ENOMEM;
                *w = (ReloadWaiter) { .done = done, .userdata = userdata };
        }
        if (m->reload_reading) {
                m->reload_queued = true;
                if (w) {
                        w->next = m->reload_queued_w;
                        m->reload_queued_w = w;
                }
        } else {
                r = manager_start_reload_read(m);
                if (r < 0) {
                        free(w);
                        return r;
                }
                if (w) {
                        w->next = m->reload_waiters;
                        m->reload_waiters = w;
                }
        }
        if (ret_waiter)
                *ret_waiter = w;
        return 0;
}

void manager_cancel_reload(Manager *m, ReloadWaiter *w) {
        ReloadWaiter **lists[] = { &m->reload_waiters, &m->reload_queued_w };

        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                for (ReloadWaiter **p = lists[i]; *p; p = &(*p)->next)
                        if (*p == w) {
                                *p = w->next;
                                free(w);
                                return;
                        }
}
