/* The Unix socket: the listener (or the one systemd passed), accepting, the SO_PEERCRED check,
 * the connection limit and the idle sweep. Each connection (connection.h) frames its lines and
 * hands them to the request handler the server was given (requests.h, wired by the manager).
 *
 * Behaviour a client can rely on (see also protocol.h):
 * - Only the daemon's own uid and root are served; anyone else gets one `forbidden` answer
 *   naming the socket's owner, and the connection closes.
 * - Requests on one connection are answered in order. A request that waits (refresh, check,
 *   login) holds back the answers after it on that connection only; later lines are read
 *   when it is answered.
 * - A complete line that is not a valid request gets an error answer and the connection goes
 *   on (the '\n' framing is intact). A line over PROTOCOL_MAX_REQUEST bytes gets
 *   `bad_request` and the connection closes, since where the next request starts is unknown.
 *   So does input that ends without a final '\n'.
 * - A client that half-closes (shutdown(SHUT_WR)) still gets every answer, then the close.
 *   A client that goes away cancels what it waited for.
 * - refresh and check answer `timeout` after REQUEST_WAIT_TIMEOUT (the refresh goes on).
 * - Past SERVER_MAX_CONNECTIONS a new connection gets `busy` and is closed. Connections idle
 *   for SERVER_IDLE_TIMEOUT (nothing waiting, nothing queued) are closed.
 * - A client that does not read its answers is not read from either once
 *   CONNECTION_OUTPUT_HIGH bytes wait for it, so it cannot make the daemon hoard memory.
 *
 * server_new() logs why it failed; connection events are logged at debug level, refused
 * peers at warning level (rate-limited). */
#pragma once

#include <systemd/sd-event.h>

#include "base/macro.h"
#include "base/util.h"

typedef struct ConnectionHandler ConnectionHandler;
typedef struct Server Server;

#define SERVER_MAX_CONNECTIONS 4096
#define SERVER_IDLE_TIMEOUT (10 * USEC_PER_MINUTE)

/* Listen on path (0600, its directory made 0700 if missing; a stale socket file is replaced
 * only when nothing answers on it), or on the socket systemd passed (sd_listen_fds) when
 * there is one; a passed socket is never unlinked. Every connection hands its lines to
 * handler (connection.h), which must outlive the server. Raises the soft RLIMIT_NOFILE so that
 * SERVER_MAX_CONNECTIONS clients fit. */
int server_new(sd_event *event, const char *path, const ConnectionHandler *handler, Server **ret);
/* Closes every connection (cancelling what they wait for) and removes the socket file it
 * made, if it is still ours. */
Server *server_free(Server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Server *, server_free);

const char *server_path(const Server *s);
unsigned server_connections(const Server *s);
