/* The files one profile writes (token file, spark.properties, kubeconfig) and the last result
 * of each. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "base/secret.h"
#include "base/util.h"
#include "shared/config.h"

typedef enum OutputKind {
        OUTPUT_TOKEN_FILE,
        OUTPUT_SPARK_PROPERTIES,
        OUTPUT_KUBECONFIG, /* holds no token: an exec entry that asks the daemon */
} OutputKind;

/* "token_file", "spark_properties", "kubeconfig_output" */
const char *output_kind_to_string(OutputKind k);

/* What a kubeconfig output's exec entry runs: this daemon's client against this daemon's
 * socket. Both as the manager found them at start (see manager.c). */
typedef struct OutputsExec {
        const char *socket_path;
        const char *tokenctl_path;
} OutputsExec;

typedef struct Output {
        OutputKind kind;
        char *path;
        int last_result; /* 0 ok, -errno failed; meaningful once attempted */
        bool attempted;
        usec_t last_attempt; /* realtime */
        usec_t last_success; /* realtime, 0 never */
        char *last_message;  /* why the last write failed, for status; NULL when ok */
        bool narrowed_logged;
} Output;

typedef struct Outputs Outputs;
typedef struct Worker Worker;

/* A write of every output finished (on the loop): result as outputs_write_all() describes. */
typedef void (*outputs_written_fn)(Outputs *o, int result, void *userdata);

struct Outputs {
        Output *items;
        size_t n;
        char *kubeconfig;         /* for spark.master in new spark.properties; NULL none */
        char *kubeconfig_context; /* its context for spark.master; NULL: the current one */
        /* for the kubeconfig output */
        char *profile;
        char *socket_path;
        char *tokenctl_path;
        const char *exec_api_version;
        Worker *worker; /* NULL: writes run inline (tests, tools) */
        outputs_written_fn on_written;
        void *userdata;
};

/* exec may be NULL when p has no kubeconfig_output; with one, -EINVAL. */
int outputs_new(const ProfileConfig *p, const OutputsExec *exec, Outputs **ret);
Outputs *outputs_free(Outputs *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(Outputs *, outputs_free);

/* From now on write in a worker thread (worker.h) and report each finished write to
 * on_written from e's loop. A hung file system then holds only this Outputs' thread; a write
 * asked for while one runs replaces any waiting one (the newest token wins). */
int outputs_attach(Outputs *o, sd_event *e, outputs_written_fn on_written, void *userdata);

/* Is a write running or waiting? */
bool outputs_busy(const Outputs *o);

/* Write token to every output (mode 0600, missing parent directories created 0700; unchanged
 * files are not rewritten). A token file gets the raw token; a spark.properties is edited by
 * props_replace_token() (an existing file over 1 MiB: -EFBIG), or, when missing, made by
 * props_new_file() with spark.master from the kubeconfig (a kubeconfig that gives no server is
 * a warning, not a failure). A kubeconfig output is rendered by kubeconfig_render() from the
 * kubeconfig, read again on every write, so a changed source is followed at the next refresh
 * or reload (a source that gives no cluster fails this output, keeping the old file). Logs
 * each failure and each narrowed mode once. last_message is "<step>: <strerror>", never a
 * token. token NULL writes only the outputs that hold no token (the kubeconfig output: it is
 * useful before the first sign-in). Returns 0 when all succeeded, else the first failure's
 * negative errno (the others are still attempted). Attached (outputs_attach()): queues the
 * write and returns 0 or a negative errno; the result goes to on_written. Every output must be
 * a regular file (else -EINVAL, "not a regular file"); a symlink is followed as atomic.h says
 * (-ENOLINK); as root each output is written with its directory owner's rights. */
int outputs_write_all(Outputs *o, const Secret *token, usec_t now);

/* True when every output has been written successfully with the last token given. */
bool outputs_all_ok(const Outputs *o);

/* Remove temp files a crash left next to each output. */
void outputs_remove_stale_temps(const Outputs *o);
