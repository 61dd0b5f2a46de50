/* Tests for the small helpers: durations, path expansion, profile names, bounded file reads,
 * mkdir -p, and the formatting helpers `status` shows. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "testlib.h"

START_TEST(test_parse_duration_good) {
        static const struct {
                const char *text;
                usec_t value;
        } cases[] = {
                { "0", 0 },
                { "90", 90 * USEC_PER_SEC },
                { "90s", 90 * USEC_PER_SEC },
                { "10m", 10 * USEC_PER_MINUTE },
                { "1h", USEC_PER_HOUR },
                { "1h30m", 90 * USEC_PER_MINUTE },
                { "1h30m15s", 90 * USEC_PER_MINUTE + 15 * USEC_PER_SEC },
                { "0s", 0 },
                { "007m", 7 * USEC_PER_MINUTE },
                { "8784h", 8784 * USEC_PER_HOUR }, /* 366 days: the largest accepted */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                usec_t v = 12345;
                ck_assert_msg(parse_duration(cases[i].text, &v) == 0, "'%s' was refused", cases[i].text);
                ck_assert_uint_eq(v, cases[i].value);
        }
}
END_TEST

START_TEST(test_parse_duration_bad) {
        static const char *const invalid[] = {
                "",     "s",    "m10",   "10 m", " 10m", "10m ", "10M", "1d",
                "1w",   "-5m",  "+5m",   "1.5h", "ten",  "1h30", /* a bare number only as the whole value: a typo otherwise */
                "10ms", "0x10", "10m\n",
        };
        static const char *const too_big[] = { "8785h", "99999999999999999999", "527041m", "1000000000s" };
        usec_t v = 777;

        for (size_t i = 0; i < ELEMENTSOF(invalid); i++)
                ck_assert_msg(parse_duration(invalid[i], &v) == -EINVAL, "'%s' was not refused", invalid[i]);
        for (size_t i = 0; i < ELEMENTSOF(too_big); i++)
                ck_assert_msg(parse_duration(too_big[i], &v) == -ERANGE, "'%s' was not -ERANGE", too_big[i]);
        ck_assert_int_eq(parse_duration(NULL, &v), -EINVAL);
        /* ret_* is left alone on failure */
        ck_assert_uint_eq(v, 777);
}
END_TEST

START_TEST(test_format_duration) {
        static const struct {
                usec_t value;
                const char *text;
        } cases[] = {
                { 0, "0s" },
                { 999 * USEC_PER_MSEC, "0s" },
                { 30 * USEC_PER_SEC, "30s" },
                { 59 * USEC_PER_SEC, "59s" },
                { 60 * USEC_PER_SEC, "1m" },
                { 41 * USEC_PER_MINUTE + 59 * USEC_PER_SEC, "41m" },
                { USEC_PER_HOUR, "1h00m" },
                { USEC_PER_HOUR + 5 * USEC_PER_MINUTE, "1h05m" },
                { 25 * USEC_PER_HOUR + USEC_PER_MINUTE, "25h01m" },
                { USEC_INFINITY, "never" },
        };
        char buf[32], tiny[3];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ck_assert_str_eq(format_duration(buf, sizeof buf, cases[i].value), cases[i].text);

        /* A short buffer is cut, never overrun. */
        memset(tiny, 'x', sizeof tiny);
        ck_assert_ptr_eq(format_duration(tiny, sizeof tiny, 41 * USEC_PER_MINUTE), tiny);
        ck_assert_str_eq(tiny, "41");
}
END_TEST

START_TEST(test_format_rfc3339) {
        char buf[32];

        ck_assert_str_eq(format_rfc3339(buf, sizeof buf, 0), "1970-01-01T00:00:00Z");
        ck_assert_str_eq(format_rfc3339(buf, sizeof buf, 1764150000ULL * USEC_PER_SEC + 999999),
                         "2025-11-26T09:40:00Z");
}
END_TEST

static const char *lookup(const char *name, void *userdata) {
        static const char *const vars[][2] = {
                { "A", "/a" },
                { "B", "bee" },
                { "EMPTY", "" },
                { "LONG_NAME_1", "x" },
        };

        ck_assert_ptr_eq(userdata, (void *) lookup);
        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                if (strcmp(vars[i][0], name) == 0)
                        return vars[i][1];
        return NULL;
}

START_TEST(test_path_expand) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "~", "/home/u" },          { "~/", "/home/u/" },      { "~/x/y", "/home/u/x/y" },
                { "~bob/x", "~bob/x" }, /* only the own home */
                { "/a/~/b", "/a/~/b" }, /* only a leading ~ */
                { "${A}/x", "/a/x" },        { "${A}${B}", "/abee" },   { "/p/${B}/q/${B}", "/p/bee/q/bee" },
                { "/p${EMPTY}/q", "/p/q" },  { "${LONG_NAME_1}", "x" }, { "$A/x", "$A/x" }, /* only ${...} */
                { "/50$", "/50$" },          { "/a}b", "/a}b" },        { "", "" },
                { "~/${B}", "/home/u/bee" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *out = NULL;
                ck_assert_msg(path_expand(cases[i].in, "/home/u", lookup, (void *) lookup, &out) == 0, "'%s' failed",
                              cases[i].in);
                ck_assert_str_eq(out, cases[i].out);
                free(out);
        }
}
END_TEST

START_TEST(test_path_expand_errors) {
        char *out = (char *) "untouched";

        ck_assert_int_eq(path_expand("${NOPE}/x", "/home/u", lookup, (void *) lookup, &out), -ENXIO);
        ck_assert_int_eq(path_expand("${A}/${NOPE}", "/home/u", lookup, (void *) lookup, &out), -ENXIO);
        ck_assert_int_eq(path_expand("${A}", "/home/u", NULL, NULL, &out), -ENXIO);
        ck_assert_int_eq(path_expand("~/x", NULL, lookup, (void *) lookup, &out), -ENXIO);
        ck_assert_int_eq(path_expand("${A", "/home/u", lookup, (void *) lookup, &out), -EINVAL);
        ck_assert_int_eq(path_expand("${}", "/home/u", lookup, (void *) lookup, &out), -EINVAL);
        ck_assert_int_eq(path_expand("${A-B}", "/home/u", lookup, (void *) lookup, &out), -EINVAL);
        ck_assert_int_eq(path_expand("${A B}", "/home/u", lookup, (void *) lookup, &out), -EINVAL);
        ck_assert_int_eq(path_expand(NULL, "/home/u", lookup, (void *) lookup, &out), -EINVAL);
        ck_assert_str_eq(out, "untouched");
}
END_TEST

START_TEST(test_path_expand_long_variable_name) {
        char in[300], *out = NULL;

        /* A name longer than the helper's 255-byte buffer is refused, not overrun. */
        in[0] = '$';
        in[1] = '{';
        memset(in + 2, 'N', 280);
        strcpy(in + 282, "}");
        ck_assert_int_eq(path_expand(in, "/home/u", lookup, (void *) lookup, &out), -EINVAL);
        ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_profile_name_is_valid) {
        static const char *const good[] = { "default", "prod", "a", "A-Z_0.9", "prod.westeurope-01", "..x", "-" };
        static const char *const bad[] = { "", "a b", "a/b", "a\\b", "caf\xc3\xa9", "a\n", "a;b", "[x]", "a\tb" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ck_assert_msg(profile_name_is_valid(good[i]), "'%s' refused", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(!profile_name_is_valid(bad[i]), "'%s' accepted", bad[i]);
        ck_assert(!profile_name_is_valid(NULL));
}
END_TEST

START_TEST(test_string_has_prefix) {
        ck_assert(string_has_prefix("profile x", "profile"));
        ck_assert(string_has_prefix("abc", ""));
        ck_assert(!string_has_prefix("pro", "profile"));
        ck_assert(!string_has_prefix(NULL, "a"));
        ck_assert(!string_has_prefix("a", NULL));
}
END_TEST

START_TEST(test_strbuf_join) {
        StrBuf b = {};
        _cleanup_free_ char *empty = NULL, *joined = NULL, *big = NULL;

        empty = strbuf_take(&b);
        ck_assert_str_eq(empty, "");

        strbuf_append(&b, "a");
        strbuf_appendf(&b, "%s%d", ", ", 42);
        strbuf_append(&b, "");
        ck_assert_uint_eq(b.len, 5);
        strbuf_truncate(&b, 10); /* longer than the text: no change */
        strbuf_truncate(&b, 3);
        joined = strbuf_take(&b);
        ck_assert_str_eq(joined, "a, ");
        ck_assert_ptr_null(b.s);
        ck_assert_uint_eq(b.len, 0);

        /* Grows past its first allocation and keeps every byte. */
        for (int i = 0; i < 1000; i++)
                strbuf_appendf(&b, "%03d", i);
        ck_assert_uint_eq(b.len, 3000);
        big = strbuf_take(&b);
        ck_assert_uint_eq(strlen(big), 3000);
        ck_assert(strncmp(big, "000001002", 9) == 0);
        ck_assert_str_eq(big + 2997, "999");
}
END_TEST

START_TEST(test_strbuf_oom_is_sticky) {
        StrBuf b = {};

        strbuf_append(&b, "x");
        b.oom = true;
        strbuf_append(&b, "y");
        ck_assert_uint_eq(b.len, 1);
        ck_assert_ptr_null(strbuf_take(&b));
        ck_assert_ptr_null(b.s);
        ck_assert(!b.oom);
        strbuf_done(&b);
}
END_TEST

START_TEST(test_read_file_full_limits) {
        _cleanup_free_ char *empty = testlib_path(testlib_scratch, "empty"),
                            *exact = testlib_path(testlib_scratch, "exact"),
                            *big = testlib_path(testlib_scratch, "big");
        _cleanup_free_ char *missing = testlib_path(testlib_scratch, "missing");
        char *data, *out = NULL;
        size_t len = 99;

        testlib_write_file(empty, "", 0);
        ck_assert_int_eq(read_file_full(empty, 0, &out, &len), 0);
        ck_assert_uint_eq(len, 0);
        ck_assert_str_eq(out, "");
        free(out);

        /* Exactly max bytes is fine; one more is -EFBIG. Sizes straddle the 8 KiB read steps. */
        data = malloc(100001);
        ck_assert_ptr_nonnull(data);
        for (size_t i = 0; i < 100001; i++)
                data[i] = (char) ('a' + i % 26);
        testlib_write_file(exact, data, 100000);
        ck_assert_int_eq(read_file_full(exact, 100000, &out, &len), 0);
        ck_assert_uint_eq(len, 100000);
        ck_assert_int_eq(memcmp(out, data, 100000), 0);
        ck_assert_int_eq(out[100000], 0);
        free(out);
        out = NULL;
        ck_assert_int_eq(read_file_full(exact, 99999, &out, &len), -EFBIG);
        ck_assert_ptr_null(out);
        ck_assert_int_eq(read_file_full(exact, 4096, &out, &len), -EFBIG);
        ck_assert_int_eq(read_file_full(exact, 0, &out, &len), -EFBIG);

        /* Bytes after a NUL are still counted and returned. */
        memcpy(data, "a\0b", 3);
        testlib_write_file(big, data, 3);
        ck_assert_int_eq(read_file_full(big, 3, &out, NULL), 0);
        ck_assert_int_eq(memcmp(out, "a\0b\0", 4), 0);
        free(out);
        free(data);

        out = NULL;
        ck_assert_int_eq(read_file_full(missing, 10, &out, &len), -ENOENT);
        ck_assert_int_eq(read_file_full(testlib_scratch, 10, &out, &len), -EISDIR);
        ck_assert_ptr_null(out);
}
END_TEST

static mode_t mode_of(const char *path) {
        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        return st.st_mode & 07777;
}

START_TEST(test_mkdir_parents) {
        _cleanup_free_ char *a = testlib_path(testlib_scratch, "a"), *abc = testlib_path(testlib_scratch, "a/b/c"),
                            *ab = testlib_path(testlib_scratch, "a/b");
        _cleanup_free_ char *old = testlib_path(testlib_scratch, "old"),
                            *oldnew = testlib_path(testlib_scratch, "old/new/");
        _cleanup_free_ char *file = testlib_path(testlib_scratch, "file"),
                            *through = testlib_path(testlib_scratch, "file/x");

        umask(022);
        ck_assert_int_eq(mkdir_parents(abc, 0700), 0);
        ck_assert_uint_eq(mode_of(a), 0700);
        ck_assert_uint_eq(mode_of(ab), 0700);
        ck_assert_uint_eq(mode_of(abc), 0700);
        /* Existing directories are fine and keep their mode. */
        ck_assert_int_eq(mkdir_parents(abc, 0700), 0);
        ck_assert_int_eq(mkdir(old, 0755), 0);
        ck_assert_int_eq(chmod(old, 0755), 0);
        ck_assert_int_eq(mkdir_parents(oldnew, 0700), 0);
        ck_assert_uint_eq(mode_of(old), 0755);
        ck_assert_uint_eq(mode_of(oldnew), 0700);
        /* A file in the way. */
        testlib_write_file(file, "x", 1);
        ck_assert_int_eq(mkdir_parents(through, 0700), -ENOTDIR);
}
END_TEST

START_TEST(test_uuid_and_random) {
        char a[37], b[37];

        uuid4_string(a);
        uuid4_string(b);
        ck_assert_uint_eq(strlen(a), 36);
        ck_assert_str_ne(a, b);
        ck_assert(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
        ck_assert(a[14] == '4');
        ck_assert(strchr("89ab", a[19]));
        ck_assert(random_u64() != random_u64() || random_u64() != random_u64());
}
END_TEST

static Suite *util_suite(void) {
        Suite *s = suite_create("util");
        TCase *tc;

        tc = tcase_create("pure");
        tcase_add_test(tc, test_parse_duration_good);
        tcase_add_test(tc, test_parse_duration_bad);
        tcase_add_test(tc, test_format_duration);
        tcase_add_test(tc, test_format_rfc3339);
        tcase_add_test(tc, test_path_expand);
        tcase_add_test(tc, test_path_expand_errors);
        tcase_add_test(tc, test_path_expand_long_variable_name);
        tcase_add_test(tc, test_profile_name_is_valid);
        tcase_add_test(tc, test_string_has_prefix);
        tcase_add_test(tc, test_strbuf_join);
        tcase_add_test(tc, test_strbuf_oom_is_sticky);
        tcase_add_test(tc, test_uuid_and_random);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_checked_fixture(tc, testlib_scratch_setup, testlib_scratch_teardown);
        tcase_add_test(tc, test_read_file_full_limits);
        tcase_add_test(tc, test_mkdir_parents);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(util_suite());
}
