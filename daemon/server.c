/* The Unix socket server: listening, the peer check, line framing, answers in order, and the
 * requests that wait on a profile. Requests are parsed and answers built by protocol.c. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "log.h"
#include "profile.h"
#include "protocol.h"
#include "requests.h"
#include "secret.h"
#include "server.h"
#include "version.h"

#define INPUT_INITIAL 4096
/* A full request line with its '\n': a buffer this full without a '\n' is over the limit. */
#define INPUT_MAX (PROTOCOL_MAX_REQUEST + 1)
#define ACCEPT_BATCH 64
#define ACCEPT_RETRY (1 * USEC_PER_SEC)
#define SWEEP_INTERVAL (60 * USEC_PER_SEC)
#define REFUSAL_LOG_INTERVAL (10 * USEC_PER_SEC)

typedef struct Connection Connection;

struct Server {
        sd_event *event;
        const RequestContext *requests;
        int fd;
        sd_event_source *listen_source;
        sd_event_source *accept_retry;  /* re-enables accepting after EMFILE and friends */
        sd_event_source *sweep;         /* closes idle connections */
        char *path;
        bool owns_path;                 /* we made the file: unlink it at the end */
        dev_t path_dev;
        ino_t path_ino;
        uid_t uid;
        char *owner;                    /* "alice (uid 1000)" for forbidden answers */
        Connection *connections;
        unsigned n_connections;
        unsigned next_id;
        usec_t last_refusal_log;
        unsigned refusals_unlogged;
};

struct Connection {
        Server *server;
        Connection *prev, *next;
        unsigned id;
        int fd;
        sd_event_source *io;
        uint32_t events;
        uid_t uid;
        pid_t pid;

        char *in;
        size_t in_len, in_cap;
        char *out;                      /* may hold a token answer: wiped as it drains */
        size_t out_len, out_cap;

        bool waiting;                   /* a refresh, check or login is under way */
        RequestOp waiting_op;
        usec_t waiting_min_valid;
        ProfileWaiter *waiter;
        sd_event_source *wait_timer;

        bool read_eof;                  /* the client sent everything it will send */
        bool closing;                   /* answer what is queued, then close */
        bool dead;                      /* the socket failed: free at the next chance */
        usec_t last_activity;           /* monotonic */
};

static void connection_update_events(Connection *c);

/* ---- output ------------------------------------------------------------------------------ */

static int connection_queue(Connection *c, const char *data, size_t len) {
        if (c->out_cap - c->out_len < len) {
                size_t cap = MAX(MAX(c->out_cap * 2, c->out_len + len), (size_t) 4096);
                char *n = malloc(cap);

                /* Not realloc: the old buffer may hold a token, and must be wiped. */
                if (!n)
                        return -ENOMEM;
                if (c->out_len > 0)
                        memcpy(n, c->out, c->out_len);
                erase_and_free(c->out, c->out_cap);
                c->out = n;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
        return 0;
}

/* Queue an answer line (NULL: out of memory, which closes the connection). */
static void connection_answer(Connection *c, char *line, bool secret) {
        size_t n;

        if (!line) {
                log_oom();
                c->dead = true;
                return;
        }
        n = strlen(line);
        if (connection_queue(c, line, n) < 0) {
                log_oom();
                c->dead = true;
        }
        if (secret)
                erase_and_free(line, n);
        else
                free(line);
}

static void connection_answer_error(Connection *c, ErrorCode e, const char *message) {
        connection_answer(c, protocol_error_answer(e, message), false);
}

static void connection_answer_errorf(Connection *c, ErrorCode e, const char *format, ...) _printf_(3, 4);
static void connection_answer_errorf(Connection *c, ErrorCode e, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&message, format, ap);
        va_end(ap);
        connection_answer_error(c, e, r < 0 ? NULL : message);
}

static void connection_flush(Connection *c) {
        size_t sent = 0;

        while (sent < c->out_len) {
                ssize_t n = send(c->fd, c->out + sent, c->out_len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                c->dead = true;
                        break;
                }
                sent += (size_t) n;
        }
        if (sent == 0)
                return;
        memmove(c->out, c->out + sent, c->out_len - sent);
        explicit_bzero(c->out + c->out_len - sent, sent);
        c->out_len -= sent;
        c->last_activity = now_monotonic();
}

/* ---- answers that need a profile ----------------------------------------------------------- */

static void connection_answer_status(Connection *c, Profile *p) {
        ProfileSnapshot snap;

        profile_snapshot(p, &snap);
        connection_answer(c, protocol_status_answer(&snap, now_realtime()), false);
}

static const char *snapshot_last_error(Profile *p) {
        ProfileSnapshot snap;

        profile_snapshot(p, &snap);
        return snap.last_error;
}

/* The error answer for a profile operation that ended with r < 0. */
static void connection_answer_profile_error(Connection *c, Profile *p, int r) {
        const char *name = profile_name(p);
        const char *last_error = NULL;
        ErrorCode e = error_code_from_errno(r);

        /* Not for -ECANCELED: a profile being freed may no longer have its configuration. */
        if (r == -EKEYREJECTED || r == -EIO || r == -EBADR)
                last_error = snapshot_last_error(p);

        switch (r) {
        case -ENOKEY:
                connection_answer_errorf(c, e, "profile %s needs a sign-in: run 'aksspark-tokenctl --profile %s login'",
                                         name, name);
                return;
        case -EKEYREJECTED:
                connection_answer_errorf(c, e, "profile %s: the sign-in was declined or failed%s%s; run login again", name,
                                         last_error ? ": " : "", last_error ?: "");
                return;
        case -EKEYEXPIRED:
                connection_answer_errorf(c, e, "profile %s: the sign-in code expired before the sign-in finished; run login again",
                                         name);
                return;
        case -EIO:
                if (c->waiting && c->waiting_op == OP_LOGIN)
                        connection_answer_errorf(c, e, "profile %s: %s; try again", name,
                                                 last_error ?: "the sign-in failed, see the daemon's log");
                else
                        connection_answer_errorf(c, e, "profile %s: the refresh failed: %s; the daemon keeps retrying",
                                                 name, last_error ?: "see the daemon's log");
                return;
        case -EBADR:
                connection_answer_errorf(c, e, "profile %s: the identity provider rejected the configuration: %s", name,
                                         last_error ?: "see the daemon's log");
                return;
        case -EREMOTEIO: {
                ProfileSnapshot snap;
                const OutputSnapshot *bad = NULL;

                profile_snapshot(p, &snap);
                for (size_t i = 0; i < snap.n_outputs && !bad; i++)
                        if (snap.outputs[i].attempted && !snap.outputs[i].ok)
                                bad = &snap.outputs[i];
                if (bad)
                        connection_answer_errorf(c, e, "profile %s: cannot write %s: %s", name, bad->path,
                                                 bad->error ?: "failed");
                else
                        connection_answer_errorf(c, e, "profile %s: an output has not been written yet", name);
                return;
        }
        case -ECANCELED:
                connection_answer_errorf(c, e, "profile %s was removed from the configuration, or the daemon is stopping",
                                         name);
                return;
        default:
                connection_answer_errorf(c, e, "profile %s: %s", name, strerror(-r));
                return;
        }
}

/* ---- waiting requests --------------------------------------------------------------------- */

static void connection_wait_end(Connection *c) {
        c->waiting = false;
        c->waiter = NULL;
        c->wait_timer = sd_event_source_disable_unref(c->wait_timer);
        c->last_activity = now_monotonic();
        connection_update_events(c);
}

/* A check that refreshed, and still has a token shorter than asked: say so, it is no failure
 * of the identity provider (AAD gives 60 to 90 minutes). */
static bool connection_answer_too_short(Connection *c, Profile *p) {
        usec_t now = now_realtime();
        ProfileSnapshot snap;
        char left[32], asked[32];

        profile_snapshot(p, &snap);
        if (snap.state != PROFILE_VALID || snap.expires_on <= now ||
            snap.expires_on - now >= c->waiting_min_valid)
                return false;
        connection_answer_errorf(c, ERR_REFRESH_FAILED,
                                 "profile %s: the token is valid for %s, less than the %s asked for, even just after a "
                                 "refresh",
                                 snap.name, format_duration(left, sizeof left, snap.expires_on - now),
                                 format_duration(asked, sizeof asked, c->waiting_min_valid));
        return true;
}

static void on_profile_done(Profile *p, int result, void *userdata) {
        Connection *c = userdata;

        if (result == -EIO && c->waiting_op == OP_CHECK && connection_answer_too_short(c, p))
                ;
        else if (result < 0)
                connection_answer_profile_error(c, p, result);
        else
                connection_answer_status(c, p);
        connection_wait_end(c);
}

static void on_profile_device(Profile *p, const AadDeviceCode *code, void *userdata) {
        Connection *c = userdata;

        connection_answer(c, protocol_login_started_answer(code->message, code->verification_uri, code->user_code,
                                                           code->expires_in),
                          false);
        connection_update_events(c);
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Connection *c = userdata;

        profile_waiter_cancel(c->waiter);
        c->waiter = NULL;
        connection_answer_errorf(c, ERR_TIMEOUT, "no answer from the identity provider within %llus; the daemon keeps trying",
                                 (unsigned long long) (SERVER_WAIT_TIMEOUT / USEC_PER_SEC));
        connection_wait_end(c);
        return 0;
}

static void connection_start_wait(Connection *c, Profile *p, const Request *req) {
        ProfileWaiter *w = NULL;
        int r;

        c->waiting = true;
        c->waiting_op = req->op;
        c->waiting_min_valid = req->min_valid;
        switch (req->op) {
        case OP_REFRESH:
                r = profile_refresh(p, on_profile_done, c, &w);
                break;
        case OP_CHECK:
                r = profile_check(p, req->min_valid, on_profile_done, c, &w);
                break;
        case OP_LOGIN:
                r = profile_login(p, on_profile_device, on_profile_done, c, &w);
                break;
        default:
                r = -EINVAL;
        }
        if (r < 0) {
                c->waiting = false;
                connection_answer_profile_error(c, p, r);
                return;
        }
        if (!c->waiting)
                return; /* answered already, inside the call */
        c->waiter = w;

        if (req->op != OP_LOGIN) {
                /* A sign-in ends by itself when its code expires; a refresh may retry for an hour. */
                r = sd_event_add_time_relative(c->server->event, &c->wait_timer, CLOCK_MONOTONIC,
                                               SERVER_WAIT_TIMEOUT, USEC_PER_SEC, on_wait_timeout, c);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm a request timeout, the request waits without one: %m");
        }
}

/* ---- requests ------------------------------------------------------------------------------ */

static void connection_answer_unknown_profile(Connection *c, const char *name) {
        const RequestContext *rc = c->server->requests;
        Profile *const *profiles;
        size_t n_profiles = rc->list_profiles(rc->userdata, &profiles);
        char list[512] = "";
        size_t used = 0;

        for (size_t i = 0; i < n_profiles && used < sizeof list - 64; i++) {
                int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", profile_name(profiles[i]));
                if (n < 0)
                        break;
                used += (size_t) n;
        }
        if (used >= sizeof list)
                used = sizeof list - 1;

        if (n_profiles == 0)
                connection_answer_error(c, ERR_UNKNOWN_PROFILE, "no profile is configured");
        else if (name)
                /* name passed profile_name_is_valid(): safe to show. */
                connection_answer_errorf(c, ERR_UNKNOWN_PROFILE, "there is no profile named %s (profiles: %s)", name, list);
        else
                connection_answer_errorf(c, ERR_UNKNOWN_PROFILE,
                                         "no profile is named 'default' and there are several: name one with --profile (profiles: %s)",
                                         list);
}

static void connection_answer_token(Connection *c, Profile *p) {
        usec_t expires_on = 0;
        const Secret *t = profile_access_token(p, now_realtime(), &expires_on);
        const char *name = profile_name(p);

        if (t) {
                connection_answer(c, protocol_token_answer(secret_reveal(t), expires_on), true);
                return;
        }
        switch (profile_state(p)) {
        case PROFILE_LOGIN_REQUIRED:
                connection_answer_profile_error(c, p, -ENOKEY);
                break;
        case PROFILE_ERROR:
                connection_answer_profile_error(c, p, -EBADR);
                break;
        default: {
                const char *last_error = snapshot_last_error(p);
                connection_answer_errorf(c, ERR_REFRESH_FAILED, "profile %s has no valid token right now%s%s", name,
                                         last_error ? ": " : "", last_error ?: "");
        }
        }
}

static void connection_answer_profiles(Connection *c) {
        const RequestContext *rc = c->server->requests;
        Profile *const *profiles;
        size_t n_profiles = rc->list_profiles(rc->userdata, &profiles);
        _cleanup_free_ ProfileSnapshot *snaps = calloc(MAX(n_profiles, (size_t) 1), sizeof *snaps);

        if (!snaps) {
                connection_answer(c, NULL, false);
                return;
        }
        for (size_t i = 0; i < n_profiles; i++)
                profile_snapshot(profiles[i], &snaps[i]);
        connection_answer(c, protocol_profiles_answer(snaps, n_profiles), false);
}

static void connection_answer_reload(Connection *c) {
        ConfigErrors errors = {};
        _cleanup_free_ char *message = NULL;
        size_t len = 0;
        int r;

        r = c->server->requests->reload(c->server->requests->userdata, &errors);
        if (r >= 0) {
                config_errors_clear(&errors);
                connection_answer(c, protocol_ok_answer(), false);
                return;
        }

        for (size_t i = 0; i < errors.n; i++)
                len += strlen(errors.lines[i]) + 2;
        message = malloc(len + 128);
        if (message) {
                char *p = message;
                p += sprintf(p, "the configuration was not reloaded: ");
                for (size_t i = 0; i < errors.n; i++)
                        p += sprintf(p, "%s%s", i ? "; " : "", errors.lines[i]);
                if (errors.n == 0)
                        sprintf(p, "%s", strerror(-r));
        }
        config_errors_clear(&errors);
        connection_answer_error(c, ERR_RELOAD_FAILED, message);
}

static void connection_handle_line(Connection *c, const char *line, size_t len) {
        _cleanup_(request_clear) Request req = {};
        const char *message = NULL;
        ErrorCode code = ERR_BAD_REQUEST;
        Profile *p;
        int r;

        r = protocol_parse_request(line, len, &req, &code, &message);
        if (r < 0) {
                log_debug("Connection %u: bad request (%s).", c->id, error_code_to_string(code));
                connection_answer_error(c, code, message);
                return;
        }
        log_debug("Connection %u: %s%s%s.", c->id, request_op_to_string(req.op), req.profile ? " " : "",
                  req.profile ?: "");

        switch (req.op) {
        case OP_PROFILES:
                connection_answer_profiles(c);
                return;
        case OP_RELOAD:
                connection_answer_reload(c);
                return;
        case OP_VERSION:
                connection_answer(c, protocol_version_answer(PACKAGE_VERSION), false);
                return;
        default:
                break;
        }

        p = c->server->requests->find_profile(c->server->requests->userdata, req.profile);
        if (!p) {
                connection_answer_unknown_profile(c, req.profile);
                return;
        }

        switch (req.op) {
        case OP_STATUS:
                connection_answer_status(c, p);
                return;
        case OP_TOKEN:
                connection_answer_token(c, p);
                return;
        case OP_LOGOUT:
                r = profile_logout(p);
                if (r < 0)
                        connection_answer_profile_error(c, p, r);
                else
                        connection_answer_status(c, p);
                return;
        case OP_REFRESH:
        case OP_CHECK:
        case OP_LOGIN:
                connection_start_wait(c, p, &req);
                return;
        default:
                connection_answer_error(c, ERR_INTERNAL, "unhandled op");
                return;
        }
}

/* Answer every complete line we may answer now: until one waits, or until the client has
 * enough unread answers. */
static void connection_process(Connection *c) {
        size_t start = 0;

        if (c->in_len == 0)
                return;

        while (!c->waiting && !c->closing && !c->dead && c->out_len < SERVER_OUTPUT_HIGH) {
                char *nl = memchr(c->in + start, '\n', c->in_len - start);
                size_t len;

                if (!nl)
                        break;
                len = (size_t) (nl - (c->in + start));
                if (len > PROTOCOL_MAX_REQUEST) {
                        start = c->in_len;
                        break; /* reported below */
                }
                connection_handle_line(c, c->in + start, len);
                start += len + 1;
        }

        if (start > 0) {
                memmove(c->in, c->in + start, c->in_len - start);
                c->in_len -= start;
        }

        if (c->waiting || c->closing || c->dead)
                return;
        if (c->in_len >= INPUT_MAX && !memchr(c->in, '\n', c->in_len)) {
                log_debug("Connection %u: request over %u bytes, closing.", c->id, PROTOCOL_MAX_REQUEST);
                connection_answer_errorf(c, ERR_BAD_REQUEST, "request too large (the limit is %u bytes per line)",
                                         PROTOCOL_MAX_REQUEST);
                c->in_len = 0;
                c->closing = true;
        } else if (c->read_eof && c->in_len > 0 && !memchr(c->in, '\n', c->in_len)) {
                connection_answer_error(c, ERR_BAD_REQUEST, "the request ended without a newline");
                c->in_len = 0;
                c->closing = true;
        }
}

/* ---- connection life ------------------------------------------------------------------------ */

static Connection *connection_free(Connection *c) {
        Server *s;

        if (!c)
                return NULL;
        s = c->server;
        log_debug("Connection %u: closed.", c->id);
        profile_waiter_cancel(c->waiter);
        sd_event_source_disable_unref(c->wait_timer);
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        erase_and_free(c->out, c->out_cap);
        free(c->in);

        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;
        free(c);
        return NULL;
}

static void connection_read(Connection *c) {
        size_t want;
        ssize_t n;

        if (c->in_len == c->in_cap && c->in_cap < INPUT_MAX) {
                size_t cap = MIN(MAX(c->in_cap * 2, (size_t) INPUT_INITIAL), (size_t) INPUT_MAX);
                char *t = realloc(c->in, cap);
                if (!t) {
                        log_oom();
                        c->dead = true;
                        return;
                }
                c->in = t;
                c->in_cap = cap;
        }
        want = c->in_cap - c->in_len;
        if (want == 0)
                return;

        n = recv(c->fd, c->in + c->in_len, want, MSG_DONTWAIT);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        c->dead = true;
                return;
        }
        if (n == 0) {
                c->read_eof = true;
                return;
        }
        c->in_len += (size_t) n;
        c->last_activity = now_monotonic();
}

static bool connection_finished(const Connection *c) {
        if (c->dead)
                return true;
        if (c->out_len > 0 || c->waiting)
                return false;
        return c->closing || (c->read_eof && c->in_len == 0);
}

static void connection_update_events(Connection *c) {
        uint32_t events = 0;
        int r;

        if (!c->waiting && !c->read_eof && !c->closing && !c->dead && c->out_len < SERVER_OUTPUT_HIGH &&
            c->in_len < INPUT_MAX)
                events |= EPOLLIN;
        if (c->out_len > 0 || c->dead)
                events |= EPOLLOUT;
        if (events == c->events)
                return;
        r = sd_event_source_set_io_events(c->io, events);
        if (r < 0) {
                log_debug_errno(r, "Connection %u: cannot watch the socket: %m", c->id);
                c->dead = true;
                return;
        }
        c->events = events;
}

static int on_connection_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;

        /* HUP means the peer closed both directions: nobody is left to read an answer. */
        if (revents & (EPOLLHUP | EPOLLERR)) {
                connection_free(c);
                return 0;
        }
        if (revents & EPOLLIN)
                connection_read(c);

        /* Each round answers at least one line; it goes on while flushing makes room. */
        for (;;) {
                connection_process(c);
                connection_flush(c);
                if (c->dead || c->waiting || c->closing || c->out_len >= SERVER_OUTPUT_HIGH || c->in_len == 0 ||
                    !memchr(c->in, '\n', c->in_len))
                        break;
        }

        if (connection_finished(c)) {
                connection_free(c);
                return 0;
        }
        connection_update_events(c);
        return 0;
}

/* Best effort: one answer to a client we will not serve, then close. */
static void refuse(int fd, ErrorCode e, const char *message) {
        _cleanup_free_ char *line = protocol_error_answer(e, message);
        char discard[4096];

        if (line)
                (void) send(fd, line, strlen(line), MSG_DONTWAIT | MSG_NOSIGNAL);
        /* Closing with unread input makes the peer's read fail with ECONNRESET instead of
         * reaching the end of our answer; read what it has sent so far. */
        for (unsigned i = 0; i < 16; i++)
                if (recv(fd, discard, sizeof discard, MSG_DONTWAIT) <= 0)
                        break;
        safe_close(fd);
}

static void server_log_refusal(Server *s, const struct ucred *cred) {
        usec_t now = now_monotonic();

        if (s->last_refusal_log != 0 && now - s->last_refusal_log < REFUSAL_LOG_INTERVAL) {
                s->refusals_unlogged++;
                return;
        }
        log_warning("Refused a connection from uid %u (pid %d): only uid %u and root may use %s%s.",
                    (unsigned) cred->uid, (int) cred->pid, (unsigned) s->uid, s->path,
                    s->refusals_unlogged > 0 ? " (more refusals were not logged)" : "");
        s->last_refusal_log = now;
        s->refusals_unlogged = 0;
}

/* The idle sweep runs only while there are connections: an idle daemon wakes for nothing. */
static void sweep_arm(Server *s) {
        int enabled = SD_EVENT_OFF;

        if (sd_event_source_get_enabled(s->sweep, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        if (sd_event_source_set_time_relative(s->sweep, SWEEP_INTERVAL) >= 0)
                (void) sd_event_source_set_enabled(s->sweep, SD_EVENT_ONESHOT);
}

static void server_add_connection(Server *s, int fd) {
        struct ucred cred = {};
        socklen_t len = sizeof cred;
        Connection *c;
        int r;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                log_debug_errno(errno, "Cannot read the credentials of a new connection, closing it: %m");
                safe_close(fd);
                return;
        }
        if (cred.uid != s->uid && cred.uid != 0) {
                _cleanup_free_ char *message = NULL;

                server_log_refusal(s, &cred);
                if (asprintf(&message,
                             "this socket belongs to %s; only that user and root may use it. Run your own daemon: "
                             "systemctl --user start aksspark-tokend.socket",
                             s->owner) < 0)
                        message = NULL;
                refuse(fd, ERR_FORBIDDEN, message);
                return;
        }
        if (s->n_connections >= SERVER_MAX_CONNECTIONS) {
                log_debug("Too many connections (%u), refusing one.", s->n_connections);
                refuse(fd, ERR_BUSY, "the daemon has too many connections; try again");
                return;
        }

        c = calloc(1, sizeof *c);
        if (!c) {
                log_oom();
                safe_close(fd);
                return;
        }
        *c = (Connection) {
                .server = s,
                .id = ++s->next_id,
                .fd = fd,
                .uid = cred.uid,
                .pid = cred.pid,
                .events = EPOLLIN,
                .last_activity = now_monotonic(),
        };
        r = sd_event_add_io(s->event, &c->io, fd, EPOLLIN, on_connection_io, c);
        if (r < 0) {
                log_warning_errno(r, "Cannot watch a new connection, closing it: %m");
                safe_close(fd);
                free(c);
                return;
        }
        c->next = s->connections;
        if (c->next)
                c->next->prev = c;
        s->connections = c;
        s->n_connections++;
        log_debug("Connection %u: from uid %u, pid %d.", c->id, (unsigned) cred.uid, (int) cred.pid);
        sweep_arm(s);

        /* Most clients send their request right after connecting: serve it now. Waiting for
         * epoll to report it costs more than the read, since sd-event polls again on every
         * iteration and a level-triggered fd that is ready stays in every poll's answer. */
        (void) on_connection_io(c->io, fd, EPOLLIN, c);
}

static int on_accept_retry(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;

        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
        return 0;
}

static int on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;

        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                int cfd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                int r;

                if (cfd >= 0) {
                        server_add_connection(s, cfd);
                        continue;
                }
                if (errno == EAGAIN)
                        break;
                if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                        continue;

                /* Out of file descriptors or memory: the listening socket stays readable, so stop
                 * watching it for a moment instead of spinning. */
                log_warning_errno(errno, "Cannot accept connections on %s, pausing for a second: %m", s->path);
                (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
                if (s->accept_retry) {
                        r = sd_event_source_set_time_relative(s->accept_retry, ACCEPT_RETRY);
                        if (r >= 0)
                                r = sd_event_source_set_enabled(s->accept_retry, SD_EVENT_ONESHOT);
                } else
                        r = sd_event_add_time_relative(s->event, &s->accept_retry, CLOCK_MONOTONIC,
                                                       ACCEPT_RETRY, 0, on_accept_retry, s);
                if (r < 0)
                        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
                break;
        }
        return 0;
}

static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        usec_t now = now_monotonic();
        Connection *next;

        for (Connection *c = s->connections; c; c = next) {
                next = c->next;
                if (!c->waiting && c->out_len == 0 && now - c->last_activity >= SERVER_IDLE_TIMEOUT) {
                        log_debug("Connection %u: idle for %llus, closing.", c->id,
                                  (unsigned long long) ((now - c->last_activity) / USEC_PER_SEC));
                        connection_free(c);
                }
        }
        if (s->connections)
                sweep_arm(s);
        return 0;
}

/* ---- listening ------------------------------------------------------------------------------ */

/* 1: nothing listens on path (safe to replace), 0: a live server answers there. */
static int socket_file_is_stale(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 1 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) >= 0)
                return 0;
        if (errno == EAGAIN) /* listening, its backlog full */
                return 0;
        if (errno == ECONNREFUSED || errno == ENOENT)
                return 1;
        return -errno;
}

static int server_listen_path(Server *s, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        char *slash;
        int r;

        if (!path)
                return log_error_errno(EDESTADDRREQ, "No socket path: set XDG_RUNTIME_DIR, or socket= in the [daemon] section.");
        if (path[0] != '/')
                return log_error_errno(EINVAL, "The socket path %s is not absolute.", path);
        if (strlen(path) >= sizeof sa.sun_path)
                return log_error_errno(ENAMETOOLONG, "The socket path %s is too long (at most %zu bytes).", path,
                                       sizeof sa.sun_path - 1);
        strcpy(sa.sun_path, path);

        dir = strdup(path);
        if (!dir)
                return log_oom();
        slash = strrchr(dir, '/');
        if (slash != dir) {
                *slash = 0;
                r = mkdir_parents(dir, 0700);
                if (r < 0)
                        return log_error_errno(r, "Cannot create the socket's directory %s: %m", dir);
        }

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "Cannot create a Unix socket: %m");

        for (unsigned attempt = 0;; attempt++) {
                mode_t old = umask(0177);

                r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
                r = r < 0 ? -errno : 0;
                umask(old);
                if (r >= 0)
                        break;
                if (r != -EADDRINUSE || attempt > 0)
                        return log_error_errno(r, "Cannot bind the socket %s: %m", path);

                r = socket_file_is_stale(path);
                if (r == 0)
                        return log_error_errno(EADDRINUSE,
                                               "The socket %s is already served by another process; stop that daemon, or "
                                               "give this one another socket= path.",
                                               path);
                if (r == -EEXIST)
                        return log_error_errno(EEXIST, "%s exists and is not a socket; remove it or choose another socket= path.",
                                               path);
                if (r < 0)
                        return log_error_errno(r, "Cannot tell whether the socket %s is in use: %m", path);
                log_info("Replacing the stale socket %s (nothing answers on it).", path);
                if (unlink(path) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Cannot remove the stale socket %s: %m", path);
        }

        if (stat(path, &st) < 0)
                return log_error_errno(errno, "Cannot stat the socket %s: %m", path);
        s->owns_path = true;
        s->path_dev = st.st_dev;
        s->path_ino = st.st_ino;

        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Cannot listen on %s: %m", path);

        s->path = strdup(path);
        if (!s->path)
                return log_oom();
        s->fd = TAKE_FD(fd);
        return 0;
}

/* 1 when systemd passed the socket (and s uses it), 0 when it did not. */
static int server_listen_passed(Server *s) {
        struct sockaddr_un sa = {};
        socklen_t len = sizeof sa;
        int n, fd, flags;

        n = sd_listen_fds(1);
        if (n < 0)
                return log_error_errno(n, "Cannot read the sockets systemd passed: %m");
        if (n == 0)
                return 0;
        if (n > 1)
                return log_error_errno(EINVAL, "systemd passed %d sockets; the socket unit must have exactly one "
                                               "ListenStream=.",
                                       n);
        fd = SD_LISTEN_FDS_START;
        if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) <= 0)
                return log_error_errno(EINVAL, "The socket systemd passed is not a listening Unix stream socket; "
                                               "use ListenStream=/path in the socket unit.");

        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return log_error_errno(errno, "Cannot set up the socket systemd passed: %m");

        if (getsockname(fd, (struct sockaddr *) &sa, &len) >= 0 && len > offsetof(struct sockaddr_un, sun_path) &&
            sa.sun_path[0] != 0)
                s->path = strndup(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
        else
                s->path = strdup("(socket passed by systemd)");
        if (!s->path)
                return log_oom();
        s->fd = fd;
        s->owns_path = false;
        return 1;
}

static void raise_fd_limit(void) {
        struct rlimit rl;
        rlim_t want = SERVER_MAX_CONNECTIONS + 1024;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : MIN(want, rl.rlim_max);
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                log_debug_errno(errno, "Cannot raise the file descriptor limit: %m");
}

static char *owner_description(uid_t uid) {
        struct passwd pw, *result = NULL;
        char buf[4096];
        char *s = NULL;

        if (getpwuid_r(uid, &pw, buf, sizeof buf, &result) == 0 && result && result->pw_name)
                (void) asprintf(&s, "%s (uid %u)", result->pw_name, (unsigned) uid);
        else
                (void) asprintf(&s, "uid %u", (unsigned) uid);
        return s;
}

int server_new(sd_event *event, const char *path, const RequestContext *requests, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        s->event = event;
        s->requests = requests;
        s->fd = -EBADF;
        s->uid = getuid();
        /* Looked up once: a directory service must not stall a refusal later. */
        s->owner = owner_description(s->uid);
        if (!s->owner)
                return log_oom();

        raise_fd_limit();

        r = server_listen_passed(s);
        if (r < 0)
                return r;
        if (r == 0) {
                r = server_listen_path(s, path);
                if (r < 0)
                        return r;
        } else
                log_info("Serving the socket systemd passed: %s.", s->path);

        r = sd_event_add_io(s->event, &s->listen_source, s->fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the socket %s: %m", s->path);
        r = sd_event_add_time_relative(s->event, &s->sweep, CLOCK_MONOTONIC, SWEEP_INTERVAL, 5 * USEC_PER_SEC,
                                       on_sweep, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->sweep, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the idle connection timer: %m");

        *ret = TAKE_PTR(s);
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;

        while (s->connections)
                connection_free(s->connections);
        sd_event_source_disable_unref(s->listen_source);
        sd_event_source_disable_unref(s->accept_retry);
        sd_event_source_disable_unref(s->sweep);
        safe_close(s->fd);

        if (s->owns_path && s->path) {
                struct stat st;

                /* Only our own file: another daemon may have taken the path over since. */
                if (lstat(s->path, &st) >= 0 && st.st_dev == s->path_dev && st.st_ino == s->path_ino)
                        (void) unlink(s->path);
        }
        free(s->path);
        free(s->owner);
        free(s);
        return NULL;
}

const char *server_path(const Server *s) {
        return s->path;
}

unsigned server_connections(const Server *s) {
        return s->n_connections;
}
