/* PKCE (RFC 7636, S256) and the state of one browser sign-in. Pure: the random bytes come in
 * (the caller draws them from util's random source). */
#pragma once

#include <stdint.h>

#include "base/macro.h"
#include "base/secret.h"

#define PKCE_RANDOM_BYTES 48  /* 32 for the verifier, 16 for state */
#define PKCE_CHALLENGE_LEN 43 /* base64url of a SHA-256 */
#define PKCE_STATE_LEN 22     /* base64url of 16 bytes */

typedef struct Pkce {
        Secret *verifier;                       /* 43 characters: base64url of 32 bytes */
        char challenge[PKCE_CHALLENGE_LEN + 1]; /* base64url(SHA-256(verifier)) */
        char state[PKCE_STATE_LEN + 1];         /* checked when the browser comes back */
} Pkce;

int pkce_new(const uint8_t random[static PKCE_RANDOM_BYTES], Pkce *ret);
void pkce_clear(Pkce *p);

/* S256: base64url(SHA-256(verifier)), no padding. */
int pkce_challenge(const char *verifier, char ret[static PKCE_CHALLENGE_LEN + 1]);
