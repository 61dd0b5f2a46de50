/* The socket protocol: requests parsed from one JSON line, answers built as one JSON line. Pure. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "base/secret.h"
#include "shared/config.h"
#include "shared/protocol.h"

static const char *const op_names[_OP_MAX] = {
        [OP_STATUS] = "status",   [OP_PROFILES] = "profiles", [OP_TOKEN] = "token",   [OP_REFRESH] = "refresh",
        [OP_CHECK] = "check",     [OP_LOGIN] = "login",       [OP_LOGOUT] = "logout", [OP_RELOAD] = "reload",
        [OP_VERSION] = "version", [OP_METRICS] = "metrics",
};

const char *request_op_to_string(RequestOp op) {
        if (op < 0 || op >= _OP_MAX)
                return NULL;
        return op_names[op];
}

RequestOp request_op_from_string(const char *s) {
        if (!s)
                return _OP_INVALID;
        for (int i = 0; i < _OP_MAX; i++)
                if (strcmp(op_names[i], s) == 0)
                        return (RequestOp) i;
        return _OP_INVALID;
}

static const char *const error_names[_ERR_MAX] = {
        [ERR_UNKNOWN_OP] = "unknown_op",
        [ERR_UNKNOWN_PROFILE] = "unknown_profile",
        [ERR_BAD_REQUEST] = "bad_request",
        [ERR_LOGIN_REQUIRED] = "login_required",
        [ERR_REFRESH_FAILED] = "refresh_failed",
        [ERR_OUTPUT_FAILED] = "output_failed",
        [ERR_TIMEOUT] = "timeout",
        [ERR_FORBIDDEN] = "forbidden",
        [ERR_LOGIN_DECLINED] = "login_declined",
        [ERR_LOGIN_EXPIRED] = "login_expired",
        [ERR_LOGIN_FAILED] = "login_failed",
        [ERR_CONFIG_ERROR] = "config_error",
        [ERR_BUSY] = "busy",
        [ERR_RELOAD_FAILED] = "reload_failed",
        [ERR_INTERNAL] = "internal",
};

const char *error_code_to_string(ErrorCode e) {
        if (e < 0 || e >= _ERR_MAX)
                return NULL;
        return error_names[e];
}

ErrorCode error_code_from_string(const char *s) {
        if (!s)
                return _ERR_INVALID;
        for (int i = 0; i < _ERR_MAX; i++)
                if (strcmp(error_names[i], s) == 0)
                        return (ErrorCode) i;
        return _ERR_INVALID;
}

int error_code_exit_status(ErrorCode e) {
        switch (e) {
        case ERR_LOGIN_REQUIRED:
        case ERR_LOGIN_DECLINED:
        case ERR_LOGIN_EXPIRED:
        case ERR_LOGIN_FAILED:
                return 2;
        case ERR_FORBIDDEN:
                return 3;
        case ERR_BAD_REQUEST:
        case ERR_UNKNOWN_OP:
        case ERR_UNKNOWN_PROFILE:
                /* The caller asked for something that cannot be: EX_USAGE. */
                return 64;
        default:
                return 1;
        }
}

ErrorCode error_code_from_errno(int r) {
        switch (r) {
        case -ENOKEY:
                return ERR_LOGIN_REQUIRED;
        case -EKEYREJECTED:
                return ERR_LOGIN_DECLINED;
        case -EKEYEXPIRED:
                return ERR_LOGIN_EXPIRED;
        case -ENOLINK:
                return ERR_LOGIN_FAILED;
        case -EIO:
                return ERR_REFRESH_FAILED;
        case -EREMOTEIO:
                return ERR_OUTPUT_FAILED;
        case -EBADR:
                return ERR_CONFIG_ERROR;
        case -ETIMEDOUT:
                return ERR_TIMEOUT;
        default:
                return ERR_INTERNAL;
        }
}

static const char *const state_names[_PROFILE_STATE_MAX] = {
        [PROFILE_VALID] = "valid",     [PROFILE_REFRESHING] = "refreshing", [PROFILE_LOGIN_REQUIRED] = "login_required",
        [PROFILE_EXPIRED] = "expired", [PROFILE_ERROR] = "error",
};

static const char *const refresh_result_names[_REFRESH_RESULT_MAX] = {
        [REFRESH_OK] = "ok",
        [REFRESH_TRANSIENT] = "transient",
        [REFRESH_LOGIN_REQUIRED] = "login_required",
        [REFRESH_CONFIG_ERROR] = "config_error",
};

const char *refresh_result_to_string(RefreshResult r) {
        if (r < 0 || r >= _REFRESH_RESULT_MAX)
                return NULL;
        return refresh_result_names[r];
}

const char *profile_state_to_string(ProfileState s) {
        if (s < 0 || s >= _PROFILE_STATE_MAX)
                return NULL;
        return state_names[s];
}

void request_clear(Request *r) {
        if (!r)
                return;
        free(r->profile);
        *r = (Request) {};
}

#define _cleanup_json_ _cleanup_(json_decrefp)

static int bad(ErrorCode code, const char *message, int r, ErrorCode *reterr_code, const char **reterr_message) {
        if (reterr_code)
                *reterr_code = code;
        if (reterr_message)
                *reterr_message = message;
        return r;
}

int protocol_parse_request(const char *line, size_t len, Request *ret, ErrorCode *reterr_code,
                           const char **reterr_message) {
        _cleanup_json_ json_t *root = NULL;
        _cleanup_free_ char *profile = NULL;
        json_t *op, *prof, *min, *method;
        usec_t min_valid = 0;
        int login_method = -1;
        RequestOp o;
        json_error_t error;

        /* jansson checks UTF-8, refuses "\u0000" in strings and caps the nesting depth. */
        root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &error);
        if (!root)
                return bad(ERR_BAD_REQUEST, "the request is not valid JSON (one UTF-8 object per line)", -EBADMSG,
                           reterr_code, reterr_message);
        if (!json_is_object(root))
                return bad(ERR_BAD_REQUEST, "the request must be a JSON object", -EBADMSG, reterr_code, reterr_message);

        op = json_object_get(root, "op");
        if (!op || !json_is_string(op))
                return bad(ERR_BAD_REQUEST, "the request needs \"op\", a string", -EBADMSG, reterr_code,
                           reterr_message);
        o = request_op_from_string(json_string_value(op));
        if (o < 0)
                return bad(ERR_UNKNOWN_OP,
                           "unknown op; known ops: status, profiles, token, refresh, check, login, "
                           "logout, reload, version",
                           -EOPNOTSUPP, reterr_code, reterr_message);

        prof = json_object_get(root, "profile");
        if (prof && !json_is_null(prof)) {
                const char *name = json_is_string(prof) ? json_string_value(prof) : NULL;

                if (!name || json_string_length(prof) > PROTOCOL_MAX_PROFILE_NAME ||
                    strlen(name) != json_string_length(prof) || !profile_name_is_valid(name))
                        return bad(ERR_BAD_REQUEST,
                                   "\"profile\" must be a profile name: 1 to 255 letters, digits, '_', "
                                   "'.' or '-'",
                                   -EBADMSG, reterr_code, reterr_message);
                profile = strdup(name);
                if (!profile)
                        return bad(ERR_INTERNAL, "out of memory", -ENOMEM, reterr_code, reterr_message);
        }

        method = json_object_get(root, "method");
        if (method && !json_is_null(method)) {
                const char *m = json_is_string(method) ? json_string_value(method) : "";

                if (streq(m, "browser"))
                        login_method = AUTH_BROWSER;
                else if (streq(m, "device_code"))
                        login_method = AUTH_DEVICE_CODE;
                else
                        return bad(ERR_BAD_REQUEST, "\"method\" must be \"browser\" or \"device_code\"", -EBADMSG,
                                   reterr_code, reterr_message);
        }

        min = json_object_get(root, "min_valid");
        if (min && !json_is_null(min)) {
                json_int_t v = json_is_integer(min) ? json_integer_value(min) : -1;

                if (v < 0 || v > PROTOCOL_MAX_MIN_VALID)
                        return bad(ERR_BAD_REQUEST,
                                   "\"min_valid\" must be a whole number of seconds from 0 to 31622400", -EBADMSG,
                                   reterr_code, reterr_message);
                min_valid = (usec_t) v * USEC_PER_SEC;
        }

        *ret = (Request) {
                .op = o,
                .profile = TAKE_PTR(profile),
                .min_valid = min_valid,
                .login_method = login_method,
        };
        return 0;
}

/* ---- answers ---------------------------------------------------------------------------- */

/* A JSON string for s, null for NULL; bytes that are not UTF-8 (or NUL) become U+FFFD. */
static json_t *json_string_lossy(const char *s) {
        json_t *j;
        char *fixed, *p;
        size_t n;

        if (!s)
                return json_null();
        j = json_string(s);
        if (j)
                return j;

        n = strlen(s);
        if (n > (SIZE_MAX - 1) / 3)
                return NULL;
        fixed = malloc(n * 3 + 1);
        if (!fixed)
                return NULL;
        p = fixed;
        for (size_t i = 0; i < n;) {
                size_t l = utf8_sequence_length((const unsigned char *) s + i, n - i);
                if (l == 0) {
                        memcpy(p, "\xef\xbf\xbd", 3);
                        p += 3;
                        i++;
                } else {
                        memcpy(p, s + i, l);
                        p += l;
                        i += l;
                }
        }
        *p = 0;
        j = json_string(fixed);
        free(fixed);
        return j;
}

/* Seconds since the epoch, or null when the time is unknown (0). */
static json_t *json_time(usec_t t) {
        if (t == 0 || t == USEC_INFINITY)
                return json_null();
        return json_integer((json_int_t) (t / USEC_PER_SEC));
}

/* Takes a reference to value (jansson's _new variant); a NULL value fails the whole answer. */
static int set(json_t *o, const char *key, json_t *value) {
        if (!value)
                return -ENOMEM;
        return json_object_set_new(o, key, value) < 0 ? -ENOMEM : 0;
}

/* The object as one line with '\n'; consumes o. */
static char *answer_line(json_t *o) {
        char *s, *line;
        size_t n;

        if (!o)
                return NULL;
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
                return NULL;
        n = strlen(s);
        line = realloc(s, n + 2);
        if (!line) {
                free(s);
                return NULL;
        }
        line[n] = '\n';
        line[n + 1] = 0;
        return line;
}

char *protocol_error_answer(ErrorCode e, const char *message) {
        json_t *o = json_object();
        const char *code = error_code_to_string(e);

        if (!o)
                return NULL;
        if (set(o, "ok", json_false()) < 0 || set(o, "error", json_string(code ?: "internal")) < 0 ||
            set(o, "message", json_string_lossy(message ?: code ?: "internal error")) < 0) {
                json_decref(o);
                return NULL;
        }
        return answer_line(o);
}

static json_t *outputs_json(const OutputSnapshot *outputs, size_t n) {
        json_t *a = json_array();

        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                const OutputSnapshot *out = &outputs[i];
                json_t *o = json_object();

                if (!o || json_array_append_new(a, o) < 0 || set(o, "path", json_string_lossy(out->path)) < 0 ||
                    set(o, "kind", json_string_lossy(out->kind)) < 0 ||
                    set(o, "ok", out->attempted ? json_boolean(out->ok) : json_null()) < 0 ||
                    set(o, "error", json_string_lossy(out->attempted && !out->ok ? out->error ?: "failed" : NULL)) <
                            0 ||
                    set(o, "last_write", json_time(out->attempted ? out->last_attempt : 0)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        }
        return a;
}

/* The state store's last save of this profile's sign-in. */
static json_t *store_json(const ProfileSnapshot *s) {
        json_t *o = json_object();

        if (!o || set(o, "ok", s->store_attempted ? json_boolean(s->store_ok) : json_null()) < 0 ||
            set(o, "error", json_string_lossy(s->store_attempted && !s->store_ok ? s->store_error ?: "failed" : NULL)) <
                    0 ||
            set(o, "last_save", json_time(s->store_attempted ? s->store_last_save : 0)) < 0 ||
            set(o, "protection", json_string_lossy(s->store_protection)) < 0 ||
            set(o, "key_missing", json_boolean(s->store_key_missing)) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

char *protocol_status_answer(const ProfileSnapshot *s, usec_t now) {
        json_t *o = json_object();
        json_t *expires_in;

        if (!o)
                return NULL;
        if (s->expires_on == 0)
                expires_in = json_null();
        else
                expires_in = json_integer(s->expires_on > now ? (json_int_t) ((s->expires_on - now) / USEC_PER_SEC)
                                                              : 0);

        if (set(o, "ok", json_true()) < 0 || set(o, "profile", json_string_lossy(s->name)) < 0 ||
            set(o, "state", json_string_lossy(profile_state_to_string(s->state))) < 0 ||
            set(o, "expires_on", json_time(s->expires_on)) < 0 || set(o, "expires_in", expires_in) < 0 ||
            set(o, "next_refresh", json_time(s->next_refresh)) < 0 ||
            set(o, "last_refresh", json_time(s->last_refresh)) < 0 ||
            set(o, "last_error", json_string_lossy(s->last_error)) < 0 ||
            set(o, "account", json_string_lossy(s->account)) < 0 ||
            set(o, "tenant", json_string_lossy(s->tenant)) < 0 ||
            set(o, "device_message", json_string_lossy(s->device_message)) < 0 ||
            set(o, "outputs", outputs_json(s->outputs, s->n_outputs)) < 0 || set(o, "store", store_json(s)) < 0) {
                json_decref(o);
                return NULL;
        }
        return answer_line(o);
}

char *protocol_profiles_answer(const ProfileSnapshot *s, size_t n) {
        json_t *o = json_object(), *a = json_array();

        if (!o || !a || json_object_set_new(o, "ok", json_true()) < 0 || json_object_set(o, "profiles", a) < 0) {
                json_decref(o);
                json_decref(a);
                return NULL;
        }
        json_decref(a); /* o holds it now */
        for (size_t i = 0; i < n; i++) {
                json_t *p = json_object();

                if (!p || json_array_append_new(a, p) < 0 || set(p, "name", json_string_lossy(s[i].name)) < 0 ||
                    set(p, "state", json_string_lossy(profile_state_to_string(s[i].state))) < 0 ||
                    set(p, "expires_on", json_time(s[i].expires_on)) < 0 ||
                    set(p, "account", json_string_lossy(s[i].account)) < 0) {
                        json_decref(o);
                        return NULL;
                }
        }
        return answer_line(o);
}

/* Appends s to buf as the body of a JSON string. buf must hold 6 bytes per input byte. */
static char *json_escape_to(char *buf, const char *s) {
        static const char hex[] = "0123456789abcdef";

        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;

                if (c == '"' || c == '\\') {
                        *buf++ = '\\';
                        *buf++ = (char) c;
                } else if (c < 0x20 || c == 0x7f || c >= 0x80) {
                        /* Tokens are ASCII; anything else is escaped byte by byte rather than
                         * risking an answer that is not UTF-8. */
                        *buf++ = '\\';
                        *buf++ = 'u';
                        *buf++ = '0';
                        *buf++ = '0';
                        *buf++ = hex[c >> 4];
                        *buf++ = hex[c & 15];
                } else
                        *buf++ = (char) c;
        }
        return buf;
}

char *protocol_token_answer(const char *access_token, usec_t expires_on) {
        static const char head[] = "{\"ok\":true,\"access_token\":\"";
        char tail[64];
        size_t n, size;
        char *line, *p;

        /* Built by hand so that the token exists in exactly one buffer, the one the caller
         * wipes: jansson would leave copies in freed memory. */
        if (!access_token)
                return NULL;
        n = strlen(access_token);
        if (n > (SIZE_MAX - sizeof head - sizeof tail) / 6)
                return NULL;
        if (expires_on == 0)
                snprintf(tail, sizeof tail, "\",\"expires_on\":null}\n");
        else
                snprintf(tail, sizeof tail, "\",\"expires_on\":%llu}\n",
                         (unsigned long long) (expires_on / USEC_PER_SEC));
        size = sizeof head - 1 + n * 6 + strlen(tail) + 1;
        line = malloc(size);
        if (!line)
                return NULL;
        p = mempcpy(line, head, sizeof head - 1);
        p = json_escape_to(p, access_token);
        p = stpcpy(p, tail);
        /* Wipe the slack the escaping did not use, so the caller's erase covers all of it. */
        memset(p, 0, size - (size_t) (p - line));
        return line;
}

char *protocol_version_answer(const char *version) {
        json_t *o = json_object();

        if (!o)
                return NULL;
        if (set(o, "ok", json_true()) < 0 || set(o, "version", json_string_lossy(version)) < 0) {
                json_decref(o);
                return NULL;
        }
        return answer_line(o);
}

char *protocol_metrics_answer(const char *text) {
        json_t *o = json_object();

        if (!o)
                return NULL;
        if (set(o, "ok", json_true()) < 0 || set(o, "content_type", json_string(METRICS_CONTENT_TYPE)) < 0 ||
            set(o, "metrics", json_string_lossy(text)) < 0) {
                json_decref(o);
                return NULL;
        }
        return answer_line(o);
}

char *protocol_ok_answer(void) {
        return strdup("{\"ok\":true}\n");
}

char *protocol_login_started_answer(const char *message, const char *verification_uri, const char *user_code,
                                    usec_t expires_in) {
        json_t *o = json_object();

        if (!o)
                return NULL;
        if (set(o, "ok", json_true()) < 0 || set(o, "device_message", json_string_lossy(message)) < 0 ||
            set(o, "verification_uri", json_string_lossy(verification_uri)) < 0 ||
            set(o, "user_code", json_string_lossy(user_code)) < 0 ||
            /* a browser sign-in: the URL to open, and no code to type */
            (!user_code && set(o, "authorize_url", json_string_lossy(verification_uri)) < 0) ||
            set(o, "expires_in", json_integer((json_int_t) (expires_in / USEC_PER_SEC))) < 0) {
                json_decref(o);
                return NULL;
        }
        return answer_line(o);
}
