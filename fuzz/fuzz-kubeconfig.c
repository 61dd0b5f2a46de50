/* Fuzzes reading a kubeconfig: the API server of the current context, and every context with its
 * Azure AD sign-in turned into profiles by init's generator. Any text gives an answer or one of
 * the documented refusals, without leaks (libyaml documents are easy to leak on error paths),
 * and every generated profile has a valid, unique name. */
#include <errno.h>
#include <string.h>

#include "configgen.h"
#include "fuzz.h"
#include "kubeconfig.h"
#include "util.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *server = NULL;
        int r;

        fuzz_contexts(data, size);

        r = kubeconfig_current_server((const char *) data, size, &server);
        if (r < 0) {
                FUZZ_CHECK(r == -ENOENT || r == -ENODATA || r == -EBADMSG);
                FUZZ_CHECK(!server);
                return 0;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(server);
        free(server);
        return 0;
}
