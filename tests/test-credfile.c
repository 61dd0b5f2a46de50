/* Tests for credential files: read on demand into a Secret, refused when others may read them,
 * and the --check-config verdicts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "idp/credfile.h"
#include "testlib.h"

static char *file(const char *name, const char *data, mode_t mode) {
        char *p = testlib_path(testlib_scratch, name);

        testlib_write_file(p, data, strlen(data));
        ck_assert_int_eq(chmod(p, mode), 0);
        return p;
}

START_TEST(test_read) {
        _cleanup_free_ char *ok = file("secret", "Fk8Q~secret\r\n", 0600), *wide = file("wide", "x", 0640),
                            *other = file("other", "x", 0604), *empty = file("empty", "\n", 0600),
                            *fifo = testlib_path(testlib_scratch, "fifo"), *big = testlib_path(testlib_scratch, "big");
        Secret *s = NULL;

        ck_assert_int_eq(credfile_read(ok, CREDFILE_MAX, true, true, &s), 0);
        ck_assert_str_eq(secret_reveal(s), "Fk8Q~secret");
        s = secret_free(s);
        ck_assert_int_eq(credfile_read(ok, CREDFILE_MAX, true, false, &s), 0);
        ck_assert_str_eq(secret_reveal(s), "Fk8Q~secret\r\n");
        s = secret_free(s);
        ck_assert_int_eq(credfile_read(wide, CREDFILE_MAX, true, true, &s), -EPERM);
        ck_assert_int_eq(credfile_read(other, CREDFILE_MAX, true, true, &s), -EPERM);
        /* a federated token may be world-readable: the kubelet decides its mode */
        ck_assert_int_eq(credfile_read(other, CREDFILE_MAX, false, true, &s), 0);
        s = secret_free(s);
        ck_assert_int_eq(credfile_read(empty, CREDFILE_MAX, true, true, &s), -ENODATA);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        ck_assert_int_eq(credfile_read(fifo, CREDFILE_MAX, true, true, &s), -EBADFD); /* never blocks */
        testlib_write_file(big, "0123456789", 10);
        ck_assert_int_eq(chmod(big, 0600), 0);
        ck_assert_int_eq(credfile_read(big, 9, true, true, &s), -EFBIG);
        ck_assert_int_eq(credfile_read("/nonexistent/secret", CREDFILE_MAX, true, true, &s), -ENOENT);
        ck_assert_ptr_null(s);
}
END_TEST

START_TEST(test_check_profile) {
        _cleanup_free_ char *wide = file("wide", "x", 0644), *pem = file("pem", "not a certificate", 0600);
        ProfileConfig p = { .name = (char *) "sp", .client_secret_file = wide, .client_certificate = pem };
        ConfigErrors e = {};

        ck_assert_int_eq(credfile_check_profile(&p, &e), 2);
        ck_assert_uint_eq(e.n, 2);
        ck_assert_msg(strstr(e.lines[0], "profile 'sp': client_secret_file ") &&
                              strstr(e.lines[0], "may be read by others than its owner: run chmod 600"),
                      "%s", e.lines[0]);
        ck_assert_msg(strstr(e.lines[1], "holds no PEM certificate"), "%s", e.lines[1]);
        config_errors_clear(&e);
}
END_TEST

static Suite *credfile_suite(void) {
        Suite *s = suite_create("credfile");
        TCase *tc = tcase_create("files");

        tcase_add_checked_fixture(tc, testlib_scratch_setup, testlib_scratch_teardown);
        tcase_add_test(tc, test_read);
        tcase_add_test(tc, test_check_profile);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(credfile_suite());
}
