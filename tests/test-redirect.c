/* Tests for PKCE and the loopback redirect: RFC 7636's example, the request heads a browser
 * sends, and everything else that may arrive on the port. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idp/pkce.h"
#include "idp/redirect.h"
#include "testlib.h"

START_TEST(test_pkce_rfc7636) {
        char c[PKCE_CHALLENGE_LEN + 1];

        /* RFC 7636 appendix B */
        ck_assert_int_eq(pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", c), 0);
        ck_assert_str_eq(c, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}
END_TEST

START_TEST(test_pkce_new) {
        uint8_t random[PKCE_RANDOM_BYTES];
        char c[PKCE_CHALLENGE_LEN + 1];
        Pkce a = {}, b = {};

        for (size_t i = 0; i < sizeof random; i++)
                random[i] = (uint8_t) i;
        ck_assert_int_eq(pkce_new(random, &a), 0);
        ck_assert_uint_eq(secret_len(a.verifier), 43);
        ck_assert_int_eq(pkce_challenge(secret_reveal(a.verifier), c), 0);
        ck_assert_str_eq(c, a.challenge);
        ck_assert_uint_eq(strlen(a.state), PKCE_STATE_LEN);
        ck_assert_uint_eq(
                strspn(secret_reveal(a.verifier), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                43);
        random[0] ^= 1;
        random[40] ^= 1;
        ck_assert_int_eq(pkce_new(random, &b), 0);
        ck_assert_str_ne(secret_reveal(a.verifier), secret_reveal(b.verifier));
        ck_assert_str_ne(a.state, b.state);
        pkce_clear(&a);
        pkce_clear(&b);
        ck_assert_ptr_null(a.verifier);
}
END_TEST

#define HEAD(target) "GET " target " HTTP/1.1\r\nHost: 127.0.0.1:8400\r\nUser-Agent: Mozilla/5.0\r\n\r\n"

START_TEST(test_redirect_code) {
        const char *req = HEAD("/?code=1.AXo%2B-_%7E&state=st1&session_state=x");
        Redirect r = {};
        size_t n = 0;

        ck_assert_int_eq(redirect_parse(req, strlen(req), &r, &n), 0);
        ck_assert_uint_eq(n, strlen(req));
        ck_assert_int_eq(r.kind, REDIRECT_CODE);
        ck_assert_str_eq(secret_reveal(r.code), "1.AXo+-_~");
        ck_assert_str_eq(r.state, "st1");
        ck_assert_ptr_null(r.error);
        redirect_clear(&r);
}
END_TEST

START_TEST(test_redirect_error) {
        const char *req = HEAD(
                "/?error=access_denied&error_description=AADSTS65004%3A+User+declined%0D%0ATrace+ID%3A+x&state=s");
        Redirect r = {};

        ck_assert_int_eq(redirect_parse(req, strlen(req), &r, NULL), 0);
        ck_assert_int_eq(r.kind, REDIRECT_ERROR);
        ck_assert_str_eq(r.error, "access_denied");
        ck_assert_str_eq(r.error_description, "AADSTS65004: User declined");
        ck_assert_str_eq(r.state, "s");
        redirect_clear(&r);
}
END_TEST

START_TEST(test_redirect_others) {
        static const char *const other[] = {
                HEAD("/favicon.ico"),
                HEAD("/"),
                HEAD("/?state=s"),
                HEAD("/x?code=a&state=b"),
        };
        static const char *const bad[] = {
                "POST /?code=a HTTP/1.1\r\n\r\n",
                "GET /?code=a HTTP/2\r\n\r\n",
                "GET ?code=a HTTP/1.1\r\n\r\n",
                HEAD("/?code=a&code=b&state=s"),
                HEAD("/?code=%zz&state=s"),
                HEAD("/?code=%00&state=s"),
                HEAD("/?code=a%20b&state=s"),
                HEAD("/?code=a&state=%"),
                "GET  HTTP/1.1\r\n\r\n",
                "\r\n\r\n",
                "GET /?code=a\x01 HTTP/1.1\r\n\r\n",
        };
        Redirect r = {};
        char *big;

        for (size_t i = 0; i < ELEMENTSOF(other); i++) {
                ck_assert_int_eq(redirect_parse(other[i], strlen(other[i]), &r, NULL), 0);
                ck_assert_int_eq(r.kind, REDIRECT_OTHER);
                redirect_clear(&r);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(redirect_parse(bad[i], strlen(bad[i]), &r, NULL) == -EBADMSG, "%s", bad[i]);
        ck_assert_int_eq(redirect_parse("GET /?code=a HTTP/1.1\r\nHost: x\r\n", 30, &r, NULL), -EAGAIN);
        big = malloc(REDIRECT_HEAD_MAX + 100);
        memset(big, 'a', REDIRECT_HEAD_MAX + 100);
        ck_assert_int_eq(redirect_parse(big, REDIRECT_HEAD_MAX + 100, &r, NULL), -E2BIG);
        free(big);
}
END_TEST

START_TEST(test_redirect_answer) {
        _cleanup_free_ char *ok = redirect_answer(true, NULL), *bad = redirect_answer(false, "state <mismatch> & co");

        ck_assert(strncmp(ok, "HTTP/1.1 200 OK\r\n", 17) == 0);
        ck_assert(strstr(ok, "Signed in"));
        ck_assert(strncmp(bad, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
        ck_assert(strstr(bad, "state &lt;mismatch&gt; &amp; co"));
        {
                const char *body = strstr(ok, "\r\n\r\n") + 4;
                char want[64];
                snprintf(want, sizeof want, "Content-Length: %zu\r\n", strlen(body));
                ck_assert(strstr(ok, want));
        }
}
END_TEST

static Suite *redirect_suite(void) {
        Suite *s = suite_create("redirect");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_pkce_rfc7636);
        tcase_add_test(tc, test_pkce_new);
        tcase_add_test(tc, test_redirect_code);
        tcase_add_test(tc, test_redirect_error);
        tcase_add_test(tc, test_redirect_others);
        tcase_add_test(tc, test_redirect_answer);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(redirect_suite());
}
