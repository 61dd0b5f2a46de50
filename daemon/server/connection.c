/* One client connection: buffers, '\n' framing, backpressure and the framing-level error answers.
 * What a line means is the handler's business (requests.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/secret.h"
#include "server/connection.h"

#define INPUT_INITIAL 4096
/* A full request line with its '\n': a buffer this full without a '\n' is over the limit. */
#define INPUT_MAX (PROTOCOL_MAX_REQUEST + 1)
/* After the last answer to a client we stop serving (a request over the limit), what it still
 * sends is read and dropped, up to these bounds, so the close reaches it as end-of-file. */
#define LINGER_MAX_BYTES (1024 * 1024)
#define LINGER_TIMEOUT (2 * USEC_PER_SEC)

/* ---- output ------------------------------------------------------------------------------ */

static int connection_queue(Connection *c, const char *data, size_t len) {
        if (c->out_cap - c->out_len < len) {
                size_t cap = MAX(MAX(c->out_cap * 2, c->out_len + len), (size_t) 4096);

                /* Not realloc: the old buffer may hold a token, and must be wiped. */
                if (erase_realloc(&c->out, &c->out_cap, c->out_len, cap) < 0)
                        return -ENOMEM;
        }
        memcpy(c->out + c->out_len, data, len);
        c->out_len += len;
        return 0;
}

/* Queue an answer line (NULL: out of memory, which closes the connection). */
void connection_answer(Connection *c, char *line, bool secret) {
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

void connection_answer_error(Connection *c, ErrorCode e, const char *message) {
        connection_answer(c, protocol_error_answer(e, message), false);
}

void connection_answer_errorf(Connection *c, ErrorCode e, const char *format, ...) {
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

/* ---- input ------------------------------------------------------------------------------- */

/* Answer every complete line we may answer now: until one waits, or until the client has
 * enough unread answers. */
static void connection_process(Connection *c) {
        size_t start = 0;

        if (c->in_len == 0)
                return;

        while (!c->held && !c->closing && !c->dead && c->out_len < CONNECTION_OUTPUT_HIGH) {
                char *nl = memchr(c->in + start, '\n', c->in_len - start);
                size_t len;

                if (!nl)
                        break;
                len = (size_t) (nl - (c->in + start));
                if (len > PROTOCOL_MAX_REQUEST) {
                        start = c->in_len;
                        break; /* reported below */
                }
                c->handler->on_line(c, c->in + start, len, c->handler->userdata);
                start += len + 1;
        }

        if (start > 0) {
                memmove(c->in, c->in + start, c->in_len - start);
                c->in_len -= start;
        }

        if (c->held || c->closing || c->dead)
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

Connection *connection_free(Connection *c) {
        if (!c)
                return NULL;
        log_debug("Connection %u: closed.", c->id);
        if (c->held && c->hold_cancel)
                c->hold_cancel(c->hold_data);
        sd_event_source_disable_unref(c->linger_timer);
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        erase_and_free(c->out, c->out_cap);
        free(c->in);
        if (c->closed)
                c->closed(c, c->closed_userdata);
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

static int on_linger_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Connection *c = userdata;

        log_debug("Connection %u: the client kept sending after the answer, closing.", c->id);
        connection_free(c);
        return 0;
}

/* Closing a socket with unread input resets it: the client's read fails with ECONNRESET
 * instead of reaching our answer and end-of-file. So once the answer is out, shut down our
 * side for writing (the client reads EOF after the answer) and read and drop what it still
 * sends until it closes, or LINGER_MAX_BYTES or LINGER_TIMEOUT are spent. Returns false when
 * the connection can be closed now. */
static bool connection_linger(Connection *c) {
        char discard[4096];

        if (!c->lingering) {
                if (c->read_eof)
                        return false;
                if (shutdown(c->fd, SHUT_WR) < 0 ||
                    sd_event_add_time_relative(sd_event_source_get_event(c->io), &c->linger_timer, CLOCK_MONOTONIC,
                                               LINGER_TIMEOUT, 0, on_linger_timeout, c) < 0)
                        return false;
                (void) sd_event_source_set_description(c->linger_timer, "connection-linger");
                c->lingering = true;
        }

        while (c->lingered < LINGER_MAX_BYTES) {
                ssize_t n = recv(c->fd, discard, sizeof discard, MSG_DONTWAIT);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return true;
                if (n <= 0)
                        return false; /* end-of-file or an error: nothing left to protect */
                c->lingered += (size_t) n;
        }
        log_debug("Connection %u: the client sent over %u bytes after the answer, closing.", c->id,
                  (unsigned) LINGER_MAX_BYTES);
        return false;
}

static bool connection_finished(Connection *c) {
        if (c->dead)
                return true;
        if (c->out_len > 0 || c->held)
                return false;
        if (c->closing)
                return !connection_linger(c);
        return c->read_eof && c->in_len == 0;
}

void connection_update_events(Connection *c) {
        uint32_t events = 0;
        int r;

        if (c->lingering || (!c->held && !c->read_eof && !c->closing && !c->dead &&
                             c->out_len < CONNECTION_OUTPUT_HIGH && c->in_len < INPUT_MAX))
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
        if (c->lingering) {
                if (!connection_linger(c))
                        connection_free(c);
                return 0;
        }
        if (revents & EPOLLIN)
                connection_read(c);

        /* Each round answers at least one line; it goes on while flushing makes room. */
        for (;;) {
                connection_process(c);
                connection_flush(c);
                if (c->dead || c->held || c->closing || c->out_len >= CONNECTION_OUTPUT_HIGH || c->in_len == 0 ||
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

int connection_new(sd_event *event, int fd, unsigned id, uid_t uid, pid_t pid, const ConnectionHandler *handler,
                   connection_closed_fn closed, void *closed_userdata, Connection **ret) {
        Connection *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        *c = (Connection) {
                .handler = handler,
                .id = id,
                .fd = fd,
                .uid = uid,
                .pid = pid,
                .events = EPOLLIN,
                .last_activity = now_monotonic(),
        };
        r = sd_event_add_io(event, &c->io, fd, EPOLLIN, on_connection_io, c);
        if (r < 0) {
                safe_close(fd);
                free(c);
                return r;
        }
        /* Only now: a connection that never was is not reported closed. */
        c->closed = closed;
        c->closed_userdata = closed_userdata;
        *ret = c;
        return 0;
}

void connection_start(Connection *c) {
        /* Waiting for epoll to report the first request costs more than the read, since sd-event
         * polls again on every iteration and a level-triggered fd that is ready stays in every
         * poll's answer. */
        (void) on_connection_io(c->io, c->fd, EPOLLIN, c);
}

void connection_hold(Connection *c, connection_cancel_fn cancel, void *data) {
        c->held = true;
        c->hold_cancel = cancel;
        c->hold_data = data;
}

void connection_release(Connection *c) {
        c->held = false;
        c->hold_cancel = NULL;
        c->hold_data = NULL;
        c->last_activity = now_monotonic();
        connection_update_events(c);
}

bool connection_idle(const Connection *c, usec_t now, usec_t timeout) {
        return !c->held && c->out_len == 0 && now - c->last_activity >= timeout;
}
