/* Display claims of an access token (account, tenant, expiry). For display only: the
 * signature is never checked and nothing is decided on these. Pure. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct JwtClaims {
        char *account;   /* upn, else unique_name, else preferred_username, else name; NULL if none */
        char *tenant;    /* tid */
        char *object_id; /* oid */
        int64_t exp;     /* 0 if absent */
} JwtClaims;

void jwt_claims_clear(JwtClaims *c);

/* -EBADMSG when the token is not a JWT with a JSON payload. */
int jwt_read_claims(const char *token, size_t len, JwtClaims *ret);

/* bytes to base64url without padding (NUL-terminated, malloc'd). */
int base64url_encode(const void *data, size_t len, char **ret);

/* base64url (padding optional) to bytes; -EINVAL on a bad character. Adds a NUL. */
int base64url_decode(const char *in, size_t len, char **ret, size_t *ret_len);
