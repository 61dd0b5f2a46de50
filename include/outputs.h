/* The files one profile writes (token file, spark.properties) and the last result of each. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "secret.h"
#include "util.h"

typedef enum OutputKind {
        OUTPUT_TOKEN_FILE,
        OUTPUT_SPARK_PROPERTIES,
} OutputKind;

const char *output_kind_to_string(OutputKind k); /* "token_file", "spark_properties" */

typedef struct Output {
        OutputKind kind;
        char *path;
        int last_result;        /* 0 ok, -errno failed; meaningful once attempted */
        bool attempted;
        usec_t last_attempt;    /* realtime */
        usec_t last_success;    /* realtime, 0 never */
        char *last_message;     /* why the last write failed, for status; NULL when ok */
        bool narrowed_logged;
} Output;

typedef struct Outputs {
        Output *items;
        size_t n;
        char *kubeconfig;       /* for spark.master in new spark.properties; NULL none */
        char *kubeconfig_context; /* its context for spark.master; NULL: the current one */
} Outputs;

int outputs_new(const ProfileConfig *p, Outputs **ret);
Outputs *outputs_free(Outputs *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(Outputs *, outputs_free);

/* Write token to every output (mode 0600, missing parent directories created 0700; unchanged
 * files are not rewritten). A token file gets the raw token; a spark.properties is edited by
 * props_replace_token() (an existing file over 1 MiB: -EFBIG), or, when missing, made by
 * props_new_file() with spark.master from the kubeconfig (a kubeconfig that gives no server is
 * a warning, not a failure). Logs each failure and each narrowed mode once. last_message is
 * "<step>: <strerror>", never a token. Returns 0 when all succeeded, else the first failure's
 * negative errno (the others are still attempted). */
int outputs_write_all(Outputs *o, const Secret *token, usec_t now);

/* True when every output has been written successfully with the last token given. */
bool outputs_all_ok(const Outputs *o);

/* Remove temp files a crash left next to each output. */
void outputs_remove_stale_temps(const Outputs *o);
