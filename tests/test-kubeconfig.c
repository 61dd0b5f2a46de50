/* Tests for kubeconfig_current_server(), kubeconfig_context_server() and
 * kubeconfig_list_contexts(): the kubeconfigs in tests/data/kubeconfig and inline
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

static void list_file(const char *name, KubeconfigContexts *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        const char *src = getenv("AKSSPARK_SOURCE_DIR");
        size_t len;

        ck_assert_ptr_nonnull(src);
        ck_assert_int_ge(asprintf(&path, "%s/tests/data/kubeconfig/%s", src, name), 0);
        ck_assert_int_eq(read_file_full(path, 1 << 20, &text, &len), 0);
        ck_assert_int_eq(kubeconfig_list_contexts(text, len, ret), 0);
}

static const KubeconfigContext *find(const KubeconfigContexts *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->contexts[i].name, name) == 0)
                        return &l->contexts[i];
        ck_abort_msg("no context %s", name);
        return NULL;
}

static void ck_assert_str_eq_or_null(const char *got, const char *want) {
        if (want)
                ck_assert_str_eq(got ?: "(null)", want);
        else
                ck_assert_ptr_null(got);
}

static void expect_azure(const KubeconfigContext *c, KubeconfigAuth auth, const char *env, const char *server_id,
                         const char *client_id, const char *tenant, const char *login) {
        ck_assert_msg(c->auth == auth, "%s: auth %d (%s)", c->name, c->auth, c->why ?: "");
        ck_assert_str_eq_or_null(c->environment, env);
        ck_assert_str_eq_or_null(c->server_id, server_id);
        ck_assert_str_eq_or_null(c->client_id, client_id);
        ck_assert_str_eq_or_null(c->tenant_id, tenant);
        ck_assert_str_eq_or_null(c->login, login);
}

#define AKS_SERVER "6dae42f8-4368-4678-94ff-3960e28e3630"
#define AKS_CLIENT "80faf920-1908-4b52-b5ef-a8e7bedfc67a"

START_TEST(test_list_az_formats) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts a = {}, b = {}, s = {};
        const KubeconfigContext *c;

        list_file("az-kubelogin.yaml", &a);
        ck_assert_uint_eq(a.n, 1);
        ck_assert_str_eq(a.current, "spark-prod");
        c = &a.contexts[0];
        ck_assert_str_eq(c->name, "spark-prod");
        ck_assert_str_eq(c->cluster, "spark-prod");
        ck_assert_str_eq(c->user, "clusterUser_rg-spark_spark-prod");
        ck_assert_str_eq(c->server, "https://spark-prod-dns-4f5e6d7c.hcp.westeurope.azmk8s.io:443");
        expect_azure(c, KUBECONFIG_AUTH_KUBELOGIN, "AzurePublicCloud", AKS_SERVER, AKS_CLIENT,
                     "0b0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", "devicecode");

        list_file("az-azure-provider.yaml", &b);
        ck_assert_uint_eq(b.n, 1);
        expect_azure(&b.contexts[0], KUBECONFIG_AUTH_AZURE_PROVIDER, "AzurePublicCloud", AKS_SERVER, AKS_CLIENT,
                     "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", NULL);

        list_file("az-several.yaml", &s);
        ck_assert_uint_eq(s.n, 4);
        ck_assert_str_eq(s.current, "aks-prod");
        expect_azure(find(&s, "aks-dev"), KUBECONFIG_AUTH_KUBELOGIN, "AzurePublicCloud", AKS_SERVER, AKS_CLIENT,
                     "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f", "devicecode");
        c = find(&s, "kind-kind");
        ck_assert(c->auth == KUBECONFIG_AUTH_OTHER);
        ck_assert_ptr_nonnull(strstr(c->why, "client certificate"));
        ck_assert(find(&s, "aks-prod-admin")->auth == KUBECONFIG_AUTH_OTHER);
}
END_TEST

START_TEST(test_list_logins) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts l = {};
        const char *tenant = "7b8c9d0e-1f2a-4b3c-8d4e-6f7a8b9c0d1e";

        list_file("az-logins.yaml", &l);
        ck_assert_uint_eq(l.n, 7);
        expect_azure(find(&l, "aks-interactive"), KUBECONFIG_AUTH_KUBELOGIN, "AzurePublicCloud", AKS_SERVER,
                     AKS_CLIENT, tenant, "interactive");
        /* The secret after --client-secret is skipped: neither a flag nor a field. */
        expect_azure(find(&l, "aks-spn"), KUBECONFIG_AUTH_KUBELOGIN, "AzurePublicCloud", AKS_SERVER,
                     "8c9d0e1f-2a3b-4c4d-9e5f-7a8b9c0d1e2f", tenant, "spn");
        expect_azure(find(&l, "aks-msi"), KUBECONFIG_AUTH_KUBELOGIN, NULL, AKS_SERVER,
                     "9d0e1f2a-3b4c-4d5e-8f6a-8b9c0d1e2f3a", NULL, "msi");
        expect_azure(find(&l, "aks-workload"), KUBECONFIG_AUTH_KUBELOGIN, "AzurePublicCloud", AKS_SERVER, NULL, NULL,
                     "workloadidentity");
        expect_azure(find(&l, "aks-ropc"), KUBECONFIG_AUTH_KUBELOGIN, NULL, AKS_SERVER, AKS_CLIENT, tenant, "ropc");
        /* --flag=value, -t VALUE, a path to kubelogin, a flag without value (--legacy). */
        expect_azure(find(&l, "aks-equals"), KUBECONFIG_AUTH_KUBELOGIN, "AzurePublicCloud", AKS_SERVER, AKS_CLIENT,
                     "0e1f2a3b-4c5d-4e6f-9a7b-9c0d1e2f3a4b", "devicecode");
}
END_TEST

static int list_of(const char *text, KubeconfigContexts *ret) {
        return kubeconfig_list_contexts(text, strlen(text), ret);
}

START_TEST(test_list_inline) {
        KubeconfigContexts l = {};
        const char *base = "current-context: a\nclusters: [{name: c, cluster: {server: 'https://s'}}]\n"
                           "contexts: [{name: a, context: {cluster: c, user: u}}]\n";
        static const struct {
                const char *users;
                const char *why;        /* NULL: Azure AD */
        } users[] = {
                { "users: [{name: u, user: {exec: {command: kubelogin, args: [get-token, -l, msi, -e=AzureChinaCloud]}}}]", NULL },
                { "users: [{name: u, user: {exec: {command: kubelogin, args: [convert-kubeconfig]}}}]", "without get-token" },
                { "users: [{name: u, user: {exec: {command: gke-gcloud-auth-plugin}}}]", "another exec plugin" },
                { "users: [{name: u, user: {exec: {command: kubelogin, args: [get-token, {x: 1}]}}}]", "not all strings" },
                { "users: [{name: u, user: {exec: {command: kubelogin, args: get-token}}}]", "not a list" },
                { "users: [{name: u, user: {auth-provider: {name: oidc, config: {}}}}]", "other than azure" },
                { "users: [{name: u, user: {token: abc}}]", "static token" },
                { "users: [{name: u, user: {username: x, password: y}}]", "password" },
                { "users: [{name: u, user: {}}]", "no Azure AD sign-in" },
                { "users: [{name: v, user: {}}]", "not in the file" },
        };

        for (size_t i = 0; i < ELEMENTSOF(users); i++) {
                _cleanup_free_ char *text = NULL;

                ck_assert_int_ge(asprintf(&text, "%s%s\n", base, users[i].users), 0);
                ck_assert_int_eq(list_of(text, &l), 0);
                ck_assert_uint_eq(l.n, 1);
                ck_assert_str_eq(l.contexts[0].server, "https://s");
                if (users[i].why) {
                        ck_assert(l.contexts[0].auth == KUBECONFIG_AUTH_OTHER);
                        ck_assert_msg(strstr(l.contexts[0].why, users[i].why), "%s: %s", users[i].users,
                                      l.contexts[0].why);
                } else {
                        ck_assert(l.contexts[0].auth == KUBECONFIG_AUTH_KUBELOGIN);
                        ck_assert_str_eq(l.contexts[0].login, "msi");
                        ck_assert_str_eq(l.contexts[0].environment, "AzureChinaCloud");
                }
                kubeconfig_contexts_done(&l);
        }

        ck_assert_int_eq(list_of("", &l), 0);
        ck_assert_uint_eq(l.n, 0);
        ck_assert_int_eq(list_of("contexts: {a: b}\n", &l), -EBADMSG);
        ck_assert_int_eq(list_of("contexts: [a]\n", &l), -EBADMSG);
        ck_assert_int_eq(list_of("contexts: [{context: {}}]\n", &l), -EBADMSG);
        ck_assert_int_eq(list_of("contexts: [{name: a}, {name: a}]\n", &l), -EBADMSG);
        ck_assert_int_eq(list_of("\t\x01\xff", &l), -EBADMSG);
        /* A context without a user or cluster is listed, as not Azure AD. */
        ck_assert_int_eq(list_of("contexts: [{name: a}]\n", &l), 0);
        ck_assert_uint_eq(l.n, 1);
        ck_assert(l.contexts[0].auth == KUBECONFIG_AUTH_OTHER);
        ck_assert_ptr_null(l.current);
        kubeconfig_contexts_done(&l);
}
END_TEST

START_TEST(test_context_server) {
        _cleanup_free_ char *path = NULL, *text = NULL, *server = NULL;
        const char *src = getenv("AKSSPARK_SOURCE_DIR");
        size_t len;

        ck_assert_int_ge(asprintf(&path, "%s/tests/data/kubeconfig/az-several.yaml", src), 0);
        ck_assert_int_eq(read_file_full(path, 1 << 20, &text, &len), 0);
        ck_assert_int_eq(kubeconfig_context_server(text, len, "aks-dev", &server), 0);
        ck_assert_str_eq(server, "https://aks-dev-dns-11aa22bb.hcp.northeurope.azmk8s.io:443");
        free(server);
        ck_assert_int_eq(kubeconfig_context_server(text, len, NULL, &server), 0);
        ck_assert_str_eq(server, "https://aks-prod-dns-33cc44dd.hcp.westeurope.azmk8s.io:443");
        free(server);
        server = NULL;
        ck_assert_int_eq(kubeconfig_context_server(text, len, "nope", &server), -ENOENT);
        ck_assert_ptr_null(server);
}
END_TEST

static Suite *kubeconfig_suite(void) {
        Suite *s = suite_create("kubeconfig");
        TCase *tc = tcase_create("core");

        tcase_add_loop_test(tc, test_files, 0, (int) ELEMENTSOF(cases));
        tcase_add_test(tc, test_inline);
        tcase_add_test(tc, test_list_az_formats);
        tcase_add_test(tc, test_list_logins);
        tcase_add_test(tc, test_list_inline);
        tcase_add_test(tc, test_context_server);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(kubeconfig_suite());
}
