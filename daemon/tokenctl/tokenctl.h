/* What the files of aksspark-tokenctl share: the parsed command line, and the commands that live
 * in files of their own, called from tokenctl.c's command table. The connection to the daemon:
 * client.h. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/macro.h"
#include "base/util.h"
#include "shared/protocol.h"
#include "tokenctl/client.h"

#define TOKENCTL_MAX_CONTEXTS 64

typedef struct TokenctlSetupArgs {
        const char *config;                    /* --config; NULL: the daemon's default path */
        const char *kubeconfig;                /* --kubeconfig; NULL: $KUBECONFIG's first file, ~/.kube/config */
        char *contexts[TOKENCTL_MAX_CONTEXTS]; /* --context, repeatable */
        size_t n_contexts;
        bool force;
        const char *socket;         /* --socket; NULL: the configuration's, else the client's default */
        const char *default_socket; /* the client's default socket path */
        const char *profile;        /* --profile; NULL: every profile */
} TokenctlSetupArgs;

/* An option of init or doctor: 'c' --config, 'k' --kubeconfig, 'x' --context, 'f' --force (value
 * NULL). -E2BIG past TOKENCTL_MAX_CONTEXTS contexts. */
int tokenctl_setup_option(TokenctlSetupArgs *a, char option, const char *value);
/* Only --config among them was given (doctor takes no other). */
bool tokenctl_setup_only_config(const TokenctlSetupArgs *a);

/* Exit statuses: 0 written; 1 nothing to write or cannot write; 64 usage. */
int tokenctl_init(const TokenctlSetupArgs *a);

/* Exit statuses: 0 nothing failed; 1 a check failed. */
int tokenctl_doctor(const TokenctlSetupArgs *a);

/* The command line, parsed: what every command gets (commands read no globals). */
typedef struct TokenctlOptions {
        const char *socket;         /* the daemon's socket: --socket, else the client's default */
        const char *socket_option;  /* --socket as given; NULL: not given */
        const char *profile;        /* --profile; NULL: the daemon's default profile */
        bool json;                  /* --json: print the answer's line as it came */
        usec_t min_valid;           /* --min-valid (check) */
        const char *api_version;    /* --api-version (exec-credential); NULL: not given */
        const char *login_method;   /* --browser/--device-code (login): "browser", "device_code", NULL */
        bool metrics_all;           /* metrics --all */
        const char *metrics_output; /* metrics --all --output PATH; NULL: standard output */
        char **run_command;         /* run: what follows "--" */
        TokenctlSetupArgs setup;    /* --config, --kubeconfig, --context, --force (init, doctor) */
} TokenctlOptions;

/* token and exec-credential (tokenctl-token.c). */
int tokenctl_token(const TokenctlOptions *o);
int tokenctl_exec_credential(const TokenctlOptions *o);

/* metrics --all: every instance socket in dir joined, to standard output or replacing output
 * (mode 0644). Root only. */
#define TOKENCTL_INSTANCE_DIR "/run/aksspark-tokend"
int tokenctl_metrics_all(const char *dir, const char *output);

/* run (tokenctl-run.c): check with min_valid, then execvp(command) with KUBECONFIG and
 * AKSSPARK_TOKEN_FILE set; returns only on failure, with check's exit status (126/127 when the
 * command cannot be started). */
#define TOKENCTL_RUN_MIN_VALID (15 * USEC_PER_MINUTE)
int tokenctl_run(const TokenctlOptions *o, char *const *command);
