/* The Unix socket server: listening, accepting, the peer check, the connection limit and the idle
 * sweep. Framing is connection.c's; what a line means is the handler's the server was given. */
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

#include "base/list.h"
#include "base/log.h"
#include "server/connection.h"
#include "server/server.h"
#include "shared/protocol.h"

#define ACCEPT_BATCH 64
#define ACCEPT_RETRY (1 * USEC_PER_SEC)
#define SWEEP_INTERVAL (60 * USEC_PER_SEC)
#define REFUSAL_LOG_INTERVAL (10 * USEC_PER_SEC)

struct Server {
        sd_event *event;
        const ConnectionHandler *handler;
        int fd;
        sd_event_source *listen_source;
        sd_event_source *accept_retry; /* re-enables accepting after EMFILE and friends */
        sd_event_source *sweep;        /* closes idle connections */
        char *path;
        bool owns_path; /* we made the file: unlink it at the end */
        dev_t path_dev;
        ino_t path_ino;
        uid_t uid;
        char *owner; /* "alice (uid 1000)" for forbidden answers */
        LIST_HEAD(Connection, connections);
        unsigned n_connections;
        unsigned next_id;
        usec_t last_refusal_log;
        unsigned refusals_unlogged;
};

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

static void on_connection_closed(Connection *c, void *userdata) {
        Server *s = userdata;

        LIST_REMOVE(server, s->connections, c);
        s->n_connections--;
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

        r = connection_new(s->event, fd, ++s->next_id, cred.uid, cred.pid, s->handler, on_connection_closed, s, &c);
        if (r == -ENOMEM) {
                log_oom();
                return;
        }
        if (r < 0) {
                log_warning_errno(r, "Cannot watch a new connection, closing it: %m");
                return;
        }
        LIST_PREPEND(server, s->connections, c);
        s->n_connections++;
        log_debug("Connection %u: from uid %u, pid %d.", c->id, (unsigned) cred.uid, (int) cred.pid);
        sweep_arm(s);

        /* Most clients send their request right after connecting: serve it now. */
        connection_start(c);
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
                        r = sd_event_add_time_relative(s->event, &s->accept_retry, CLOCK_MONOTONIC, ACCEPT_RETRY, 0,
                                                       on_accept_retry, s);
                if (r < 0)
                        (void) sd_event_source_set_enabled(s->listen_source, SD_EVENT_ON);
                break;
        }
        return 0;
}

static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        Server *s = userdata;
        usec_t now = now_monotonic();
        Connection *c, *next;

        LIST_FOREACH_SAFE (server, c, next, s->connections) {
                if (connection_idle(c, now, SERVER_IDLE_TIMEOUT)) {
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
                return log_error_errno(EDESTADDRREQ,
                                       "No socket path: set XDG_RUNTIME_DIR, or socket= in the [daemon] section.");
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
                        return log_error_errno(
                                EADDRINUSE,
                                "The socket %s is already served by another process; stop that daemon, or "
                                "give this one another socket= path.",
                                path);
                if (r == -EEXIST)
                        return log_error_errno(
                                EEXIST, "%s exists and is not a socket; remove it or choose another socket= path.",
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
                return log_error_errno(EINVAL,
                                       "systemd passed %d sockets; the socket unit must have exactly one "
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

int server_new(sd_event *event, const char *path, const ConnectionHandler *handler, Server **ret) {
        _cleanup_(server_freep) Server *s = NULL;
        int r;

        s = calloc(1, sizeof *s);
        if (!s)
                return log_oom();
        s->event = event;
        s->handler = handler;
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
        r = sd_event_add_time_relative(s->event, &s->sweep, CLOCK_MONOTONIC, SWEEP_INTERVAL, 5 * USEC_PER_SEC, on_sweep,
                                       s);
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
