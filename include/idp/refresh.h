/* The refresh of a signed-in profile's token: one token source behind the seam described in
 * token-source.h. It posts the refresh token, sends a second request on a new connection when
 * the first hangs near expiry (the first answer wins, the other is cancelled), and reports one
 * end. What the answer means for the profile is the profile's business. */
#pragma once

#include "base/secret.h"
#include "idp/aad.h"
#include "idp/token-source.h"
#include "shared/config.h"

typedef struct Refresh Refresh;

/* How a refresh ended. */
typedef struct RefreshAnswer {
        int result;         /* < 0: no answer (-errno, transport_error says why); else outcome */
        AadOutcome outcome; /* AAD_OK: token; else error says what the identity provider said */
        AadToken *token;    /* take what you keep */
        const AadError *error;
        long status;                 /* HTTP status of the answer */
        const char *transport_error; /* the HTTP client's words when result < 0; may be NULL */
        usec_t sent;                 /* realtime the answered request was sent */
        usec_t retry_after;          /* the answer's Retry-After as a delay; 0: none */
        bool superseded;             /* the refresh token was replaced meanwhile (refresh_supersede()): the
                          * answer is about a token no longer used, and nothing else is set */
} RefreshAnswer;

typedef struct RefreshCallbacks {
        /* The refresh ended; called once, as the last thing the refresh does, so the callee may
         * free it. */
        void (*on_done)(const RefreshAnswer *answer, void *userdata);
        void *userdata;
} RefreshCallbacks;

/* Post refresh_token (copied). time_left: how long the current access token is still valid,
 * for the second request near expiry; USEC_INFINITY: never a second request (a forced refresh
 * is one request whose outcome a person sees). The callback runs from the loop, never inside
 * this call. ctx, cfg, name and callbacks must outlive the refresh (see refresh_set_config()). */
int refresh_start(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                  const Secret *refresh_token, usec_t time_left, const RefreshCallbacks *callbacks, Refresh **ret);
/* Stops every request of the refresh; no callback runs. NULL-safe. */
Refresh *refresh_free(Refresh *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(Refresh *, refresh_free);

/* The profile was reconfigured for the same identity: a second request uses the new one. */
void refresh_set_config(Refresh *r, const ProfileConfig *cfg);

/* The refresh token this refresh sent was replaced (a sign-in won): no second request goes out,
 * and the end, when it comes, is reported as superseded. */
void refresh_supersede(Refresh *r);

/* The refresh as its owner calls it: refresh_source_aad (the functions above), or a stand-in
 * that a test answers itself. */
typedef struct RefreshSource {
        int (*start)(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                     const Secret *refresh_token, usec_t time_left, const RefreshCallbacks *callbacks, Refresh **ret);
        Refresh *(*free)(Refresh *r);
        void (*set_config)(Refresh *r, const ProfileConfig *cfg);
        void (*supersede)(Refresh *r);
} RefreshSource;

extern const RefreshSource refresh_source_aad;
