/* aksspark-tokenctl: the command line, the command table and the commands that fit in a screen.
 * The connection to the daemon is client.c. Links jansson and the pure helpers
 * only (no curl, no OpenSSL, no sd-event), so a call costs about a process spawn. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The daemon answers these from memory; longer means it is stuck. */
#define QUICK_TIMEOUT (30 * USEC_PER_SEC)
/* Until the device message: one HTTP exchange at the daemon. */
#define LOGIN_START_TIMEOUT (90 * USEC_PER_SEC)

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
               "  metrics --all [--output PATH]\n"
               "                           as root: every jump-host instance's metrics in one, labelled\n"
               "                           by the user the kernel says answered (--socket: their directory)\n"
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
        if ((s = tokenctl_get_string(json_object_get(a, "store"), "protection")))
                printf("Protection:   %s%s\n", s,
                       json_is_true(json_object_get(json_object_get(a, "store"), "key_missing"))
                               ? " (its key is missing: the sign-in is not saved)"
                       : strcmp(s, "none") == 0 ? " (the refresh token is kept in clear)"
                                                : " (the refresh token is sealed)");
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
static int answer_failed(const TokenctlOptions *o, json_t *a) {
        if (o->json)
                return error_code_exit_status(error_code_from_string(tokenctl_get_string(a, "error")));
        return tokenctl_answer_error(a);
}

/* One request, one answer: the answer (ok or not) in *ret, and its raw line printed for --json. */
static int simple_request(const TokenctlOptions *o, RequestOp op, bool with_min_valid, usec_t timeout, json_t **ret) {
        TokenctlRequest req = {
                .op = op, .profile = o->profile, .with_min_valid = with_min_valid, .min_valid = o->min_valid
        };
        _cleanup_(tokenctl_client_done) TokenctlClient c = { .fd = -EBADF };
        const char *raw = NULL;
        int r;

        r = tokenctl_client_connect(&c, o->socket);
        if (r != 0)
                return r;
        r = tokenctl_client_send_request(&c, &req);
        if (r != 0)
                return r;
        r = tokenctl_client_read_answer(&c, now_monotonic() + timeout, ret, &raw);
        if (r != 0)
                return r;
        if (o->json)
                printf("%s\n", raw);
        return 0;
}

static int cmd_status(const TokenctlOptions *o) {
        json_t *a = NULL;
        int r = simple_request(o, OP_STATUS, false, QUICK_TIMEOUT, &a);

        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok")))
                r = answer_failed(o, a);
        else {
                if (!o->json)
                        print_status(a);
                r = status_exit(a);
        }
        json_decref(a);
        return r;
}

static int cmd_profiles(const TokenctlOptions *o) {
        json_t *a = NULL, *list;
        usec_t now = now_realtime();
        int r = simple_request(o, OP_PROFILES, false, QUICK_TIMEOUT, &a);
        int width = 4;

        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok"))) {
                r = answer_failed(o, a);
                json_decref(a);
                return r;
        }
        list = json_object_get(a, "profiles");
        for (size_t i = 0; i < json_array_size(list); i++)
                width = MAX(width, (int) strlen(tokenctl_get_string(json_array_get(list, i), "name") ?: ""));
        for (size_t i = 0; !o->json && i < json_array_size(list); i++) {
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
static int request_and_print(const TokenctlOptions *o, RequestOp op, bool with_min_valid, usec_t timeout,
                             void (*print)(json_t *answer)) {
        json_t *a = NULL;
        int r = simple_request(o, op, with_min_valid, timeout, &a);

        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok")))
                r = answer_failed(o, a);
        else if (!o->json)
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

static int cmd_refresh(const TokenctlOptions *o) {
        return request_and_print(o, OP_REFRESH, false, TOKENCTL_WAIT_TIMEOUT, print_short_state);
}

static int cmd_check(const TokenctlOptions *o) {
        return request_and_print(o, OP_CHECK, true, TOKENCTL_WAIT_TIMEOUT, print_short_state);
}

static int cmd_logout(const TokenctlOptions *o) {
        return request_and_print(o, OP_LOGOUT, false, QUICK_TIMEOUT, print_signed_out);
}

/* The exposition text as the daemon made it, for a person or a script (curl-like). */
static int cmd_metrics(const TokenctlOptions *o) {
        json_t *a = NULL;
        const char *text;
        int r;

        if (o->metrics_all)
                return tokenctl_metrics_all(o->socket_option ?: TOKENCTL_INSTANCE_DIR, o->metrics_output);
        r = simple_request(o, OP_METRICS, false, QUICK_TIMEOUT, &a);
        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok")))
                r = answer_failed(o, a);
        else if (!o->json) {
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
static int cmd_reload(const TokenctlOptions *o) {
        return request_and_print(o, OP_RELOAD, false, QUICK_TIMEOUT, print_reloaded);
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

static int cmd_login(const TokenctlOptions *o) {
        _cleanup_(tokenctl_client_done) TokenctlClient c = { .fd = -EBADF };
        TokenctlRequest req = { .op = OP_LOGIN, .profile = o->profile, .login_method = o->login_method };
        json_t *a = NULL;
        json_t *expires_in;
        usec_t deadline;
        int r;

        r = tokenctl_client_connect(&c, o->socket);
        if (r != 0)
                return r;
        r = tokenctl_client_send_request(&c, &req);
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
        int (*run)(const TokenctlOptions *o);
        bool json;      /* --json allowed */
        bool min_valid; /* --min-valid allowed */
} Command;

static int cmd_init(const TokenctlOptions *o) {
        return tokenctl_init(&o->setup);
}

static int cmd_doctor(const TokenctlOptions *o) {
        TokenctlSetupArgs setup = o->setup;

        setup.socket = o->socket_option;
        setup.default_socket = o->socket;
        setup.profile = o->profile;
        return tokenctl_doctor(&setup);
}

static int cmd_run(const TokenctlOptions *o) {
        return tokenctl_run(o, o->run_command);
}

static const Command commands[] = {
        { "status", cmd_status, true, false },   { "token", tokenctl_token, false, false },
        { "refresh", cmd_refresh, true, false }, { "login", cmd_login, false, false },
        { "check", cmd_check, true, true },      { "exec-credential", tokenctl_exec_credential, false, false },
        { "logout", cmd_logout, true, false },   { "profiles", cmd_profiles, true, false },
        { "reload", cmd_reload, true, false },   { "init", cmd_init, false, false },
        { "doctor", cmd_doctor, false, false },  { "metrics", cmd_metrics, true, false },
        { "run", cmd_run, false, true },
};

int main(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_MIN_VALID,
                ARG_API_VERSION,
                ARG_BROWSER,
                ARG_DEVICE_CODE,
                ARG_ALL,
                ARG_OUTPUT
        };
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
                { "all", no_argument, NULL, ARG_ALL },
                { "output", required_argument, NULL, ARG_OUTPUT },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        _cleanup_free_ char *default_path = NULL;
        TokenctlOptions o = { .min_valid = 5 * USEC_PER_MINUTE };
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
                        o.socket_option = optarg;
                        break;
                case 'p':
                        o.profile = optarg;
                        break;
                case ARG_JSON:
                        o.json = true;
                        break;
                case ARG_MIN_VALID:
                        r = parse_duration(optarg, &o.min_valid);
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
                        if (tokenctl_setup_option(&o.setup, (char) c, optarg) < 0)
                                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--context: at most %d of them.",
                                                     TOKENCTL_MAX_CONTEXTS);
                        init_given = true;
                        break;
                case ARG_API_VERSION:
                        o.api_version = optarg;
                        break;
                case ARG_BROWSER:
                case ARG_DEVICE_CODE:
                        if (o.login_method)
                                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--browser and --device-code: choose one.");
                        o.login_method = c == ARG_BROWSER ? "browser" : "device_code";
                        break;
                case ARG_ALL:
                        o.metrics_all = true;
                        break;
                case ARG_OUTPUT:
                        o.metrics_output = optarg;
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
                o.run_command = argv + optind + 1;
                if (!min_valid_given)
                        o.min_valid = TOKENCTL_RUN_MIN_VALID;
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
        if (o.json && !command->json)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--json does not apply to %s.", command->name);
        if (o.login_method && command->run != cmd_login)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--browser and --device-code apply to login only.");
        if (min_valid_given && !command->min_valid)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--min-valid applies to check and run only.");
        if (init_given && command->run != cmd_init &&
            (command->run != cmd_doctor || !tokenctl_setup_only_config(&o.setup)))
                return tokenctl_fail(
                        TOKENCTL_EXIT_USAGE,
                        "--kubeconfig, --context and --force apply to init only, --config to init and doctor.");
        if ((o.metrics_all || o.metrics_output) && (command->run != cmd_metrics || !o.metrics_all || o.json))
                return tokenctl_fail(TOKENCTL_EXIT_USAGE,
                                     "--all and --output apply to metrics --all only (no --json).");
        if (o.api_version && command->run != tokenctl_exec_credential)
                return tokenctl_fail(TOKENCTL_EXIT_USAGE, "--api-version applies to exec-credential only.");
        if (o.profile && (!profile_name_is_valid(o.profile) || strlen(o.profile) > PROTOCOL_MAX_PROFILE_NAME))
                return tokenctl_fail(TOKENCTL_EXIT_USAGE,
                                     "'%s' is not a profile name (letters, digits, '_', '.', '-').", o.profile);

        if (!o.socket_option) {
                default_path = tokenctl_default_socket_path();
                if (!default_path)
                        return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "out of memory");
        }
        o.socket = o.socket_option ?: default_path;
        r = command->run(&o);
        if (fflush(stdout) != 0 && r == 0)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot write to standard output: %s", strerror(errno));
        return r;
}
