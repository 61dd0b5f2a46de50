/* The configuration file: inih reads lines from our reader, the callbacks collect settings, and
 * validation turns them into a Config or into every problem as "file:line: what is wrong".
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

#include "config-env.h"
#include "config-outputs.h"
#include "config-values.h"
#include "config.h"
#include "kubeconfig.h"
#include "log.h"
#include "macro.h"

#define SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1)

typedef enum DaemonKey {
        DAEMON_SOCKET,
        DAEMON_STATE_DIR,
        DAEMON_LOG_LEVEL,
        DAEMON_NOTIFY_COMMAND,
        DAEMON_HTTP_TIMEOUT,
        DAEMON_METRICS_FILE,
        _DAEMON_KEY_MAX,
} DaemonKey;

static const char *const daemon_keys[_DAEMON_KEY_MAX] = {
        [DAEMON_SOCKET] = "socket",
        [DAEMON_STATE_DIR] = "state_dir",
        [DAEMON_LOG_LEVEL] = "log_level",
        [DAEMON_NOTIFY_COMMAND] = "notify_command",
        [DAEMON_HTTP_TIMEOUT] = "http_timeout",
        [DAEMON_METRICS_FILE] = "metrics_file",
};

typedef enum ProfileKey {
        PROFILE_TENANT,
        PROFILE_AUTHORITY_HOST,
        PROFILE_CLIENT_ID,
        PROFILE_SERVER_ID,
        PROFILE_REFRESH_BEFORE,
        PROFILE_TOKEN_FILE,
        PROFILE_SPARK_PROPERTIES,
        PROFILE_KUBECONFIG,
        PROFILE_KUBECONFIG_CONTEXT,
        PROFILE_CA_FILE,
        PROFILE_KUBECONFIG_OUTPUT,
        PROFILE_KUBECONFIG_EXEC_API_VERSION,
        PROFILE_AUTH,
        PROFILE_REDIRECT_PORT,
        PROFILE_CLIENT_SECRET_FILE,
        PROFILE_CLIENT_CERTIFICATE,
        PROFILE_CLIENT_CERTIFICATE_PASSWORD_FILE,
        PROFILE_MANAGED_IDENTITY_CLIENT_ID,
        PROFILE_MANAGED_IDENTITY_OBJECT_ID,
        PROFILE_MANAGED_IDENTITY_RESOURCE_ID,
        PROFILE_IMDS_ENDPOINT,
        PROFILE_FEDERATED_TOKEN_FILE,
        _PROFILE_KEY_MAX,
} ProfileKey;

static const char *const profile_keys[_PROFILE_KEY_MAX] = {
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
};

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
        default:
                return -1;
        }
}

static const char *const auth_kind_table[_AUTH_KIND_MAX] = {
        [AUTH_DEVICE_CODE] = "device_code",           [AUTH_BROWSER] = "browser",
        [AUTH_CLIENT_SECRET] = "client_secret",       [AUTH_CLIENT_CERTIFICATE] = "client_certificate",
        [AUTH_MANAGED_IDENTITY] = "managed_identity", [AUTH_WORKLOAD_IDENTITY] = "workload_identity",
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
               k == AUTH_WORKLOAD_IDENTITY;
}

/* One key's value as written, and where. */
typedef struct Setting {
        char *value; /* NULL: not given */
        unsigned line;
} Setting;

typedef struct RawProfile {
        char *name;
        unsigned line;
        Setting settings[_PROFILE_KEY_MAX]; /* all but spark_properties */
        Setting *spark_properties;
        size_t n_spark_properties;
} RawProfile;

typedef enum SectionKind {
        SECTION_NONE, /* before the first header */
        SECTION_DAEMON,
        SECTION_PROFILE,
        SECTION_IGNORED, /* a header that was already reported: its keys would only add noise */
} SectionKind;

typedef struct Problem {
        unsigned line;
        size_t seq; /* keeps problems of one line in the order they were found */
        char *text;
} Problem;

typedef struct Parser {
        const char *path;
        const ConfigEnv *env;

        const char *text;
        size_t len, pos;
        unsigned line; /* of the line inih is working on: inih is built without handler line numbers */

        SectionKind section;
        RawProfile *profile; /* when section == SECTION_PROFILE */
        Setting daemon[_DAEMON_KEY_MAX];
        RawProfile **profiles;
        size_t n_profiles;
        bool saw_other_header; /* any but [daemon], also a refused one: "no profile" would be noise */

        Problem *problems;
        size_t n_problems;
        bool oom;
} Parser;

static _printf_(3, 4) void problem(Parser *p, unsigned line, const char *format, ...) {
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
                        problem(p, p->line,
                                "unknown section [%s]: section names are lower case, [daemon] and [profile NAME]", s);
                else if (profile_name_is_valid(s))
                        problem(p, p->line,
                                "unknown section [%s]: did you mean [profile %s]? Sections are [daemon] and [profile NAME]",
                                s, s);
                else
                        problem(p, p->line, "unknown section [%s]: sections are [daemon] and [profile NAME]", s);
                return;
        }

        profile = s + 7;
        while (is_ini_space(*profile))
                profile++;
        if (!*profile) {
                problem(p, p->line, "[profile] needs a name, e.g. [profile default]");
                return;
        }
        if (!profile_name_is_valid(profile)) {
                problem(p, p->line, "bad profile name '%s': use letters, digits, '_', '.' and '-' only", profile);
                return;
        }
        if (strcmp(profile, ".") == 0 || strcmp(profile, "..") == 0) {
                problem(p, p->line, "bad profile name '%s': it must not be '.' or '..'", profile);
                return;
        }
        rp = find_raw_profile(p, profile);
        if (rp) {
                problem(p, p->line,
                        "profile '%s' is defined twice (first at line %u): merge the sections or rename one", profile,
                        rp->line);
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
                        problem(p, p->line, "section header without a closing ']'");
                        p->saw_other_header = true;
                        p->section = SECTION_IGNORED;
                        p->profile = NULL;
                        return false;
                }
                section_begin(p, line + 1, (size_t) (end - line - 1));
                for (end++; is_ini_space(*end); end++)
                        ;
                if (*end && *end != ';' && *end != '#')
                        problem(p, p->line, "unexpected text after ']': '%s'", end);
                return true;
        }

        end = find_chars_or_comment(line, "=:");
        if (*end != '=' && *end != ':') {
                problem(p, p->line, "cannot read this line: expected 'key = value', a [section] header or a ; comment");
                return false;
        }
        if (end == line) {
                problem(p, p->line, "no key before '%c'", *end);
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
                problem(p, p->line, "the line contains a NUL byte");
                goto replace;
        }
        /* The line and its "\n\0" must fit the buffer. */
        if (n > (size_t) num - 2) {
                problem(p, p->line, "line too long (%zu bytes, at most %d)", n, num - 2);
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
                problem(p, p->line, "%s is already set at line %u: give it once", name, s->line);
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
        const char *const *keys = in_daemon ? daemon_keys : profile_keys;
        size_t n = in_daemon ? ELEMENTSOF(daemon_keys) : ELEMENTSOF(profile_keys);
        const char *where = in_daemon ? "[daemon]" : "a [profile NAME] section";
        const char *guess;

        if (!in_daemon && key_index(name, daemon_keys, ELEMENTSOF(daemon_keys)) >= 0)
                problem(p, p->line, "%s belongs in the [daemon] section, not in [profile %s]", name, p->profile->name);
        else if (in_daemon && key_index(name, profile_keys, ELEMENTSOF(profile_keys)) >= 0)
                problem(p, p->line, "%s belongs in a [profile NAME] section, not in [daemon]", name);
        else if ((guess = config_closest_key(name, keys, n)))
                problem(p, p->line, "unknown key '%s' in %s: did you mean '%s'?", name, where, guess);
        else {
                char known[1024] = "";

                for (size_t i = 0; i < n; i++) {
                        strcat(known, i > 0 ? ", " : "");
                        strcat(known, keys[i]);
                }
                problem(p, p->line, "unknown key '%s' in %s; the keys there are %s", name, where, known);
        }
}

static int config_handler(void *userdata, const char *section, const char *name, const char *value) {
        Parser *p = userdata;
        int k;

        /* inih's section string is not used: ours is exact (inih cuts names at 49 bytes). */
        switch (p->section) {
        case SECTION_NONE:
                problem(p, p->line, "%s is outside any section: put it under [daemon] or [profile NAME]", name);
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
                k = key_index(name, profile_keys, ELEMENTSOF(profile_keys));
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
                problem(p, s->line, "%s is empty: give a path or remove the line", key);
                return -EINVAL;
        }
        if (value_is_quoted(s->value)) {
                problem(p, s->line, "%s: values are not quoted, remove the quotes from %s", key, s->value);
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
                        problem(p, s->line,
                                "%s: ${%s} is not set in the daemon's environment: set it or write the path out", key,
                                name);
                else
                        problem(p, s->line, "%s: '~' needs a home directory, and none is known", key);
                return r;
        }
        if (r < 0) {
                problem(p, s->line, "%s: malformed variable in '%s': write ${NAME} with letters, digits and '_'", key,
                        s->value);
                return r;
        }
        if (x[0] != '/') {
                if (strcmp(x, s->value) == 0)
                        problem(p, s->line, "%s '%s' is not an absolute path: start it with '/', '~/' or ${VAR}", key,
                                s->value);
                else
                        problem(p, s->line, "%s '%s' expands to '%s', which is not an absolute path", key, s->value, x);
                return -EINVAL;
        }
        config_path_simplify(x);
        *ret = TAKE_PTR(x);
        return 0;
}

static int setting_duration(Parser *p, const Setting *s, const char *key, usec_t *ret) {
        int r = parse_duration(s->value, ret);

        if (r == -ERANGE)
                problem(p, s->line, "%s '%s' is too long: at most a year", key, s->value);
        else if (r < 0)
                problem(p, s->line, "%s '%s' is not a duration: write e.g. 90, 90s, 10m or 1h%s", key, s->value,
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
                problem(p, s->line, "authority_host '%s' is not a URL: write e.g. %s", s->value,
                        AKS_DEFAULT_AUTHORITY_HOST);
                return -EINVAL;
        }
        a = v + (https ? 8 : 7);
        slash = strchr(a, '/');
        alen = slash ? (size_t) (slash - a) : strlen(a);
        for (const char *c = v; *c; c++)
                if ((unsigned char) *c <= 0x20 || (unsigned char) *c >= 0x7f || strchr("?#@\\\"<>", *c)) {
                        problem(p, s->line, "authority_host '%s' must be a plain https://host[/path], without '%c'",
                                s->value, *c);
                        return -EINVAL;
                }
        if (!config_authority_is_valid(a, alen)) {
                problem(p, s->line, "authority_host '%s' has no valid host name", s->value);
                return -EINVAL;
        }
        if (!https && !config_authority_is_loopback(a, alen)) {
                problem(p, s->line,
                        "authority_host '%s' must use https:// (plain http:// is only for 127.0.0.1, localhost and [::1])",
                        s->value);
                return -EINVAL;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

static int strdup_to(Parser *p, const char *s, char **ret) {
        char *d = strdup(s);
        if (!d) {
                p->oom = true;
                return -ENOMEM;
        }
        *ret = d;
        return 0;
}

static void build_daemon(Parser *p, Config *c) {
        const Setting *s;
        int r;

        s = &p->daemon[DAEMON_SOCKET];
        if (s->value) {
                if (setting_path(p, s, "socket", false, &c->socket_path) >= 0 &&
                    strlen(c->socket_path) > SOCKET_PATH_MAX)
                        problem(p, s->line,
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
                        problem(p, s->line, "log_level '%s' is not one of error, warning, info, debug%s", s->value,
                                strstr(s->value, " #") ? " (inline comments start with ';', not '#')" : "");
                else
                        c->log_level = r;
        }

        s = &p->daemon[DAEMON_NOTIFY_COMMAND];
        if (s->value && *s->value)
                (void) strdup_to(p, s->value, &c->notify_command);

        s = &p->daemon[DAEMON_HTTP_TIMEOUT];
        c->http_timeout = AKS_DEFAULT_HTTP_TIMEOUT;
        if (s->value && setting_duration(p, s, "http_timeout", &c->http_timeout) >= 0 && c->http_timeout < USEC_PER_SEC)
                problem(p, s->line, "http_timeout '%s' is too short: give at least 1s", s->value);

        s = &p->daemon[DAEMON_METRICS_FILE];
        if (s->value)
                (void) setting_path(p, s, "metrics_file", true, &c->metrics_file);
}

static ProfileConfig *profile_config_free(ProfileConfig *pc) {
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
                        problem(p, v->line,
                                "kubeconfig_exec_api_version '%s' is not %s or %s (Spark 3.4 and older need v1beta1)",
                                v->value, KUBECONFIG_EXEC_V1, KUBECONFIG_EXEC_V1BETA1);
                if (!out->value)
                        problem(p, v->line,
                                "kubeconfig_exec_api_version applies to kubeconfig_output, which profile '%s' does not set",
                                rp->name);
        }
        if (!out->value)
                return;
        (void) setting_path(p, out, "kubeconfig_output", false, &pc->kubeconfig_output);
        if (!rp->settings[PROFILE_KUBECONFIG].value || !*rp->settings[PROFILE_KUBECONFIG].value)
                problem(p, out->line,
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
                        problem(p, rp->settings[k].line, "%s is only for auth = %s (this profile has auth = %s)",
                                profile_keys[k], auth_kind_to_string(profile_key_auth(k)),
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
                                problem(p, s->line, "redirect_port '%s' is not a port number (1-65535)", s->value);
                        else
                                pc->redirect_port = (unsigned) port;
                }
                break;
        case AUTH_CLIENT_SECRET:
                s = &rp->settings[PROFILE_CLIENT_SECRET_FILE];
                if (!s->value)
                        problem(p, rp->line,
                                "profile '%s' has auth = client_secret but no client_secret_file: put the secret in a file of its own (mode 0600) and name it",
                                rp->name);
                else
                        (void) setting_path(p, s, "client_secret_file", false, &pc->client_secret_file);
                break;
        case AUTH_CLIENT_CERTIFICATE:
                s = &rp->settings[PROFILE_CLIENT_CERTIFICATE];
                if (!s->value)
                        problem(p, rp->line,
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
                        problem(p, rp->line,
                                "profile '%s' names its managed identity more than once: give one of managed_identity_client_id, managed_identity_object_id, managed_identity_resource_id",
                                rp->name);
                s = ids[0];
                if (s->value && !config_is_guid(s->value))
                        problem(p, s->line, "managed_identity_client_id '%s' is not a client ID (a GUID)", s->value);
                else if (s->value)
                        (void) strdup_to(p, s->value, &pc->managed_identity_client_id);
                s = ids[1];
                if (s->value && !config_is_guid(s->value))
                        problem(p, s->line, "managed_identity_object_id '%s' is not an object ID (a GUID)", s->value);
                else if (s->value)
                        (void) strdup_to(p, s->value, &pc->managed_identity_object_id);
                s = ids[2];
                if (s->value && (!string_has_prefix(s->value, "/subscriptions/") || !config_is_visible_ascii(s->value)))
                        problem(p, s->line,
                                "managed_identity_resource_id '%s' is not an Azure resource ID (/subscriptions/.../userAssignedIdentities/NAME)",
                                s->value);
                else if (s->value)
                        (void) strdup_to(p, s->value, &pc->managed_identity_resource_id);
                s = &rp->settings[PROFILE_CLIENT_ID];
                if (s->value)
                        problem(p, s->line,
                                "client_id does not choose a managed identity: use managed_identity_client_id");

                /* Which token service: the key, else what the host's environment says (as
                 * MSAL decides), else the VM's IMDS. */
                s = &rp->settings[PROFILE_IMDS_ENDPOINT];
                if (s->value) {
                        size_t n = strlen(s->value);
                        if (!local_endpoint_is_valid(s->value, true, false))
                                problem(p, s->line,
                                        "imds_endpoint '%s' must be http://169.254.169.254 or an http:// address on this machine (127.0.0.1, localhost, [::1])",
                                        s->value);
                        else if (strdup_to(p, s->value, &pc->msi_endpoint) >= 0)
                                while (n > 0 && pc->msi_endpoint[n - 1] == '/')
                                        pc->msi_endpoint[--n] = 0;
                        pc->msi_kind = MSI_IMDS;
                } else if (env->identity_endpoint && (env->identity_header || env->imds_endpoint)) {
                        pc->msi_kind = env->identity_header ? MSI_APP_SERVICE : MSI_ARC;
                        if (!local_endpoint_is_valid(env->identity_endpoint, false, true))
                                problem(p, rp->line,
                                        "IDENTITY_ENDPOINT '%s' must be an http:// address on this machine",
                                        env->identity_endpoint);
                        else
                                (void) strdup_to(p, env->identity_endpoint, &pc->msi_endpoint);
                        if (env->identity_header) {
                                pc->identity_header = secret_new_string(env->identity_header);
                                if (!pc->identity_header)
                                        p->oom = true;
                        }
                        if (pc->msi_kind == MSI_ARC)
                                (void) strdup_to(p, env->arc_key_dir ?: AKS_ARC_KEY_DIR, &pc->arc_key_dir);
                        if (pc->msi_kind == MSI_ARC &&
                            (pc->managed_identity_client_id || pc->managed_identity_object_id ||
                             pc->managed_identity_resource_id))
                                problem(p, rp->line,
                                        "Azure Arc has a system-assigned identity only: remove the managed_identity_* key");
                } else {
                        pc->msi_kind = MSI_IMDS;
                        (void) strdup_to(p, AKS_DEFAULT_IMDS_ENDPOINT, &pc->msi_endpoint);
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
        default:
                break;
        }

        /* client_id: the app itself for a service principal; never the AKS public client. */
        if (auth_kind_is_unattended(pc->auth) && pc->auth != AUTH_MANAGED_IDENTITY &&
            !rp->settings[PROFILE_CLIENT_ID].value) {
                v = pc->auth == AUTH_WORKLOAD_IDENTITY ? env->azure_client_id : NULL;
                free(pc->client_id);
                pc->client_id = NULL;
                if (v && config_is_guid(v))
                        (void) strdup_to(p, v, &pc->client_id);
                else if (v)
                        problem(p, rp->line, "AZURE_CLIENT_ID '%s' is not an application ID (a GUID)", v);
                else if (pc->auth != AUTH_WORKLOAD_IDENTITY) /* workload: the pod's variable, at run time */
                        problem(p, rp->line,
                                "profile '%s' has auth = %s but no client_id: give the application (client) ID of the service principal",
                                rp->name, auth_kind_to_string(pc->auth));
        }
}

static ProfileConfig *build_profile(Parser *p, const RawProfile *rp, bool default_token_file) {
        ProfileConfig *pc;
        const Setting *s;

        pc = calloc(1, sizeof *pc);
        if (!pc) {
                p->oom = true;
                return NULL;
        }
        pc->line = rp->line;
        (void) strdup_to(p, rp->name, &pc->name);

        s = &rp->settings[PROFILE_AUTH];
        pc->auth = AUTH_DEVICE_CODE;
        if (s->value) {
                AuthKind k = auth_kind_from_string(s->value);
                if (k < 0)
                        problem(p, s->line,
                                "auth '%s' is not one of device_code, browser, client_secret, client_certificate, managed_identity, workload_identity",
                                s->value);
                else
                        pc->auth = k;
        }

        s = &rp->settings[PROFILE_TENANT];
        if (!s->value && pc->auth == AUTH_WORKLOAD_IDENTITY && p->env->azure_tenant_id) {
                if (!config_tenant_is_valid(p->env->azure_tenant_id))
                        problem(p, rp->line, "AZURE_TENANT_ID '%s' is not a tenant ID (GUID) or domain",
                                p->env->azure_tenant_id);
                else
                        (void) strdup_to(p, p->env->azure_tenant_id, &pc->tenant);
        } else if (!s->value && pc->auth == AUTH_MANAGED_IDENTITY)
                /* The host's identity belongs to its tenant: nothing to name, nothing sent. */
                (void) strdup_to(p, "(managed identity)", &pc->tenant);
        else if (!s->value && pc->auth == AUTH_WORKLOAD_IDENTITY)
                /* In the pod the webhook sets AZURE_TENANT_ID; a configuration written elsewhere
                 * (init) is still valid, and the profile says what is missing when it runs. */
                ;
        else if (!s->value)
                problem(p, rp->line, "profile '%s' has no tenant: add tenant = <tenant ID, domain or organizations>",
                        rp->name);
        else if (!config_tenant_is_valid(s->value))
                problem(p, s->line,
                        "tenant '%s' is not a tenant ID (GUID), a domain such as contoso.onmicrosoft.com, or organizations",
                        s->value);
        else
                (void) strdup_to(p, s->value, &pc->tenant);

        s = &rp->settings[PROFILE_AUTHORITY_HOST];
        if (s->value)
                (void) setting_authority_host(p, s, &pc->authority_host);
        else if (pc->auth == AUTH_WORKLOAD_IDENTITY && p->env->azure_authority_host) {
                const Setting d = { .value = (char *) p->env->azure_authority_host, .line = rp->line };
                (void) setting_authority_host(p, &d, &pc->authority_host);
        } else
                (void) strdup_to(p, AKS_DEFAULT_AUTHORITY_HOST, &pc->authority_host);

        s = &rp->settings[PROFILE_CLIENT_ID];
        if (!s->value)
                (void) strdup_to(p, AKS_DEFAULT_CLIENT_ID, &pc->client_id);
        else if (!config_is_guid(s->value))
                problem(p, s->line, "client_id '%s' is not an application ID (a GUID such as %s)", s->value,
                        AKS_DEFAULT_CLIENT_ID);
        else
                (void) strdup_to(p, s->value, &pc->client_id);

        s = &rp->settings[PROFILE_SERVER_ID];
        if (!s->value)
                (void) strdup_to(p, AKS_DEFAULT_SERVER_ID, &pc->server_id);
        else if (!config_is_visible_ascii(s->value))
                problem(p, s->line,
                        "server_id '%s' must be an application ID or URI without spaces (the AKS server is %s)",
                        s->value, AKS_DEFAULT_SERVER_ID);
        else
                (void) strdup_to(p, s->value, &pc->server_id);

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
                        problem(p, s->line, "kubeconfig_context '%s' needs kubeconfig = <the file that lists it>",
                                s->value);
                else
                        (void) strdup_to(p, s->value, &pc->kubeconfig_context);
        }

        s = &rp->settings[PROFILE_CA_FILE];
        if (s->value)
                (void) setting_path(p, s, "ca_file", true, &pc->ca_file);

        build_kubeconfig_output(p, rp, pc);
        build_identity(p, rp, pc);
        return pc;
}

static void on_output_problem(unsigned line, const char *message, void *userdata) {
        problem(userdata, line, "%s", message);
}

/* The files every profile writes, with the lines that name them; config-outputs.c checks them. */
static void check_outputs(Parser *p, Config *c) {
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
                        problem(p, p->daemon[DAEMON_METRICS_FILE].line,
                                "metrics_file %s is also profile '%s' %s (line %u): give the metrics a file of their own",
                                c->metrics_file, outs[j].profile, outs[j].key, outs[j].line);
                        break;
                }
        for (size_t i = 0; c->metrics_file && i < c->n_profiles; i++)
                if (streq_ptr(c->metrics_file, c->profiles[i]->kubeconfig) ||
                    streq_ptr(c->metrics_file, c->profiles[i]->ca_file)) {
                        problem(p, p->daemon[DAEMON_METRICS_FILE].line,
                                "metrics_file %s is also the %s of profile '%s': it would be overwritten",
                                c->metrics_file,
                                streq_ptr(c->metrics_file, c->profiles[i]->kubeconfig) ? "kubeconfig" : "ca_file",
                                c->profiles[i]->name);
                        break;
                }
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
                profile_config_free(c->profiles[i]);
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
                problem(p, (unsigned) r, "cannot read this line");

        c = calloc(1, sizeof *c);
        if (!c || strdup_to(p, p->path, &c->path) < 0) {
                p->oom = true;
                return c;
        }

        build_daemon(p, c);

        if (p->n_profiles == 0 && !p->saw_other_header)
                problem(p, 1, "no profile is configured: add a [profile default] section with tenant = <your tenant>");
        c->profiles = calloc(MAX(p->n_profiles, 1u), sizeof *c->profiles);
        if (!c->profiles) {
                p->oom = true;
                return c;
        }
        for (size_t i = 0; i < p->n_profiles; i++) {
                const RawProfile *rp = p->profiles[i];
                bool default_token_file = streq_set(rp->name, "default") || p->n_profiles == 1;
                ProfileConfig *pc = build_profile(p, rp, default_token_file);

                if (!pc)
                        return c;
                c->profiles[c->n_profiles++] = pc;
        }
        check_outputs(p, c);
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
                problem(&p, 1, "no home directory is known: set HOME to an absolute path");

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
        return key && key_index(key, profile_keys, ELEMENTSOF(profile_keys)) >= 0;
}
