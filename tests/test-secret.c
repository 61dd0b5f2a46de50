/* Tests for the secret type: copies, comparison, ownership, and that freeing wipes the bytes. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/secret.h"
#include "testlib.h"

/* Wipes are observed by standing in for explicit_bzero(): secret.c reaches it through the
 * static core library, so this definition is the one it calls. It wipes as the real one does
 * and records, while the memory is still allocated, what it saw before and after. Reading the
 * buffer after free() instead would be undefined behaviour (and an ASan error). */
typedef struct Wipe {
        const void *ptr;
        size_t len;
        bool held_marker; /* the bytes contained MARKER before the wipe */
        bool zero_after;
} Wipe;

#define MARKER "eyJ0eXAiOiJKV1Qi.secret-marker"

static Wipe wipes[64];
static size_t n_wipes;

void explicit_bzero(void *s, size_t n) {
        volatile unsigned char *v = s;
        Wipe w = { .ptr = s, .len = n };

        /* Read through v: string.h declares the argument write-only, so gcc would warn on s. */
        for (size_t i = 0; !w.held_marker && i + strlen(MARKER) <= n; i++) {
                size_t j = 0;
                while (j < strlen(MARKER) && v[i + j] == (unsigned char) MARKER[j])
                        j++;
                w.held_marker = j == strlen(MARKER);
        }
        for (size_t i = 0; i < n; i++)
                v[i] = 0;
        w.zero_after = true;
        for (size_t i = 0; i < n; i++)
                if (v[i] != 0)
                        w.zero_after = false;
        if (n_wipes < ELEMENTSOF(wipes))
                wipes[n_wipes++] = w;
}

static const Wipe *find_wipe(const void *ptr) {
        for (size_t i = 0; i < n_wipes; i++)
                if (wipes[i].ptr == ptr)
                        return &wipes[i];
        return NULL;
}

static void wipes_reset(void) {
        n_wipes = 0;
}

START_TEST(test_new_copies) {
        char buf[] = "abc\0def";
        Secret *s = secret_new(buf, 7);

        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(secret_len(s), 7);
        ck_assert_int_eq(memcmp(secret_reveal(s), "abc\0def", 8), 0); /* NUL after len */
        ck_assert_ptr_ne(secret_reveal(s), buf);
        buf[0] = 'X';
        ck_assert_int_eq(secret_reveal(s)[0], 'a');
        secret_free(s);

        s = secret_new(NULL, 0);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_eq(secret_len(s), 0);
        ck_assert_str_eq(secret_reveal(s), "");
        secret_free(s);

        s = secret_new_string("token");
        ck_assert_str_eq(secret_reveal(s), "token");
        ck_assert_uint_eq(secret_len(s), 5);
        secret_free(s);

        ck_assert_ptr_null(secret_new_string(NULL));
        ck_assert_ptr_null(secret_reveal(NULL));
        ck_assert_uint_eq(secret_len(NULL), 0);
}
END_TEST

START_TEST(test_dup_and_equal) {
        _cleanup_secret_ Secret *a = secret_new_string("same-token");
        _cleanup_secret_ Secret *b = secret_dup(a);
        _cleanup_secret_ Secret *c = secret_new_string("same-tokeN");
        _cleanup_secret_ Secret *d = secret_new_string("same-token-longer");
        _cleanup_secret_ Secret *e = secret_new_string("same-toke");
        _cleanup_secret_ Secret *z1 = secret_new("a\0b", 3);
        _cleanup_secret_ Secret *z2 = secret_new("a\0c", 3);

        ck_assert_ptr_ne(a, b);
        ck_assert_ptr_ne(secret_reveal(a), secret_reveal(b));
        ck_assert(secret_equal(a, b));
        ck_assert(secret_equal(a, a));
        ck_assert(!secret_equal(a, c));
        ck_assert(!secret_equal(a, d));
        ck_assert(!secret_equal(a, e));
        ck_assert(!secret_equal(z1, z2)); /* compares past a NUL */
        ck_assert(secret_equal(NULL, NULL));
        ck_assert(!secret_equal(a, NULL));
        ck_assert(!secret_equal(NULL, a));
        ck_assert_ptr_null(secret_dup(NULL));
}
END_TEST

START_TEST(test_free_wipes) {
        Secret *s = secret_new_string(MARKER);
        const char *bytes = secret_reveal(s);
        const Wipe *w;

        wipes_reset();
        ck_assert_ptr_null(secret_free(s));
        w = find_wipe(bytes);
        ck_assert_msg(w, "the secret's bytes were freed without being wiped");
        ck_assert(w->held_marker);
        ck_assert_uint_ge(w->len, strlen(MARKER) + 1); /* the NUL too */
        ck_assert(w->zero_after);
        /* The struct (length and pointer) is wiped as well. */
        ck_assert_uint_eq(n_wipes, 2);
        ck_assert(wipes[1].zero_after);

        ck_assert_ptr_null(secret_free(NULL));
}
END_TEST

START_TEST(test_adopt) {
        char *buf = strdup(MARKER);
        const char *kept = buf; /* compared, never dereferenced after the free */
        Secret *s = secret_adopt(buf, strlen(buf));
        const Wipe *w;

        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_eq(secret_reveal(s), kept); /* taken over, not copied */
        ck_assert_uint_eq(secret_len(s), strlen(MARKER));

        wipes_reset();
        secret_free(s);
        w = find_wipe(kept);
        ck_assert_msg(w, "the adopted buffer was freed without being wiped");
        ck_assert(w->held_marker && w->zero_after);
        ck_assert_uint_eq(w->len, strlen(MARKER) + 1);

        ck_assert_ptr_null(secret_adopt(NULL, 10));
}
END_TEST

START_TEST(test_cleanup_wipes) {
        const char *bytes;

        wipes_reset();
        {
                _cleanup_secret_ Secret *s = secret_new_string(MARKER);
                bytes = secret_reveal(s);
        }
        ck_assert_ptr_nonnull(find_wipe(bytes));
        ck_assert(find_wipe(bytes)->held_marker);
}
END_TEST

START_TEST(test_erase_and_free) {
        char *body = strdup("grant_type=refresh_token&refresh_token=" MARKER);
        const char *kept = body;
        size_t len = strlen(body);

        wipes_reset();
        erase_and_free(body, len);
        ck_assert_ptr_nonnull(find_wipe(kept));
        ck_assert_uint_eq(find_wipe(kept)->len, len);
        ck_assert(find_wipe(kept)->held_marker && find_wipe(kept)->zero_after);

        wipes_reset();
        erase_and_free(NULL, 10);
        ck_assert_uint_eq(n_wipes, 0);
}
END_TEST

START_TEST(test_erase_realloc_keeps_bytes) {
        size_t cap = 4;
        char *buf = malloc(cap);

        ck_assert_ptr_nonnull(buf);
        memcpy(buf, "abc", 3);
        ck_assert_int_eq(erase_realloc(&buf, &cap, 3, 64), 0);
        ck_assert_uint_eq(cap, 64);
        ck_assert(memcmp(buf, "abc", 3) == 0);
        memcpy(buf + 3, "defgh", 6);
        ck_assert_str_eq(buf, "abcdefgh");
        erase_and_free(buf, cap);

        /* Nothing used yet: a NULL buffer grows too. */
        buf = NULL;
        cap = 0;
        ck_assert_int_eq(erase_realloc(&buf, &cap, 0, 16), 0);
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_eq(cap, 16);
        erase_and_free(buf, cap);
}
END_TEST

START_TEST(test_large_secret) {
        size_t n = 1 << 20;
        char *big = malloc(n);
        Secret *s;

        ck_assert_ptr_nonnull(big);
        memset(big, 'r', n);
        s = secret_new(big, n);
        ck_assert_uint_eq(secret_len(s), n);
        ck_assert_int_eq(memcmp(secret_reveal(s), big, n), 0);
        ck_assert_int_eq(secret_reveal(s)[n], 0);
        free(big);
        secret_free(s);
        ck_assert_ptr_null(secret_new("x", SIZE_MAX)); /* len + 1 would wrap */
}
END_TEST

static Suite *secret_suite(void) {
        Suite *s = suite_create("secret");
        TCase *tc = tcase_create("secret");

        tcase_add_test(tc, test_new_copies);
        tcase_add_test(tc, test_erase_realloc_keeps_bytes);
        tcase_add_test(tc, test_dup_and_equal);
        tcase_add_test(tc, test_free_wipes);
        tcase_add_test(tc, test_adopt);
        tcase_add_test(tc, test_cleanup_wipes);
        tcase_add_test(tc, test_erase_and_free);
        tcase_add_test(tc, test_large_secret);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(secret_suite());
}
