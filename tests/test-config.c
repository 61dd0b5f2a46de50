/* Tests for the configuration file: keys, defaults, expansion, validation with file:line, and
 * how lines that do not fit inih's buffer are reported instead of cut. */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "shared/config-env.h"
#include "shared/config-load.h"
#include "shared/config.h"
#include "testlib.h"

#define TENANT "contoso.onmicrosoft.com"
#define DEFAULT_PROFILE "[profile default]\ntenant = " TENANT "\n"

/* What inih's buffer holds (INI_MAX_LINE 200) minus the "\n\0" the reader appends. */
#define LINE_MAX_BYTES 198

static const char *test_lookup(const char *name, void *userdata) {
        static const char *const vars[][2] = {
                { "DATA", "/data" },
                { "SUB", "x/y" },
                { "REL", "relative" },
                { "EMPTY", "" },
        };

        (void) userdata;
        for (size_t i = 0; i < ELEMENTSOF(vars); i++)
                if (strcmp(vars[i][0], name) == 0)
                        return vars[i][1];
        return NULL;
}

static ConfigEnv test_env(void) {
        return (ConfigEnv) {
                .home = "/home/u",
                .xdg_runtime_dir = "/run/user/1000",
                .lookup = test_lookup,
        };
}

static int parse_env_len(const char *text, size_t len, const ConfigEnv *env, Config **ret, ConfigErrors *e) {
        return config_parse("t.ini", text, len, env, ret, e);
}

/* Parses text that must be valid; fails the test with every reported problem otherwise. */
static Config *parse_ok_env(const char *text, const ConfigEnv *env) {
        ConfigErrors e = {};
        Config *c = NULL;
        int r = parse_env_len(text, strlen(text), env, &c, &e);

        for (size_t i = 0; i < e.n; i++)
                fprintf(stderr, "unexpected: %s\n", e.lines[i]);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(e.n, 0);
        ck_assert_ptr_nonnull(c);
        return c;
}

static Config *parse_ok(const char *text) {
        ConfigEnv env = test_env();
        return parse_ok_env(text, &env);
}

/* expected: "LINE: substring" for each problem, in the order they must be reported. */
static void expect_errors_len(const char *text, size_t len, const char *const *expected) {
        ConfigEnv env = test_env();
        ConfigErrors e = {};
        Config *c = NULL;
        size_t n = 0;
        int r;

        while (expected[n])
                n++;
        r = parse_env_len(text, len, &env, &c, &e);
        if (e.n != n)
                for (size_t i = 0; i < e.n; i++)
                        fprintf(stderr, "  got: %s\n", e.lines[i]);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_uint_eq(e.n, n);
        for (size_t i = 0; i < n; i++) {
                char *end, prefix[64];
                unsigned long line = strtoul(expected[i], &end, 10);

                ck_assert(end[0] == ':' && end[1] == ' ');
                snprintf(prefix, sizeof prefix, "t.ini:%lu: ", line);
                ck_assert_msg(strncmp(e.lines[i], prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'",
                              e.lines[i], prefix);
                ck_assert_msg(strstr(e.lines[i] + strlen(prefix), end + 2), "'%s' does not say '%s'", e.lines[i],
                              end + 2);
        }
        config_errors_clear(&e);
}

#define EXPECT_ERRORS(text, ...) expect_errors_len((text), strlen(text), (const char *const[]) { __VA_ARGS__, NULL })

START_TEST(test_defaults) {
        _cleanup_(config_freep) Config *c = parse_ok(DEFAULT_PROFILE);
        const ProfileConfig *p;
        _cleanup_free_ char *scope = NULL;

        ck_assert_str_eq(c->path, "t.ini");
        ck_assert_str_eq(c->socket_path, "/run/user/1000/aksspark-tokend.sock");
        ck_assert_str_eq(c->state_dir, "/home/u/.local/state/aksspark-tokend");
        ck_assert_int_eq(c->log_level, LOG_INFO);
        ck_assert_ptr_null(c->notify_command);
        ck_assert_uint_eq(c->http_timeout, 30 * USEC_PER_SEC);
        ck_assert_ptr_null(c->metrics_file);
        ck_assert_int_eq(c->state_protection, STATE_PROTECTION_AUTO);
        ck_assert_uint_eq(c->n_profiles, 1);

        p = c->profiles[0];
        ck_assert_str_eq(p->name, "default");
        ck_assert_uint_eq(p->line, 1);
        ck_assert_str_eq(p->tenant, TENANT);
        ck_assert_str_eq(p->authority_host, "https://login.microsoftonline.com");
        ck_assert_str_eq(p->client_id, "80faf920-1908-4b52-b5ef-a8e7bedfc67a");
        ck_assert_str_eq(p->server_id, "6dae42f8-4368-4678-94ff-3960e28e3630");
        ck_assert_uint_eq(p->refresh_before, 10 * USEC_PER_MINUTE);
        ck_assert_str_eq(p->token_file, "/home/u/.kube/oauthToken");
        ck_assert_uint_eq(p->n_spark_properties, 0);
        ck_assert_ptr_null(p->kubeconfig);
        ck_assert_ptr_null(p->ca_file);

        scope = profile_config_scope(p);
        ck_assert_str_eq(scope, "6dae42f8-4368-4678-94ff-3960e28e3630/.default openid profile offline_access");
}
END_TEST

START_TEST(test_every_key) {
        _cleanup_(config_freep) Config *c = parse_ok(
                "; every key\n"
                "[daemon]\n"
                "socket = ${DATA}/tokend.sock\n"
                "state_dir = ~/state\n"
                "log_level = debug\n"
                "notify_command = notify-send \"Spark token\" \"$AKSSPARK_MESSAGE\" ; run by /bin/sh\n"
                "http_timeout = 45s\n"
                "state_protection = systemd-creds\n"
                "\n"
                "[profile prod]\n"
                "tenant = 72f988bf-86f1-41af-91ab-2d7cd011db47\n"
                "authority_host = https://login.microsoftonline.us/\n"
                "client_id = 04b07795-8ddb-461a-bbee-02f9e1bf7b46\n"
                "server_id = https://management.core.windows.net/\n"
                "refresh_before = 15m\n"
                "token_file = ~/.kube/prod-token\n"
                "spark_properties = ~/spark/a.properties\n"
                "spark_properties = ${DATA}/b.properties\n"
                "kubeconfig = ~/.kube/config\n"
                "ca_file = /etc/ssl/proxy.pem\n");
        const ProfileConfig *p;
        _cleanup_free_ char *scope = NULL;

        ck_assert_str_eq(c->socket_path, "/data/tokend.sock");
        ck_assert_str_eq(c->state_dir, "/home/u/state");
        ck_assert_int_eq(c->log_level, LOG_DEBUG);
        ck_assert_str_eq(c->notify_command, "notify-send \"Spark token\" \"$AKSSPARK_MESSAGE\"");
        ck_assert_uint_eq(c->http_timeout, 45 * USEC_PER_SEC);
        ck_assert_int_eq(c->state_protection, STATE_PROTECTION_SYSTEMD_CREDS);

        ck_assert_uint_eq(c->n_profiles, 1);
        p = c->profiles[0];
        ck_assert_str_eq(p->name, "prod");
        ck_assert_uint_eq(p->line, 10);
        ck_assert_str_eq(p->tenant, "72f988bf-86f1-41af-91ab-2d7cd011db47");
        ck_assert_str_eq(p->authority_host, "https://login.microsoftonline.us");
        ck_assert_str_eq(p->client_id, "04b07795-8ddb-461a-bbee-02f9e1bf7b46");
        ck_assert_str_eq(p->server_id, "https://management.core.windows.net/");
        ck_assert_uint_eq(p->refresh_before, 15 * USEC_PER_MINUTE);
        ck_assert_str_eq(p->token_file, "/home/u/.kube/prod-token");
        ck_assert_uint_eq(p->n_spark_properties, 2);
        ck_assert_str_eq(p->spark_properties[0], "/home/u/spark/a.properties");
        ck_assert_str_eq(p->spark_properties[1], "/data/b.properties");
        ck_assert_str_eq(p->kubeconfig, "/home/u/.kube/config");
        ck_assert_str_eq(p->ca_file, "/etc/ssl/proxy.pem");

        scope = profile_config_scope(p);
        ck_assert_str_eq(scope, "https://management.core.windows.net//.default openid profile offline_access");
}
END_TEST

START_TEST(test_default_paths) {
        ConfigEnv env = { .home = "/home/u", .lookup = test_lookup };
        Config *c;
        char *s;

        /* No runtime directory at all: no socket; the daemon complains, not the parser. */
        c = parse_ok_env(DEFAULT_PROFILE, &env);
        ck_assert_ptr_null(c->socket_path);
        ck_assert_str_eq(c->state_dir, "/home/u/.local/state/aksspark-tokend");
        config_free(c);

        /* systemd's RuntimeDirectory= and StateDirectory= (several are ':'-separated). */
        env.runtime_directory = "/run/aksspark-tokend:/run/other";
        env.state_directory = "/var/lib/aksspark-tokend/alice:/var/lib/other";
        env.xdg_state_home = "/home/u/xdg-state";
        c = parse_ok_env(DEFAULT_PROFILE, &env);
        ck_assert_str_eq(c->socket_path, "/run/aksspark-tokend/aksspark-tokend.sock");
        ck_assert_str_eq(c->state_dir, "/var/lib/aksspark-tokend/alice");
        config_free(c);

        /* XDG_RUNTIME_DIR wins over RUNTIME_DIRECTORY; XDG_STATE_HOME is next after STATE_DIRECTORY. */
        env.xdg_runtime_dir = "/run/user/1000";
        env.state_directory = NULL;
        c = parse_ok_env(DEFAULT_PROFILE, &env);
        ck_assert_str_eq(c->socket_path, "/run/user/1000/aksspark-tokend.sock");
        ck_assert_str_eq(c->state_dir, "/home/u/xdg-state/aksspark-tokend");
        config_free(c);

        /* Relative XDG values are ignored, as the XDG spec says. */
        env = (ConfigEnv) { .home = "/home/u", .xdg_runtime_dir = "run", .xdg_state_home = "state" };
        c = parse_ok_env(DEFAULT_PROFILE, &env);
        ck_assert_ptr_null(c->socket_path);
        ck_assert_str_eq(c->state_dir, "/home/u/.local/state/aksspark-tokend");
        config_free(c);

        /* The configuration file itself. */
        env = (ConfigEnv) { .home = "/home/u" };
        ck_assert_int_eq(config_default_path(&env, &s), 0);
        ck_assert_str_eq(s, "/home/u/.config/aksspark-tokend/config.ini");
        free(s);
        env.xdg_config_home = "/home/u/xdg";
        ck_assert_int_eq(config_default_path(&env, &s), 0);
        ck_assert_str_eq(s, "/home/u/xdg/aksspark-tokend/config.ini");
        free(s);
        env.configuration_directory = "/etc/aksspark-tokend:/etc/other";
        ck_assert_int_eq(config_default_path(&env, &s), 0);
        ck_assert_str_eq(s, "/etc/aksspark-tokend/config.ini");
        free(s);
        env = (ConfigEnv) { .home = "/home/u", .xdg_config_home = "relative" };
        ck_assert_int_eq(config_default_path(&env, &s), 0);
        ck_assert_str_eq(s, "/home/u/.config/aksspark-tokend/config.ini");
        free(s);
}
END_TEST

START_TEST(test_expansion) {
        _cleanup_(config_freep)
                Config *c = parse_ok("[profile default]\n"
                                     "tenant = " TENANT "\n"
                                     "token_file = ~\n"
                                     "spark_properties = ${HOME}/a\n" /* ${HOME} falls back to the home directory */
                                     "spark_properties = ${DATA}/${SUB}/b\n"
                                     "spark_properties = ${DATA}${EMPTY}//c/./d/\n"
                                     "spark_properties = /e/../f\n" /* ".." stays: it may cross a symlink */
                                     "kubeconfig = ~/a;not-a-comment\n"
                                     "ca_file = /etc/$DATA/x\n"); /* only ${...} is a variable */
        const ProfileConfig *p = c->profiles[0];

        ck_assert_str_eq(p->token_file, "/home/u");
        ck_assert_uint_eq(p->n_spark_properties, 4);
        ck_assert_str_eq(p->spark_properties[0], "/home/u/a");
        ck_assert_str_eq(p->spark_properties[1], "/data/x/y/b");
        ck_assert_str_eq(p->spark_properties[2], "/data/c/d");
        ck_assert_str_eq(p->spark_properties[3], "/e/../f");
        ck_assert_str_eq(p->kubeconfig, "/home/u/a;not-a-comment");
        ck_assert_str_eq(p->ca_file, "/etc/$DATA/x");
}
END_TEST

START_TEST(test_expansion_errors) {
        EXPECT_ERRORS(DEFAULT_PROFILE "token_file = ${NOPE}/t\n"
                                      "spark_properties = ${DATA}/${ALSO_NOPE}/x\n"
                                      "spark_properties = ${DATA\n"
                                      "spark_properties = ${}/x\n"
                                      "spark_properties = ${A-B}/x\n"
                                      "kubeconfig = relative/config\n"
                                      "ca_file = ${REL}/ca.pem\n",
                      "3: token_file: ${NOPE} is not set", "4: spark_properties: ${ALSO_NOPE} is not set",
                      "5: malformed variable", "6: malformed variable", "7: malformed variable",
                      "8: kubeconfig 'relative/config' is not an absolute path",
                      "9: ca_file '${REL}/ca.pem' expands to 'relative/ca.pem', which is not an absolute path");
        EXPECT_ERRORS(DEFAULT_PROFILE "token_file = ~bob/token\n"
                                      "spark_properties = \"~/spark.properties\"\n"
                                      "spark_properties =\n",
                      "3: token_file '~bob/token' is not an absolute path", "4: remove the quotes",
                      "5: spark_properties is empty");
        EXPECT_ERRORS("[daemon]\nsocket =\nstate_dir = state\n" DEFAULT_PROFILE, "2: socket is empty",
                      "3: state_dir 'state' is not an absolute path");
}
END_TEST

START_TEST(test_metrics_file) {
        Config *c = parse_ok("[daemon]\nmetrics_file = ${DATA}/metrics/tokend.prom\n" DEFAULT_PROFILE);

        ck_assert_str_eq(c->metrics_file, "/data/metrics/tokend.prom");
        config_free(c);
        /* Empty: no metrics file. */
        c = parse_ok("[daemon]\nmetrics_file =\n" DEFAULT_PROFILE);
        ck_assert_ptr_null(c->metrics_file);
        config_free(c);
        EXPECT_ERRORS("[daemon]\nmetrics_file = metrics.prom\n" DEFAULT_PROFILE,
                      "2: metrics_file 'metrics.prom' is not an absolute path");
        /* The metrics must not overwrite a token, a kubeconfig or a CA. */
        EXPECT_ERRORS("[daemon]\nmetrics_file = ~/.kube/oauthToken\n" DEFAULT_PROFILE,
                      "2: metrics_file /home/u/.kube/oauthToken is also profile 'default' default token_file (line 3)");
        EXPECT_ERRORS("[daemon]\nmetrics_file = /s/x.properties\n" DEFAULT_PROFILE
                      "spark_properties = /s/x.properties\n",
                      "2: metrics_file /s/x.properties is also profile 'default' spark_properties (line 5)");
        EXPECT_ERRORS("[daemon]\nmetrics_file = /k/config\n" DEFAULT_PROFILE "kubeconfig = /k/config\n",
                      "2: metrics_file /k/config is also the kubeconfig of profile 'default'");
}
END_TEST

START_TEST(test_durations) {
        static const struct {
                const char *text;
                usec_t value;
        } good[] = {
                { "90", 90 * USEC_PER_SEC },
                { "90s", 90 * USEC_PER_SEC },
                { "10m", 10 * USEC_PER_MINUTE },
                { "1h", USEC_PER_HOUR },
                { "1h30m", 90 * USEC_PER_MINUTE },
                { "0", 0 },
                { "10m ; inline comment", 10 * USEC_PER_MINUTE },
        };
        static const char *const bad[] = { "10 m", "1d", "-5m", "10M", "ten", "1h30", "5m10", "1.5h", "" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *text = NULL;
                Config *c;

                ck_assert_int_ge(asprintf(&text, DEFAULT_PROFILE "refresh_before = %s\n", good[i].text), 0);
                c = parse_ok(text);
                ck_assert_uint_eq(c->profiles[0]->refresh_before, good[i].value);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = NULL, *want = NULL;

                ck_assert_int_ge(asprintf(&text, DEFAULT_PROFILE "refresh_before = %s\n", bad[i]), 0);
                ck_assert_int_ge(asprintf(&want,
                                          "3: refresh_before '%s' is not a duration: write e.g. 90, 90s, 10m or 1h",
                                          bad[i]),
                                 0);
                EXPECT_ERRORS(text, want);
        }
        EXPECT_ERRORS(DEFAULT_PROFILE "refresh_before = 9000h\n", "3: refresh_before '9000h' is too long");
        EXPECT_ERRORS(DEFAULT_PROFILE "refresh_before = 10m # ten minutes\n", "3: inline comments start with ';'");
        EXPECT_ERRORS("[daemon]\nhttp_timeout = 0\n" DEFAULT_PROFILE, "2: http_timeout '0' is too short");
        EXPECT_ERRORS("[daemon]\nhttp_timeout = soon\n" DEFAULT_PROFILE, "2: http_timeout 'soon' is not a duration");
        EXPECT_ERRORS("[daemon]\nstate_protection = tpm\n" DEFAULT_PROFILE,
                      "2: state_protection 'tpm' is not one of auto, systemd-creds, keyring, none");
        for (StateProtection sp = 0; sp < _STATE_PROTECTION_MAX; sp++)
                ck_assert_int_eq(state_protection_from_string(state_protection_to_string(sp)), sp);
}
END_TEST

START_TEST(test_log_levels) {
        static const struct {
                const char *name;
                int level;
        } levels[] = {
                { "error", LOG_ERR },
                { "warning", LOG_WARNING },
                { "info", LOG_INFO },
                { "debug", LOG_DEBUG },
        };

        for (size_t i = 0; i < ELEMENTSOF(levels); i++) {
                _cleanup_free_ char *text = NULL;
                Config *c;

                ck_assert_int_ge(asprintf(&text, "[daemon]\nlog_level = %s\n" DEFAULT_PROFILE, levels[i].name), 0);
                c = parse_ok(text);
                ck_assert_int_eq(c->log_level, levels[i].level);
                config_free(c);
        }
        EXPECT_ERRORS("[daemon]\nlog_level = verbose\n" DEFAULT_PROFILE,
                      "2: log_level 'verbose' is not one of error, warning, info, debug");
        EXPECT_ERRORS("[daemon]\nlog_level = INFO\n" DEFAULT_PROFILE, "2: log_level 'INFO'");
        EXPECT_ERRORS("[daemon]\nlog_level = info # chatty\n" DEFAULT_PROFILE, "2: inline comments start with ';'");
}
END_TEST

START_TEST(test_authority_host) {
        static const struct {
                const char *value, *want;
        } good[] = {
                { "https://login.microsoftonline.com", "https://login.microsoftonline.com" },
                { "https://login.microsoftonline.com///", "https://login.microsoftonline.com" },
                { "https://login.chinacloudapi.cn:443/", "https://login.chinacloudapi.cn:443" },
                { "https://adfs.contoso.com/adfs/", "https://adfs.contoso.com/adfs" },
                { "HTTPS://Login.Example.Com", "HTTPS://Login.Example.Com" },
                { "http://127.0.0.1:8443", "http://127.0.0.1:8443" },
                { "http://localhost/", "http://localhost" },
                { "http://[::1]:9000", "http://[::1]:9000" },
                { "https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443" },
        };
        static const struct {
                const char *value, *want;
        } bad[] = {
                { "http://login.microsoftonline.com", "must use https://" },
                { "http://localhost.evil.example", "must use https://" },
                { "http://127.0.0.1.evil.example", "must use https://" },
                { "http://127.0.0.1@evil.example", "without '@'" },
                { "https://user@login.microsoftonline.com", "without '@'" },
                { "https://login.microsoftonline.com?x=1", "without '?'" },
                { "https://login.microsoftonline.com#x", "without '#'" },
                { "ftp://login.microsoftonline.com", "is not a URL" },
                { "login.microsoftonline.com", "is not a URL" },
                { "https://", "is not a URL" },
                { "https://:", "has no valid host name" },
                { "https://:443", "has no valid host name" },
                { "https://host:port", "has no valid host name" },
                { "https://host:123456", "has no valid host name" },
                { "https://ex_ample.com", "has no valid host name" },
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *text = NULL;
                Config *c;

                ck_assert_int_ge(asprintf(&text, DEFAULT_PROFILE "authority_host = %s\n", good[i].value), 0);
                c = parse_ok(text);
                ck_assert_str_eq(c->profiles[0]->authority_host, good[i].want);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = NULL, *want = NULL;

                ck_assert_int_ge(asprintf(&text, DEFAULT_PROFILE "authority_host = %s\n", bad[i].value), 0);
                ck_assert_int_ge(asprintf(&want, "3: %s", bad[i].want), 0);
                EXPECT_ERRORS(text, want);
        }
}
END_TEST

START_TEST(test_tenant) {
        static const char *const good[] = {
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
                "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
                "contoso.onmicrosoft.com",
                "fabrikam.com",
                "organizations",
        };
        static const char *const bad[] = {
                "common",         "contoso",       "../../evil",   "contoso.com/x",
                "a b.com",        "contoso..com",  "-contoso.com", "72f988bf-86f1-41af-91ab-2d7cd011db4",
                "contoso.com%2f", "contoso.com?x",
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *text = NULL;
                Config *c;

                ck_assert_int_ge(asprintf(&text, "[profile default]\ntenant = %s\n", good[i]), 0);
                c = parse_ok(text);
                ck_assert_str_eq(c->profiles[0]->tenant, good[i]);
                config_free(c);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = NULL, *want = NULL;

                ck_assert_int_ge(asprintf(&text, "[profile default]\ntenant = %s\n", bad[i]), 0);
                ck_assert_int_ge(asprintf(&want, "2: tenant '%s' is not a tenant ID (GUID), a domain", bad[i]), 0);
                EXPECT_ERRORS(text, want);
        }
        EXPECT_ERRORS("[profile default]\ntenant =\n", "2: tenant '' is not a tenant ID");
        /* A missing tenant is named at the profile's header. */
        EXPECT_ERRORS("# hello\n[profile default]\ntoken_file = ~/t\n",
                      "2: profile 'default' has no tenant: add tenant = ");
        EXPECT_ERRORS("[profile default]\n", "1: profile 'default' has no tenant");
}
END_TEST

START_TEST(test_application_ids) {
        EXPECT_ERRORS(DEFAULT_PROFILE "client_id = azure-cli\n", "3: client_id 'azure-cli' is not an application ID");
        EXPECT_ERRORS(DEFAULT_PROFILE "server_id = my server\n", "3: server_id 'my server' must be an application ID");
        EXPECT_ERRORS(DEFAULT_PROFILE "server_id =\n", "3: server_id '' must be");
}
END_TEST

/* Which context of the kubeconfig a profile means (init writes one profile per context). */
START_TEST(test_kubeconfig_context) {
        _cleanup_(config_freep) Config *c = parse_ok("[profile a]\ntenant = t.example\nkubeconfig = /k\n"
                                                     "kubeconfig_context = aks-prod\n"
                                                     "[profile b]\ntenant = t.example\nkubeconfig = /k\n");

        ck_assert_str_eq(config_find_profile(c, "a")->kubeconfig_context, "aks-prod");
        ck_assert_ptr_null(config_find_profile(c, "b")->kubeconfig_context);
        ck_assert(config_profile_key_is_known("kubeconfig_context"));
        ck_assert(config_profile_key_is_known("tenant"));
        ck_assert(!config_profile_key_is_known("colour"));
        ck_assert(!config_profile_key_is_known("socket")); /* a [daemon] key */
        ck_assert(!config_profile_key_is_known(NULL));
        EXPECT_ERRORS("[profile a]\ntenant = t.example\nkubeconfig_context = aks-prod\n",
                      "3: kubeconfig_context 'aks-prod' needs kubeconfig");
}
END_TEST

START_TEST(test_keys_and_sections) {
        EXPECT_ERRORS(DEFAULT_PROFILE "tenat = x\n",
                      "3: unknown key 'tenat' in a [profile NAME] section: did you mean 'tenant'?");
        EXPECT_ERRORS(DEFAULT_PROFILE "Token_File = ~/t\n", "3: did you mean 'token_file'?");
        EXPECT_ERRORS(
                DEFAULT_PROFILE "colour = blue\n",
                "3: unknown key 'colour' in a [profile NAME] section; the keys there are tenant, authority_host, "
                "client_id, server_id, refresh_before, token_file, spark_properties, kubeconfig, kubeconfig_context, ca_file");
        EXPECT_ERRORS("[daemon]\nverbosity = 3\n" DEFAULT_PROFILE,
                      "2: unknown key 'verbosity' in [daemon]; the keys there are socket, state_dir, log_level, "
                      "notify_command, http_timeout");
        EXPECT_ERRORS("[daemon]\nsockt = /run/x.sock\n" DEFAULT_PROFILE,
                      "2: unknown key 'sockt' in [daemon]: did you mean 'socket'?");
        EXPECT_ERRORS("[daemon]\ntenant = " TENANT "\n" DEFAULT_PROFILE,
                      "2: tenant belongs in a [profile NAME] section, not in [daemon]");
        EXPECT_ERRORS(DEFAULT_PROFILE "log_level = debug\n",
                      "3: log_level belongs in the [daemon] section, not in [profile default]");
        EXPECT_ERRORS("log_level = debug\n" DEFAULT_PROFILE, "1: log_level is outside any section");
        EXPECT_ERRORS("[deamon]\nlog_level = debug\n" DEFAULT_PROFILE,
                      "1: unknown section [deamon]: did you mean [profile deamon]?");
        EXPECT_ERRORS("[Daemon]\n" DEFAULT_PROFILE, "1: unknown section [Daemon]: section names are lower case");
        EXPECT_ERRORS("[default]\ntenant = " TENANT "\n[profile x]\ntenant = " TENANT "\n",
                      "1: unknown section [default]: did you mean [profile default]?");
        EXPECT_ERRORS("[spark settings]\n" DEFAULT_PROFILE,
                      "1: unknown section [spark settings]: sections are [daemon] and [profile NAME]");
        EXPECT_ERRORS("[profile]\ntenant = " TENANT "\n", "1: [profile] needs a name");
        EXPECT_ERRORS("[profile my profile]\ntenant = " TENANT "\n",
                      "1: bad profile name 'my profile': use letters, digits, '_', '.' and '-' only");
        EXPECT_ERRORS("[profile a/b]\ntenant = " TENANT "\n", "1: bad profile name 'a/b'");
        EXPECT_ERRORS("[profile ..]\ntenant = " TENANT "\n", "1: bad profile name '..': it must not be '.' or '..'");
        EXPECT_ERRORS("[profile default\ntenant = " TENANT "\n", "1: section header without a closing ']'");
        EXPECT_ERRORS("[profile default] tenant = x\ntenant = " TENANT "\n", "1: unexpected text after ']'");
}
END_TEST

START_TEST(test_duplicates) {
        EXPECT_ERRORS(DEFAULT_PROFILE "token_file = ~/a\n\n[profile default]\ntenant = " TENANT "\n",
                      "5: profile 'default' is defined twice (first at line 1)");
        EXPECT_ERRORS("[daemon]\nlog_level = info\nsocket = /run/a.sock\nlog_level = debug\n" DEFAULT_PROFILE,
                      "4: log_level is already set at line 2: give it once");
        /* Also across two [daemon] sections. */
        EXPECT_ERRORS("[daemon]\nhttp_timeout = 10s\n" DEFAULT_PROFILE "[daemon]\nhttp_timeout = 20s\n",
                      "6: http_timeout is already set at line 2");
        EXPECT_ERRORS(DEFAULT_PROFILE "tenant = fabrikam.com\n", "3: tenant is already set at line 2");
}
END_TEST

START_TEST(test_malformed_lines) {
        /* inih alone would report only the first of these; every one is named. */
        EXPECT_ERRORS(DEFAULT_PROFILE "this line is not a setting\n= value\ntoken_file ; comment = x\n",
                      "3: cannot read this line: expected 'key = value'", "4: no key before '='",
                      "5: cannot read this line");
}
END_TEST

START_TEST(test_nul_byte) {
        static const char text[] = DEFAULT_PROFILE "token_file = ~/a\0/../etc/passwd\n";

        expect_errors_len(text, sizeof text - 1, (const char *const[]) { "3: the line contains a NUL byte", NULL });
}
END_TEST

START_TEST(test_no_profile) {
        EXPECT_ERRORS("", "1: no profile is configured: add a [profile default] section");
        EXPECT_ERRORS("; only a comment\n\n", "1: no profile is configured");
        EXPECT_ERRORS("[daemon]\nlog_level = info\n", "1: no profile is configured");
        /* A refused profile header is reported itself: no second message that there is none. */
        EXPECT_ERRORS("[profile a b]\ntenant = " TENANT "\n", "1: bad profile name");
}
END_TEST

START_TEST(test_every_problem_sorted) {
        /* Problems found in different passes still come out in line order. */
        EXPECT_ERRORS("[daemon]\n"                            /* 1 */
                      "log_level = loud\n"                    /* 2 */
                      "frobnicate = 1\n"                      /* 3 */
                      "[profile a]\n"                         /* 4: no tenant */
                      "refresh_before = soon\n"               /* 5 */
                      "token_file = ~/t\n"                    /* 6 */
                      "[profile b]\n"                         /* 7 */
                      "tenant = " TENANT "\n"                 /* 8 */
                      "authority_host = http://idp.example\n" /* 9 */
                      "token_file = ${HOME}/t\n"              /* 10: same file as line 6 */
                      "garbage\n"                             /* 11 */
                      "[profile a]\n",                        /* 12 */
                      "2: log_level 'loud'", "3: unknown key 'frobnicate'", "4: profile 'a' has no tenant",
                      "5: refresh_before 'soon' is not a duration", "9: must use https://",
                      "10: profile 'b' token_file /home/u/t is also written by profile 'a' (token_file, line 6)",
                      "11: cannot read this line", "12: profile 'a' is defined twice (first at line 4)");
}
END_TEST

START_TEST(test_same_file_twice) {
        /* Compared after expansion and after "//" and "/./" are folded. */
        EXPECT_ERRORS(
                "[profile a]\ntenant = " TENANT "\ntoken_file = ~/.kube/t\n"
                "[profile b]\ntenant = " TENANT "\ntoken_file = ${HOME}//.kube/./t\n",
                "6: profile 'b' token_file /home/u/.kube/t is also written by profile 'a' (token_file, line 3): give each file one writer");
        EXPECT_ERRORS("[profile a]\ntenant = " TENANT "\nspark_properties = /s/p\n"
                      "[profile b]\ntenant = " TENANT "\nspark_properties = /s/q\nspark_properties = /s/p/\n",
                      "7: profile 'b' spark_properties /s/p is also written by profile 'a' (spark_properties, line 3)");
        /* Within one profile, and a token file that is also a properties file. */
        EXPECT_ERRORS(DEFAULT_PROFILE "spark_properties = /s/p\nspark_properties = /s/p\n",
                      "4: is also written by this profile's spark_properties (line 3)");
        EXPECT_ERRORS(
                DEFAULT_PROFILE "spark_properties = ~/.kube/oauthToken\n",
                "3: profile 'default' spark_properties /home/u/.kube/oauthToken is also written by this profile's default token_file (line 1)");
        /* The default token file of [profile default] against one that is named. */
        EXPECT_ERRORS(
                DEFAULT_PROFILE "[profile other]\ntenant = " TENANT "\ntoken_file = ~/.kube/oauthToken\n",
                "5: profile 'other' token_file /home/u/.kube/oauthToken is also written by profile 'default' (default token_file, line 1)");
        /* Writing the kubeconfig that a profile reads would destroy it. */
        EXPECT_ERRORS(DEFAULT_PROFILE "kubeconfig = ~/.kube/config\ntoken_file = ~/.kube/config\n",
                      "4: is also the kubeconfig of profile 'default': it would be overwritten");
}
END_TEST

START_TEST(test_kubeconfig_output) {
        Config *c;

        c = parse_ok(DEFAULT_PROFILE "kubeconfig = ~/.kube/config\nkubeconfig_output = ~/.kube/aksspark\n");
        ck_assert_str_eq(c->profiles[0]->kubeconfig_output, "/home/u/.kube/aksspark");
        ck_assert_str_eq(c->profiles[0]->kubeconfig_exec_api_version, "client.authentication.k8s.io/v1");
        config_free(c);
        c = parse_ok(DEFAULT_PROFILE "kubeconfig = ~/.kube/config\nkubeconfig_output = ~/.kube/aksspark\n"
                                     "kubeconfig_exec_api_version = client.authentication.k8s.io/v1beta1\n");
        ck_assert_str_eq(c->profiles[0]->kubeconfig_exec_api_version, "client.authentication.k8s.io/v1beta1");
        config_free(c);

        EXPECT_ERRORS(DEFAULT_PROFILE "kubeconfig_output = ~/.kube/aksspark\n",
                      "3: kubeconfig_output needs kubeconfig = <the kubeconfig to take the cluster from>");
        EXPECT_ERRORS(
                DEFAULT_PROFILE "kubeconfig = ~/.kube/config\nkubeconfig_output = ~/.kube/aksspark\n"
                                "kubeconfig_exec_api_version = v1\n",
                "5: kubeconfig_exec_api_version 'v1' is not client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1");
        EXPECT_ERRORS(
                DEFAULT_PROFILE
                "kubeconfig = ~/.kube/config\nkubeconfig_exec_api_version = client.authentication.k8s.io/v1\n",
                "4: kubeconfig_exec_api_version applies to kubeconfig_output, which profile 'default' does not set");
        EXPECT_ERRORS(DEFAULT_PROFILE "kubeconfig = ~/.kube/config\nkubeconfig_output = kube\n",
                      "4: kubeconfig_output 'kube' is not an absolute path");
        /* One writer per file, and never the kubeconfig it reads. */
        EXPECT_ERRORS(
                DEFAULT_PROFILE "kubeconfig = ~/.kube/config\nkubeconfig_output = ~/.kube/k\n"
                                "[profile b]\ntenant = " TENANT
                                "\nkubeconfig = ~/.kube/config\nkubeconfig_output = ~/.kube/k\n",
                "8: profile 'b' kubeconfig_output /home/u/.kube/k is also written by profile 'default' (kubeconfig_output, line 4)");
        EXPECT_ERRORS(
                DEFAULT_PROFILE "kubeconfig = ~/.kube/config\nkubeconfig_output = ~/.kube/oauthToken\n",
                "4: profile 'default' kubeconfig_output /home/u/.kube/oauthToken is also written by this profile's default token_file");
        EXPECT_ERRORS(DEFAULT_PROFILE "kubeconfig = ~/.kube/config\nkubeconfig_output = ~/.kube/config\n",
                      "4: is also the kubeconfig of profile 'default': it would be overwritten");
}
END_TEST

START_TEST(test_default_token_file_rule) {
        Config *c;

        /* A lone profile gets it whatever its name. */
        c = parse_ok("[profile prod]\ntenant = " TENANT "\n");
        ck_assert_str_eq(c->profiles[0]->token_file, "/home/u/.kube/oauthToken");
        ck_assert_ptr_eq(config_default_profile(c), c->profiles[0]);
        config_free(c);

        /* With several, only [profile default]. */
        c = parse_ok("[profile prod]\ntenant = " TENANT "\nspark_properties = ~/p.properties\n" DEFAULT_PROFILE
                     "[profile test]\ntenant = " TENANT "\ntoken_file = ~/test-token\n");
        ck_assert_uint_eq(c->n_profiles, 3);
        ck_assert_str_eq(c->profiles[0]->name, "prod");
        ck_assert_ptr_null(c->profiles[0]->token_file);
        ck_assert_str_eq(c->profiles[1]->name, "default");
        ck_assert_uint_eq(c->profiles[1]->line, 4);
        ck_assert_str_eq(c->profiles[1]->token_file, "/home/u/.kube/oauthToken");
        ck_assert_str_eq(c->profiles[2]->token_file, "/home/u/test-token");
        ck_assert_ptr_eq(config_default_profile(c), c->profiles[1]);
        ck_assert_ptr_eq(config_find_profile(c, "test"), c->profiles[2]);
        ck_assert_ptr_null(config_find_profile(c, "nope"));
        ck_assert_ptr_null(config_find_profile(c, NULL));
        config_free(c);

        /* Several and none named default: no default token file, no default profile. */
        c = parse_ok("[profile a]\ntenant = " TENANT "\n[profile b]\ntenant = " TENANT "\n");
        ck_assert_ptr_null(c->profiles[0]->token_file);
        ck_assert_ptr_null(c->profiles[1]->token_file);
        ck_assert_ptr_null(config_default_profile(c));
        config_free(c);

        /* An empty value turns it off. */
        c = parse_ok(DEFAULT_PROFILE "token_file =\nspark_properties = ~/p\n");
        ck_assert_ptr_null(c->profiles[0]->token_file);
        config_free(c);

        ck_assert_ptr_null(config_default_profile(NULL));
}
END_TEST

START_TEST(test_spark_properties_repeated) {
        _cleanup_(config_freep) Config *c = parse_ok(DEFAULT_PROFILE "spark_properties = /p/1\n"
                                                                     "token_file = ~/t\n"
                                                                     "spark_properties = /p/2\n"
                                                                     "spark_properties : /p/3\n");
        const ProfileConfig *p = c->profiles[0];

        ck_assert_uint_eq(p->n_spark_properties, 3);
        ck_assert_str_eq(p->spark_properties[0], "/p/1");
        ck_assert_str_eq(p->spark_properties[1], "/p/2");
        ck_assert_str_eq(p->spark_properties[2], "/p/3");
}
END_TEST

START_TEST(test_summary) {
        _cleanup_(config_freep) Config *c = parse_ok(
                "[profile default]\ntenant = " TENANT "\nspark_properties = ~/spark/spark.properties\n"
                "[profile two]\ntenant = organizations\nauthority_host = http://127.0.0.1:8443/\n"
                "token_file = /t\nspark_properties = /a\nspark_properties = /b\n"
                "[profile none]\ntenant = fabrikam.com\n"
                "[profile onlytoken]\ntenant = fabrikam.com\ntoken_file = /only\n");
        _cleanup_free_ char *s0 = profile_config_summary(c->profiles[0]);
        _cleanup_free_ char *s1 = profile_config_summary(c->profiles[1]);
        _cleanup_free_ char *s2 = profile_config_summary(c->profiles[2]);
        _cleanup_free_ char *s3 = profile_config_summary(c->profiles[3]);

        ck_assert_str_eq(s0, "profile default: tenant contoso.onmicrosoft.com via https://login.microsoftonline.com, "
                             "writes /home/u/.kube/oauthToken and /home/u/spark/spark.properties");
        ck_assert_str_eq(s1, "profile two: tenant organizations via http://127.0.0.1:8443, writes /t, /a and /b");
        ck_assert_str_eq(s2, "profile none: tenant fabrikam.com via https://login.microsoftonline.com, "
                             "writes no files (the token is only served on the socket)");
        ck_assert_str_eq(s3,
                         "profile onlytoken: tenant fabrikam.com via https://login.microsoftonline.com, writes /only");
}
END_TEST

/* Documents what Debian's inih (INI_MAX_LINE 200, no realloc) does with a 4 KiB line when it
 * reads it itself: it cuts the line into 199-byte pieces and parses each piece as a line of its
 * own, so a value is silently cut and text from inside a value becomes a key. */
static int record_handler(void *user, const char *section, const char *name, const char *value) {
        char *log = user;
        size_t n = strlen(log);

        snprintf(log + n, 8192 - n, "%s=%zu|", name, strlen(value));
        return 1;
}

START_TEST(test_inih_cuts_long_lines) {
        char *text = malloc(8192), *log = calloc(1, 8192);
        size_t n = 0;
        int r;

        ck_assert(text && log);
        n += (size_t) sprintf(text, "[s]\ntoken_file = /");
        memset(text + n, 'a', 4096 - 14);
        memcpy(text + 250, "tenant=evil", 11);
        n += 4096 - 14;
        n += (size_t) sprintf(text + n, "\nlast = 1\n");

        r = ini_parse_string(text, record_handler, log);
        /* The value is cut to what fits, a second key appears out of the middle of the value,
         * and the pieces without '=' are errors with line numbers past the real ones. */
        ck_assert_ptr_nonnull(strstr(log, "token_file=186|"));
        ck_assert_ptr_nonnull(strstr(log, "tenant="));
        ck_assert_int_gt(r, 3);
        free(text);
        free(log);
}
END_TEST

START_TEST(test_long_lines) {
        char *text = malloc(16384);
        size_t n = 0;

        ck_assert_ptr_nonnull(text);
        /* A 4 KiB line is one problem at its own line; the lines after it keep their numbers and
         * nothing inside it is read as a key. */
        n += (size_t) sprintf(text, DEFAULT_PROFILE "token_file = /");
        memset(text + n, 'a', 4096 - 14);
        memcpy(text + n + 300, "tenant=evil", 11);
        n += 4096 - 14;
        n += (size_t) sprintf(text + n, "\nrefresh_before = x\n");
        expect_errors_len(text, n,
                          (const char *const[]) { "3: line too long (4096 bytes, at most 198)",
                                                  "4: refresh_before 'x' is not a duration", NULL });
        free(text);
}
END_TEST

/* A token_file line of exactly len bytes (without its line ending). */
static char *line_of_length(size_t len, const char *eol) {
        const char *prefix = DEFAULT_PROFILE "token_file = /";
        char *text = malloc(strlen(prefix) + len + 16);
        size_t n = strlen(prefix);

        ck_assert_ptr_nonnull(text);
        strcpy(text, prefix);
        memset(text + n, 'b', len - strlen("token_file = /"));
        n += len - strlen("token_file = /");
        strcpy(text + n, eol);
        return text;
}

START_TEST(test_line_at_the_limit) {
        static const char *const endings[] = { "\n", "\r\n", "" };

        for (size_t i = 0; i < ELEMENTSOF(endings); i++) {
                _cleanup_free_ char *fits = line_of_length(LINE_MAX_BYTES, endings[i]);
                _cleanup_free_ char *over = line_of_length(LINE_MAX_BYTES + 1, endings[i]);
                Config *c = parse_ok(fits);

                /* Kept whole: 198 bytes minus "token_file = " */
                ck_assert_uint_eq(strlen(c->profiles[0]->token_file), LINE_MAX_BYTES - strlen("token_file = "));
                config_free(c);
                EXPECT_ERRORS(over, "3: line too long (199 bytes, at most 198)");
        }
}
END_TEST

START_TEST(test_long_section_header) {
        /* inih keeps only 49 bytes of a section name; ours are read whole. */
        char name[101];
        _cleanup_free_ char *text = NULL;
        Config *c;

        memset(name, 'p', 100);
        name[100] = 0;
        ck_assert_int_ge(asprintf(&text, "[profile %s]\ntenant = " TENANT "\n[profile %.60s]\ntenant = " TENANT "\n",
                                  name, name),
                         0);
        c = parse_ok(text);
        ck_assert_uint_eq(c->n_profiles, 2);
        ck_assert_str_eq(c->profiles[0]->name, name);
        ck_assert_uint_eq(strlen(c->profiles[1]->name), 60);
        config_free(c);
}
END_TEST

START_TEST(test_crlf_and_bom) {
        Config *c;

        c = parse_ok("\xef\xbb\xbf[daemon]\r\nlog_level = debug\r\n\r\n[profile default]\r\ntenant = " TENANT
                     "\r\nspark_properties = ~/p.properties ; comment\r\n");
        ck_assert_int_eq(c->log_level, LOG_DEBUG);
        ck_assert_str_eq(c->profiles[0]->tenant, TENANT);
        ck_assert_str_eq(c->profiles[0]->spark_properties[0], "/home/u/p.properties");
        config_free(c);

        /* Line numbers stay right in a CRLF file, and a BOM counts as nothing. */
        EXPECT_ERRORS("\xef\xbb\xbf[profile default]\r\ntenant = " TENANT "\r\n\r\nbogus = 1\r\n",
                      "4: unknown key 'bogus'");
        /* A BOM is only one at the start of the file. */
        EXPECT_ERRORS(DEFAULT_PROFILE "\xef\xbb\xbftoken_file = ~/t\n", "3: unknown key");
}
END_TEST

START_TEST(test_indented_and_comments) {
        /* inih would read the second indented key as a continuation of the first; here each
         * indented key is a key. */
        _cleanup_(config_freep) Config *c = parse_ok("  [profile default]   ; the one\n"
                                                     "    tenant = " TENANT "   ; inline comment\n"
                                                     "\ttoken_file = ~/t\n"
                                                     "    # a comment\n"
                                                     "    ; another\n"
                                                     "    refresh_before = 5m\n");
        const ProfileConfig *p = c->profiles[0];

        ck_assert_str_eq(p->tenant, TENANT);
        ck_assert_str_eq(p->token_file, "/home/u/t");
        ck_assert_uint_eq(p->refresh_before, 5 * USEC_PER_MINUTE);
}
END_TEST

START_TEST(test_socket_path) {
        char long_path[200];
        _cleanup_free_ char *text = NULL;

        memset(long_path, 's', sizeof long_path - 1);
        long_path[0] = '/';
        long_path[120] = 0;
        ck_assert_int_ge(asprintf(&text, "[daemon]\nsocket = %s\n" DEFAULT_PROFILE, long_path), 0);
        EXPECT_ERRORS(text, "2: socket path '/sss");
        EXPECT_ERRORS(text, "2: is 120 bytes, longer than a Unix socket address allows (107)");
        EXPECT_ERRORS("[daemon]\nsocket = tokend.sock\n" DEFAULT_PROFILE,
                      "2: socket 'tokend.sock' is not an absolute path");
}
END_TEST

START_TEST(test_no_home) {
        ConfigEnv env = { .home = NULL };
        ConfigErrors e = {};
        Config *c = NULL;

        ck_assert_int_eq(config_parse("t.ini", DEFAULT_PROFILE, strlen(DEFAULT_PROFILE), &env, &c, &e), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_uint_eq(e.n, 1);
        ck_assert_str_eq(e.lines[0], "t.ini:1: no home directory is known: set HOME to an absolute path");
        config_errors_clear(&e);
        ck_assert_uint_eq(e.n, 0);
        ck_assert_ptr_null(e.lines);
        config_errors_clear(&e);
}
END_TEST

START_TEST(test_errors_replaced_not_appended) {
        ConfigEnv env = test_env();
        ConfigErrors e = {};
        Config *c = NULL;

        ck_assert_int_eq(config_parse("t.ini", "x\n", 2, &env, &c, &e), -EINVAL);
        ck_assert_uint_ge(e.n, 1);
        ck_assert_int_eq(config_parse("t.ini", DEFAULT_PROFILE, strlen(DEFAULT_PROFILE), &env, &c, &e), 0);
        ck_assert_uint_eq(e.n, 0);
        config_free(c);
        /* Not NUL-terminated: only len bytes are read. */
        ck_assert_int_eq(config_parse("t.ini", DEFAULT_PROFILE "garbage", strlen(DEFAULT_PROFILE), &env, &c, &e), 0);
        config_free(c);
}
END_TEST

START_TEST(test_load) {
        _cleanup_free_ char *dir = testlib_mkdtemp(), *good = NULL, *big = NULL, *missing = NULL;
        ConfigEnv env = test_env();
        ConfigErrors e = {};
        Config *c = NULL;
        char *data;

        ck_assert_int_ge(asprintf(&good, "%s/config.ini", dir), 0);
        ck_assert_int_ge(asprintf(&big, "%s/big.ini", dir), 0);
        ck_assert_int_ge(asprintf(&missing, "%s/missing.ini", dir), 0);
        testlib_write_file(good, DEFAULT_PROFILE "bogus = 1\n", strlen(DEFAULT_PROFILE) + 10);

        ck_assert_int_eq(config_load(good, &env, &c, &e), -EINVAL);
        ck_assert_uint_eq(e.n, 1);
        ck_assert_ptr_nonnull(strstr(e.lines[0], "/config.ini:3: unknown key 'bogus'"));

        testlib_write_file(good, DEFAULT_PROFILE, strlen(DEFAULT_PROFILE));
        ck_assert_int_eq(config_load(good, &env, &c, &e), 0);
        ck_assert_uint_eq(e.n, 0);
        ck_assert_str_eq(c->path, good);
        config_free(c);
        c = NULL;

        ck_assert_int_eq(config_load(missing, &env, &c, &e), -ENOENT);
        ck_assert_ptr_null(c);
        ck_assert_uint_eq(e.n, 1);
        ck_assert_ptr_nonnull(
                strstr(e.lines[0], "missing.ini: cannot read the configuration: No such file or directory"));

        ck_assert_int_eq(config_load(dir, &env, &c, &e), -EISDIR);
        ck_assert_uint_eq(e.n, 1);

        data = malloc(2 * 1024 * 1024);
        ck_assert_ptr_nonnull(data);
        memset(data, ';', 2 * 1024 * 1024);
        testlib_write_file(big, data, 2 * 1024 * 1024);
        free(data);
        ck_assert_int_eq(config_load(big, &env, &c, &e), -EFBIG);
        ck_assert_uint_eq(e.n, 1);
        ck_assert_ptr_nonnull(strstr(e.lines[0], "big.ini: larger than 1024 KiB"));
        config_errors_clear(&e);

        testlib_rm_rf(dir);
}
END_TEST

START_TEST(test_env_from_process) {
        _cleanup_free_ char *home = NULL;
        ConfigEnv env;

        ck_assert_int_eq(setenv("HOME", "/home/tester", 1), 0);
        ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1), 0);
        ck_assert_int_eq(setenv("XDG_CONFIG_HOME", "", 1), 0);
        ck_assert_int_eq(setenv("STATE_DIRECTORY", "/var/lib/x", 1), 0);
        ck_assert_int_eq(setenv("AKSSPARK_TEST_VAR", "/v", 1), 0);
        ck_assert_int_eq(unsetenv("CONFIGURATION_DIRECTORY"), 0);

        ck_assert_int_eq(config_env_from_process(&env, &home), 0);
        ck_assert_str_eq(env.home, "/home/tester");
        ck_assert_ptr_eq(env.home, home);
        ck_assert_str_eq(env.xdg_runtime_dir, "/run/user/4242");
        ck_assert_ptr_null(env.xdg_config_home); /* empty is unset */
        ck_assert_str_eq(env.state_directory, "/var/lib/x");
        ck_assert_ptr_null(env.configuration_directory);
        ck_assert_ptr_nonnull(env.lookup);
        ck_assert_str_eq(env.lookup("AKSSPARK_TEST_VAR", env.userdata), "/v");
        ck_assert_ptr_null(env.lookup("AKSSPARK_TEST_UNSET_VAR", env.userdata));
        free(TAKE_PTR(home));

        /* Without $HOME the password database says where home is. */
        ck_assert_int_eq(unsetenv("HOME"), 0);
        ck_assert_int_eq(config_env_from_process(&env, &home), 0);
        ck_assert(env.home[0] == '/');
}
END_TEST

START_TEST(test_example_config) {
        /* conf/config.ini is what people copy: it must pass as it is. */
        const char *src = getenv("AKSSPARK_SOURCE_DIR");
        _cleanup_free_ char *path = NULL;
        ConfigEnv env = { .home = "/home/u" };
        ConfigErrors e = {};
        Config *c = NULL;
        int r;

        ck_assert_int_ge(asprintf(&path, "%s/conf/config.ini", src ?: "."), 0);
        r = config_load(path, &env, &c, &e);
        for (size_t i = 0; i < e.n; i++)
                fprintf(stderr, "%s\n", e.lines[i]);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_ge(c->n_profiles, 1);
        ck_assert_ptr_nonnull(config_find_profile(c, "default"));
        config_free(c);
}
END_TEST

#define APP "3c1b4e2a-9d8f-4a61-b7e0-5f2c8d9a1b3e"

START_TEST(test_identities) {
        Config *c;
        const ProfileConfig *p;

        c = parse_ok(DEFAULT_PROFILE);
        ck_assert_int_eq(c->profiles[0]->auth, AUTH_DEVICE_CODE);
        config_free(c);

        c = parse_ok(DEFAULT_PROFILE "auth = browser\nredirect_port = 8400\n");
        ck_assert_int_eq(c->profiles[0]->auth, AUTH_BROWSER);
        ck_assert_uint_eq(c->profiles[0]->redirect_port, 8400);
        config_free(c);

        c = parse_ok(DEFAULT_PROFILE "auth = client_secret\nclient_id = " APP
                                     "\nclient_secret_file = ${DATA}/secret\n");
        p = c->profiles[0];
        ck_assert_int_eq(p->auth, AUTH_CLIENT_SECRET);
        ck_assert_str_eq(p->client_secret_file, "/data/secret");
        ck_assert_str_eq(p->client_id, APP);
        {
                _cleanup_free_ char *scope = profile_config_app_scope(p), *sum = profile_config_summary(p);
                ck_assert_str_eq(scope, "6dae42f8-4368-4678-94ff-3960e28e3630/.default");
                ck_assert(strstr(sum, "client_secret as " APP));
        }
        config_free(c);

        c = parse_ok(DEFAULT_PROFILE "auth = client_certificate\nclient_id = " APP "\nclient_certificate = ~/app.pem\n"
                                     "client_certificate_password_file = ~/pw\n");
        p = c->profiles[0];
        ck_assert_str_eq(p->client_certificate, "/home/u/app.pem");
        ck_assert_str_eq(p->client_certificate_password_file, "/home/u/pw");
        config_free(c);

        c = parse_ok("[profile default]\nauth = managed_identity\nmanaged_identity_client_id = " APP "\n");
        p = c->profiles[0];
        ck_assert_int_eq(p->msi_kind, MSI_IMDS);
        ck_assert_str_eq(p->msi_endpoint, "http://169.254.169.254");
        ck_assert_str_eq(p->managed_identity_client_id, APP);
        config_free(c);

        /* tenant is not used, but a profile written by init may name it: kept for display */
        c = parse_ok(DEFAULT_PROFILE "auth = managed_identity\n");
        ck_assert_str_eq(c->profiles[0]->tenant, TENANT);
        config_free(c);

        c = parse_ok("[profile default]\nauth = managed_identity\nimds_endpoint = http://127.0.0.1:8080/\n");
        ck_assert_str_eq(c->profiles[0]->msi_endpoint, "http://127.0.0.1:8080");
        config_free(c);
}
END_TEST

START_TEST(test_identity_environment) {
        ConfigEnv env = test_env();
        Config *c;
        const ProfileConfig *p;

        env.azure_federated_token_file = "/var/run/secrets/azure/tokens/azure-identity-token";
        env.azure_client_id = APP;
        env.azure_tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        env.azure_authority_host = "https://login.microsoftonline.us/";
        c = parse_ok_env("[profile default]\nauth = workload_identity\n", &env);
        p = c->profiles[0];
        ck_assert_str_eq(p->federated_token_file, "/var/run/secrets/azure/tokens/azure-identity-token");
        ck_assert_str_eq(p->client_id, APP);
        ck_assert_str_eq(p->tenant, "72f988bf-86f1-41af-91ab-2d7cd011db47");
        ck_assert_str_eq(p->authority_host, "https://login.microsoftonline.us");
        config_free(c);
        /* the keys win over the environment */
        c = parse_ok_env(
                "[profile default]\nauth = workload_identity\ntenant = " TENANT "\nfederated_token_file = /t\n", &env);
        ck_assert_str_eq(c->profiles[0]->tenant, TENANT);
        ck_assert_str_eq(c->profiles[0]->federated_token_file, "/t");
        config_free(c);
        /* outside the pod (init writes such a profile): valid, the profile says at run time */
        {
                ConfigEnv bare = test_env();
                c = parse_ok_env("[profile default]\nauth = workload_identity\n", &bare);
                ck_assert_ptr_null(c->profiles[0]->tenant);
                ck_assert_ptr_null(c->profiles[0]->client_id);
                ck_assert_ptr_null(c->profiles[0]->federated_token_file);
                config_free(c);
        }
        /* the variables are for workload identity only */
        c = parse_ok_env(DEFAULT_PROFILE, &env);
        ck_assert_str_eq(c->profiles[0]->client_id, AKS_DEFAULT_CLIENT_ID);
        ck_assert_str_eq(c->profiles[0]->authority_host, AKS_DEFAULT_AUTHORITY_HOST);
        config_free(c);

        env = test_env();
        env.identity_endpoint = "http://127.0.0.1:41741/msi/token";
        env.identity_header = "hdr";
        c = parse_ok_env("[profile default]\nauth = managed_identity\n", &env);
        p = c->profiles[0];
        ck_assert_int_eq(p->msi_kind, MSI_APP_SERVICE);
        ck_assert_str_eq(p->msi_endpoint, "http://127.0.0.1:41741/msi/token");
        ck_assert_str_eq(secret_reveal(p->identity_header), "hdr");
        config_free(c);

        env.identity_header = NULL;
        env.imds_endpoint = "http://localhost:40342";
        env.identity_endpoint = "http://localhost:40342/metadata/identity/oauth2/token";
        c = parse_ok_env("[profile default]\nauth = managed_identity\n", &env);
        ck_assert_int_eq(c->profiles[0]->msi_kind, MSI_ARC);
        config_free(c);
}
END_TEST

START_TEST(test_identity_errors) {
        EXPECT_ERRORS(DEFAULT_PROFILE "auth = password\n", "3: auth 'password' is not one of device_code, browser");
        EXPECT_ERRORS(DEFAULT_PROFILE "auth = client_secret\nclient_id = " APP "\n",
                      "1: profile 'default' has auth = client_secret but no client_secret_file");
        EXPECT_ERRORS(DEFAULT_PROFILE "auth = client_secret\nclient_secret_file = /s\n",
                      "1: profile 'default' has auth = client_secret but no client_id");
        EXPECT_ERRORS(DEFAULT_PROFILE "auth = client_certificate\nclient_id = " APP "\n",
                      "1: has auth = client_certificate but no client_certificate");
        EXPECT_ERRORS(DEFAULT_PROFILE "client_secret_file = /s\n",
                      "3: client_secret_file is only for auth = client_secret (this profile has auth = device_code)");
        EXPECT_ERRORS(DEFAULT_PROFILE "auth = browser\nredirect_port = 70000\n",
                      "4: redirect_port '70000' is not a port");
        EXPECT_ERRORS(DEFAULT_PROFILE "auth = browser\nredirect_port = -1\n", "4: redirect_port '-1' is not a port");
        EXPECT_ERRORS(
                "[profile default]\nauth = managed_identity\nimds_endpoint = http://10.0.0.1\n",
                "3: imds_endpoint 'http://10.0.0.1' must be http://169.254.169.254 or an http:// address on this machine");
        EXPECT_ERRORS("[profile default]\nauth = managed_identity\nimds_endpoint = https://169.254.169.254\n",
                      "3: imds_endpoint");
        EXPECT_ERRORS(
                "[profile default]\nauth = managed_identity\nimds_endpoint = http://169.254.169.254.evil.example\n",
                "3: imds_endpoint");
        EXPECT_ERRORS("[profile default]\nauth = managed_identity\nimds_endpoint = http://127.0.0.1/x\n",
                      "3: imds_endpoint");
        EXPECT_ERRORS("[profile default]\nauth = managed_identity\nclient_id = " APP "\n",
                      "3: client_id does not choose a managed identity: use managed_identity_client_id");
        EXPECT_ERRORS("[profile default]\nauth = managed_identity\nmanaged_identity_client_id = " APP
                      "\nmanaged_identity_object_id = " APP "\n",
                      "1: names its managed identity more than once");
        EXPECT_ERRORS("[profile default]\nauth = managed_identity\nmanaged_identity_client_id = x\n",
                      "3: managed_identity_client_id 'x' is not a client ID");
        EXPECT_ERRORS("[profile default]\nauth = managed_identity\nmanaged_identity_resource_id = x\n",
                      "3: managed_identity_resource_id 'x' is not an Azure resource ID");
        EXPECT_ERRORS("[profile default]\nauth = workload_identity\nclient_id = x\n",
                      "3: client_id 'x' is not an application ID");
}
END_TEST

START_TEST(test_identity_includes_auth) {
        Config *a = parse_ok(DEFAULT_PROFILE), *b = parse_ok(DEFAULT_PROFILE "auth = browser\n"),
               *c = parse_ok(DEFAULT_PROFILE), *m1 = parse_ok("[profile default]\nauth = managed_identity\n"),
               *m2 = parse_ok("[profile default]\nauth = managed_identity\nmanaged_identity_client_id = " APP "\n");

        ck_assert(profile_config_same_identity(a->profiles[0], c->profiles[0]));
        ck_assert(!profile_config_same_identity(a->profiles[0], b->profiles[0]));
        ck_assert(!profile_config_same_identity(m1->profiles[0], m2->profiles[0]));
        ck_assert(profile_config_same_identity(m2->profiles[0], m2->profiles[0]));
        config_free(a);
        config_free(b);
        config_free(c);
        a = parse_ok("[profile default]\nauth = azurecli\n");
        b = parse_ok("[profile default]\nauth = azurecli\nazure_config_dir = /home/alice/.azure-other\n");
        c = parse_ok("[profile default]\nauth = azurecli\n");
        /* az names no client: a reload of the same az profile is the same identity, another
         * az sign-in (config dir) or another tenant is not. */
        ck_assert(profile_config_same_identity(a->profiles[0], c->profiles[0]));
        ck_assert(!profile_config_same_identity(a->profiles[0], b->profiles[0]));
        config_free(b);
        b = parse_ok("[profile default]\nauth = azurecli\ntenant = " TENANT "\n");
        ck_assert(!profile_config_same_identity(a->profiles[0], b->profiles[0]));
        config_free(a);
        config_free(b);
        config_free(c);
        config_free(m1);
        config_free(m2);
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc;

        tc = tcase_create("values");
        tcase_add_test(tc, test_identities);
        tcase_add_test(tc, test_identity_includes_auth);
        tcase_add_test(tc, test_identity_environment);
        tcase_add_test(tc, test_identity_errors);
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_every_key);
        tcase_add_test(tc, test_default_paths);
        tcase_add_test(tc, test_expansion);
        tcase_add_test(tc, test_expansion_errors);
        tcase_add_test(tc, test_durations);
        tcase_add_test(tc, test_metrics_file);
        tcase_add_test(tc, test_log_levels);
        tcase_add_test(tc, test_authority_host);
        tcase_add_test(tc, test_tenant);
        tcase_add_test(tc, test_application_ids);
        tcase_add_test(tc, test_socket_path);
        tcase_add_test(tc, test_default_token_file_rule);
        tcase_add_test(tc, test_spark_properties_repeated);
        tcase_add_test(tc, test_summary);
        suite_add_tcase(s, tc);

        tc = tcase_create("problems");
        tcase_add_test(tc, test_kubeconfig_context);
        tcase_add_test(tc, test_keys_and_sections);
        tcase_add_test(tc, test_duplicates);
        tcase_add_test(tc, test_malformed_lines);
        tcase_add_test(tc, test_nul_byte);
        tcase_add_test(tc, test_no_profile);
        tcase_add_test(tc, test_every_problem_sorted);
        tcase_add_test(tc, test_same_file_twice);
        tcase_add_test(tc, test_kubeconfig_output);
        tcase_add_test(tc, test_no_home);
        tcase_add_test(tc, test_errors_replaced_not_appended);
        suite_add_tcase(s, tc);

        tc = tcase_create("lines");
        tcase_add_test(tc, test_inih_cuts_long_lines);
        tcase_add_test(tc, test_long_lines);
        tcase_add_test(tc, test_line_at_the_limit);
        tcase_add_test(tc, test_long_section_header);
        tcase_add_test(tc, test_crlf_and_bom);
        tcase_add_test(tc, test_indented_and_comments);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_test(tc, test_load);
        tcase_add_test(tc, test_env_from_process);
        tcase_add_test(tc, test_example_config);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(config_suite());
}
