/* Tests for kubeconfig_current_server(), kubeconfig_context_server(), kubeconfig_list_contexts()
 * and kubeconfig_context_cluster(): the kubeconfigs in tests/data/kubeconfig and inline edge
 * cases; and for kubeconfig_render(), whose output is read back through the same reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "shared/kubeconfig.h"
#include "testlib.h"

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
        expect_azure(find(&l, "aks-interactive"), KUBECONFIG_AUTH_KUBELOGIN, "AzurePublicCloud", AKS_SERVER, AKS_CLIENT,
                     tenant, "interactive");
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

START_TEST(test_list_pop_enabled) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts l = {};

        list_file("az-pop.yaml", &l);
        ck_assert_uint_eq(l.n, 2);
        ck_assert(find(&l, "arc-pop")->pop_enabled);
        ck_assert_str_eq(find(&l, "arc-pop")->login, "devicecode"); /* --pop-claims' value is no flag */
        ck_assert(!find(&l, "arc-pop-false")->pop_enabled);
        ck_assert(find(&l, "arc-pop-false")->auth == KUBECONFIG_AUTH_KUBELOGIN);
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
                const char *why; /* NULL: Azure AD */
        } users[] = {
                { "users: [{name: u, user: {exec: {command: kubelogin, args: [get-token, -l, msi, -e=AzureChinaCloud]}}}]",
                  NULL },
                { "users: [{name: u, user: {exec: {command: kubelogin, args: [convert-kubeconfig]}}}]",
                  "without get-token" },
                { "users: [{name: u, user: {exec: {command: gke-gcloud-auth-plugin}}}]", "another exec plugin" },
                { "users: [{name: u, user: {exec: {command: kubelogin, args: [get-token, {x: 1}]}}}]",
                  "not all strings" },
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

static const KubeconfigExec test_exec = {
        .name = "default",
        .socket_path = "/run/user/1000/aksspark-tokend.sock",
        .tokenctl_path = "/usr/bin/aksspark-tokenctl",
        .api_version = KUBECONFIG_EXEC_V1,
};

static int cluster_of(const char *text, KubeconfigCluster *ret) {
        return kubeconfig_context_cluster(text, strlen(text), NULL, "/home/alice/.kube", ret);
}

START_TEST(test_cluster) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_(kubeconfig_cluster_done) KubeconfigCluster c = {};
        size_t len;

        ck_assert_int_ge(asprintf(&path, "%s/tests/data/kubeconfig/aks.yaml", getenv("AKSSPARK_SOURCE_DIR")), 0);
        ck_assert_int_eq(read_file_full(path, 1 << 20, &text, &len), 0);
        ck_assert_int_eq(kubeconfig_context_cluster(text, len, NULL, NULL, &c), 0);
        ck_assert_str_eq(c.server, "https://spark-dns-1a2b3c4d.hcp.westeurope.azmk8s.io:443");
        ck_assert_str_eq(
                c.certificate_authority_data,
                "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUU2RENDQXRDZ0F3SUJBZ0lRQ2VkL1V3PT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=");
        ck_assert_ptr_null(c.certificate_authority);
        ck_assert(!c.insecure_skip_tls_verify);
        ck_assert_ptr_null(c.namespace);
        kubeconfig_cluster_done(&c);

        /* Every field, a relative CA file made absolute against the source's directory. */
        ck_assert_int_eq(
                cluster_of(
                        "current-context: a\n"
                        "contexts: [{name: a, context: {cluster: b, namespace: spark-alice}}]\n"
                        "clusters: [{name: b, cluster: {server: 'https://b:1', certificate-authority: ca/ca.crt,\n"
                        "  insecure-skip-tls-verify: yes, tls-server-name: b.internal, proxy-url: 'http://proxy:3128'}}]\n",
                        &c),
                0);
        ck_assert_str_eq(c.server, "https://b:1");
        ck_assert_str_eq(c.certificate_authority, "/home/alice/.kube/ca/ca.crt");
        ck_assert_ptr_null(c.certificate_authority_data);
        ck_assert(c.insecure_skip_tls_verify);
        ck_assert_str_eq(c.tls_server_name, "b.internal");
        ck_assert_str_eq(c.proxy_url, "http://proxy:3128");
        ck_assert_str_eq(c.namespace, "spark-alice");
        kubeconfig_cluster_done(&c);

        /* An absolute CA file stays; insecure-skip-tls-verify false is the default. */
        ck_assert_int_eq(cluster_of("current-context: a\ncontexts: [{name: a, context: {cluster: b}}]\n"
                                    "clusters: [{name: b, cluster: {server: s, certificate-authority: /etc/ca.pem,\n"
                                    "  insecure-skip-tls-verify: false}}]\n",
                                    &c),
                         0);
        ck_assert_str_eq(c.certificate_authority, "/etc/ca.pem");
        ck_assert(!c.insecure_skip_tls_verify);
        kubeconfig_cluster_done(&c);

        /* A named context instead of the current one (kubeconfig_context). */
        {
                const char *two =
                        "current-context: a\ncontexts: [{name: a, context: {cluster: b}}, {name: c, context: {cluster: d, namespace: n}}]\n"
                        "clusters: [{name: b, cluster: {server: 'https://b:1'}}, {name: d, cluster: {server: 'https://d:2'}}]\n";
                ck_assert_int_eq(kubeconfig_context_cluster(two, strlen(two), "c", NULL, &c), 0);
                ck_assert_str_eq(c.server, "https://d:2");
                ck_assert_str_eq(c.namespace, "n");
                kubeconfig_cluster_done(&c);
                ck_assert_int_eq(kubeconfig_context_cluster(two, strlen(two), "nope", NULL, &c), -ENOENT);
        }

        /* Refusals. */
        ck_assert_int_eq(cluster_of("current-context: a\ncontexts: [{name: a, context: {cluster: b}}]\n"
                                    "clusters: [{name: b, cluster: {server: s, insecure-skip-tls-verify: maybe}}]\n",
                                    &c),
                         -EBADMSG);
        ck_assert_int_eq(cluster_of("current-context: a\ncontexts: [{name: a, context: {cluster: b, namespace: [x]}}]\n"
                                    "clusters: [{name: b, cluster: {server: s}}]\n",
                                    &c),
                         -EBADMSG);
        ck_assert_int_eq(cluster_of("current-context: a\ncontexts: [{name: a, context: {cluster: b}}]\n"
                                    "clusters: [{name: b, cluster: {certificate-authority-data: x}}]\n",
                                    &c),
                         -ENODATA);
        ck_assert_int_eq(cluster_of("current-context: a\n", &c), -ENOENT);
        ck_assert_int_eq(cluster_of("[1, 2]\n", &c), -EBADMSG);
        ck_assert_ptr_null(c.server);
}
END_TEST

static void render(const KubeconfigCluster *c, const KubeconfigExec *x, char **ret) {
        size_t len;

        ck_assert_int_eq(kubeconfig_render(c, x, ret, &len), 0);
        ck_assert_uint_eq(strlen(*ret), len);
}

START_TEST(test_render) {
        _cleanup_free_ char *out = NULL, *server = NULL;
        _cleanup_(kubeconfig_cluster_done) KubeconfigCluster back = {};
        KubeconfigCluster c = {
                .server = (char *) "https://spark-dns.hcp.westeurope.azmk8s.io:443",
                .certificate_authority_data = (char *) "TFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0Q2c9PQ==",
                .namespace = (char *) "spark-alice",
        };

        render(&c, &test_exec, &out);
        /* The exact file: a person reads it, and every client parses it. */
        ck_assert_str_eq(
                out,
                "# Written by aksspark-tokend (kubeconfig_output): rewritten when the source kubeconfig or the profile changes; do not edit.\n"
                "apiVersion: v1\n"
                "kind: Config\n"
                "clusters:\n"
                "- name: \"default\"\n"
                "  cluster:\n"
                "    server: \"https://spark-dns.hcp.westeurope.azmk8s.io:443\"\n"
                "    certificate-authority-data: \"TFMwdExTMUNSVWRKVGlCRFJWSlVTVVpKUTBGVVJTMHRMUzB0Q2c9PQ==\"\n"
                "contexts:\n"
                "- name: \"default\"\n"
                "  context:\n"
                "    cluster: \"default\"\n"
                "    user: \"default\"\n"
                "    namespace: \"spark-alice\"\n"
                "current-context: \"default\"\n"
                "users:\n"
                "- name: \"default\"\n"
                "  user:\n"
                "    exec:\n"
                "      apiVersion: \"client.authentication.k8s.io/v1\"\n"
                "      command: \"/usr/bin/aksspark-tokenctl\"\n"
                "      args:\n"
                "      - \"--socket\"\n"
                "      - \"/run/user/1000/aksspark-tokend.sock\"\n"
                "      - \"--profile\"\n"
                "      - \"default\"\n"
                "      - \"exec-credential\"\n"
                "      - \"--api-version\"\n"
                "      - \"client.authentication.k8s.io/v1\"\n"
                "      interactiveMode: Never\n"
                "      provideClusterInfo: false\n");

        /* It reads back as what went in. */
        ck_assert_int_eq(kubeconfig_context_cluster(out, strlen(out), NULL, NULL, &back), 0);
        ck_assert_str_eq(back.server, c.server);
        ck_assert_str_eq(back.certificate_authority_data, c.certificate_authority_data);
        ck_assert_str_eq(back.namespace, "spark-alice");
        ck_assert_ptr_null(back.certificate_authority);
        ck_assert(!back.insecure_skip_tls_verify);
}
END_TEST

START_TEST(test_render_hostile_values) {
        _cleanup_(kubeconfig_cluster_done) KubeconfigCluster back = {};
        _cleanup_free_ char *out = NULL;
        KubeconfigCluster c = {
                .server = (char *) "https://x:1\nusers: [{name: evil}]",
                .certificate_authority = (char *) "/ca dir/\"quoted\" #not a comment: {x}",
                .insecure_skip_tls_verify = true,
                .tls_server_name = (char *) "true",
                .proxy_url = (char *) "null",
                .namespace = (char *) "123",
        };
        KubeconfigExec x = test_exec;

        x.name = "1.0";
        x.api_version = KUBECONFIG_EXEC_V1BETA1;
        x.socket_path = "/run/user/1000/a b: c.sock";
        render(&c, &x, &out);
        ck_assert_ptr_null(strstr(out, "\nusers: [")); /* no injected key */
        ck_assert_ptr_nonnull(strstr(out, "current-context: \"1.0\"\n"));
        ck_assert_ptr_nonnull(strstr(out, "      - \"client.authentication.k8s.io/v1beta1\"\n"));
        ck_assert_ptr_nonnull(strstr(out, "    insecure-skip-tls-verify: true\n"));

        ck_assert_int_eq(kubeconfig_context_cluster(out, strlen(out), NULL, NULL, &back), 0);
        ck_assert_str_eq(back.server, c.server);
        ck_assert_str_eq(back.certificate_authority, c.certificate_authority);
        ck_assert(back.insecure_skip_tls_verify);
        ck_assert_str_eq(back.tls_server_name, "true");
        ck_assert_str_eq(back.proxy_url, "null");
        ck_assert_str_eq(back.namespace, "123");
}
END_TEST

START_TEST(test_render_refusals) {
        KubeconfigCluster c = { .server = (char *) "https://x:1" };
        KubeconfigExec x = test_exec;
        char *out = NULL;
        size_t len = 0;

        x.api_version = "client.authentication.k8s.io/v1alpha1";
        ck_assert_int_eq(kubeconfig_render(&c, &x, &out, &len), -EINVAL);
        x = test_exec;
        x.socket_path = NULL;
        ck_assert_int_eq(kubeconfig_render(&c, &x, &out, &len), -EINVAL);
        x = test_exec;
        x.tokenctl_path = "/opt/\xff\xfe/aksspark-tokenctl"; /* not UTF-8: libyaml will not emit it */
        ck_assert_int_eq(kubeconfig_render(&c, &x, &out, &len), -EINVAL);
        c.server = NULL;
        ck_assert_int_eq(kubeconfig_render(&c, &test_exec, &out, &len), -EINVAL);
        ck_assert_ptr_null(out);
}
END_TEST

static Suite *kubeconfig_suite(void) {
        Suite *s = suite_create("kubeconfig");
        TCase *tc = tcase_create("core");

        tcase_add_loop_test(tc, test_files, 0, (int) ELEMENTSOF(cases));
        tcase_add_test(tc, test_inline);
        tcase_add_test(tc, test_list_az_formats);
        tcase_add_test(tc, test_list_logins);
        tcase_add_test(tc, test_list_pop_enabled);
        tcase_add_test(tc, test_list_inline);
        tcase_add_test(tc, test_context_server);
        tcase_add_test(tc, test_cluster);
        tcase_add_test(tc, test_render);
        tcase_add_test(tc, test_render_hostile_values);
        tcase_add_test(tc, test_render_refusals);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(kubeconfig_suite());
}
