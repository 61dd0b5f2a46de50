/* Replace a file atomically: a reader sees the old or the new content, never a mix, across
 * crashes and power loss (temp file in the same directory, fsync, rename, fsync of the dir). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Temp files are "<prefix><16 hex digits>.<target's name>" in the target's directory. */
#define ATOMIC_TEMP_PREFIX ".aksspark-tmp."

typedef enum AtomicFlags {
        ATOMIC_MKDIR_PARENTS = 1 << 0, /* create missing parents, mode 0700 */
} AtomicFlags;

typedef struct AtomicResult {
        bool unchanged;     /* content and mode were already right: nothing written */
        bool mode_narrowed; /* the old file was wider than the mode asked for */
        mode_t old_mode;    /* valid when mode_narrowed */
        bool created;       /* no file was there */
} AtomicResult;

/* Write data to path with mode. A symlink at path stays a symlink and its target is replaced,
 * but a link is followed only as the kernel's fs.protected_symlinks would allow (see
 * atomic_link_is_safe(); else -ENOLINK), and missing parents are created only on the path as
 * given, never where a link points (a dangling link into a missing directory: -ENOENT).
 * The new file belongs to the writer (the fsuid): an existing file's owner is never copied,
 * only its group, by a writer other than root. Content and mode already right: nothing is written (ret->unchanged). On failure the
 * old file is untouched and no temp file remains; the error is a negative errno (-ENOSPC,
 * -EROFS, -EACCES, -EDQUOT, -ENOENT without ATOMIC_MKDIR_PARENTS, -ELOOP, -EISDIR, -EINVAL
 * when the target is not a regular file, -ENOLINK for a link we may not follow, ...). File
 * accesses use the calling thread's fsuid/fsgid (see atomic_identity_enter()). ret may be NULL. */
int atomic_replace(const char *path, const void *data, size_t len, mode_t mode, AtomicFlags flags, AtomicResult *ret);

/* Remove temp files a crash left behind next to path's target (regular files named as ours for
 * that target only). Returns how many were removed, or a negative errno. */
int atomic_remove_stale_temps(const char *path);

/* Follow symlinks at path's final component (relative targets from the link's directory, at
 * most 40 hops, else -ELOOP); the result may not exist yet (a dangling link). malloc'd. */
int atomic_resolve_target(const char *path, char **ret);

/* fs.protected_symlinks' rule: follower (an fsuid) may follow link (lstat) found in dir (stat)
 * unless dir is sticky and world-writable and the link is owned neither by the follower nor by
 * the directory's owner. Pure. */
bool atomic_link_is_safe(uid_t follower, const struct stat *link, const struct stat *dir);

/* A root daemon writes a person's file with that person's rights: when the calling thread's
 * fsuid is 0, whose file path is is decided from the real directory chain, no link followed
 * (the owner of the deepest directory reached from / with O_NOFOLLOW; never a link's owner),
 * and this thread's fsuid/fsgid are switched to
 * that owner. -EPERM when the switch did not take (a seccomp filter refusing setfsuid): never
 * write as root in its place. atomic_identity_leave() switches back. Per thread (setfsuid(2));
 * nothing when not root. */
typedef struct AtomicIdentity {
        bool switched;
        uid_t uid;
        gid_t gid;
} AtomicIdentity;

int atomic_identity_enter(const char *path, AtomicIdentity *saved);
void atomic_identity_leave(const AtomicIdentity *saved);
