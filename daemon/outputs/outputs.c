/* The files a profile writes (token file, spark.properties, kubeconfig): write each through
 * atomic.c in the profile's worker thread (worker.c) and keep the last result of each for
 * status. Logs failures, from the loop; never a token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic.h"
#include "base/log.h"
#include "loop/worker.h"
#include "outputs/outputs.h"
#include "outputs/props.h"
#include "shared/kubeconfig.h"

#define OUTPUT_MODE 0600
#define PROPS_MAX_SIZE (1024 * 1024)
#define KUBECONFIG_MAX_SIZE (4 * 1024 * 1024)
#define REFUSED_LINK                                                                              \
        "refused to follow a symlink another user owns in a sticky world-writable directory (as " \
        "fs.protected_symlinks does)"

const char *output_kind_to_string(OutputKind k) {
        switch (k) {
        case OUTPUT_TOKEN_FILE:
                return "token_file";
        case OUTPUT_SPARK_PROPERTIES:
                return "spark_properties";
        case OUTPUT_KUBECONFIG:
                return "kubeconfig_output";
        }
        return NULL;
}

static int outputs_add(Outputs *o, OutputKind kind, const char *path) {
        Output *items;
        char *p;

        p = strdup(path);
        if (!p)
                return -ENOMEM;
        items = reallocarray(o->items, o->n + 1, sizeof(Output));
        if (!items) {
                free(p);
                return -ENOMEM;
        }
        o->items = items;
        o->items[o->n++] = (Output) {
                .kind = kind,
                .path = p,
        };
        return 0;
}

int outputs_new(const ProfileConfig *p, const OutputsExec *exec, Outputs **ret) {
        _cleanup_(outputs_freep) Outputs *o = NULL;
        int r;

        if (!p)
                return -EINVAL;
        o = calloc(1, sizeof(Outputs));
        if (!o)
                return -ENOMEM;

        if (p->token_file) {
                r = outputs_add(o, OUTPUT_TOKEN_FILE, p->token_file);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < p->n_spark_properties; i++) {
                r = outputs_add(o, OUTPUT_SPARK_PROPERTIES, p->spark_properties[i]);
                if (r < 0)
                        return r;
        }
        if (p->kubeconfig) {
                o->kubeconfig = strdup(p->kubeconfig);
                if (!o->kubeconfig)
                        return -ENOMEM;
        }
        if (p->kubeconfig_context) {
                o->kubeconfig_context = strdup(p->kubeconfig_context);
                if (!o->kubeconfig_context)
                        return -ENOMEM;
        }
        if (p->kubeconfig_output) {
                if (!exec || !exec->socket_path || !exec->tokenctl_path || !p->kubeconfig)
                        return -EINVAL;
                r = outputs_add(o, OUTPUT_KUBECONFIG, p->kubeconfig_output);
                if (r < 0)
                        return r;
                o->profile = strdup(p->name);
                o->socket_path = strdup(exec->socket_path);
                o->tokenctl_path = strdup(exec->tokenctl_path);
                if (!o->profile || !o->socket_path || !o->tokenctl_path)
                        return -ENOMEM;
                o->exec_api_version = p->kubeconfig_exec_api_version ?: KUBECONFIG_EXEC_V1;
        }

        *ret = TAKE_PTR(o);
        return 0;
}

Outputs *outputs_free(Outputs *o) {
        if (!o)
                return NULL;
        /* A write still hanging is left to its thread; the one waiting behind it is stale (the
         * profile has a new Outputs, or is gone) and never runs. */
        worker_abandon(o->worker);
        for (size_t i = 0; i < o->n; i++) {
                free(o->items[i].path);
                free(o->items[i].last_message);
        }
        free(o->items);
        free(o->kubeconfig);
        free(o->kubeconfig_context);
        free(o->profile);
        free(o->socket_path);
        free(o->tokenctl_path);
        free(o);
        return NULL;
}

/* One write of every output, as the worker thread runs it: it owns copies of everything. */
typedef struct OutputJobItem {
        OutputKind kind;
        char *path;
        bool skipped; /* no token to write: this output is left as it is */
        int result;
        const char *what; /* the failed step, a static string */
        AtomicResult res;
} OutputJobItem;

typedef struct OutputJob {
        OutputJobItem *items;
        size_t n;
        char *kubeconfig;
        char *kubeconfig_context;
        char *kubeconfig_warning; /* why spark.master could not be taken, for the loop to log */
        int kubeconfig_errno;
        char *profile, *socket_path, *tokenctl_path, *exec_api_version; /* the kubeconfig output */
        Secret *token;                                                  /* NULL: only the outputs that hold no token */
        usec_t now;
} OutputJob;

static void output_job_free(void *p) {
        OutputJob *j = p;

        if (!j)
                return;
        for (size_t i = 0; i < j->n; i++)
                free(j->items[i].path);
        free(j->items);
        free(j->kubeconfig);
        free(j->kubeconfig_context);
        free(j->kubeconfig_warning);
        free(j->profile);
        free(j->socket_path);
        free(j->tokenctl_path);
        free(j->exec_api_version);
        secret_free(j->token);
        free(j);
}

/* The API server for spark.master in a new spark.properties, or NULL. A kubeconfig that cannot
 * be used costs only the spark.master line, so it is a warning (for the loop), not a failure. */
static char *output_job_k8s_server(OutputJob *j) {
        _cleanup_free_ char *text = NULL;
        char *server = NULL;
        const char *why;
        size_t len;
        int r;

        if (!j->kubeconfig)
                return NULL;
        r = read_regular_file(j->kubeconfig, KUBECONFIG_MAX_SIZE, &text, &len);
        if (r >= 0)
                r = kubeconfig_context_server(text, len, j->kubeconfig_context, &server);
        if (r >= 0)
                return server;

        switch (r) {
        case -ENOENT:
                why = !text                   ? "it does not exist"
                      : j->kubeconfig_context ? "it has no such context (kubeconfig_context), or its cluster is missing"
                                              : "it has no usable current-context";
                break;
        case -ENODATA:
                why = "the context's cluster has no server";
                break;
        case -EBADMSG:
                why = "it is not valid YAML or not a kubeconfig";
                break;
        case -EINVAL:
                why = "it is not a regular file";
                break;
        default:
                why = strerror(-r);
        }
        free(j->kubeconfig_warning);
        j->kubeconfig_warning = strdup(why);
        j->kubeconfig_errno = r;
        return NULL;
}

/* The kubeconfig output's bytes, from the source kubeconfig as it is now. */
static int kubeconfig_output_content(OutputJob *j, OutputJobItem *item, Secret **ret) {
        _cleanup_(kubeconfig_cluster_done) KubeconfigCluster cluster = {};
        _cleanup_free_ char *text = NULL, *dir = NULL, *out = NULL;
        const KubeconfigExec exec = {
                .name = j->profile,
                .socket_path = j->socket_path,
                .tokenctl_path = j->tokenctl_path,
                .api_version = j->exec_api_version,
        };
        const char *slash;
        Secret *s;
        size_t len;
        int r;

        r = read_regular_file(j->kubeconfig, KUBECONFIG_MAX_SIZE, &text, &len);
        if (r < 0) {
                item->what = r == -ENOENT   ? "the kubeconfig to take the cluster from does not exist"
                             : r == -EINVAL ? "the kubeconfig to take the cluster from is not a regular file"
                                            : "cannot read the kubeconfig to take the cluster from";
                return r;
        }
        slash = strrchr(j->kubeconfig, '/');
        dir = slash ? strndup(j->kubeconfig, MAX((size_t) (slash - j->kubeconfig), (size_t) 1)) : NULL;
        if (slash && !dir) {
                item->what = "out of memory";
                return -ENOMEM;
        }
        r = kubeconfig_context_cluster(text, len, j->kubeconfig_context, dir, &cluster);
        if (r < 0) {
                item->what =
                        r == -ENOENT
                                ? (j->kubeconfig_context
                                           ? "the kubeconfig has no such context (kubeconfig_context), or its cluster is missing"
                                           : "the kubeconfig has no usable current-context")
                        : r == -ENODATA ? "the kubeconfig's current cluster has no server"
                        : r == -EBADMSG ? "the kubeconfig is not valid YAML or not a kubeconfig"
                                        : "cannot read the kubeconfig";
                return r;
        }
        r = kubeconfig_render(&cluster, &exec, &out, &len);
        if (r < 0) {
                item->what = "cannot build the kubeconfig (a path that is not UTF-8?)";
                return r;
        }
        s = secret_adopt(TAKE_PTR(out), len);
        if (!s) {
                item->what = "out of memory";
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* The bytes for one output; item->what says which step failed, for the status message. */
static int output_content(OutputJob *j, OutputJobItem *item, Secret **ret) {
        _cleanup_free_ char *server = NULL, *target = NULL;
        char *text = NULL;
        size_t len = 0;
        int r;

        if (item->kind == OUTPUT_KUBECONFIG)
                return kubeconfig_output_content(j, item, ret);
        if (item->kind == OUTPUT_TOKEN_FILE) {
                Secret *s = secret_dup(j->token);
                if (!s) {
                        item->what = "out of memory";
                        return -ENOMEM;
                }
                *ret = s;
                return 0;
        }

        /* Read what the write will replace: through a link only where the write may follow it. */
        r = atomic_resolve_target(item->path, &target);
        if (r < 0) {
                item->what = r == -ENOLINK ? REFUSED_LINK : "cannot follow the symlink";
                return r;
        }
        r = read_regular_file(target, PROPS_MAX_SIZE, &text, &len);
        if (r == -ENOENT) {
                server = output_job_k8s_server(j);
                r = props_new_file(j->token, server, ret);
                if (r < 0)
                        item->what = "cannot build the new file";
                return r;
        }
        if (r < 0) {
                item->what = r == -EFBIG                    ? "the existing file is larger than 1 MiB"
                             : r == -EINVAL || r == -EISDIR ? "not a regular file"
                                                            : "cannot read the existing file";
                return r;
        }

        r = props_replace_token(text, len, j->token, ret);
        erase_and_free(text, len + 1); /* it held the previous token */
        if (r < 0)
                item->what = "cannot edit the existing file";
        return r;
}

/* The blocking part: runs in the worker thread (or inline without a loop). No logging. */
static void output_job_run(void *p) {
        OutputJob *j = p;

        for (size_t i = 0; i < j->n; i++) {
                OutputJobItem *item = &j->items[i];
                _cleanup_secret_ Secret *content = NULL;
                AtomicIdentity id;
                int r;

                if (!j->token && item->kind != OUTPUT_KUBECONFIG) {
                        item->skipped = true;
                        continue;
                }
                item->what = "cannot replace the file";
                /* Run as root, the file is written with the rights of whoever owns its directory
                 * (setfsuid is per thread: this thread's). */
                r = atomic_identity_enter(item->path, &id);
                if (r < 0) {
                        item->what = "cannot take the rights of the directory's owner";
                        item->result = r;
                        continue;
                }
                r = output_content(j, item, &content);
                if (r >= 0) {
                        r = atomic_replace(item->path, secret_reveal(content), secret_len(content), OUTPUT_MODE,
                                           ATOMIC_MKDIR_PARENTS, &item->res);
                        if (r == -ENOLINK)
                                item->what = REFUSED_LINK;
                        else if (r == -EINVAL || r == -EISDIR)
                                item->what = "not a regular file";
                }
                atomic_identity_leave(&id);
                item->result = r;
        }
}

/* Back on the loop: record and log each result. Returns the first failure, or 0. */
static int outputs_apply(Outputs *o, OutputJob *j) {
        int first = 0;

        if (j->kubeconfig_warning)
                log_warning("Cannot take spark.master from kubeconfig %s: %s. Writing spark.properties without it.",
                            j->kubeconfig, j->kubeconfig_warning);

        for (size_t i = 0; i < j->n && i < o->n; i++) {
                OutputJobItem *item = &j->items[i];
                Output *out = &o->items[i];
                char *msg = NULL;

                if (item->skipped)
                        continue;
                out->attempted = true;
                out->last_attempt = j->now;
                if (item->result < 0) {
                        out->last_result = item->result;
                        if (asprintf(&msg, "%s: %s", item->what, strerror(-item->result)) >= 0) {
                                free(out->last_message);
                                out->last_message = msg;
                        }
                        log_warning_errno(item->result, "Failed to write %s %s (%s): %m",
                                          output_kind_to_string(out->kind), out->path, item->what);
                        if (first == 0)
                                first = item->result;
                        continue;
                }
                if (item->res.mode_narrowed && !out->narrowed_logged) {
                        log_notice("Narrowed the mode of %s from %04o to %04o: %s.", out->path,
                                   (unsigned) item->res.old_mode, (unsigned) OUTPUT_MODE,
                                   out->kind == OUTPUT_KUBECONFIG ? "outputs are private to their owner"
                                                                  : "it holds a token");
                        out->narrowed_logged = true;
                }
                if (item->res.unchanged)
                        log_debug("%s is already up to date.", out->path);
                out->last_result = 0;
                out->last_success = j->now;
                free(out->last_message);
                out->last_message = NULL;
        }
        return first;
}

static void on_job_done(Worker *w, void *p, void *userdata) {
        Outputs *o = userdata;
        int r;

        r = outputs_apply(o, p);
        output_job_free(p);
        if (o->on_written)
                o->on_written(o, r, o->userdata); /* last: it may free o */
}

static int output_job_new(const Outputs *o, const Secret *token, usec_t now, OutputJob **ret) {
        OutputJob *j = calloc(1, sizeof *j);

        if (!j)
                return -ENOMEM;
        j->now = now;
        j->token = token ? secret_dup(token) : NULL;
        j->items = calloc(MAX(o->n, (size_t) 1), sizeof *j->items);
        if ((token && !j->token) || !j->items || (o->profile && !(j->profile = strdup(o->profile))) ||
            (o->socket_path && !(j->socket_path = strdup(o->socket_path))) ||
            (o->tokenctl_path && !(j->tokenctl_path = strdup(o->tokenctl_path))) ||
            (o->exec_api_version && !(j->exec_api_version = strdup(o->exec_api_version))) ||
            (o->kubeconfig && !(j->kubeconfig = strdup(o->kubeconfig))) ||
            (o->kubeconfig_context && !(j->kubeconfig_context = strdup(o->kubeconfig_context)))) {
                output_job_free(j);
                return -ENOMEM;
        }
        for (size_t i = 0; i < o->n; i++, j->n++) {
                j->items[i].kind = o->items[i].kind;
                j->items[i].path = strdup(o->items[i].path);
                if (!j->items[i].path) {
                        output_job_free(j);
                        return -ENOMEM;
                }
        }
        *ret = j;
        return 0;
}

int outputs_attach(Outputs *o, sd_event *e, outputs_written_fn on_written, void *userdata) {
        if (!o || !e || !on_written)
                return -EINVAL;
        o->worker = worker_free(o->worker);
        o->on_written = on_written;
        o->userdata = userdata;
        return worker_new(e, "outputs", output_job_run, on_job_done, output_job_free, o, &o->worker);
}

int outputs_write_all(Outputs *o, const Secret *token, usec_t now) {
        OutputJob *j;
        int r;

        if (!o)
                return -EINVAL;
        r = output_job_new(o, token, now, &j);
        if (r < 0)
                return r;
        if (o->worker)
                return worker_submit(o->worker, j);

        output_job_run(j);
        r = outputs_apply(o, j);
        output_job_free(j);
        if (o->on_written) /* attached, but the thread could not be made */
                o->on_written(o, r, o->userdata);
        return r;
}

bool outputs_busy(const Outputs *o) {
        return o && worker_busy(o->worker);
}

bool outputs_all_ok(const Outputs *o) {
        if (!o)
                return true;
        for (size_t i = 0; i < o->n; i++)
                if (!o->items[i].attempted || o->items[i].last_result < 0)
                        return false;
        return true;
}

void outputs_remove_stale_temps(const Outputs *o) {
        if (!o)
                return;
        for (size_t i = 0; i < o->n; i++) {
                int r = atomic_remove_stale_temps(o->items[i].path);
                if (r < 0)
                        log_debug_errno(r, "Failed to look for stale temp files next to %s: %m", o->items[i].path);
                else if (r > 0)
                        log_info("Removed %d temp file(s) an interrupted write left next to %s.", r, o->items[i].path);
        }
}
