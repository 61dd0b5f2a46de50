/* Replace a file atomically: a reader sees the old or the new content, never a mix, across
 * crashes and power loss (temp file in the same directory, fsync, rename, fsync of the dir). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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
 * The owner of an existing file is kept. On failure the old file is untouched and no temp file
 * remains; the error is a negative errno. */
int atomic_replace(const char *path, const void *data, size_t len, mode_t mode, AtomicFlags flags,
                   AtomicResult *ret);

/* Remove temp files a crash left behind in the directory of path (ours only, by prefix). */
int atomic_remove_stale_temps(const char *path);

/* Resolve symlinks at path (the final component may not exist). malloc'd. */
int atomic_resolve_target(const char *path, char **ret);
