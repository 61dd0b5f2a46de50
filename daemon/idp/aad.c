/* The Azure AD v2.0 protocol: request URLs and form bodies, and what an answer means. Pure. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json-wipe.h"
#include "base/macro.h"
#include "idp/aad.h"

#define AAD_ANSWER_MAX (1024 * 1024)
#define AAD_ERROR_MAX 40 /* AAD's error codes are short snake_case words */
#define AAD_DESCRIPTION_MAX 300
#define AAD_ID_MAX 40 /* a GUID is 36 */
#define AAD_USER_CODE_MAX 32
#define AAD_URI_MAX 2048
#define AAD_MESSAGE_MAX 1024
#define AAD_TOKEN_MAX (64 * 1024)
#define AAD_REDACT_RUN 40 /* this many token characters in a row look like a secret */
#define AAD_TOKEN_LIFETIME_MAX (48 * USEC_PER_HOUR)
#define AAD_DEVICE_EXPIRES_DEFAULT (15 * USEC_PER_MINUTE)
#define AAD_DEVICE_EXPIRES_MAX (USEC_PER_HOUR)
#define AAD_INTERVAL_MAX (5 * USEC_PER_MINUTE)
#define AAD_CLAIMS_MAX (8 * 1024)

static const char *const outcome_table[] = {
        [AAD_OK] = "ok",
        [AAD_PENDING] = "pending",
        [AAD_SLOW_DOWN] = "slow_down",
        [AAD_DECLINED] = "declined",
        [AAD_CODE_EXPIRED] = "code_expired",
        [AAD_NEEDS_LOGIN] = "needs_login",
        [AAD_CONFIG_ERROR] = "config_error",
        [AAD_TRANSIENT] = "transient",
};

const char *aad_outcome_to_string(AadOutcome o) {
        if ((size_t) o >= ELEMENTSOF(outcome_table))
                return "unknown";
        return outcome_table[o];
}

void aad_error_clear(AadError *e) {
        if (!e)
                return;
        free(e->error);
        free(e->description);
        free(e->correlation_id);
        free(e->trace_id);
        free(e->suberror);
        free(e->claims);
        *e = (AadError) {};
}

void aad_token_clear(AadToken *t) {
        if (!t)
                return;
        secret_free(t->access_token);
        secret_free(t->refresh_token);
        *t = (AadToken) {};
}

void aad_device_code_clear(AadDeviceCode *d) {
        if (!d)
                return;
        secret_free(d->device_code);
        free(d->user_code);
        free(d->verification_uri);
        free(d->message);
        *d = (AadDeviceCode) {};
}

/* ---- requests ------------------------------------------------------------------------------ */

static bool char_is_unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_' || c == '~';
}

static size_t escaped_len(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                n += char_is_unreserved((unsigned char) *s) ? 1 : 3;
        return n;
}

/* Percent-encodes everything but RFC 3986's unreserved characters (a space becomes %20), which
 * is valid both in application/x-www-form-urlencoded bodies and in a URL path segment. */
static char *escape_into(char *p, const char *s) {
        static const char hex[] = "0123456789ABCDEF";

        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;

                if (char_is_unreserved(c))
                        *p++ = (char) c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        return p;
}

typedef struct FormField {
        const char *name; /* already safe */
        const char *value;
} FormField;

/* Builds the body in one allocation sized in advance, so no copy of a secret is left behind
 * in a freed buffer. */
static int form_build(const FormField *fields, size_t n, char **ret, size_t *ret_len) {
        size_t total = 0;
        char *buf, *p;

        for (size_t i = 0; i < n; i++) {
                if (!fields[i].value)
                        return -EINVAL;
                total += (i > 0) + strlen(fields[i].name) + 1 + escaped_len(fields[i].value);
        }

        buf = malloc(total + 1);
        if (!buf)
                return -ENOMEM;
        p = buf;
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = '&';
                p = stpcpy(p, fields[i].name);
                *p++ = '=';
                p = escape_into(p, fields[i].value);
        }
        *p = 0;

        *ret = buf;
        *ret_len = total;
        return 0;
}

static int form_build_secret(const FormField *fields, size_t n, Secret **ret) {
        char *buf;
        size_t len;
        Secret *s;
        int r;

        r = form_build(fields, n, &buf, &len);
        if (r < 0)
                return r;
        s = secret_adopt(buf, len); /* wipes buf itself on failure */
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static char *endpoint_url(const ProfileConfig *p, const char *endpoint) {
        _cleanup_free_ char *tenant = NULL;
        char *url;

        if (!p || !p->authority_host || !p->tenant)
                return NULL;
        tenant = malloc(escaped_len(p->tenant) + 1);
        if (!tenant)
                return NULL;
        *escape_into(tenant, p->tenant) = 0;
        if (asprintf(&url, "%s/%s/oauth2/v2.0/%s", p->authority_host, tenant, endpoint) < 0)
                return NULL;
        return url;
}

char *aad_devicecode_url(const ProfileConfig *p) {
        return endpoint_url(p, "devicecode");
}

char *aad_token_url(const ProfileConfig *p) {
        return endpoint_url(p, "token");
}

int aad_devicecode_body(const ProfileConfig *p, char **ret) {
        _cleanup_free_ char *scope = NULL;
        size_t len;

        if (!p || !p->client_id || !ret)
                return -EINVAL;
        scope = profile_config_scope(p);
        if (!scope)
                return -ENOMEM;
        return form_build(
                (const FormField[]) {
                        { "client_id", p->client_id },
                        { "scope", scope },
                },
                2, ret, &len);
}

int aad_device_token_body(const ProfileConfig *p, const Secret *device_code, Secret **ret) {
        return aad_device_token_body_claims(p, device_code, NULL, ret);
}

int aad_device_token_body_claims(const ProfileConfig *p, const Secret *device_code, const char *claims, Secret **ret) {
        if (!p || !p->client_id || !device_code || !ret)
                return -EINVAL;
        /* MSAL sends client_info=1 on every token request, and a claims challenge with the
         * redemption of the device code. */
        return form_build_secret(
                (const FormField[]) {
                        { "grant_type", "urn:ietf:params:oauth:grant-type:device_code" },
                        { "client_id", p->client_id },
                        { "device_code", secret_reveal(device_code) },
                        { "client_info", "1" },
                        { "claims", claims },
                },
                claims ? 5 : 4, ret);
}

static int client_credentials_body(const ProfileConfig *p, const FormField *credential, size_t n, Secret **ret) {
        _cleanup_free_ char *scope = NULL;
        FormField f[5] = {
                { "grant_type", "client_credentials" },
                { "client_id", p->client_id },
                { "scope", NULL },
                { "client_info", "1" },
        };

        scope = profile_config_app_scope(p);
        if (!scope)
                return -ENOMEM;
        f[2].value = scope;
        if (n == 1)
                f[4] = credential[0];
        else {
                /* two fields: assertion type and assertion */
                FormField g[6];
                memcpy(g, f, 4 * sizeof *f);
                g[4] = credential[0];
                g[5] = credential[1];
                return form_build_secret(g, 6, ret);
        }
        return form_build_secret(f, 5, ret);
}

int aad_client_secret_body(const ProfileConfig *p, const Secret *client_secret, Secret **ret) {
        if (!p || !p->client_id || !client_secret || !ret)
                return -EINVAL;
        return client_credentials_body(p, (const FormField[]) { { "client_secret", secret_reveal(client_secret) } }, 1,
                                       ret);
}

int aad_client_assertion_body(const ProfileConfig *p, const Secret *assertion, Secret **ret) {
        if (!p || !p->client_id || !assertion || !ret)
                return -EINVAL;
        return client_credentials_body(
                p,
                (const FormField[]) {
                        { "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" },
                        { "client_assertion", secret_reveal(assertion) },
                },
                2, ret);
}

char *aad_authorize_url(const ProfileConfig *p, const char *redirect_uri, const char *code_challenge, const char *state,
                        const char *claims) {
        _cleanup_free_ char *base = NULL, *scope = NULL, *query = NULL;
        size_t len;
        char *url;

        if (!p || !p->client_id || !redirect_uri || !code_challenge || !state)
                return NULL;
        base = endpoint_url(p, "authorize");
        scope = profile_config_scope(p);
        if (!base || !scope)
                return NULL;
        if (form_build(
                    (const FormField[]) {
                            { "client_id", p->client_id },
                            { "response_type", "code" },
                            { "redirect_uri", redirect_uri },
                            { "scope", scope },
                            { "state", state },
                            { "code_challenge", code_challenge },
                            { "code_challenge_method", "S256" },
                            { "prompt", "select_account" },
                            { "client_info", "1" },
                            { "claims", claims },
                    },
                    claims ? 10 : 9, &query, &len) < 0)
                return NULL;
        if (asprintf(&url, "%s?%s", base, query) < 0)
                return NULL;
        return url;
}

int aad_code_token_body(const ProfileConfig *p, const Secret *code, const char *redirect_uri,
                        const Secret *code_verifier, const char *claims, Secret **ret) {
        _cleanup_free_ char *scope = NULL;

        if (!p || !p->client_id || !code || !redirect_uri || !code_verifier || !ret)
                return -EINVAL;
        scope = profile_config_scope(p);
        if (!scope)
                return -ENOMEM;
        return form_build_secret(
                (const FormField[]) {
                        { "grant_type", "authorization_code" },
                        { "client_id", p->client_id },
                        { "code", secret_reveal(code) },
                        { "redirect_uri", redirect_uri },
                        { "code_verifier", secret_reveal(code_verifier) },
                        { "scope", scope },
                        { "client_info", "1" },
                        { "claims", claims },
                },
                claims ? 8 : 7, ret);
}

char *aad_msi_url(const ProfileConfig *p) {
        _cleanup_free_ char *query = NULL;
        FormField f[3];
        size_t n = 0, len;
        const char *base;
        char *url;
        int r;

        if (!p || !p->server_id || !p->msi_endpoint)
                return NULL;
        switch (p->msi_kind) {
        case MSI_IMDS:
                f[n++] = (FormField) { "api-version", "2018-02-01" };
                break;
        case MSI_APP_SERVICE:
                f[n++] = (FormField) { "api-version", "2019-08-01" };
                break;
        case MSI_ARC:
                /* as MSAL and azure-identity ask Arc's agent */
                f[n++] = (FormField) { "api-version", "2020-06-01" };
                break;
        default:
                return NULL;
        }
        f[n++] = (FormField) { "resource", p->server_id };
        /* The selector names differ per service; Arc has system-assigned identities only. */
        if (p->managed_identity_client_id)
                f[n++] = (FormField) { "client_id", p->managed_identity_client_id };
        else if (p->managed_identity_object_id)
                f[n++] = (FormField) { p->msi_kind == MSI_APP_SERVICE ? "principal_id" : "object_id",
                                       p->managed_identity_object_id };
        else if (p->managed_identity_resource_id)
                f[n++] = (FormField) { p->msi_kind == MSI_APP_SERVICE ? "mi_res_id" : "msi_res_id",
                                       p->managed_identity_resource_id };
        if (form_build(f, n, &query, &len) < 0)
                return NULL;
        base = p->msi_endpoint;
        if (p->msi_kind == MSI_IMDS)
                r = asprintf(&url, "%s/metadata/identity/oauth2/token?%s", base, query);
        else
                r = asprintf(&url, "%s%c%s", base, strchr(base, '?') ? '&' : '?', query);
        return r < 0 ? NULL : url;
}

int aad_refresh_body(const ProfileConfig *p, const Secret *refresh_token, Secret **ret) {
        _cleanup_free_ char *scope = NULL;

        if (!p || !p->client_id || !refresh_token || !ret)
                return -EINVAL;
        scope = profile_config_scope(p);
        if (!scope)
                return -ENOMEM;
        return form_build_secret(
                (const FormField[]) {
                        { "grant_type", "refresh_token" },
                        { "client_id", p->client_id },
                        { "refresh_token", secret_reveal(refresh_token) },
                        { "scope", scope },
                        { "client_info", "1" },
                },
                5, ret);
}

/* ---- text that may be logged ----------------------------------------------------------------- */

static bool char_is_token_like(unsigned char c) {
        return char_is_unreserved(c) || c == '+' || c == '/' || c == '=';
}

static bool char_is_control(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

/* Cuts s back to at most max bytes without splitting a UTF-8 sequence. */
static void utf8_truncate(char *s, size_t max) {
        size_t n = strlen(s);

        if (n <= max)
                return;
        n = max;
        while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
                n--;
        s[n] = 0;
}

static const char *memmem_first(const char *s, size_t n, const char *const *needles, size_t n_needles) {
        const char *first = NULL;

        for (size_t i = 0; i < n_needles; i++) {
                const char *p = memmem(s, n, needles[i], strlen(needles[i]));
                if (p && (!first || p < first))
                        first = p;
        }
        return first;
}

/* What of an error_description may reach a log line: the first line only ("AADSTSnnnnn:
 * text"), without AAD's trace/correlation/timestamp tail, without control characters, with
 * anything long enough to be a token replaced, and capped. */
static char *description_for_log(const char *s, size_t n) {
        static const char *const tails[] = { "Trace ID:", "Correlation ID:", "Timestamp:" };
        const char *cut;
        char *out, *p;

        for (size_t i = 0; i < n; i++)
                if (s[i] == '\r' || s[i] == '\n') {
                        n = i;
                        break;
                }
        cut = memmem_first(s, n, tails, ELEMENTSOF(tails));
        if (cut)
                n = (size_t) (cut - s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;

        out = malloc(n + 1);
        if (!out)
                return NULL;
        p = out;
        for (size_t i = 0; i < n;) {
                size_t run = 0;

                while (i + run < n && char_is_token_like((unsigned char) s[i + run]))
                        run++;
                if (run >= AAD_REDACT_RUN) {
                        /* "[redacted]" is shorter than the run, so out stays large enough */
                        p = stpcpy(p, "[redacted]");
                        i += run;
                } else if (run > 0) {
                        memcpy(p, s + i, run);
                        p += run;
                        i += run;
                } else {
                        /* A control character becomes a space rather than vanishing, so
                         * it can never join two short runs into one unredacted token. */
                        *p++ = char_is_control((unsigned char) s[i]) ? ' ' : s[i];
                        i++;
                }
        }
        *p = 0;
        utf8_truncate(out, AAD_DESCRIPTION_MAX);
        if (!*out) {
                free(out);
                return NULL;
        }
        return out;
}

/* A copy of s if it is 1..max characters all accepted by ok, else NULL. */
static char *string_if_plain(const char *s, size_t max, bool (*ok)(unsigned char c)) {
        size_t n;

        if (!s)
                return NULL;
        n = strlen(s);
        if (n == 0 || n > max)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!ok((unsigned char) s[i]))
                        return NULL;
        return strdup(s);
}

static bool char_is_error_code(unsigned char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool char_is_id(unsigned char c) {
        return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == '-';
}

static bool char_is_visible(unsigned char c) {
        return c > 0x20 && c < 0x7f;
}

static bool char_is_visible_or_space(unsigned char c) {
        return c == ' ' || char_is_visible(c);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* Whole seconds from a JSON number or a string of digits ("3599", as AAD sometimes sends).
 * -ENOENT when absent or null, -EINVAL when neither, -ERANGE when negative. */
static int json_get_seconds(json_t *o, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(o, key);
        uint64_t n = 0;

        if (!v || json_is_null(v))
                return -ENOENT;
        if (json_is_integer(v)) {
                if (json_integer_value(v) < 0)
                        return -ERANGE;
                n = (uint64_t) json_integer_value(v);
        } else if (json_is_real(v)) {
                double d = json_real_value(v);
                if (!(d >= 0))
                        return -ERANGE;
                n = d >= 1e15 ? (uint64_t) 1e15 : (uint64_t) d;
        } else if (json_is_string(v)) {
                const char *s = json_string_value(v);

                if (!*s)
                        return -EINVAL;
                for (; *s; s++) {
                        if (*s < '0' || *s > '9')
                                return -EINVAL;
                        if (n < UINT64_C(1000000000000000)) /* saturate instead of overflowing */
                                n = n * 10 + (uint64_t) (*s - '0');
                }
        } else
                return -EINVAL;
        *ret = n;
        return 0;
}

static usec_t seconds_to_usec_capped(uint64_t s, usec_t max) {
        return s >= max / USEC_PER_SEC ? max : s * USEC_PER_SEC;
}

static const char *json_get_string(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static json_t *answer_load(const char *body, size_t len) {
        json_error_t error; /* its text quotes the body: never used */
        json_t *j;

        if (!body || len == 0)
                return NULL;
        j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
        if (j && !json_is_object(j)) {
                json_decref(j);
                return NULL;
        }
        return j;
}

static int error_set(AadError *e, const char *what) {
        free(e->error);
        e->error = strdup(what);
        return e->error ? 0 : -ENOMEM;
}

static long error_code_from_description(const char *d) {
        const char *p = d ? strstr(d, "AADSTS") : NULL;
        long code = 0;

        if (!p)
                return 0;
        for (p += 6; *p >= '0' && *p <= '9' && code < 100000000; p++)
                code = code * 10 + (*p - '0');
        return code;
}

/* Fills e from an AAD error body. Returns true when it had an "error" member at all. */
static bool error_from_json(json_t *j, AadError *e) {
        json_t *v = json_object_get(j, "error"), *codes;
        const char *d;

        if (!v)
                return false;
        e->error = string_if_plain(json_string_value(v), AAD_ERROR_MAX, char_is_error_code);
        if (!e->error)
                (void) error_set(e, "malformed error answer");

        d = json_get_string(j, "error_description");
        if (d)
                e->description = description_for_log(d, json_string_length(json_object_get(j, "error_description")));
        e->correlation_id = string_if_plain(json_get_string(j, "correlation_id"), AAD_ID_MAX, char_is_id);
        e->trace_id = string_if_plain(json_get_string(j, "trace_id"), AAD_ID_MAX, char_is_id);

        e->suberror = string_if_plain(json_get_string(j, "suberror"), AAD_ERROR_MAX, char_is_error_code);
        /* A claims challenge is JSON that goes back to Azure AD as it came; it names
         * policies, never a secret, but keep it to one printable object of sane size. */
        d = json_get_string(j, "claims");
        if (d && d[0] == '{')
                e->claims = string_if_plain(d, AAD_CLAIMS_MAX, char_is_visible_or_space);

        codes = json_object_get(j, "error_codes");
        v = json_is_array(codes) ? json_array_get(codes, 0) : NULL;
        if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 1000000000)
                e->error_code = (long) json_integer_value(v);
        else
                e->error_code = error_code_from_description(e->description);
        return true;
}

static const struct {
        const char *error;
        AadOutcome outcome;
} error_table[] = {
        /* RFC 8628 device flow */
        { "authorization_pending", AAD_PENDING },
        { "slow_down", AAD_SLOW_DOWN },
        { "authorization_declined", AAD_DECLINED },
        { "access_denied", AAD_DECLINED },
        { "expired_token", AAD_CODE_EXPIRED },
        { "bad_verification_code", AAD_CODE_EXPIRED },
        /* a person must sign in again */
        { "invalid_grant", AAD_NEEDS_LOGIN },
        { "interaction_required", AAD_NEEDS_LOGIN },
        { "consent_required", AAD_NEEDS_LOGIN },
        { "login_required", AAD_NEEDS_LOGIN },
        /* the profile is wrong: retrying cannot help */
        { "invalid_client", AAD_CONFIG_ERROR },
        { "unauthorized_client", AAD_CONFIG_ERROR },
        { "invalid_scope", AAD_CONFIG_ERROR },
        { "invalid_request", AAD_CONFIG_ERROR },
        { "invalid_tenant", AAD_CONFIG_ERROR },
        { "invalid_resource", AAD_CONFIG_ERROR },
        { "unsupported_grant_type", AAD_CONFIG_ERROR },
        { "unsupported_response_type", AAD_CONFIG_ERROR },
        /* the service's own trouble */
        { "temporarily_unavailable", AAD_TRANSIENT },
        { "server_error", AAD_TRANSIENT },
};

static AadOutcome error_classify(const AadError *e) {
        /* Tenant not found, client not in tenant: whatever error word comes with them. */
        if (e->error_code == 90002 || e->error_code == 700016)
                return AAD_CONFIG_ERROR;
        for (size_t i = 0; i < ELEMENTSOF(error_table); i++)
                if (e->error && strcmp(e->error, error_table[i].error) == 0)
                        return error_table[i].outcome;
        /* An error we do not know: retrying with a capped backoff costs little, giving up
         * on a token that might still be had costs a person a sign-in. */
        return AAD_TRANSIENT;
}

/* The part both endpoints share: is this an answer to use, and if not, what does it mean?
 * On AAD_OK, *ret_json holds the document. */
static AadOutcome answer_classify(long status, const char *body, size_t len, json_t **ret_json, AadError *e) {
        _cleanup_(json_wipe_and_decrefp) json_t *j = NULL;
        bool has_error;

        if (status <= 0)
                return error_set(e, "no answer"), AAD_TRANSIENT;
        if (len > AAD_ANSWER_MAX)
                return error_set(e, "answer too large"), AAD_TRANSIENT;

        j = answer_load(body, len);
        has_error = j && error_from_json(j, e);

        if (status >= 200 && status < 300) {
                if (!j)
                        return error_set(e, "answer is not JSON"), AAD_TRANSIENT;
                if (has_error)
                        return error_classify(e);
                *ret_json = TAKE_PTR(j);
                return AAD_OK;
        }
        if (status == 429 || status >= 500) {
                if (!has_error)
                        (void) error_set(e, status == 429 ? "too many requests" : "server error");
                return AAD_TRANSIENT;
        }
        if (status >= 300 && status < 400)
                return error_set(e, "unexpected redirect"), AAD_TRANSIENT;
        if (!j)
                return error_set(e, "answer is not JSON"), AAD_TRANSIENT;
        if (!has_error)
                return error_set(e, "error answer without an error code"), AAD_TRANSIENT;
        return error_classify(e);
}

/* ---- answers ------------------------------------------------------------------------------- */

static bool token_is_plain(const char *s, size_t len) {
        if (len == 0 || len > AAD_TOKEN_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!char_is_visible((unsigned char) s[i]))
                        return false;
        return true;
}

static AadOutcome token_from_json(json_t *j, AadToken *t, AadError *e) {
        json_t *at = json_object_get(j, "access_token"), *rt = json_object_get(j, "refresh_token");
        uint64_t expires_in, refresh_in = 0;

        if (!json_is_string(at))
                return error_set(e, "answer has no access_token"), AAD_TRANSIENT;
        if (!token_is_plain(json_string_value(at), json_string_length(at)))
                return error_set(e, "answer has a malformed access_token"), AAD_TRANSIENT;
        if (json_get_seconds(j, "expires_in", &expires_in) < 0 || expires_in == 0)
                return error_set(e, "answer has no valid expires_in"), AAD_TRANSIENT;
        if (rt && !(json_is_string(rt) && token_is_plain(json_string_value(rt), json_string_length(rt))))
                return error_set(e, "answer has a malformed refresh_token"), AAD_TRANSIENT;
        (void) json_get_seconds(j, "refresh_in", &refresh_in); /* a hint: ignored when malformed */

        t->expires_in = seconds_to_usec_capped(expires_in, AAD_TOKEN_LIFETIME_MAX);
        t->refresh_in = MIN(seconds_to_usec_capped(refresh_in, AAD_TOKEN_LIFETIME_MAX), t->expires_in);
        t->access_token = secret_new(json_string_value(at), json_string_length(at));
        if (!t->access_token)
                return error_set(e, "out of memory"), AAD_TRANSIENT;
        if (rt) {
                t->refresh_token = secret_new(json_string_value(rt), json_string_length(rt));
                if (!t->refresh_token)
                        return error_set(e, "out of memory"), AAD_TRANSIENT;
        }
        return AAD_OK;
}

AadOutcome aad_parse_token_answer(long http_status, const char *body, size_t len, AadToken *ret_token,
                                  AadError *reterr_error) {
        _cleanup_(json_wipe_and_decrefp) json_t *j = NULL;
        _cleanup_(aad_token_clear) AadToken t = {};
        _cleanup_(aad_error_clear) AadError e = {};
        AadOutcome o;

        o = answer_classify(http_status, body, len, &j, &e);
        if (o == AAD_OK)
                o = token_from_json(j, &t, &e);

        if (o == AAD_OK) {
                if (ret_token) {
                        *ret_token = t;
                        t = (AadToken) {};
                }
        } else if (reterr_error) {
                *reterr_error = e;
                e = (AadError) {};
        }
        return o;
}

static bool char_is_message(unsigned char c) {
        return !char_is_control(c);
}

static AadOutcome device_code_from_json(json_t *j, AadDeviceCode *d, AadError *e) {
        json_t *dc = json_object_get(j, "device_code");
        const char *uri = json_get_string(j, "verification_uri"), *message;
        uint64_t expires_in, interval;
        int r;

        if (!json_is_string(dc) || !token_is_plain(json_string_value(dc), json_string_length(dc)))
                return error_set(e, "answer has no valid device_code"), AAD_TRANSIENT;
        d->user_code = string_if_plain(json_get_string(j, "user_code"), AAD_USER_CODE_MAX, char_is_visible);
        if (!d->user_code || strcmp(d->user_code, json_string_value(dc)) == 0)
                return error_set(e, "answer has no valid user_code"), AAD_TRANSIENT;
        if (!uri)
                uri = json_get_string(j, "verification_url"); /* the v1.0 endpoint's spelling */
        d->verification_uri = string_if_plain(uri, AAD_URI_MAX, char_is_visible);
        if (!d->verification_uri || strstr(d->verification_uri, json_string_value(dc)) ||
            !(string_has_prefix(d->verification_uri, "https://") || string_has_prefix(d->verification_uri, "http://")))
                return error_set(e, "answer has no valid verification_uri"), AAD_TRANSIENT;

        r = json_get_seconds(j, "expires_in", &expires_in);
        if (r == -ENOENT)
                d->expires_in = AAD_DEVICE_EXPIRES_DEFAULT;
        else if (r < 0 || expires_in == 0)
                return error_set(e, "answer has no valid expires_in"), AAD_TRANSIENT;
        else
                d->expires_in = seconds_to_usec_capped(expires_in, AAD_DEVICE_EXPIRES_MAX);

        r = json_get_seconds(j, "interval", &interval);
        if (r == -ENOENT || (r >= 0 && interval == 0))
                d->interval = AAD_DEFAULT_INTERVAL_SEC * USEC_PER_SEC;
        else if (r < 0)
                return error_set(e, "answer has no valid interval"), AAD_TRANSIENT;
        else
                d->interval = seconds_to_usec_capped(interval, AAD_INTERVAL_MAX);

        /* The message is shown and logged: keep AAD's words unless they carry the device code. */
        message = json_get_string(j, "message");
        d->message = string_if_plain(message, AAD_MESSAGE_MAX, char_is_message);
        if (d->message && strstr(d->message, json_string_value(dc))) {
                free(d->message);
                d->message = NULL;
        }
        if (!d->message &&
            asprintf(&d->message,
                     "To sign in, use a web browser to open the page %s and enter the code %s to authenticate.",
                     d->verification_uri, d->user_code) < 0) {
                d->message = NULL;
                return error_set(e, "out of memory"), AAD_TRANSIENT;
        }

        d->device_code = secret_new(json_string_value(dc), json_string_length(dc));
        if (!d->device_code)
                return error_set(e, "out of memory"), AAD_TRANSIENT;
        return AAD_OK;
}

AadOutcome aad_parse_device_code_answer(long http_status, const char *body, size_t len, AadDeviceCode *ret_code,
                                        AadError *reterr_error) {
        _cleanup_(json_wipe_and_decrefp) json_t *j = NULL;
        _cleanup_(aad_device_code_clear) AadDeviceCode d = {};
        _cleanup_(aad_error_clear) AadError e = {};
        AadOutcome o;

        o = answer_classify(http_status, body, len, &j, &e);
        if (o == AAD_OK)
                o = device_code_from_json(j, &d, &e);

        if (o == AAD_OK) {
                if (ret_code) {
                        *ret_code = d;
                        d = (AadDeviceCode) {};
                }
        } else if (reterr_error) {
                *reterr_error = e;
                e = (AadError) {};
        }
        return o;
}

/* ---- managed identity ---------------------------------------------------------------------- */

static AadOutcome msi_error_classify(long status, json_t *j, AadError *e) {
        const char *message;

        if (j && !error_from_json(j, e)) {
                /* App Service: {"statusCode": 400, "message": "..."} */
                message = json_get_string(j, "message");
                if (message)
                        e->description = description_for_log(message, strlen(message));
                e->correlation_id = string_if_plain(json_get_string(j, "correlationId"), AAD_ID_MAX, char_is_id);
                (void) error_set(e, status == 401 || status == 403 ? "unauthorized" : "invalid_request");
        } else if (!j)
                (void) error_set(e, status == 429   ? "too many requests"
                                    : status >= 500 ? "server error"
                                                    : "answer is not JSON");
        /* IMDS: 404 while an identity is being assigned, 410 while it restarts, 429 and 5xx
         * under load: azure-identity and MSAL retry all of them. */
        if (status == 404 || status == 410 || status == 429 || status >= 500)
                return AAD_TRANSIENT;
        if (!j)
                return AAD_TRANSIENT;
        return AAD_CONFIG_ERROR;
}

AadOutcome aad_parse_msi_answer(long http_status, const char *body, size_t len, usec_t now, AadToken *ret_token,
                                AadError *ret_error) {
        _cleanup_(json_wipe_and_decrefp) json_t *j = NULL;
        _cleanup_(aad_token_clear) AadToken t = {};
        _cleanup_(aad_error_clear) AadError e = {};
        AadOutcome o = AAD_OK;
        uint64_t expires_in = 0, expires_on = 0;
        json_t *at;

        if (http_status <= 0)
                o = (error_set(&e, "no answer"), AAD_TRANSIENT);
        else if (len > AAD_ANSWER_MAX)
                o = (error_set(&e, "answer too large"), AAD_TRANSIENT);
        else {
                j = answer_load(body, len);
                if (http_status < 200 || http_status >= 300)
                        o = msi_error_classify(http_status, j, &e);
                else if (!j)
                        o = (error_set(&e, "answer is not JSON"), AAD_TRANSIENT);
        }

        if (o == AAD_OK) {
                at = json_object_get(j, "access_token");
                if (!json_is_string(at) || !token_is_plain(json_string_value(at), json_string_length(at)))
                        o = (error_set(&e, "answer has no valid access_token"), AAD_TRANSIENT);
                else if (json_get_seconds(j, "expires_in", &expires_in) >= 0 && expires_in > 0)
                        t.expires_in = seconds_to_usec_capped(expires_in, AAD_TOKEN_LIFETIME_MAX);
                else if (json_get_seconds(j, "expires_on", &expires_on) >= 0 && expires_on > now / USEC_PER_SEC)
                        t.expires_in = seconds_to_usec_capped(expires_on - now / USEC_PER_SEC, AAD_TOKEN_LIFETIME_MAX);
                else
                        o = (error_set(&e, "answer has no valid expires_in or expires_on"), AAD_TRANSIENT);
                if (o == AAD_OK) {
                        t.access_token = secret_new(json_string_value(at), json_string_length(at));
                        if (!t.access_token)
                                o = (error_set(&e, "out of memory"), AAD_TRANSIENT);
                }
        }

        if (o == AAD_OK) {
                if (ret_token) {
                        *ret_token = t;
                        t = (AadToken) {};
                }
        } else if (ret_error) {
                *ret_error = e;
                e = (AadError) {};
        }
        return o;
}
