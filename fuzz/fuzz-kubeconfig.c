/* Fuzzes reading a kubeconfig: the API server of the current context, and every context with its
 * Azure AD sign-in turned into profiles by init's generator. Any text gives an answer or one of
 * the documented refusals, without leaks (libyaml documents are easy to leak on error paths),
 * and every generated profile has a valid, unique name. And the kubeconfig output: the cluster
 * read from any text renders (libyaml's emitter) to a kubeconfig that reads back as the same
 * cluster, whatever bytes its values hold. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "fuzz.h"
#include "shared/kubeconfig.h"
#include "tokenctl/configgen.h"

static bool every_key(const char *key) {
        return true;
}

static void fuzz_contexts(const uint8_t *data, size_t size) {
        KubeconfigContexts kc = {};
        Configgen g = {};
        const char *unknown = NULL;
        char *text;
        int r;

        r = kubeconfig_list_contexts((const char *) data, size, &kc);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(kc.n == 0 && !kc.contexts);
                return;
        }
        r = configgen_plan(&kc, &(ConfiggenOptions) { .kubeconfig = "~/.kube/config", .key_known = every_key }, &g,
                           &unknown);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(g.n_profiles + g.n_skipped == kc.n);
        for (size_t i = 0; i < g.n_profiles; i++) {
                FUZZ_CHECK(profile_name_is_valid(g.profiles[i].name));
                FUZZ_CHECK(string_has_prefix(g.profiles[i].section, "[profile "));
                for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(strcmp(g.profiles[i].name, g.profiles[j].name) != 0);
        }
        text = configgen_text(&g, "~/.kube/config");
        FUZZ_CHECK(text);
        free(text);
        configgen_done(&g);
        kubeconfig_contexts_done(&kc);
}

static bool streq_null(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_round_trip(const KubeconfigCluster *c) {
        const KubeconfigExec exec = {
                .name = "default",
                .socket_path = "/run/user/1000/aksspark-tokend.sock",
                .tokenctl_path = "/usr/bin/aksspark-tokenctl",
                .api_version = KUBECONFIG_EXEC_V1BETA1,
        };
        KubeconfigCluster back = {};
        char *out = NULL, *server = NULL;
        size_t len = 0;
        int r;

        r = kubeconfig_render(c, &exec, &out, &len);
        if (r == -ENOMEM)
                return;
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(out && strlen(out) == len);

        r = kubeconfig_context_cluster(out, len, NULL, NULL, &back);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK(streq_null(back.server, c->server));
                FUZZ_CHECK(streq_null(back.certificate_authority_data, c->certificate_authority_data));
                FUZZ_CHECK(streq_null(back.certificate_authority, c->certificate_authority));
                FUZZ_CHECK(back.insecure_skip_tls_verify == c->insecure_skip_tls_verify);
                FUZZ_CHECK(streq_null(back.tls_server_name, c->tls_server_name));
                FUZZ_CHECK(streq_null(back.proxy_url, c->proxy_url));
                FUZZ_CHECK(streq_null(back.namespace, c->namespace));
        }
        kubeconfig_cluster_done(&back);

        r = kubeconfig_current_server(out, len, &server);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        FUZZ_CHECK(r < 0 || streq_null(server, c->server));
        free(server);
        free(out);
}

/* The cluster of the current context, and the output made from it. */
static void fuzz_output(const uint8_t *data, size_t size, const char *server) {
        KubeconfigCluster c = {};
        int r;

        r = kubeconfig_context_cluster((const char *) data, size, NULL, "/home/alice/.kube", &c);
        if (r < 0) {
                FUZZ_CHECK(r == -ENOENT || r == -ENODATA || r == -EBADMSG || r == -ENOMEM);
                FUZZ_CHECK(!c.server);
                return;
        }
        /* Its checks are a superset of kubeconfig_current_server()'s: the same server. */
        FUZZ_CHECK(c.server && server && strcmp(server, c.server) == 0);
        check_round_trip(&c);
        kubeconfig_cluster_done(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *server = NULL;
        int r;

        fuzz_contexts(data, size);

        r = kubeconfig_current_server((const char *) data, size, &server);
        if (r < 0) {
                FUZZ_CHECK(r == -ENOENT || r == -ENODATA || r == -EBADMSG);
                FUZZ_CHECK(!server);
        } else {
                FUZZ_CHECK(r == 0);
                FUZZ_CHECK(server);
        }
        fuzz_output(data, size, server);
        free(server);
        return 0;
}
