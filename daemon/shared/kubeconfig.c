/* Kubeconfigs. Read with libyaml's document API: the API server of a context (for spark.master),
 * its whole cluster entry (for the kubeconfig output) and every context with its Azure AD
 * sign-in (for `aksspark-tokenctl init`). Written with its emitter: the kubeconfig output. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "base/macro.h"
#include "base/util.h"
#include "shared/kubeconfig.h"

static bool node_is_null(const yaml_node_t *n) {
        static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
        const char *v;

        if (!n)
                return true;
        if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        v = (const char *) n->data.scalar.value;
        for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
                if (strcmp(v, nulls[i]) == 0)
                        return true;
        return false;
}

static yaml_node_t *mapping_get(yaml_document_t *doc, yaml_node_t *map, const char *key) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(doc, p->key);

                if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == strlen(key) &&
                    memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
                        return yaml_document_get_node(doc, p->value);
        }
        return NULL;
}

/* A string field: 0 with *ret NULL when absent or null, -EBADMSG when it is not a string. */
static int mapping_get_string(yaml_document_t *doc, yaml_node_t *map, const char *key, const char **ret) {
        yaml_node_t *n = mapping_get(doc, map, key);

        if (node_is_null(n)) {
                *ret = NULL;
                return 0;
        }
        if (n->type != YAML_SCALAR_NODE || strlen((const char *) n->data.scalar.value) != n->data.scalar.length)
                return -EBADMSG;
        *ret = (const char *) n->data.scalar.value;
        return 0;
}

/* The mapping under key `field` of the entry named `name` in the list `list` (contexts or
 * clusters). -ENOENT when there is none; -EBADMSG when the list is malformed or the name is
 * there twice (kubectl refuses such a file too). */
static int named_entry(yaml_document_t *doc, yaml_node_t *root, const char *list, const char *field, const char *name,
                       yaml_node_t **ret) {
        yaml_node_t *seq = mapping_get(doc, root, list), *found = NULL;

        if (node_is_null(seq))
                return -ENOENT;
        if (seq->type != YAML_SEQUENCE_NODE)
                return -EBADMSG;

        for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
                yaml_node_t *item = yaml_document_get_node(doc, *i), *value;
                const char *n;
                int r;

                if (!item || item->type != YAML_MAPPING_NODE)
                        return -EBADMSG;
                r = mapping_get_string(doc, item, "name", &n);
                if (r < 0)
                        return r;
                if (!n || strcmp(n, name) != 0)
                        continue;
                if (found)
                        return -EBADMSG;
                value = mapping_get(doc, item, field);
                if (node_is_null(value))
                        return -ENOENT;
                if (value->type != YAML_MAPPING_NODE)
                        return -EBADMSG;
                found = value;
        }
        if (!found)
                return -ENOENT;
        *ret = found;
        return 0;
}

/* The context and the cluster mappings of the context named name (NULL: the current one). */
static int document_context(yaml_document_t *doc, const char *name, yaml_node_t **ret_context,
                            yaml_node_t **ret_cluster) {
        yaml_node_t *root = yaml_document_get_root_node(doc), *context, *cluster;
        const char *current, *cluster_name;
        int r;

        if (node_is_null(root)) /* an empty file: a kubeconfig with nothing in it */
                return -ENOENT;
        if (root->type != YAML_MAPPING_NODE)
                return -EBADMSG;

        if (name)
                current = name;
        else {
                r = mapping_get_string(doc, root, "current-context", &current);
                if (r < 0)
                        return r;
                if (!current)
                        return -ENOENT;
        }

        r = named_entry(doc, root, "contexts", "context", current, &context);
        if (r < 0)
                return r;
        r = mapping_get_string(doc, context, "cluster", &cluster_name);
        if (r < 0)
                return r;
        if (!cluster_name)
                return -ENOENT;

        r = named_entry(doc, root, "clusters", "cluster", cluster_name, &cluster);
        if (r < 0)
                return r;
        *ret_context = context;
        *ret_cluster = cluster;
        return 0;
}

static int document_context_server(yaml_document_t *doc, const char *name, char **ret_server) {
        yaml_node_t *context, *cluster;
        const char *server;
        char *s;
        int r;

        r = document_context(doc, name, &context, &cluster);
        if (r < 0)
                return r;
        r = mapping_get_string(doc, cluster, "server", &server);
        if (r < 0)
                return r;
        if (!server)
                return -ENODATA;

        s = strdup(server);
        if (!s)
                return -ENOMEM;
        *ret_server = s;
        return 0;
}

/* The first YAML document of text; -EBADMSG when it is not YAML. */
static int document_load(const char *text, size_t len, yaml_document_t *ret) {
        yaml_parser_t parser;
        int r = 0;

        if (!text && len > 0)
                return -EINVAL;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) (text ? text : ""), len);
        if (!yaml_parser_load(&parser, ret))
                r = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EBADMSG;
        yaml_parser_delete(&parser);
        return r;
}

int kubeconfig_context_server(const char *text, size_t len, const char *context, char **ret_server) {
        yaml_document_t doc;
        int r;

        r = document_load(text, len, &doc);
        if (r < 0)
                return r;
        r = document_context_server(&doc, context, ret_server);
        yaml_document_delete(&doc);
        return r;
}

int kubeconfig_current_server(const char *text, size_t len, char **ret_server) {
        return kubeconfig_context_server(text, len, NULL, ret_server);
}

/* ---- every context, with what its user signs in with -------------------------------------- */

static int dup_or_null(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static void context_done(KubeconfigContext *c) {
        free(c->name);
        free(c->cluster);
        free(c->user);
        free(c->server);
        free(c->environment);
        free(c->server_id);
        free(c->client_id);
        free(c->tenant_id);
        free(c->login);
        free(c->client_certificate);
        *c = (KubeconfigContext) {};
}

void kubeconfig_contexts_done(KubeconfigContexts *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++)
                context_done(&c->contexts[i]);
        free(c->contexts);
        free(c->current);
        *c = (KubeconfigContexts) {};
}

typedef struct KubeloginFlag {
        const char *name; /* long form, without "--" */
        char shorthand;   /* kubelogin's one-letter form, 0 when none */
        size_t field;     /* offsetof the char * in KubeconfigContext; 0: value skipped */
} KubeloginFlag;

/* The flags of `kubelogin get-token` that take a value. The ones whose value is a secret
 * (client secret, password) are skipped unread: the value must never be mistaken for a flag,
 * nor be copied anywhere. */
static const KubeloginFlag kubelogin_flags[] = {
        { "environment", 'e', offsetof(KubeconfigContext, environment) },
        { "server-id", 0, offsetof(KubeconfigContext, server_id) },
        { "client-id", 0, offsetof(KubeconfigContext, client_id) },
        { "tenant-id", 't', offsetof(KubeconfigContext, tenant_id) },
        { "login", 'l', offsetof(KubeconfigContext, login) },
        { "client-certificate", 0, offsetof(KubeconfigContext, client_certificate) },
        { "client-secret", 0, 0 },
        { "client-certificate-password", 0, 0 },
        { "password", 0, 0 },
        { "username", 0, 0 },
        { "authority-host", 0, 0 },
        { "token-cache-dir", 0, 0 },
        { "federated-token-file", 0, 0 },
        { "identity-resource-id", 0, 0 },
        { "pop-claims", 0, 0 },
        { "timeout", 0, 0 },
        { "redirect-url", 0, 0 },
        { "login-hint", 0, 0 },
};

static const KubeloginFlag *kubelogin_flag(const char *arg, const char **ret_inline_value) {
        const char *eq = NULL;
        size_t n;

        *ret_inline_value = NULL;
        if (arg[0] == '-' && arg[1] && arg[1] != '-') {
                for (size_t i = 0; i < ELEMENTSOF(kubelogin_flags); i++)
                        if (kubelogin_flags[i].shorthand == arg[1]) {
                                if (arg[2] == '=')
                                        *ret_inline_value = arg + 3;
                                else if (arg[2])
                                        *ret_inline_value = arg + 2;
                                return &kubelogin_flags[i];
                        }
                return NULL;
        }
        if (!string_has_prefix(arg, "--"))
                return NULL;
        arg += 2;
        eq = strchr(arg, '=');
        n = eq ? (size_t) (eq - arg) : strlen(arg);
        for (size_t i = 0; i < ELEMENTSOF(kubelogin_flags); i++)
                if (strlen(kubelogin_flags[i].name) == n && memcmp(kubelogin_flags[i].name, arg, n) == 0) {
                        if (eq)
                                *ret_inline_value = eq + 1;
                        return &kubelogin_flags[i];
                }
        return NULL;
}

/* A boolean flag as Go's pflag reads it: --NAME, --NAME=true/false/1/0/t/f. */
static bool kubelogin_bool_flag(const char *arg, const char *name, bool *ret_value) {
        static const char *const truths[] = { "true", "TRUE", "True", "1", "t", "T" };
        const char *rest;

        if (!string_has_prefix(arg, "--") || !string_has_prefix(arg + 2, name))
                return false;
        rest = arg + 2 + strlen(name);
        if (*rest == 0) {
                *ret_value = true;
                return true;
        }
        if (*rest != '=')
                return false;
        *ret_value = false;
        for (size_t i = 0; i < ELEMENTSOF(truths); i++)
                if (strcmp(rest + 1, truths[i]) == 0)
                        *ret_value = true;
        return true;
}

static bool command_is_kubelogin(const char *command) {
        const char *base = strrchr(command, '/');

        base = base ? base + 1 : command;
        return strcmp(base, "kubelogin") == 0 || strcmp(base, "kubelogin.exe") == 0;
}

/* exec: {command: kubelogin, args: [get-token, --flag, value, ...]}. */
static int read_kubelogin(yaml_document_t *doc, yaml_node_t *exec, KubeconfigContext *c) {
        yaml_node_t *args = mapping_get(doc, exec, "args");
        const char *command = NULL;
        bool get_token = false;
        int r;

        if (mapping_get_string(doc, exec, "command", &command) < 0 || !command) {
                c->why = "its user's exec plugin names no command";
                return 0;
        }
        if (!command_is_kubelogin(command)) {
                c->why = "its user runs another exec plugin, not kubelogin (not Azure AD)";
                return 0;
        }
        if (!node_is_null(args) && args->type != YAML_SEQUENCE_NODE) {
                c->why = "its kubelogin args are not a list";
                return 0;
        }

        for (yaml_node_item_t *i = args ? args->data.sequence.items.start : NULL;
             args && i < args->data.sequence.items.top; i++) {
                yaml_node_t *item = yaml_document_get_node(doc, *i);
                const KubeloginFlag *flag;
                const char *arg, *value;
                char **field;

                if (!item || item->type != YAML_SCALAR_NODE ||
                    strlen((const char *) item->data.scalar.value) != item->data.scalar.length) {
                        c->why = "its kubelogin args are not all strings";
                        return 0;
                }
                arg = (const char *) item->data.scalar.value;
                flag = kubelogin_flag(arg, &value);
                if (!flag) {
                        if (strcmp(arg, "get-token") == 0)
                                get_token = true;
                        else if (kubelogin_bool_flag(arg, "pop-enabled", &c->pop_enabled))
                                continue;
                        continue; /* a flag without a value (--legacy), or one this reader does not need */
                }
                if (!value) {
                        yaml_node_t *next;

                        if (i + 1 >= args->data.sequence.items.top)
                                break;
                        i++;
                        next = yaml_document_get_node(doc, *i);
                        if (!next || next->type != YAML_SCALAR_NODE) {
                                c->why = "its kubelogin args are not all strings";
                                return 0;
                        }
                        value = (const char *) next->data.scalar.value;
                }
                if (flag->field == 0)
                        continue;
                field = (char **) ((char *) c + flag->field);
                free(*field);
                r = dup_or_null(value, field);
                if (r < 0)
                        return r;
        }
        if (!get_token) {
                c->why = "its user runs kubelogin without get-token";
                return 0;
        }
        c->auth = KUBECONFIG_AUTH_KUBELOGIN;
        return 0;
}

/* auth-provider: {name: azure, config: {apiserver-id, client-id, tenant-id, environment}}, as
 * kubectl's azure provider (before kubelogin) and older `az aks get-credentials` wrote it. */
static int read_azure_provider(yaml_document_t *doc, yaml_node_t *provider, KubeconfigContext *c) {
        static const struct {
                const char *key;
                size_t field;
        } keys[] = {
                { "apiserver-id", offsetof(KubeconfigContext, server_id) },
                { "client-id", offsetof(KubeconfigContext, client_id) },
                { "tenant-id", offsetof(KubeconfigContext, tenant_id) },
                { "environment", offsetof(KubeconfigContext, environment) },
        };
        yaml_node_t *config;
        const char *name = NULL;
        int r;

        if (mapping_get_string(doc, provider, "name", &name) < 0 || !name || strcmp(name, "azure") != 0) {
                c->why = "its user has an auth-provider other than azure (not Azure AD)";
                return 0;
        }
        config = mapping_get(doc, provider, "config");
        if (node_is_null(config) || config->type != YAML_MAPPING_NODE) {
                c->why = "its azure auth-provider has no config";
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *v = NULL;
                char **field = (char **) ((char *) c + keys[i].field);

                if (mapping_get_string(doc, config, keys[i].key, &v) < 0) {
                        c->why = "its azure auth-provider config is malformed";
                        return 0;
                }
                r = dup_or_null(v, field);
                if (r < 0)
                        return r;
        }
        c->auth = KUBECONFIG_AUTH_AZURE_PROVIDER;
        return 0;
}

static int read_user(yaml_document_t *doc, yaml_node_t *root, KubeconfigContext *c) {
        yaml_node_t *user, *exec, *provider;
        int r;

        if (!c->user) {
                c->why = "it names no user";
                return 0;
        }
        r = named_entry(doc, root, "users", "user", c->user, &user);
        if (r == -ENOENT) {
                c->why = "its user is not in the file";
                return 0;
        }
        if (r < 0)
                return r;

        exec = mapping_get(doc, user, "exec");
        provider = mapping_get(doc, user, "auth-provider");
        if (!node_is_null(exec)) {
                if (exec->type != YAML_MAPPING_NODE) {
                        c->why = "its user's exec entry is malformed";
                        return 0;
                }
                return read_kubelogin(doc, exec, c);
        }
        if (!node_is_null(provider)) {
                if (provider->type != YAML_MAPPING_NODE) {
                        c->why = "its user's auth-provider entry is malformed";
                        return 0;
                }
                return read_azure_provider(doc, provider, c);
        }
        if (!node_is_null(mapping_get(doc, user, "client-certificate-data")) ||
            !node_is_null(mapping_get(doc, user, "client-certificate")))
                c->why = "its user signs in with a client certificate, not Azure AD";
        else if (!node_is_null(mapping_get(doc, user, "token")) || !node_is_null(mapping_get(doc, user, "tokenFile")))
                c->why = "its user has a static token, not Azure AD";
        else if (!node_is_null(mapping_get(doc, user, "username")))
                c->why = "its user signs in with a password, not Azure AD";
        else
                c->why = "its user has no Azure AD sign-in (no kubelogin exec, no azure auth-provider)";
        return 0;
}

static int read_context(yaml_document_t *doc, yaml_node_t *root, yaml_node_t *item, KubeconfigContext *c) {
        yaml_node_t *context;
        const char *name, *cluster = NULL, *user = NULL, *server = NULL;
        int r;

        if (!item || item->type != YAML_MAPPING_NODE)
                return -EBADMSG;
        r = mapping_get_string(doc, item, "name", &name);
        if (r < 0)
                return r;
        if (!name)
                return -EBADMSG;
        context = mapping_get(doc, item, "context");
        if (!node_is_null(context)) {
                if (context->type != YAML_MAPPING_NODE)
                        return -EBADMSG;
                r = mapping_get_string(doc, context, "cluster", &cluster);
                if (r >= 0)
                        r = mapping_get_string(doc, context, "user", &user);
                if (r < 0)
                        return r;
        }
        if (cluster) {
                yaml_node_t *cl;

                r = named_entry(doc, root, "clusters", "cluster", cluster, &cl);
                if (r >= 0)
                        r = mapping_get_string(doc, cl, "server", &server);
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        if (dup_or_null(name, &c->name) < 0 || dup_or_null(cluster, &c->cluster) < 0 ||
            dup_or_null(user, &c->user) < 0 || dup_or_null(server, &c->server) < 0)
                return -ENOMEM;
        return read_user(doc, root, c);
}

static int document_contexts(yaml_document_t *doc, KubeconfigContexts *ret) {
        _cleanup_(kubeconfig_contexts_done) KubeconfigContexts l = {};
        yaml_node_t *root = yaml_document_get_root_node(doc), *seq;
        const char *current = NULL;
        size_t n;
        int r;

        if (node_is_null(root)) {
                *ret = l;
                l = (KubeconfigContexts) {};
                return 0;
        }
        if (root->type != YAML_MAPPING_NODE)
                return -EBADMSG;
        r = mapping_get_string(doc, root, "current-context", &current);
        if (r < 0)
                return r;
        if (current && *current && dup_or_null(current, &l.current) < 0)
                return -ENOMEM;

        seq = mapping_get(doc, root, "contexts");
        if (node_is_null(seq)) {
                *ret = l;
                l = (KubeconfigContexts) {};
                return 0;
        }
        if (seq->type != YAML_SEQUENCE_NODE)
                return -EBADMSG;
        n = (size_t) (seq->data.sequence.items.top - seq->data.sequence.items.start);
        l.contexts = calloc(MAX(n, (size_t) 1), sizeof *l.contexts);
        if (!l.contexts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = read_context(doc, root, yaml_document_get_node(doc, seq->data.sequence.items.start[i]),
                                 &l.contexts[l.n]);
                l.n++; /* partly filled entries are freed with the rest */
                if (r < 0)
                        return r;
                for (size_t j = 0; j + 1 < l.n; j++)
                        if (strcmp(l.contexts[j].name, l.contexts[l.n - 1].name) == 0)
                                return -EBADMSG; /* kubectl refuses a name listed twice too */
        }
        *ret = l;
        l = (KubeconfigContexts) {};
        return 0;
}

int kubeconfig_list_contexts(const char *text, size_t len, KubeconfigContexts *ret) {
        yaml_document_t doc;
        int r;

        r = document_load(text, len, &doc);
        if (r < 0)
                return r;
        r = document_contexts(&doc, ret);
        yaml_document_delete(&doc);
        return r;
}

/* ---- the whole cluster entry of a context, for the kubeconfig output ------------------------ */

void kubeconfig_cluster_done(KubeconfigCluster *c) {
        if (!c)
                return;
        free(c->server);
        free(c->certificate_authority_data);
        free(c->certificate_authority);
        free(c->tls_server_name);
        free(c->proxy_url);
        free(c->namespace);
        *c = (KubeconfigCluster) {};
}

/* A YAML 1.1 boolean as the Go YAML reader that kubectl uses takes it; absent is false. */
static int mapping_get_bool(yaml_document_t *doc, yaml_node_t *map, const char *key, bool *ret) {
        static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y" };
        static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N" };
        const char *v;
        int r;

        r = mapping_get_string(doc, map, key, &v);
        if (r < 0)
                return r;
        *ret = false;
        if (!v)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcmp(v, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcmp(v, no[i]) == 0)
                        return 0;
        return -EBADMSG;
}

static int document_context_cluster(yaml_document_t *doc, const char *name, const char *source_dir,
                                    KubeconfigCluster *ret) {
        _cleanup_(kubeconfig_cluster_done) KubeconfigCluster c = {};
        const char *server, *ca_data, *ca, *tls_server_name, *proxy_url, *namespace;
        yaml_node_t *context, *cluster;
        int r;

        r = document_context(doc, name, &context, &cluster);
        if (r < 0)
                return r;
        r = mapping_get_string(doc, cluster, "server", &server);
        if (r >= 0)
                r = mapping_get_string(doc, cluster, "certificate-authority-data", &ca_data);
        if (r >= 0)
                r = mapping_get_string(doc, cluster, "certificate-authority", &ca);
        if (r >= 0)
                r = mapping_get_string(doc, cluster, "tls-server-name", &tls_server_name);
        if (r >= 0)
                r = mapping_get_string(doc, cluster, "proxy-url", &proxy_url);
        if (r >= 0)
                r = mapping_get_bool(doc, cluster, "insecure-skip-tls-verify", &c.insecure_skip_tls_verify);
        if (r >= 0)
                r = mapping_get_string(doc, context, "namespace", &namespace);
        if (r < 0)
                return r;
        if (!server)
                return -ENODATA;

        if (ca && *ca && ca[0] != '/' && source_dir) {
                if (asprintf(&c.certificate_authority, "%s/%s", source_dir, ca) < 0) {
                        c.certificate_authority = NULL;
                        return -ENOMEM;
                }
        } else if (ca && *ca && dup_or_null(ca, &c.certificate_authority) < 0)
                return -ENOMEM;
        if (dup_or_null(server, &c.server) < 0 ||
            dup_or_null(ca_data && *ca_data ? ca_data : NULL, &c.certificate_authority_data) < 0 ||
            dup_or_null(tls_server_name && *tls_server_name ? tls_server_name : NULL, &c.tls_server_name) < 0 ||
            dup_or_null(proxy_url && *proxy_url ? proxy_url : NULL, &c.proxy_url) < 0 ||
            dup_or_null(namespace && *namespace ? namespace : NULL, &c.namespace) < 0)
                return -ENOMEM;

        *ret = c;
        c = (KubeconfigCluster) {};
        return 0;
}

int kubeconfig_context_cluster(const char *text, size_t len, const char *context, const char *source_dir,
                               KubeconfigCluster *ret) {
        yaml_document_t doc;
        int r;

        if (!ret)
                return -EINVAL;
        r = document_load(text, len, &doc);
        if (r < 0)
                return r;
        r = document_context_cluster(&doc, context, source_dir, ret);
        yaml_document_delete(&doc);
        return r;
}

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct Buffer {
        char *data;
        size_t len, cap;
        bool oom;
} Buffer;

static int buffer_write(void *userdata, unsigned char *bytes, size_t size) {
        Buffer *b = userdata;

        if (b->len + size + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + size + 1);
                char *d = realloc(b->data, MAX(cap, (size_t) 1024));

                if (!d) {
                        b->oom = true;
                        return 0;
                }
                b->data = d;
                b->cap = MAX(cap, (size_t) 1024);
        }
        memcpy(b->data + b->len, bytes, size);
        b->len += size;
        b->data[b->len] = 0;
        return 1;
}

/* One emitter call; false once libyaml refused (the emitter then keeps its error). */
static bool emit(yaml_emitter_t *e, yaml_event_t *ev) {
        return yaml_emitter_emit(e, ev);
}

/* A constant of ours: plain. */
static bool emit_plain(yaml_emitter_t *e, const char *s) {
        yaml_event_t ev;

        return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *) s, (int) strlen(s), 1, 1,
                                            YAML_PLAIN_SCALAR_STYLE) &&
               emit(e, &ev);
}

/* A value from outside (a name, a path, a URL): always a string. */
static bool emit_quoted(yaml_emitter_t *e, const char *s) {
        yaml_event_t ev;

        return yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *) s, (int) strlen(s), 1, 1,
                                            YAML_DOUBLE_QUOTED_SCALAR_STYLE) &&
               emit(e, &ev);
}

static bool emit_pair(yaml_emitter_t *e, const char *key, const char *value) {
        return !value || (emit_plain(e, key) && emit_quoted(e, value));
}

static bool emit_mapping_start(yaml_emitter_t *e) {
        yaml_event_t ev;

        return yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) && emit(e, &ev);
}

static bool emit_mapping_end(yaml_emitter_t *e) {
        yaml_event_t ev;

        return yaml_mapping_end_event_initialize(&ev) && emit(e, &ev);
}

static bool emit_sequence_start(yaml_emitter_t *e, yaml_sequence_style_t style) {
        yaml_event_t ev;

        return yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, style) && emit(e, &ev);
}

static bool emit_sequence_end(yaml_emitter_t *e) {
        yaml_event_t ev;

        return yaml_sequence_end_event_initialize(&ev) && emit(e, &ev);
}

/* "- name: NAME\n  KEY: {...}" opened: the caller fills the inner mapping and calls
 * emit_named_end(). */
static bool emit_named_start(yaml_emitter_t *e, const char *name, const char *key) {
        return emit_mapping_start(e) && emit_pair(e, "name", name) && emit_plain(e, key) && emit_mapping_start(e);
}

static bool emit_named_end(yaml_emitter_t *e) {
        return emit_mapping_end(e) && emit_mapping_end(e);
}

static bool emit_kubeconfig(yaml_emitter_t *e, const KubeconfigCluster *c, const KubeconfigExec *x) {
        const char *args[] = { "--socket",        x->socket_path,  "--profile",   x->name,
                               "exec-credential", "--api-version", x->api_version };
        yaml_event_t ev;
        bool ok;

        ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) && emit(e, &ev) &&
             yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) && emit(e, &ev) && emit_mapping_start(e) &&
             emit_plain(e, "apiVersion") && emit_plain(e, "v1") && emit_plain(e, "kind") && emit_plain(e, "Config");
        if (!ok)
                return false;

        ok = emit_plain(e, "clusters") && emit_sequence_start(e, YAML_BLOCK_SEQUENCE_STYLE) &&
             emit_named_start(e, x->name, "cluster") && emit_pair(e, "server", c->server) &&
             emit_pair(e, "certificate-authority-data", c->certificate_authority_data) &&
             emit_pair(e, "certificate-authority", c->certificate_authority) &&
             (!c->insecure_skip_tls_verify || (emit_plain(e, "insecure-skip-tls-verify") && emit_plain(e, "true"))) &&
             emit_pair(e, "tls-server-name", c->tls_server_name) && emit_pair(e, "proxy-url", c->proxy_url) &&
             emit_named_end(e) && emit_sequence_end(e);
        if (!ok)
                return false;

        ok = emit_plain(e, "contexts") && emit_sequence_start(e, YAML_BLOCK_SEQUENCE_STYLE) &&
             emit_named_start(e, x->name, "context") && emit_pair(e, "cluster", x->name) &&
             emit_pair(e, "user", x->name) && emit_pair(e, "namespace", c->namespace) && emit_named_end(e) &&
             emit_sequence_end(e) && emit_plain(e, "current-context") && emit_quoted(e, x->name);
        if (!ok)
                return false;

        ok = emit_plain(e, "users") && emit_sequence_start(e, YAML_BLOCK_SEQUENCE_STYLE) &&
             emit_named_start(e, x->name, "user") && emit_plain(e, "exec") && emit_mapping_start(e) &&
             emit_pair(e, "apiVersion", x->api_version) && emit_pair(e, "command", x->tokenctl_path) &&
             emit_plain(e, "args") && emit_sequence_start(e, YAML_BLOCK_SEQUENCE_STYLE);
        for (size_t i = 0; ok && i < ELEMENTSOF(args); i++)
                ok = emit_quoted(e, args[i]);
        ok = ok && emit_sequence_end(e) && emit_plain(e, "interactiveMode") && emit_plain(e, "Never") &&
             emit_plain(e, "provideClusterInfo") && emit_plain(e, "false") && emit_mapping_end(e) &&
             emit_named_end(e) && emit_sequence_end(e);
        if (!ok)
                return false;

        return emit_mapping_end(e) && yaml_document_end_event_initialize(&ev, 1) && emit(e, &ev) &&
               yaml_stream_end_event_initialize(&ev) && emit(e, &ev);
}

int kubeconfig_render(const KubeconfigCluster *c, const KubeconfigExec *exec, char **ret, size_t *ret_len) {
        /* Says what the file is to a person who opens it; libyaml's emitter writes no comments. */
        static const char header[] = "# Written by aksspark-tokend (kubeconfig_output): rewritten when the source "
                                     "kubeconfig or the profile changes; do not edit.\n";
        Buffer b = {};
        yaml_emitter_t e;
        bool ok, oom;

        if (!c || !exec || !ret || !ret_len || !c->server || !exec->name || !exec->socket_path ||
            !exec->tokenctl_path || !exec->api_version)
                return -EINVAL;
        if (strcmp(exec->api_version, KUBECONFIG_EXEC_V1) != 0 &&
            strcmp(exec->api_version, KUBECONFIG_EXEC_V1BETA1) != 0)
                return -EINVAL;

        if (!yaml_emitter_initialize(&e))
                return -ENOMEM;
        yaml_emitter_set_output(&e, buffer_write, &b);
        yaml_emitter_set_unicode(&e, 1);
        yaml_emitter_set_width(&e, -1); /* no folding of long values (CA data) */
        ok = buffer_write(&b, (unsigned char *) header, sizeof header - 1) && emit_kubeconfig(&e, c, exec) &&
             yaml_emitter_flush(&e);
        oom = b.oom || e.error == YAML_MEMORY_ERROR;
        yaml_emitter_delete(&e);
        if (!ok) {
                free(b.data);
                return oom ? -ENOMEM : -EINVAL;
        }
        *ret = b.data;
        *ret_len = b.len;
        return 0;
}
