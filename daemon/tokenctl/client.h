/* aksspark-tokenctl's connection to the daemon (client.c): connect, send a request line, read an
 * answer line, and the helpers every command uses on an answer. Each returns 0 or the exit status
 * after saying what is wrong on stderr. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/macro.h"
#include "base/util.h"
#include "shared/protocol.h"

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

/* One request line. */
typedef struct TokenctlRequest {
        RequestOp op;
        const char *profile; /* NULL: the daemon's default profile */
        bool with_min_valid;
        usec_t min_valid;
        const char *login_method; /* OP_LOGIN only: "browser", "device_code"; NULL: the profile's */
} TokenctlRequest;

/* The socket the client talks to without --socket: $AKSSPARK_TOKEND_SOCKET, else the
 * workstation's ($XDG_RUNTIME_DIR), else a shared host's /run/aksspark-tokend/USER.sock where
 * that exists. malloc'd; NULL: out of memory. */
char *tokenctl_default_socket_path(void);

/* The client's socket: each returns 0, or the exit status after saying what is wrong. */
void tokenctl_client_done(TokenctlClient *c);
int tokenctl_client_connect(TokenctlClient *c, const char *path);
int tokenctl_client_send_request(TokenctlClient *c, const TokenctlRequest *req);
int tokenctl_client_read_answer(TokenctlClient *c, usec_t deadline, json_t **ret, const char **ret_raw);

/* Say what is wrong on stderr; returns status. */
int tokenctl_fail(int status, const char *format, ...) _printf_(2, 3);
/* s and a newline, all of it. */
int tokenctl_write_line(int fd, const char *s);

const char *tokenctl_get_string(json_t *o, const char *key);
bool tokenctl_get_time(json_t *o, const char *key, usec_t *ret);
/* A failed answer said for a person; returns its exit status. */
int tokenctl_answer_error(json_t *answer);
