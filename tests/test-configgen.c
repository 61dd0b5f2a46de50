/* Tests for configgen.c: kubeconfig contexts (the files in tests/data/kubeconfig, shaped as
 * `az aks get-credentials` and `kubelogin convert-kubeconfig` write them) -> config.ini text,
 * which must read back through config_parse(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "shared/config.h"
#include "shared/kubeconfig.h"
#include "testlib.h"
#include "tokenctl/configgen.h"

static bool every_key(const char *key) {
        return true;
}

static void list_file(const char *name, KubeconfigContexts *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        const char *src = getenv("AKSSPARK_SOURCE_DIR");
        size_t len;

        ck_assert_ptr_nonnull(src);
        ck_assert_int_ge(asprintf(&path, "%s/tests/data/kubeconfig/%s", src, name), 0);
        ck_assert_int_eq(read_file_full(path, 1 << 20, &text, &len), 0);
        ck_assert_int_eq(kubeconfig_list_contexts(text, len, ret), 0);
}

static void plan_file(const char *name, configgen_key_known_fn known, KubeconfigContexts *kc, Configgen *g) {
        const char *unknown = NULL;

        list_file(name, kc);
        ck_assert_int_eq(configgen_plan(kc, &(ConfiggenOptions) { .kubeconfig = "~/.kube/config", .key_known = known },
                                        g, &unknown),
                         0);
        ck_assert_ptr_null(unknown);
}

static const ConfiggenProfile *profile(const Configgen *g, const char *name) {
        for (size_t i = 0; i < g->n_profiles; i++)
                if (strcmp(g->profiles[i].name, name) == 0)
                        return &g->profiles[i];
        ck_abort_msg("no profile %s", name);
        return NULL;
}

static const char *skip_why(const Configgen *g, const char *context) {
        for (size_t i = 0; i < g->n_skipped; i++)
                if (strcmp(g->skipped[i].context, context) == 0)
                        return g->skipped[i].why;
        ck_abort_msg("context %s was not skipped", context);
        return NULL;
}

static const char *test_lookup(const char *name, void *userdata) {
        return NULL;
}

/* The text must be what the daemon accepts: config_parse() with no problem. */
static Config *parse_ok(const char *text) {
        ConfigEnv env = { .home = "/home/u", .xdg_runtime_dir = "/run/user/1000", .lookup = test_lookup };
        ConfigErrors e = {};
        Config *c = NULL;
        int r = config_parse("init.ini", text, strlen(text), &env, &c, &e);

        for (size_t i = 0; i < e.n; i++)
                fprintf(stderr, "unexpected: %s\n", e.lines[i]);
        ck_assert_int_eq(r, 0);
        return c;
}

START_TEST(test_clouds) {
        ck_assert_str_eq(configgen_authority_host(NULL), "https://login.microsoftonline.com");
        ck_assert_str_eq(configgen_authority_host("AzurePublicCloud"), "https://login.microsoftonline.com");
        ck_assert_str_eq(configgen_authority_host("azurepubliccloud"), "https://login.microsoftonline.com");
        ck_assert_str_eq(configgen_authority_host("AzureUSGovernmentCloud"), "https://login.microsoftonline.us");
        ck_assert_str_eq(configgen_authority_host("AzureChinaCloud"), "https://login.chinacloudapi.cn");
        ck_assert_ptr_null(configgen_authority_host("AzureStackCloud"));
        ck_assert_ptr_null(configgen_authority_host("AzureGermanCloud"));
        ck_assert_ptr_null(configgen_authority_host(""));
}
END_TEST

START_TEST(test_logins) {
        static const struct {
                const char *login;
                bool certificate;
                const char *auth;
        } map[] = {
                { NULL, false, "device_code" },         { "devicecode", false, "device_code" },
                { "DeviceCode", false, "device_code" }, { "interactive", false, "browser" },
                { "spn", false, "client_secret" },      { "spn", true, "client_certificate" },
                { "msi", false, "managed_identity" },   { "workloadidentity", false, "workload_identity" },
        };
        const char *auth, *why = NULL;

        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                auth = NULL;
                ck_assert_int_eq(configgen_auth(map[i].login, map[i].certificate, &auth, &why), 0);
                ck_assert_str_eq(auth, map[i].auth);
        }
        auth = NULL;
        ck_assert_int_eq(configgen_auth("azurecli", false, &auth, &why), 0);
        ck_assert_str_eq(auth, "azurecli");
        auth = NULL;
        ck_assert_int_eq(configgen_auth("ropc", false, &auth, &why), -EOPNOTSUPP);
        ck_assert_ptr_nonnull(strstr(why, "ropc"));
        ck_assert_int_eq(configgen_auth("carrier-pigeon", false, &auth, &why), -EOPNOTSUPP);
        ck_assert_ptr_null(auth);
}
END_TEST

START_TEST(test_names) {
        char buf[CONFIGGEN_NAME_MAX + 1], longname[200];

        ck_assert_str_eq(configgen_profile_name("aks-prod_2.eu", buf), "aks-prod_2.eu");
        ck_assert_str_eq(configgen_profile_name("arn:aws:eks:eu-west-1:123:cluster/x", buf),
                         "arn_aws_eks_eu-west-1_123_cluster_x");
        ck_assert_str_eq(configgen_profile_name("alice@aks  prod", buf), "alice_aks_prod");
        ck_assert_str_eq(configgen_profile_name("", buf), "context");
        ck_assert_str_eq(configgen_profile_name("..", buf), "context");
        ck_assert_str_eq(configgen_profile_name("é", buf), "_");
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = 0;
        ck_assert_uint_eq(strlen(configgen_profile_name(longname, buf)), CONFIGGEN_NAME_MAX);
        ck_assert(profile_name_is_valid(configgen_profile_name("x/y:z", buf)));
}
END_TEST

/* What this branch's parser knows: auth is not written until it does; kubeconfig_output is. */
START_TEST(test_several_contexts) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts kc = {};
        _cleanup_(configgen_done) Configgen g = {};
        _cleanup_free_ char *text = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        const ProfileConfig *pc;

        plan_file("az-several.yaml", config_profile_key_is_known, &kc, &g);
        ck_assert_uint_eq(g.n_profiles, 2);
        ck_assert_str_eq(g.profiles[0].name, "default");
        ck_assert_str_eq(g.profiles[0].context, "aks-prod");
        ck_assert_str_eq(g.profiles[1].name, "aks-dev");
        ck_assert_str_eq(profile(&g, "default")->section, "[profile default]\n"
                                                          "; context aks-prod (kubelogin)\n"
                                                          "tenant         = 3d4e5f6a-7b8c-4d9e-8f0a-2b3c4d5e6f7a\n"
                                                          "authority_host = https://login.microsoftonline.com\n"
                                                          "client_id      = 80faf920-1908-4b52-b5ef-a8e7bedfc67a\n"
                                                          "server_id      = 6dae42f8-4368-4678-94ff-3960e28e3630\n"
                                                          "kubeconfig     = ~/.kube/config\n"
                                                          "kubeconfig_context = aks-prod\n"
                                                          "kubeconfig_output = ~/.kube/aksspark-default.yaml\n");
        ck_assert_uint_eq(g.n_skipped, 2);
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "kind-kind"), "client certificate"));
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "aks-prod-admin"), "client certificate"));

        text = configgen_text(&g, "~/.kube/config");
        ck_assert_ptr_nonnull(text);
        ck_assert(string_has_prefix(text, "; Written by `aksspark-tokenctl init` from ~/.kube/config.\n"));
        c = parse_ok(text);
        ck_assert_uint_eq(c->n_profiles, 2);
        pc = config_find_profile(c, "aks-dev");
        ck_assert_str_eq(pc->tenant, "2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f");
        ck_assert_str_eq(pc->kubeconfig, "/home/u/.kube/config");
        ck_assert_str_eq(pc->kubeconfig_context, "aks-dev");
        ck_assert_ptr_null(pc->token_file);
        ck_assert_str_eq(config_find_profile(c, "default")->token_file, "/home/u/.kube/oauthToken");
}
END_TEST

START_TEST(test_kubeconfig_output_when_known) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts kc = {};
        _cleanup_(configgen_done) Configgen g = {};

        plan_file("az-several.yaml", every_key, &kc, &g);
        ck_assert_ptr_nonnull(
                strstr(profile(&g, "aks-dev")->section, "\nkubeconfig_output = ~/.kube/aksspark-aks-dev.yaml\n"));
        ck_assert_ptr_nonnull(
                strstr(profile(&g, "default")->section, "\nkubeconfig_output = ~/.kube/aksspark-default.yaml\n"));
        ck_assert_ptr_null(strstr(profile(&g, "default")->section, "auth ")); /* device_code is the default */
}
END_TEST

START_TEST(test_sovereign_and_legacy) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts kc = {}, kl = {};
        _cleanup_(configgen_done) Configgen g = {}, gl = {};
        _cleanup_free_ char *text = NULL;
        _cleanup_(config_freep) Config *c = NULL;

        plan_file("az-sovereign.yaml", config_profile_key_is_known, &kc, &g);
        ck_assert_uint_eq(g.n_profiles, 2);
        ck_assert_ptr_nonnull(
                strstr(profile(&g, "default")->section, "authority_host = https://login.microsoftonline.us\n"));
        ck_assert_str_eq(profile(&g, "default")->context, "gov-aks");
        ck_assert_ptr_nonnull(
                strstr(profile(&g, "cn-aks")->section, "authority_host = https://login.chinacloudapi.cn\n"));
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "stack-aks"), "AzureUSGovernmentCloud"));
        text = configgen_text(&g, "~/.kube/config");
        c = parse_ok(text);
        ck_assert_str_eq(config_find_profile(c, "cn-aks")->authority_host, "https://login.chinacloudapi.cn");

        plan_file("az-azure-provider.yaml", config_profile_key_is_known, &kl, &gl);
        ck_assert_uint_eq(gl.n_profiles, 1);
        ck_assert_ptr_nonnull(strstr(gl.profiles[0].section,
                                     "; context legacy-aks (azure auth-provider)\n"
                                     "tenant         = 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d\n"));
}
END_TEST

/* Proof-of-possession tokens are not served: such a context is skipped and says so; the flag
 * spelled false is no PoP at all. */
START_TEST(test_pop_enabled_skipped) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts kc = {};
        _cleanup_(configgen_done) Configgen g = {};

        plan_file("az-pop.yaml", every_key, &kc, &g);
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "arc-pop"), "--pop-enabled"));
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "arc-pop"), "proof-of-possession"));
        ck_assert_uint_eq(g.n_profiles, 1);
        ck_assert_str_eq(g.profiles[0].context, "arc-pop-false");
        ck_assert_str_eq(g.profiles[0].auth, "device_code");
}
END_TEST

/* Each --login as `auth`, once the parser reads auth; ropc skipped with why. */
START_TEST(test_login_mapping) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts kc = {}, kb = {};
        _cleanup_(configgen_done) Configgen g = {}, gb = {};
        const char *s;

        plan_file("az-logins.yaml", every_key, &kc, &g);
        ck_assert_uint_eq(g.n_profiles, 6);
        ck_assert_ptr_nonnull(strstr(profile(&g, "aks-interactive")->section, "\nauth           = browser\n"));
        ck_assert_str_eq(profile(&g, "aks-interactive")->auth, "browser");

        s = profile(&g, "aks-spn")->section;
        ck_assert_ptr_nonnull(strstr(s, "\nauth           = client_secret\n"));
        ck_assert_ptr_nonnull(strstr(s, "\nclient_id      = 8c9d0e1f-2a3b-4c4d-9e5f-7a8b9c0d1e2f\n"));
        ck_assert_ptr_nonnull(strstr(s, "\nclient_secret_file = ~/.config/aksspark-tokend/aks-spn.client-secret\n"));
        ck_assert_ptr_nonnull(strstr(profile(&g, "aks-spn")->note, "aks-spn.client-secret"));

        s = profile(&g, "aks-msi")->section;
        ck_assert_ptr_nonnull(strstr(s, "\nauth           = managed_identity\n"));
        ck_assert_ptr_nonnull(strstr(s, "\nmanaged_identity_client_id = 9d0e1f2a-3b4c-4d5e-8f6a-8b9c0d1e2f3a\n"));
        ck_assert_ptr_null(strstr(s, "\nclient_id"));
        ck_assert_ptr_null(strstr(s, "\ntenant"));

        s = profile(&g, "aks-workload")->section;
        ck_assert_ptr_nonnull(strstr(s, "\nauth           = workload_identity\n"));
        ck_assert_ptr_null(strstr(s, "\ntenant")); /* $AZURE_TENANT_ID, as kubelogin */

        ck_assert_str_eq(profile(&g, "default")->context, "aks-equals");
        ck_assert_ptr_nonnull(
                strstr(profile(&g, "default")->section, "tenant         = 0e1f2a3b-4c5d-4e6f-9a7b-9c0d1e2f3a4b\n"));
        /* kubelogin convert-kubeconfig -l azurecli writes only the server id: az knows the rest. */
        s = profile(&g, "aks-azurecli")->section;
        ck_assert_ptr_nonnull(strstr(s, "\nauth           = azurecli\n"));
        ck_assert_ptr_nonnull(strstr(s, "\nserver_id      = 6dae42f8-4368-4678-94ff-3960e28e3630\n"));
        ck_assert_ptr_null(strstr(s, "\ntenant"));
        ck_assert_ptr_null(strstr(s, "\nclient_id"));
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "aks-ropc"), "ropc"));
        for (size_t i = 0; i < g.n_profiles; i++) {
                ck_assert_ptr_null(strstr(g.profiles[i].section, "do-not-copy"));
                ck_assert_ptr_null(strstr(g.profiles[i].section, "someone@"));
        }

        /* The parser on this branch: every auth but device_code is skipped, and says why. */
        plan_file("az-logins.yaml", config_profile_key_is_known, &kb, &gb);
        if (!config_profile_key_is_known("auth")) {
                ck_assert_uint_eq(gb.n_profiles, 1);
                ck_assert_ptr_nonnull(strstr(skip_why(&gb, "aks-msi"), "auth = managed_identity"));
        } else
                ck_assert_uint_eq(gb.n_profiles, g.n_profiles);
}
END_TEST

static KubeconfigContext aad_context(const char *name) {
        return (KubeconfigContext) {
                .name = (char *) name,
                .auth = KUBECONFIG_AUTH_KUBELOGIN,
                .tenant_id = (char *) "contoso.onmicrosoft.com",
        };
}

START_TEST(test_unique_names_and_selection) {
        KubeconfigContext cs[] = { aad_context("a b"), aad_context("a_b"),    aad_context("default"),
                                   aad_context("x"),   aad_context("a;b ;c"), aad_context("a${HOME}") };
        KubeconfigContexts kc = { .contexts = cs, .n = ELEMENTSOF(cs), .current = (char *) "x" };
        char *only[] = { (char *) "a_b", (char *) "nope" };
        _cleanup_(configgen_done) Configgen g = {}, one = {};
        const char *unknown = NULL;
        ConfiggenOptions o = { .kubeconfig = "/k", .key_known = config_profile_key_is_known };

        ck_assert_int_eq(configgen_plan(&kc, &o, &g, &unknown), 0);
        ck_assert_uint_eq(g.n_profiles, 4);
        ck_assert_str_eq(g.profiles[0].name, "default");
        ck_assert_str_eq(g.profiles[0].context, "x");
        ck_assert_str_eq(profile(&g, "a_b")->context, "a b");
        ck_assert_str_eq(profile(&g, "a_b-2")->context, "a_b");
        ck_assert_str_eq(profile(&g, "default-2")->context, "default");
        /* A context name that would not read back as itself is skipped. */
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "a;b ;c"), "cannot be written"));
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "a${HOME}"), "cannot be written"));

        o.only = only;
        o.n_only = 1;
        ck_assert_int_eq(configgen_plan(&kc, &o, &one, &unknown), 0);
        ck_assert_uint_eq(one.n_profiles, 1);
        ck_assert_str_eq(one.profiles[0].name, "a_b");
        configgen_done(&one);
        o.n_only = 2;
        ck_assert_int_eq(configgen_plan(&kc, &o, &one, &unknown), -ENOENT);
        ck_assert_str_eq(unknown, "nope");

        ck_assert_int_eq(configgen_skip_profile(&g, 1, "refused"), 0);
        ck_assert_uint_eq(g.n_profiles, 3);
        ck_assert_str_eq(skip_why(&g, "a b"), "refused");
}
END_TEST

START_TEST(test_missing_and_odd_ids) {
        KubeconfigContext cs[] = { aad_context("no-tenant"), aad_context("odd-client"), aad_context("other") };
        KubeconfigContexts kc = { .contexts = cs, .n = ELEMENTSOF(cs) };
        _cleanup_(configgen_done) Configgen g = {};
        const char *unknown = NULL;

        cs[0].tenant_id = NULL;
        cs[1].client_id = (char *) "abc def";
        cs[2].auth = KUBECONFIG_AUTH_OTHER;
        cs[2].why = "its user has a static token, not Azure AD";
        ck_assert_int_eq(
                configgen_plan(&kc, &(ConfiggenOptions) { .kubeconfig = "/k", .key_known = every_key }, &g, &unknown),
                0);
        ck_assert_uint_eq(g.n_profiles, 0);
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "no-tenant"), "names no tenant"));
        ck_assert_ptr_nonnull(strstr(skip_why(&g, "odd-client"), "characters"));
        ck_assert_str_eq(skip_why(&g, "other"), "its user has a static token, not Azure AD");
}
END_TEST

static Suite *configgen_suite(void) {
        Suite *s = suite_create("configgen");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_clouds);
        tcase_add_test(tc, test_logins);
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_several_contexts);
        tcase_add_test(tc, test_kubeconfig_output_when_known);
        tcase_add_test(tc, test_sovereign_and_legacy);
        tcase_add_test(tc, test_login_mapping);
        tcase_add_test(tc, test_unique_names_and_selection);
        tcase_add_test(tc, test_pop_enabled_skipped);
        tcase_add_test(tc, test_missing_and_odd_ids);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(configgen_suite());
}
