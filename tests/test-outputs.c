/* Tests for outputs.c: which files a profile writes, what goes into them, and the per-output
 * results that status shows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/util.h"
#include "outputs/outputs.h"
#include "testlib.h"

#define KEY "spark.kubernetes.authenticate.submission.oauthToken"
#define TOKEN "eyJ0eXAiOiJKV1QifQ.eyJ1cG4iOiJhbGljZSJ9.c2ln"

static void setup(void) {
        umask(022);
        testlib_scratch_setup();
}

static char *at(const char *name) {
        return testlib_path(testlib_scratch, name);
}

static char *read_all(const char *path) {
        char *text = NULL;
        size_t len;

        ck_assert_int_eq(read_file_full(path, 4 << 20, &text, &len), 0);
        return text;
}

static char *kubeconfig_data(const char *name) {
        const char *src = getenv("AKSSPARK_SOURCE_DIR");
        char *p;

        ck_assert_ptr_nonnull(src);
        ck_assert_int_ge(asprintf(&p, "%s/tests/data/kubeconfig/%s", src, name), 0);
        return p;
}

START_TEST(test_new_from_profile) {
        char *props[] = { (char *) "/a/spark.properties", (char *) "/b/spark.properties" };
        ProfileConfig p = {
                .name = (char *) "default",
                .token_file = (char *) "/home/alice/.kube/oauthToken",
                .spark_properties = props,
                .n_spark_properties = 2,
                .kubeconfig = (char *) "/home/alice/.kube/config",
        };
        ProfileConfig none = { .name = (char *) "other" };
        _cleanup_(outputs_freep) Outputs *o = NULL, *empty = NULL;

        ck_assert_int_eq(outputs_new(&p, NULL, &o), 0);
        ck_assert_uint_eq(o->n, 3);
        ck_assert_int_eq(o->items[0].kind, OUTPUT_TOKEN_FILE);
        ck_assert_str_eq(o->items[0].path, "/home/alice/.kube/oauthToken");
        ck_assert_int_eq(o->items[1].kind, OUTPUT_SPARK_PROPERTIES);
        ck_assert_str_eq(o->items[1].path, "/a/spark.properties");
        ck_assert_str_eq(o->items[2].path, "/b/spark.properties");
        ck_assert_str_eq(o->kubeconfig, "/home/alice/.kube/config");
        ck_assert_ptr_ne(o->kubeconfig, p.kubeconfig);
        for (size_t i = 0; i < o->n; i++)
                ck_assert(!o->items[i].attempted);
        ck_assert(!outputs_all_ok(o));

        ck_assert_str_eq(output_kind_to_string(OUTPUT_TOKEN_FILE), "token_file");
        ck_assert_str_eq(output_kind_to_string(OUTPUT_SPARK_PROPERTIES), "spark_properties");

        ck_assert_int_eq(outputs_new(&none, NULL, &empty), 0);
        ck_assert_uint_eq(empty->n, 0);
        ck_assert_ptr_null(empty->kubeconfig);
        ck_assert(outputs_all_ok(empty));
}
END_TEST

START_TEST(test_write_all) {
        _cleanup_free_ char *token_file = at("kube/oauthToken"), *new_props = at("spark/new.properties"),
                            *old_props = at("old.properties"), *kubeconfig = kubeconfig_data("aks.yaml"), *text = NULL;
        char *props[] = { new_props, old_props };
        ProfileConfig p = {
                .name = (char *) "default",
                .token_file = token_file,
                .spark_properties = props,
                .n_spark_properties = 2,
                .kubeconfig = kubeconfig,
        };
        _cleanup_(outputs_freep) Outputs *o = NULL;
        _cleanup_secret_ Secret *token = secret_new_string(TOKEN);
        const char *old = "# mine\r\nspark.master k8s://https://mine:443\r\n" KEY " = stale\r\nspark.app.name x\r\n";
        struct stat st;

        testlib_write_file(old_props, old, strlen(old));
        ck_assert_int_eq(outputs_new(&p, NULL, &o), 0);
        ck_assert_int_eq(outputs_write_all(o, token, 1234 * USEC_PER_SEC), 0);
        ck_assert(outputs_all_ok(o));

        text = read_all(token_file);
        ck_assert_str_eq(text, TOKEN); /* raw, no newline */
        free(text);
        ck_assert_int_eq(stat(token_file, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);

        text = read_all(new_props);
        ck_assert_str_eq(text, KEY " " TOKEN "\n"
                                   "spark.master k8s://https://spark-dns-1a2b3c4d.hcp.westeurope.azmk8s.io:443\n");
        free(text);
        ck_assert_int_eq(stat(new_props, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);

        /* The existing spark.master is never touched; only the token's value changes. */
        text = read_all(old_props);
        ck_assert_str_eq(text, "# mine\r\nspark.master k8s://https://mine:443\r\n" KEY " = " TOKEN
                               "\r\nspark.app.name x\r\n");

        for (size_t i = 0; i < o->n; i++) {
                ck_assert(o->items[i].attempted);
                ck_assert_int_eq(o->items[i].last_result, 0);
                ck_assert_uint_eq(o->items[i].last_attempt, 1234 * USEC_PER_SEC);
                ck_assert_uint_eq(o->items[i].last_success, 1234 * USEC_PER_SEC);
                ck_assert_ptr_null(o->items[i].last_message);
        }
}
END_TEST

static void check_new_props_without_master(const char *kubeconfig_name, bool missing) {
        _cleanup_free_ char *props = at("spark.properties"), *kubeconfig = NULL, *text = NULL;
        char *list[] = { props };
        ProfileConfig p = { .name = (char *) "x", .spark_properties = list, .n_spark_properties = 1 };
        _cleanup_(outputs_freep) Outputs *o = NULL;
        _cleanup_secret_ Secret *token = secret_new_string(TOKEN);

        kubeconfig = missing ? at(kubeconfig_name) : kubeconfig_data(kubeconfig_name);
        p.kubeconfig = kubeconfig;
        (void) unlink(props);
        ck_assert_int_eq(outputs_new(&p, NULL, &o), 0);
        ck_assert_int_eq(outputs_write_all(o, token, 1), 0);
        text = read_all(props);
        ck_assert_str_eq(text, KEY " " TOKEN "\n");
}

START_TEST(test_unusable_kubeconfig) {
        /* A kubeconfig that cannot give a server costs the spark.master line, not the write. */
        check_new_props_without_master("does-not-exist", true);
        check_new_props_without_master("no-current-context.yaml", false);
        check_new_props_without_master("cluster-without-server.yaml", false);
        check_new_props_without_master("not-yaml.yaml", false);
}
END_TEST

START_TEST(test_failure_recorded_and_recovered) {
        _cleanup_free_ char *blocker = at("blocker"), *bad = at("blocker/oauthToken"), *good = at("good.properties"),
                            *big = at("big.properties"), *content = NULL, *text = NULL;
        char *props[] = { good, big };
        ProfileConfig p = {
                .name = (char *) "x",
                .token_file = bad,
                .spark_properties = props,
                .n_spark_properties = 2,
        };
        _cleanup_(outputs_freep) Outputs *o = NULL;
        _cleanup_secret_ Secret *token = secret_new_string(TOKEN);
        size_t big_len = 1024 * 1024 + 1;

        testlib_write_file(blocker, "a file where a directory should be", 34);
        content = malloc(big_len);
        memset(content, '#', big_len);
        testlib_write_file(big, content, big_len);

        ck_assert_int_eq(outputs_new(&p, NULL, &o), 0);
        ck_assert_int_eq(outputs_write_all(o, token, 10 * USEC_PER_SEC), -ENOTDIR); /* the first failure */
        ck_assert(!outputs_all_ok(o));

        /* Every output was attempted; the good one was written. */
        ck_assert(o->items[0].attempted);
        ck_assert_int_eq(o->items[0].last_result, -ENOTDIR);
        ck_assert_uint_eq(o->items[0].last_success, 0);
        ck_assert_ptr_nonnull(strstr(o->items[0].last_message, "Not a directory"));
        ck_assert_ptr_null(strstr(o->items[0].last_message, TOKEN));

        ck_assert_int_eq(o->items[1].last_result, 0);
        text = read_all(good);
        ck_assert_str_eq(text, KEY " " TOKEN "\n");
        free(text);

        ck_assert_int_eq(o->items[2].last_result, -EFBIG);
        ck_assert_ptr_nonnull(strstr(o->items[2].last_message, "larger than 1 MiB"));
        text = read_all(big);
        ck_assert(memcmp(text, content, big_len) == 0); /* untouched */
        free(text);
        text = NULL;

        /* The causes gone, the next round succeeds and clears the messages. */
        ck_assert_int_eq(unlink(blocker), 0);
        ck_assert_int_eq(truncate(big, 0), 0);
        ck_assert_int_eq(outputs_write_all(o, token, 20 * USEC_PER_SEC), 0);
        ck_assert(outputs_all_ok(o));
        for (size_t i = 0; i < o->n; i++) {
                ck_assert_int_eq(o->items[i].last_result, 0);
                ck_assert_ptr_null(o->items[i].last_message);
                ck_assert_uint_eq(o->items[i].last_success, 20 * USEC_PER_SEC);
        }
        text = read_all(bad);
        ck_assert_str_eq(text, TOKEN);
}
END_TEST

START_TEST(test_narrowed_logged_once) {
        _cleanup_free_ char *token_file = at("oauthToken");
        ProfileConfig p = { .name = (char *) "x", .token_file = token_file };
        _cleanup_(outputs_freep) Outputs *o = NULL;
        _cleanup_secret_ Secret *t1 = secret_new_string("one"), *t2 = secret_new_string("two");
        struct stat st;

        testlib_write_file(token_file, "old", 3);
        ck_assert_int_eq(chmod(token_file, 0644), 0);
        ck_assert_int_eq(outputs_new(&p, NULL, &o), 0);
        ck_assert(!o->items[0].narrowed_logged);
        ck_assert_int_eq(outputs_write_all(o, t1, 1), 0);
        ck_assert(o->items[0].narrowed_logged);
        ck_assert_int_eq(stat(token_file, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(outputs_write_all(o, t2, 2), 0);
        ck_assert(o->items[0].narrowed_logged);
}
END_TEST

START_TEST(test_remove_stale_temps) {
        _cleanup_free_ char *token_file = at("oauthToken"), *props = at("spark.properties"),
                            *t1 = at(ATOMIC_TEMP_PREFIX "0123456789abcdef.oauthToken"),
                            *t2 = at(ATOMIC_TEMP_PREFIX "0123456789abcdef.spark.properties"),
                            *keep = at(ATOMIC_TEMP_PREFIX "0123456789abcdef.unrelated");
        char *list[] = { props };
        ProfileConfig p = {
                .name = (char *) "x", .token_file = token_file, .spark_properties = list, .n_spark_properties = 1
        };
        _cleanup_(outputs_freep) Outputs *o = NULL;

        testlib_write_file(t1, "x", 1);
        testlib_write_file(t2, "x", 1);
        testlib_write_file(keep, "x", 1);
        ck_assert_int_eq(outputs_new(&p, NULL, &o), 0);
        outputs_remove_stale_temps(o);
        ck_assert_int_eq(access(t1, F_OK), -1);
        ck_assert_int_eq(access(t2, F_OK), -1);
        ck_assert_int_eq(access(keep, F_OK), 0);
}
END_TEST

START_TEST(test_kubeconfig_output) {
        _cleanup_free_ char *dir = at("kube"), *source = at("kube/config"), *output = at("out/aksspark-default.yaml"),
                            *text = NULL;
        const char *src1 =
                "current-context: a\ncontexts: [{name: a, context: {cluster: b, namespace: spark-alice}}]\n"
                "clusters: [{name: b, cluster: {server: 'https://one:443', certificate-authority: ca.crt}}]\n"
                "users: [{name: u, user: {token: source-secret}}]\n";
        const char *src2 = "current-context: a\ncontexts: [{name: a, context: {cluster: b}}]\n"
                           "clusters: [{name: b, cluster: {server: 'https://two:443'}}]\n";
        ProfileConfig p = {
                .name = (char *) "default",
                .kubeconfig = source,
                .kubeconfig_output = output,
                .kubeconfig_exec_api_version = "client.authentication.k8s.io/v1beta1",
        };
        const OutputsExec exec = { .socket_path = "/run/user/1/aksspark-tokend.sock",
                                   .tokenctl_path = "/usr/bin/aksspark-tokenctl" };
        _cleanup_(outputs_freep) Outputs *o = NULL;
        _cleanup_secret_ Secret *token = secret_new_string(TOKEN);
        struct stat st, st2;
        _cleanup_free_ char *ca = NULL;

        /* Without the daemon's socket and client there is nothing to write. */
        ck_assert_int_eq(outputs_new(&p, NULL, &o), -EINVAL);
        ck_assert_int_eq(outputs_new(&p, &exec, &o), 0);
        ck_assert_uint_eq(o->n, 1);
        ck_assert_int_eq(o->items[0].kind, OUTPUT_KUBECONFIG);
        ck_assert_str_eq(output_kind_to_string(OUTPUT_KUBECONFIG), "kubeconfig_output");

        /* No source yet: a failure that says why. */
        ck_assert_int_eq(outputs_write_all(o, NULL, 1 * USEC_PER_SEC), -ENOENT);
        ck_assert(!outputs_all_ok(o));
        ck_assert_ptr_nonnull(strstr(o->items[0].last_message, "does not exist"));

        /* Written without a token, and with one: the same bytes, never the token. */
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        testlib_write_file(source, src1, strlen(src1));
        ck_assert_int_eq(outputs_write_all(o, NULL, 2 * USEC_PER_SEC), 0);
        ck_assert(outputs_all_ok(o));
        text = read_all(output);
        ck_assert_ptr_nonnull(strstr(text, "server: \"https://one:443\"\n"));
        ck_assert_int_ge(asprintf(&ca, "certificate-authority: \"%s/kube/ca.crt\"\n", testlib_scratch), 0);
        ck_assert_ptr_nonnull(strstr(text, ca));
        ck_assert_ptr_nonnull(strstr(text, "namespace: \"spark-alice\"\n"));
        ck_assert_ptr_nonnull(strstr(text, "apiVersion: \"client.authentication.k8s.io/v1beta1\"\n"));
        ck_assert_ptr_nonnull(strstr(text, "command: \"/usr/bin/aksspark-tokenctl\"\n"));
        ck_assert_ptr_nonnull(strstr(text, "- \"/run/user/1/aksspark-tokend.sock\"\n"));
        ck_assert_ptr_null(strstr(text, "source-secret"));
        ck_assert_ptr_null(strstr(text, TOKEN));
        ck_assert_int_eq(stat(output, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);

        /* Unchanged: not rewritten, whatever the token. */
        ck_assert_int_eq(outputs_write_all(o, token, 3 * USEC_PER_SEC), 0);
        ck_assert_int_eq(stat(output, &st2), 0);
        ck_assert_uint_eq(st.st_ino, st2.st_ino);
        free(text);
        text = read_all(output);
        ck_assert_ptr_null(strstr(text, TOKEN));

        /* A changed source is followed at the next write. */
        testlib_write_file(source, src2, strlen(src2));
        ck_assert_int_eq(outputs_write_all(o, token, 4 * USEC_PER_SEC), 0);
        free(text);
        text = read_all(output);
        ck_assert_ptr_nonnull(strstr(text, "server: \"https://two:443\"\n"));
        ck_assert_ptr_null(strstr(text, "namespace:"));

        /* A source that gives no cluster keeps the old file and says so. */
        testlib_write_file(source, "current-context: gone\n", 22);
        ck_assert_int_eq(outputs_write_all(o, token, 5 * USEC_PER_SEC), -ENOENT);
        ck_assert_ptr_nonnull(strstr(o->items[0].last_message, "no usable current-context"));
        free(text);
        text = read_all(output);
        ck_assert_ptr_nonnull(strstr(text, "server: \"https://two:443\"\n"));
}
END_TEST

static Suite *outputs_suite(void) {
        Suite *s = suite_create("outputs");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, testlib_scratch_teardown);
        tcase_add_test(tc, test_new_from_profile);
        tcase_add_test(tc, test_write_all);
        tcase_add_test(tc, test_kubeconfig_output);
        tcase_add_test(tc, test_unusable_kubeconfig);
        tcase_add_test(tc, test_failure_recorded_and_recovered);
        tcase_add_test(tc, test_narrowed_logged_once);
        tcase_add_test(tc, test_remove_stale_temps);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(outputs_suite());
}
