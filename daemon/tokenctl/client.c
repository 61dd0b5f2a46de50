/* aksspark-tokenctl's connection to the daemon: finding the socket, connecting, sending one
 * request line and reading one answer line, and the helpers every command uses on an answer. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/secret.h"
#include "base/util.h"
#include "shared/protocol.h"
#include "tokenctl/client.h"

#define CONNECT_TIMEOUT (10 * USEC_PER_SEC)
#define MAX_ANSWER (1024 * 1024)

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

/* ---- memory that held a token ------------------------------------------------------------------ */

int tokenctl_write_line(int fd, const char *s) {
        int r = write_all(fd, s, strlen(s));

        return r < 0 ? r : write_all(fd, "\n", 1);
}

/* ---- the socket ------------------------------------------------------------------------------- */

char *tokenctl_default_socket_path(void) {
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

int tokenctl_client_send_request(TokenctlClient *c, const TokenctlRequest *req) {
        _cleanup_free_ char *line = NULL;
        json_t *o = json_pack("{s:s}", "op", request_op_to_string(req->op));
        char *s;

        if (!o)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "out of memory");
        if (req->profile)
                json_object_set_new(o, "profile", json_string(req->profile));
        if (req->op == OP_LOGIN && req->login_method)
                json_object_set_new(o, "method", json_string(req->login_method));
        if (req->with_min_valid)
                json_object_set_new(o, "min_valid",
                                    json_integer((json_int_t) ((req->min_valid + USEC_PER_SEC - 1) / USEC_PER_SEC)));
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
