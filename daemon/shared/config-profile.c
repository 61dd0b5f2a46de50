/* Questions over a parsed configuration: which profile a request means, whose identity a profile
 * names, its scope and its --check-config line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "shared/config.h"

const ProfileConfig *config_find_profile(const Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_profiles; i++)
                if (strcmp(c->profiles[i]->name, name) == 0)
                        return c->profiles[i];
        return NULL;
}

const ProfileConfig *config_default_profile(const Config *c) {
        const ProfileConfig *pc = config_find_profile(c, "default");

        if (pc)
                return pc;
        return c && c->n_profiles == 1 ? c->profiles[0] : NULL;
}

ProfileIdentity profile_config_identity(const ProfileConfig *p) {
        return (ProfileIdentity) {
                .tenant = p->tenant,
                .client_id = p->client_id,
                .server_id = p->server_id,
                .authority_host = p->authority_host,
                .auth = auth_kind_to_string(p->auth),
                .managed_identity = p->managed_identity_client_id   ?: p->managed_identity_object_id
                                    ?: p->managed_identity_resource_id,
                .azure_config_dir = p->azure_config_dir,
        };
}

bool profile_identity_equal(const ProfileIdentity *a, const ProfileIdentity *b) {
        if (streq_ptr(a->auth, "azurecli") && streq_ptr(b->auth, "azurecli"))
                return streq_ptr(a->tenant, b->tenant) && streq_ptr(a->client_id, b->client_id) &&
                       streq_ptr(a->authority_host, b->authority_host) &&
                       (!a->server_id || !b->server_id || streq(a->server_id, b->server_id)) &&
                       streq_ptr(a->azure_config_dir, b->azure_config_dir);
        return a->tenant && b->tenant && a->client_id && b->client_id && a->authority_host && b->authority_host &&
               streq(a->tenant, b->tenant) && streq(a->client_id, b->client_id) &&
               streq(a->authority_host, b->authority_host) &&
               (!a->server_id || !b->server_id || streq(a->server_id, b->server_id)) &&
               streq(a->auth ?: "device_code", b->auth ?: "device_code") &&
               streq_ptr(a->managed_identity, b->managed_identity);
}

bool profile_config_same_identity(const ProfileConfig *a, const ProfileConfig *b) {
        ProfileIdentity x = profile_config_identity(a), y = profile_config_identity(b);

        return profile_identity_equal(&x, &y);
}

char *profile_config_scope(const ProfileConfig *p) {
        char *s;

        if (asprintf(&s, "%s/.default openid profile offline_access", p->server_id) < 0)
                return NULL;
        return s;
}

char *profile_config_app_scope(const ProfileConfig *p) {
        char *s;

        if (asprintf(&s, "%s/.default", p->server_id) < 0)
                return NULL;
        return s;
}

char *profile_config_summary(const ProfileConfig *p) {
        _cleanup_free_ char *files = NULL;
        size_t n = 0, total = (p->token_file ? 1 : 0) + p->n_spark_properties + (p->kubeconfig_output ? 1 : 0);
        StrBuf b = {};
        char *s;
        int r;

        if (total == 0)
                strbuf_append(&b, "writes no files (the token is only served on the socket)");
        else
                strbuf_append(&b, "writes ");
        if (p->token_file) {
                strbuf_append(&b, p->token_file);
                n++;
        }
        for (size_t i = 0; i < p->n_spark_properties; i++, n++)
                strbuf_appendf(&b, "%s%s", n == 0 ? "" : n + 1 == total ? " and " : ", ", p->spark_properties[i]);
        if (p->kubeconfig_output)
                strbuf_appendf(&b, "%s%s (kubeconfig)", n == 0 ? "" : " and ", p->kubeconfig_output);
        files = strbuf_take(&b);
        if (!files)
                return NULL;

        if (p->auth == AUTH_MANAGED_IDENTITY)
                r = asprintf(&s, "profile %s: managed_identity via %s, %s", p->name,
                             p->msi_kind == MSI_APP_SERVICE ? "App Service"
                             : p->msi_kind == MSI_ARC       ? "Azure Arc"
                                                            : p->msi_endpoint,
                             files);
        else if (p->auth == AUTH_AZURECLI)
                r = asprintf(&s, "profile %s: azurecli with %s (az's state in %s), tenant %s, %s", p->name,
                             p->az_command, p->azure_config_dir ?: "~/.azure", p->tenant ?: "(az's own)", files);
        else if (p->auth != AUTH_DEVICE_CODE)
                r = asprintf(&s, "profile %s: %s as %s, tenant %s via %s, %s", p->name, auth_kind_to_string(p->auth),
                             p->client_id ?: "$AZURE_CLIENT_ID", p->tenant ?: "$AZURE_TENANT_ID", p->authority_host,
                             files);
        else
                r = asprintf(&s, "profile %s: tenant %s via %s, %s", p->name, p->tenant, p->authority_host, files);
        if (r < 0)
                return NULL;
        return s;
}
