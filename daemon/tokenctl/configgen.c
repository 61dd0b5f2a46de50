/* `aksspark-tokenctl init`'s core: which contexts of a kubeconfig become which profiles, and the
 * config.ini text for them. Pure: the shell (tokenctl-init.c) reads and writes the files. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/macro.h"
#include "shared/config.h"
#include "tokenctl/configgen.h"

/* The line inih reads is at most 198 bytes; a profile line must fit with room to spare. */
#define VALUE_MAX 160

static const struct {
        const char *environment;
        const char *authority_host;
} clouds[] = {
        { "AzurePublicCloud", "https://login.microsoftonline.com" },
        { "AzureUSGovernmentCloud", "https://login.microsoftonline.us" },
        { "AzureChinaCloud", "https://login.chinacloudapi.cn" },
};

const char *configgen_authority_host(const char *environment) {
        if (!environment)
                return clouds[0].authority_host;
        for (size_t i = 0; i < ELEMENTSOF(clouds); i++)
                if (strcasecmp(environment, clouds[i].environment) == 0)
                        return clouds[i].authority_host;
        return NULL;
}

int configgen_auth(const char *login, bool certificate, const char **ret_auth, const char **reterr_why) {
        static const struct {
                const char *login;
                const char *auth;
        } map[] = {
                { "devicecode", "device_code" }, { "interactive", "browser" },
                { "msi", "managed_identity" },   { "workloadidentity", "workload_identity" },
                { "azurecli", "azurecli" },
        };

        if (!login) {
                *ret_auth = "device_code";
                return 0;
        }
        if (strcasecmp(login, "spn") == 0) {
                *ret_auth = certificate ? "client_certificate" : "client_secret";
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strcasecmp(login, map[i].login) == 0) {
                        *ret_auth = map[i].auth;
                        return 0;
                }
        if (strcasecmp(login, "ropc") == 0)
                *reterr_why = "kubelogin --login ropc (user name and password) has no match in the daemon; convert it "
                              "with `kubelogin convert-kubeconfig -l devicecode` and run init again";
        else
                *reterr_why =
                        "kubelogin's --login is none of devicecode, interactive, spn, msi, workloadidentity, azurecli";
        return -EOPNOTSUPP;
}

static bool is_name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-';
}

char *configgen_profile_name(const char *context, char buf[static CONFIGGEN_NAME_MAX + 1]) {
        size_t n = 0;
        bool replaced = false;

        /* Runs of other characters (':' '/' '@' spaces of ARNs and e-mail addresses) become one '_'. */
        for (const char *c = context; *c && n < CONFIGGEN_NAME_MAX; c++) {
                if (is_name_char(*c)) {
                        buf[n++] = *c;
                        replaced = false;
                } else if (!replaced) {
                        buf[n++] = '_';
                        replaced = true;
                }
        }
        buf[n] = 0;
        if (n == 0 || strcmp(buf, ".") == 0 || strcmp(buf, "..") == 0)
                strcpy(buf, "context");
        return buf;
}

/* A value written into config.ini must read back as itself through inih: no control bytes, no
 * leading or trailing blanks (trimmed), no ';' after a blank (an inline comment), no "${"
 * (expanded in paths), not over-long. */
static bool value_round_trips(const char *v) {
        size_t n = strlen(v);

        if (n == 0 || n > VALUE_MAX || v[0] == ' ' || v[n - 1] == ' ' || strstr(v, "${"))
                return false;
        for (size_t i = 0; i < n; i++) {
                if ((unsigned char) v[i] < 0x20 || v[i] == 0x7f)
                        return false;
                if (v[i] == ';' && i > 0 && (v[i - 1] == ' ' || v[i - 1] == '\t'))
                        return false;
        }
        return true;
}

/* Ids go into URLs and form fields: letters, digits and the few marks GUIDs, domains and
 * application ID URIs ("api://...") use. */
static bool id_is_plain(const char *v) {
        if (!*v || strlen(v) > VALUE_MAX)
                return false;
        for (; *v; v++)
                if (!is_name_char(*v) && *v != ':' && *v != '/')
                        return false;
        return true;
}

static bool name_taken(const Configgen *g, const char *name) {
        for (size_t i = 0; i < g->n_profiles; i++)
                if (strcmp(g->profiles[i].name, name) == 0)
                        return true;
        return false;
}

static bool wanted(const ConfiggenOptions *o, const char *context) {
        if (o->n_only == 0)
                return true;
        for (size_t i = 0; i < o->n_only; i++)
                if (strcmp(o->only[i], context) == 0)
                        return true;
        return false;
}

static _printf_(3, 4) int add_skip(Configgen *g, const char *context, const char *format, ...) {
        ConfiggenSkip *t;
        va_list ap;
        char *why;
        int r;

        va_start(ap, format);
        r = vasprintf(&why, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        t = reallocarray(g->skipped, g->n_skipped + 1, sizeof *t);
        if (!t) {
                free(why);
                return -ENOMEM;
        }
        g->skipped = t;
        g->skipped[g->n_skipped++] = (ConfiggenSkip) { .context = context, .why = why };
        return 0;
}

int configgen_skip_profile(Configgen *g, size_t i, const char *why) {
        ConfiggenProfile p;
        int r;

        if (i >= g->n_profiles)
                return -EINVAL;
        r = add_skip(g, g->profiles[i].context, "%s", why);
        if (r < 0)
                return r;
        p = g->profiles[i];
        memmove(g->profiles + i, g->profiles + i + 1, (g->n_profiles - i - 1) * sizeof *g->profiles);
        g->n_profiles--;
        free(p.name);
        free(p.section);
        free(p.note);
        return 0;
}

/* The keys an auth needs beyond tenant and ids, which the parser must know. */
static const char *auth_missing_key(const char *auth, configgen_key_known_fn known) {
        static const struct {
                const char *auth;
                const char *key;
        } needs[] = {
                { "client_secret", "client_secret_file" },
                { "client_certificate", "client_certificate" },
                { "azurecli", "az_command" },
        };

        if (strcmp(auth, "device_code") == 0)
                return NULL;
        if (!known("auth"))
                return "auth";
        for (size_t i = 0; i < ELEMENTSOF(needs); i++)
                if (strcmp(auth, needs[i].auth) == 0 && !known(needs[i].key))
                        return needs[i].key;
        return NULL;
}

typedef struct Section {
        FILE *f;
        char *text;
        size_t size;
} Section;

/* A key with its value; none without one. */
static void key_line(Section *s, const char *key, const char *value) {
        if (value)
                fprintf(s->f, "%-14s = %s\n", key, value);
}

/* The profile's lines, or a reason in *ret_why to skip the context. */
static int profile_section(const KubeconfigContext *c, const char *name, const char *auth, const ConfiggenOptions *o,
                           char **ret_section, char **ret_note, const char **ret_why) {
        _cleanup_free_ char *text = NULL, *note = NULL;
        const char *authority = configgen_authority_host(c->environment);
        /* No tenant needed: the host's, the pod's, or the one az signed in to. */
        bool unattended = strcmp(auth, "managed_identity") == 0 || strcmp(auth, "workload_identity") == 0 ||
                          strcmp(auth, "azurecli") == 0;
        Section s = {};
        int r;

        if (!authority) {
                *ret_why = "its --environment is none of AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud "
                           "(write authority_host by hand)";
                return 0;
        }
        if (!c->tenant_id && !unattended) {
                *ret_why = "it names no tenant (kubelogin --tenant-id, or tenant-id in the azure auth-provider)";
                return 0;
        }
        if ((c->tenant_id && !id_is_plain(c->tenant_id)) || (c->client_id && !id_is_plain(c->client_id)) ||
            (c->server_id && !id_is_plain(c->server_id))) {
                *ret_why = "its tenant, client or server id has characters no Azure AD id has";
                return 0;
        }
        if (!value_round_trips(c->name) || !value_round_trips(o->kubeconfig) ||
            (c->client_certificate && !value_round_trips(c->client_certificate))) {
                *ret_why = "its name or a path in it cannot be written into config.ini as it is";
                return 0;
        }

        s.f = open_memstream(&s.text, &s.size);
        if (!s.f)
                return -ENOMEM;
        fprintf(s.f, "[profile %s]\n", name);
        fprintf(s.f, "; context %s%s\n", c->name,
                c->auth == KUBECONFIG_AUTH_AZURE_PROVIDER ? " (azure auth-provider)" : " (kubelogin)");
        if (c->tenant_id)
                key_line(&s, "tenant", c->tenant_id);
        key_line(&s, "authority_host", authority);
        if (strcmp(auth, "managed_identity") == 0) {
                /* kubelogin's --client-id names the user-assigned identity; none: the system one. */
                if (c->client_id && strcmp(c->client_id, AKS_DEFAULT_CLIENT_ID) != 0 &&
                    o->key_known("managed_identity_client_id"))
                        key_line(&s, "managed_identity_client_id", c->client_id);
        } else if (c->client_id && strcmp(auth, "azurecli") != 0) /* az signs in as its own client */
                key_line(&s, "client_id", c->client_id);
        if (c->server_id)
                key_line(&s, "server_id", c->server_id);
        if (strcmp(auth, "device_code") != 0)
                key_line(&s, "auth", auth);
        if (strcmp(auth, "client_certificate") == 0)
                key_line(&s, "client_certificate", c->client_certificate);
        if (strcmp(auth, "client_secret") == 0) {
                fprintf(s.f, "%-14s = ~/.config/aksspark-tokend/%s.client-secret\n", "client_secret_file", name);
                if (asprintf(
                            &note,
                            "put the service principal's client secret into ~/.config/aksspark-tokend/%s.client-secret "
                            "(a file of its own, mode 0600)",
                            name) < 0)
                        note = NULL;
        }
        key_line(&s, "kubeconfig", o->kubeconfig);
        key_line(&s, "kubeconfig_context", c->name);
        if (o->key_known("kubeconfig_output"))
                fprintf(s.f, "%-14s = ~/.kube/aksspark-%s.yaml\n", "kubeconfig_output", name);
        r = fclose(s.f) == 0 ? 0 : -ENOMEM;
        text = s.text;
        if (r < 0 || (strcmp(auth, "client_secret") == 0 && !note))
                return -ENOMEM;
        *ret_section = TAKE_PTR(text);
        *ret_note = TAKE_PTR(note);
        *ret_why = NULL;
        return 0;
}

static int plan_context(Configgen *g, const KubeconfigContexts *kc, const KubeconfigContext *c,
                        const ConfiggenOptions *o) {
        _cleanup_free_ char *section = NULL, *note = NULL, *name = NULL;
        char base[CONFIGGEN_NAME_MAX + 1];
        const char *auth, *why = NULL, *missing;
        ConfiggenProfile *t;
        int r;

        if (c->auth == KUBECONFIG_AUTH_OTHER)
                return add_skip(g, c->name, "%s", c->why ?: "it has no Azure AD sign-in");
        if (c->pop_enabled)
                return add_skip(g, c->name,
                                "kubelogin --pop-enabled asks for proof-of-possession tokens (Azure Arc), which the "
                                "daemon does not serve; it hands out bearer tokens only");

        r = configgen_auth(c->auth == KUBECONFIG_AUTH_KUBELOGIN ? c->login : NULL, !!c->client_certificate, &auth,
                           &why);
        if (r < 0)
                return add_skip(g, c->name, "%s", why);
        missing = auth_missing_key(auth, o->key_known);
        if (missing)
                return add_skip(g, c->name,
                                "kubelogin --login %s means auth = %s, which this aksspark-tokend cannot "
                                "read yet (no key %s)",
                                c->login ?: "devicecode", auth, missing);

        if (kc->current && strcmp(kc->current, c->name) == 0)
                strcpy(base, "default");
        else
                configgen_profile_name(c->name, base);
        if (!name_taken(g, base) &&
            (strcmp(base, "default") != 0 || (kc->current && strcmp(kc->current, c->name) == 0)))
                name = strdup(base);
        else
                for (unsigned n = 2; !name || name_taken(g, name); n++) {
                        free(name);
                        if (asprintf(&name, "%.*s-%u", CONFIGGEN_NAME_MAX - 11, base, n) < 0)
                                return -ENOMEM;
                }
        if (!name)
                return -ENOMEM;

        r = profile_section(c, name, auth, o, &section, &note, &why);
        if (r < 0)
                return r;
        if (why)
                return add_skip(g, c->name, "%s", why);

        t = reallocarray(g->profiles, g->n_profiles + 1, sizeof *t);
        if (!t)
                return -ENOMEM;
        g->profiles = t;
        g->profiles[g->n_profiles++] = (ConfiggenProfile) {
                .name = TAKE_PTR(name),
                .context = c->name,
                .auth = auth,
                .section = TAKE_PTR(section),
                .note = TAKE_PTR(note),
        };
        return 0;
}

int configgen_plan(const KubeconfigContexts *kc, const ConfiggenOptions *o, Configgen *ret, const char **reterr_name) {
        _cleanup_(configgen_done) Configgen g = {};
        int r;

        for (size_t i = 0; i < o->n_only; i++) {
                bool found = false;

                for (size_t j = 0; j < kc->n && !found; j++)
                        found = strcmp(kc->contexts[j].name, o->only[i]) == 0;
                if (!found) {
                        *reterr_name = o->only[i];
                        return -ENOENT;
                }
        }

        /* The current context first, so that it gets "default" before a context named so. */
        for (size_t pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < kc->n; i++) {
                        const KubeconfigContext *c = &kc->contexts[i];
                        bool current = kc->current && strcmp(kc->current, c->name) == 0;

                        if (current != (pass == 0) || !wanted(o, c->name))
                                continue;
                        r = plan_context(&g, kc, c, o);
                        if (r < 0)
                                return r;
                }
        *ret = g;
        g = (Configgen) {};
        return 0;
}

char *configgen_text(const Configgen *g, const char *source) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        if (!f)
                return NULL;
        fprintf(f,
                "; Written by `aksspark-tokenctl init` from %s.\n"
                "; One profile per Azure AD context; see aksspark-tokend.conf(5) for every key.\n",
                source);
        for (size_t i = 0; i < g->n_profiles; i++)
                fprintf(f, "\n%s", g->profiles[i].section);
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

void configgen_done(Configgen *g) {
        if (!g)
                return;
        for (size_t i = 0; i < g->n_profiles; i++) {
                free(g->profiles[i].name);
                free(g->profiles[i].section);
                free(g->profiles[i].note);
        }
        free(g->profiles);
        for (size_t i = 0; i < g->n_skipped; i++)
                free(g->skipped[i].why);
        free(g->skipped);
        *g = (Configgen) {};
}
