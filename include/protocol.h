/* The socket protocol: one JSON object per line each way. Parsing requests and building
 * answers are pure; server.c does the I/O and manager.c the work. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define PROTOCOL_MAX_REQUEST (64 * 1024)

typedef enum RequestOp {
        OP_STATUS,
        OP_PROFILES,
        OP_TOKEN,
        OP_REFRESH,
        OP_CHECK,
        OP_LOGIN,
        OP_LOGOUT,
        OP_RELOAD,
        OP_VERSION,
        _OP_MAX,
        _OP_INVALID = -EINVAL,
} RequestOp;

const char *request_op_to_string(RequestOp op);
RequestOp request_op_from_string(const char *s);

typedef enum ErrorCode {
        ERR_UNKNOWN_OP,
        ERR_UNKNOWN_PROFILE,
        ERR_BAD_REQUEST,
        ERR_LOGIN_REQUIRED,
        ERR_REFRESH_FAILED,
        ERR_OUTPUT_FAILED,
        ERR_TIMEOUT,
        ERR_FORBIDDEN,
        ERR_LOGIN_DECLINED,
        ERR_LOGIN_EXPIRED,
        ERR_LOGIN_FAILED,
        ERR_CONFIG_ERROR,
        ERR_BUSY,               /* too many connections */
        ERR_RELOAD_FAILED,
        ERR_INTERNAL,
        _ERR_MAX,
} ErrorCode;

const char *error_code_to_string(ErrorCode e);   /* stable snake_case */
ErrorCode error_code_from_string(const char *s); /* -EINVAL if unknown */

/* aksspark-tokenctl's exit code for an error answer: 1 transient, 2 sign-in needed, 3 forbidden. */
int error_code_exit_status(ErrorCode e);

typedef struct Request {
        RequestOp op;
        char *profile;          /* NULL = the default profile */
        usec_t min_valid;       /* check: seconds in the request, 0 if absent */
} Request;

void request_clear(Request *r);

/* Parse one line (without its '\n'). On a bad request returns a negative errno and sets
 * *ret_code and *ret_message (static text, no echo of the input). */
int protocol_parse_request(const char *line, size_t len, Request *ret, ErrorCode *ret_code,
                           const char **ret_message);

typedef enum ProfileState {
        PROFILE_VALID,
        PROFILE_REFRESHING,
        PROFILE_LOGIN_REQUIRED,
        PROFILE_EXPIRED,
        PROFILE_ERROR,
        _PROFILE_STATE_MAX,
} ProfileState;

const char *profile_state_to_string(ProfileState s);

typedef struct OutputSnapshot {
        const char *path;
        const char *kind;       /* "token_file" | "spark_properties" */
        bool attempted;
        bool ok;
        const char *error;      /* NULL when ok */
        usec_t last_attempt;    /* realtime, 0 never */
} OutputSnapshot;

/* What `status` shows about one profile; all times realtime usec, 0 = none. */
typedef struct ProfileSnapshot {
        const char *name;
        ProfileState state;
        usec_t expires_on;
        usec_t next_refresh;
        usec_t last_refresh;
        const char *last_error;
        const char *account;
        const char *tenant;
        const char *device_message;     /* while a sign-in waits for the person */
        const OutputSnapshot *outputs;
        size_t n_outputs;
} ProfileSnapshot;

/* Answers, each a complete line ending in '\n' (malloc'd; NULL on ENOMEM). */
char *protocol_error_answer(ErrorCode e, const char *message);
char *protocol_status_answer(const ProfileSnapshot *s, usec_t now);
char *protocol_profiles_answer(const ProfileSnapshot *s, size_t n);
char *protocol_token_answer(const char *access_token, usec_t expires_on); /* a secret: wipe it */
char *protocol_version_answer(const char *version);
char *protocol_ok_answer(void);
char *protocol_login_started_answer(const char *message, const char *verification_uri,
                                    const char *user_code, usec_t expires_in);
