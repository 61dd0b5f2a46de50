/* The state directory: per profile what a restart needs to go on without a new sign-in
 * (refresh token, last access token, account), one 0600 JSON file written atomically; and the
 * lock that keeps a second daemon off the same directory. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "base/secret.h"
#include "base/util.h"

typedef struct StoredProfile {
        char *tenant;    /* what the tokens were issued for: a state of another */
        char *client_id; /* tenant/client/authority is "foreign" and not used */
        char *authority_host;
        char *server_id; /* NULL in files written before it was recorded: unknown */
        char *auth;      /* how the person signed in; STORE_AUTH_DEFAULT when absent */
        Secret *refresh_token;
        Secret *access_token; /* NULL if none */
        usec_t obtained;      /* realtime the access token's request was sent */
        usec_t expires_on;    /* realtime */
        usec_t refresh_in;    /* AAD's hint, 0 if none */
        char *account;        /* display only */
} StoredProfile;

/* The one way of signing in there was before `auth` was recorded. */
#define STORE_AUTH_DEFAULT "device_code"

void stored_profile_clear(StoredProfile *s);

/* Pure: to and from the file's JSON. */
int store_serialize(const StoredProfile *s, Secret **ret);
int store_parse(const char *text, size_t len, StoredProfile *ret); /* -EBADMSG if corrupt */

/* <state_dir>/<profile>.json (-EINVAL for a name profile_name_is_valid() refuses).
 * The file is JSON with "version": 1; unknown fields are ignored, anything else unexpected
 * (partial, wrong types, another version, over 1 MiB) is -EBADMSG.
 * load: -ENOENT none, -EBADMSG corrupt or not a regular file (a symlink, FIFO or directory is
 *       refused, never followed). A wider mode than 0600 is narrowed and the file still used.
 * save: atomic (atomic_replace), mode 0600, state_dir created 0700; a symlink there is replaced,
 *       not written through; stale temp files of a crashed save are removed first.
 * remove: 0 also when there was none; the directory is fsync'd so a logout survives power loss. */
int store_load(const char *state_dir, const char *profile, StoredProfile *ret);
int store_save(const char *state_dir, const char *profile, const StoredProfile *s);
/* store_save()'s file I/O alone, for text from store_serialize() (it may run off the loop). */
int store_save_text(const char *state_dir, const char *profile, const Secret *text);
int store_remove(const char *state_dir, const char *profile);

/* Create state_dir (0700) and take <state_dir>/lock (flock, O_CLOEXEC; our pid written into it).
 * -EBUSY when another open lock holds it, with the holder's pid in *ret_holder (0 if unknown;
 * ret_holder may be NULL). The lock lives as long as *ret_fd; the kernel drops it when the
 * holder dies, so there is no stale lock to clean up. */
int store_lock(const char *state_dir, int *ret_fd, pid_t *ret_holder);
