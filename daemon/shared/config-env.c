/* Where the configuration comes from: this process's environment (read once, at start) and the
 * default paths it implies. Reading the file is config-load.c's; config.c stays pure: it gets a
 * ConfigEnv. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "shared/config-env.h"

/* The first component of a systemd *_DIRECTORY variable (several are ':'-separated), if absolute. */
static int systemd_directory(const char *v, char **ret) {
        size_t n;

        if (!v || v[0] != '/') {
                *ret = NULL;
                return 0;
        }
        n = strcspn(v, ":");
        *ret = strndup(v, n);
        return *ret ? 0 : -ENOMEM;
}

static bool xdg_dir_usable(const char *v) {
        return v && v[0] == '/'; /* the XDG spec: relative values are to be ignored */
}

int config_default_socket_path(const ConfigEnv *env, char **ret) {
        _cleanup_free_ char *rd = NULL;
        int r;

        if (xdg_dir_usable(env->xdg_runtime_dir))
                return asprintf(ret, "%s/aksspark-tokend.sock", env->xdg_runtime_dir) < 0 ? -ENOMEM : 0;
        r = systemd_directory(env->runtime_directory, &rd);
        if (r < 0)
                return r;
        if (rd)
                return asprintf(ret, "%s/aksspark-tokend.sock", rd) < 0 ? -ENOMEM : 0;
        *ret = NULL;
        return 0;
}

int config_default_state_dir(const ConfigEnv *env, char **ret) {
        _cleanup_free_ char *sd = NULL;
        int r;

        r = systemd_directory(env->state_directory, &sd);
        if (r < 0)
                return r;
        if (sd) {
                *ret = TAKE_PTR(sd);
                return 0;
        }
        if (xdg_dir_usable(env->xdg_state_home))
                return asprintf(ret, "%s/aksspark-tokend", env->xdg_state_home) < 0 ? -ENOMEM : 0;
        return asprintf(ret, "%s/.local/state/aksspark-tokend", env->home) < 0 ? -ENOMEM : 0;
}

int config_default_path(const ConfigEnv *env, char **ret) {
        _cleanup_free_ char *cd = NULL;
        char *s;
        int r;

        r = systemd_directory(env->configuration_directory, &cd);
        if (r < 0)
                return r;
        if (cd)
                r = asprintf(&s, "%s/config.ini", cd);
        else if (xdg_dir_usable(env->xdg_config_home))
                r = asprintf(&s, "%s/aksspark-tokend/config.ini", env->xdg_config_home);
        else if (env->home && env->home[0] == '/')
                r = asprintf(&s, "%s/.config/aksspark-tokend/config.ini", env->home);
        else
                return -ENXIO;
        if (r < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static const char *process_lookup(const char *name, void *userdata) {
        return getenv(name);
}

static const char *getenv_nonempty(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

/* A test aid (aksspark-tokend(8), ENVIRONMENT): the tests' tokens live seconds. */
static usec_t refresh_floor_from_env(void) {
        const char *e = getenv_nonempty("AKSSPARK_TEST_REFRESH_FLOOR_SEC");
        unsigned long v;
        char *end;

        if (!e || e[0] < '0' || e[0] > '9')
                return CONFIG_REFRESH_FLOOR;
        errno = 0;
        v = strtoul(e, &end, 10);
        if (errno != 0 || *end || v > 3600)
                return CONFIG_REFRESH_FLOOR;
        return (usec_t) v * USEC_PER_SEC;
}

int config_env_from_process(ConfigEnv *env, char **ret_home_owner) {
        _cleanup_free_ char *home = NULL;
        int r;

        r = get_home_dir(&home);
        if (r < 0)
                return r;
        *env = (ConfigEnv) {
                .home = home,
                .xdg_config_home = getenv_nonempty("XDG_CONFIG_HOME"),
                .xdg_runtime_dir = getenv_nonempty("XDG_RUNTIME_DIR"),
                .xdg_state_home = getenv_nonempty("XDG_STATE_HOME"),
                .configuration_directory = getenv_nonempty("CONFIGURATION_DIRECTORY"),
                .state_directory = getenv_nonempty("STATE_DIRECTORY"),
                .runtime_directory = getenv_nonempty("RUNTIME_DIRECTORY"),
                /* The jump-host template sets it: the operator's collector decides where, not the person. */
                .metrics_file = getenv_nonempty("AKSSPARK_TOKEND_METRICS_FILE"),
                .azure_federated_token_file = getenv_nonempty("AZURE_FEDERATED_TOKEN_FILE"),
                .azure_client_id = getenv_nonempty("AZURE_CLIENT_ID"),
                .azure_tenant_id = getenv_nonempty("AZURE_TENANT_ID"),
                .azure_authority_host = getenv_nonempty("AZURE_AUTHORITY_HOST"),
                .identity_endpoint = getenv_nonempty("IDENTITY_ENDPOINT"),
                .identity_header = getenv_nonempty("IDENTITY_HEADER"),
                .imds_endpoint = getenv_nonempty("IMDS_ENDPOINT"),
                /* Only the tests move Arc's key directory (they cannot write /var/opt). */
                .arc_key_dir = getenv_nonempty("AKSSPARK_TEST_ARC_KEY_DIR"),
                .azure_config_dir = getenv_nonempty("AZURE_CONFIG_DIR"),
                .refresh_floor = refresh_floor_from_env(),
                .lookup = process_lookup,
        };
        *ret_home_owner = TAKE_PTR(home);
        return 0;
}

const char *config_env_lookup(const char *name, void *userdata) {
        const ConfigEnv *env = userdata;
        const char *v = env->lookup ? env->lookup(name, env->userdata) : NULL;

        /* ${HOME} means the same home as "~", also where the environment lacks it. */
        if (!v && strcmp(name, "HOME") == 0)
                v = env->home;
        return v;
}

const char *config_env_first_unset(const ConfigEnv *env, const char *s, char *buf, size_t size) {
        for (const char *d = strstr(s, "${"); d; d = strstr(d + 2, "${")) {
                const char *e = strchr(d + 2, '}');
                size_t n;

                if (!e)
                        break;
                n = (size_t) (e - d - 2);
                if (n == 0 || n >= size)
                        continue;
                memcpy(buf, d + 2, n);
                buf[n] = 0;
                if (!config_env_lookup(buf, (void *) env))
                        return buf;
        }
        return NULL;
}
