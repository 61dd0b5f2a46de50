/* Validation: the settings collected from the file, checked key by key and profile by profile,
 * become a Config (each problem recorded with its file:line). Pure, like config.c. */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <syslog.h>

#include "base/log.h"
#include "base/macro.h"
#include "shared/config-env.h"
#include "shared/config-outputs.h"
#include "shared/config-private.h"
#include "shared/config-values.h"
#include "shared/config.h"
#include "shared/kubeconfig.h"

/* The auth kind an identity key belongs to, or -1 for a key of every kind. */
static int profile_key_auth(ProfileKey k) {
        switch (k) {
        case PROFILE_REDIRECT_PORT:
                return AUTH_BROWSER;
        case PROFILE_CLIENT_SECRET_FILE:
                return AUTH_CLIENT_SECRET;
        case PROFILE_CLIENT_CERTIFICATE:
        case PROFILE_CLIENT_CERTIFICATE_PASSWORD_FILE:
                return AUTH_CLIENT_CERTIFICATE;
        case PROFILE_MANAGED_IDENTITY_CLIENT_ID:
        case PROFILE_MANAGED_IDENTITY_OBJECT_ID:
        case PROFILE_MANAGED_IDENTITY_RESOURCE_ID:
        case PROFILE_IMDS_ENDPOINT:
                return AUTH_MANAGED_IDENTITY;
        case PROFILE_FEDERATED_TOKEN_FILE:
                return AUTH_WORKLOAD_IDENTITY;
        case PROFILE_AZURE_CONFIG_DIR:
        case PROFILE_AZ_COMMAND:
                return AUTH_AZURECLI;
        default:
                return -1;
        }
}

/* Collapse "//" and "/./" and a trailing "/" so that one file compares equal to itself. ".."
 * stays: resolving it by text would be wrong across a symlink. */
static bool value_is_quoted(const char *v) {
        size_t n = strlen(v);
        return n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0];
}

/* Expand ~ and ${VAR} and insist on an absolute path. An empty value gives NULL when allowed. */
static int setting_path(Parser *p, const Setting *s, const char *key, bool empty_ok, char **ret) {
        _cleanup_free_ char *x = NULL;
        char var[256];
        int r;

        if (!*s->value) {
                if (empty_ok) {
                        *ret = NULL;
                        return 0;
                }
                config_problem(p, s->line, "%s is empty: give a path or remove the line", key);
                return -EINVAL;
        }
        if (value_is_quoted(s->value)) {
                config_problem(p, s->line, "%s: values are not quoted, remove the quotes from %s", key, s->value);
                return -EINVAL;
        }

        r = path_expand(s->value, p->env->home, config_env_lookup, (void *) p->env, &x);
        if (r == -ENOMEM) {
                p->oom = true;
                return r;
        }
        if (r == -ENXIO) {
                const char *name = config_env_first_unset(p->env, s->value, var, sizeof var);
                if (name)
                        config_problem(p, s->line,
                                       "%s: ${%s} is not set in the daemon's environment: set it or write the path out",
                                       key, name);
                else
                        config_problem(p, s->line, "%s: '~' needs a home directory, and none is known", key);
                return r;
        }
        if (r < 0) {
                config_problem(p, s->line, "%s: malformed variable in '%s': write ${NAME} with letters, digits and '_'",
                               key, s->value);
                return r;
        }
        if (x[0] != '/') {
                if (strcmp(x, s->value) == 0)
                        config_problem(p, s->line, "%s '%s' is not an absolute path: start it with '/', '~/' or ${VAR}",
                                       key, s->value);
                else
                        config_problem(p, s->line, "%s '%s' expands to '%s', which is not an absolute path", key,
                                       s->value, x);
                return -EINVAL;
        }
        config_path_simplify(x);
        *ret = TAKE_PTR(x);
        return 0;
}

static int setting_duration(Parser *p, const Setting *s, const char *key, usec_t *ret) {
        int r = parse_duration(s->value, ret);

        if (r == -ERANGE)
                config_problem(p, s->line, "%s '%s' is too long: at most a year", key, s->value);
        else if (r < 0)
                config_problem(p, s->line, "%s '%s' is not a duration: write e.g. 90, 90s, 10m or 1h%s", key, s->value,
                               strstr(s->value, " #") ? " (inline comments start with ';', not '#')" : "");
        return r;
}

static int setting_authority_host(Parser *p, const Setting *s, char **ret) {
        _cleanup_free_ char *v = strdup(s->value);
        const char *a, *slash;
        size_t n, alen;
        bool https;

        if (!v) {
                p->oom = true;
                return -ENOMEM;
        }
        n = strlen(v);
        while (n > 0 && v[n - 1] == '/')
                v[--n] = 0;

        https = strncasecmp(v, "https://", 8) == 0;
        if (!https && strncasecmp(v, "http://", 7) != 0) {
                config_problem(p, s->line, "authority_host '%s' is not a URL: write e.g. %s", s->value,
                               AKS_DEFAULT_AUTHORITY_HOST);
                return -EINVAL;
        }
        a = v + (https ? 8 : 7);
        slash = strchr(a, '/');
        alen = slash ? (size_t) (slash - a) : strlen(a);
        for (const char *c = v; *c; c++)
                if ((unsigned char) *c <= 0x20 || (unsigned char) *c >= 0x7f || strchr("?#@\\\"<>", *c)) {
                        config_problem(p, s->line,
                                       "authority_host '%s' must be a plain https://host[/path], without '%c'",
                                       s->value, *c);
                        return -EINVAL;
                }
        if (!config_authority_is_valid(a, alen)) {
                config_problem(p, s->line, "authority_host '%s' has no valid host name", s->value);
                return -EINVAL;
        }
        if (!https && !config_authority_is_loopback(a, alen)) {
                config_problem(
                        p, s->line,
                        "authority_host '%s' must use https:// (plain http:// is only for 127.0.0.1, localhost and [::1])",
                        s->value);
                return -EINVAL;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

int config_strdup_to(Parser *p, const char *s, char **ret) {
        char *d = strdup(s);
        if (!d) {
                p->oom = true;
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

void config_build_daemon(Parser *p, Config *c) {
        const Setting *s;
        int r;

        s = &p->daemon[DAEMON_SOCKET];
        if (s->value) {
                if (setting_path(p, s, "socket", false, &c->socket_path) >= 0 &&
                    strlen(c->socket_path) > SOCKET_PATH_MAX)
                        config_problem(p, s->line,
                                       "socket path '%s' is %zu bytes, longer than a Unix socket address allows (%zu)",
                                       c->socket_path, strlen(c->socket_path), SOCKET_PATH_MAX);
        } else if (config_default_socket_path(p->env, &c->socket_path) < 0)
                p->oom = true;

        s = &p->daemon[DAEMON_STATE_DIR];
        if (s->value)
                (void) setting_path(p, s, "state_dir", false, &c->state_dir);
        else if (config_default_state_dir(p->env, &c->state_dir) < 0)
                p->oom = true;

        s = &p->daemon[DAEMON_LOG_LEVEL];
        c->log_level = LOG_INFO;
        if (s->value) {
                r = log_level_from_string(s->value);
                if (r < 0)
                        config_problem(p, s->line, "log_level '%s' is not one of error, warning, info, debug%s",
                                       s->value,
                                       strstr(s->value, " #") ? " (inline comments start with ';', not '#')" : "");
                else
                        c->log_level = r;
        }

        s = &p->daemon[DAEMON_NOTIFY_COMMAND];
        if (s->value && *s->value)
                (void) config_strdup_to(p, s->value, &c->notify_command);

        s = &p->daemon[DAEMON_HTTP_TIMEOUT];
        c->http_timeout = AKS_DEFAULT_HTTP_TIMEOUT;
        if (s->value && setting_duration(p, s, "http_timeout", &c->http_timeout) >= 0 && c->http_timeout < USEC_PER_SEC)
                config_problem(p, s->line, "http_timeout '%s' is too short: give at least 1s", s->value);

        s = &p->daemon[DAEMON_METRICS_FILE];
        if (s->value)
                (void) setting_path(p, s, "metrics_file", true, &c->metrics_file);

        s = &p->daemon[DAEMON_STATE_PROTECTION];
        c->state_protection = STATE_PROTECTION_AUTO;
        if (s->value) {
                StateProtection sp = state_protection_from_string(s->value);
                if (sp < 0)
                        config_problem(p, s->line,
                                       "state_protection '%s' is not one of auto, systemd-creds, keyring, none",
                                       s->value);
                else
                        c->state_protection = sp;
        }
}

ProfileConfig *config_profile_free(ProfileConfig *pc) {
        if (!pc)
                return NULL;
        free(pc->name);
        free(pc->tenant);
        free(pc->authority_host);
        free(pc->client_id);
        free(pc->server_id);
        free(pc->token_file);
        for (size_t i = 0; i < pc->n_spark_properties; i++)
                free(pc->spark_properties[i]);
        free(pc->spark_properties);
        free(pc->kubeconfig);
        free(pc->kubeconfig_context);
        free(pc->kubeconfig_output);
        free(pc->ca_file);
        free(pc->client_secret_file);
        free(pc->client_certificate);
        free(pc->client_certificate_password_file);
        free(pc->managed_identity_client_id);
        free(pc->managed_identity_object_id);
        free(pc->managed_identity_resource_id);
        free(pc->msi_endpoint);
        secret_free(pc->identity_header);
        free(pc->arc_key_dir);
        free(pc->federated_token_file);
        free(pc->azure_config_dir);
        free(pc->az_command);
        free(pc);
        return NULL;
}

/* kubeconfig_output takes its cluster from kubeconfig, and names the exec API version. */
static void build_kubeconfig_output(Parser *p, const RawProfile *rp, ProfileConfig *pc) {
        const Setting *out = &rp->settings[PROFILE_KUBECONFIG_OUTPUT];
        const Setting *v = &rp->settings[PROFILE_KUBECONFIG_EXEC_API_VERSION];

        pc->kubeconfig_exec_api_version = KUBECONFIG_EXEC_V1;
        if (v->value) {
                if (streq_ptr(v->value, KUBECONFIG_EXEC_V1) || streq_ptr(v->value, KUBECONFIG_EXEC_V1BETA1))
                        pc->kubeconfig_exec_api_version = streq_ptr(v->value, KUBECONFIG_EXEC_V1)
                                                                  ? KUBECONFIG_EXEC_V1
                                                                  : KUBECONFIG_EXEC_V1BETA1;
                else
                        config_problem(
                                p, v->line,
                                "kubeconfig_exec_api_version '%s' is not %s or %s (Spark 3.4 and older need v1beta1)",
                                v->value, KUBECONFIG_EXEC_V1, KUBECONFIG_EXEC_V1BETA1);
                if (!out->value)
                        config_problem(
                                p, v->line,
                                "kubeconfig_exec_api_version applies to kubeconfig_output, which profile '%s' does not set",
                                rp->name);
        }
        if (!out->value)
                return;
        (void) setting_path(p, out, "kubeconfig_output", false, &pc->kubeconfig_output);
        if (!rp->settings[PROFILE_KUBECONFIG].value || !*rp->settings[PROFILE_KUBECONFIG].value)
                config_problem(
                        p, out->line,
                        "kubeconfig_output needs kubeconfig = <the kubeconfig to take the cluster from>, e.g. ~/.kube/config");
}

/* http://host[:port] with nothing after it, host the link-local IMDS address or this machine:
 * a token service anywhere else would be handed the request of a credential. */
static bool local_endpoint_is_valid(const char *v, bool imds_ok, bool path_ok) {
        const char *a, *slash;
        size_t alen;

        if (strncasecmp(v, "http://", 7) != 0)
                return false;
        a = v + 7;
        slash = strchr(a, '/');
        alen = slash ? (size_t) (slash - a) : strlen(a);
        if (slash && !path_ok && slash[1] != 0)
                return false;
        for (const char *c = v; *c; c++)
                if ((unsigned char) *c <= 0x20 || (unsigned char) *c >= 0x7f || strchr("#@\\\"<>", *c))
                        return false;
        if (!config_authority_is_valid(a, alen))
                return false;
        if (config_authority_is_loopback(a, alen))
                return true;
        return imds_ok && strncmp(a, "169.254.169.254", 15) == 0 && (alen == 15 || a[15] == ':');
}

/* The keys of `auth` and what it implies: runs after the common keys are built. */
static void build_identity(Parser *p, const RawProfile *rp, ProfileConfig *pc) {
        const ConfigEnv *env = p->env;
        const Setting *s;
        const char *v;

        for (size_t k = 0; k < _PROFILE_KEY_MAX; k++)
                if (rp->settings[k].value && profile_key_auth(k) >= 0 && profile_key_auth(k) != (int) pc->auth)
                        config_problem(p, rp->settings[k].line, "%s is only for auth = %s (this profile has auth = %s)",
                                       config_profile_keys[k], auth_kind_to_string(profile_key_auth(k)),
                                       auth_kind_to_string(pc->auth));

        switch (pc->auth) {
        case AUTH_DEVICE_CODE:
                break;
        case AUTH_BROWSER:
                s = &rp->settings[PROFILE_REDIRECT_PORT];
                if (s->value) {
                        char *end;
                        unsigned long port;

                        errno = 0;
                        port = strtoul(s->value, &end, 10);
                        if (errno || end == s->value || *end || s->value[0] == '-' || port < 1 || port > 65535)
                                config_problem(p, s->line, "redirect_port '%s' is not a port number (1-65535)",
                                               s->value);
                        else
                                pc->redirect_port = (unsigned) port;
                }
                break;
        case AUTH_CLIENT_SECRET:
                s = &rp->settings[PROFILE_CLIENT_SECRET_FILE];
                if (!s->value)
                        config_problem(
                                p, rp->line,
                                "profile '%s' has auth = client_secret but no client_secret_file: put the secret in a file of its own (mode 0600) and name it",
                                rp->name);
                else
                        (void) setting_path(p, s, "client_secret_file", false, &pc->client_secret_file);
                break;
        case AUTH_CLIENT_CERTIFICATE:
                s = &rp->settings[PROFILE_CLIENT_CERTIFICATE];
                if (!s->value)
                        config_problem(
                                p, rp->line,
                                "profile '%s' has auth = client_certificate but no client_certificate: name a PEM file with the certificate and its private key",
                                rp->name);
                else
                        (void) setting_path(p, s, "client_certificate", false, &pc->client_certificate);
                s = &rp->settings[PROFILE_CLIENT_CERTIFICATE_PASSWORD_FILE];
                if (s->value)
                        (void) setting_path(p, s, "client_certificate_password_file", false,
                                            &pc->client_certificate_password_file);
                break;
        case AUTH_MANAGED_IDENTITY: {
                const Setting *ids[] = {
                        &rp->settings[PROFILE_MANAGED_IDENTITY_CLIENT_ID],
                        &rp->settings[PROFILE_MANAGED_IDENTITY_OBJECT_ID],
                        &rp->settings[PROFILE_MANAGED_IDENTITY_RESOURCE_ID],
                };
                size_t given = 0;

                for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                        given += !!ids[i]->value;
                if (given > 1)
                        config_problem(
                                p, rp->line,
                                "profile '%s' names its managed identity more than once: give one of managed_identity_client_id, managed_identity_object_id, managed_identity_resource_id",
                                rp->name);
                s = ids[0];
                if (s->value && !config_is_guid(s->value))
                        config_problem(p, s->line, "managed_identity_client_id '%s' is not a client ID (a GUID)",
                                       s->value);
                else if (s->value)
                        (void) config_strdup_to(p, s->value, &pc->managed_identity_client_id);
                s = ids[1];
                if (s->value && !config_is_guid(s->value))
                        config_problem(p, s->line, "managed_identity_object_id '%s' is not an object ID (a GUID)",
                                       s->value);
                else if (s->value)
                        (void) config_strdup_to(p, s->value, &pc->managed_identity_object_id);
                s = ids[2];
                if (s->value && (!string_has_prefix(s->value, "/subscriptions/") || !config_is_visible_ascii(s->value)))
                        config_problem(
                                p, s->line,
                                "managed_identity_resource_id '%s' is not an Azure resource ID (/subscriptions/.../userAssignedIdentities/NAME)",
                                s->value);
                else if (s->value)
                        (void) config_strdup_to(p, s->value, &pc->managed_identity_resource_id);
                s = &rp->settings[PROFILE_CLIENT_ID];
                if (s->value)
                        config_problem(p, s->line,
                                       "client_id does not choose a managed identity: use managed_identity_client_id");

                /* Which token service: the key, else what the host's environment says (as
                 * MSAL decides), else the VM's IMDS. */
                s = &rp->settings[PROFILE_IMDS_ENDPOINT];
                if (s->value) {
                        size_t n = strlen(s->value);
                        if (!local_endpoint_is_valid(s->value, true, false))
                                config_problem(
                                        p, s->line,
                                        "imds_endpoint '%s' must be http://169.254.169.254 or an http:// address on this machine (127.0.0.1, localhost, [::1])",
                                        s->value);
                        else if (config_strdup_to(p, s->value, &pc->msi_endpoint) >= 0)
                                while (n > 0 && pc->msi_endpoint[n - 1] == '/')
                                        pc->msi_endpoint[--n] = 0;
                        pc->msi_kind = MSI_IMDS;
                } else if (env->identity_endpoint && (env->identity_header || env->imds_endpoint)) {
                        pc->msi_kind = env->identity_header ? MSI_APP_SERVICE : MSI_ARC;
                        if (!local_endpoint_is_valid(env->identity_endpoint, false, true))
                                config_problem(p, rp->line,
                                               "IDENTITY_ENDPOINT '%s' must be an http:// address on this machine",
                                               env->identity_endpoint);
                        else
                                (void) config_strdup_to(p, env->identity_endpoint, &pc->msi_endpoint);
                        if (env->identity_header) {
                                pc->identity_header = secret_new_string(env->identity_header);
                                if (!pc->identity_header)
                                        p->oom = true;
                        }
                        if (pc->msi_kind == MSI_ARC)
                                (void) config_strdup_to(p, env->arc_key_dir ?: AKS_ARC_KEY_DIR, &pc->arc_key_dir);
                        if (pc->msi_kind == MSI_ARC &&
                            (pc->managed_identity_client_id || pc->managed_identity_object_id ||
                             pc->managed_identity_resource_id))
                                config_problem(
                                        p, rp->line,
                                        "Azure Arc has a system-assigned identity only: remove the managed_identity_* key");
                } else {
                        pc->msi_kind = MSI_IMDS;
                        (void) config_strdup_to(p, AKS_DEFAULT_IMDS_ENDPOINT, &pc->msi_endpoint);
                }
                break;
        }
        case AUTH_WORKLOAD_IDENTITY:
                s = &rp->settings[PROFILE_FEDERATED_TOKEN_FILE];
                if (s->value)
                        (void) setting_path(p, s, "federated_token_file", false, &pc->federated_token_file);
                else if (env->azure_federated_token_file) {
                        const Setting d = { .value = (char *) env->azure_federated_token_file, .line = rp->line };
                        (void) setting_path(p, &d, "AZURE_FEDERATED_TOKEN_FILE", false, &pc->federated_token_file);
                }
                break;
        case AUTH_AZURECLI:
                s = &rp->settings[PROFILE_AZURE_CONFIG_DIR];
                if (s->value)
                        (void) setting_path(p, s, "azure_config_dir", false, &pc->azure_config_dir);
                else if (env->azure_config_dir) {
                        const Setting d = { .value = (char *) env->azure_config_dir, .line = rp->line };
                        (void) setting_path(p, &d, "AZURE_CONFIG_DIR", false, &pc->azure_config_dir);
                }
                s = &rp->settings[PROFILE_AZ_COMMAND];
                if (s->value && (!*s->value || !config_is_visible_ascii(s->value)))
                        config_problem(p, s->line, "az_command '%s' is not a program name or path", s->value);
                else if (s->value && strchr(s->value, '/'))
                        (void) setting_path(p, s, "az_command", false, &pc->az_command);
                else
                        (void) config_strdup_to(p, s->value ?: "az", &pc->az_command);
                s = &rp->settings[PROFILE_CLIENT_ID];
                if (s->value)
                        config_problem(p, s->line, "client_id does not apply to auth = azurecli: az uses its own");
                break;
        default:
                break;
        }

        /* client_id: the app itself for a service principal; never the AKS public client. */
        if (auth_kind_is_unattended(pc->auth) && pc->auth != AUTH_MANAGED_IDENTITY && pc->auth != AUTH_AZURECLI &&
            !rp->settings[PROFILE_CLIENT_ID].value) {
                v = pc->auth == AUTH_WORKLOAD_IDENTITY ? env->azure_client_id : NULL;
                free(pc->client_id);
                pc->client_id = NULL;
                if (v && config_is_guid(v))
                        (void) config_strdup_to(p, v, &pc->client_id);
                else if (v)
                        config_problem(p, rp->line, "AZURE_CLIENT_ID '%s' is not an application ID (a GUID)", v);
                else if (pc->auth != AUTH_WORKLOAD_IDENTITY) /* workload: the pod's variable, at run time */
                        config_problem(
                                p, rp->line,
                                "profile '%s' has auth = %s but no client_id: give the application (client) ID of the service principal",
                                rp->name, auth_kind_to_string(pc->auth));
        }
}

ProfileConfig *config_build_profile(Parser *p, const RawProfile *rp, bool default_token_file) {
        ProfileConfig *pc;
        const Setting *s;

        pc = calloc(1, sizeof *pc);
        if (!pc) {
                p->oom = true;
                return NULL;
        }
        pc->line = rp->line;
        (void) config_strdup_to(p, rp->name, &pc->name);

        s = &rp->settings[PROFILE_AUTH];
        pc->auth = AUTH_DEVICE_CODE;
        if (s->value) {
                AuthKind k = auth_kind_from_string(s->value);
                if (k < 0)
                        config_problem(
                                p, s->line,
                                "auth '%s' is not one of device_code, browser, client_secret, client_certificate, managed_identity, workload_identity, azurecli",
                                s->value);
                else
                        pc->auth = k;
        }

        s = &rp->settings[PROFILE_TENANT];
        if (!s->value && pc->auth == AUTH_WORKLOAD_IDENTITY && p->env->azure_tenant_id) {
                if (!config_tenant_is_valid(p->env->azure_tenant_id))
                        config_problem(p, rp->line, "AZURE_TENANT_ID '%s' is not a tenant ID (GUID) or domain",
                                       p->env->azure_tenant_id);
                else
                        (void) config_strdup_to(p, p->env->azure_tenant_id, &pc->tenant);
        } else if (!s->value && pc->auth == AUTH_MANAGED_IDENTITY)
                /* The host's identity belongs to its tenant: nothing to name, nothing sent. */
                (void) config_strdup_to(p, "(managed identity)", &pc->tenant);
        else if (!s->value && pc->auth == AUTH_AZURECLI)
                /* az's own sign-in names the tenant; --tenant only when one is written. */
                ;
        else if (!s->value && pc->auth == AUTH_WORKLOAD_IDENTITY)
                /* In the pod the webhook sets AZURE_TENANT_ID; a configuration written elsewhere
                 * (init) is still valid, and the profile says what is missing when it runs. */
                ;
        else if (!s->value)
                config_problem(p, rp->line,
                               "profile '%s' has no tenant: add tenant = <tenant ID, domain or organizations>",
                               rp->name);
        else if (!config_tenant_is_valid(s->value))
                config_problem(
                        p, s->line,
                        "tenant '%s' is not a tenant ID (GUID), a domain such as contoso.onmicrosoft.com, or organizations",
                        s->value);
        else
                (void) config_strdup_to(p, s->value, &pc->tenant);

        s = &rp->settings[PROFILE_AUTHORITY_HOST];
        if (s->value)
                (void) setting_authority_host(p, s, &pc->authority_host);
        else if (pc->auth == AUTH_WORKLOAD_IDENTITY && p->env->azure_authority_host) {
                const Setting d = { .value = (char *) p->env->azure_authority_host, .line = rp->line };
                (void) setting_authority_host(p, &d, &pc->authority_host);
        } else
                (void) config_strdup_to(p, AKS_DEFAULT_AUTHORITY_HOST, &pc->authority_host);

        s = &rp->settings[PROFILE_CLIENT_ID];
        if (!s->value)
                (void) config_strdup_to(p, AKS_DEFAULT_CLIENT_ID, &pc->client_id);
        else if (!config_is_guid(s->value))
                config_problem(p, s->line, "client_id '%s' is not an application ID (a GUID such as %s)", s->value,
                               AKS_DEFAULT_CLIENT_ID);
        else
                (void) config_strdup_to(p, s->value, &pc->client_id);

        s = &rp->settings[PROFILE_SERVER_ID];
        if (!s->value)
                (void) config_strdup_to(p, AKS_DEFAULT_SERVER_ID, &pc->server_id);
        else if (!config_is_visible_ascii(s->value))
                config_problem(p, s->line,
                               "server_id '%s' must be an application ID or URI without spaces (the AKS server is %s)",
                               s->value, AKS_DEFAULT_SERVER_ID);
        else
                (void) config_strdup_to(p, s->value, &pc->server_id);

        s = &rp->settings[PROFILE_REFRESH_BEFORE];
        pc->refresh_before = AKS_DEFAULT_REFRESH_BEFORE;
        if (s->value)
                (void) setting_duration(p, s, "refresh_before", &pc->refresh_before);

        s = &rp->settings[PROFILE_TOKEN_FILE];
        if (s->value)
                (void) setting_path(p, s, "token_file", true, &pc->token_file);
        else if (default_token_file) {
                const Setting d = { .value = (char *) AKS_DEFAULT_TOKEN_FILE, .line = rp->line };
                (void) setting_path(p, &d, "token_file", false, &pc->token_file);
        }

        if (rp->n_spark_properties > 0) {
                pc->spark_properties = calloc(rp->n_spark_properties, sizeof(char *));
                if (!pc->spark_properties)
                        p->oom = true;
                else {
                        /* A path that did not expand stays NULL: the config is refused then anyway,
                         * and the slots keep matching their lines. */
                        pc->n_spark_properties = rp->n_spark_properties;
                        for (size_t i = 0; i < rp->n_spark_properties; i++)
                                (void) setting_path(p, &rp->spark_properties[i], "spark_properties", false,
                                                    &pc->spark_properties[i]);
                }
        }

        s = &rp->settings[PROFILE_KUBECONFIG];
        if (s->value)
                (void) setting_path(p, s, "kubeconfig", true, &pc->kubeconfig);

        /* Which context of that file the profile means: a kubeconfig lists several clusters,
         * and `aksspark-tokenctl init` writes one profile per context. */
        s = &rp->settings[PROFILE_KUBECONFIG_CONTEXT];
        if (s->value && *s->value) {
                if (!rp->settings[PROFILE_KUBECONFIG].value)
                        config_problem(p, s->line,
                                       "kubeconfig_context '%s' needs kubeconfig = <the file that lists it>", s->value);
                else
                        (void) config_strdup_to(p, s->value, &pc->kubeconfig_context);
        }

        s = &rp->settings[PROFILE_CA_FILE];
        if (s->value)
                (void) setting_path(p, s, "ca_file", true, &pc->ca_file);

        build_kubeconfig_output(p, rp, pc);
        build_identity(p, rp, pc);
        return pc;
}

static void on_output_problem(unsigned line, const char *message, void *userdata) {
        config_problem(userdata, line, "%s", message);
}

/* The files every profile writes, with the lines that name them; config-outputs.c checks them. */
void config_build_check_outputs(Parser *p, Config *c) {
        _cleanup_free_ ConfigOutput *outs = NULL;
        size_t n = 0, max = 1;

        for (size_t i = 0; i < c->n_profiles; i++)
                max += 2 + c->profiles[i]->n_spark_properties;
        outs = calloc(max, sizeof *outs);
        if (!outs) {
                p->oom = true;
                return;
        }

        for (size_t i = 0; i < c->n_profiles; i++) {
                const ProfileConfig *pc = c->profiles[i];
                const RawProfile *rp = p->profiles[i];
                const Setting *tf = &rp->settings[PROFILE_TOKEN_FILE];

                if (pc->token_file)
                        outs[n++] = (ConfigOutput) {
                                .path = pc->token_file,
                                .profile = pc->name,
                                .key = tf->value ? "token_file" : "default token_file",
                                .line = tf->value ? tf->line : rp->line,
                        };
                for (size_t j = 0; j < pc->n_spark_properties; j++)
                        if (pc->spark_properties[j])
                                outs[n++] = (ConfigOutput) {
                                        .path = pc->spark_properties[j],
                                        .profile = pc->name,
                                        .key = "spark_properties",
                                        .line = rp->spark_properties[j].line,
                                };
                if (pc->kubeconfig_output)
                        outs[n++] = (ConfigOutput) {
                                .path = pc->kubeconfig_output,
                                .profile = pc->name,
                                .key = "kubeconfig_output",
                                .line = rp->settings[PROFILE_KUBECONFIG_OUTPUT].line,
                        };
        }

        if (config_check_outputs(outs, n, c, on_output_problem, p) < 0)
                p->oom = true;

        /* The metrics would overwrite a token, or a token the metrics. */
        for (size_t j = 0; c->metrics_file && j < n; j++)
                if (streq_ptr(c->metrics_file, outs[j].path)) {
                        config_problem(
                                p, p->daemon[DAEMON_METRICS_FILE].line,
                                "metrics_file %s is also profile '%s' %s (line %u): give the metrics a file of their own",
                                c->metrics_file, outs[j].profile, outs[j].key, outs[j].line);
                        break;
                }
        for (size_t i = 0; c->metrics_file && i < c->n_profiles; i++)
                if (streq_ptr(c->metrics_file, c->profiles[i]->kubeconfig) ||
                    streq_ptr(c->metrics_file, c->profiles[i]->ca_file)) {
                        config_problem(p, p->daemon[DAEMON_METRICS_FILE].line,
                                       "metrics_file %s is also the %s of profile '%s': it would be overwritten",
                                       c->metrics_file,
                                       streq_ptr(c->metrics_file, c->profiles[i]->kubeconfig) ? "kubeconfig"
                                                                                              : "ca_file",
                                       c->profiles[i]->name);
                        break;
                }
}
