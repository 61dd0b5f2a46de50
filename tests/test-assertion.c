/* Tests for client assertions: the certificate is named as Azure AD expects, the JWT carries
 * MSAL's claims, and its signature verifies with the certificate's public key. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "base/jwt.h"
#include "idp/assertion.h"
#include "testlib.h"

#define CLIENT "3c1b4e2a-9d8f-4a61-b7e0-5f2c8d9a1b3e"
#define AUD "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
#define NOW (1700000000 * USEC_PER_SEC)
/* openssl x509 -outform DER | openssl dgst -sha1|-sha256 -binary | base64url */
#define X5T "FHhobN_u4eV0bsmnAhbMwSCHpPs"
#define X5T_S256 "Z0Ly0GaUDqLanVDHjgL8x1-DrDvQsQnFLofI7yB-Wf8"
#define X5T_ENC "OXjms5xyBBqNeT5J5pgJZ7plTcs"

static Secret *data_file(const char *name) {
        char path[4096];
        FILE *f;
        char buf[16384];
        size_t n;

        snprintf(path, sizeof path, "%s/tests/data/identity/%s", getenv("AKSSPARK_SOURCE_DIR") ?: "..", name);
        f = fopen(path, "re");
        ck_assert_msg(f, "cannot open %s", path);
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        return secret_new(buf, n);
}

static json_t *part(const char *s, size_t n) {
        _cleanup_free_ char *raw = NULL;
        size_t len;
        json_t *j;

        ck_assert_int_eq(base64url_decode(s, n, &raw, &len), 0);
        j = json_loadb(raw, len, 0, NULL);
        ck_assert_ptr_nonnull(j);
        return j;
}

static bool verify(const char *jwt, const Secret *pem, bool pss) {
        const char *dot2 = strrchr(jwt, '.');
        _cleanup_free_ char *sig = NULL;
        size_t sig_len;
        BIO *bio = BIO_new_mem_buf(secret_reveal(pem), (int) secret_len(pem));
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        EVP_PKEY *key = X509_get_pubkey(cert);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        bool ok;

        ck_assert_int_eq(base64url_decode(dot2 + 1, strlen(dot2 + 1), &sig, &sig_len), 0);
        ck_assert_int_eq(EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, key), 1);
        if (pss) {
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
                ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
        }
        ok = EVP_DigestVerify(ctx, (unsigned char *) sig, sig_len, (const unsigned char *) jwt,
                              (size_t) (dot2 - jwt)) == 1;
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(key);
        X509_free(cert);
        BIO_free(bio);
        return ok;
}

START_TEST(test_thumbprints) {
        _cleanup_secret_ Secret *pem = data_file("client.pem");
        _cleanup_(client_certificate_freep) ClientCertificate *c = NULL;

        ck_assert_int_eq(client_certificate_load(pem, NULL, &c), 0);
        ck_assert_str_eq(client_certificate_x5t(c), X5T);
        ck_assert_str_eq(client_certificate_x5t_s256(c), X5T_S256);
}
END_TEST

START_TEST(test_assertion) {
        _cleanup_secret_ Secret *pem = data_file("client.pem"), *a = NULL, *b = NULL;
        _cleanup_(client_certificate_freep) ClientCertificate *c = NULL;
        const char *s, *d1, *d2;
        json_t *h, *claims;

        ck_assert_int_eq(client_certificate_load(pem, NULL, &c), 0);
        for (int alg = ASSERTION_PS256; alg <= ASSERTION_RS256; alg++) {
                bool pss = alg == ASSERTION_PS256;

                a = secret_free(a);
                ck_assert_int_eq(client_assertion_build(c, alg, CLIENT, AUD, NOW, "jti-1", &a), 0);
                s = secret_reveal(a);
                d1 = strchr(s, '.');
                d2 = strrchr(s, '.');
                ck_assert_ptr_ne(d1, d2);
                h = part(s, (size_t) (d1 - s));
                claims = part(d1 + 1, (size_t) (d2 - d1 - 1));
                ck_assert_str_eq(json_string_value(json_object_get(h, "alg")), pss ? "PS256" : "RS256");
                ck_assert_str_eq(json_string_value(json_object_get(h, "typ")), "JWT");
                ck_assert_str_eq(json_string_value(json_object_get(h, pss ? "x5t#S256" : "x5t")), pss ? X5T_S256 : X5T);
                ck_assert_ptr_null(json_object_get(h, pss ? "x5t" : "x5t#S256"));
                ck_assert_str_eq(json_string_value(json_object_get(claims, "aud")), AUD);
                ck_assert_str_eq(json_string_value(json_object_get(claims, "iss")), CLIENT);
                ck_assert_str_eq(json_string_value(json_object_get(claims, "sub")), CLIENT);
                ck_assert_str_eq(json_string_value(json_object_get(claims, "jti")), "jti-1");
                ck_assert_int_eq(json_integer_value(json_object_get(claims, "nbf")), 1700000000);
                ck_assert_int_eq(json_integer_value(json_object_get(claims, "iat")), 1700000000);
                ck_assert_int_eq(json_integer_value(json_object_get(claims, "exp")), 1700000600);
                json_decref(h);
                json_decref(claims);
                ck_assert(verify(s, pem, pss));
                ck_assert(!verify(s, pem, !pss));
        }
        /* a changed claim no longer verifies */
        ck_assert_int_eq(client_assertion_build(c, ASSERTION_PS256, CLIENT, AUD, NOW, "jti-2", &b), 0);
        {
                _cleanup_free_ char *forged = strdup(secret_reveal(b));
                const char *sa = strrchr(secret_reveal(a), '.');
                char *sb = strrchr(forged, '.');
                ck_assert_uint_eq(strlen(sa), strlen(sb));
                memcpy(sb, sa, strlen(sa));
                ck_assert(!verify(forged, pem, true));
        }
}
END_TEST

START_TEST(test_load_errors) {
        _cleanup_secret_ Secret *enc = data_file("client-encrypted.pem"),
                                *good = secret_new_string("unit-test-password"), *bad = secret_new_string("wrong"),
                                *only = data_file("client-cert-only.pem"), *ec = data_file("client-ec.pem"),
                                *mismatch = data_file("client-mismatch.pem"),
                                *junk = secret_new_string("-----BEGIN NOTHING-----\nabc\n");
        ClientCertificate *c = NULL;

        ck_assert_int_eq(client_certificate_load(enc, NULL, &c), -ENOKEY);
        ck_assert_int_eq(client_certificate_load(enc, bad, &c), -ENOKEY);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(client_certificate_load(enc, good, &c), 0);
        ck_assert_str_eq(client_certificate_x5t(c), X5T_ENC);
        c = client_certificate_free(c);
        ck_assert_int_eq(client_certificate_load(only, NULL, &c), -ENOKEY);
        ck_assert_int_eq(client_certificate_load(ec, NULL, &c), -EPROTONOSUPPORT);
        ck_assert_int_eq(client_certificate_load(mismatch, NULL, &c), -EKEYREJECTED);
        ck_assert_int_eq(client_certificate_load(junk, NULL, &c), -EBADMSG);
        ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_base64url) {
        static const struct {
                const char *in, *out;
        } cases[] = { { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "\xfb\xff", "-_8" } };

        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                _cleanup_free_ char *s = NULL;
                ck_assert_int_eq(base64url_encode(cases[i].in, strlen(cases[i].in), &s), 0);
                ck_assert_str_eq(s, cases[i].out);
        }
}
END_TEST

static Suite *assertion_suite(void) {
        Suite *s = suite_create("assertion");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_thumbprints);
        tcase_add_test(tc, test_assertion);
        tcase_add_test(tc, test_load_errors);
        tcase_add_test(tc, test_base64url);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(assertion_suite());
}
