/* Fuzzes the classification of Azure AD answers: the first two bytes pick the HTTP status, the
 * rest is the body. Whatever arrives, a usable token or device code comes with everything the
 * daemon relies on, and what may be logged carries no control characters and nothing long
 * enough to be a token. Also Retry-After, on a NUL-terminated copy. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "idp/aad.h"

#define NOW ((time_t) 1700000000) /* Tue, 14 Nov 2023 22:13:20 GMT */
#define RETRY_AFTER_MAX ((usec_t) 366 * 24 * 3600 * USEC_PER_SEC)
#define REDACT_RUN 40 /* aad.c redacts token-like runs this long */

static bool is_visible(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

static bool is_token_like(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~+/=", c);
}

/* Text that may reach a log line. In free text (the description) anything as long as a token
 * must have been redacted; the other fields are short by construction. */
static void check_loggable(const char *s, size_t max, bool free_text) {
        size_t run = 0;

        if (!s)
                return;
        FUZZ_CHECK(strlen(s) <= max);
        FUZZ_CHECK(!fuzz_has_control_chars(s));
        for (; *s && free_text; s++) {
                run = is_token_like((unsigned char) *s) ? run + 1 : 0;
                FUZZ_CHECK(run < REDACT_RUN);
        }
}

static void check_error(const AadError *e) {
        FUZZ_CHECK(e->error);
        check_loggable(e->error, 64, false);
        check_loggable(e->description, 300, true);
        check_loggable(e->correlation_id, 40, false);
        check_loggable(e->trace_id, 40, false);
        FUZZ_CHECK(e->error_code >= 0);
}

static bool error_is_empty(const AadError *e) {
        return !e->error && !e->description && !e->correlation_id && !e->trace_id && e->error_code == 0;
}

static void check_token_answer(long status, const char *body, size_t len, bool null_outputs) {
        AadToken t = {};
        AadError e = {};
        AadOutcome o;

        if (null_outputs) {
                (void) aad_parse_token_answer(status, body, len, NULL, NULL);
                return;
        }
        o = aad_parse_token_answer(status, body, len, &t, &e);
        FUZZ_CHECK(o >= AAD_OK && o <= AAD_TRANSIENT);
        FUZZ_CHECK(strcmp(aad_outcome_to_string(o), "unknown") != 0);
        if (o == AAD_OK) {
                FUZZ_CHECK(status >= 200 && status < 300);
                FUZZ_CHECK(t.access_token && secret_len(t.access_token) > 0);
                FUZZ_CHECK(is_visible(secret_reveal(t.access_token), secret_len(t.access_token)));
                FUZZ_CHECK(!t.refresh_token ||
                           (secret_len(t.refresh_token) > 0 &&
                            is_visible(secret_reveal(t.refresh_token), secret_len(t.refresh_token))));
                FUZZ_CHECK(t.expires_in > 0 && t.expires_in <= 48 * USEC_PER_HOUR);
                FUZZ_CHECK(t.refresh_in <= t.expires_in);
                FUZZ_CHECK(error_is_empty(&e));
        } else {
                FUZZ_CHECK(!t.access_token && !t.refresh_token);
                check_error(&e);
        }
        aad_token_clear(&t);
        aad_error_clear(&e);
}

static void check_device_code_answer(long status, const char *body, size_t len, bool null_outputs) {
        AadDeviceCode d = {};
        AadError e = {};
        AadOutcome o;

        if (null_outputs) {
                (void) aad_parse_device_code_answer(status, body, len, NULL, NULL);
                return;
        }
        o = aad_parse_device_code_answer(status, body, len, &d, &e);
        FUZZ_CHECK(o >= AAD_OK && o <= AAD_TRANSIENT);
        if (o == AAD_OK) {
                const char *code;

                FUZZ_CHECK(d.device_code && secret_len(d.device_code) > 0);
                code = secret_reveal(d.device_code);
                FUZZ_CHECK(is_visible(code, secret_len(d.device_code)));
                FUZZ_CHECK(d.user_code && *d.user_code && strlen(d.user_code) <= 32);
                FUZZ_CHECK(is_visible(d.user_code, strlen(d.user_code)));
                FUZZ_CHECK(d.verification_uri);
                FUZZ_CHECK(strncmp(d.verification_uri, "https://", 8) == 0 ||
                           strncmp(d.verification_uri, "http://", 7) == 0);
                /* Shown and logged: never the device code. (A device code shorter than a user
                 * code may be part of one, or of the message's own words; real ones are ~100.) */
                FUZZ_CHECK(d.message && *d.message && !fuzz_has_control_chars(d.message));
                FUZZ_CHECK(secret_len(d.device_code) <= 32 || !strstr(d.message, code));
                FUZZ_CHECK(!strstr(d.verification_uri, code));
                FUZZ_CHECK(strcmp(d.user_code, code) != 0);
                FUZZ_CHECK(d.expires_in > 0 && d.expires_in <= USEC_PER_HOUR);
                FUZZ_CHECK(d.interval > 0 && d.interval <= 5 * USEC_PER_MINUTE);
                FUZZ_CHECK(error_is_empty(&e));
        } else {
                FUZZ_CHECK(!d.device_code && !d.user_code && !d.verification_uri && !d.message);
                check_error(&e);
        }
        aad_device_code_clear(&d);
        aad_error_clear(&e);
}

/* A managed-identity answer (IMDS, App Service, Arc): string-typed numbers, expires_on. */
static void check_msi_answer(long status, const char *body, size_t len) {
        AadToken t = {};
        AadError e = {};
        AadOutcome o;

        o = aad_parse_msi_answer(status, body, len, (usec_t) NOW * USEC_PER_SEC, &t, &e);
        FUZZ_CHECK(o == AAD_OK || o == AAD_CONFIG_ERROR || o == AAD_TRANSIENT);
        if (o == AAD_OK) {
                FUZZ_CHECK(status >= 200 && status < 300);
                FUZZ_CHECK(t.access_token && is_visible(secret_reveal(t.access_token), secret_len(t.access_token)));
                FUZZ_CHECK(!t.refresh_token);
                FUZZ_CHECK(t.expires_in > 0 && t.expires_in <= 48 * USEC_PER_HOUR);
                FUZZ_CHECK(error_is_empty(&e));
        } else {
                FUZZ_CHECK(!t.access_token);
                check_error(&e);
        }
        aad_token_clear(&t);
        aad_error_clear(&e);
}

/* The seconds glibc's strptime()/timegm() make of an IMF-fixdate or asctime date, or -1. */
static int64_t reference_date(const char *v) {
        static const char *const formats[] = { "%a, %d %b %Y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y" };

        for (size_t i = 0; i < ELEMENTSOF(formats); i++) {
                struct tm tm = {};
                const char *end = strptime(v, formats[i], &tm);

                if (end && *end == 0 && tm.tm_sec < 60 && tm.tm_year >= 70 && tm.tm_year < 8100)
                        return (int64_t) timegm(&tm);
        }
        return -1;
}

static void check_retry_after(const uint8_t *data, size_t size) {
        char *v = fuzz_strndup(data, size);
        const char *p = v;
        size_t n, digits;
        usec_t delay = USEC_INFINITY;
        int r;

        r = aad_parse_retry_after(v, NOW, &delay);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL);
                FUZZ_CHECK(delay == USEC_INFINITY);
                free(v);
                return;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(delay <= RETRY_AFTER_MAX && delay % USEC_PER_SEC == 0);

        /* Trimmed as aad.c trims, then compared with an independent reading. */
        p += strspn(p, " \t");
        n = strlen(p);
        while (n > 0 && strchr(" \t\r\n", p[n - 1]))
                n--;
        digits = strspn(p, "0123456789");
        if (digits == n) {
                usec_t want = 0;

                for (size_t i = 0; i < n && want < RETRY_AFTER_MAX; i++)
                        want = want * 10 + (usec_t) (p[i] - '0') * USEC_PER_SEC;
                FUZZ_CHECK(delay == (want < RETRY_AFTER_MAX ? want : RETRY_AFTER_MAX));
        } else {
                char *date = strndup(p, n);
                int64_t when;

                FUZZ_CHECK(date);
                when = reference_date(date);
                if (when >= 0) {
                        int64_t d = when > NOW ? when - NOW : 0;
                        usec_t want = (usec_t) d * USEC_PER_SEC;

                        FUZZ_CHECK(delay == (want < RETRY_AFTER_MAX ? want : RETRY_AFTER_MAX));
                }
                free(date);
        }
        free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        long status;
        const char *body;
        size_t len;

        if (size < 2)
                return 0;
        /* 0 (no answer) up to 599: every class of status. */
        status = (long) (((unsigned) data[0] << 8 | data[1]) % 600);
        body = (const char *) data + 2;
        len = size - 2;

        check_token_answer(status, body, len, data[0] & 0x80);
        check_device_code_answer(status, body, len, data[0] & 0x80);
        check_msi_answer(status, body, len);
        check_retry_after(data + 2, len);
        return 0;
}
