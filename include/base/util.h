/* Time, durations, path expansion and small file helpers used across modules. */
#pragma once

#include <string.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/macro.h"

typedef uint64_t usec_t;

#define USEC_INFINITY ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC ((usec_t) 1000ULL)
#define USEC_PER_SEC ((usec_t) 1000000ULL)
#define USEC_PER_MINUTE ((usec_t) (60ULL * USEC_PER_SEC))
#define USEC_PER_HOUR ((usec_t) (60ULL * USEC_PER_MINUTE))

usec_t now_realtime(void);
usec_t now_monotonic(void);
usec_t now_boottime(void); /* counts suspend too: for delays that should elapse during a suspend */

/* "90", "90s", "10m", "1h" (also combined: "1h30m"). -EINVAL on anything else, -ERANGE past a year. */
int parse_duration(const char *s, usec_t *ret);

/* "41m", "1h05m", "30s", "0s": what a person reads in `status`. Returns buf. */
char *format_duration(char *buf, size_t size, usec_t d);

/* RFC 3339 UTC, e.g. 2026-11-26T10:00:00Z. Returns buf. */
char *format_rfc3339(char *buf, size_t size, usec_t realtime);

typedef const char *(*env_lookup_fn)(const char *name, void *userdata);

/* Expand a leading "~" or "~/" to home and every "${VAR}" through lookup.
 * -ENXIO when a variable is unset, -EINVAL on a malformed "${", -ENOMEM. */
int path_expand(const char *in, const char *home, env_lookup_fn lookup, void *userdata, char **ret);

/* The home directory of the current user: $HOME when absolute, else the password database. */
int get_home_dir(char **ret);

/* Read a whole file of at most max bytes (-EFBIG beyond). Adds a NUL after the data. */
int read_file_full(const char *path, size_t max, char **ret, size_t *ret_len);
/* As read_file_full(), for files that must be regular (outputs, inputs next to them): opened
 * with O_NONBLOCK so a FIFO cannot hold the caller; a directory -EISDIR, a FIFO, device or
 * socket -EINVAL. */
int read_regular_file(const char *path, size_t max, char **ret, size_t *ret_len);

/* Open path for reading only when it is a regular file: a link at its last component is not
 * followed and a FIFO cannot block (both -EBADMSG: not a file we wrote). Returns the fd, its
 * stat in ret_st. */
int open_regular_nofollow(const char *path, struct stat *ret_st);

/* Secure random bits for jitter and ids. Never fails (falls back to a mix of clocks). */
uint64_t random_u64(void);

/* A v4 UUID string, as sent in client-request-id. buf must hold 37 bytes. */
char *uuid4_string(char buf[static 37]);

#define streq(a, b) (strcmp((a), (b)) == 0)
/* Equal strings, or both NULL (systemd's streq_ptr). */
bool streq_ptr(const char *a, const char *b);
/* Equal strings, both set: unlike streq_ptr(), two missing values are not the same value. */
bool streq_set(const char *a, const char *b);

/* Write all of len bytes, retrying after EINTR and short writes; -errno. No stdio buffer keeps a
 * copy, so it is fit for secrets. */
int write_all(int fd, const void *data, size_t len);

/* A growable string for joining text that is not secret (names, paths, error lines). A failed
 * allocation is sticky: later appends do nothing and strbuf_take() returns NULL. */
typedef struct StrBuf {
        char *s;
        size_t len, cap;
        bool oom;
} StrBuf;

void strbuf_append(StrBuf *b, const char *s);
void strbuf_appendf(StrBuf *b, const char *format, ...) _printf_(2, 3);
/* Cut to at most len bytes. */
void strbuf_truncate(StrBuf *b, size_t len);
/* The joined string ("" when nothing was appended), now the caller's; NULL after a failed
 * allocation. Leaves b empty. */
char *strbuf_take(StrBuf *b);
void strbuf_done(StrBuf *b);

bool string_has_prefix(const char *s, const char *prefix);
bool profile_name_is_valid(const char *name);

/* mkdir -p with the given mode for each directory it creates. */
int mkdir_parents(const char *path, mode_t mode);

/* Length of the valid UTF-8 sequence at s (at most n > 0 bytes), 0 if invalid (overlong,
 * surrogate, past U+10FFFF, cut short). */
size_t utf8_sequence_length(const unsigned char *s, size_t n);

/* The value of one hexadecimal digit, either case; -1 for anything else. */
int unhexchar(char c);
