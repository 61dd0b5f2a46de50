/* Tests for the AAD protocol module: request bodies, answer classification, safe errors, Retry-After. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/secret.h"
#include "idp/aad.h"
#include "idp/credential.h"
#include "shared/config.h"
#include "testlib.h"

#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define REFRESH_TOKEN                                                                                 \
        "0.AXYAv4j5cvGGr0GRqy180BHbR_jyuoAZCPhOtKjnvn_G2nzxAF8.AgABAAEAAAD--DLA3VO7QrddgJg7WevrAgDs_" \
        "wUA9P_2Wm9vYmFyLW5vdC1hLXJlYWwtdG9rZW4"
#define ACCESS_TOKEN                                                                                       \
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ1cG4iOiJhbGljZUBjb250b3NvLmNvbSIsImV4cCI6MTcwMDAwMDAwMH0" \
        ".c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
#define NOW_FOR_MSI (1700000000 * USEC_PER_SEC)
#define DEVICE_CODE "DAQABAAEAAAD--DLA3VO7QrddgJg7WevrNX9pZ1ZhVUYwV2lWbDl4RUhDTHNPVGQ"

static ProfileConfig profile = {
        .name = (char *) "default",
        .tenant = (char *) TENANT,
        .authority_host = (char *) "https://login.microsoftonline.com",
        .client_id = (char *) "80faf920-1908-4b52-b5ef-a8e7bedfc67a",
        .server_id = (char *) "6dae42f8-4368-4678-94ff-3960e28e3630",
};

/* An error body as AAD writes it (\r\n between the parts of error_description). */
static char *aad_error_body(const char *error, long code, const char *text) {
        char *s;

        ck_assert_int_ge(asprintf(&s,
                                  "{\"error\":\"%s\",\"error_description\":\"AADSTS%ld: %s\\r\\n"
                                  "Trace ID: 0b4cb0f4-8a3e-4e7e-9a5b-6c1f0e2d3a00\\r\\n"
                                  "Correlation ID: 5e0b2c8a-7f0e-4c3b-9d43-2f1a7c9b1e11\\r\\n"
                                  "Timestamp: 2024-05-01 10:00:00Z\",\"error_codes\":[%ld],"
                                  "\"timestamp\":\"2024-05-01 10:00:00Z\","
                                  "\"trace_id\":\"0b4cb0f4-8a3e-4e7e-9a5b-6c1f0e2d3a00\","
                                  "\"correlation_id\":\"5e0b2c8a-7f0e-4c3b-9d43-2f1a7c9b1e11\","
                                  "\"error_uri\":\"https://login.microsoftonline.com/error?code=%ld\"}",
                                  error, code, text, code, code),
                         0);
        return s;
}

static AadOutcome token_answer(long status, const char *body, AadToken *t, AadError *e) {
        return aad_parse_token_answer(status, body, body ? strlen(body) : 0, t, e);
}

/* No window of 12 bytes of secret (starting every stride bytes) appears in s. */
static void assert_no_piece_of_stride(const char *s, const char *secret, size_t stride) {
        size_t n = strlen(secret);

        if (!s)
                return;
        for (size_t i = 0; i + 12 <= n; i += stride) {
                char piece[13];

                memcpy(piece, secret + i, 12);
                piece[12] = 0;
                ck_assert_msg(!strstr(s, piece), "secret piece '%s' leaked into '%s'", piece, s);
        }
}

static void assert_error_safe_stride(const AadError *e, const char *secret, size_t stride) {
        assert_no_piece_of_stride(e->error, secret, stride);
        assert_no_piece_of_stride(e->description, secret, stride);
        assert_no_piece_of_stride(e->correlation_id, secret, stride);
        assert_no_piece_of_stride(e->trace_id, secret, stride);
}

static void assert_error_safe(const AadError *e, const char *secret) {
        assert_error_safe_stride(e, secret, 1);
}

START_TEST(test_imds_retry_delay) {
        ck_assert_uint_eq(credential_imds_retry_delay(0, 0), 800 * USEC_PER_MSEC);
        ck_assert_uint_eq(credential_imds_retry_delay(1, 0), 1600 * USEC_PER_MSEC);
        ck_assert_uint_eq(credential_imds_retry_delay(2, 0), 3200 * USEC_PER_MSEC);
        ck_assert_uint_eq(credential_imds_retry_delay(3, 0), USEC_INFINITY);
        /* a Retry-After within the call's patience is honoured, a longer one is the schedule's */
        ck_assert_uint_eq(credential_imds_retry_delay(0, 2 * USEC_PER_SEC), 2 * USEC_PER_SEC);
        ck_assert_uint_eq(credential_imds_retry_delay(0, 30 * USEC_PER_SEC), USEC_INFINITY);
}
END_TEST

START_TEST(test_urls) {
        _cleanup_free_ char *dc = aad_devicecode_url(&profile), *tok = aad_token_url(&profile), *odd = NULL;
        ProfileConfig p = profile;

        ck_assert_str_eq(dc, "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/devicecode");
        ck_assert_str_eq(tok, "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token");
        p.tenant = (char *) "contoso.onmicrosoft.com/../x y";
        p.authority_host = (char *) "https://127.0.0.1:8443";
        odd = aad_token_url(&p);
        ck_assert_str_eq(odd, "https://127.0.0.1:8443/contoso.onmicrosoft.com%2F..%2Fx%20y/oauth2/v2.0/token");
}
END_TEST

START_TEST(test_bodies) {
        _cleanup_free_ char *dc = NULL;
        _cleanup_secret_ Secret *poll = NULL, *refresh = NULL, *device = secret_new_string(DEVICE_CODE),
                                *rt = secret_new_string("0.AX+y/z==&a b%c");

        ck_assert_int_eq(aad_devicecode_body(&profile, &dc), 0);
        ck_assert_str_eq(dc,
                         "client_id=80faf920-1908-4b52-b5ef-a8e7bedfc67a"
                         "&scope=6dae42f8-4368-4678-94ff-3960e28e3630%2F.default%20openid%20profile%20offline_access");

        ck_assert_int_eq(aad_device_token_body(&profile, device, &poll), 0);
        ck_assert_str_eq(secret_reveal(poll), "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
                                              "&client_id=80faf920-1908-4b52-b5ef-a8e7bedfc67a"
                                              "&device_code=" DEVICE_CODE "&client_info=1");
        ck_assert_uint_eq(secret_len(poll), strlen(secret_reveal(poll)));

        ck_assert_int_eq(aad_refresh_body(&profile, rt, &refresh), 0);
        ck_assert_str_eq(secret_reveal(refresh),
                         "grant_type=refresh_token&client_id=80faf920-1908-4b52-b5ef-a8e7bedfc67a"
                         "&refresh_token=0.AX%2By%2Fz%3D%3D%26a%20b%25c"
                         "&scope=6dae42f8-4368-4678-94ff-3960e28e3630%2F.default%20openid%20profile%20offline_access"
                         "&client_info=1");

        ck_assert_int_eq(aad_refresh_body(&profile, NULL, &refresh), -EINVAL);
        ck_assert_int_eq(aad_device_token_body(&profile, NULL, &poll), -EINVAL);
}
END_TEST

START_TEST(test_token_ok) {
        AadToken t = {};
        AadError e = {};
        const char *body = "{\"token_type\":\"Bearer\",\"scope\":\"6dae42f8-4368-4678-94ff-3960e28e3630/user.read\","
                           "\"expires_in\":4415,\"ext_expires_in\":4415,\"access_token\":\"" ACCESS_TOKEN "\","
                           "\"refresh_token\":\"" REFRESH_TOKEN "\",\"id_token\":\"eyJ.eyJ.sig\","
                           "\"client_info\":\"eyJ1aWQiOiJ4IiwidXRpZCI6InkifQ\"}";

        ck_assert_int_eq(token_answer(200, body, &t, &e), AAD_OK);
        ck_assert_str_eq(secret_reveal(t.access_token), ACCESS_TOKEN);
        ck_assert_str_eq(secret_reveal(t.refresh_token), REFRESH_TOKEN);
        ck_assert_uint_eq(t.expires_in, 4415 * USEC_PER_SEC);
        ck_assert_uint_eq(t.refresh_in, 0);
        ck_assert_ptr_null(e.error);
        aad_token_clear(&t);

        /* numbers as strings, refresh_in, no refresh token */
        body = "{\"token_type\":\"Bearer\",\"expires_in\":\"3599\",\"ext_expires_in\":\"3599\","
               "\"refresh_in\":\"1800\",\"access_token\":\"" ACCESS_TOKEN "\"}";
        ck_assert_int_eq(token_answer(200, body, &t, &e), AAD_OK);
        ck_assert_uint_eq(t.expires_in, 3599 * USEC_PER_SEC);
        ck_assert_uint_eq(t.refresh_in, 1800 * USEC_PER_SEC);
        ck_assert_ptr_null(t.refresh_token);
        aad_token_clear(&t);

        /* a real number, an absurd lifetime capped at two days, refresh_in never past expiry */
        body = "{\"expires_in\":1e300,\"refresh_in\":99999999999,\"access_token\":\"x.y.z\"}";
        ck_assert_int_eq(token_answer(200, body, &t, &e), AAD_OK);
        ck_assert_uint_eq(t.expires_in, 48 * USEC_PER_HOUR);
        ck_assert_uint_eq(t.refresh_in, 48 * USEC_PER_HOUR);
        aad_token_clear(&t);

        body = "{\"expires_in\":\"99999999999999999999999999\",\"refresh_in\":\"soon\",\"access_token\":\"x\"}";
        ck_assert_int_eq(token_answer(200, body, &t, &e), AAD_OK);
        ck_assert_uint_eq(t.expires_in, 48 * USEC_PER_HOUR);
        ck_assert_uint_eq(t.refresh_in, 0); /* a malformed hint is ignored */
        aad_token_clear(&t);

        /* both out-parameters may be NULL */
        ck_assert_int_eq(token_answer(200, body, NULL, NULL), AAD_OK);
}
END_TEST

static const struct {
        const char *error;
        long code;
        AadOutcome outcome;
} error_cases[] = {
        { "authorization_pending", 70016, AAD_PENDING },
        { "slow_down", 70016, AAD_SLOW_DOWN },
        { "authorization_declined", 70000, AAD_DECLINED },
        { "access_denied", 70000, AAD_DECLINED },
        { "expired_token", 70020, AAD_CODE_EXPIRED },
        { "expired_token", 70019, AAD_CODE_EXPIRED },
        { "bad_verification_code", 70018, AAD_CODE_EXPIRED },
        { "invalid_grant", 70008, AAD_NEEDS_LOGIN },
        { "invalid_grant", 700082, AAD_NEEDS_LOGIN },
        { "invalid_grant", 700084, AAD_NEEDS_LOGIN },
        { "invalid_grant", 70043, AAD_NEEDS_LOGIN },
        { "invalid_grant", 50173, AAD_NEEDS_LOGIN },
        { "invalid_grant", 50076, AAD_NEEDS_LOGIN },
        { "invalid_grant", 50079, AAD_NEEDS_LOGIN },
        { "invalid_grant", 50078, AAD_NEEDS_LOGIN },
        { "invalid_grant", 65001, AAD_NEEDS_LOGIN },
        { "invalid_grant", 50132, AAD_NEEDS_LOGIN },
        { "invalid_grant", 53003, AAD_NEEDS_LOGIN },
        { "invalid_grant", 50196, AAD_NEEDS_LOGIN },
        { "invalid_grant", 54005, AAD_NEEDS_LOGIN },
        { "interaction_required", 50076, AAD_NEEDS_LOGIN },
        { "consent_required", 65001, AAD_NEEDS_LOGIN },
        { "login_required", 50058, AAD_NEEDS_LOGIN },
        { "invalid_client", 7000218, AAD_CONFIG_ERROR },
        { "unauthorized_client", 700016, AAD_CONFIG_ERROR },
        { "invalid_scope", 70011, AAD_CONFIG_ERROR },
        { "invalid_request", 900144, AAD_CONFIG_ERROR },
        { "invalid_request", 90002, AAD_CONFIG_ERROR },
        { "invalid_tenant", 90002, AAD_CONFIG_ERROR },
        { "invalid_resource", 500011, AAD_CONFIG_ERROR },
        { "unsupported_grant_type", 70003, AAD_CONFIG_ERROR },
        { "something_new", 700016, AAD_CONFIG_ERROR }, /* the code decides */
        { "temporarily_unavailable", 90033, AAD_TRANSIENT },
        { "server_error", 50000, AAD_TRANSIENT },
        { "something_new", 12345, AAD_TRANSIENT },
};

START_TEST(test_error_classification) {
        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++) {
                _cleanup_free_ char *body = aad_error_body(error_cases[i].error, error_cases[i].code,
                                                           "Something the service says about it.");
                _cleanup_free_ char *want = NULL;
                AadToken t = {};
                AadError e = {};
                long status = strcmp(error_cases[i].error, "invalid_client") == 0 ? 401 : 400;

                ck_assert_msg(token_answer(status, body, &t, &e) == error_cases[i].outcome, "%s/%ld: %s",
                              error_cases[i].error, error_cases[i].code,
                              aad_outcome_to_string(token_answer(status, body, NULL, NULL)));
                ck_assert_ptr_null(t.access_token);
                ck_assert_str_eq(e.error, error_cases[i].error);
                ck_assert_int_eq(e.error_code, error_cases[i].code);
                ck_assert_int_ge(
                        asprintf(&want, "AADSTS%ld: Something the service says about it.", error_cases[i].code), 0);
                ck_assert_str_eq(e.description, want);
                ck_assert_str_eq(e.correlation_id, "5e0b2c8a-7f0e-4c3b-9d43-2f1a7c9b1e11");
                ck_assert_str_eq(e.trace_id, "0b4cb0f4-8a3e-4e7e-9a5b-6c1f0e2d3a00");
                aad_error_clear(&e);

                /* the same from the devicecode endpoint */
                ck_assert_int_eq(aad_parse_device_code_answer(status, body, strlen(body), NULL, &e),
                                 error_cases[i].outcome);
                ck_assert_str_eq(e.error, error_cases[i].error);
                aad_error_clear(&e);
        }
}
END_TEST

START_TEST(test_transient_answers) {
        _cleanup_free_ char *big = NULL, *unavailable = aad_error_body("temporarily_unavailable", 90033, "Busy.");
        _cleanup_free_ char *grant = aad_error_body("invalid_grant", 70008, "Expired.");
        static const struct {
                long status;
                const char *body;
                const char *error;
        } cases[] = {
                { 0, NULL, "no answer" },
                { 500, "<html><body>Internal Server Error</body></html>", "server error" },
                { 502, "", "server error" },
                { 503, "Service Unavailable", "server error" },
                { 429, "", "too many requests" },
                { 302, "", "unexpected redirect" },
                { 200, "<!DOCTYPE html><html><title>Hotel Wi-Fi</title></html>", "answer is not JSON" },
                { 200, "", "answer is not JSON" },
                { 200, "null", "answer is not JSON" },
                { 200, "[]", "answer is not JSON" },
                { 200, "\"access_token\"", "answer is not JSON" },
                { 200, "{\"token_type\": \"Bearer\", \"expires_in\": 3599,,,", "answer is not JSON" },
                { 200, "{\"token_type\": \"Bearer\", \"scope\": \"user.read\", \"expires_in\": 35",
                  "answer is not JSON" },
                { 200, "{\"expires_in\":1,\"expires_in\":2,\"access_token\":\"x\"}", "answer is not JSON" },
                { 200, "{\"expires_in\":99999999999999999999999,\"access_token\":\"x\"}", "answer is not JSON" },
                { 200, "{}", "answer has no access_token" },
                { 200, "{\"token_type\":\"Bearer\",\"expires_in\":3599}", "answer has no access_token" },
                { 200, "{\"access_token\":42,\"expires_in\":3599}", "answer has no access_token" },
                { 200, "{\"access_token\":\"\",\"expires_in\":3599}", "answer has a malformed access_token" },
                { 200, "{\"access_token\":\"a b\",\"expires_in\":3599}", "answer has a malformed access_token" },
                { 200, "{\"access_token\":\"a\\nb\",\"expires_in\":3599}", "answer has a malformed access_token" },
                { 200, "{\"access_token\":\"x\"}", "answer has no valid expires_in" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":0}", "answer has no valid expires_in" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":-5}", "answer has no valid expires_in" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":\"-5\"}", "answer has no valid expires_in" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":\"3599.5\"}", "answer has no valid expires_in" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":\"\"}", "answer has no valid expires_in" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":true}", "answer has no valid expires_in" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":null}", "answer has no valid expires_in" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":60,\"refresh_token\":7}",
                  "answer has a malformed refresh_token" },
                { 200, "{\"access_token\":\"x\",\"expires_in\":60,\"refresh_token\":\"\"}",
                  "answer has a malformed refresh_token" },
                { 400, "<html>Bad Request</html>", "answer is not JSON" },
                { 400, "{\"message\":\"bad\"}", "error answer without an error code" },
                { 400, "{\"error\":42}", "malformed error answer" },
                { 400, "{\"error\":\"invalid grant\"}", "malformed error answer" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                AadToken t = {};
                AadError e = {};

                ck_assert_msg(token_answer(cases[i].status, cases[i].body, &t, &e) == AAD_TRANSIENT, "case %zu: %s", i,
                              cases[i].body);
                ck_assert_ptr_null(t.access_token);
                ck_assert_str_eq(e.error, cases[i].error);
                aad_error_clear(&e);
        }

        /* An embedded NUL, and an answer larger than any AAD answer. */
        static const char nul[] = "{\"access_token\":\"x\0y\",\"expires_in\":5}";
        AadError e = {};

        ck_assert_int_eq(aad_parse_token_answer(200, nul, sizeof nul - 1, NULL, NULL), AAD_TRANSIENT);
        big = malloc(2 * 1024 * 1024 + 1);
        ck_assert_ptr_nonnull(big);
        memset(big, ' ', 2 * 1024 * 1024);
        memcpy(big, "{\"access_token\":\"x\",\"expires_in\":5}", 35);
        big[2 * 1024 * 1024] = 0;
        ck_assert_int_eq(aad_parse_token_answer(200, big, 35, NULL, NULL), AAD_OK); /* the same, small */
        ck_assert_int_eq(aad_parse_token_answer(200, big, strlen(big), NULL, &e), AAD_TRANSIENT);
        ck_assert_str_eq(e.error, "answer too large");
        aad_error_clear(&e);

        /* A JSON error with a 5xx or 429 is still transient, whatever it says. */
        ck_assert_int_eq(token_answer(503, unavailable, NULL, NULL), AAD_TRANSIENT);
        ck_assert_int_eq(token_answer(429, unavailable, NULL, NULL), AAD_TRANSIENT);
        ck_assert_int_eq(token_answer(500, grant, NULL, NULL), AAD_TRANSIENT);
        /* ... and an error inside a 200 is still that error. */
        ck_assert_int_eq(token_answer(200, grant, NULL, NULL), AAD_NEEDS_LOGIN);
}
END_TEST

/* Every prefix of a good answer is a cut-off answer: transient, never a crash or a token. */
START_TEST(test_truncations) {
        const char *body = "{\"token_type\":\"Bearer\",\"expires_in\":\"3599\",\"ext_expires_in\":3599,"
                           "\"access_token\":\"" ACCESS_TOKEN "\",\"refresh_token\":\"" REFRESH_TOKEN "\"}";
        size_t n = strlen(body);

        for (size_t i = 0; i < n; i++) {
                char *copy = strndup(body, i);
                AadError e = {};

                ck_assert_int_eq(aad_parse_token_answer(200, copy, i, NULL, &e), AAD_TRANSIENT);
                assert_error_safe(&e, ACCESS_TOKEN);
                assert_error_safe(&e, REFRESH_TOKEN);
                aad_error_clear(&e);
                ck_assert_int_eq(aad_parse_device_code_answer(200, copy, i, NULL, NULL), AAD_TRANSIENT);
                free(copy);
        }
        ck_assert_int_eq(aad_parse_token_answer(200, body, n, NULL, NULL), AAD_OK);
}
END_TEST

/* Random damage to good answers: whatever comes out is a whole answer or a clean refusal. */
START_TEST(test_mutations) {
        _cleanup_free_ char *err = aad_error_body("invalid_grant", 50173, "The provided grant has expired.");
        const char *bodies[] = {
                "{\"token_type\":\"Bearer\",\"expires_in\":\"3599\",\"refresh_in\":1800,"
                "\"access_token\":\"" ACCESS_TOKEN "\",\"refresh_token\":\"" REFRESH_TOKEN "\"}",
                "{\"user_code\":\"FQK5HW3UF\",\"device_code\":\"" DEVICE_CODE "\",\"verification_uri\":"
                "\"https://microsoft.com/devicelogin\",\"expires_in\":900,\"interval\":5,\"message\":\"Go.\"}",
                err,
        };
        static const char alphabet[] = "{}[]\",:\\0123456789eE.-+ tfnu\x01\x7f\xc3\xa9";
        uint64_t state = 42;

        for (int round = 0; round < 20000; round++) {
                const char *b = bodies[round % ELEMENTSOF(bodies)];
                size_t n = strlen(b);
                char *copy = malloc(n + 1);
                AadToken t = {};
                AadDeviceCode d = {};
                AadError e = {};
                AadOutcome o;

                ck_assert_ptr_nonnull(copy);
                memcpy(copy, b, n + 1);
                for (int k = 0; k < 1 + round % 4; k++) {
                        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
                        copy[(state >> 33) % n] = alphabet[(state >> 17) % (sizeof alphabet - 1)];
                }

                o = aad_parse_token_answer(200 + (long) (round % 3) * 200, copy, n, &t, &e);
                if (o == AAD_OK) {
                        ck_assert_ptr_nonnull(t.access_token);
                        ck_assert_uint_gt(t.expires_in, 0);
                        ck_assert_ptr_null(e.error);
                } else {
                        ck_assert_ptr_null(t.access_token);
                        assert_error_safe_stride(&e, ACCESS_TOKEN, 11);
                        assert_error_safe_stride(&e, REFRESH_TOKEN, 11);
                }
                aad_token_clear(&t);
                aad_error_clear(&e);

                o = aad_parse_device_code_answer(200, copy, n, &d, &e);
                if (o == AAD_OK) {
                        ck_assert_ptr_nonnull(d.device_code);
                        ck_assert_ptr_null(strstr(d.message, DEVICE_CODE));
                } else
                        assert_error_safe_stride(&e, DEVICE_CODE, 11);
                aad_device_code_clear(&d);
                aad_error_clear(&e);
                free(copy);
        }
}
END_TEST

START_TEST(test_error_text_is_safe) {
        AadError e = {};
        char *body;
        char longtext[2048];

        /* The first line only, without AAD's tail even when it is on the same line. */
        body = "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS50173: The provided grant has expired. "
               "Trace ID: 1 Correlation ID: 2 Timestamp: 3\",\"error_codes\":[\"50173\"]}";
        ck_assert_int_eq(token_answer(400, body, NULL, &e), AAD_NEEDS_LOGIN);
        ck_assert_str_eq(e.description, "AADSTS50173: The provided grant has expired.");
        ck_assert_int_eq(e.error_code, 50173); /* from the text when error_codes is odd */
        ck_assert_ptr_null(e.correlation_id);
        aad_error_clear(&e);

        /* Control characters become spaces: escape sequences cannot reach a terminal, and two
         * short runs cannot be joined into one unredacted token. */
        body = "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70008:\\u001b[31m red\\tand\\u0007 bell\","
               "\"correlation_id\":\"not a guid\\u001b\",\"trace_id\":\"0123-abcd\"}";
        ck_assert_int_eq(token_answer(400, body, NULL, &e), AAD_NEEDS_LOGIN);
        ck_assert_str_eq(e.description, "AADSTS70008: [31m red and  bell");
        ck_assert_ptr_null(e.correlation_id);
        ck_assert_str_eq(e.trace_id, "0123-abcd");
        aad_error_clear(&e);

        /* The fuzzer's finding: 23 token characters, DEL, 17 more must not come out as 40 in a row. */
        body = "{\"error\":\"\",\"error_description\":\"AADSTS5i-fact28insratxr\\u007f8-4368-4678-94ff-\"}";
        ck_assert_int_eq(token_answer(400, body, NULL, &e), AAD_TRANSIENT);
        ck_assert_ptr_nonnull(e.description);
        ck_assert_ptr_null(strstr(e.description, "xr8-4368"));
        aad_error_clear(&e);

        /* Capped at 300 bytes, on a UTF-8 boundary. */
        strcpy(longtext, "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70008: ");
        for (int i = 0; i < 200; i++)
                strcat(longtext, "\xc3\xa9 ");
        strcat(longtext, "\"}");
        ck_assert_int_eq(token_answer(400, longtext, NULL, &e), AAD_NEEDS_LOGIN);
        ck_assert_uint_le(strlen(e.description), 300);
        ck_assert_uint_ge(strlen(e.description), 297);
        ck_assert_int_ne((unsigned char) e.description[strlen(e.description) - 1], 0xc3);
        aad_error_clear(&e);

        /* A description that is nothing but a tail, or empty. */
        body = "{\"error\":\"invalid_grant\",\"error_description\":\"\\r\\nTrace ID: 1\"}";
        ck_assert_int_eq(token_answer(400, body, NULL, &e), AAD_NEEDS_LOGIN);
        ck_assert_ptr_null(e.description);
        aad_error_clear(&e);
}
END_TEST

/* template with every '@' replaced by value */
static char *fill_template(const char *template, const char *value) {
        size_t n = 1;
        char *out, *p;

        for (const char *t = template; *t; t++)
                n += *t == '@' ? strlen(value) : 1;
        out = p = malloc(n);
        ck_assert_ptr_nonnull(out);
        for (const char *t = template; *t; t++)
                p = *t == '@' ? stpcpy(p, value) : (*p = *t, p + 1);
        *p = 0;
        return out;
}

/* An AadError is logged as is: it must never carry a token or a device code, whatever the
 * answer put where. */
START_TEST(test_error_never_holds_a_secret) {
        const char *secrets[] = { ACCESS_TOKEN, REFRESH_TOKEN, DEVICE_CODE };
        const char *templates[] = {
                "{\"error\":\"invalid_grant\",\"access_token\":\"@\",\"refresh_token\":\"@\",\"device_code\":\"@\"}",
                "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS9002313: Invalid request: refresh_token '@' is malformed.\"}",
                "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS9002313: @\"}",
                "{\"error\":\"@\",\"error_description\":\"@\"}",
                "{\"error\":\"invalid_request\",\"correlation_id\":\"@\",\"trace_id\":\"@\"}",
                "{\"access_token\":\"@\",\"expires_in\":\"never\",\"refresh_token\":\"@\"}",
                "{\"access_token\":\"@\",\"refresh_token\":{\"t\":\"@\"},\"expires_in\":60}",
                "{\"device_code\":\"@\",\"user_code\":\"@\",\"verification_uri\":\"@\"}",
                "<html>@</html>",
        };

        for (size_t s = 0; s < ELEMENTSOF(secrets); s++)
                for (size_t i = 0; i < ELEMENTSOF(templates); i++)
                        for (long status = 200; status <= 400; status += 200) {
                                _cleanup_free_ char *body = NULL;
                                AadError e = {};

                                body = fill_template(templates[i], secrets[s]);
                                ck_assert_int_ne(token_answer(status, body, NULL, &e), AAD_OK);
                                assert_error_safe(&e, secrets[s]);
                                aad_error_clear(&e);
                                ck_assert_int_ne(aad_parse_device_code_answer(status, body, strlen(body), NULL, &e),
                                                 AAD_OK);
                                assert_error_safe(&e, secrets[s]);
                                aad_error_clear(&e);
                        }
}
END_TEST

START_TEST(test_device_code) {
        AadDeviceCode d = {};
        AadError e = {};
        const char *body =
                "{\"user_code\":\"FQK5HW3UF\",\"device_code\":\"" DEVICE_CODE "\","
                "\"verification_uri\":\"https://microsoft.com/devicelogin\",\"expires_in\":900,\"interval\":5,"
                "\"message\":\"To sign in, use a web browser to open the page https://microsoft.com/devicelogin "
                "and enter the code FQK5HW3UF to authenticate.\"}";

        ck_assert_int_eq(aad_parse_device_code_answer(200, body, strlen(body), &d, &e), AAD_OK);
        ck_assert_str_eq(secret_reveal(d.device_code), DEVICE_CODE);
        ck_assert_str_eq(d.user_code, "FQK5HW3UF");
        ck_assert_str_eq(d.verification_uri, "https://microsoft.com/devicelogin");
        ck_assert_str_eq(d.message, "To sign in, use a web browser to open the page https://microsoft.com/devicelogin "
                                    "and enter the code FQK5HW3UF to authenticate.");
        ck_assert_uint_eq(d.expires_in, 900 * USEC_PER_SEC);
        ck_assert_uint_eq(d.interval, 5 * USEC_PER_SEC);
        aad_device_code_clear(&d);

        /* strings for numbers, the v1.0 spelling, no message: one is made */
        body = "{\"user_code\":\"ABC\",\"device_code\":\"dc\",\"verification_url\":\"https://127.0.0.1/devicelogin\","
               "\"expires_in\":\"600\",\"interval\":\"2\"}";
        ck_assert_int_eq(aad_parse_device_code_answer(200, body, strlen(body), &d, &e), AAD_OK);
        ck_assert_str_eq(d.message, "To sign in, use a web browser to open the page https://127.0.0.1/devicelogin "
                                    "and enter the code ABC to authenticate.");
        ck_assert_uint_eq(d.expires_in, 600 * USEC_PER_SEC);
        ck_assert_uint_eq(d.interval, 2 * USEC_PER_SEC);
        aad_device_code_clear(&d);

        /* defaults: 15 min, every 5 s (also for interval 0); absurd values capped */
        body = "{\"user_code\":\"ABC\",\"device_code\":\"dc\",\"verification_uri\":\"https://x/\",\"interval\":0}";
        ck_assert_int_eq(aad_parse_device_code_answer(200, body, strlen(body), &d, &e), AAD_OK);
        ck_assert_uint_eq(d.expires_in, 900 * USEC_PER_SEC);
        ck_assert_uint_eq(d.interval, 5 * USEC_PER_SEC);
        aad_device_code_clear(&d);
        body = "{\"user_code\":\"ABC\",\"device_code\":\"dc\",\"verification_uri\":\"https://x/\","
               "\"interval\":86400,\"expires_in\":864000}";
        ck_assert_int_eq(aad_parse_device_code_answer(200, body, strlen(body), &d, &e), AAD_OK);
        ck_assert_uint_eq(d.expires_in, USEC_PER_HOUR);
        ck_assert_uint_eq(d.interval, 5 * USEC_PER_MINUTE);
        aad_device_code_clear(&d);

        /* a message that would show the device code is replaced */
        body = "{\"user_code\":\"ABC\",\"device_code\":\"" DEVICE_CODE "\",\"verification_uri\":\"https://x/\","
               "\"message\":\"Use code " DEVICE_CODE "\"}";
        ck_assert_int_eq(aad_parse_device_code_answer(200, body, strlen(body), &d, &e), AAD_OK);
        ck_assert_ptr_null(strstr(d.message, DEVICE_CODE));
        ck_assert_ptr_nonnull(strstr(d.message, "ABC"));
        aad_device_code_clear(&d);

        static const char *bad[] = {
                "{\"user_code\":\"ABC\",\"verification_uri\":\"https://x/\"}",
                "{\"user_code\":\"ABC\",\"device_code\":\"\",\"verification_uri\":\"https://x/\"}",
                "{\"device_code\":\"dc\",\"verification_uri\":\"https://x/\"}",
                "{\"user_code\":\"A\\u001bB\",\"device_code\":\"dc\",\"verification_uri\":\"https://x/\"}",
                "{\"user_code\":\"ABC\",\"device_code\":\"dc\"}",
                "{\"user_code\":\"ABC\",\"device_code\":\"dc\",\"verification_uri\":\"javascript:alert(1)\"}",
                "{\"user_code\":\"ABC\",\"device_code\":\"dc\",\"verification_uri\":\"https://x/\",\"expires_in\":0}",
                "{\"user_code\":\"ABC\",\"device_code\":\"dc\",\"verification_uri\":\"https://x/\",\"interval\":\"x\"}",
                "<html></html>",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                ck_assert_msg(aad_parse_device_code_answer(200, bad[i], strlen(bad[i]), &d, &e) == AAD_TRANSIENT, "%s",
                              bad[i]);
                ck_assert_ptr_null(d.device_code);
                ck_assert_ptr_nonnull(e.error);
                aad_error_clear(&e);
        }
}
END_TEST

static time_t utc(int y, int mon, int d, int h, int mi, int s) {
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s };
        return timegm(&tm);
}

START_TEST(test_retry_after) {
        time_t now = utc(2026, 11, 26, 10, 0, 0);
        usec_t v = 12345;

        ck_assert_int_eq(aad_parse_retry_after("120", now, &v), 0);
        ck_assert_uint_eq(v, 120 * USEC_PER_SEC);
        ck_assert_int_eq(aad_parse_retry_after(" 5\r\n", now, &v), 0);
        ck_assert_uint_eq(v, 5 * USEC_PER_SEC);
        ck_assert_int_eq(aad_parse_retry_after("0", now, &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(aad_parse_retry_after("99999999999999999999999", now, &v), 0);
        ck_assert_uint_eq(v, 366ULL * 24 * USEC_PER_HOUR);

        ck_assert_int_eq(aad_parse_retry_after("Thu, 26 Nov 2026 10:00:30 GMT", now, &v), 0);
        ck_assert_uint_eq(v, 30 * USEC_PER_SEC);
        ck_assert_int_eq(aad_parse_retry_after("Sat, 28 Nov 2026 10:00:00 GMT", now, &v), 0);
        ck_assert_uint_eq(v, 48 * USEC_PER_HOUR);
        ck_assert_int_eq(aad_parse_retry_after("Thu, 26 Nov 2026 09:59:00 GMT", now, &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(aad_parse_retry_after("Tue, 29 Feb 2028 00:00:00 GMT", utc(2028, 2, 28, 0, 0, 0), &v), 0);
        ck_assert_uint_eq(v, 24 * USEC_PER_HOUR);
        ck_assert_int_eq(aad_parse_retry_after("Wed, 01 Mar 2028 00:00:00 GMT", utc(2028, 2, 28, 0, 0, 0), &v), 0);
        ck_assert_uint_eq(v, 48 * USEC_PER_HOUR);
        ck_assert_int_eq(aad_parse_retry_after("Fri, 26 Nov 2027 10:00:00 GMT", now, &v), 0);
        ck_assert_uint_eq(v, 365 * 24 * USEC_PER_HOUR);
        ck_assert_int_eq(aad_parse_retry_after("Fri, 26 Nov 2100 10:00:00 GMT", now, &v), 0);
        ck_assert_uint_eq(v, 366 * 24 * USEC_PER_HOUR); /* capped */

        ck_assert_int_eq(aad_parse_retry_after("Thursday, 26-Nov-26 10:01:00 GMT", now, &v), 0);
        ck_assert_uint_eq(v, 60 * USEC_PER_SEC);
        /* two-digit years: 2076 is 50 years ahead, so still 2076; 77 is 1977 */
        ck_assert_int_eq(aad_parse_retry_after("Wednesday, 01-Jan-76 00:00:00 GMT", now, &v), 0);
        ck_assert_uint_eq(v, 366 * 24 * USEC_PER_HOUR); /* in the future: capped */
        ck_assert_int_eq(aad_parse_retry_after("Saturday, 02-Jan-99 00:00:00 GMT", utc(1999, 1, 1, 0, 0, 0), &v), 0);
        ck_assert_uint_eq(v, 24 * USEC_PER_HOUR);
        ck_assert_int_eq(aad_parse_retry_after("Saturday, 01-Jan-00 00:00:10 GMT", utc(1999, 12, 31, 23, 59, 50), &v),
                         0);
        ck_assert_uint_eq(v, 20 * USEC_PER_SEC); /* across the century */
        ck_assert_int_eq(aad_parse_retry_after("Friday, 01-Jan-77 00:00:00 GMT", now, &v), 0);
        ck_assert_uint_eq(v, 0);

        ck_assert_int_eq(aad_parse_retry_after("Thu Nov 26 10:00:10 2026", now, &v), 0);
        ck_assert_uint_eq(v, 10 * USEC_PER_SEC);
        ck_assert_int_eq(aad_parse_retry_after("Sun Nov  6 08:49:37 1994", now, &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(aad_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", utc(1994, 11, 6, 8, 49, 0), &v), 0);
        ck_assert_uint_eq(v, 37 * USEC_PER_SEC);

        v = 777;
        static const char *bad[] = {
                "",
                " ",
                "-5",
                "1.5",
                "5s",
                "abc",
                "+5",
                "Thu, 26 Nov 2026 10:00:30 UTC",
                "Thu, 26 Nov 2026 10:00:30",
                "Thu, 26 Nov 2026 10:00:30 GMT x",
                "Xyz, 26 Nov 2026 10:00:30 GMT",
                "Thu, 26 Foo 2026 10:00:30 GMT",
                "Thu, 30 Feb 2026 10:00:30 GMT",
                "Thu, 29 Feb 2026 10:00:30 GMT",
                "Thu, 26 Nov 2026 24:00:30 GMT",
                "Thu, 26 Nov 2026 10:60:30 GMT",
                "Thu, 00 Nov 2026 10:00:30 GMT",
                "Thu, 26 Nov 1969 10:00:30 GMT",
                "Thu, 26 Nov 2026 10:00:61 GMT",
                "Thu, 26-Nov-26 10:00:30 GMT",
                "Thursday, 26 Nov 2026 10:00:30 GMT",
                "Thu Nov 26 10:00:10",
                "Thu Nov 26 10:00:10 2026 GMT",
                "2026-11-26T10:00:30Z",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(aad_parse_retry_after(bad[i], now, &v) == -EINVAL, "accepted '%s'", bad[i]);
        ck_assert_int_eq(aad_parse_retry_after(NULL, now, &v), -EINVAL);
        ck_assert_uint_eq(v, 777); /* untouched on failure */
}
END_TEST

START_TEST(test_outcome_names) {
        ck_assert_str_eq(aad_outcome_to_string(AAD_OK), "ok");
        ck_assert_str_eq(aad_outcome_to_string(AAD_NEEDS_LOGIN), "needs_login");
        ck_assert_str_eq(aad_outcome_to_string(AAD_TRANSIENT), "transient");
        ck_assert_str_eq(aad_outcome_to_string((AadOutcome) 99), "unknown");
}
END_TEST

START_TEST(test_identity_bodies) {
        _cleanup_secret_ Secret *secret = secret_new_string("Fk8Q~a+b/c=&d"), *body = NULL,
                                *assertion = secret_new_string("eyJh.eyJi.c2ln"), *code = secret_new_string("1.A+/="),
                                *verifier = secret_new_string("v-erifier_~.0123456789012345678901234567890123");
        _cleanup_free_ char *url = NULL;
        ProfileConfig app = profile;

        app.client_id = (char *) "3c1b4e2a-9d8f-4a61-b7e0-5f2c8d9a1b3e";
        ck_assert_int_eq(aad_client_secret_body(&app, secret, &body), 0);
        ck_assert_str_eq(secret_reveal(body),
                         "grant_type=client_credentials&client_id=3c1b4e2a-9d8f-4a61-b7e0-5f2c8d9a1b3e"
                         "&scope=6dae42f8-4368-4678-94ff-3960e28e3630%2F.default&client_info=1"
                         "&client_secret=Fk8Q~a%2Bb%2Fc%3D%26d");
        body = secret_free(body);
        ck_assert_int_eq(aad_client_assertion_body(&app, assertion, &body), 0);
        ck_assert_str_eq(secret_reveal(body),
                         "grant_type=client_credentials&client_id=3c1b4e2a-9d8f-4a61-b7e0-5f2c8d9a1b3e"
                         "&scope=6dae42f8-4368-4678-94ff-3960e28e3630%2F.default&client_info=1"
                         "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                         "&client_assertion=eyJh.eyJi.c2ln");
        body = secret_free(body);

        url = aad_authorize_url(&profile, "http://localhost:8400/", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                "st&1", NULL);
        ck_assert_str_eq(url,
                         "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/authorize"
                         "?client_id=80faf920-1908-4b52-b5ef-a8e7bedfc67a&response_type=code"
                         "&redirect_uri=http%3A%2F%2Flocalhost%3A8400%2F"
                         "&scope=6dae42f8-4368-4678-94ff-3960e28e3630%2F.default%20openid%20profile%20offline_access"
                         "&state=st%261&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                         "&code_challenge_method=S256&prompt=select_account&client_info=1");
        free(url);
        url = aad_authorize_url(&profile, "http://localhost:8400/", "c", "s", "{\"a\":1}");
        ck_assert(strstr(url, "&claims=%7B%22a%22%3A1%7D"));

        ck_assert_int_eq(aad_code_token_body(&profile, code, "http://localhost:8400/", verifier, NULL, &body), 0);
        ck_assert_str_eq(secret_reveal(body),
                         "grant_type=authorization_code&client_id=80faf920-1908-4b52-b5ef-a8e7bedfc67a"
                         "&code=1.A%2B%2F%3D&redirect_uri=http%3A%2F%2Flocalhost%3A8400%2F"
                         "&code_verifier=v-erifier_~.0123456789012345678901234567890123"
                         "&scope=6dae42f8-4368-4678-94ff-3960e28e3630%2F.default%20openid%20profile%20offline_access"
                         "&client_info=1");
        body = secret_free(body);
        ck_assert_int_eq(aad_device_token_body_claims(&profile, code, "{}", &body), 0);
        ck_assert(strstr(secret_reveal(body), "&client_info=1&claims=%7B%7D"));
}
END_TEST

START_TEST(test_msi_url) {
        ProfileConfig mi = profile;
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        mi.msi_kind = MSI_IMDS;
        mi.msi_endpoint = (char *) "http://169.254.169.254";
        a = aad_msi_url(&mi);
        ck_assert_str_eq(a, "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
                            "&resource=6dae42f8-4368-4678-94ff-3960e28e3630");
        mi.managed_identity_resource_id = (char *) "/subscriptions/x/rg/id";
        b = aad_msi_url(&mi);
        ck_assert(strstr(b, "&msi_res_id=%2Fsubscriptions%2Fx%2Frg%2Fid"));
        mi.msi_kind = MSI_APP_SERVICE;
        mi.msi_endpoint = (char *) "http://127.0.0.1:41741/msi/token";
        mi.managed_identity_resource_id = NULL;
        mi.managed_identity_object_id = (char *) "0d1d2c3b-0000-0000-0000-000000000001";
        c = aad_msi_url(&mi);
        ck_assert_str_eq(
                c, "http://127.0.0.1:41741/msi/token?api-version=2019-08-01"
                   "&resource=6dae42f8-4368-4678-94ff-3960e28e3630&principal_id=0d1d2c3b-0000-0000-0000-000000000001");
        mi.msi_kind = MSI_ARC;
        mi.managed_identity_object_id = NULL;
        mi.msi_endpoint = (char *) "http://localhost:40342/metadata/identity/oauth2/token";
        d = aad_msi_url(&mi);
        ck_assert_str_eq(d, "http://localhost:40342/metadata/identity/oauth2/token?api-version=2020-06-01"
                            "&resource=6dae42f8-4368-4678-94ff-3960e28e3630");
}
END_TEST

START_TEST(test_arc_challenge) {
        char *p = NULL;

        ck_assert_int_eq(aad_arc_challenge_path("Basic realm=/var/opt/azcmagent/tokens/ab-12.key",
                                                "/var/opt/azcmagent/tokens", &p),
                         0);
        ck_assert_str_eq(p, "/var/opt/azcmagent/tokens/ab-12.key");
        free(p);
        ck_assert_int_eq(aad_arc_challenge_path("basic realm=/k/x.key\r\n", "/k/", &p), 0);
        ck_assert_str_eq(p, "/k/x.key");
        free(p);
        p = NULL;
        static const char *const bad[] = {
                "Basic realm=/etc/shadow",
                "Basic realm=/var/opt/azcmagent/tokens/../../../etc/x.key",
                "Basic realm=/var/opt/azcmagent/tokens/sub/x.key",
                "Basic realm=/var/opt/azcmagent/tokensx/a.key",
                "Basic realm=/var/opt/azcmagent/tokens/.key",
                "Bearer realm=/var/opt/azcmagent/tokens/a.key",
                "Basic realm=/var/opt/azcmagent/tokens/a b.key",
                "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(aad_arc_challenge_path(bad[i], "/var/opt/azcmagent/tokens", &p) == -EBADMSG, "%s",
                              bad[i]);
        ck_assert_ptr_null(p);
}
END_TEST

START_TEST(test_msi_answer) {
        AadToken t = {};
        AadError e = {};
        const char *imds = "{\"access_token\":\"" ACCESS_TOKEN "\",\"client_id\":\"x\",\"expires_in\":\"86399\","
                           "\"expires_on\":\"1740028277\",\"ext_expires_in\":\"86399\",\"not_before\":\"1739941577\","
                           "\"resource\":\"r\",\"token_type\":\"Bearer\"}";
        const char *appsvc = "{\"access_token\":\"" ACCESS_TOKEN "\",\"expires_on\":\"1700003600\",\"resource\":\"r\","
                             "\"token_type\":\"Bearer\"}";

        ck_assert_int_eq(aad_parse_msi_answer(200, imds, strlen(imds), NOW_FOR_MSI, &t, &e), AAD_OK);
        ck_assert_uint_eq(t.expires_in, 86399 * USEC_PER_SEC);
        ck_assert_str_eq(secret_reveal(t.access_token), ACCESS_TOKEN);
        ck_assert_ptr_null(t.refresh_token);
        aad_token_clear(&t);
        ck_assert_int_eq(aad_parse_msi_answer(200, appsvc, strlen(appsvc), NOW_FOR_MSI, &t, &e), AAD_OK);
        ck_assert_uint_eq(t.expires_in, 3600 * USEC_PER_SEC);
        aad_token_clear(&t);
        /* expired on arrival, no lifetime at all: not a token to use */
        ck_assert_int_eq(aad_parse_msi_answer(200, appsvc, strlen(appsvc), NOW_FOR_MSI + 4000 * USEC_PER_SEC, &t, &e),
                         AAD_TRANSIENT);
        aad_error_clear(&e);

        static const struct {
                long status;
                const char *body;
                AadOutcome o;
                const char *error;
        } cases[] = {
                { 400, "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}", AAD_CONFIG_ERROR,
                  "invalid_request" },
                { 400, "{\"statusCode\":400,\"message\":\"Unable to load the proper Managed Identity.\"}",
                  AAD_CONFIG_ERROR, "invalid_request" },
                { 401, "{\"statusCode\":401,\"message\":\"bad header\"}", AAD_CONFIG_ERROR, "unauthorized" },
                { 404, "{\"error\":\"not_found\"}", AAD_TRANSIENT, "not_found" },
                { 500, "", AAD_TRANSIENT, "server error" },
                { 429, "{\"error\":\"too_many\"}", AAD_TRANSIENT, "too_many" },
                { 503, "<html>", AAD_TRANSIENT, "server error" },
                { 200, "<html>", AAD_TRANSIENT, "answer is not JSON" },
                { 200, "{\"expires_in\":\"60\"}", AAD_TRANSIENT, "answer has no valid access_token" },
                { 0, "", AAD_TRANSIENT, "no answer" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ck_assert_int_eq(aad_parse_msi_answer(cases[i].status, cases[i].body, strlen(cases[i].body),
                                                      NOW_FOR_MSI, &t, &e),
                                 cases[i].o);
                ck_assert_str_eq(e.error, cases[i].error);
                aad_error_clear(&e);
        }
        {
                const char *s = "{\"statusCode\":400,\"message\":\"Unable to load the proper Managed Identity.\"}";
                ck_assert_int_eq(aad_parse_msi_answer(400, s, strlen(s), NOW_FOR_MSI, &t, &e), AAD_CONFIG_ERROR);
                ck_assert_str_eq(e.description, "Unable to load the proper Managed Identity.");
                aad_error_clear(&e);
        }
}
END_TEST

START_TEST(test_conditional_access) {
        AadError e = {};
        const char *body =
                "{\"error\":\"interaction_required\",\"error_description\":\"AADSTS50076: MFA\","
                "\"error_codes\":[50076],\"suberror\":\"basic_action\","
                "\"claims\":\"{\\\"access_token\\\":{\\\"capolids\\\":{\\\"essential\\\":true,\\\"values\\\":[\\\"c1\\\"]}}}\"}";

        ck_assert_int_eq(aad_parse_token_answer(400, body, strlen(body), NULL, &e), AAD_NEEDS_LOGIN);
        ck_assert_str_eq(e.suberror, "basic_action");
        ck_assert_str_eq(e.claims, "{\"access_token\":{\"capolids\":{\"essential\":true,\"values\":[\"c1\"]}}}");
        ck_assert_int_eq(e.error_code, 50076);
        aad_error_clear(&e);
}
END_TEST

static Suite *aad_suite(void) {
        Suite *s = suite_create("aad");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_imds_retry_delay);
        tcase_add_test(tc, test_urls);
        tcase_add_test(tc, test_bodies);
        tcase_add_test(tc, test_token_ok);
        tcase_add_test(tc, test_error_classification);
        tcase_add_test(tc, test_transient_answers);
        tcase_add_test(tc, test_truncations);
        tcase_add_test(tc, test_mutations);
        tcase_add_test(tc, test_error_text_is_safe);
        tcase_add_test(tc, test_error_never_holds_a_secret);
        tcase_add_test(tc, test_device_code);
        tcase_add_test(tc, test_retry_after);
        tcase_add_test(tc, test_outcome_names);
        tcase_add_test(tc, test_identity_bodies);
        tcase_add_test(tc, test_msi_url);
        tcase_add_test(tc, test_arc_challenge);
        tcase_add_test(tc, test_msi_answer);
        tcase_add_test(tc, test_conditional_access);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(aad_suite());
}
