/* The names the configuration file uses (profile keys, auth kinds) and how a problem found in
 * it is recorded: what both the reader (config.c) and validation (config-build.c) need. Pure. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "shared/config-private.h"
#include "shared/config.h"

const char *const config_profile_keys[_PROFILE_KEY_MAX] = {
        [PROFILE_TENANT] = "tenant",
        [PROFILE_AUTHORITY_HOST] = "authority_host",
        [PROFILE_CLIENT_ID] = "client_id",
        [PROFILE_SERVER_ID] = "server_id",
        [PROFILE_REFRESH_BEFORE] = "refresh_before",
        [PROFILE_TOKEN_FILE] = "token_file",
        [PROFILE_SPARK_PROPERTIES] = "spark_properties",
        [PROFILE_KUBECONFIG] = "kubeconfig",
        [PROFILE_KUBECONFIG_CONTEXT] = "kubeconfig_context",
        [PROFILE_CA_FILE] = "ca_file",
        [PROFILE_KUBECONFIG_OUTPUT] = "kubeconfig_output",
        [PROFILE_KUBECONFIG_EXEC_API_VERSION] = "kubeconfig_exec_api_version",
        [PROFILE_AUTH] = "auth",
        [PROFILE_REDIRECT_PORT] = "redirect_port",
        [PROFILE_CLIENT_SECRET_FILE] = "client_secret_file",
        [PROFILE_CLIENT_CERTIFICATE] = "client_certificate",
        [PROFILE_CLIENT_CERTIFICATE_PASSWORD_FILE] = "client_certificate_password_file",
        [PROFILE_MANAGED_IDENTITY_CLIENT_ID] = "managed_identity_client_id",
        [PROFILE_MANAGED_IDENTITY_OBJECT_ID] = "managed_identity_object_id",
        [PROFILE_MANAGED_IDENTITY_RESOURCE_ID] = "managed_identity_resource_id",
        [PROFILE_IMDS_ENDPOINT] = "imds_endpoint",
        [PROFILE_FEDERATED_TOKEN_FILE] = "federated_token_file",
        [PROFILE_AZURE_CONFIG_DIR] = "azure_config_dir",
        [PROFILE_AZ_COMMAND] = "az_command",
};

static const char *const auth_kind_table[_AUTH_KIND_MAX] = {
        [AUTH_DEVICE_CODE] = "device_code",
        [AUTH_BROWSER] = "browser",
        [AUTH_CLIENT_SECRET] = "client_secret",
        [AUTH_CLIENT_CERTIFICATE] = "client_certificate",
        [AUTH_MANAGED_IDENTITY] = "managed_identity",
        [AUTH_WORKLOAD_IDENTITY] = "workload_identity",
        [AUTH_AZURECLI] = "azurecli",
};

const char *auth_kind_to_string(AuthKind k) {
        return k >= 0 && k < _AUTH_KIND_MAX ? auth_kind_table[k] : NULL;
}

AuthKind auth_kind_from_string(const char *s) {
        for (size_t i = 0; s && i < _AUTH_KIND_MAX; i++)
                if (strcmp(s, auth_kind_table[i]) == 0)
                        return (AuthKind) i;
        return _AUTH_KIND_INVALID;
}

static const char *const state_protection_table[_STATE_PROTECTION_MAX] = {
        [STATE_PROTECTION_AUTO] = "auto",
        [STATE_PROTECTION_SYSTEMD_CREDS] = "systemd-creds",
        [STATE_PROTECTION_KEYRING] = "keyring",
        [STATE_PROTECTION_NONE] = "none",
};

const char *state_protection_to_string(StateProtection p) {
        return p >= 0 && p < _STATE_PROTECTION_MAX ? state_protection_table[p] : NULL;
}

StateProtection state_protection_from_string(const char *s) {
        for (size_t i = 0; s && i < _STATE_PROTECTION_MAX; i++)
                if (strcmp(s, state_protection_table[i]) == 0)
                        return (StateProtection) i;
        return _STATE_PROTECTION_INVALID;
}

bool auth_kind_is_unattended(AuthKind k) {
        return k == AUTH_CLIENT_SECRET || k == AUTH_CLIENT_CERTIFICATE || k == AUTH_MANAGED_IDENTITY ||
               k == AUTH_WORKLOAD_IDENTITY || k == AUTH_AZURECLI;
}

void config_problem(Parser *p, unsigned line, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        Problem *t;
        va_list ap;
        char *text;
        int r;

        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                p->oom = true;
                return;
        }
        /* Values come from the file: keep terminal control bytes out of the log. */
        for (char *c = msg; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == 0x7f)
                        *c = '?';
        if (asprintf(&text, "%s:%u: %s", p->path, line, msg) < 0) {
                p->oom = true;
                return;
        }
        t = realloc(p->problems, (p->n_problems + 1) * sizeof *t);
        if (!t) {
                free(text);
                p->oom = true;
                return;
        }
        p->problems = t;
        p->problems[p->n_problems] = (Problem) { .line = line, .seq = p->n_problems, .text = text };
        p->n_problems++;
}
