/* Tests for the display claims of a JWT and base64url decoding. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jwt.h"
#include "base/macro.h"
#include "testlib.h"

static char *b64url(const char *in, bool pad) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t n = strlen(in), o = 0;
        char *out = malloc(n / 3 * 4 + 8);
        uint32_t acc = 0;
        unsigned bits = 0;

        ck_assert_ptr_nonnull(out);
        for (size_t i = 0; i < n; i++) {
                acc = (acc << 8) | (unsigned char) in[i];
                bits += 8;
                while (bits >= 6) {
                        bits -= 6;
                        out[o++] = alphabet[(acc >> bits) & 63];
                }
        }
        if (bits > 0)
                out[o++] = alphabet[(acc << (6 - bits)) & 63];
        while (pad && o % 4 != 0)
                out[o++] = '=';
        out[o] = 0;
        return out;
}

static char *make_jwt(const char *payload_json, bool pad) {
        _cleanup_free_ char *h = b64url("{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5t\":\"abc\"}", pad);
        _cleanup_free_ char *p = b64url(payload_json, pad);
        char *t;

        ck_assert_int_ge(asprintf(&t, "%s.%s.c2lnbmF0dXJl", h, p), 0);
        return t;
}

static int read_claims(const char *token, JwtClaims *c) {
        return jwt_read_claims(token, strlen(token), c);
}

START_TEST(test_base64url_vectors) {
        static const struct {
                const char *in, *out;
                size_t len;
        } v[] = {
                { "", "", 0 },
                { "Zg", "f", 1 },
                { "Zg==", "f", 1 },
                { "Zm8", "fo", 2 },
                { "Zm8=", "fo", 2 },
                { "Zm9v", "foo", 3 },
                { "Zm9vYg", "foob", 4 },
                { "Zm9vYmE", "fooba", 5 },
                { "Zm9vYmFy", "foobar", 6 },
                { "-_8", "\xfb\xff", 2 },
        };

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *out = NULL;
                size_t n = 99;

                ck_assert_int_eq(base64url_decode(v[i].in, strlen(v[i].in), &out, &n), 0);
                ck_assert_uint_eq(n, v[i].len);
                ck_assert_mem_eq(out, v[i].out, n);
                ck_assert_int_eq(out[n], 0);
        }

        static const char *bad[] = { "Z",    "Zm9vY",  "Zg=",  "Zg===", "Z===", "Zm+v",
                                     "Zm/v", "Zm9v\n", "Zm 9", "Zm*v",  "=Zg=", "Zg==Zg==" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *out = (char *) 0x1;
                size_t n = 99;

                ck_assert_msg(base64url_decode(bad[i], strlen(bad[i]), &out, &n) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_eq(out, (char *) 0x1);
                ck_assert_uint_eq(n, 99);
        }
}
END_TEST

START_TEST(test_v1_claims) {
        /* as AAD issues them for AKS: upn and unique_name, name, numeric exp */
        _cleanup_free_ char *t = make_jwt("{\"aud\":\"6dae42f8-4368-4678-94ff-3960e28e3630\","
                                          "\"iss\":\"https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/\","
                                          "\"iat\":1700000000,\"nbf\":1700000000,\"exp\":1700004415,"
                                          "\"name\":\"Alice Example\",\"oid\":\"0b6a6f1e-6c5f-4f33-9b8e-2f1d0f6a7c11\","
                                          "\"tid\":\"72f988bf-86f1-41af-91ab-2d7cd011db47\","
                                          "\"unique_name\":\"alice@old.contoso.com\",\"upn\":\"alice@contoso.com\","
                                          "\"ver\":\"1.0\"}",
                                          false);
        JwtClaims c = {};

        ck_assert_int_eq(read_claims(t, &c), 0);
        ck_assert_str_eq(c.account, "alice@contoso.com");
        ck_assert_str_eq(c.tenant, "72f988bf-86f1-41af-91ab-2d7cd011db47");
        ck_assert_str_eq(c.object_id, "0b6a6f1e-6c5f-4f33-9b8e-2f1d0f6a7c11");
        ck_assert_int_eq(c.exp, 1700004415);
        jwt_claims_clear(&c);
        ck_assert_ptr_null(c.account);
}
END_TEST

START_TEST(test_account_fallbacks) {
        static const struct {
                const char *payload, *account;
        } v[] = {
                { "{\"unique_name\":\"bob@contoso.com\",\"name\":\"Bob\"}", "bob@contoso.com" },
                { "{\"preferred_username\":\"carol@contoso.com\",\"name\":\"Carol\",\"ver\":\"2.0\"}",
                  "carol@contoso.com" },
                { "{\"name\":\"Dave\"}", "Dave" },
                { "{\"upn\":\"\",\"name\":\"Empty upn\"}", "Empty upn" },
                { "{\"upn\":42,\"unique_name\":\"num@contoso.com\"}", "num@contoso.com" },
                { "{\"upn\":\"evil\\u001b[2J\",\"name\":\"Clean\"}", "Clean" },
        };

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *t = make_jwt(v[i].payload, i % 2);
                JwtClaims c = {};

                ck_assert_int_eq(read_claims(t, &c), 0);
                ck_assert_str_eq(c.account, v[i].account);
                ck_assert_ptr_null(c.tenant);
                ck_assert_int_eq(c.exp, 0);
                jwt_claims_clear(&c);
        }
}
END_TEST

START_TEST(test_missing_and_odd_claims) {
        static const struct {
                const char *payload;
                int64_t exp;
        } v[] = {
                { "{}", 0 },
                { "{\"exp\":\"1700000000\"}", 1700000000 },
                { "{\"exp\":1700000000.75}", 1700000000 },
                { "{\"exp\":-5}", 0 },
                { "{\"exp\":\"soon\"}", 0 },
                { "{\"exp\":\"\"}", 0 },
                { "{\"exp\":\"99999999999999999999999\"}", 0 },
                { "{\"exp\":null,\"tid\":7,\"oid\":[]}", 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *t = make_jwt(v[i].payload, true);
                JwtClaims c = {};

                ck_assert_int_eq(read_claims(t, &c), 0);
                ck_assert_ptr_null(c.account);
                ck_assert_ptr_null(c.tenant);
                ck_assert_ptr_null(c.object_id);
                ck_assert_int_eq(c.exp, v[i].exp);
                jwt_claims_clear(&c);
        }
}
END_TEST

START_TEST(test_not_a_jwt) {
        _cleanup_free_ char *payload_array = make_jwt("[1,2]", false), *not_json = make_jwt("upn=alice", false),
                            *truncated = make_jwt("{\"upn\":\"alice", false), *unsigned_jwt = NULL;
        static const char *bad[] = {
                "",
                "abc",
                "a.b",
                ".eyJ9.x",
                "eyJ0eXAiOiJKV1QifQ.e30.sig.extra.part",
                "eyJ0eXAiOiJKV1QifQ.e+30.sig",
                "eyJ0eXAiOiJKV1QifQ..sig",
        };
        JwtClaims c = { .exp = 42 };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(read_claims(bad[i], &c) == -EBADMSG, "accepted '%s'", bad[i]);
        ck_assert_int_eq(read_claims(payload_array, &c), -EBADMSG);
        ck_assert_int_eq(read_claims(not_json, &c), -EBADMSG);
        ck_assert_int_eq(read_claims(truncated, &c), -EBADMSG);
        ck_assert_int_eq(c.exp, 42); /* untouched on failure */

        /* an unsigned token (empty signature) is still readable for display */
        unsigned_jwt = strdup("eyJhbGciOiJub25lIn0.eyJ1cG4iOiJlQHguY29tIn0.");
        ck_assert_int_eq(read_claims(unsigned_jwt, &c), 0);
        ck_assert_str_eq(c.account, "e@x.com");
        jwt_claims_clear(&c);

        /* the length is honoured: a longer buffer's tail is not part of the token */
        ck_assert_int_eq(jwt_read_claims("eyJhbGciOiJub25lIn0.eyJ1cG4iOiJlQHguY29tIn0.sig.more", 47, &c), 0);
        jwt_claims_clear(&c);
}
END_TEST

static Suite *jwt_suite(void) {
        Suite *s = suite_create("jwt");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_base64url_vectors);
        tcase_add_test(tc, test_v1_claims);
        tcase_add_test(tc, test_account_fallbacks);
        tcase_add_test(tc, test_missing_and_odd_claims);
        tcase_add_test(tc, test_not_a_jwt);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(jwt_suite());
}
