/* The socket protocol: one JSON object per line each way. Parsing requests and building
 * answers are pure; server.c does the I/O and manager.c the work. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

/* The longest request line (without its '\n') the daemon reads. */
#define PROTOCOL_MAX_REQUEST (64 * 1024)
/* The largest min_valid a request may carry (seconds): a year, as parse_duration allows. */
#define PROTOCOL_MAX_MIN_VALID (366LL * 24 * 3600)
#define PROTOCOL_MAX_PROFILE_NAME 255

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
        OP_METRICS,
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
        ERR_BUSY, /* too many connections */
        ERR_RELOAD_FAILED,
        ERR_INTERNAL,
        _ERR_MAX,
        _ERR_INVALID = -EINVAL,
} ErrorCode;

const char *error_code_to_string(ErrorCode e);   /* stable snake_case */
ErrorCode error_code_from_string(const char *s); /* -EINVAL if unknown */

/* aksspark-tokenctl's exit code for an error answer: 2 when a person must sign in
 * (login_required, login_declined, login_expired, login_failed), 3 forbidden, 64 for the
 * caller's own mistakes (bad_request, unknown_op, unknown_profile), 1 for everything else
 * (transient, or a problem the daemon's log explains). */
int error_code_exit_status(ErrorCode e);

/* The error code an answer carries for a profile operation's negative errno (profile.h):
 * -ENOKEY login_required, -EKEYREJECTED login_declined, -EKEYEXPIRED login_expired,
 * -EIO refresh_failed, -EREMOTEIO output_failed, -EBADR config_error, -ETIMEDOUT timeout,
 * -ENOLINK login_failed, anything else internal. */
ErrorCode error_code_from_errno(int r);

typedef struct Request {
        RequestOp op;
        char *profile;    /* NULL = the default profile */
        usec_t min_valid; /* check: seconds in the request, 0 if absent */
        int login_method; /* login: AUTH_BROWSER or AUTH_DEVICE_CODE for this one sign-in; -1 the profile's */
} Request;

void request_clear(Request *r);

/* Parse one line (without its '\n'). On a bad request returns a negative errno and sets
 * *reterr_code and *reterr_message (static text, no echo of the input).
 *
 * Strict: the line must be one JSON object (UTF-8, no duplicate keys) with "op" a string;
 * "profile", when present and not null, a string matching [A-Za-z0-9_.-]{1,255};
 * "min_valid", when present, an integer of seconds in [0, PROTOCOL_MAX_MIN_VALID] (no
 * fractions, no strings such as "15m": the client converts durations). Other keys are
 * ignored, so newer clients can add optional fields. */
int protocol_parse_request(const char *line, size_t len, Request *ret, ErrorCode *reterr_code,
                           const char **reterr_message);

typedef enum ProfileState {
        PROFILE_VALID,
        PROFILE_REFRESHING,
        PROFILE_LOGIN_REQUIRED,
        PROFILE_EXPIRED,
        PROFILE_ERROR,
        _PROFILE_STATE_MAX,
} ProfileState;

const char *profile_state_to_string(ProfileState s);

/* How one refresh ended, as the metrics count them. */
typedef enum RefreshResult {
        REFRESH_OK,
        REFRESH_TRANSIENT,      /* network, 5xx, 429, a malformed answer: retried */
        REFRESH_LOGIN_REQUIRED, /* the refresh token was refused: a person must sign in */
        REFRESH_CONFIG_ERROR,   /* the identity provider rejected the configuration */
        _REFRESH_RESULT_MAX,
} RefreshResult;

const char *refresh_result_to_string(RefreshResult r); /* "ok", "transient", ... */

typedef struct OutputSnapshot {
        const char *path;
        const char *kind; /* "token_file" | "spark_properties" | "kubeconfig_output" */
        bool attempted;
        bool ok;
        const char *error;   /* NULL when ok */
        usec_t last_attempt; /* realtime, 0 never */
        usec_t last_success; /* realtime, 0 never */
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
        const char *device_message; /* while a sign-in waits for the person */
        const OutputSnapshot *outputs;
        size_t n_outputs;
        uint64_t refreshes[_REFRESH_RESULT_MAX]; /* since the daemon started, by result */
        bool store_attempted;                    /* a save of the sign-in was tried since the start */
        bool store_ok;                           /* the last save succeeded */
        const char *store_error;                 /* why the last save failed; NULL when ok */
        usec_t store_last_save;                  /* realtime of the last attempt */
        const char *store_protection;            /* state_protection in force; NULL unknown */
        bool store_key_missing;                  /* that protection's key cannot be had */
} ProfileSnapshot;

/* Answers, each a complete line ending in '\n' (malloc'd; NULL on ENOMEM). Unknown values
 * are JSON null; times are unix seconds. Strings that are not valid UTF-8 (a path, say) have
 * their bad bytes replaced by U+FFFD, so an answer is always valid JSON. */
char *protocol_error_answer(ErrorCode e, const char *message);
/* {"ok":true,"profile","state","expires_on","expires_in","next_refresh","last_refresh",
 *  "last_error","account","tenant","device_message",
 *  "outputs":[{"path","kind","ok","error","last_write"}],
 *  "store":{"ok","error","last_save","protection","key_missing"}} ("ok" null: not written / saved
 *  yet; "protection": auto's choice, one of systemd-creds, keyring, none) */
char *protocol_status_answer(const ProfileSnapshot *s, usec_t now);
/* {"ok":true,"profiles":[{"name","state","expires_on","account"}]} */
char *protocol_profiles_answer(const ProfileSnapshot *s, size_t n);
/* {"ok":true,"access_token","expires_on"}: a secret, built without intermediate copies;
 * wipe it (erase_and_free) when done. */
char *protocol_token_answer(const char *access_token, usec_t expires_on);
char *protocol_version_answer(const char *version);
/* The Prometheus text format the metrics op answers in (version 0.0.4). */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* {"ok":true,"content_type":METRICS_CONTENT_TYPE,"metrics":"<the exposition text>"} */
char *protocol_metrics_answer(const char *text);
char *protocol_ok_answer(void);
/* {"ok":true,"device_message","verification_uri","user_code","expires_in"} */
char *protocol_login_started_answer(const char *message, const char *verification_uri, const char *user_code,
                                    usec_t expires_in);
