/* A kubeconfig read with libyaml: the API server of a context (current-context -> context ->
 * cluster -> server), and every context with the Azure AD sign-in its user runs. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define KUBECONFIG_EXEC_V1 "client.authentication.k8s.io/v1"
#define KUBECONFIG_EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"

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
        char *cluster; /* each NULL when the file does not say */
        char *user;
        char *server; /* the cluster's API server */
        KubeconfigAuth auth;
        const char *why; /* KUBECONFIG_AUTH_OTHER: a static phrase, "its user ..." */
        /* What the Azure AD sign-in names (kubelogin's flags, or the auth-provider's config
         * keys apiserver-id, client-id, tenant-id, environment); NULL when not given. Secret
         * flags (--client-secret, --password) are skipped, never copied. */
        char *environment;
        char *server_id;
        char *client_id;
        char *tenant_id;
        char *login;              /* kubelogin --login; NULL: not given (kubelogin's default is devicecode) */
        char *client_certificate; /* kubelogin --client-certificate (a path) */
        bool pop_enabled;         /* kubelogin --pop-enabled: proof-of-possession tokens (Azure Arc) */
} KubeconfigContext;

typedef struct KubeconfigContexts {
        KubeconfigContext *contexts;
        size_t n;
        char *current; /* current-context, NULL when none */
} KubeconfigContexts;

/* Every context in file order. A context whose user is missing or signs in otherwise is listed
 * with KUBECONFIG_AUTH_OTHER and why. -EBADMSG: not YAML, contexts not a list of mappings with
 * names, a context name listed twice; -ENOMEM. An empty document gives no contexts. */
int kubeconfig_list_contexts(const char *text, size_t len, KubeconfigContexts *ret);
void kubeconfig_contexts_done(KubeconfigContexts *c);

/* What a kubeconfig output takes from the source kubeconfig's context: the cluster
 * entry (the fields a client needs to reach and trust the API server) and the context's
 * namespace. Never anything of the source's user: that may hold credentials. */
typedef struct KubeconfigCluster {
        char *server;
        char *certificate_authority_data; /* base64 as written; NULL none */
        char *certificate_authority;      /* a CA file, absolute; NULL none */
        bool insecure_skip_tls_verify;
        char *tls_server_name; /* NULL none */
        char *proxy_url;       /* NULL none */
        char *namespace;       /* of the context; NULL none */
} KubeconfigCluster;

/* The cluster and namespace of the context named context (NULL: the current one). A relative
 * certificate-authority is made absolute against source_dir (kubectl resolves it against the
 * kubeconfig's directory), so the written kubeconfig can live elsewhere; source_dir NULL keeps
 * it as written. Errors as kubeconfig_current_server(), and -EBADMSG for an
 * insecure-skip-tls-verify that is no boolean. On success *ret is filled (clear it with kubeconfig_cluster_done()). */
int kubeconfig_context_cluster(const char *text, size_t len, const char *context, const char *source_dir,
                               KubeconfigCluster *ret);
void kubeconfig_cluster_done(KubeconfigCluster *c);

/* The exec entry of a kubeconfig output. */
typedef struct KubeconfigExec {
        const char *name;          /* the profile: names the cluster, context and user */
        const char *socket_path;   /* the daemon's socket */
        const char *tokenctl_path; /* absolute path of aksspark-tokenctl */
        const char *api_version;   /* KUBECONFIG_EXEC_V1 or KUBECONFIG_EXEC_V1BETA1 */
} KubeconfigExec;

/* A kubeconfig (YAML, libyaml's emitter) with one cluster, one context and one user, all
 * named exec->name, the context current; the user runs
 *   tokenctl_path --socket S --profile NAME exec-credential --api-version V
 * with apiVersion V, interactiveMode Never and provideClusterInfo false. Every value taken
 * from outside is a double-quoted scalar, so no name or path can turn into a number, a
 * boolean or YAML syntax. -EINVAL: a required field is missing, an api_version not one of
 * the two, or a value that is not UTF-8 (libyaml refuses to emit it); -ENOMEM. *ret is
 * NUL-terminated (malloc'd), *ret_len its length. */
int kubeconfig_render(const KubeconfigCluster *c, const KubeconfigExec *exec, char **ret, size_t *ret_len);
