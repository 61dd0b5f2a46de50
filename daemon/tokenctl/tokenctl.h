/* What the files of aksspark-tokenctl share: the socket client and answer helpers (tokenctl.c),
 * and the commands that live in files of their own, called from tokenctl.c's command table. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/macro.h"
#include "base/util.h"
#include "shared/protocol.h"

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

/* Exit codes: the interface's contract. */
#define TOKENCTL_EXIT_TRANSIENT 1
#define TOKENCTL_EXIT_LOGIN 2
#define TOKENCTL_EXIT_UNREACHABLE 3
#define TOKENCTL_EXIT_USAGE 64

/* The daemon answers a waiting refresh or check with `timeout` after 110 s. */
#define TOKENCTL_WAIT_TIMEOUT (120 * USEC_PER_SEC)

typedef struct TokenctlClient {
        int fd;
        const char *path;
        char *buf; /* may hold a token: wiped */
        size_t len, cap;
        size_t consumed; /* the line handed out last, dropped at the next read */
} TokenctlClient;

/* The client's socket: each returns 0, or the exit status after saying what is wrong. */
void tokenctl_client_done(TokenctlClient *c);
int tokenctl_client_connect(TokenctlClient *c, const char *path);
int tokenctl_client_send_request(TokenctlClient *c, RequestOp op, bool with_min_valid, usec_t min_valid);
int tokenctl_client_read_answer(TokenctlClient *c, usec_t deadline, json_t **ret, const char **ret_raw);

/* Say what is wrong on stderr; returns status. */
int tokenctl_fail(int status, const char *format, ...) _printf_(2, 3);
/* s and a newline, all of it. */
int tokenctl_write_line(int fd, const char *s);

const char *tokenctl_get_string(json_t *o, const char *key);
bool tokenctl_get_time(json_t *o, const char *key, usec_t *ret);
/* A failed answer said for a person; returns its exit status. */
int tokenctl_answer_error(json_t *answer);

/* token and exec-credential (requested_api_version: --api-version, NULL if not given). */
int tokenctl_token(const char *path);
int tokenctl_exec_credential(const char *path, const char *requested_api_version);

/* run (tokenctl-run.c): check with min_valid, then execvp(command) with KUBECONFIG and
 * AKSSPARK_TOKEN_FILE set; returns only on failure, with check's exit status (126/127 when the
 * command cannot be started). */
#define TOKENCTL_RUN_MIN_VALID (15 * USEC_PER_MINUTE)
int tokenctl_run(const char *path, usec_t min_valid, char *const *command);
