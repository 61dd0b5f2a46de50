/* bench helper: the cheapest possible Unix-socket server (epoll, echoes every byte back), the
 * baseline that bench_socket.py compares aksspark-tokend's socket with.
 * Usage: echo_server PATH (prints "READY" once listening; SIGTERM stops it). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct rlimit rl;
        char buf[65536];
        int lfd, ep;

        if (argc != 2 || strlen(argv[1]) >= sizeof sa.sun_path) {
                fprintf(stderr, "usage: echo_server PATH\n");
                return 64;
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        strcpy(sa.sun_path, argv[1]);
        unlink(argv[1]);
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, SOMAXCONN) < 0) {
                perror("listen");
                return 1;
        }
        ep = epoll_create1(EPOLL_CLOEXEC);
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &(struct epoll_event) { .events = EPOLLIN, .data.fd = lfd });
        printf("READY\n");
        fflush(stdout);

        for (;;) {
                struct epoll_event ev[64];
                int n = epoll_wait(ep, ev, 64, -1);

                for (int i = 0; i < n; i++) {
                        int fd = ev[i].data.fd;

                        if (fd == lfd) {
                                int c;
                                while ((c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
                                        epoll_ctl(ep, EPOLL_CTL_ADD, c,
                                                  &(struct epoll_event) { .events = EPOLLIN, .data.fd = c });
                                continue;
                        }
                        ssize_t r = read(fd, buf, sizeof buf);
                        if (r <= 0) {
                                close(fd);
                                continue;
                        }
                        /* Client sockets are blocking: a short write just waits for the reader. */
                        for (ssize_t off = 0; off < r;) {
                                ssize_t w = write(fd, buf + off, (size_t) (r - off));
                                if (w < 0) {
                                        if (errno == EINTR)
                                                continue;
                                        break;
                                }
                                off += w;
                        }
                }
        }
}
