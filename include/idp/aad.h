/* The Azure AD v2.0 protocol: request bodies for the device-code and token endpoints, and
 * parsing and classification of their answers. Pure: no I/O, no clock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "base/secret.h"
#include "base/util.h"
#include "shared/config.h"

#define AAD_DEFAULT_INTERVAL_SEC 5
#define AAD_SLOW_DOWN_STEP_SEC 5

typedef enum AadOutcome {
        AAD_OK,           /* a token or a device code */
        AAD_PENDING,      /* authorization_pending: poll again */
        AAD_SLOW_DOWN,    /* slow_down: poll again, 5 s slower */
        AAD_DECLINED,     /* authorization_declined */
        AAD_CODE_EXPIRED, /* expired_token, bad_verification_code */
        AAD_NEEDS_LOGIN,  /* invalid_grant, interaction_required, ...: a person must sign in */
        AAD_CONFIG_ERROR, /* invalid_client, unauthorized_client, invalid_scope, tenant unknown */
        AAD_TRANSIENT,    /* 5xx, 429, temporarily_unavailable, not JSON, truncated */
} AadOutcome;

const char *aad_outcome_to_string(AadOutcome o);

/* What an error answer said, safe to log: no token, no device code. */
typedef struct AadError {
        char *error;          /* "invalid_grant", or a description of what was wrong with the answer */
        char *description;    /* first line of error_description, control characters removed, capped */
        char *correlation_id; /* NULL if absent */
        char *trace_id;
        long error_code; /* first of error_codes (AADSTSnnnnn), 0 if none */
        char *suberror;  /* Conditional Access: "message_only", "basic_action", ...; NULL if none */
        char *claims;    /* a claims challenge (JSON text) to send with the next sign-in; NULL if none */
} AadError;

void aad_error_clear(AadError *e);

typedef struct AadToken {
        Secret *access_token;
        Secret *refresh_token; /* NULL if the answer carried none */
        usec_t expires_in;     /* > 0 */
        usec_t refresh_in;     /* 0 if absent */
} AadToken;

void aad_token_clear(AadToken *t);

typedef struct AadDeviceCode {
        Secret *device_code;
        char *user_code;
        char *verification_uri;
        char *message; /* the ready-made text for the person; synthesised if absent */
        usec_t expires_in;
        usec_t interval;
} AadDeviceCode;

void aad_device_code_clear(AadDeviceCode *d);

/* {authority_host}/{tenant}/oauth2/v2.0/devicecode and .../token (malloc'd) */
char *aad_devicecode_url(const ProfileConfig *p);
char *aad_token_url(const ProfileConfig *p);

/* application/x-www-form-urlencoded bodies. Those carrying a secret are secrets themselves. */
int aad_devicecode_body(const ProfileConfig *p, char **ret);
int aad_device_token_body(const ProfileConfig *p, const Secret *device_code, Secret **ret);
int aad_refresh_body(const ProfileConfig *p, const Secret *refresh_token, Secret **ret);

/* The unattended kinds (scope <server_id>/.default, client_info=1). The secret, assertion or
 * federated token is revealed only into the body, which is a Secret. */
int aad_client_secret_body(const ProfileConfig *p, const Secret *client_secret, Secret **ret);
int aad_client_assertion_body(const ProfileConfig *p, const Secret *assertion, Secret **ret);

/* Browser sign-in: the URL to open, and the redemption of the code that came back. claims (a
 * Conditional Access challenge) may be NULL. redirect_uri is sent identically in both. */
char *aad_authorize_url(const ProfileConfig *p, const char *redirect_uri, const char *code_challenge, const char *state,
                        const char *claims);
int aad_code_token_body(const ProfileConfig *p, const Secret *code, const char *redirect_uri,
                        const Secret *code_verifier, const char *claims, Secret **ret);

/* Device sign-in with a claims challenge carried from the last error (NULL: none). */
int aad_device_token_body_claims(const ProfileConfig *p, const Secret *device_code, const char *claims, Secret **ret);

/* Managed identity: the GET URL for the profile's token service (IMDS, App Service or Arc,
 * with resource = server_id and the managed_identity_* selector), malloc'd. */
char *aad_msi_url(const ProfileConfig *p);

/* Arc's 401 challenge: "Basic realm=<path>". The path must be a *.key file directly under
 * key_dir (MSAL's rule: /var/opt/azcmagent/tokens); -EBADMSG otherwise. */
int aad_arc_challenge_path(const char *www_authenticate, const char *key_dir, char **ret);

/* Parse a managed-identity answer: like a token answer, but numbers are strings, and App
 * Service gives expires_on (unix seconds) instead of expires_in, counted from now (unix usec).
 * Errors come as {error, error_description} (IMDS, Arc) or {statusCode, message} (App Service);
 * 404, 410, 429 and 5xx are transient (IMDS answers them while an identity is being assigned
 * or under load), other 4xx are configuration errors. */
AadOutcome aad_parse_msi_answer(long http_status, const char *body, size_t len, usec_t now, AadToken *ret_token,
                                AadError *ret_error);

/* Classify and parse an answer of the token endpoint. ret_token is filled only for AAD_OK,
 * reterr_error for everything else (both may be NULL; both are overwritten, not freed, so pass
 * them zeroed). Anything that is not a usable AAD answer (no status, HTML, cut-off or
 * oversized JSON, a missing access_token or expires_in) is AAD_TRANSIENT, with reterr_error->error
 * saying what was wrong. Numbers may be JSON numbers or strings; expires_in is capped at 48 h,
 * refresh_in at expires_in. */
AadOutcome aad_parse_token_answer(long http_status, const char *body, size_t len, AadToken *ret_token,
                                  AadError *reterr_error);

/* Same for the devicecode endpoint. expires_in defaults to 15 min (capped at 1 h), interval to
 * 5 s (capped at 5 min); a missing message, or one that would show the device code, is made
 * from verification_uri and user_code. */
AadOutcome aad_parse_device_code_answer(long http_status, const char *body, size_t len, AadDeviceCode *ret_code,
                                        AadError *reterr_error);

/* Retry-After: delta-seconds or an HTTP date (IMF-fixdate, RFC 850 or asctime; relative to now,
 * unix seconds). -EINVAL when it is neither. A date in the past gives 0; capped at 366 days. */
int aad_parse_retry_after(const char *value, time_t now, usec_t *ret);
