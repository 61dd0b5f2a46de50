/* Secrets (access tokens, refresh tokens, device codes, request bodies that carry them).
 * Opaque, so the logging code cannot format one; wiped when freed. Only the output writers,
 * the state store and the HTTP body builder reveal the bytes.
 *
 * Not MADV_DONTDUMP, not mlock()ed, by choice: the daemon turns dumps off for the whole process
 * (PR_SET_DUMPABLE 0, RLIMIT_CORE 0), which also covers libcurl's, OpenSSL's and jansson's
 * copies that a per-page advice on these small heap objects would miss; and the access token is
 * in the output files on disk, so keeping it out of swap would not keep it off the disk. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "base/macro.h"

typedef struct Secret Secret;

Secret *secret_new(const char *bytes, size_t len); /* copies; NULL on ENOMEM */
Secret *secret_new_string(const char *s);
Secret *secret_adopt(char *buf, size_t len); /* takes a malloc'd buffer (NUL after len) */
Secret *secret_dup(const Secret *s);
Secret *secret_free(Secret *s);             /* wipes; NULL-safe; returns NULL */
const char *secret_reveal(const Secret *s); /* NUL-terminated */
size_t secret_len(const Secret *s);
bool secret_equal(const Secret *a, const Secret *b); /* constant time for equal lengths */

/* Wipe and free a plain buffer that held secret bytes. */
void erase_and_free(void *p, size_t len);

/* Grow a buffer that may hold secret bytes to cap: copy its first used bytes into a new one and
 * wipe the old (realloc could leave a copy behind). -ENOMEM leaves *buf and *buf_cap as they were. */
int erase_realloc(char **buf, size_t *buf_cap, size_t used, size_t cap);

DEFINE_TRIVIAL_CLEANUP_FUNC(Secret *, secret_free);
#define _cleanup_secret_ _cleanup_(secret_freep)
