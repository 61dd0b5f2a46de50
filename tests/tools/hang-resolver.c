/* LD_PRELOAD shim for the tests: a name lookup that hangs. getaddrinfo() for a name ending in
 * ".hang.invalid" sleeps $AKSSPARK_HANG_RESOLVER_SEC seconds (default 30), then answers
 * 127.0.0.1; a name ending in ".local.invalid" is 127.0.0.1 at once; every other name goes to
 * the C library. Only the calling thread sleeps: it is curl's resolver thread. */
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int ends_with(const char *s, const char *suffix) {
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && strcmp(s + n - m, suffix) == 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
        int (*real)(const char *, const char *, const struct addrinfo *,
                    struct addrinfo **) = (int (*)(const char *, const char *, const struct addrinfo *,
                                                   struct addrinfo **)) dlsym(RTLD_NEXT, "getaddrinfo");

        if (node && ends_with(node, ".hang.invalid")) {
                const char *e = getenv("AKSSPARK_HANG_RESOLVER_SEC");
                struct timespec ts = { .tv_sec = e ? atoi(e) : 30 };

                while (nanosleep(&ts, &ts) < 0)
                        ;
                node = "127.0.0.1";
        } else if (node && ends_with(node, ".local.invalid"))
                node = "127.0.0.1";
        return real(node, service, hints, res);
}
