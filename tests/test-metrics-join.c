/* Tests for metrics_join() and metrics_relabel_sample(): the user label comes from the caller
 * (the kernel's word), never from the text; families are joined; foreign lines are dropped. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "shared/metrics-join.h"
#include "testlib.h"

static char *relabel(const char *line, const char *user) {
        char *out = NULL;
        int r = metrics_relabel_sample(line, strlen(line), user, &out);

        if (r < 0)
                return NULL;
        return out;
}

START_TEST(test_relabel) {
        char *s;

        s = relabel("aksspark_tokend_up 1", "alice");
        ck_assert_str_eq(s, "aksspark_tokend_up{user=\"alice\"} 1");
        free(s);
        s = relabel("aksspark_tokend_x{user=\"bob\",profile=\"p\"} 3 1700000000000", "alice");
        ck_assert_str_eq(s, "aksspark_tokend_x{user=\"alice\",profile=\"p\"} 3 1700000000000");
        free(s);
        /* Two user labels, one hidden behind an escaped quote: both are the text's, both go. */
        s = relabel("aksspark_tokend_x{profile=\"a\\\",user=\\\"x\",user=\"bob\" ,user = \"carol\",} 1.5e3", "alice");
        ck_assert_str_eq(s, "aksspark_tokend_x{user=\"alice\",profile=\"a\\\",user=\\\"x\"} 1.5e3");
        free(s);
        s = relabel("aksspark_tokend_x{} NaN", "a\"b\\c");
        ck_assert_str_eq(s, "aksspark_tokend_x{user=\"a\\\"b\\\\c\"} NaN");
        free(s);
        ck_assert_ptr_null(relabel("aksspark_tokend_x{user=\"bob\"", "alice"));
        ck_assert_ptr_null(relabel("aksspark_tokend_x{user=\"bob} 1", "alice"));
        ck_assert_ptr_null(relabel("aksspark_tokend_x{user=\"bob\"} one", "alice"));
        ck_assert_ptr_null(relabel("aksspark_tokend_x{user=bob} 1", "alice"));
        ck_assert_ptr_null(relabel("aksspark_tokend_x", "alice"));
        ck_assert_ptr_null(relabel("aksspark_tokend_x 1 2 3", "alice"));
        ck_assert_ptr_null(relabel("{user=\"bob\"} 1", "alice"));
        ck_assert_ptr_null(relabel("aksspark_tokend_x{a=\"\\q\"} 1", "alice"));
}
END_TEST

START_TEST(test_join) {
        static const char alice[] = "# HELP aksspark_tokend_refreshes_total Refreshes.\n"
                                    "# TYPE aksspark_tokend_refreshes_total counter\n"
                                    "aksspark_tokend_refreshes_total{user=\"bob\",result=\"ok\"} 7\n"
                                    "aksspark_tokend_up{user=\"bob\"} 1\n"
                                    "node_load1{user=\"bob\"} 99\n"
                                    "# TYPE node_load1 gauge\n"
                                    "garbage {\n"
                                    "aksspark_tokend_refreshes_total{user=\"carol\",result=\"ok\"} 8";
        static const char bob[] = "# HELP aksspark_tokend_refreshes_total Bob's help.\n"
                                  "# TYPE aksspark_tokend_refreshes_total gauge\n"
                                  "# TYPE aksspark_tokend_build_info gauge\n"
                                  "aksspark_tokend_build_info{version=\"1\"} 1\n"
                                  "aksspark_tokend_refreshes_total{result=\"ok\"} 2\n";
        MetricsInstance in[] = {
                { .user = "alice", .text = alice, .len = strlen(alice) },
                { .user = "bob", .text = bob, .len = strlen(bob) },
                { .user = "dave", .text = NULL },
                { .user = "alice", .text = bob, .len = strlen(bob) },
        };
        char *out = NULL;

        ck_assert_int_eq(metrics_join(in, 4, &out), 0);
        ck_assert_str_eq(out, "# HELP aksspark_tokend_refreshes_total Refreshes.\n"
                              "# TYPE aksspark_tokend_refreshes_total counter\n"
                              "aksspark_tokend_refreshes_total{user=\"alice\",result=\"ok\"} 7\n"
                              "aksspark_tokend_refreshes_total{user=\"alice\",result=\"ok\"} 8\n"
                              "aksspark_tokend_refreshes_total{user=\"bob\",result=\"ok\"} 2\n"
                              "# TYPE aksspark_tokend_build_info gauge\n"
                              "aksspark_tokend_build_info{user=\"bob\",version=\"1\"} 1\n"
                              "# HELP aksspark_tokend_up Whether the person's aksspark-tokend answered within 1 s.\n"
                              "# TYPE aksspark_tokend_up gauge\n"
                              "aksspark_tokend_up{user=\"alice\"} 1\n"
                              "aksspark_tokend_up{user=\"bob\"} 1\n"
                              "aksspark_tokend_up{user=\"dave\"} 0\n");
        free(out);

        ck_assert_int_eq(metrics_join(NULL, 0, &out), 0);
        ck_assert_ptr_nonnull(strstr(out, "# TYPE aksspark_tokend_up gauge\n"));
        free(out);
}
END_TEST

static Suite *metrics_join_suite(void) {
        Suite *s = suite_create("metrics-join");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_relabel);
        tcase_add_test(tc, test_join);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(metrics_join_suite());
}
