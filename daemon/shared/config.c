/* The configuration file: inih reads lines from our reader, the callbacks collect settings, and
 * validation (config-build.c) turns them into a Config or into every problem as
 * "file:line: what is wrong".
 * Pure: text and a ConfigEnv in (reading the file and the process is config-env.c's job). */
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

static const char *const daemon_keys[_DAEMON_KEY_MAX] = {
        [DAEMON_SOCKET] = "socket",
        [DAEMON_STATE_DIR] = "state_dir",
        [DAEMON_LOG_LEVEL] = "log_level",
        [DAEMON_NOTIFY_COMMAND] = "notify_command",
        [DAEMON_HTTP_TIMEOUT] = "http_timeout",
        [DAEMON_METRICS_FILE] = "metrics_file",
};

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

/* What inih trims: C isspace() (SP, HT, LF, VT, FF, CR). */
static bool is_ini_space(char c) {
        return isspace((unsigned char) c);
}

/* inih's own rule: stop at one of chars, or at an inline ';' comment that follows whitespace. */
static const char *find_chars_or_comment(const char *s, const char *chars) {
        bool was_space = false;

        for (; *s; s++) {
                if (chars && strchr(chars, *s))
                        break;
                if (was_space && *s == ';')
                        break;
                was_space = is_ini_space(*s);
        }
        return s;
}

static int key_index(const char *name, const char *const *keys, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(name, keys[i]) == 0)
                        return (int) i;
        return -1;
}

static RawProfile *raw_profile_free(RawProfile *rp) {
        if (!rp)
                return NULL;
        free(rp->name);
        for (size_t i = 0; i < _PROFILE_KEY_MAX; i++)
                free(rp->settings[i].value);
        for (size_t i = 0; i < rp->n_spark_properties; i++)
                free(rp->spark_properties[i].value);
        free(rp->spark_properties);
        free(rp);
        return NULL;
}

static void parser_done(Parser *p) {
        for (size_t i = 0; i < _DAEMON_KEY_MAX; i++)
                free(p->daemon[i].value);
        for (size_t i = 0; i < p->n_profiles; i++)
                raw_profile_free(p->profiles[i]);
        free(p->profiles);
        for (size_t i = 0; i < p->n_problems; i++)
                free(p->problems[i].text);
        free(p->problems);
}

static RawProfile *find_raw_profile(Parser *p, const char *name) {
        for (size_t i = 0; i < p->n_profiles; i++)
                if (strcmp(p->profiles[i]->name, name) == 0)
                        return p->profiles[i];
        return NULL;
}

/* A "[...]" header: name is what stands between the brackets. */
static void section_begin(Parser *p, const char *name, size_t n) {
        _cleanup_free_ char *s = NULL;
        RawProfile *rp, **t;
        char *e, *profile;

        p->section = SECTION_IGNORED;
        p->profile = NULL;

        while (n > 0 && is_ini_space(*name)) {
                name++;
                n--;
        }
        while (n > 0 && is_ini_space(name[n - 1]))
                n--;
        s = strndup(name, n);
        if (!s) {
                p->oom = true;
                return;
        }

        if (strcmp(s, "daemon") == 0) {
                p->section = SECTION_DAEMON;
                return;
        }
        p->saw_other_header = true;
        if (!string_has_prefix(s, "profile") || (s[7] != 0 && !is_ini_space(s[7]))) {
                if (strcasecmp(s, "daemon") == 0 || string_has_prefix(s, "Profile") || string_has_prefix(s, "PROFILE"))
                        config_problem(
                                p, p->line,
                                "unknown section [%s]: section names are lower case, [daemon] and [profile NAME]", s);
                else if (profile_name_is_valid(s))
                        config_problem(
                                p, p->line,
                                "unknown section [%s]: did you mean [profile %s]? Sections are [daemon] and [profile NAME]",
                                s, s);
                else
                        config_problem(p, p->line, "unknown section [%s]: sections are [daemon] and [profile NAME]", s);
                return;
        }

        profile = s + 7;
        while (is_ini_space(*profile))
                profile++;
        if (!*profile) {
                config_problem(p, p->line, "[profile] needs a name, e.g. [profile default]");
                return;
        }
        if (!profile_name_is_valid(profile)) {
                config_problem(p, p->line, "bad profile name '%s': use letters, digits, '_', '.' and '-' only",
                               profile);
                return;
        }
        if (strcmp(profile, ".") == 0 || strcmp(profile, "..") == 0) {
                config_problem(p, p->line, "bad profile name '%s': it must not be '.' or '..'", profile);
                return;
        }
        rp = find_raw_profile(p, profile);
        if (rp) {
                config_problem(p, p->line,
                               "profile '%s' is defined twice (first at line %u): merge the sections or rename one",
                               profile, rp->line);
                return;
        }

        rp = calloc(1, sizeof *rp);
        e = strdup(profile);
        t = reallocarray(p->profiles, p->n_profiles + 1, sizeof *t);
        if (t)
                p->profiles = t;
        if (!rp || !e || !t) {
                free(rp);
                free(e);
                p->oom = true;
                return;
        }
        rp->name = e;
        rp->line = p->line;
        p->profiles[p->n_profiles++] = rp;
        p->section = SECTION_PROFILE;
        p->profile = rp;
}

/* Looks at one line as inih will and returns false when it is no line inih should see: a
 * problem was reported and the caller hands inih an empty comment instead. Headers are
 * tracked here because inih tells its handler nothing of them (not even empty sections). */
static bool reader_classify(Parser *p, const char *line) {
        const char *end;

        if (!*line || *line == ';' || *line == '#')
                return true;

        if (*line == '[') {
                end = find_chars_or_comment(line + 1, "]");
                if (*end != ']') {
                        config_problem(p, p->line, "section header without a closing ']'");
                        p->saw_other_header = true;
                        p->section = SECTION_IGNORED;
                        p->profile = NULL;
                        return false;
                }
                section_begin(p, line + 1, (size_t) (end - line - 1));
                for (end++; is_ini_space(*end); end++)
                        ;
                if (*end && *end != ';' && *end != '#')
                        config_problem(p, p->line, "unexpected text after ']': '%s'", end);
                return true;
        }

        end = find_chars_or_comment(line, "=:");
        if (*end != '=' && *end != ':') {
                config_problem(p, p->line,
                               "cannot read this line: expected 'key = value', a [section] header or a ; comment");
                return false;
        }
        if (end == line) {
                config_problem(p, p->line, "no key before '%c'", *end);
                return false;
        }
        return true;
}

/* inih's fgets-style reader over the text in memory. It counts lines itself, reports a line
 * that would not fit inih's buffer (inih would cut it silently and read the rest as further
 * lines), and drops leading whitespace, so that indented keys are keys and never turn into
 * continuations of the key above. */
static char *config_reader(char *buf, int num, void *userdata) {
        Parser *p = userdata;
        const char *start, *end, *eol;
        size_t n;

        if (p->pos >= p->len || num < 3)
                return NULL;

        start = p->text + p->pos;
        eol = memchr(start, '\n', p->len - p->pos);
        end = eol ?: p->text + p->len;
        p->pos = (size_t) (end - p->text) + (eol ? 1 : 0);
        p->line++;

        if (p->line == 1 && end - start >= 3 && memcmp(start, "\xef\xbb\xbf", 3) == 0)
                start += 3;
        if (end > start && end[-1] == '\r')
                end--;
        n = (size_t) (end - start);

        if (memchr(start, 0, n)) {
                config_problem(p, p->line, "the line contains a NUL byte");
                goto replace;
        }
        /* The line and its "\n\0" must fit the buffer. */
        if (n > (size_t) num - 2) {
                config_problem(p, p->line, "line too long (%zu bytes, at most %d)", n, num - 2);
                goto replace;
        }

        while (start < end && is_ini_space(*start))
                start++;
        n = (size_t) (end - start);
        memcpy(buf, start, n);
        buf[n] = 0;
        if (!reader_classify(p, buf))
                goto replace;
        buf[n] = '\n';
        buf[n + 1] = 0;
        return buf;

replace:
        /* Keep inih's line count in step with ours. */
        strcpy(buf, ";\n");
        return buf;
}

static void setting_set(Parser *p, Setting *s, const char *name, const char *value) {
        char *v;

        if (s->value) {
                config_problem(p, p->line, "%s is already set at line %u: give it once", name, s->line);
                return;
        }
        v = strdup(value);
        if (!v) {
                p->oom = true;
                return;
        }
        s->value = v;
        s->line = p->line;
}

static void spark_properties_add(Parser *p, RawProfile *rp, const char *value) {
        Setting *t;
        char *v;

        v = strdup(value);
        t = reallocarray(rp->spark_properties, rp->n_spark_properties + 1, sizeof *t);
        if (t)
                rp->spark_properties = t;
        if (!v || !t) {
                free(v);
                p->oom = true;
                return;
        }
        rp->spark_properties[rp->n_spark_properties++] = (Setting) { .value = v, .line = p->line };
}

static void unknown_key(Parser *p, const char *name, bool in_daemon) {
        const char *const *keys = in_daemon ? daemon_keys : config_profile_keys;
        size_t n = in_daemon ? ELEMENTSOF(daemon_keys) : ELEMENTSOF(config_profile_keys);
        const char *where = in_daemon ? "[daemon]" : "a [profile NAME] section";
        const char *guess;

        if (!in_daemon && key_index(name, daemon_keys, ELEMENTSOF(daemon_keys)) >= 0)
                config_problem(p, p->line, "%s belongs in the [daemon] section, not in [profile %s]", name,
                               p->profile->name);
        else if (in_daemon && key_index(name, config_profile_keys, ELEMENTSOF(config_profile_keys)) >= 0)
                config_problem(p, p->line, "%s belongs in a [profile NAME] section, not in [daemon]", name);
        else if ((guess = config_closest_key(name, keys, n)))
                config_problem(p, p->line, "unknown key '%s' in %s: did you mean '%s'?", name, where, guess);
        else {
                char known[1024] = "";

                for (size_t i = 0; i < n; i++) {
                        strcat(known, i > 0 ? ", " : "");
                        strcat(known, keys[i]);
                }
                config_problem(p, p->line, "unknown key '%s' in %s; the keys there are %s", name, where, known);
        }
}

static int config_handler(void *userdata, const char *section, const char *name, const char *value) {
        Parser *p = userdata;
        int k;

        /* inih's section string is not used: ours is exact (inih cuts names at 49 bytes). */
        switch (p->section) {
        case SECTION_NONE:
                config_problem(p, p->line, "%s is outside any section: put it under [daemon] or [profile NAME]", name);
                break;
        case SECTION_IGNORED:
                break;
        case SECTION_DAEMON:
                k = key_index(name, daemon_keys, ELEMENTSOF(daemon_keys));
                if (k < 0)
                        unknown_key(p, name, true);
                else
                        setting_set(p, &p->daemon[k], name, value);
                break;
        case SECTION_PROFILE:
                k = key_index(name, config_profile_keys, ELEMENTSOF(config_profile_keys));
                if (k < 0)
                        unknown_key(p, name, false);
                else if (k == PROFILE_SPARK_PROPERTIES)
                        spark_properties_add(p, p->profile, value);
                else
                        setting_set(p, &p->profile->settings[k], name, value);
                break;
        }
        return 1; /* problems are collected, not reported through inih's single error line */
}

static int problem_compare(const void *a, const void *b) {
        const Problem *x = a, *y = b;

        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int problems_take(Parser *p, ConfigErrors *errors) {
        char **lines;

        qsort(p->problems, p->n_problems, sizeof *p->problems, problem_compare);
        lines = calloc(p->n_problems + 1, sizeof *lines);
        if (!lines)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_problems; i++)
                lines[i] = TAKE_PTR(p->problems[i].text);
        errors->lines = lines;
        errors->n = p->n_problems;
        return 0;
}

void config_errors_clear(ConfigErrors *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n; i++)
                free(e->lines[i]);
        free(e->lines);
        e->lines = NULL;
        e->n = 0;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->path);
        free(c->socket_path);
        free(c->state_dir);
        free(c->notify_command);
        free(c->metrics_file);
        for (size_t i = 0; i < c->n_profiles; i++)
                config_profile_free(c->profiles[i]);
        free(c->profiles);
        free(c);
        return NULL;
}

/* Reads the text through inih and builds a Config from what it found. Problems and running out
 * of memory are recorded in p; the Config is returned even then, for the caller to free. */
static Config *parser_run(Parser *p) {
        Config *c;
        int r;

        r = ini_parse_stream(config_reader, p, config_handler, p);
        if (r == -2) {
                p->oom = true;
                return NULL;
        }
        if (r != 0)
                /* Every line inih refuses should have been caught by the reader already. */
                config_problem(p, (unsigned) r, "cannot read this line");

        c = calloc(1, sizeof *c);
        if (!c || config_strdup_to(p, p->path, &c->path) < 0) {
                p->oom = true;
                return c;
        }

        config_build_daemon(p, c);

        if (p->n_profiles == 0 && !p->saw_other_header)
                config_problem(p, 1,
                               "no profile is configured: add a [profile default] section with tenant = <your tenant>");
        c->profiles = calloc(MAX(p->n_profiles, 1u), sizeof *c->profiles);
        if (!c->profiles) {
                p->oom = true;
                return c;
        }
        for (size_t i = 0; i < p->n_profiles; i++) {
                const RawProfile *rp = p->profiles[i];
                bool default_token_file = streq_set(rp->name, "default") || p->n_profiles == 1;
                ProfileConfig *pc = config_build_profile(p, rp, default_token_file);

                if (!pc)
                        return c;
                c->profiles[c->n_profiles++] = pc;
        }
        config_build_check_outputs(p, c);
        return c;
}

int config_parse(const char *path, const char *text, size_t len, const ConfigEnv *env, Config **ret,
                 ConfigErrors *reterr_errors) {
        _cleanup_(config_freep) Config *c = NULL;
        Parser p = {
                .path = path ?: "(config)",
                .env = env,
                .text = text,
                .len = text ? len : 0,
        };
        int r;

        if (!env || !ret || !reterr_errors)
                return -EINVAL;
        config_errors_clear(reterr_errors);

        if (env->home && env->home[0] == '/')
                c = parser_run(&p);
        else
                config_problem(&p, 1, "no home directory is known: set HOME to an absolute path");

        if (p.oom)
                r = -ENOMEM;
        else if (p.n_problems > 0)
                r = problems_take(&p, reterr_errors) ?: -EINVAL;
        else {
                *ret = TAKE_PTR(c);
                r = 0;
        }
        parser_done(&p);
        return r;
}

bool config_profile_key_is_known(const char *key) {
        return key && key_index(key, config_profile_keys, ELEMENTSOF(config_profile_keys)) >= 0;
}
