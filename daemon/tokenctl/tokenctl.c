/* aksspark-tokenctl: the client of aksspark-tokend's socket. Links jansson and the pure helpers
 * only (no curl, no OpenSSL, no sd-event), so a call costs about a process spawn. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <malloc.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/json-wipe.h"
#include "base/macro.h"
#include "base/secret.h"
#include "base/util.h"
#include "shared/protocol.h"
#include "tokenctl/tokenctl.h"
#include "version.h"

#define CONNECT_TIMEOUT (10 * USEC_PER_SEC)
/* The daemon answers these from memory; longer means it is stuck. */
#define QUICK_TIMEOUT (30 * USEC_PER_SEC)
/* Until the device message: one HTTP exchange at the daemon. */
#define LOGIN_START_TIMEOUT (90 * USEC_PER_SEC)
#define MAX_ANSWER (1024 * 1024)

static const char *arg_socket = NULL;
static const char *arg_profile = NULL;
static bool arg_json = false;
static usec_t arg_min_valid = 5 * USEC_PER_MINUTE;
static TokenctlSetupArgs arg_setup = {};
static const char *arg_api_version = NULL;
static const char *arg_login_method = NULL; /* "browser" or "device_code" for one sign-in */
static char **arg_run_command = NULL;       /* run: what follows "--" */
static bool arg_min_valid_given = false;

/* ---- messages ------------------------------------------------------------------------------- */

int tokenctl_fail(int status, const char *format, ...) {
        va_list ap;

        fputs("aksspark-tokenctl: ", stderr);
        va_start(ap, format);
        vfprintf(stderr, format, ap);
        va_end(ap);
        fputc('\n', stderr);
        return status;
}

static void help(void) {
        printf("Usage: aksspark-tokenctl [--socket PATH] [--profile NAME] COMMAND [OPTIONS]\n"
               "\n"
               "Talks to aksspark-tokend, which keeps an Azure AD access token for Spark on AKS fresh.\n"
               "\n"
               "Commands:\n"
               "  status [--json]          state, account, time left, next refresh, outputs\n"
               "  token                    print the access token\n"
               "  refresh                  refresh the token now and wait for the result\n"
               "  login [--browser|--device-code]\n"
               "                           sign in (as the profile's auth says, or as chosen for this\n"
               "                           once): prints the device code, or the URL to open\n"
               "  check [--min-valid DUR]  succeed if the token stays valid DUR (default 5m) and every\n"
               "                           output is written; refresh first if needed\n"
               "  run [--min-valid DUR] -- COMMAND [ARG...]\n"
               "                           check (default 15m), then run COMMAND with KUBECONFIG and\n"
               "                           AKSSPARK_TOKEN_FILE set to the profile's outputs\n"
               "  exec-credential [--api-version V]\n"
               "                           print a Kubernetes ExecCredential (a kubeconfig exec plugin)\n"
               "  logout                   make the daemon forget the refresh token\n"
               "  profiles                 list the profiles with their state\n"
               "  reload                   make the daemon re-read its configuration (as SIGHUP does)\n"
               "  init [--kubeconfig PATH] [--context NAME]... [--force]  write the configuration from\n"
               "                           the kubeconfig of `az aks get-credentials` (no daemon needed)\n"
               "  doctor                   check configuration, daemon, identity provider, outputs, state\n"
               "  metrics                  print the daemon's metrics (Prometheus text format)\n"
               "\n"
               "Options:\n"
               "  -s, --socket PATH    the daemon's socket (default: $AKSSPARK_TOKEND_SOCKET, else\n"
               "                       $XDG_RUNTIME_DIR/aksspark-tokend.sock, else\n"
               "                       /run/aksspark-tokend/$USER.sock when that exists)\n"
               "  -p, --profile NAME   the profile (default: 'default', or the only one)\n"
               "  --json               print the daemon's answer as it came (status, profiles,\n"
               "                       refresh, check, logout, reload, metrics)\n"
               "  --min-valid DUR      for check and run: 90s, 15m, 1h (default 5m; run: 15m)\n"
               "  -c, --config PATH    for init and doctor (default ~/.config/aksspark-tokend/config.ini)\n"
               "  --api-version V      for exec-credential: client.authentication.k8s.io/v1 or\n"
               "                       .../v1beta1 (default: KUBERNETES_EXEC_INFO's, else v1beta1)\n"
               "  --browser, --device-code\n"
               "                       for login: sign in in a browser, or with a device code\n"
               "  -h, --help           show this help\n"
               "  --version            show the version\n"
               "\n"
               "Exit status: 0 success, 1 no token now (transient; see status), 2 a person must sign\n"
               "in (aksspark-tokenctl login), 3 daemon unreachable or not yours, 64 usage error.\n");
}

/* ---- memory that held a token ------------------------------------------------------------------ */

int tokenctl_write_line(int fd, const char *s) {
        int r = write_all(fd, s, strlen(s));

        return r < 0 ? r : write_all(fd, "\n", 1);
}

/* ---- the socket ------------------------------------------------------------------------------- */

static char *default_socket_path(void) {
        const char *e = getenv("AKSSPARK_TOKEND_SOCKET");
        const char *runtime = getenv("XDG_RUNTIME_DIR");
        char *workstation = NULL, *shared = NULL;
        struct passwd *pw;
        struct stat st;

        if (e && *e)
                return strdup(e);

        if (runtime && runtime[0] == '/')
                (void) asprintf(&workstation, "%s/aksspark-tokend.sock", runtime);
        else
                (void) asprintf(&workstation, "/run/user/%u/aksspark-tokend.sock", (unsigned) getuid());

        /* A shared jump host runs aksspark-tokend@USER with its socket in /run/aksspark-tokend. */
        pw = getpwuid(getuid());
        if (workstation && lstat(workstation, &st) < 0 && pw && pw->pw_name &&
            asprintf(&shared, "/run/aksspark-tokend/%s.sock", pw->pw_name) >= 0 && lstat(shared, &st) >= 0) {
                free(workstation);
                return shared;
        }
        free(shared);
        return workstation;
}

static const char *socket_owner(const char *path, char *buf, size_t size) {
        struct stat st;
        struct passwd *pw;

        if (stat(path, &st) < 0)
                return NULL;
        pw = getpwuid(st.st_uid);
        if (pw && pw->pw_name)
                snprintf(buf, size, "%s (uid %u)", pw->pw_name, (unsigned) st.st_uid);
        else
                snprintf(buf, size, "uid %u", (unsigned) st.st_uid);
        return buf;
}

void tokenctl_client_done(TokenctlClient *c) {
        safe_close(c->fd);
        erase_and_free(c->buf, c->cap);
        *c = (TokenctlClient) { .fd = -EBADF };
}

/* Returns 0, or the exit status after saying what is wrong. */
int tokenctl_client_connect(TokenctlClient *c, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = CONNECT_TIMEOUT / USEC_PER_SEC };
        char owner[128];

        *c = (TokenctlClient) { .fd = -EBADF, .path = path };
        if (strlen(path) >= sizeof sa.sun_path)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "the socket path %s is too long.", path);
        strcpy(sa.sun_path, path);

        c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot create a socket: %s", strerror(errno));
        /* A blocking connect waits while the daemon's backlog is full; bound the wait. */
        (void) setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(c->fd, (struct sockaddr *) &sa, sizeof sa) >= 0)
                return 0;

        switch (errno) {
        case ENOENT:
        case ECONNREFUSED:
        case ENOTDIR:
                return tokenctl_fail(TOKENCTL_EXIT_UNREACHABLE,
                                     "aksspark-tokend is not running (%s at %s). Start it: systemctl --user start "
                                     "aksspark-tokend.socket (on a shared host: sudo systemctl start "
                                     "aksspark-tokend@$USER.socket), or pass --socket.",
                                     errno == ECONNREFUSED ? "nothing listens" : "no socket", path);
        case EACCES:
        case EPERM:
                if (socket_owner(path, owner, sizeof owner))
                        return tokenctl_fail(
                                TOKENCTL_EXIT_UNREACHABLE,
                                "permission denied: the socket %s belongs to %s; use your own daemon's socket.", path,
                                owner);
                return tokenctl_fail(TOKENCTL_EXIT_UNREACHABLE,
                                     "permission denied on %s; use your own daemon's socket.", path);
        case EAGAIN:
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT,
                                     "aksspark-tokend at %s is too busy to accept a connection; try again.", path);
        default:
                return tokenctl_fail(TOKENCTL_EXIT_UNREACHABLE, "cannot connect to aksspark-tokend at %s: %s", path,
                                     strerror(errno));
        }
}

static int client_send(TokenctlClient *c, const char *data) {
        size_t len = strlen(data);

        while (len > 0) {
                ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* The daemon may have answered and closed already (a refusal): that
                         * answer is what to show, so go on to read it. */
                        if (errno == EPIPE || errno == ECONNRESET)
                                return 0;
                        return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot send the request to aksspark-tokend: %s",
                                             strerror(errno));
                }
                data += n;
                len -= (size_t) n;
        }
        return 0;
}

int tokenctl_client_send_request(TokenctlClient *c, RequestOp op, bool with_min_valid, usec_t min_valid) {
        _cleanup_free_ char *line = NULL;
        json_t *o = json_pack("{s:s}", "op", request_op_to_string(op));
        char *s;

        if (!o)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "out of memory");
        if (arg_profile)
                json_object_set_new(o, "profile", json_string(arg_profile));
        if (op == OP_LOGIN && arg_login_method)
                json_object_set_new(o, "method", json_string(arg_login_method));
        if (with_min_valid)
                json_object_set_new(o, "min_valid",
                                    json_integer((json_int_t) ((min_valid + USEC_PER_SEC - 1) / USEC_PER_SEC)));
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s || asprintf(&line, "%s\n", s) < 0) {
                free(s);
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "out of memory");
        }
        free(s);
        return client_send(c, line);
}

/* Read one answer line before deadline (monotonic). *ret_line points into the client's buffer
 * and stays valid until the next read. */
static int client_read_line(TokenctlClient *c, usec_t deadline, const char **ret_line, size_t *ret_len) {
        if (c->consumed > 0) {
                memmove(c->buf, c->buf + c->consumed, c->len - c->consumed);
                explicit_bzero(c->buf + c->len - c->consumed, c->consumed);
                c->len -= c->consumed;
                c->consumed = 0;
        }

        for (;;) {
                char *nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL;
                usec_t now;
                ssize_t n;
                int r;

                if (nl) {
                        c->consumed = (size_t) (nl - c->buf) + 1;
                        *nl = 0;
                        *ret_line = c->buf;
                        *ret_len = (size_t) (nl - c->buf);
                        return 0;
                }
                if (c->len >= MAX_ANSWER)
                        return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "the answer of aksspark-tokend is too long.");
                if (c->cap - c->len < 4096) {
                        size_t cap = MAX(c->cap * 2, (size_t) 16384);
                        char *b = malloc(cap);
                        if (!b)
                                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "out of memory");
                        if (c->len > 0)
                                memcpy(b, c->buf, c->len);
                        erase_and_free(c->buf, c->cap);
                        c->buf = b;
                        c->cap = cap;
                }

                now = now_monotonic();
                if (now >= deadline)
                        return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT,
                                             "no answer from aksspark-tokend within the time limit; see "
                                             "`aksspark-tokenctl status` and the daemon's log.");
                r = poll(&(struct pollfd) { .fd = c->fd, .events = POLLIN }, 1,
                         (int) MIN((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC, (usec_t) INT32_MAX));
                if (r < 0 && errno != EINTR)
                        return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot wait for aksspark-tokend: %s",
                                             strerror(errno));
                if (r <= 0)
                        continue;
                n = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (n < 0 && errno == ECONNRESET)
                        n = 0;
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot read the answer of aksspark-tokend: %s",
                                             strerror(errno));
                }
                if (n == 0)
                        return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT,
                                             "aksspark-tokend closed the connection without an answer; see its log.");
                c->len += (size_t) n;
        }
}

int tokenctl_client_read_answer(TokenctlClient *c, usec_t deadline, json_t **ret, const char **ret_raw) {
        const char *line = NULL;
        size_t len = 0;
        json_error_t error;
        json_t *j;
        int r;

        r = client_read_line(c, deadline, &line, &len);
        if (r != 0)
                return r;
        j = json_loadb(line, len, 0, &error);
        if (!j || !json_is_object(j) || !json_is_boolean(json_object_get(j, "ok"))) {
                json_decref(j);
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT,
                                     "aksspark-tokend gave an answer this client does not understand.");
        }
        *ret = j;
        if (ret_raw)
                *ret_raw = line;
        return 0;
}

/* ---- answers ------------------------------------------------------------------------------------ */

const char *tokenctl_get_string(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

bool tokenctl_get_time(json_t *o, const char *key, usec_t *ret) {
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) <= 0)
                return false;
        *ret = (usec_t) json_integer_value(v) * USEC_PER_SEC;
        return true;
}

/* An error answer: its message on stderr, and the exit status for its code. */
int tokenctl_answer_error(json_t *answer) {
        const char *code = tokenctl_get_string(answer, "error");
        const char *message = tokenctl_get_string(answer, "message");
        ErrorCode e = error_code_from_string(code);

        tokenctl_fail(0, "%s", message ?: code ?: "the daemon refused the request");
        if (e < 0)
                return TOKENCTL_EXIT_TRANSIENT;
        return error_code_exit_status(e);
}

/* "10:45:12" today, else "2026-11-27 10:45". */
static const char *format_clock(char *buf, size_t size, usec_t t) {
        time_t s = (time_t) (t / USEC_PER_SEC), now = time(NULL);
        struct tm tm, tm_now;

        if (!localtime_r(&s, &tm) || !localtime_r(&now, &tm_now))
                snprintf(buf, size, "?");
        else if (tm.tm_year == tm_now.tm_year && tm.tm_yday == tm_now.tm_yday)
                strftime(buf, size, "%H:%M:%S", &tm);
        else
                strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
        return buf;
}

/* "in 41m (10:45:12)" or "12m ago (10:05:01)". */
static const char *format_when(char *buf, size_t size, usec_t t, usec_t now) {
        char d[32], clock[32];

        format_clock(clock, sizeof clock, t);
        if (t >= now)
                snprintf(buf, size, "in %s (%s)", format_duration(d, sizeof d, t - now), clock);
        else
                snprintf(buf, size, "%s ago (%s)", format_duration(d, sizeof d, now - t), clock);
        return buf;
}

static void print_status(json_t *a) {
        usec_t now = now_realtime(), t;
        const char *s;
        char buf[128], d[32];
        json_t *outputs = json_object_get(a, "outputs");

        printf("Profile:      %s\n", tokenctl_get_string(a, "profile") ?: "?");
        printf("State:        %s\n", tokenctl_get_string(a, "state") ?: "?");
        printf("Account:      %s\n", tokenctl_get_string(a, "account") ?: "-");
        if ((s = tokenctl_get_string(a, "tenant")))
                printf("Tenant:       %s\n", s);
        if (tokenctl_get_time(a, "expires_on", &t)) {
                char clock[32];
                if (t > now)
                        printf("Token:        valid for %s (until %s)\n", format_duration(d, sizeof d, t - now),
                               format_clock(clock, sizeof clock, t));
                else
                        printf("Token:        expired %s ago (%s)\n", format_duration(d, sizeof d, now - t),
                               format_clock(clock, sizeof clock, t));
        } else
                printf("Token:        none\n");
        if (tokenctl_get_time(a, "next_refresh", &t))
                printf("Next refresh: %s\n", t <= now ? "now" : format_when(buf, sizeof buf, t, now));
        else
                printf("Next refresh: %s\n",
                       strcmp(tokenctl_get_string(a, "state") ?: "", "refreshing") == 0 ? "running now" : "-");
        if (tokenctl_get_time(a, "last_refresh", &t))
                printf("Last refresh: %s\n", format_when(buf, sizeof buf, t, now));
        printf("Last error:   %s\n", tokenctl_get_string(a, "last_error") ?: "none");

        for (size_t i = 0; i < json_array_size(outputs); i++) {
                json_t *o = json_array_get(outputs, i);
                json_t *ok = json_object_get(o, "ok");
                const char *result;

                if (json_is_true(ok))
                        result = "ok     ";
                else if (json_is_false(ok))
                        result = "FAILED ";
                else
                        result = "pending";
                printf("%s %s %s (%s", i == 0 ? "Outputs:     " : "             ", result,
                       tokenctl_get_string(o, "path") ?: "?", tokenctl_get_string(o, "kind") ?: "?");
                if (tokenctl_get_time(o, "last_write", &t))
                        printf(", %s %s ago", json_is_true(ok) ? "written" : "tried",
                               format_duration(d, sizeof d, now - MIN(t, now)));
                printf(")%s%s\n", json_is_false(ok) ? ": " : "",
                       json_is_false(ok) ? tokenctl_get_string(o, "error") ?: "failed" : "");
        }
        if (json_array_size(outputs) == 0)
                printf("Outputs:      none\n");
        if (json_is_false(json_object_get(json_object_get(a, "store"), "ok")))
                printf("State store:  FAILED: %s (a restart now would need a new sign-in; retrying)\n",
                       tokenctl_get_string(json_object_get(a, "store"), "error") ?: "failed");
        if ((s = tokenctl_get_string(a, "device_message")))
                printf("Sign-in:      %s\n", s);
}

/* status's exit: 0 while the token is valid, 2 when a person must sign in, else 1. */
static int status_exit(json_t *a) {
        json_t *in = json_object_get(a, "expires_in");
        const char *state = tokenctl_get_string(a, "state");

        if (json_is_integer(in) && json_integer_value(in) > 0 && !(state && strcmp(state, "login_required") == 0))
                return 0;
        if (state && strcmp(state, "login_required") == 0)
                return TOKENCTL_EXIT_LOGIN;
        return TOKENCTL_EXIT_TRANSIENT;
}

static void print_short_state(json_t *a) {
        usec_t now = now_realtime(), t;
        char d[32];

        if (tokenctl_get_time(a, "expires_on", &t) && t > now &&
            strcmp(tokenctl_get_string(a, "state") ?: "", "valid") == 0)
                printf("%s: valid for %s\n", tokenctl_get_string(a, "profile") ?: "?",
                       format_duration(d, sizeof d, t - now));
        else if (tokenctl_get_time(a, "expires_on", &t) && t > now)
                printf("%s: %s, the token is valid for %s\n", tokenctl_get_string(a, "profile") ?: "?",
                       tokenctl_get_string(a, "state") ?: "?", format_duration(d, sizeof d, t - now));
        else
                printf("%s: %s\n", tokenctl_get_string(a, "profile") ?: "?", tokenctl_get_string(a, "state") ?: "?");
}

/* ---- commands ------------------------------------------------------------------------------------ */

/* The exit status of a failed answer; with --json its raw line was printed already. */
static int answer_failed(json_t *a) {
        if (arg_json)
                return error_code_exit_status(error_code_from_string(tokenctl_get_string(a, "error")));
        return tokenctl_answer_error(a);
}

/* One request, one answer: the answer (ok or not) in *ret, and its raw line printed for --json. */
static int simple_request(const char *path, RequestOp op, bool with_min_valid, usec_t min_valid, usec_t timeout,
                          json_t **ret) {
        _cleanup_(tokenctl_client_done) TokenctlClient c = { .fd = -EBADF };
        const char *raw = NULL;
        int r;

        r = tokenctl_client_connect(&c, path);
        if (r != 0)
                return r;
        r = tokenctl_client_send_request(&c, op, with_min_valid, min_valid);
        if (r != 0)
                return r;
        r = tokenctl_client_read_answer(&c, now_monotonic() + timeout, ret, &raw);
        if (r != 0)
                return r;
        if (arg_json)
                printf("%s\n", raw);
        return 0;
}

static int cmd_status(const char *path) {
        json_t *a = NULL;
        int r = simple_request(path, OP_STATUS, false, 0, QUICK_TIMEOUT, &a);

        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok")))
                r = answer_failed(a);
        else {
                if (!arg_json)
                        print_status(a);
                r = status_exit(a);
        }
        json_decref(a);
        return r;
}

static int cmd_profiles(const char *path) {
        json_t *a = NULL, *list;
        usec_t now = now_realtime();
        int r = simple_request(path, OP_PROFILES, false, 0, QUICK_TIMEOUT, &a);
        int width = 4;

        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok"))) {
                r = answer_failed(a);
                json_decref(a);
                return r;
        }
        list = json_object_get(a, "profiles");
        for (size_t i = 0; i < json_array_size(list); i++)
                width = MAX(width, (int) strlen(tokenctl_get_string(json_array_get(list, i), "name") ?: ""));
        for (size_t i = 0; !arg_json && i < json_array_size(list); i++) {
                json_t *p = json_array_get(list, i);
                char left[48] = "-", d[32];
                usec_t t;

                if (tokenctl_get_time(p, "expires_on", &t))
                        snprintf(left, sizeof left, t > now ? "%s left" : "expired",
                                 format_duration(d, sizeof d, t - MIN(t, now)));
                printf("%-*s  %-14s  %-12s  %s\n", width, tokenctl_get_string(p, "name") ?: "?",
                       tokenctl_get_string(p, "state") ?: "?", left, tokenctl_get_string(p, "account") ?: "-");
        }
        json_decref(a);
        return 0;
}

/* One request, one answer: a failure's exit code, or the answer printed for a person. */
static int request_and_print(const char *path, RequestOp op, bool with_min_valid, usec_t timeout,
                             void (*print)(json_t *answer)) {
        json_t *a = NULL;
        int r = simple_request(path, op, with_min_valid, arg_min_valid, timeout, &a);

        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok")))
                r = answer_failed(a);
        else if (!arg_json)
                print(a);
        json_decref(a);
        return r;
}

static void print_signed_out(json_t *a) {
        printf("Signed out of profile %s: the daemon forgot the refresh token.\n",
               tokenctl_get_string(a, "profile") ?: "?");
}

static void print_reloaded(json_t *a) {
        printf("The daemon re-read its configuration.\n");
}

static int cmd_refresh(const char *path) {
        return request_and_print(path, OP_REFRESH, false, TOKENCTL_WAIT_TIMEOUT, print_short_state);
}

static int cmd_check(const char *path) {
        return request_and_print(path, OP_CHECK, true, TOKENCTL_WAIT_TIMEOUT, print_short_state);
}

static int cmd_logout(const char *path) {
        return request_and_print(path, OP_LOGOUT, false, QUICK_TIMEOUT, print_signed_out);
}

/* The exposition text as the daemon made it, for a person or a script (curl-like). */
static int cmd_metrics(const char *path) {
        json_t *a = NULL;
        const char *text;
        int r = simple_request(path, OP_METRICS, false, 0, QUICK_TIMEOUT, &a);

        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok")))
                r = answer_failed(a);
        else if (!arg_json) {
                text = tokenctl_get_string(a, "metrics");
                if (!text)
                        r = tokenctl_fail(TOKENCTL_EXIT_TRANSIENT,
                                          "aksspark-tokend gave an answer this client does not understand.");
                else if ((r = write_all(STDOUT_FILENO, text, strlen(text))) < 0)
                        r = tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot write to standard output: %s", strerror(-r));
        }
        json_decref(a);
        return r;
}

/* A person on a shared host cannot reload the system unit; the socket op is their way. */
static int cmd_reload(const char *path) {
        return request_and_print(path, OP_RELOAD, false, QUICK_TIMEOUT, print_reloaded);
}

/* With a desktop session, hand the URL to xdg-open as well; never wait for it. */
static void open_in_browser(const char *url) {
        const char *display = getenv("DISPLAY"), *wayland = getenv("WAYLAND_DISPLAY");
        pid_t pid;

        if (!(display && *display) && !(wayland && *wayland))
                return;
        pid = fork();
        if (pid < 0)
                return;
        if (pid == 0) {
                /* a grandchild, so that nobody has to reap it and it outlives nothing */
                if (fork() == 0) {
                        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                        if (null >= 0) {
                                (void) dup2(null, STDIN_FILENO);
                                (void) dup2(null, STDOUT_FILENO);
                                (void) dup2(null, STDERR_FILENO);
                        }
                        execlp("xdg-open", "xdg-open", url, (char *) NULL);
                }
                _exit(0);
        }
        (void) waitpid(pid, NULL, 0);
}

static int cmd_login(const char *path) {
        _cleanup_(tokenctl_client_done) TokenctlClient c = { .fd = -EBADF };
        json_t *a = NULL;
        json_t *expires_in;
        usec_t deadline;
        int r;

        r = tokenctl_client_connect(&c, path);
        if (r != 0)
                return r;
        r = tokenctl_client_send_request(&c, OP_LOGIN, false, 0);
        if (r != 0)
                return r;
        r = tokenctl_client_read_answer(&c, now_monotonic() + LOGIN_START_TIMEOUT, &a, NULL);
        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok"))) {
                r = tokenctl_answer_error(a);
                json_decref(a);
                return r;
        }

        if (tokenctl_get_string(a, "user_code") || tokenctl_get_string(a, "authorize_url")) {
                const char *url = tokenctl_get_string(a, "authorize_url");

                printf("%s\n", tokenctl_get_string(a, "device_message") ?: tokenctl_get_string(a, "user_code") ?: url);
                fflush(stdout);
                if (url)
                        open_in_browser(url);
                expires_in = json_object_get(a, "expires_in");
                deadline = now_monotonic() + 60 * USEC_PER_SEC +
                           (json_is_integer(expires_in) && json_integer_value(expires_in) > 0
                                    ? (usec_t) MIN(json_integer_value(expires_in), (json_int_t) 86400) * USEC_PER_SEC
                                    : 900 * USEC_PER_SEC);
                json_decref(a);
                a = NULL;
                r = tokenctl_client_read_answer(&c, deadline, &a, NULL);
                if (r != 0)
                        return r;
                if (!json_is_true(json_object_get(a, "ok"))) {
                        r = tokenctl_answer_error(a);
                        json_decref(a);
                        return r;
                }
        }

        {
                usec_t t, now = now_realtime();
                char d[32];
                const char *account = tokenctl_get_string(a, "account");

                if (tokenctl_get_time(a, "expires_on", &t) && t > now)
                        printf("Signed in%s%s (profile %s); the token is valid for %s.\n", account ? " as " : "",
                               account ?: "", tokenctl_get_string(a, "profile") ?: "?",
                               format_duration(d, sizeof d, t - now));
                else
                        printf("Signed in (profile %s).\n", tokenctl_get_string(a, "profile") ?: "?");
        }
        json_decref(a);
        return 0;
}

/* ---- arguments ---------------------------------------------------------------------------------- */

typedef struct Command {
        const char *name;
        int (*run)(const char *path);
        bool json;      /* --json allowed */
        bool min_valid; /* --min-valid allowed */
} Command;

static int cmd_token(const char *path) {
        return tokenctl_token(path);
}

static int cmd_exec_credential(const char *path) {
        return tokenctl_exec_credential(path, arg_api_version);
}

static int cmd_init(const char *path) {
        return tokenctl_init(&arg_setup);
}

static int cmd_doctor(const char *path) {
        arg_setup.socket = arg_socket;
        arg_setup.default_socket = path;
        arg_setup.profile = arg_profile;
        return tokenctl_doctor(&arg_setup);
}

static int cmd_run(const char *path) {
        return tokenctl_run(path, arg_min_valid_given ? arg_min_valid : TOKENCTL_RUN_MIN_VALID, arg_run_command);
}

static const Command commands[] = {
        { "status", cmd_status, true, false },   { "token", cmd_token, false, false },
        { "refresh", cmd_refresh, true, false }, { "login", cmd_login, false, false },
        { "check", cmd_check, true, true },      { "exec-credential", cmd_exec_credential, false, false },
        { "logout", cmd_logout, true, false },   { "profiles", cmd_profiles, true, false },
        { "reload", cmd_reload, true, false },   { "init", cmd_init, false, false },
        { "doctor", cmd_doctor, false, false },  { "metrics", cmd_metrics, true, false },
        { "run", cmd_run, false, true },
};

int main(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_JSON, ARG_MIN_VALID, ARG_API_VERSION, ARG_BROWSER, ARG_DEVICE_CODE };
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },
                { "profile", required_argument, NULL, 'p' },
                { "json", no_argument, NULL, ARG_JSON },
                { "min-valid", required_argument, NULL, ARG_MIN_VALID },
                { "config", required_argument, NULL, 'c' },
                /* Long only: 'k', 'x', 'f' are not in the short options. */
                { "kubeconfig", required_argument, NULL, 'k' },
                { "context", required_argument, NULL, 'x' },
                { "force", no_argument, NULL, 'f' },
                { "api-version", required_argument, NULL, ARG_API_VERSION },
                { "browser", no_argument, NULL, ARG_BROWSER },
                { "device-code", no_argument, NULL, ARG_DEVICE_CODE },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        _cleanup_free_ char *default_path = NULL;
        const Command *command = NULL;
        bool min_valid_given = false, init_given = false;
        int c, r;

        /* jansson copies every string it parses; with this free() the copies of a token are wiped too. */
        json_set_alloc_funcs(malloc, json_wiping_free);
        /* Without a seed jansson opens and reads /dev/urandom for one: three system calls on
         * every run, to guard hash tables against collisions in input we get from our own
         * daemon only. */
        json_object_seed((size_t) (now_monotonic() ^ ((uint64_t) getpid() << 32)) | 1);

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":s:p:c:h", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        arg_socket = optarg;
                        break;
                case 'p':
                        arg_profile = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_MIN_VALID:
                        r = parse_duration(optarg, &arg_min_valid);
                        if (r < 0)
                                return tokenctl_fail(TOKENCTL_EXIT_USAGE,
                                                     "--min-valid: '%s' is not a duration (examples: 90s, 15m, 1h).",
                                                     optarg);
                        min_valid_given = true;
                        break;
                case 'c':
                case 'k':
                case 'x':
                case 'f':
                        if (tokenctl_setup_option(&arg_setup, (char) c, optarg) < 0)
                                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--context: at most %d of them.",
                                                     TOKENCTL_MAX_CONTEXTS);
                        init_given = true;
                        break;
                case ARG_API_VERSION:
                        arg_api_version = optarg;
                        break;
                case ARG_BROWSER:
                case ARG_DEVICE_CODE:
                        if (arg_login_method)
                                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--browser and --device-code: choose one.");
                        arg_login_method = c == ARG_BROWSER ? "browser" : "device_code";
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("aksspark-tokenctl %s\n", PACKAGE_VERSION);
                        return 0;
                case ':':
                        return tokenctl_fail(TOKENCTL_EXIT_USAGE,
                                             "option %s needs a value. Try 'aksspark-tokenctl --help'.",
                                             argv[optind - 1]);
                default:
                        return tokenctl_fail(TOKENCTL_EXIT_USAGE, "unknown option %s. Try 'aksspark-tokenctl --help'.",
                                             argv[optind - 1]);
                }

        if (optind >= argc)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "no command given. Try 'aksspark-tokenctl --help'.");
        if (strcmp(argv[optind], "run") == 0) {
                arg_run_command = argv + optind + 1;
                arg_min_valid_given = min_valid_given;
        } else if (argc - optind > 1)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE,
                                     "one command at a time ('%s' is extra). Try 'aksspark-tokenctl --help'.",
                                     argv[optind + 1]);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(commands[i].name, argv[optind]) == 0)
                        command = &commands[i];
        if (!command)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "unknown command '%s'. Try 'aksspark-tokenctl --help'.",
                                     argv[optind]);
        if (arg_json && !command->json)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--json does not apply to %s.", command->name);
        if (arg_login_method && command->run != cmd_login)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--browser and --device-code apply to login only.");
        if (min_valid_given && !command->min_valid)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--min-valid applies to check and run only.");
        if (init_given && command->run != cmd_init &&
            (command->run != cmd_doctor || !tokenctl_setup_only_config(&arg_setup)))
                return tokenctl_fail(
                        TOKENCTL_EXIT_USAGE,
                        "--kubeconfig, --context and --force apply to init only, --config to init and doctor.");
        if (arg_api_version && command->run != cmd_exec_credential)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--api-version applies to exec-credential only.");
        if (arg_profile && (!profile_name_is_valid(arg_profile) || strlen(arg_profile) > PROTOCOL_MAX_PROFILE_NAME))
                return tokenctl_fail(TOKENCTL_EXIT_USAGE,
                                     "'%s' is not a profile name (letters, digits, '_', '.', '-').", arg_profile);

        if (!arg_socket) {
                default_path = default_socket_path();
                if (!default_path)
                        return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "out of memory");
        }
        r = command->run(arg_socket ?: default_path);
        if (fflush(stdout) != 0 && r == 0)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot write to standard output: %s", strerror(errno));
        return r;
}
