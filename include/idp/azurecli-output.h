/* What `az account get-access-token --output json` said: the token and its expiry, or why
 * there is none. Pure: text in, token or verdict out. */
#pragma once

#include <stddef.h>

#include "base/util.h"
#include "idp/aad.h"

/* The longest line of az's we keep for last_error. */
#define AZURECLI_MESSAGE_MAX 300

/* az's stdout on success. Expiry from `expires_on` (POSIX seconds, a number or a string of
 * digits, az 2.54+), else the access token's `exp` claim; `expiresOn` (local time without a
 * zone) is never read. now is the realtime the answer is judged at. 0 and *ret set; -EBADMSG
 * for an answer that is no token, -ESTALE for a token that has already expired, -ENOMEM. */
int azurecli_parse_token(const char *out, size_t len, usec_t now, AadToken *ret);

/* az's stderr on failure: whether a person must act (`az login`; AADSTS 50076, 50079, 70043,
 * 700082, ...), and its first message line (printable ASCII, at most AZURECLI_MESSAGE_MAX
 * bytes, malloc'd; NULL when az said nothing). Returns true when a sign-in is needed. */
bool azurecli_failure_needs_login(const char *err, size_t len, char **ret_message);
