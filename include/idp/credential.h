/* The unattended identities (client_secret, client_certificate, workload_identity,
 * managed_identity): a token source behind the seam in token-source.h that presents the
 * profile's credential for every token. There is no person and no refresh token; the profile
 * asks again on its refresh schedule. One module with a small strategy per kind, since all four
 * are "read the credential, make one request, read one token answer".
 *
 * The credential (secret, key, password, federated token, Arc key) is read from its file when
 * the request is made, in a worker thread of the acquisition's own (never on the loop), lives
 * in Secrets only until the request is built, and is never logged. */
#pragma once

#include "idp/aad.h"
#include "idp/token-source.h"
#include "shared/config.h"

typedef struct Credential Credential;

typedef struct CredentialCallbacks {
        /* Called once, from the loop, as the last thing the request does (the callee may free
         * it). result 0: token is the new token (take what you keep), sent the realtime its
         * request went out. -EIO: a transient failure, worth a retry (after retry_after when the
         * answer said so). -EBADR: the credential or the configuration was rejected, or cannot
         * be used as it is. error says why, for last_error and the log: never a secret. */
        void (*on_done)(int result, AadToken *token, usec_t sent, usec_t retry_after, const char *error,
                        void *userdata);
        void *userdata;
} CredentialCallbacks;

/* IMDS answers 429 or 5xx are asked again within one acquisition, as azure-identity's
 * ManagedIdentityCredential does for IMDS (its retry policy: statuses 404, 429, 5xx; backoff
 * factor 0.8 s since azure-identity 1.16.0). Here: at most 3 retries, 0.8 s, 1.6 s, 3.2 s apart
 * (or the answer's Retry-After when longer, up to 5 s), so that a forced refresh or a check
 * rides through a hiccup of a few seconds. */
#define CREDENTIAL_IMDS_RETRIES 3
#define CREDENTIAL_IMDS_BACKOFF (800 * USEC_PER_MSEC)
#define CREDENTIAL_IMDS_RETRY_AFTER_MAX (5 * USEC_PER_SEC)

/* The wait before retry number retried+1, or USEC_INFINITY when the call should give up. Pure. */
usec_t credential_imds_retry_delay(unsigned retried, usec_t retry_after);

/* Start one acquisition. ctx, cfg, name and callbacks must outlive it. */
int credential_acquire(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                       const CredentialCallbacks *callbacks, Credential **ret);
/* The profile's configuration was reloaded with the same identity: read cfg from now on (the
 * old one is about to be freed; an Arc retry after its challenge is sent with the new one). */
void credential_set_config(Credential *c, const ProfileConfig *cfg);
/* Stops it; no callback runs. NULL-safe. */
Credential *credential_free(Credential *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Credential *, credential_free);
