/* The files a profile writes (token file, spark.properties, kubeconfig): write each through
 * atomic.c and keep the last result of each for status. Logs failures; never a token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "kubeconfig.h"
#include "log.h"
#include "outputs.h"
#include "props.h"

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

/* The API server for spark.master in a new spark.properties, or NULL. A kubeconfig that cannot
 * be used costs only the spark.master line, so it is a warning, not a failed write. */
static char *outputs_k8s_server(const Outputs *o) {
        _cleanup_free_ char *text = NULL;
        char *server = NULL;
        const char *why;
        size_t len;
        int r;

        if (!o->kubeconfig)
                return NULL;
        r = read_regular_file(o->kubeconfig, KUBECONFIG_MAX_SIZE, &text, &len);
        if (r >= 0)
                r = kubeconfig_context_server(text, len, o->kubeconfig_context, &server);
        if (r >= 0)
                return server;

        switch (r) {
        case -ENOENT:
                why = !text                  ? "it does not exist"
                      : o->kubeconfig_context ? "it has no such context (kubeconfig_context), or its cluster is missing"
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
                why = NULL;
        }
        if (why)
                log_warning("Cannot take spark.master from kubeconfig %s: %s. Writing spark.properties without it.",
                            o->kubeconfig, why);
        else
                log_warning_errno(r, "Cannot take spark.master from kubeconfig %s: %m. Writing spark.properties without it.",
                                  o->kubeconfig);
        return NULL;
}

/* The kubeconfig output's bytes, from the source kubeconfig as it is now. */
static int kubeconfig_output_content(const Outputs *o, Secret **ret, const char **ret_what) {
        _cleanup_(kubeconfig_cluster_done) KubeconfigCluster cluster = {};
        _cleanup_free_ char *text = NULL, *dir = NULL, *out = NULL;
        const KubeconfigExec exec = {
                .name = o->profile,
                .socket_path = o->socket_path,
                .tokenctl_path = o->tokenctl_path,
                .api_version = o->exec_api_version,
        };
        const char *slash;
        Secret *s;
        size_t len;
        int r;

        r = read_file_full(o->kubeconfig, KUBECONFIG_MAX_SIZE, &text, &len);
        if (r < 0) {
                *ret_what = r == -ENOENT ? "the kubeconfig to take the cluster from does not exist"
                                         : "cannot read the kubeconfig to take the cluster from";
                return r;
        }
        slash = strrchr(o->kubeconfig, '/');
        dir = slash ? strndup(o->kubeconfig, MAX((size_t) (slash - o->kubeconfig), (size_t) 1)) : NULL;
        if (slash && !dir) {
                *ret_what = "out of memory";
                return -ENOMEM;
        }
        r = kubeconfig_context_cluster(text, len, o->kubeconfig_context, dir, &cluster);
        if (r < 0) {
                *ret_what = r == -ENOENT    ? (o->kubeconfig_context ? "the kubeconfig has no such context (kubeconfig_context), or its cluster is missing"
                                                                     : "the kubeconfig has no usable current-context")
                            : r == -ENODATA ? "the kubeconfig's current cluster has no server"
                            : r == -EBADMSG ? "the kubeconfig is not valid YAML or not a kubeconfig"
                                            : "cannot read the kubeconfig";
                return r;
        }
        r = kubeconfig_render(&cluster, &exec, &out, &len);
        if (r < 0) {
                *ret_what = "cannot build the kubeconfig (a path that is not UTF-8?)";
                return r;
        }
        s = secret_adopt(TAKE_PTR(out), len);
        if (!s) {
                *ret_what = "out of memory";
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

/* The bytes for one output; *ret_what says which step failed, for the status message. */
static int output_content(const Outputs *o, const Output *out, const Secret *token, Secret **ret,
                          const char **ret_what) {
        _cleanup_free_ char *server = NULL, *target = NULL;
        char *text = NULL;
        size_t len = 0;
        int r;

        if (out->kind == OUTPUT_KUBECONFIG)
                return kubeconfig_output_content(o, ret, ret_what);
        if (out->kind == OUTPUT_TOKEN_FILE) {
                Secret *s = secret_dup(token);
                if (!s) {
                        *ret_what = "out of memory";
                        return -ENOMEM;
                }
                *ret = s;
                return 0;
        }

        /* Read what the write will replace: through a link only where the write may follow it. */
        r = atomic_resolve_target(out->path, &target);
        if (r < 0) {
                *ret_what = r == -ENOLINK ? REFUSED_LINK : "cannot follow the symlink";
                return r;
        }
        r = read_regular_file(target, PROPS_MAX_SIZE, &text, &len);
        if (r == -ENOENT) {
                server = outputs_k8s_server(o);
                r = props_new_file(token, server, ret);
                if (r < 0)
                        *ret_what = "cannot build the new file";
                return r;
        }
        if (r < 0) {
                *ret_what = r == -EFBIG                 ? "the existing file is larger than 1 MiB"
                            : r == -EINVAL || r == -EISDIR ? "not a regular file"
                                                            : "cannot read the existing file";
                return r;
        }

        r = props_replace_token(text, len, token, ret);
        erase_and_free(text, len + 1); /* it held the previous token */
        if (r < 0)
                *ret_what = "cannot edit the existing file";
        return r;
}

static int output_write(Outputs *o, Output *out, const Secret *token, usec_t now) {
        _cleanup_secret_ Secret *content = NULL;
        const char *what = "cannot replace the file";
        AtomicResult res = {};
        AtomicIdentity id;
        char *msg = NULL;
        int r;

        out->attempted = true;
        out->last_attempt = now;

        /* Run as root, the file is written with the rights of whoever owns its directory. */
        atomic_identity_enter(out->path, &id);
        r = output_content(o, out, token, &content, &what);
        if (r >= 0) {
                r = atomic_replace(out->path, secret_reveal(content), secret_len(content),
                                   OUTPUT_MODE, ATOMIC_MKDIR_PARENTS, &res);
                if (r == -ENOLINK)
                        what = REFUSED_LINK;
                else if (r == -EINVAL || r == -EISDIR)
                        what = "not a regular file";
        }
        atomic_identity_leave(&id);
        if (r < 0) {
                out->last_result = r;
                if (asprintf(&msg, "%s: %s", what, strerror(-r)) >= 0) {
                        free(out->last_message);
                        out->last_message = msg;
                }
                log_warning_errno(r, "Failed to write %s %s (%s): %m",
                                  output_kind_to_string(out->kind), out->path, what);
                return r;
        }

        if (res.mode_narrowed && !out->narrowed_logged) {
                log_notice("Narrowed the mode of %s from %04o to %04o: %s.", out->path, (unsigned) res.old_mode,
                           (unsigned) OUTPUT_MODE,
                           out->kind == OUTPUT_KUBECONFIG ? "outputs are private to their owner" : "it holds a token");
                out->narrowed_logged = true;
        }
        if (res.unchanged)
                log_debug("%s is already up to date.", out->path);

        out->last_result = 0;
        out->last_success = now;
        free(out->last_message);
        out->last_message = NULL;
        return 0;
}

int outputs_write_all(Outputs *o, const Secret *token, usec_t now) {
        int first = 0;

        if (!o)
                return -EINVAL;
        for (size_t i = 0; i < o->n; i++) {
                int r;

                if (!token && o->items[i].kind != OUTPUT_KUBECONFIG)
                        continue;
                r = output_write(o, &o->items[i], token, now);
                if (r < 0 && first == 0)
                        first = r;
        }
        return first;
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
                        log_debug_errno(r, "Failed to look for stale temp files next to %s: %m",
                                        o->items[i].path);
                else if (r > 0)
                        log_info("Removed %d temp file(s) an interrupted write left next to %s.", r,
                                 o->items[i].path);
        }
}
