/* Tests for kubeconfig_current_server(): the kubeconfigs in tests/data/kubeconfig and inline
 * edge cases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubeconfig.h"
#include "testlib.h"
#include "util.h"

static int server_of_file(const char *name, char **ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        const char *src = getenv("AKSSPARK_SOURCE_DIR");
        size_t len;

        ck_assert_ptr_nonnull(src);
        ck_assert_int_ge(asprintf(&path, "%s/tests/data/kubeconfig/%s", src, name), 0);
        ck_assert_int_eq(read_file_full(path, 1 << 20, &text, &len), 0);
        return kubeconfig_current_server(text, len, ret);
}

static const struct {
        const char *file;
        int result;
        const char *server;
} cases[] = {
        { "aks.yaml", 0, "https://spark-dns-1a2b3c4d.hcp.westeurope.azmk8s.io:443" },
        { "several-contexts.yaml", 0, "https://prod.hcp.northeurope.azmk8s.io:443" },
        { "json.yaml", 0, "https://10.0.0.1:6443" },
        { "anchors.yaml", 0, "https://anchored.example:443" },
        { "no-current-context.yaml", -ENOENT, NULL },
        { "empty-current-context.yaml", -ENOENT, NULL },
        { "unknown-current-context.yaml", -ENOENT, NULL },
        { "unknown-cluster.yaml", -ENOENT, NULL },
        { "empty.yaml", -ENOENT, NULL },
        { "cluster-without-server.yaml", -ENODATA, NULL },
        { "duplicate-context.yaml", -EBADMSG, NULL },
        { "not-yaml.yaml", -EBADMSG, NULL },
        { "list.yaml", -EBADMSG, NULL },
        { "contexts-not-a-list.yaml", -EBADMSG, NULL },
};

START_TEST(test_files) {
        _cleanup_free_ char *server = NULL;
        int r;

        r = server_of_file(cases[_i].file, &server);
        ck_assert_msg(r == cases[_i].result, "%s: got %d, want %d", cases[_i].file, r, cases[_i].result);
        if (cases[_i].server)
                ck_assert_str_eq(server, cases[_i].server);
        else
                ck_assert_ptr_null(server);
}
END_TEST

static int server_of(const char *text, char **ret) {
        return kubeconfig_current_server(text, strlen(text), ret);
}

START_TEST(test_inline) {
        char *server = NULL;

        /* Not NUL-terminated: only len bytes are read. */
        const char text[] = "current-context: a\ncontexts: [{name: a, context: {cluster: b}}]\n"
                            "clusters: [{name: b, cluster: {server: https://b:1}}]\nXXXX";
        ck_assert_int_eq(kubeconfig_current_server(text, strlen(text) - 4, &server), 0);
        ck_assert_str_eq(server, "https://b:1");
        free(server);
        server = NULL;

        /* Null values and wrong types. */
        ck_assert_int_eq(server_of("current-context: ~\n", &server), -ENOENT);
        ck_assert_int_eq(server_of("current-context: [a]\n", &server), -EBADMSG);
        ck_assert_int_eq(server_of("current-context: a\ncontexts: null\n", &server), -ENOENT);
        ck_assert_int_eq(server_of("current-context: a\ncontexts: [{name: a, context: null}]\n", &server), -ENOENT);
        ck_assert_int_eq(server_of("current-context: a\ncontexts: [{name: a, context: {cluster: b}}]\n", &server),
                         -ENOENT);
        ck_assert_int_eq(server_of("current-context: a\ncontexts: [{name: a, context: {cluster: b}}]\n"
                                   "clusters: [{name: b, cluster: {server: null}}]\n",
                                   &server),
                         -ENODATA);
        ck_assert_int_eq(server_of("current-context: a\ncontexts: [{name: a, context: {cluster: b}}]\n"
                                   "clusters: [{name: b, cluster: {server: {x: 1}}}]\n",
                                   &server),
                         -EBADMSG);
        ck_assert_int_eq(server_of("current-context: a\ncontexts: [a]\n", &server), -EBADMSG);
        ck_assert_int_eq(server_of("\"just a string\"\n", &server), -EBADMSG);
        ck_assert_int_eq(kubeconfig_current_server(NULL, 0, &server), -ENOENT);
        ck_assert_int_eq(server_of("a: b\n---\nc: d\n", &server), -ENOENT); /* first document only */
        ck_assert_int_eq(server_of("\t\x01\xff", &server), -EBADMSG);
        ck_assert_ptr_null(server);

        /* A quoted "null" is a name, not null. */
        ck_assert_int_eq(server_of("current-context: 'null'\ncontexts: [{name: 'null', context: {cluster: b}}]\n"
                                   "clusters: [{name: b, cluster: {server: 'https://q:2'}}]\n",
                                   &server),
                         0);
        ck_assert_str_eq(server, "https://q:2");
        free(server);
}
END_TEST

static Suite *kubeconfig_suite(void) {
        Suite *s = suite_create("kubeconfig");
        TCase *tc = tcase_create("core");

        tcase_add_loop_test(tc, test_files, 0, (int) ELEMENTSOF(cases));
        tcase_add_test(tc, test_inline);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(kubeconfig_suite());
}
