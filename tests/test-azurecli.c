/* Tests for reading az's answer (azurecli-output.c): token and expiry, and when a person must act. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "base/secret.h"
#include "idp/azurecli-output.h"
#include "testlib.h"

#define NOW (1764889200ULL * USEC_PER_SEC) /* 2025-12-04 23:00 UTC */

/* header {"alg":"none"} and payload {"exp":1764892800,"aud":"6dae42f8-..."} */
#define JWT_EXP_PLUS_1H "eyJhbGciOiJub25lIn0.eyJleHAiOjE3NjQ4OTI4MDAsImF1ZCI6IjZkYWU0MmY4In0.c2ln"

static int parse(const char *s, AadToken *t) {
        return azurecli_parse_token(s, strlen(s), NOW, t);
}

START_TEST(test_expires_on_wins) {
        AadToken t = {};

        /* az 2.54+: expires_on (a number, or a string of digits) wins over the token's exp,
         * and expiresOn (local time, no zone) is never read. */
        ck_assert_int_eq(parse("{\"accessToken\":\"" JWT_EXP_PLUS_1H "\",\"expiresOn\":\"2030-01-01 00:00:00.000000\","
                               "\"expires_on\":1764891000,\"tokenType\":\"Bearer\"}",
                               &t),
                         0);
        ck_assert_str_eq(secret_reveal(t.access_token), JWT_EXP_PLUS_1H);
        ck_assert_uint_eq(t.expires_in, 1800 * USEC_PER_SEC);
        ck_assert_ptr_null(t.refresh_token);
        aad_token_clear(&t);

        ck_assert_int_eq(parse("{\"accessToken\":\"opaque\",\"expires_on\":\"1764891000\"}", &t), 0);
        ck_assert_uint_eq(t.expires_in, 1800 * USEC_PER_SEC);
        aad_token_clear(&t);
}
END_TEST

START_TEST(test_exp_claim_for_old_az) {
        AadToken t = {};

        /* az 2.45 (Debian 12): no expires_on, so the token's exp; expiresOn is a trap. */
        ck_assert_int_eq(parse("{\"accessToken\":\"" JWT_EXP_PLUS_1H "\",\"expiresOn\":\"2020-01-01 00:00:00.000000\","
                               "\"subscription\":\"s\",\"tenant\":\"t\",\"tokenType\":\"Bearer\"}",
                               &t),
                         0);
        ck_assert_uint_eq(t.expires_in, 3600 * USEC_PER_SEC);
        aad_token_clear(&t);

        /* no expires_on and a token that is no JWT: no expiry, no token */
        ck_assert_int_eq(parse("{\"accessToken\":\"opaque\",\"expiresOn\":\"2030-01-01 00:00:00.000000\"}", &t),
                         -EBADMSG);
        ck_assert_ptr_null(t.access_token);
}
END_TEST

START_TEST(test_not_a_token) {
        AadToken t = {};

        ck_assert_int_eq(parse("", &t), -EBADMSG);
        ck_assert_int_eq(parse("[]", &t), -EBADMSG);
        ck_assert_int_eq(parse("{\"accessToken\":\"\",\"expires_on\":1764891000}", &t), -EBADMSG);
        ck_assert_int_eq(parse("{\"accessToken\":5,\"expires_on\":1764891000}", &t), -EBADMSG);
        ck_assert_int_eq(parse("{\"accessToken\":\"x\",\"expires_on\":\"17648x1000\"}", &t), -EBADMSG);
        ck_assert_int_eq(parse("{\"accessToken\":\"x\",\"expires_on\":-5}", &t), -EBADMSG);
        ck_assert_int_eq(parse("{\"accessToken\":\"x\",\"expires_on\":1.5}", &t), -EBADMSG);
        ck_assert_int_eq(parse("{\"accessToken\":\"x\",\"accessToken\":\"y\",\"expires_on\":1764891000}", &t),
                         -EBADMSG);
        /* already expired */
        ck_assert_int_eq(parse("{\"accessToken\":\"x\",\"expires_on\":1764889200}", &t), -ESTALE);
        ck_assert_ptr_null(t.access_token);
}
END_TEST

static bool needs_login(const char *err, char **m) {
        return azurecli_failure_needs_login(err, strlen(err), m);
}

START_TEST(test_login_needed) {
        char *m = NULL;

        ck_assert(needs_login("ERROR: Please run 'az login' to setup account.\n", &m));
        ck_assert_str_eq(m, "ERROR: Please run 'az login' to setup account.");
        free(m);

        ck_assert(needs_login("\n  ERROR: AADSTS700082: The refresh token has expired due to inactivity.\r\n"
                              "Trace ID: abc\nTo re-authenticate, please run:\naz login --scope x\n",
                              &m));
        ck_assert_str_eq(m, "ERROR: AADSTS700082: The refresh token has expired due to inactivity.");
        free(m);

        ck_assert(needs_login("AADSTS50076: Due to a configuration change made by your administrator", &m));
        free(m);
        ck_assert(needs_login("xx AADSTS50079: yy", NULL));
        ck_assert(needs_login("AADSTS70043: The refresh token has expired", NULL));

        /* everything else is transient */
        ck_assert(
                !needs_login("ERROR: HTTPSConnectionPool(host='login.example', port=443): Max retries exceeded\n", &m));
        ck_assert_str_eq(m, "ERROR: HTTPSConnectionPool(host='login.example', port=443): Max retries exceeded");
        free(m);
        ck_assert(!needs_login("AADSTS90002: Tenant not found", NULL));
        ck_assert(!needs_login("", &m));
        ck_assert_ptr_null(m);
        ck_assert(!needs_login(" \n\t\n", &m));
        ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_message_is_one_clean_line) {
        char long_line[1000], *m = NULL;

        memset(long_line, 'a', sizeof long_line - 1);
        long_line[sizeof long_line - 1] = 0;
        (void) needs_login(long_line, &m);
        ck_assert_uint_eq(strlen(m), AZURECLI_MESSAGE_MAX);
        free(m);

        (void) needs_login("bad \x1b[31mcolour\x01\n", &m);
        ck_assert_str_eq(m, "bad ?[31mcolour?");
        free(m);
}
END_TEST

static Suite *azurecli_suite(void) {
        Suite *s = suite_create("azurecli");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_expires_on_wins);
        tcase_add_test(tc, test_exp_claim_for_old_az);
        tcase_add_test(tc, test_not_a_token);
        tcase_add_test(tc, test_login_needed);
        tcase_add_test(tc, test_message_is_one_clean_line);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(azurecli_suite());
}
