/* Tests for AES-256-GCM sealing: round trip, known answer, and every way a blob must not open. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/seal.h"
#include "testlib.h"

static const uint8_t key[SEAL_KEY_SIZE] = { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t nonce[SEAL_NONCE_SIZE] = { 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab };

START_TEST(test_round_trip) {
        _cleanup_secret_ Secret *plain = NULL;
        _cleanup_free_ uint8_t *sealed = NULL;
        const char *text = "{\"refresh_token\":\"0.ARoA-secret\"}";
        size_t len;

        ck_assert_int_eq(seal_encrypt(key, nonce, "aad", 3, text, strlen(text), &sealed, &len), 0);
        ck_assert_uint_eq(len, strlen(text) + SEAL_OVERHEAD);
        ck_assert_mem_eq(sealed, nonce, SEAL_NONCE_SIZE);
        ck_assert_ptr_null(memmem(sealed, len, "secret", 6));
        ck_assert_int_eq(seal_decrypt(key, "aad", 3, sealed, len, &plain), 0);
        ck_assert_uint_eq(secret_len(plain), strlen(text));
        ck_assert_str_eq(secret_reveal(plain), text);
}
END_TEST

/* NIST GCM test vector (gcmEncryptExtIV256, Count 0 with 128-bit plaintext): the AES-256-GCM of
 * libcrypto, not something else that round-trips. */
START_TEST(test_known_answer) {
        static const uint8_t k[32] = { 0x31, 0xbd, 0xad, 0xd9, 0x66, 0x98, 0xc2, 0x04, 0xaa, 0x9c, 0xe1,
                                       0x44, 0x8e, 0xa9, 0x4a, 0xe1, 0xfb, 0x4a, 0x9a, 0x0b, 0x3c, 0x9d,
                                       0x77, 0x3b, 0x51, 0xbb, 0x18, 0x22, 0x66, 0x6b, 0x8f, 0x22 };
        static const uint8_t iv[12] = { 0x0d, 0x18, 0xe0, 0x6c, 0x7c, 0x72, 0x5a, 0xc9, 0xe3, 0x62, 0xe1, 0xce };
        static const uint8_t pt[16] = { 0x2d, 0xb5, 0x16, 0x8e, 0x93, 0x25, 0x56, 0xf8,
                                        0x08, 0x9a, 0x06, 0x22, 0x98, 0x1d, 0x01, 0x7d };
        static const uint8_t ct[16] = { 0xfa, 0x43, 0x62, 0x18, 0x96, 0x61, 0xd1, 0x63,
                                        0xfc, 0xd6, 0xa5, 0x6d, 0x8b, 0xf0, 0x40, 0x5a };
        static const uint8_t tag[16] = { 0xd6, 0x36, 0xac, 0x1b, 0xbe, 0xdd, 0x5c, 0xc3,
                                         0xee, 0x72, 0x7d, 0xc2, 0xab, 0x4a, 0x94, 0x89 };
        _cleanup_free_ uint8_t *sealed = NULL;
        size_t len;

        ck_assert_int_eq(seal_encrypt(k, iv, NULL, 0, pt, sizeof pt, &sealed, &len), 0);
        ck_assert_uint_eq(len, 12 + 16 + 16);
        ck_assert_mem_eq(sealed + 12, ct, 16);
        ck_assert_mem_eq(sealed + 28, tag, 16);
}
END_TEST

START_TEST(test_refusals) {
        _cleanup_free_ uint8_t *sealed = NULL;
        uint8_t other_key[SEAL_KEY_SIZE];
        Secret *plain = NULL;
        size_t len;

        ck_assert_int_eq(seal_encrypt(key, nonce, "tenant-a", 8, "token", 5, &sealed, &len), 0);

        memcpy(other_key, key, sizeof key);
        other_key[31] ^= 1;
        ck_assert_int_eq(seal_decrypt(other_key, "tenant-a", 8, sealed, len, &plain), -EKEYREJECTED);
        ck_assert_int_eq(seal_decrypt(key, "tenant-b", 8, sealed, len, &plain), -EKEYREJECTED);
        ck_assert_int_eq(seal_decrypt(key, NULL, 0, sealed, len, &plain), -EKEYREJECTED);
        for (size_t i = 0; i < len; i++) {
                sealed[i] ^= 0x80;
                ck_assert_int_eq(seal_decrypt(key, "tenant-a", 8, sealed, len, &plain), -EKEYREJECTED);
                sealed[i] ^= 0x80;
        }
        for (size_t cut = 0; cut < SEAL_OVERHEAD; cut++)
                ck_assert_int_eq(seal_decrypt(key, "tenant-a", 8, sealed, cut, &plain), -EBADMSG);
        ck_assert_int_eq(seal_decrypt(key, "tenant-a", 8, sealed, len - 1, &plain), -EKEYREJECTED);
        ck_assert_ptr_null(plain);

        ck_assert_int_eq(seal_decrypt(key, "tenant-a", 8, sealed, len, &plain), 0);
        ck_assert_str_eq(secret_reveal(plain), "token");
        secret_free(plain);
}
END_TEST

START_TEST(test_empty_and_oversized) {
        _cleanup_free_ uint8_t *sealed = NULL;
        _cleanup_secret_ Secret *plain = NULL;
        uint8_t *none = NULL;
        size_t len;

        ck_assert_int_eq(seal_encrypt(key, nonce, NULL, 0, NULL, 0, &sealed, &len), 0);
        ck_assert_uint_eq(len, SEAL_OVERHEAD);
        ck_assert_int_eq(seal_decrypt(key, NULL, 0, sealed, len, &plain), 0);
        ck_assert_uint_eq(secret_len(plain), 0);
        ck_assert_int_eq(seal_encrypt(key, nonce, NULL, 0, "x", (size_t) SEAL_PLAINTEXT_MAX + 1, &none, &len), -EINVAL);
        ck_assert_ptr_null(none);
}
END_TEST

static Suite *seal_suite(void) {
        Suite *s = suite_create("seal");
        TCase *tc = tcase_create("aead");

        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_known_answer);
        tcase_add_test(tc, test_refusals);
        tcase_add_test(tc, test_empty_and_oversized);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(seal_suite());
}
