/* A kubeconfig read with libyaml: the API server of a context (current-context -> context ->
 * cluster -> server), and every context with the Azure AD sign-in its user runs. Pure. */
#pragma once

#include <stddef.h>

/* Only the first YAML document is read; YAML nulls count as unset. -ENOENT: no (or an empty)
 * current-context, or it names no context, or the context names no cluster that is there;
 * -ENODATA: the cluster has no server; -EBADMSG: not YAML, not a kubeconfig (wrong types), or
 * the context or cluster name is listed twice (kubectl refuses that too); -ENOMEM. */
int kubeconfig_current_server(const char *text, size_t len, char **ret_server);

/* The same for the context named context (NULL: the current one). */
int kubeconfig_context_server(const char *text, size_t len, const char *context, char **ret_server);

typedef enum KubeconfigAuth {
        KUBECONFIG_AUTH_OTHER,          /* not Azure AD, or not readable: why says which */
        KUBECONFIG_AUTH_KUBELOGIN,      /* exec: kubelogin get-token --server-id ... */
        KUBECONFIG_AUTH_AZURE_PROVIDER, /* auth-provider: {name: azure, config: {...}} */
} KubeconfigAuth;

typedef struct KubeconfigContext {
        char *name;
        char *cluster;          /* each NULL when the file does not say */
        char *user;
        char *server;           /* the cluster's API server */
        KubeconfigAuth auth;
        const char *why;        /* KUBECONFIG_AUTH_OTHER: a static phrase, "its user ..." */
        /* What the Azure AD sign-in names (kubelogin's flags, or the auth-provider's config
         * keys apiserver-id, client-id, tenant-id, environment); NULL when not given. Secret
         * flags (--client-secret, --password) are skipped, never copied. */
        char *environment;
        char *server_id;
        char *client_id;
        char *tenant_id;
        char *login;            /* kubelogin --login; NULL: not given (kubelogin's default is devicecode) */
        char *client_certificate; /* kubelogin --client-certificate (a path) */
} KubeconfigContext;

typedef struct KubeconfigContexts {
        KubeconfigContext *contexts;
        size_t n;
        char *current;          /* current-context, NULL when none */
} KubeconfigContexts;

/* Every context in file order. A context whose user is missing or signs in otherwise is listed
 * with KUBECONFIG_AUTH_OTHER and why. -EBADMSG: not YAML, contexts not a list of mappings with
 * names, a context name listed twice; -ENOMEM. An empty document gives no contexts. */
int kubeconfig_list_contexts(const char *text, size_t len, KubeconfigContexts *ret);
void kubeconfig_contexts_done(KubeconfigContexts *c);
