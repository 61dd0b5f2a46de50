/* One client connection on the socket: its buffers, the '\n' framing, backpressure and the
 * framing-level error answers (a line too long, input that ends mid-line). Each complete line
 * goes to the handler the connection was given; the handler answers through connection_answer*()
 * and, for a request that waits, holds the connection until it is answered. The connection knows
 * nothing of what a request means. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "base/list.h"
#include "base/macro.h"
#include "base/util.h"
#include "shared/protocol.h"

/* A client that does not read its answers is not read from either once this much waits. */
#define CONNECTION_OUTPUT_HIGH (64 * 1024)

typedef struct Connection Connection;

typedef struct ConnectionHandler {
        /* One complete request line, without its '\n' (len <= PROTOCOL_MAX_REQUEST). */
        void (*on_line)(Connection *c, const char *line, size_t len, void *userdata);
        void *userdata;
} ConnectionHandler;

/* The connection is going away (called from connection_free(), before the memory is freed). */
typedef void (*connection_closed_fn)(Connection *c, void *userdata);
/* What to do when a held connection goes away before its request was answered. */
typedef void (*connection_cancel_fn)(void *data);

/* The struct is visible so that the server can keep its connections on a list; every field other
 * than the server list's links belongs to connection.c. */
struct Connection {
        LIST_FIELDS(Connection, server); /* the server's list of connections */
        const ConnectionHandler *handler;
        connection_closed_fn closed;
        void *closed_userdata;
        unsigned id;
        int fd;
        sd_event_source *io;
        uint32_t events;
        uid_t uid;
        pid_t pid;

        char *in;
        size_t in_len, in_cap;
        char *out; /* may hold a token answer: wiped as it drains */
        size_t out_len, out_cap;

        bool held; /* a request waits for its answer: read no further lines */
        connection_cancel_fn hold_cancel;
        void *hold_data;

        bool read_eof;   /* the client sent everything it will send */
        bool closing;    /* answer what is queued, then close */
        bool lingering;  /* answered and shut down for writing: dropping input */
        size_t lingered; /* bytes dropped while lingering */
        sd_event_source *linger_timer;
        bool dead;            /* the socket failed: free at the next chance */
        usec_t last_activity; /* monotonic */
};

/* Takes fd (closed on failure too). The connection frees itself once it is finished, calling
 * closed first. */
int connection_new(sd_event *event, int fd, unsigned id, uid_t uid, pid_t pid, const ConnectionHandler *handler,
                   connection_closed_fn closed, void *closed_userdata, Connection **ret);
Connection *connection_free(Connection *c);

/* Serve what the client has sent already (most send their request right after connecting).
 * May free c. */
void connection_start(Connection *c);

/* Queue an answer line and free it (wiped first when secret). NULL: out of memory, which closes
 * the connection. */
void connection_answer(Connection *c, char *line, bool secret);
void connection_answer_error(Connection *c, ErrorCode e, const char *message);
void connection_answer_errorf(Connection *c, ErrorCode e, const char *format, ...) _printf_(3, 4);

/* Watch the socket for what the connection needs now (after an answer queued outside its own
 * event, e.g. a sign-in message). */
void connection_update_events(Connection *c);

/* The request on the current line waits: answers after it, and the lines after it, wait too.
 * cancel(data) runs if the connection goes away first. connection_release() ends the hold once
 * the answer is queued. */
void connection_hold(Connection *c, connection_cancel_fn cancel, void *data);
void connection_release(Connection *c);

/* Nothing waiting, nothing queued, and no activity for at least timeout. */
bool connection_idle(const Connection *c, usec_t now, usec_t timeout);
