/* Replace a file so that readers see the old or the new content, never a mix: a temp file in
 * the same directory, written and fsync'd, renamed over the target, then the directory fsync'd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "macro.h"
#include "secret.h"
#include "util.h"

#define ATOMIC_MAX_HOPS 40              /* as the kernel's MAXSYMLINKS */
#define ATOMIC_TEMP_RANDOM_LEN 16       /* hex digits after the prefix */

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

static int path_split(const char *path, char **ret_dir, char **ret_base) {
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *d = NULL, *b = NULL;

        if (!*path)
                return -EINVAL;
        if (!slash) {
                d = strdup(".");
                b = strdup(path);
        } else {
                d = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
                b = strdup(slash + 1);
        }
        if (!d || !b)
                return -ENOMEM;
        if (!*b || strcmp(b, ".") == 0 || strcmp(b, "..") == 0)
                return -EISDIR;
        *ret_dir = TAKE_PTR(d);
        *ret_base = TAKE_PTR(b);
        return 0;
}

static int readlink_malloc(const char *path, char **ret) {
        for (size_t size = 256; size <= 65536; size *= 2) {
                _cleanup_free_ char *buf = malloc(size);
                ssize_t n;

                if (!buf)
                        return -ENOMEM;
                n = readlink(path, buf, size);
                if (n < 0)
                        return -errno;
                if ((size_t) n < size) {
                        buf[n] = 0;
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
        }
        return -ENAMETOOLONG;
}

int atomic_resolve_target(const char *path, char **ret) {
        _cleanup_free_ char *cur = NULL;
        int r;

        if (!path || !*path)
                return -EINVAL;
        cur = strdup(path);
        if (!cur)
                return -ENOMEM;

        for (unsigned hops = 0;; hops++) {
                _cleanup_free_ char *target = NULL;
                struct stat st;
                char *next;

                if (lstat(cur, &st) < 0) {
                        if (errno == ENOENT) /* missing or dangling: this is where the file goes */
                                break;
                        return -errno;
                }
                if (!S_ISLNK(st.st_mode))
                        break;
                if (hops >= ATOMIC_MAX_HOPS)
                        return -ELOOP;

                r = readlink_malloc(cur, &target);
                if (r < 0)
                        return r;
                if (!*target)
                        return -ENOENT;

                /* A relative target is relative to the directory holding the link. */
                if (target[0] == '/')
                        next = TAKE_PTR(target);
                else {
                        const char *slash = strrchr(cur, '/');

                        if (!slash)
                                next = TAKE_PTR(target);
                        else if (asprintf(&next, "%.*s/%s", (int) (slash - cur), cur, target) < 0)
                                return -ENOMEM;
                }
                free(cur);
                cur = next;
        }

        *ret = TAKE_PTR(cur);
        return 0;
}

/* The directory and name of the file path finally names, through its symlinks. */
static int target_split(const char *path, char **ret_dir, char **ret_base) {
        _cleanup_free_ char *target = NULL;
        int r;

        r = atomic_resolve_target(path, &target);
        if (r < 0)
                return r;
        return path_split(target, ret_dir, ret_base);
}

/* The longest part of the target's name that fits into a temp name. */
static size_t temp_base_room(void) {
        return NAME_MAX - strlen(ATOMIC_TEMP_PREFIX) - ATOMIC_TEMP_RANDOM_LEN - 1;
}

static int temp_name(const char *base, char **ret) {
        size_t n = MIN(strlen(base), temp_base_room());

        if (asprintf(ret, "%s%016llx.%.*s", ATOMIC_TEMP_PREFIX, (unsigned long long) random_u64(), (int) n,
                     base) < 0)
                return -ENOMEM;
        return 0;
}

/* Is name one of our temp files for base? "<prefix><16 hex>.<base, truncated as temp_name does>" */
static bool temp_name_matches(const char *name, const char *base) {
        size_t plen = strlen(ATOMIC_TEMP_PREFIX), n = MIN(strlen(base), temp_base_room());

        if (strncmp(name, ATOMIC_TEMP_PREFIX, plen) != 0)
                return false;
        name += plen;
        for (unsigned i = 0; i < ATOMIC_TEMP_RANDOM_LEN; i++)
                if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
                        return false;
        name += ATOMIC_TEMP_RANDOM_LEN;
        return name[0] == '.' && strlen(name + 1) == n && strncmp(name + 1, base, n) == 0;
}

/* Does the existing file hold exactly data? Any doubt (unreadable, changed) means no. */
static bool file_content_equals(int dfd, const char *base, const void *data, size_t len) {
        _cleanup_close_ int fd = -EBADF;
        char *buf;
        size_t got = 0;
        bool equal = false;

        fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return false;
        buf = malloc(len + 1);
        if (!buf)
                return false;
        for (;;) {
                ssize_t n = read(fd, buf + got, len + 1 - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
                if (got > len)
                        break;
        }
        equal = got == len && (len == 0 || memcmp(buf, data, len) == 0);
        erase_and_free(buf, len + 1); /* it may have held a token */
        return equal;
}

/* Give the temp file the old file's owner where we may (root writing a user's file), then the
 * exact mode (umask cannot widen it, but it could narrow it). */
static int temp_set_owner_and_mode(int fd, const struct stat *old, mode_t mode) {
        if (old && (old->st_uid != geteuid() || old->st_gid != getegid())) {
                if (fchown(fd, old->st_uid, old->st_gid) < 0) {
                        if (errno != EPERM)
                                return -errno;
                        /* Not root: we may still be a member of the old group. */
                        if (fchown(fd, (uid_t) -1, old->st_gid) < 0 && errno != EPERM)
                                return -errno;
                }
        }
        if (fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

int atomic_replace(const char *path, const void *data, size_t len, mode_t mode, AtomicFlags flags,
                   AtomicResult *ret) {
        _cleanup_free_ char *dir = NULL, *base = NULL, *tmp = NULL;
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        AtomicResult res = {};
        struct stat st;
        bool exists = true;
        int r;

        if (!path || (!data && len > 0))
                return -EINVAL;
        mode &= 07777;

        r = target_split(path, &dir, &base);
        if (r < 0)
                return r;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 && errno == ENOENT && (flags & ATOMIC_MKDIR_PARENTS)) {
                r = mkdir_parents(dir, 0700);
                if (r < 0)
                        return r;
                dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (dfd < 0)
                return -errno;

        if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT)
                        return -errno;
                exists = false;
                res.created = true;
        } else if (S_ISDIR(st.st_mode))
                return -EISDIR;
        else if (!S_ISREG(st.st_mode))
                return -EINVAL; /* a device, FIFO or socket: not ours to replace */

        if (exists && (st.st_mode & 07777) == mode && (size_t) st.st_size == len &&
            file_content_equals(dfd, base, data, len)) {
                res.unchanged = true;
                if (ret)
                        *ret = res;
                return 0;
        }
        if (exists && (st.st_mode & 07777 & ~mode)) {
                res.mode_narrowed = true;
                res.old_mode = st.st_mode & 07777;
        }

        for (unsigned attempt = 0;; attempt++) {
                free(tmp);
                tmp = NULL;
                r = temp_name(base, &tmp);
                if (r < 0)
                        return r;
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
                if (fd >= 0)
                        break;
                if (errno != EEXIST || attempt >= 16)
                        return -errno;
        }

        r = temp_set_owner_and_mode(fd, exists ? &st : NULL, mode);
        if (r >= 0)
                r = write_all(fd, data, len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && renameat(dfd, tmp, dfd, base) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dfd, tmp, 0);
                return r;
        }

        /* The rename is done: the new content is what readers see, so a failing directory fsync
         * cannot be reported as "old file kept". It only weakens durability across power loss,
         * and the next write fsyncs again. */
        (void) fsync(dfd);

        if (ret)
                *ret = res;
        return 0;
}

int atomic_remove_stale_temps(const char *path) {
        _cleanup_free_ char *dir = NULL, *base = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int r, removed = 0;

        r = target_split(path, &dir, &base);
        if (r < 0)
                return r;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;

        while ((errno = 0, de = readdir(d))) {
                struct stat st;

                if (!temp_name_matches(de->d_name, base))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
                        if (errno != ENOENT)
                                return -errno;
                        continue;
                }
                removed++;
        }
        if (errno != 0)
                return -errno;
        return removed;
}
