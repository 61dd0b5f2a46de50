/* The seam between how a token is obtained and what a profile does with it.
 *
 * A token source (login-device.c today; a browser sign-in and the unattended credential kinds
 * later) talks to the identity provider and reports up through the callbacks it was given: the
 * message for a person when there is one, then one end with the token or an error. It never sees
 * the profile's schedule, outputs, state store or waiters, and it never calls the profile; the
 * profile (profile.c) owns all of that and decides what a result means for its waiters.
 *
 * Every source posts through token_source_post(), so every request to the identity provider
 * carries the profile's trust (ca_file), the daemon's timeouts and a fresh request id. */
#pragma once

#include <systemd/sd-event.h>

#include "base/secret.h"
#include "idp/aad.h"
#include "loop/http.h"
#include "shared/config.h"

/* What a token source uses of its owner's: the loop, the HTTP client and its timeout. The owner
 * keeps it alive for as long as any source using it and may change http_timeout (on reload)
 * between two events. */
typedef struct TokenSourceContext {
        sd_event *event;
        HttpClient *http;
        usec_t http_timeout;
} TokenSourceContext;

/* What MSAL sends on every request to say it honours Retry-After and 429 answers. */
#define TOKEN_SOURCE_LIB_CAPABILITY "x-ms-lib-capability: retry-after, h429"

/* POST a form to the identity provider with cfg's trust, ctx's timeouts and a fresh request id
 * (written to request_id). */
int token_source_post(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *url, const Secret *body,
                      http_done_fn done, void *userdata, HttpRequest **ret, char request_id[static 37]);

/* GET url (a managed-identity token service) with the same trust, timeouts and request id, plus
 * n_headers plain header lines and, when secret_header_name is set, one whose value is a secret. */
int token_source_get(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *url,
                     const char *const *headers, size_t n_headers, const char *secret_header_name,
                     const Secret *secret_header_value, http_done_fn done, void *userdata, HttpRequest **ret,
                     char request_id[static 37]);
/* The same on a new connection, not kept after: a second try while another request hangs. */
int token_source_post_fresh(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *url,
                            const Secret *body, http_done_fn done, void *userdata, HttpRequest **ret,
                            char request_id[static 37]);

/* "error: description (correlation id ...)" for a log line or last_error; never a secret. */
const char *token_source_error_words(const AadError *e, char *buf, size_t size);
