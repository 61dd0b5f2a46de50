/* Tests for the spark.properties edit: the table in tests/data/props byte for byte, escaping,
 * new files, and properties that must hold for any input. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "outputs/props.h"
#include "testlib.h"

static char *data_path(const char *name) {
        const char *src = getenv("AKSSPARK_SOURCE_DIR");
        char *p;

        ck_assert_ptr_nonnull(src);
        ck_assert_int_ge(asprintf(&p, "%s/tests/data/props/%s", src, name), 0);
        return p;
}

static Secret *replace(const char *in, size_t len, const Secret *token) {
        Secret *out = NULL;

        ck_assert_int_eq(props_replace_token(in, len, token, &out), 0);
        ck_assert_ptr_nonnull(out);
        return out;
}

static void assert_bytes_eq(const char *what, const char *a, size_t alen, const char *b, size_t blen) {
        size_t i = 0;

        while (i < alen && i < blen && a[i] == b[i])
                i++;
        if (alen != blen || i < alen)
                ck_abort_msg("%s: differs at byte %zu (got %zu bytes, want %zu)", what, i, alen, blen);
}

START_TEST(test_table) {
        _cleanup_free_ char *dir = data_path(""), *token_path = data_path("TOKEN"), *token_text = NULL;
        _cleanup_secret_ Secret *token = NULL, *other = NULL;
        size_t token_len, n_cases = 0;
        struct dirent *de;
        DIR *d;

        ck_assert_int_eq(read_file_full(token_path, 4096, &token_text, &token_len), 0);
        token = secret_new(token_text, token_len);
        other = secret_new_string("another.token.value");

        d = opendir(dir);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d))) {
                _cleanup_free_ char *in_path = NULL, *out_path = NULL, *in = NULL, *want = NULL;
                _cleanup_secret_ Secret *got = NULL, *again = NULL, *first = NULL, *second = NULL;
                size_t n = strlen(de->d_name), in_len, want_len;

                if (n < 4 || strcmp(de->d_name + n - 3, ".in") != 0)
                        continue;
                in_path = data_path(de->d_name);
                ck_assert_int_ge(asprintf(&out_path, "%s%.*s.out", dir, (int) (n - 3), de->d_name), 0);
                ck_assert_int_eq(read_file_full(in_path, 1 << 20, &in, &in_len), 0);
                ck_assert_int_eq(read_file_full(out_path, 1 << 20, &want, &want_len), 0);

                /* Every byte outside the token's value is what the table says it must be. */
                got = replace(in, in_len, token);
                assert_bytes_eq(de->d_name, secret_reveal(got), secret_len(got), want, want_len);

                /* Writing the same token again changes nothing (so the write is skipped). */
                again = replace(secret_reveal(got), secret_len(got), token);
                assert_bytes_eq(de->d_name, secret_reveal(again), secret_len(again), want, want_len);

                /* A later token replaces an earlier one exactly as it would have replaced the
                 * original: no second line, no drift. */
                first = replace(in, in_len, other);
                second = replace(secret_reveal(first), secret_len(first), token);
                assert_bytes_eq(de->d_name, secret_reveal(second), secret_len(second), want, want_len);
                n_cases++;
        }
        closedir(d);
        ck_assert_uint_ge(n_cases, 40);
}
END_TEST

static void check_escape(const char *in, size_t len, const char *want) {
        _cleanup_free_ char *out = NULL;
        size_t out_len;

        ck_assert_int_eq(props_escape_value(in, len, &out, &out_len), 0);
        ck_assert_uint_eq(out_len, strlen(want));
        ck_assert_str_eq(out, want);
}

START_TEST(test_escape_value) {
        char *out = NULL;
        size_t out_len = 0;

        check_escape("", 0, "");
        check_escape("eyJ0.eyJ1-_x", 12, "eyJ0.eyJ1-_x");
        check_escape(" lead", 5, "\\ lead");
        check_escape("a b ", 4, "a b ");
        check_escape("=:#!\\", 5, "\\=\\:\\#\\!\\\\");
        check_escape("\t\n\r\f", 4, "\\t\\n\\r\\f");
        check_escape("\x01\x7f", 2, "\\u0001\\u007F");
        check_escape("\xc3\xa9", 2, "\\u00E9");
        check_escape("\xe2\x9c\x93", 3, "\\u2713");
        check_escape("\xf0\x9f\x98\x80", 4, "\\uD83D\\uDE00");
        check_escape("a\0b", 3, "a\\u0000b");

        /* Bytes that are not UTF-8 have no chars Properties.load could read back. */
        ck_assert_int_eq(props_escape_value("\xff", 1, &out, &out_len), -EINVAL);
        ck_assert_int_eq(props_escape_value("\xc3", 1, &out, &out_len), -EINVAL);
        ck_assert_int_eq(props_escape_value("\xed\xa0\x80", 3, &out, &out_len), -EINVAL); /* a surrogate */
        ck_assert_int_eq(props_escape_value("\xc0\xaf", 2, &out, &out_len), -EINVAL);     /* overlong */
        ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_token_needing_escapes) {
        _cleanup_secret_ Secret *token = secret_new_string(" a=b:c#d\\e\xc3\xa9"), *out = NULL;
        const char *in = "x=1\nspark.kubernetes.authenticate.submission.oauthToken=old\n";

        ck_assert_int_eq(props_replace_token(in, strlen(in), token, &out), 0);
        ck_assert_str_eq(secret_reveal(out),
                         "x=1\nspark.kubernetes.authenticate.submission.oauthToken=\\ a\\=b\\:c\\#d\\\\e\\u00E9\n");
}
END_TEST

/* A value that begins on a continuation line moves up to the key's line (found by the fuzzer:
 * starting the edit at the old value's first byte kept "\\<LF>", and was not idempotent). */
START_TEST(test_value_starting_on_a_continuation_line) {
        _cleanup_secret_ Secret *token = secret_new_string("t.o.k"), *empty = secret_new_string("");
        const char *in = "spark.kubernetes.authenticate.submission.oauthToken = \\\n    old\r\nx=1\n";
        _cleanup_secret_ Secret *out = replace(in, strlen(in), token), *e1 = NULL, *e2 = NULL;

        ck_assert_str_eq(secret_reveal(out), "spark.kubernetes.authenticate.submission.oauthToken = t.o.k\r\nx=1\n");
        e1 = replace(in, strlen(in), empty);
        e2 = replace(secret_reveal(e1), secret_len(e1), empty);
        assert_bytes_eq("empty token twice", secret_reveal(e2), secret_len(e2), secret_reveal(e1), secret_len(e1));
}
END_TEST

START_TEST(test_bad_token) {
        _cleanup_secret_ Secret *token = secret_new("\xff\xfe", 2);
        Secret *out = NULL;

        ck_assert_int_eq(props_replace_token("a=1\n", 4, token, &out), -EINVAL);
        ck_assert_int_eq(props_new_file(token, NULL, &out), -EINVAL);
        ck_assert_ptr_null(out);
        ck_assert_int_eq(props_replace_token("a=1\n", 4, NULL, &out), -EINVAL);
}
END_TEST

START_TEST(test_null_input_is_empty_file) {
        _cleanup_secret_ Secret *token = secret_new_string("t.o.k"), *out = NULL;

        ck_assert_int_eq(props_replace_token(NULL, 0, token, &out), 0);
        ck_assert_str_eq(secret_reveal(out), "spark.kubernetes.authenticate.submission.oauthToken t.o.k\n");
}
END_TEST

START_TEST(test_new_file) {
        _cleanup_secret_ Secret *token = secret_new_string("t.o.k"), *a = NULL, *b = NULL, *c = NULL;

        ck_assert_int_eq(props_new_file(token, "https://x.hcp.westeurope.azmk8s.io:443", &a), 0);
        ck_assert_str_eq(secret_reveal(a), "spark.kubernetes.authenticate.submission.oauthToken t.o.k\n"
                                           "spark.master k8s://https://x.hcp.westeurope.azmk8s.io:443\n");
        ck_assert_uint_eq(secret_len(a), strlen(secret_reveal(a)));

        ck_assert_int_eq(props_new_file(token, NULL, &b), 0);
        ck_assert_str_eq(secret_reveal(b), "spark.kubernetes.authenticate.submission.oauthToken t.o.k\n");

        /* Only what Properties.load would misread is escaped in the URL. */
        ck_assert_int_eq(props_new_file(token, "https://h\\x:1\t", &c), 0);
        ck_assert_str_eq(secret_reveal(c), "spark.kubernetes.authenticate.submission.oauthToken t.o.k\n"
                                           "spark.master k8s://https://h\\\\x:1\\t\n");
}
END_TEST

/* Random files over the characters that carry structure: whatever the input, writing a token
 * twice is stable and a second token replaces the first without leaving anything behind. */
START_TEST(test_random_inputs_are_stable) {
        static const char *const atoms[] = {
                "\n",
                "\r\n",
                "\r",
                "\\",
                "\\\\",
                " ",
                "\t",
                "\f",
                "=",
                ":",
                "#",
                "!",
                "a",
                "b=c",
                "\xc3\xa9",
                "\xff",
                "\\u0054",
                "\\u00",
                "spark.kubernetes.authenticate.submission.oauthToken",
                "spark.kubernetes.authenticate.submission.oauth\\u0054oken",
                "spark.kubernetes.\\\n  authenticate.submission.oauthToken",
        };
        _cleanup_secret_ Secret *t1 = secret_new_string("first.token"), *t2 = secret_new_string("second.token");
        uint64_t seed = 0x9e3779b97f4a7c15ULL;

        for (unsigned iter = 0; iter < 20000; iter++) {
                _cleanup_secret_ Secret *a = NULL, *b = NULL, *c = NULL, *d = NULL;
                char buf[1024];
                size_t len = 0;
                unsigned n;

                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                n = (unsigned) (seed >> 59);
                for (unsigned i = 0; i < n; i++) {
                        const char *atom;

                        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                        atom = atoms[(seed >> 33) % ELEMENTSOF(atoms)];
                        memcpy(buf + len, atom, strlen(atom));
                        len += strlen(atom);
                }

                a = replace(buf, len, t2);
                b = replace(secret_reveal(a), secret_len(a), t2);
                assert_bytes_eq("idempotent", secret_reveal(b), secret_len(b), secret_reveal(a), secret_len(a));
                c = replace(buf, len, t1);
                d = replace(secret_reveal(c), secret_len(c), t2);
                assert_bytes_eq("second token", secret_reveal(d), secret_len(d), secret_reveal(a), secret_len(a));
                ck_assert_ptr_nonnull(memmem(secret_reveal(a), secret_len(a), "second.token", 12));
                ck_assert_ptr_null(memmem(secret_reveal(d), secret_len(d), "first.token", 11));
        }
}
END_TEST

static Suite *props_suite(void) {
        Suite *s = suite_create("props");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_table);
        tcase_add_test(tc, test_escape_value);
        tcase_add_test(tc, test_token_needing_escapes);
        tcase_add_test(tc, test_value_starting_on_a_continuation_line);
        tcase_add_test(tc, test_bad_token);
        tcase_add_test(tc, test_null_input_is_empty_file);
        tcase_add_test(tc, test_new_file);
        tcase_add_test(tc, test_random_inputs_are_stable);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(props_suite());
}
