/* Tests for doctor.c: HTTP dates, clock offsets, and the links fs.protected_symlinks refuses. */
#include <sys/stat.h>

#include "testlib.h"
#include "tokenctl/doctor.h"

START_TEST(test_http_dates) {
        time_t t = 0;

        ck_assert_int_eq(doctor_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
        ck_assert_int_eq(t, 784111777);
        t = 0;
        ck_assert_int_eq(doctor_parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT\r\n", &t), 0);
        ck_assert_int_eq(t, 784111777);
        t = 0;
        ck_assert_int_eq(doctor_parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", &t), 0);
        ck_assert_int_eq(t, 784111777);
        t = 0;
        ck_assert_int_eq(doctor_parse_http_date("Sun Nov  6 08:49:37 1994", &t), 0);
        ck_assert_int_eq(t, 784111777);
        ck_assert_int_eq(doctor_parse_http_date("Tue, 01 Dec 2026 20:15:30 GMT", &t), 0);
        ck_assert_int_eq(t, 1796156130);

        ck_assert_int_eq(doctor_parse_http_date("yesterday", &t), -EINVAL);
        ck_assert_int_eq(doctor_parse_http_date("", &t), -EINVAL);
        ck_assert_int_eq(doctor_parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT trailing", &t), -EINVAL);
        ck_assert_int_eq(doctor_parse_http_date("Sun, 06 Nov 1994 08:49 GMT", &t), -EINVAL);
        ck_assert_int_eq(doctor_parse_http_date(NULL, &t), -EINVAL);
}
END_TEST

START_TEST(test_clock_offset) {
        const int64_t s = (int64_t) USEC_PER_SEC;
        usec_t t = (usec_t) 1796156130 * USEC_PER_SEC;

        /* Anywhere within the server's second: no offset. */
        ck_assert_int_eq(doctor_clock_offset(t + 500 * USEC_PER_MSEC, 1796156130), 0);
        ck_assert_int_eq(doctor_clock_offset(t + 100 * USEC_PER_MSEC, 1796156130), 0);
        ck_assert_int_eq(doctor_clock_offset(t + 900 * USEC_PER_MSEC, 1796156130), 0);
        /* A server 10 minutes ahead, whatever the fraction. */
        ck_assert_int_eq(doctor_clock_offset(t + 200 * USEC_PER_MSEC, 1796156130 + 600), -600 * s);
        ck_assert_int_eq(doctor_clock_offset(t + 800 * USEC_PER_MSEC, 1796156130 + 600), -600 * s);
        ck_assert_int_eq(doctor_clock_offset(t + 800 * USEC_PER_MSEC, 1796156130 - 600), 600 * s);
        ck_assert_int_eq(doctor_clock_offset(t + 1600 * USEC_PER_MSEC, 1796156130), 1 * s);
}
END_TEST

START_TEST(test_protected_symlinks) {
        const mode_t tmp = S_IFDIR | 01777, plain = S_IFDIR | 0755, open_no_sticky = S_IFDIR | 0777,
                     sticky_group = S_IFDIR | 01775;

        /* /tmp (root's, sticky, world-writable): only my own links, or root's. */
        ck_assert(doctor_link_refused(1001, 0, tmp, 1000));
        ck_assert(!doctor_link_refused(1000, 0, tmp, 1000));
        ck_assert(!doctor_link_refused(0, 0, tmp, 1000));
        ck_assert(doctor_link_refused(1001, 0, tmp, 0)); /* root is held to it too */
        /* A sticky world-writable directory of someone else: their links pass. */
        ck_assert(!doctor_link_refused(1002, 1002, tmp, 1000));
        /* Not sticky, or not world-writable: any link. */
        ck_assert(!doctor_link_refused(1001, 0, plain, 1000));
        ck_assert(!doctor_link_refused(1001, 0, open_no_sticky, 1000));
        ck_assert(!doctor_link_refused(1001, 0, sticky_group, 1000));
}
END_TEST

static Suite *doctor_suite(void) {
        Suite *s = suite_create("doctor");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_http_dates);
        tcase_add_test(tc, test_clock_offset);
        tcase_add_test(tc, test_protected_symlinks);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(doctor_suite());
}
