/* `aksspark-tokenctl doctor`: one line per check (ok, warn, fail) and what to do about it: the
 * configuration, the daemon's socket, the identity provider's host (name, TLS, clock), the
 * outputs, each profile's state. libcurl is loaded only here, with dlopen(), so that every other
 * command of the client stays as quick to start as it was. Talks to the network only to the
 * configured authority hosts. */
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/macro.h"
#include "base/util.h"
#include "shared/config-env.h"
#include "shared/config-load.h"
#include "shared/config.h"
#include "tokenctl/doctor.h"
#include "tokenctl/tokenctl.h"
#include "version.h"

#define SOCKET_TIMEOUT (10 * USEC_PER_SEC)
#define HTTP_CONNECT_TIMEOUT_MS 10000L
#define HTTP_TIMEOUT_MS 20000L
#define MAX_ANSWER (256 * 1024)

typedef enum Verdict {
        VERDICT_OK,
        VERDICT_WARN,
        VERDICT_FAIL,
} Verdict;

typedef struct Doctor {
        unsigned failed;
        bool daemon_answers;
        const char *socket;
} Doctor;

/* Text from files and answers, printed: keep terminal control bytes out. */
static void print_clean(const char *s) {
        for (; *s; s++)
                putchar((unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s);
}

static _printf_(4, 5) void report(Doctor *d, Verdict v, const char *what, const char *format, ...) {
        static const char *const words[] = { "ok  ", "warn", "fail" };
        _cleanup_free_ char *text = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&text, format, ap) < 0)
                text = NULL;
        va_end(ap);
        printf("%s %s: ", words[v], what);
        print_clean(text ?: "(out of memory)");
        putchar('\n');
        if (v == VERDICT_FAIL)
                d->failed++;
}

static void owner_name(uid_t uid, char *buf, size_t size) {
        struct passwd *pw = getpwuid(uid);

        if (pw && pw->pw_name)
                snprintf(buf, size, "%s (uid %u)", pw->pw_name, (unsigned) uid);
        else
                snprintf(buf, size, "uid %u", (unsigned) uid);
}

/* Who owns path, or the nearest directory above it that we may look at. */
static bool path_owner(const char *path, char *buf, size_t size) {
        _cleanup_free_ char *p = strdup(path);
        struct stat st;

        while (p && *p) {
                char *slash;

                if (stat(p, &st) >= 0) {
                        owner_name(st.st_uid, buf, size);
                        return true;
                }
                slash = strrchr(p, '/');
                if (!slash || slash == p)
                        break;
                *slash = 0;
        }
        return false;
}

/* ---- the configuration -------------------------------------------------------------------- */

static Config *check_config(Doctor *d, const TokenctlSetupArgs *a, const ConfigEnv *env) {
        _cleanup_free_ char *path = NULL;
        ConfigErrors errors = {};
        Config *c = NULL;
        struct stat st;
        int r;

        if (a->config)
                path = strdup(a->config);
        else if (config_default_path(env, &path) < 0)
                path = NULL;
        if (!path) {
                report(d, VERDICT_FAIL, "configuration", "no path for it (no home directory?): pass --config PATH");
                return NULL;
        }
        if (stat(path, &st) < 0 && errno == ENOENT) {
                report(d, VERDICT_FAIL, "configuration",
                       "there is none at %s: run `aksspark-tokenctl init` (after `az aks "
                       "get-credentials`), or pass --config PATH",
                       path);
                return NULL;
        }
        r = config_load(path, env, &c, &errors);
        if (r < 0) {
                report(d, VERDICT_FAIL, "configuration",
                       "%s%s; `aksspark-tokend --check-config%s%s` lists every problem",
                       errors.n > 0 ? errors.lines[0] : path, errors.n > 1 ? " (and more)" : "",
                       a->config ? " --config " : "", a->config ?: "");
                config_errors_clear(&errors);
                return NULL;
        }
        report(d, VERDICT_OK, "configuration", "%s parses (%zu profile%s)", path, c->n_profiles,
               c->n_profiles == 1 ? "" : "s");
        return c;
}

/* ---- the daemon ------------------------------------------------------------------------------ */

static int socket_connect(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = SOCKET_TIMEOUT / USEC_PER_SEC };
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* One request (taken over), one answer line. -errno of connect, or -EPROTO for an answer not
 * understood. */
static int daemon_request(const char *path, json_t *request, json_t **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *line = NULL, *buf = NULL;
        usec_t deadline = now_monotonic() + SOCKET_TIMEOUT;
        size_t len = 0;
        json_t *j;
        char *s;
        int r;

        s = request ? json_dumps(request, JSON_COMPACT) : NULL;
        json_decref(request);
        if (!s || asprintf(&line, "%s\n", s) < 0) {
                free(s);
                return -ENOMEM;
        }
        free(s);
        r = socket_connect(path, &fd);
        if (r < 0)
                return r;
        if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
                return -errno;
        buf = malloc(MAX_ANSWER);
        if (!buf)
                return -ENOMEM;
        while (!memchr(buf, '\n', len)) {
                usec_t now = now_monotonic();
                ssize_t n;

                if (now >= deadline)
                        return -ETIMEDOUT;
                if (len >= MAX_ANSWER)
                        return -EPROTO;
                r = poll(&(struct pollfd) { .fd = fd, .events = POLLIN }, 1,
                         (int) ((deadline - now) / USEC_PER_MSEC) + 1);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                n = read(fd, buf + len, MAX_ANSWER - len);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0)
                        return -EPROTO;
                len += (size_t) n;
        }
        j = json_loadb(buf, (size_t) ((char *) memchr(buf, '\n', len) - buf), 0, NULL);
        if (!json_is_object(j) || !json_is_boolean(json_object_get(j, "ok"))) {
                json_decref(j);
                return -EPROTO;
        }
        *ret = j;
        return 0;
}

static const char *socket_choice(const TokenctlSetupArgs *a, const Config *c) {
        struct stat st;

        if (a->socket)
                return a->socket;
        if (!getenv("AKSSPARK_TOKEND_SOCKET") && c && c->socket_path && lstat(c->socket_path, &st) >= 0)
                return c->socket_path;
        return a->default_socket;
}

static void check_daemon(Doctor *d, const char *path) {
        json_t *answer = NULL;
        char owner[128];
        int r;

        d->socket = path;
        if (!path) {
                report(d, VERDICT_FAIL, "daemon",
                       "no socket path is known (XDG_RUNTIME_DIR is not set): pass --socket PATH");
                return;
        }
        r = daemon_request(path, json_pack("{s:s}", "op", "version"), &answer);
        if (r == -ENOENT || r == -ENOTDIR) {
                report(d, VERDICT_FAIL, "daemon",
                       "not started (no socket at %s): systemctl --user enable --now "
                       "aksspark-tokend.socket (on a shared host: sudo systemctl enable --now "
                       "aksspark-tokend@$USER.socket)",
                       path);
                return;
        }
        if (r == -ECONNREFUSED) {
                report(d, VERDICT_FAIL, "daemon",
                       "nothing listens on %s (the daemon stopped?): systemctl --user restart "
                       "aksspark-tokend.socket, and see its log: journalctl --user -u aksspark-tokend",
                       path);
                return;
        }
        if (r == -EACCES || r == -EPERM) {
                report(d, VERDICT_FAIL, "daemon",
                       "someone else's socket: %s belongs to %s, not to you; start your own "
                       "(systemctl --user enable --now aksspark-tokend.socket) or pass --socket",
                       path, path_owner(path, owner, sizeof owner) ? owner : "another user");
                return;
        }
        if (r < 0) {
                report(d, VERDICT_FAIL, "daemon", "no answer on %s: %s; see the daemon's log", path, strerror(-r));
                return;
        }
        if (!json_is_true(json_object_get(answer, "ok"))) {
                const char *e = json_string_value(json_object_get(answer, "error")) ?: "?";

                if (strcmp(e, "forbidden") == 0)
                        report(d, VERDICT_FAIL, "daemon",
                               "someone else's socket: the daemon on %s (socket of %s) does "
                               "not serve you; start your own or pass --socket",
                               path, path_owner(path, owner, sizeof owner) ? owner : "another user");
                else
                        report(d, VERDICT_FAIL, "daemon", "%s answers %s: %s", path, e,
                               json_string_value(json_object_get(answer, "message")) ?: "");
                json_decref(answer);
                return;
        }
        report(d, VERDICT_OK, "daemon", "answers on %s (aksspark-tokend %s)", path,
               json_string_value(json_object_get(answer, "version")) ?: "?");
        d->daemon_answers = true;
        json_decref(answer);
}

/* ---- the identity provider's host, through libcurl loaded now ------------------------------ */

typedef struct Curl {
        void *dl;
        CURLcode (*global_init)(long flags);
        CURL *(*easy_init)(void);
        CURLcode (*easy_setopt)(CURL *e, CURLoption option, ...);
        CURLcode (*easy_perform)(CURL *e);
        CURLcode (*easy_getinfo)(CURL *e, CURLINFO info, ...);
        void (*easy_cleanup)(CURL *e);
        const char *(*easy_strerror)(CURLcode code);
} Curl;

static const char *curl_load(Curl *c) {
        static const char *const names[] = { "libcurl.so.4", "libcurl-gnutls.so.4", "libcurl.so" };

        for (size_t i = 0; i < ELEMENTSOF(names) && !c->dl; i++)
                c->dl = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!c->dl)
                return dlerror();
#define CURL_SYM(field, name)                              \
        do {                                               \
                *(void **) &c->field = dlsym(c->dl, name); \
                if (!c->field)                             \
                        return "libcurl lacks " name;      \
        } while (0)
        CURL_SYM(global_init, "curl_global_init");
        CURL_SYM(easy_init, "curl_easy_init");
        CURL_SYM(easy_setopt, "curl_easy_setopt");
        CURL_SYM(easy_perform, "curl_easy_perform");
        CURL_SYM(easy_getinfo, "curl_easy_getinfo");
        CURL_SYM(easy_cleanup, "curl_easy_cleanup");
        CURL_SYM(easy_strerror, "curl_easy_strerror");
#undef CURL_SYM
        if (c->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return "curl_global_init failed";
        return NULL;
}

typedef struct Probe {
        bool have_date;
        time_t date;
        usec_t received; /* realtime when the Date header arrived */
        char date_text[64];
} Probe;

static size_t probe_on_header(char *data, size_t size, size_t n, void *userdata) {
        Probe *p = userdata;
        size_t len = size * n;
        char line[128];

        if (len >= 5 && len < sizeof line && strncasecmp(data, "date:", 5) == 0) {
                memcpy(line, data + 5, len - 5);
                line[len - 5] = 0;
                if (doctor_parse_http_date(line, &p->date) >= 0) {
                        p->have_date = true;
                        p->received = now_realtime();
                        line[strcspn(line, "\r\n")] = 0;
                        snprintf(p->date_text, sizeof p->date_text, "%s", line + strspn(line, " \t"));
                }
        }
        return len;
}

static size_t probe_on_body(char *data, size_t size, size_t n, void *userdata) {
        return size * n; /* only the TLS handshake and the headers matter */
}

/* The host part of an authority URL, for messages. */
static void authority_host_name(const char *url, char *buf, size_t size) {
        const char *h = strstr(url, "://");

        h = h ? h + 3 : url;
        snprintf(buf, size, "%.*s", (int) strcspn(h, "/"), h);
}

static void check_authority(Doctor *d, Curl *curl, const char *curl_error, const ProfileConfig *p) {
        _cleanup_free_ char *url = NULL, *what = NULL, *clock = NULL;
        char host[256], errbuf[CURL_ERROR_SIZE] = "", ago[32];
        Probe probe = {};
        long status = 0;
        CURLcode code;
        CURL *e;

        authority_host_name(p->authority_host, host, sizeof host);
        if (asprintf(&what, "profile %s: authority", p->name) < 0 || asprintf(&clock, "profile %s: clock", p->name) < 0)
                return;
        if (curl_error) {
                report(d, VERDICT_WARN, what, "cannot check %s: libcurl does not load (%s); install libcurl4", host,
                       curl_error);
                return;
        }
        /* The discovery document: what MSAL reads first, public, and no secret goes out. */
        if (asprintf(&url, "%s/%s/v2.0/.well-known/openid-configuration", p->authority_host,
                     p->tenant ?: "organizations") < 0)
                return;
        e = curl->easy_init();
        if (!e) {
                report(d, VERDICT_WARN, what, "cannot check %s: out of memory", host);
                return;
        }
        /* As http.c sets them for the daemon's own requests: the same trust, proxies, limits. */
        (void) curl->easy_setopt(e, CURLOPT_URL, url);
        (void) curl->easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        (void) curl->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        (void) curl->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
        (void) curl->easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        (void) curl->easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        (void) curl->easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        (void) curl->easy_setopt(e, CURLOPT_USERAGENT, "aksspark-tokenctl/" PACKAGE_VERSION " (doctor)");
        (void) curl->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, HTTP_CONNECT_TIMEOUT_MS);
        (void) curl->easy_setopt(e, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
        (void) curl->easy_setopt(e, CURLOPT_HEADERFUNCTION, probe_on_header);
        (void) curl->easy_setopt(e, CURLOPT_HEADERDATA, &probe);
        (void) curl->easy_setopt(e, CURLOPT_WRITEFUNCTION, probe_on_body);
        if (p->ca_file)
                (void) curl->easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
        code = curl->easy_perform(e);
        (void) curl->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl->easy_cleanup(e);
        if (!*errbuf)
                snprintf(errbuf, sizeof errbuf, "%s", curl->easy_strerror(code));

        switch (code) {
        case CURLE_OK:
                if (strncasecmp(p->authority_host, "http://", 7) == 0)
                        report(d, VERDICT_OK, what, "%s answers (HTTP %ld; plain http, this machine only)", host,
                               status);
                else
                        report(d, VERDICT_OK, what, "%s resolves and answers TLS with a trusted certificate (HTTP %ld)",
                               host, status);
                break;
        case CURLE_COULDNT_RESOLVE_HOST:
                report(d, VERDICT_FAIL, what,
                       "%s does not resolve (%s): check the DNS servers, or set https_proxy if "
                       "this network needs a proxy",
                       host, errbuf);
                return;
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
                report(d, VERDICT_FAIL, what,
                       "cannot reach %s (%s): check the network, a firewall, or https_proxy and "
                       "no_proxy",
                       host, errbuf);
                return;
        case CURLE_PEER_FAILED_VERIFICATION:
                if (p->ca_file)
                        report(d, VERDICT_FAIL, what,
                               "%s's certificate is trusted neither by the system nor by ca_file %s "
                               "(%s): give the CA that signs it as ca_file",
                               host, p->ca_file, errbuf);
                else
                        report(d, VERDICT_FAIL, what,
                               "%s's certificate is not trusted (%s): behind a TLS-inspecting proxy, "
                               "set ca_file = <the proxy's CA, PEM> in [profile %s]",
                               host, errbuf, p->name);
                return;
        case CURLE_SSL_CACERT_BADFILE:
                report(d, VERDICT_FAIL, what, "ca_file %s cannot be read as PEM certificates (%s)", p->ca_file ?: "?",
                       errbuf);
                return;
        default:
                report(d, VERDICT_FAIL, what, "talking to %s failed: %s", host, errbuf);
                return;
        }

        if (!probe.have_date) {
                report(d, VERDICT_WARN, clock, "%s sent no Date header to compare the clock with", host);
                return;
        }
        {
                int64_t off = doctor_clock_offset(probe.received, probe.date);
                usec_t abs_off = (usec_t) (off < 0 ? -off : off);

                format_duration(ago, sizeof ago, abs_off);
                if (abs_off > DOCTOR_MAX_CLOCK_SKEW)
                        report(d, VERDICT_FAIL, clock,
                               "this machine's clock is %s %s %s's (Date: %s): set it right "
                               "(timedatectl set-ntp true); tokens look expired or not yet valid "
                               "to a clock that far off",
                               ago, off > 0 ? "ahead of" : "behind", host, probe.date_text);
                else
                        report(d, VERDICT_OK, clock, "within %s of %s's", abs_off < USEC_PER_SEC ? "1s" : ago, host);
        }
}

/* ---- outputs ----------------------------------------------------------------------------------- */

static void check_output(Doctor *d, const ProfileConfig *p, const char *key, const char *path) {
        _cleanup_free_ char *what = NULL, *target = NULL, *dir = NULL;
        struct stat st, dst;
        char owner[128];
        char *slash;
        int r;

        if (asprintf(&what, "profile %s: %s", p->name, key) < 0)
                return;
        if (lstat(path, &st) >= 0 && S_ISLNK(st.st_mode)) {
                _cleanup_free_ char *linkdir = strdup(path);

                if (!linkdir)
                        return;
                slash = strrchr(linkdir, '/');
                if (slash)
                        *(slash == linkdir ? slash + 1 : slash) = 0;
                if (stat(linkdir, &dst) >= 0 && doctor_link_refused(st.st_uid, dst.st_uid, dst.st_mode, geteuid())) {
                        owner_name(st.st_uid, owner, sizeof owner);
                        report(d, VERDICT_FAIL, what,
                               "%s is a link owned by %s in the sticky, world-writable %s: the "
                               "daemon will not follow it (as fs.protected_symlinks); remove it, or "
                               "point %s at a path of your own",
                               path, owner, linkdir, key);
                        return;
                }
        }
        r = atomic_resolve_target(path, &target);
        if (r < 0) {
                report(d, VERDICT_FAIL, what, "%s: %s", path, strerror(-r));
                return;
        }
        if (stat(target, &st) >= 0 && !S_ISREG(st.st_mode)) {
                report(d, VERDICT_FAIL, what, "%s is %s, not a file: point %s at a file", target,
                       S_ISDIR(st.st_mode) ? "a directory" : "no regular file", key);
                return;
        }

        /* The temp file goes into the target's directory; a missing one is created (0700) below
         * the nearest that exists, so that one must be writable. */
        dir = strdup(target);
        if (!dir)
                return;
        for (;;) {
                slash = strrchr(dir, '/');
                if (!slash)
                        break;
                *(slash == dir ? slash + 1 : slash) = 0;
                if (stat(dir, &dst) >= 0 || slash == dir)
                        break;
        }
        if (stat(dir, &dst) < 0 || !S_ISDIR(dst.st_mode)) {
                report(d, VERDICT_FAIL, what, "%s: %s is no directory", path, dir);
                return;
        }
        if (access(dir, W_OK | X_OK) < 0) {
                owner_name(dst.st_uid, owner, sizeof owner);
                report(d, VERDICT_FAIL, what,
                       "%s cannot be written: its directory %s (owned by %s, mode %04o) is not "
                       "writable by you (%s); choose a directory of your own or fix its rights",
                       path, dir, owner, (unsigned) (dst.st_mode & 07777), strerror(errno));
                return;
        }
        report(d, VERDICT_OK, what, "%s can be written%s", path,
               strcmp(target, path) != 0 ? " (through its link)" : "");
}

static void check_outputs(Doctor *d, const ProfileConfig *p) {
        if (p->token_file)
                check_output(d, p, "token_file", p->token_file);
        for (size_t i = 0; i < p->n_spark_properties; i++)
                check_output(d, p, "spark_properties", p->spark_properties[i]);
}

/* ---- the profile's state ------------------------------------------------------------------------ */

/* Which state_protection the daemon has in force (auto's choice), from its status answer. */
static void check_protection(Doctor *d, const ProfileConfig *p, json_t *store) {
        _cleanup_free_ char *what = NULL;
        const char *protection = json_string_value(json_object_get(store, "protection"));

        if (asprintf(&what, "profile %s: state protection", p->name) < 0)
                return;
        if (!protection)
                report(d, VERDICT_WARN, what, "unknown: the daemon does not say (an older version?)");
        else if (strcmp(protection, "none") == 0)
                report(d, VERDICT_WARN, what,
                       "none: the refresh token lies in clear in the state directory (mode 0600); a backup or "
                       "a copy of the disk carries it. Load a state-key credential (the jump-host unit does) or "
                       "unlock the session's keyring, see aksspark-tokend.conf(5) state_protection");
        else if (json_is_true(json_object_get(store, "key_missing")))
                report(d, VERDICT_FAIL, what,
                       "%s, but its key cannot be had: the sign-in is neither read nor saved (see the daemon's log)",
                       protection);
        else
                report(d, VERDICT_OK, what, "%s: the refresh token is sealed (AES-256-GCM)", protection);
}

static void check_state(Doctor *d, const ProfileConfig *p) {
        _cleanup_free_ char *what = NULL;
        json_t *a = NULL;
        const char *state, *account, *last_error;
        json_t *left;
        char dur[32];
        int r;

        if (asprintf(&what, "profile %s: state", p->name) < 0)
                return;
        if (!d->daemon_answers) {
                report(d, VERDICT_WARN, what, "unknown: the daemon does not answer (see above)");
                return;
        }
        r = daemon_request(d->socket, json_pack("{s:s, s:s}", "op", "status", "profile", p->name), &a);
        if (r < 0) {
                report(d, VERDICT_FAIL, what, "the daemon gave no status: %s", strerror(-r));
                return;
        }
        if (!json_is_true(json_object_get(a, "ok"))) {
                report(d, VERDICT_FAIL, what,
                       "%s (the running daemon may have an older configuration: "
                       "aksspark-tokenctl reload)",
                       json_string_value(json_object_get(a, "message")) ?: "no status");
                json_decref(a);
                return;
        }
        state = json_string_value(json_object_get(a, "state")) ?: "?";
        account = json_string_value(json_object_get(a, "account"));
        last_error = json_string_value(json_object_get(a, "last_error"));
        left = json_object_get(a, "expires_in");
        if (json_is_integer(left))
                format_duration(dur, sizeof dur, (usec_t) MAX(json_integer_value(left), 0) * USEC_PER_SEC);
        else
                strcpy(dur, "no token");

        if (strcmp(state, "valid") == 0 || strcmp(state, "refreshing") == 0)
                report(d, VERDICT_OK, what, "%s%s%s, %s left", state, account ? ", signed in as " : "", account ?: "",
                       dur);
        else if (strcmp(state, "login_required") == 0)
                report(d, VERDICT_FAIL, what, "a person must sign in%s%s%s: aksspark-tokenctl%s%s login",
                       last_error ? " (" : "", last_error ?: "", last_error ? ")" : "",
                       strcmp(p->name, "default") == 0 ? "" : " --profile ",
                       strcmp(p->name, "default") == 0 ? "" : p->name);
        else
                report(d, VERDICT_FAIL, what,
                       "%s (%s left)%s%s: see `aksspark-tokenctl --profile %s status` and the "
                       "daemon's log",
                       state, dur, last_error ? ": " : "", last_error ?: "", p->name);
        check_protection(d, p, json_object_get(a, "store"));
        json_decref(a);
}

int tokenctl_doctor(const TokenctlSetupArgs *a) {
        _cleanup_free_ char *home = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        Doctor d = {};
        Curl curl = {};
        const char *curl_error = NULL;
        ConfigEnv env;
        bool curl_tried = false;
        int r;

        r = config_env_from_process(&env, &home);
        if (r < 0) {
                report(&d, VERDICT_FAIL, "configuration", "no home directory is known: %s", strerror(-r));
                return 1;
        }
        config = check_config(&d, a, &env);
        check_daemon(&d, socket_choice(a, config));

        if (config && a->profile && !config_find_profile(config, a->profile))
                report(&d, VERDICT_FAIL, "profile", "there is no profile %s in the configuration", a->profile);
        for (size_t i = 0; config && i < config->n_profiles; i++) {
                const ProfileConfig *p = config->profiles[i];

                if (a->profile && strcmp(a->profile, p->name) != 0)
                        continue;
                if (!curl_tried) {
                        curl_error = curl_load(&curl);
                        curl_tried = true;
                }
                check_authority(&d, &curl, curl_error, p);
                check_outputs(&d, p);
                check_state(&d, p);
        }
        fflush(stdout);
        return d.failed > 0 ? 1 : 0;
}
