/* The state directory: per profile what a restart needs to go on without a new sign-in
 * (refresh token, last access token, account), one 0600 JSON file written atomically; and the
 * lock that keeps a second daemon off the same directory. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/seal.h"
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
        bool sealed;          /* read from a sealed file (format 2); ignored when writing */
} StoredProfile;

/* The one way of signing in there was before `auth` was recorded. */
#define STORE_AUTH_DEFAULT "device_code"

void stored_profile_clear(StoredProfile *s);

/* Pure: to and from the file's JSON. Format 1 holds the tokens in clear; format 2 holds them
 * sealed (AES-256-GCM under key, nonce fresh for every save) in "sealed", bound to the format and
 * the identity (tenant, client_id, authority_host, server_id, auth) as associated data.
 * store_serialize() writes format 1, store_serialize_sealed() format 2. store_parse_sealed()
 * reads both (key NULL: no key at hand): -EBADMSG corrupt, -ENOKEY sealed and key NULL,
 * -EKEYREJECTED sealed under another key or for another identity. store_parse() is
 * store_parse_sealed() without a key. */
int store_serialize(const StoredProfile *s, Secret **ret);
int store_serialize_sealed(const StoredProfile *s, const uint8_t key[SEAL_KEY_SIZE],
                           const uint8_t nonce[SEAL_NONCE_SIZE], Secret **ret);
int store_parse(const char *text, size_t len, StoredProfile *ret);
int store_parse_sealed(const char *text, size_t len, const uint8_t *key, StoredProfile *ret);

/* <state_dir>/<profile>.json (-EINVAL for a name profile_name_is_valid() refuses).
 * The file is JSON with "version": 1 or 2; unknown fields are ignored, anything else unexpected
 * (partial, wrong types, another version, over 1 MiB) is -EBADMSG.
 * load: -ENOENT none, -EBADMSG corrupt or not a regular file (a symlink, FIFO or directory is
 *       refused, never followed). A wider mode than 0600 is narrowed and the file still used.
 * save: atomic (atomic_replace), mode 0600, state_dir created 0700; a symlink there is replaced,
 *       not written through; stale temp files of a crashed save are removed first.
 * remove: 0 also when there was none; the directory is fsync'd so a logout survives power loss. */
int store_load(const char *state_dir, const char *profile, StoredProfile *ret);
/* store_load() with the key for a sealed file (NULL: none), with store_parse_sealed()'s errors. */
int store_load_sealed(const char *state_dir, const char *profile, const uint8_t *key, StoredProfile *ret);
int store_save(const char *state_dir, const char *profile, const StoredProfile *s);
/* store_save()'s file I/O alone, for text from store_serialize() (it may run off the loop). */
int store_save_text(const char *state_dir, const char *profile, const Secret *text);
int store_remove(const char *state_dir, const char *profile);

/* Create state_dir (0700) and take <state_dir>/lock (flock, O_CLOEXEC; our pid written into it).
 * -EBUSY when another open lock holds it, with the holder's pid in *ret_holder (0 if unknown;
 * ret_holder may be NULL). The lock lives as long as *ret_fd; the kernel drops it when the
 * holder dies, so there is no stale lock to clean up. */
int store_lock(const char *state_dir, int *ret_fd, pid_t *ret_holder);
