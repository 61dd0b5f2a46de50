/* bench helper: the smallest client process: connect, send one request line, read one answer
 * line, exit. Compared with `aksspark-tokenctl status` to show what the real client adds to a
 * process spawn and a socket round trip. Usage: echo_client PATH */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        static const char req[] = "{\"op\":\"status\"}\n";
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char buf[65536];
        size_t len = 0;
        int fd;

        if (argc != 2 || strlen(argv[1]) >= sizeof sa.sun_path)
                return 64;
        strcpy(sa.sun_path, argv[1]);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || write(fd, req, sizeof req - 1) < 0)
                return 3;
        while (len < sizeof buf) {
                ssize_t n = read(fd, buf + len, sizeof buf - len);
                if (n <= 0)
                        return 1;
                if (memchr(buf + len, '\n', (size_t) n))
                        break;
                len += (size_t) n;
        }
        return 0;
}
