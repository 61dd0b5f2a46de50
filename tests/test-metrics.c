/* Tests for metrics_render(): the exact exposition of a known snapshot, the enum idiom for the
 * state, what is absent before it exists, and the escaping of label values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outputs/metrics.h"
#include "testlib.h"

#define T0 ((usec_t) 1764620000 * USEC_PER_SEC)

static const MetricsDaemon daemon_info = {
        .version = "0.1.0", .user = "alice", .start_time = T0 + 123456, /* the fraction is dropped */
};

static char *render(const MetricsDaemon *d, const ProfileSnapshot *p, size_t n) {
        char *text = NULL;

        ck_assert_int_eq(metrics_render(d, p, n, &text), 0);
        ck_assert_ptr_nonnull(text);
        return text;
}

static void assert_has_line(const char *text, const char *line) {
        _cleanup_free_ char *needle = NULL;

        ck_assert_int_ge(asprintf(&needle, "\n%s\n", line), 0);
        /* text starts with a HELP line, so every sample follows a '\n'. */
        if (!strstr(text, needle))
                ck_abort_msg("missing line: %s\nin:\n%s", line, text);
}

static void assert_no_line_starting(const char *text, const char *prefix) {
        _cleanup_free_ char *needle = NULL;

        ck_assert_int_ge(asprintf(&needle, "\n%s", prefix), 0);
        if (strstr(text, needle))
                ck_abort_msg("unexpected line starting %s in:\n%s", prefix, text);
}

START_TEST(test_full_snapshot) {
        const OutputSnapshot outputs[] = {
                { .path = "/home/alice/.kube/oauthToken",
                  .kind = "token_file",
                  .attempted = true,
                  .ok = true,
                  .last_attempt = T0 + 60 * USEC_PER_SEC,
                  .last_success = T0 + 60 * USEC_PER_SEC },
                { .path = "/home/alice/spark.properties",
                  .kind = "spark_properties",
                  .attempted = true,
                  .ok = false,
                  .error = "rename: No space left on device",
                  .last_attempt = T0 + 61 * USEC_PER_SEC,
                  .last_success = T0 + 1 * USEC_PER_SEC },
        };
        const ProfileSnapshot p[] = {
                { .name = "default",
                  .state = PROFILE_VALID,
                  .expires_on = T0 + 3600 * USEC_PER_SEC,
                  .last_refresh = T0 + 60 * USEC_PER_SEC,
                  .outputs = outputs,
                  .n_outputs = 2,
                  .refreshes = { [REFRESH_OK] = 7,
                                 [REFRESH_TRANSIENT] = 2,
                                 [REFRESH_LOGIN_REQUIRED] = 0,
                                 [REFRESH_CONFIG_ERROR] = 1 } },
        };
        _cleanup_free_ char *text = render(&daemon_info, p, 1);

        ck_assert(strncmp(text, "# HELP aksspark_tokend_build_info ", 34) == 0);
        ck_assert(text[strlen(text) - 1] == '\n');
        assert_has_line(text, "# TYPE aksspark_tokend_build_info gauge");
        assert_has_line(text, "aksspark_tokend_build_info{user=\"alice\",version=\"0.1.0\"} 1");
        assert_has_line(text, "aksspark_tokend_start_time_seconds{user=\"alice\"} 1764620000");

        assert_has_line(text, "# TYPE aksspark_tokend_profile_state gauge");
        assert_has_line(text, "aksspark_tokend_profile_state{user=\"alice\",profile=\"default\",state=\"valid\"} 1");
        assert_has_line(text,
                        "aksspark_tokend_profile_state{user=\"alice\",profile=\"default\",state=\"refreshing\"} 0");
        assert_has_line(text,
                        "aksspark_tokend_profile_state{user=\"alice\",profile=\"default\",state=\"login_required\"} 0");
        assert_has_line(text, "aksspark_tokend_profile_state{user=\"alice\",profile=\"default\",state=\"expired\"} 0");
        assert_has_line(text, "aksspark_tokend_profile_state{user=\"alice\",profile=\"default\",state=\"error\"} 0");

        assert_has_line(
                text, "aksspark_tokend_token_expiry_timestamp_seconds{user=\"alice\",profile=\"default\"} 1764623600");
        assert_has_line(text, "# TYPE aksspark_tokend_refreshes_total counter");
        assert_has_line(text, "aksspark_tokend_refreshes_total{user=\"alice\",profile=\"default\",result=\"ok\"} 7");
        assert_has_line(text,
                        "aksspark_tokend_refreshes_total{user=\"alice\",profile=\"default\",result=\"transient\"} 2");
        assert_has_line(
                text,
                "aksspark_tokend_refreshes_total{user=\"alice\",profile=\"default\",result=\"login_required\"} 0");
        assert_has_line(
                text, "aksspark_tokend_refreshes_total{user=\"alice\",profile=\"default\",result=\"config_error\"} 1");
        assert_has_line(
                text, "aksspark_tokend_last_refresh_timestamp_seconds{user=\"alice\",profile=\"default\"} 1764620060");

        assert_has_line(text, "aksspark_tokend_output_ok{user=\"alice\",profile=\"default\","
                              "path=\"/home/alice/.kube/oauthToken\",kind=\"token_file\"} 1");
        assert_has_line(text, "aksspark_tokend_output_ok{user=\"alice\",profile=\"default\","
                              "path=\"/home/alice/spark.properties\",kind=\"spark_properties\"} 0");
        assert_has_line(text, "aksspark_tokend_output_last_write_timestamp_seconds{user=\"alice\",profile=\"default\","
                              "path=\"/home/alice/spark.properties\",kind=\"spark_properties\"} 1764620061");
        assert_has_line(text,
                        "aksspark_tokend_output_last_success_timestamp_seconds{user=\"alice\",profile=\"default\","
                        "path=\"/home/alice/spark.properties\",kind=\"spark_properties\"} 1764620001");
        /* The error text is for status, not a label (unbounded cardinality). */
        ck_assert_ptr_null(strstr(text, "No space left"));
}
END_TEST

START_TEST(test_absent_before_it_exists) {
        const OutputSnapshot outputs[] = {
                { .path = "/home/bob/.kube/oauthToken", .kind = "token_file" },
        };
        const ProfileSnapshot p[] = {
                { .name = "default", .state = PROFILE_LOGIN_REQUIRED, .outputs = outputs, .n_outputs = 1 },
        };
        const MetricsDaemon d = { .version = "0.1.0" };
        _cleanup_free_ char *text = render(&d, p, 1);

        /* Every family still has HELP and TYPE. */
        assert_has_line(text, "# TYPE aksspark_tokend_token_expiry_timestamp_seconds gauge");
        assert_has_line(text, "# TYPE aksspark_tokend_output_ok gauge");
        assert_has_line(text, "# TYPE aksspark_tokend_start_time_seconds gauge");
        /* No user label when none is given. */
        assert_has_line(text, "aksspark_tokend_build_info{version=\"0.1.0\"} 1");
        assert_has_line(text, "aksspark_tokend_profile_state{profile=\"default\",state=\"login_required\"} 1");
        assert_has_line(text, "aksspark_tokend_profile_state{profile=\"default\",state=\"valid\"} 0");
        assert_has_line(text, "aksspark_tokend_refreshes_total{profile=\"default\",result=\"ok\"} 0");
        assert_no_line_starting(text, "aksspark_tokend_start_time_seconds");
        assert_no_line_starting(text, "aksspark_tokend_token_expiry_timestamp_seconds");
        assert_no_line_starting(text, "aksspark_tokend_last_refresh_timestamp_seconds");
        assert_no_line_starting(text, "aksspark_tokend_output_");
}
END_TEST

START_TEST(test_no_profiles) {
        const MetricsDaemon d = { .version = "0.1.0", .user = "carol", .start_time = T0 };
        _cleanup_free_ char *text = render(&d, NULL, 0);

        assert_has_line(text, "aksspark_tokend_build_info{user=\"carol\",version=\"0.1.0\"} 1");
        assert_has_line(text, "# TYPE aksspark_tokend_refreshes_total counter");
        assert_no_line_starting(text, "aksspark_tokend_profile_state");
}
END_TEST

START_TEST(test_label_escaping) {
        const OutputSnapshot outputs[] = {
                { .path = "/home/d/we\"ird\\dir\nname/\xff\xc3\xa9.properties",
                  .kind = "spark_properties",
                  .attempted = true,
                  .ok = true,
                  .last_attempt = T0 },
        };
        const ProfileSnapshot p[] = {
                { .name = "a.b-c_d", .state = PROFILE_EXPIRED, .outputs = outputs, .n_outputs = 1 },
        };
        const MetricsDaemon d = { .version = "1\"2", .user = "d\\e" };
        _cleanup_free_ char *text = render(&d, p, 1);

        assert_has_line(text, "aksspark_tokend_build_info{user=\"d\\\\e\",version=\"1\\\"2\"} 1");
        /* \ " and newline escaped; the stray byte 0xff becomes U+FFFD, the é stays. */
        assert_has_line(text, "aksspark_tokend_output_ok{user=\"d\\\\e\",profile=\"a.b-c_d\","
                              "path=\"/home/d/we\\\"ird\\\\dir\\nname/\xef\xbf\xbd\xc3\xa9.properties\","
                              "kind=\"spark_properties\"} 1");
        /* No raw newline inside a sample: every line is a comment or starts with the prefix. */
        for (const char *l = text; *l; l = strchr(l, '\n') + 1)
                ck_assert(strncmp(l, "# ", 2) == 0 || strncmp(l, "aksspark_tokend_", 16) == 0);
}
END_TEST

static Suite *metrics_suite(void) {
        Suite *s = suite_create("metrics");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_full_snapshot);
        tcase_add_test(tc, test_absent_before_it_exists);
        tcase_add_test(tc, test_no_profiles);
        tcase_add_test(tc, test_label_escaping);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(metrics_suite());
}
