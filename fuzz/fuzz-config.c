/* Fuzzes config.ini parsing: any text either gives a Config that keeps every promise the
 * daemon relies on, or is refused with at least one "file:line: ..." problem, never both. */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "shared/config.h"

#define CONFIG_PATH "/home/u/.config/aksspark-tokend/config.ini"

static const char *lookup(const char *name, void *userdata) {
        if (strcmp(name, "HOME") == 0)
                return "/home/u";
        if (strcmp(name, "SPARK_CONF_DIR") == 0)
                return "/opt/spark/conf";
        if (strcmp(name, "EMPTY") == 0)
                return "";
        return NULL;
}

static bool is_absolute(const char *path) {
        return path && path[0] == '/';
}

/* Visible ASCII only, and none of the characters in bad. */
static bool is_url_safe(const char *s, const char *bad) {
        for (; *s; s++)
                if ((unsigned char) *s <= 0x20 || (unsigned char) *s >= 0x7f || strchr(bad, *s))
                        return false;
        return true;
}

/* "<path>:<line>: <text>", one line of printable text; lines in file order. */
static unsigned check_problem(const char *line, unsigned previous) {
        size_t n = strlen(CONFIG_PATH);
        const char *p;
        unsigned number = 0;

        FUZZ_CHECK(strncmp(line, CONFIG_PATH ":", n + 1) == 0);
        p = line + n + 1;
        FUZZ_CHECK(isdigit((unsigned char) *p));
        while (isdigit((unsigned char) *p))
                number = number * 10 + (unsigned) (*p++ - '0');
        FUZZ_CHECK(*p == ':');
        FUZZ_CHECK(number >= 1);
        FUZZ_CHECK(number >= previous);
        FUZZ_CHECK(!fuzz_has_control_chars(line));
        return number;
}

static void check_config(const Config *c) {
        size_t n_outputs = 0, k = 0;
        const char **outputs;

        FUZZ_CHECK(c->path && strcmp(c->path, CONFIG_PATH) == 0);
        FUZZ_CHECK(!c->socket_path || is_absolute(c->socket_path));
        FUZZ_CHECK(is_absolute(c->state_dir));
        FUZZ_CHECK(c->n_profiles >= 1);
        FUZZ_CHECK(config_default_profile(c) || c->n_profiles > 1);

        for (size_t i = 0; i < c->n_profiles; i++) {
                const ProfileConfig *p = c->profiles[i];
                size_t len;
                char *s;

                FUZZ_CHECK(profile_name_is_valid(p->name));
                FUZZ_CHECK(config_find_profile(c, p->name) == p);
                FUZZ_CHECK(p->tenant && *p->tenant);
                FUZZ_CHECK(p->client_id && *p->client_id);
                FUZZ_CHECK(p->server_id && *p->server_id);
                FUZZ_CHECK(p->authority_host);
                len = strlen(p->authority_host);
                FUZZ_CHECK(len > 0 && p->authority_host[len - 1] != '/');
                FUZZ_CHECK(strncasecmp(p->authority_host, "https://", 8) == 0 ||
                           strncasecmp(p->authority_host, "http://127.0.0.1", 16) == 0 ||
                           strncasecmp(p->authority_host, "http://localhost", 16) == 0 ||
                           strncasecmp(p->authority_host, "http://[::1]", 12) == 0);
                /* Both end up in the URLs the daemon requests. */
                FUZZ_CHECK(is_url_safe(p->authority_host, "\\\"<>?#@"));
                FUZZ_CHECK(is_url_safe(p->tenant, "/\\\"<>?#@%"));
                FUZZ_CHECK(p->refresh_before <= 366 * 24 * USEC_PER_HOUR);
                FUZZ_CHECK(!p->token_file || is_absolute(p->token_file));
                FUZZ_CHECK(!p->kubeconfig || is_absolute(p->kubeconfig));
                FUZZ_CHECK(!p->ca_file || is_absolute(p->ca_file));
                for (size_t j = 0; j < p->n_spark_properties; j++)
                        FUZZ_CHECK(is_absolute(p->spark_properties[j]));
                n_outputs += (p->token_file ? 1 : 0) + p->n_spark_properties;

                s = profile_config_scope(p);
                FUZZ_CHECK(s && strstr(s, "/.default openid profile offline_access"));
                free(s);
                s = profile_config_summary(p);
                FUZZ_CHECK(s && !strchr(s, '\n'));
                free(s);
        }

        /* No two writers of one file, and no profile writes what another one reads. */
        outputs = calloc(n_outputs + 1, sizeof *outputs);
        FUZZ_CHECK(outputs);
        for (size_t i = 0; i < c->n_profiles; i++) {
                const ProfileConfig *p = c->profiles[i];

                if (p->token_file)
                        outputs[k++] = p->token_file;
                for (size_t j = 0; j < p->n_spark_properties; j++)
                        outputs[k++] = p->spark_properties[j];
        }
        for (size_t i = 0; i < k; i++) {
                for (size_t j = i + 1; j < k; j++)
                        FUZZ_CHECK(strcmp(outputs[i], outputs[j]) != 0);
                for (size_t j = 0; j < c->n_profiles; j++) {
                        const ProfileConfig *p = c->profiles[j];

                        FUZZ_CHECK(!p->kubeconfig || strcmp(p->kubeconfig, outputs[i]) != 0);
                        FUZZ_CHECK(!p->ca_file || strcmp(p->ca_file, outputs[i]) != 0);
                }
        }
        free(outputs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* Both with and without a runtime directory (the socket default depends on it). */
        ConfigEnv env = {
                .home = "/home/u",
                .xdg_runtime_dir = size % 2 ? "/run/user/1000" : NULL,
                .lookup = lookup,
        };
        ConfigErrors errors = {};
        Config *c = NULL;
        unsigned line = 0;
        int r;

        r = config_parse(CONFIG_PATH, (const char *) data, size, &env, &c, &errors);
        if (r == 0) {
                FUZZ_CHECK(c);
                FUZZ_CHECK(errors.n == 0);
                check_config(c);
                config_free(c);
                return 0;
        }

        FUZZ_CHECK(r == -EINVAL);
        FUZZ_CHECK(!c);
        FUZZ_CHECK(errors.n >= 1 && errors.lines);
        for (size_t i = 0; i < errors.n; i++)
                line = check_problem(errors.lines[i], line);
        config_errors_clear(&errors);
        return 0;
}
