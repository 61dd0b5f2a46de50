/* Replace a file so that readers see the old or the new content, never a mix: a temp file in
 * the same directory, written and fsync'd, renamed over the target, then the directory fsync'd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/macro.h"
#include "base/secret.h"
#include "base/util.h"

#define ATOMIC_MAX_HOPS 40        /* as the kernel's MAXSYMLINKS */
#define ATOMIC_TEMP_RANDOM_LEN 16 /* hex digits after the prefix */

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

/* The identity the kernel checks our file accesses against (setfsuid(-1) changes nothing).
 * A seccomp filter may refuse setfsuid (-1, EPERM): then nobody could have switched it, and it
 * is the effective uid. */
static uid_t current_fsuid(void) {
        int r = setfsuid((uid_t) -1);

        return r < 0 ? geteuid() : (uid_t) r;
}

static gid_t current_fsgid(void) {
        int r = setfsgid((gid_t) -1);

        return r < 0 ? getegid() : (gid_t) r;
}

static int link_check_directory(const char *link_path, const struct stat *link);

bool atomic_link_is_safe(uid_t follower, const struct stat *link, const struct stat *dir) {
        bool sticky_world_writable = (dir->st_mode & S_ISVTX) && (dir->st_mode & S_IWOTH);

        return !sticky_world_writable || link->st_uid == follower || link->st_uid == dir->st_uid;
}

/* May we follow the link at link_path (lstat'ed into link)? -ENOLINK when not. */
static int link_check_directory(const char *link_path, const struct stat *link) {
        _cleanup_free_ char *dir = NULL, *base = NULL;
        struct stat st;
        int r;

        r = path_split(link_path, &dir, &base);
        if (r < 0)
                return r;
        if (stat(dir, &st) < 0)
                return -errno;
        return atomic_link_is_safe(current_fsuid(), link, &st) ? 0 : -ENOLINK;
}

/* Follow links at path's final component as the kernel would with fs.protected_symlinks=1
 * (and whatever that sysctl says): a link in a sticky world-writable directory is followed
 * only when its owner is us or the directory's owner. *ret_hops: how many links were followed. */
static int resolve_target(const char *path, char **ret, unsigned *ret_hops) {
        _cleanup_free_ char *cur = NULL;
        unsigned hops;
        int r;

        if (!path || !*path)
                return -EINVAL;
        cur = strdup(path);
        if (!cur)
                return -ENOMEM;

        for (hops = 0;; hops++) {
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
                r = link_check_directory(cur, &st);
                if (r < 0)
                        return r;

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
        *ret_hops = hops;
        return 0;
}

int atomic_resolve_target(const char *path, char **ret) {
        unsigned hops = 0;

        return resolve_target(path, ret, &hops);
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

        if (asprintf(ret, "%s%016llx.%.*s", ATOMIC_TEMP_PREFIX, (unsigned long long) random_u64(), (int) n, base) < 0)
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

/* The temp file is the writer's (our fsuid: the person whose file it is, see
 * atomic_identity_enter()) and never given to anyone else: whoever planted the old file must
 * not end up owning the new content. Only the old group is kept, and only by a writer that is
 * not root (the kernel then allows only a group the writer is in). Then the exact mode (umask
 * cannot widen it, but it could narrow it). */
static int temp_set_group_and_mode(int fd, const struct stat *old, mode_t mode) {
        if (old && current_fsuid() != 0 && old->st_gid != current_fsgid() && fchown(fd, (uid_t) -1, old->st_gid) < 0 &&
            errno != EPERM)
                return -errno;
        if (fchmod(fd, mode) < 0)
                return -errno;
        return 0;
}

/* Open dir, creating what is missing (mode), as an openat() walk: an existing component is
 * resolved by the kernel (its own protected_symlinks rule applies), and below the first
 * directory we create nothing is followed (O_NOFOLLOW), so a link swapped in meanwhile, or a
 * dangling one on the way, fails (-ELOOP, -ENOTDIR) instead of creating elsewhere. */
static int open_dir_creating(const char *dir, mode_t mode) {
        _cleanup_free_ char *copy = strdup(dir);
        _cleanup_close_ int fd = -EBADF;
        bool created = false;
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        fd = open(dir[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;

        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (created ? O_NOFOLLOW : 0), next;

                next = openat(fd, c, flags);
                if (next < 0 && errno == ENOENT) {
                        if (mkdirat(fd, c, mode) < 0 && errno != EEXIST)
                                return -errno;
                        created = true;
                        next = openat(fd, c, flags | O_NOFOLLOW);
                }
                if (next < 0)
                        return -errno;
                safe_close(fd);
                fd = next;
        }
        return TAKE_FD(fd);
}

int atomic_replace(const char *path, const void *data, size_t len, mode_t mode, AtomicFlags flags, AtomicResult *ret) {
        _cleanup_free_ char *target = NULL, *dir = NULL, *base = NULL, *tmp = NULL;
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        AtomicResult res = {};
        struct stat st;
        bool exists = true;
        unsigned hops;
        int r;

        if (!path || (!data && len > 0))
                return -EINVAL;
        mode &= 07777;

        r = resolve_target(path, &target, &hops);
        if (r < 0)
                return r;
        r = path_split(target, &dir, &base);
        if (r < 0)
                return r;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        /* Never create directories where a link points: only on the path as configured. */
        if (dfd < 0 && errno == ENOENT && (flags & ATOMIC_MKDIR_PARENTS) && hops == 0)
                dfd = open_dir_creating(dir, 0700);
        else if (dfd < 0)
                dfd = -errno;
        if (dfd < 0)
                return dfd;

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

        r = temp_set_group_and_mode(fd, exists ? &st : NULL, mode);
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

/* Whose file path is, from the real directory chain: walk its parent directories from the root
 * with openat(O_PATH | O_NOFOLLOW), fstat'ing what was opened, never following a link. The
 * owner of the deepest directory reached decides; a link or a missing component stops the walk
 * (the person creates what is missing). A link's own owner never decides: in root's sticky
 * /tmp anyone may plant one, and root's token must not be written with the planter's rights. */
static int owner_of_real_chain(const char *path, uid_t *ret_uid, gid_t *ret_gid) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        char *save = NULL, *c, *next_c;

        if (!copy)
                return -ENOMEM;
        fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;

        for (c = strtok_r(copy, "/", &save); c; c = next_c) {
                _cleanup_close_ int next = -EBADF;
                struct stat cst;

                next_c = strtok_r(NULL, "/", &save);
                next = openat(fd, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0) {
                        if (errno == ENOENT)
                                break;
                        return -errno;
                }
                if (fstat(next, &cst) < 0)
                        return -errno;
                if (!S_ISDIR(cst.st_mode) || !next_c)
                        break; /* a link, or the file itself: its directory decides */
                st = cst;
                safe_close(fd);
                fd = TAKE_FD(next);
        }
        *ret_uid = st.st_uid;
        *ret_gid = st.st_gid;
        return 0;
}

int atomic_identity_enter(const char *path, AtomicIdentity *saved) {
        uid_t uid;
        gid_t gid;
        int r;

        *saved = (AtomicIdentity) {};
        if (!path || current_fsuid() != 0)
                return 0;
        r = owner_of_real_chain(path, &uid, &gid);
        if (r < 0)
                return r;
        if (uid == 0)
                return 0;
        saved->uid = 0;
        saved->gid = current_fsgid();
        /* Both must take: a filter that refuses setfsuid would otherwise leave us writing as
         * root where the person's rights were meant. setfsgid first, while we may. */
        (void) setfsgid(gid);
        (void) setfsuid(uid);
        saved->switched = true;
        if (current_fsuid() != uid || current_fsgid() != gid) {
                atomic_identity_leave(saved);
                *saved = (AtomicIdentity) {};
                return -EPERM;
        }
        return 0;
}

void atomic_identity_leave(const AtomicIdentity *saved) {
        if (!saved || !saved->switched)
                return;
        (void) setfsuid(saved->uid);
        (void) setfsgid(saved->gid);
}
