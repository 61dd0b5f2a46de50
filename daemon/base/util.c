/* Time, durations, path expansion and small file helpers. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/secret.h"
#include "base/util.h"

static usec_t timespec_to_usec(const struct timespec *ts) {
        return (usec_t) ts->tv_sec * USEC_PER_SEC + (usec_t) ts->tv_nsec / 1000;
}

usec_t now_realtime(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return timespec_to_usec(&ts);
}

usec_t now_boottime(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_BOOTTIME, &ts);
        return timespec_to_usec(&ts);
}

usec_t now_monotonic(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return timespec_to_usec(&ts);
}

int parse_duration(const char *s, usec_t *ret) {
        usec_t total = 0;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;

        while (*p) {
                usec_t n = 0, unit;
                const char *start = p;

                while (*p >= '0' && *p <= '9') {
                        if (n > 366ULL * 24 * 3600)
                                return -ERANGE;
                        n = n * 10 + (usec_t) (*p - '0');
                        p++;
                }
                if (p == start)
                        return -EINVAL;
                switch (*p) {
                case 0:
                        if (start != s) /* a bare number only as the whole value: "1h30" is a typo */
                                return -EINVAL;
                        unit = USEC_PER_SEC;
                        break;
                case 's':
                        unit = USEC_PER_SEC;
                        p++;
                        break;
                case 'm':
                        unit = USEC_PER_MINUTE;
                        p++;
                        break;
                case 'h':
                        unit = USEC_PER_HOUR;
                        p++;
                        break;
                default:
                        return -EINVAL;
                }
                total += n * unit;
                if (total > 366ULL * 24 * USEC_PER_HOUR)
                        return -ERANGE;
        }

        *ret = total;
        return 0;
}

char *format_duration(char *buf, size_t size, usec_t d) {
        usec_t s = d / USEC_PER_SEC;

        if (d == USEC_INFINITY)
                snprintf(buf, size, "never");
        else if (s >= 3600)
                snprintf(buf, size, "%lluh%02llum", (unsigned long long) (s / 3600),
                         (unsigned long long) (s % 3600 / 60));
        else if (s >= 60)
                snprintf(buf, size, "%llum", (unsigned long long) (s / 60));
        else
                snprintf(buf, size, "%llus", (unsigned long long) s);
        return buf;
}

char *format_rfc3339(char *buf, size_t size, usec_t realtime) {
        time_t t = (time_t) (realtime / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "1970-01-01T00:00:00Z");
        return buf;
}

/* A growing string for path_expand. */
typedef struct Buf {
        char *s;
        size_t len, cap;
} Buf;

static int buf_append(Buf *b, const char *s, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 1);
                char *t = realloc(b->s, cap);
                if (!t)
                        return -ENOMEM;
                b->s = t;
                b->cap = cap;
        }
        memcpy(b->s + b->len, s, n);
        b->len += n;
        b->s[b->len] = 0;
        return 0;
}

int path_expand(const char *in, const char *home, env_lookup_fn lookup, void *userdata, char **ret) {
        Buf b = {};
        const char *p = in;
        int r;

        if (!in)
                return -EINVAL;

        if (p[0] == '~' && (p[1] == 0 || p[1] == '/')) {
                if (!home)
                        return -ENXIO;
                r = buf_append(&b, home, strlen(home));
                if (r < 0)
                        goto fail;
                p++;
        }

        while (*p) {
                const char *dollar = strstr(p, "${");
                const char *end, *value;
                char name[256];

                if (!dollar) {
                        r = buf_append(&b, p, strlen(p));
                        if (r < 0)
                                goto fail;
                        break;
                }
                r = buf_append(&b, p, (size_t) (dollar - p));
                if (r < 0)
                        goto fail;
                end = strchr(dollar + 2, '}');
                if (!end || end == dollar + 2 || (size_t) (end - dollar - 2) >= sizeof name) {
                        r = -EINVAL;
                        goto fail;
                }
                memcpy(name, dollar + 2, (size_t) (end - dollar - 2));
                name[end - dollar - 2] = 0;
                for (const char *c = name; *c; c++)
                        if (!(isalnum((unsigned char) *c) || *c == '_')) {
                                r = -EINVAL;
                                goto fail;
                        }
                value = lookup ? lookup(name, userdata) : NULL;
                if (!value) {
                        r = -ENXIO;
                        goto fail;
                }
                r = buf_append(&b, value, strlen(value));
                if (r < 0)
                        goto fail;
                p = end + 1;
        }

        if (!b.s) {
                b.s = strdup("");
                if (!b.s)
                        return -ENOMEM;
        }
        *ret = b.s;
        return 0;
fail:
        free(b.s);
        return r;
}

int get_home_dir(char **ret) {
        const char *e = getenv("HOME");
        struct passwd pw, *result = NULL;
        char buf[4096];
        char *h;

        /* Under a system unit with User=, systemd sets HOME from the password database; when it is
         * missing or relative, ask the database ourselves rather than trust root's %h. */
        if (e && e[0] == '/')
                h = strdup(e);
        else {
                if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &result) != 0 || !result || !result->pw_dir ||
                    result->pw_dir[0] != '/')
                        return -ENXIO;
                h = strdup(result->pw_dir);
        }
        if (!h)
                return -ENOMEM;
        *ret = h;
        return 0;
}

static int read_fd_full(int fd, size_t max, char **ret, size_t *ret_len);

int read_file_full(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        return read_fd_full(fd, max, ret, ret_len);
}

int read_regular_file(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        /* O_NONBLOCK: opening a FIFO for reading would wait for a writer. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        return read_fd_full(fd, max, ret, ret_len);
}

/* The file may hold a token (spark.properties): the buffer grows through erase_realloc() and is
 * wiped on every failure, so no copy is left in freed memory. */
static int read_fd_full(int fd, size_t max, char **ret, size_t *ret_len) {
        char *data = NULL;
        size_t len = 0, cap = 0;
        int r = 0;

        for (;;) {
                ssize_t n;

                if (cap - len < 4096) {
                        size_t ncap = cap ? cap * 2 : 8192;
                        if (ncap > max + 4096 + 1)
                                ncap = max + 4096 + 1;
                        if (ncap <= cap) {
                                r = -EFBIG;
                                break;
                        }
                        r = erase_realloc(&data, &cap, len, ncap);
                        if (r < 0)
                                break;
                }
                n = read(fd, data + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max) {
                        r = -EFBIG;
                        break;
                }
        }
        if (r < 0) {
                erase_and_free(data, cap);
                return r;
        }

        if (!data) {
                data = malloc(1);
                if (!data)
                        return -ENOMEM;
        }
        data[len] = 0;
        *ret = data;
        if (ret_len)
                *ret_len = len;
        return 0;
}

uint64_t random_u64(void) {
        uint64_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
                return v;
        /* Jitter only: a weak mix is acceptable if the pool is not ready yet. */
        v = now_monotonic() ^ (now_realtime() << 17) ^ ((uint64_t) getpid() << 32);
        v ^= v >> 33;
        v *= 0xff51afd7ed558ccdULL;
        v ^= v >> 33;
        return v;
}

char *uuid4_string(char buf[static 37]) {
        uint8_t b[16];
        uint64_t r1 = random_u64(), r2 = random_u64();

        memcpy(b, &r1, 8);
        memcpy(b + 8, &r2, 8);
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
        snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
        return buf;
}

bool streq_ptr(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool streq_set(const char *a, const char *b) {
        return a && b && streq(a, b);
}

int write_all(int fd, const void *data, size_t len) {
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static bool strbuf_reserve(StrBuf *b, size_t more) {
        size_t cap;
        char *s;

        if (b->oom)
                return false;
        if (more < b->cap - b->len)
                return true;
        if (more > SIZE_MAX / 2 - b->len) {
                b->oom = true;
                return false;
        }
        cap = MAX(b->cap * 2, b->len + more + 1);
        cap = MAX(cap, (size_t) 64);
        s = realloc(b->s, cap);
        if (!s) {
                b->oom = true;
                return false;
        }
        b->s = s;
        b->cap = cap;
        return true;
}

void strbuf_append(StrBuf *b, const char *s) {
        size_t n = strlen(s);

        if (!strbuf_reserve(b, n))
                return;
        memcpy(b->s + b->len, s, n + 1);
        b->len += n;
}

void strbuf_appendf(StrBuf *b, const char *format, ...) {
        va_list ap;
        int n;

        va_start(ap, format);
        n = vsnprintf(NULL, 0, format, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        if (!strbuf_reserve(b, (size_t) n))
                return;
        va_start(ap, format);
        (void) vsnprintf(b->s + b->len, (size_t) n + 1, format, ap);
        va_end(ap);
        b->len += (size_t) n;
}

void strbuf_truncate(StrBuf *b, size_t len) {
        if (len < b->len) {
                b->len = len;
                b->s[len] = 0;
        }
}

char *strbuf_take(StrBuf *b) {
        char *s;

        if (b->oom) {
                strbuf_done(b);
                return NULL;
        }
        s = b->s ? b->s : strdup("");
        *b = (StrBuf) {};
        return s;
}

void strbuf_done(StrBuf *b) {
        free(b->s);
        *b = (StrBuf) {};
}

bool string_has_prefix(const char *s, const char *prefix) {
        return s && prefix && strncmp(s, prefix, strlen(prefix)) == 0;
}

bool profile_name_is_valid(const char *name) {
        if (!name || !*name)
                return false;
        for (const char *p = name; *p; p++)
                if (!(isalnum((unsigned char) *p) || *p == '_' || *p == '.' || *p == '-'))
                        return false;
        return true;
}

int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
size_t utf8_sequence_length(const unsigned char *s, size_t n) {
        size_t len;
        uint32_t cp;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                len = 2;
                cp = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                len = 3;
                cp = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                len = 4;
                cp = s[0] & 0x07;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
                return 0;
        return len;
}

int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int open_regular_nofollow(const char *path, struct stat *ret_st) {
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return errno == ELOOP ? -EBADMSG : -errno;
        if (fstat(fd, ret_st) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        if (!S_ISREG(ret_st->st_mode)) {
                close(fd);
                return -EBADMSG;
        }
        return fd;
}
