/* Replace a file atomically: a reader sees the old or the new content, never a mix, across
 * crashes and power loss (temp file in the same directory, fsync, rename, fsync of the dir). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Temp files are "<prefix><16 hex digits>.<target's name>" in the target's directory. */
#define ATOMIC_TEMP_PREFIX ".aksspark-tmp."

typedef enum AtomicFlags {
        ATOMIC_MKDIR_PARENTS = 1 << 0,  /* create missing parents, mode 0700 */
} AtomicFlags;

typedef struct AtomicResult {
        bool unchanged;          /* content and mode were already right: nothing written */
        bool mode_narrowed;      /* the old file was wider than the mode asked for */
        mode_t old_mode;         /* valid when mode_narrowed */
        bool created;            /* no file was there */
} AtomicResult;

/* Write data to path with mode. A symlink at path stays a symlink and its target is replaced.
 * The owner of an existing file is kept (where we may: root can, others keep at most the
 * group). Content and mode already right: nothing is written (ret->unchanged). On failure the
 * old file is untouched and no temp file remains; the error is a negative errno (-ENOSPC,
 * -EROFS, -EACCES, -EDQUOT, -ENOENT without ATOMIC_MKDIR_PARENTS, -ELOOP, -EISDIR, -EINVAL
 * when the target is not a regular file, ...). ret may be NULL. */
int atomic_replace(const char *path, const void *data, size_t len, mode_t mode, AtomicFlags flags,
                   AtomicResult *ret);

/* Remove temp files a crash left behind next to path's target (regular files named as ours for
 * that target only). Returns how many were removed, or a negative errno. */
int atomic_remove_stale_temps(const char *path);

/* Follow symlinks at path's final component (relative targets from the link's directory, at
 * most 40 hops, else -ELOOP); the result may not exist yet (a dangling link). malloc'd. */
int atomic_resolve_target(const char *path, char **ret);
