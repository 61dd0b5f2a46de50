/* `aksspark-tokenctl metrics --all`: root asks every jump-host instance's socket for its metrics
 * at once and joins them (metrics_join()), labelling each series with the user the kernel says
 * answered: SCM_CREDENTIALS on the answer (SO_PEERCRED would name PID 1, which made the
 * socket-activated listener), or the socket file's owner for an instance that stayed silent. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/atomic.h"
#include "shared/metrics-join.h"
#include "tokenctl/tokenctl.h"

#define METRICS_ALL_TIMEOUT USEC_PER_SEC
#define METRICS_ALL_MAX_ANSWER (1U << 20) /* an endless answer is cut here, and counts as silent */
#define METRICS_ALL_MAX_INSTANCES 4096
#define METRICS_ALL_REQUEST "{\"op\":\"metrics\"}\n"

typedef struct Instance {
        char *name; /* the socket's file name */
        uid_t owner;
        int fd;
        bool sent;
        bool done;  /* a whole answer line arrived */
        bool mixed; /* bytes came from more than one uid, or with none */
        bool have_uid;
        uid_t uid; /* who sent the answer, as the kernel says */
        char *buf;
        size_t len, cap;
        char *user;
        char *text; /* the exposition from the answer */
} Instance;

static void instance_done(Instance *in) {
        safe_close(in->fd);
        free(in->name);
        free(in->buf);
        free(in->user);
        free(in->text);
}

static char *user_name(uid_t uid) {
        struct passwd pw, *res = NULL;
        char buf[4096], *s = NULL;

        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
                return strdup(res->pw_name);
        if (asprintf(&s, "%u", (unsigned) uid) < 0)
                return NULL;
        return s;
}

/* Connect without waiting; -errno when it cannot start (the instance is then down). */
static int instance_connect(const char *dir, Instance *in) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int one = 1;

        if ((size_t) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, in->name) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        in->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (in->fd < 0)
                return -errno;
        /* Before connecting: every byte of the answer then carries its sender's credentials. */
        if (setsockopt(in->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;
        if (connect(in->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                return -errno;
        return 0;
}

static int instance_send(Instance *in) {
        ssize_t n = send(in->fd, METRICS_ALL_REQUEST, strlen(METRICS_ALL_REQUEST), MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0)
                return errno == EAGAIN || errno == ENOTCONN ? 0 : -errno;
        if ((size_t) n != strlen(METRICS_ALL_REQUEST))
                return -EIO; /* a unix stream takes a line this short whole or not at all */
        in->sent = true;
        return 0;
}

/* Read what is there; the kernel never merges bytes of different senders into one recvmsg. */
static int instance_read(Instance *in) {
        for (;;) {
                union {
                        struct cmsghdr h;
                        char space[CMSG_SPACE(sizeof(struct ucred))];
                } control = {};
                struct iovec iov;
                struct msghdr mh = {
                        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control)
                };
                struct cmsghdr *cm;
                bool have = false;
                char *nb;
                ssize_t n;

                if (in->len >= METRICS_ALL_MAX_ANSWER)
                        return -EFBIG;
                if (in->cap - in->len < 16384) {
                        size_t cap = MIN(MAX(in->cap * 2, (size_t) 65536), (size_t) METRICS_ALL_MAX_ANSWER);

                        nb = realloc(in->buf, cap + 1);
                        if (!nb)
                                return -ENOMEM;
                        in->buf = nb;
                        in->cap = cap;
                }
                iov = (struct iovec) { .iov_base = in->buf + in->len, .iov_len = in->cap - in->len };
                n = recvmsg(in->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                if (n == 0)
                        return -ECONNRESET; /* closed before a whole answer */
                for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
                            cm->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
                                struct ucred uc;

                                memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
                                if (in->have_uid && uc.uid != in->uid)
                                        in->mixed = true;
                                in->uid = uc.uid;
                                in->have_uid = have = true;
                        }
                if (!have)
                        in->mixed = true;
                if (memchr(in->buf + in->len, '\n', (size_t) n)) {
                        in->len += (size_t) n;
                        in->buf[in->len] = 0;
                        in->done = true;
                        return 0;
                }
                in->len += (size_t) n;
        }
}

/* The exposition inside a whole answer line; NULL when the answer is not one. */
static char *answer_metrics_text(const char *line) {
        json_t *a = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
        const char *text;
        char *s = NULL;

        if (!a)
                return NULL;
        if (json_is_true(json_object_get(a, "ok")) && (text = tokenctl_get_string(a, "metrics")))
                s = strdup(text);
        json_decref(a);
        return s;
}

static int list_instances(const char *dir, Instance **ret, size_t *ret_n) {
        DIR *d = opendir(dir);
        Instance *items = NULL;
        struct dirent *de;
        size_t n = 0;
        int r = 0;

        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                struct stat st;
                Instance *ni;

                if (l <= 5 || strcmp(de->d_name + l - 5, ".sock") != 0)
                        continue;
                /* Only a socket itself: a link, a FIFO or a file there is nobody's instance. */
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode))
                        continue;
                if (n >= METRICS_ALL_MAX_INSTANCES) {
                        r = -E2BIG;
                        break;
                }
                ni = realloc(items, (n + 1) * sizeof(Instance));
                if (!ni) {
                        r = -ENOMEM;
                        break;
                }
                items = ni;
                items[n] = (Instance) { .fd = -EBADF, .owner = st.st_uid, .name = strdup(de->d_name) };
                if (!items[n++].name) {
                        r = -ENOMEM;
                        break;
                }
        }
        closedir(d);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        instance_done(&items[i]);
                free(items);
                return r;
        }
        *ret = items;
        *ret_n = n;
        return 0;
}

/* Ask them all at once; whatever has not answered whole by the deadline is down. */
static void ask_all(const char *dir, Instance *items, size_t n) {
        usec_t deadline = now_monotonic() + METRICS_ALL_TIMEOUT;
        _cleanup_free_ struct pollfd *pfds = calloc(n ? n : 1, sizeof(struct pollfd));

        if (!pfds)
                return;
        for (size_t i = 0; i < n; i++)
                if (instance_connect(dir, &items[i]) < 0 || instance_send(&items[i]) < 0)
                        items[i].fd = safe_close(items[i].fd);

        for (;;) {
                usec_t now = now_monotonic();
                size_t waiting = 0;

                for (size_t i = 0; i < n; i++) {
                        Instance *in = &items[i];

                        pfds[i] = (struct pollfd) { .fd = in->done || in->fd < 0 ? -1 : in->fd,
                                                    .events = in->sent ? POLLIN : POLLOUT };
                        if (pfds[i].fd >= 0)
                                waiting++;
                }
                if (waiting == 0 || now >= deadline)
                        break;
                if (poll(pfds, n, (int) ((deadline - now + 999) / 1000)) < 0 && errno != EINTR)
                        break;
                for (size_t i = 0; i < n; i++) {
                        Instance *in = &items[i];
                        int r = 0;

                        if (pfds[i].fd < 0 || pfds[i].revents == 0)
                                continue;
                        if (!in->sent)
                                r = instance_send(in);
                        else
                                r = instance_read(in);
                        if (r < 0)
                                in->fd = safe_close(in->fd);
                }
        }
}

int tokenctl_metrics_all(const char *dir, const char *output) {
        _cleanup_free_ MetricsInstance *joined = NULL;
        _cleanup_free_ char *text = NULL;
        Instance *items = NULL;
        size_t n = 0;
        int r, status = 0;

        if (geteuid() != 0)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT,
                                     "metrics --all asks every person's daemon: run it as root.");
        r = list_instances(dir, &items, &n);
        if (r < 0)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot list %s: %s", dir, strerror(-r));
        ask_all(dir, items, n);

        joined = calloc(n ? n : 1, sizeof(MetricsInstance));
        if (!joined)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                Instance *in = &items[i];
                bool answered = in->done && in->have_uid && !in->mixed;

                in->user = user_name(answered ? in->uid : in->owner);
                if (!in->user) {
                        r = -ENOMEM;
                        break;
                }
                if (answered)
                        in->text = answer_metrics_text(in->buf);
                joined[i] = (MetricsInstance) { .user = in->user,
                                                .text = in->text,
                                                .len = in->text ? strlen(in->text) : 0 };
        }
        if (r >= 0)
                r = metrics_join(joined, n, &text);
        for (size_t i = 0; i < n; i++)
                instance_done(&items[i]);
        free(items);
        if (r < 0)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot join the metrics: %s", strerror(-r));

        if (!output)
                r = write_all(STDOUT_FILENO, text, strlen(text));
        else
                r = atomic_replace(output, text, strlen(text), 0644, 0, NULL);
        if (r < 0)
                status = tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot write %s: %s", output ?: "to standard output",
                                       strerror(-r));
        return status;
}
