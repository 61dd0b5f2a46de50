/* The state directory: per profile what a restart needs to go on without a new sign-in
 * (refresh token, last access token, account), one 0600 JSON file written atomically; and the
 * lock that keeps a second daemon off the same directory. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "secret.h"
#include "util.h"

typedef struct StoredProfile {
        char *tenant;            /* what the tokens were issued for: a state of another */
        char *client_id;         /* tenant/client/authority is "foreign" and not used */
        char *authority_host;
        Secret *refresh_token;
        Secret *access_token;    /* NULL if none */
        usec_t obtained;         /* realtime the access token's request was sent */
        usec_t expires_on;       /* realtime */
        usec_t refresh_in;       /* AAD's hint, 0 if none */
        char *account;           /* display only */
} StoredProfile;

void stored_profile_clear(StoredProfile *s);

/* Pure: to and from the file's JSON. */
int store_serialize(const StoredProfile *s, Secret **ret);
int store_parse(const char *text, size_t len, StoredProfile *ret); /* -EBADMSG if corrupt */

/* <state_dir>/<profile>.json. load: -ENOENT none, -EBADMSG corrupt. */
int store_load(const char *state_dir, const char *profile, StoredProfile *ret);
int store_save(const char *state_dir, const char *profile, const StoredProfile *s);
int store_remove(const char *state_dir, const char *profile);

/* Create state_dir (0700) and take <state_dir>/lock. -EBUSY when another process holds it,
 * with its pid in *ret_holder (0 if unknown). The lock lives as long as *ret_fd. */
int store_lock(const char *state_dir, int *ret_fd, pid_t *ret_holder);
