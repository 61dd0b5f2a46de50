/* The refresh of a signed-in profile's token: the request, its second try near expiry (the
 * hedge) and which answer counts. A token source (token-source.h); what the answer means for
 * the profile is decided by the profile. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "idp/refresh.h"

#define TIMER_ACCURACY (50 * USEC_PER_MSEC)
/* Near expiry a hanging refresh is not the last chance: after HEDGE_DELAY without an answer,
 * with less than HEDGE_WINDOW (plus two http_timeouts) left, a second request goes out on a
 * new connection; the first answer wins and the other is cancelled. */
#define HEDGE_WINDOW (2 * USEC_PER_SEC)
#define HEDGE_DELAY_MAX (1 * USEC_PER_SEC)

struct Refresh {
        const TokenSourceContext *ctx;
        const ProfileConfig *cfg;
        const char *name;
        const RefreshCallbacks *cb;
        Secret *refresh_token;
        usec_t expires_monotonic; /* when the current access token ends; USEC_INFINITY: no hedge */

        HttpRequest *req; /* the request in flight (the other one's answer moved it here) */
        usec_t req_sent;
        unsigned req_gen;       /* generation when req was sent */
        HttpRequest *hedge_req; /* a second try on a new connection while req hangs */
        usec_t hedge_sent;
        unsigned hedge_gen;
        sd_event_source *hedge_timer;
        unsigned generation; /* bumped by refresh_supersede() */
};

/* The last thing any path does: the callee may free r. */
static void refresh_done(Refresh *r, const RefreshAnswer *a) {
        r->cb->on_done(a, r->cb->userdata);
}

static void on_refresh_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata) {
        Refresh *r = userdata;
        _cleanup_(aad_token_clear) AadToken t = {};
        _cleanup_(aad_error_clear) AadError e = {};
        bool hedge = req == r->hedge_req;
        RefreshAnswer a = { .result = result, .outcome = AAD_TRANSIENT, .error = &e };
        unsigned gen;

        /* Which of the two requests this is; the one still running (if any) becomes req, so
         * "a request is under way" stays one pointer. */
        gen = hedge ? r->hedge_gen : r->req_gen;
        a.sent = hedge ? r->hedge_sent : r->req_sent;
        if (!hedge && r->hedge_req) {
                r->req = r->hedge_req;
                r->req_sent = r->hedge_sent;
                r->req_gen = r->hedge_gen;
        } else if (!hedge)
                r->req = NULL;
        r->hedge_req = NULL;

        if (gen != r->generation) {
                /* The refresh token this request sent was replaced meanwhile: its answer, whatever
                 * it says, is about a token no longer used. */
                log_debug("Profile %s: ignoring the answer to a superseded refresh request.", r->name);
                if (!r->req) {
                        (void) sd_event_source_set_enabled(r->hedge_timer, SD_EVENT_OFF);
                        refresh_done(r, &(RefreshAnswer) { .result = -ESTALE, .superseded = true });
                }
                return;
        }
        if (result >= 0) {
                a.outcome = aad_parse_token_answer(resp->status, resp->body, resp->body_len, &t, &e);
                if (resp->retry_after)
                        (void) aad_parse_retry_after(resp->retry_after, (time_t) (now_realtime() / USEC_PER_SEC),
                                                     &a.retry_after);
        }
        if (a.outcome != AAD_OK && r->req) {
                /* The other request may still bring a token: it decides. */
                log_info("Profile %s: one of two refresh requests failed (%s); waiting for the other.", r->name,
                         result < 0                     ? strerror(-result)
                         : a.outcome == AAD_NEEDS_LOGIN ? "invalid_grant"
                                                        : "bad answer");
                return;
        }
        if (a.outcome == AAD_OK && r->req) {
                http_request_cancel(r->req);
                r->req = NULL;
        }
        (void) sd_event_source_set_enabled(r->hedge_timer, SD_EVENT_OFF);

        a.token = &t;
        a.status = resp ? resp->status : 0;
        a.transport_error = resp ? resp->error : NULL;
        refresh_done(r, &a);
}

static int on_hedge_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Refresh *r = userdata;
        _cleanup_secret_ Secret *body = NULL;
        _cleanup_free_ char *url = NULL;
        char request_id[37], left[32];
        usec_t now = now_monotonic();
        int k;

        if (!r->req || r->hedge_req || r->req_gen != r->generation)
                return 0;
        url = aad_token_url(r->cfg);
        k = url ? aad_refresh_body(r->cfg, r->refresh_token, &body) : -ENOMEM;
        if (k >= 0) {
                r->hedge_sent = now_realtime();
                r->hedge_gen = r->generation;
                k = token_source_post_fresh(r->ctx, r->cfg, url, body, on_refresh_done, r, &r->hedge_req, request_id);
        }
        if (k < 0) {
                log_debug_errno(k, "Profile %s: cannot send a second refresh request: %m", r->name);
                return 0;
        }
        log_info("Profile %s: the refresh has no answer yet and the token has %s left; trying again on a new "
                 "connection (request id %s).",
                 r->name,
                 format_duration(left, sizeof left, r->expires_monotonic > now ? r->expires_monotonic - now : 0),
                 request_id);
        return 0;
}

/* Near expiry, a second request goes out if the first one has not answered soon. */
static void hedge_arm(Refresh *r, usec_t time_left) {
        usec_t timeout = r->ctx->http_timeout, now = now_monotonic();

        if (time_left == USEC_INFINITY || time_left > 2 * timeout + HEDGE_WINDOW)
                return;
        r->expires_monotonic = now + time_left;
        if (sd_event_add_time(r->ctx->event, &r->hedge_timer, CLOCK_MONOTONIC, now + MIN(timeout / 4, HEDGE_DELAY_MAX),
                              TIMER_ACCURACY, on_hedge_timer, r) < 0)
                log_debug("Profile %s: cannot arm the second-request timer.", r->name);
}

int refresh_start(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                  const Secret *refresh_token, usec_t time_left, const RefreshCallbacks *callbacks, Refresh **ret) {
        _cleanup_(refresh_freep) Refresh *r = NULL;
        _cleanup_secret_ Secret *body = NULL;
        _cleanup_free_ char *url = NULL;
        char request_id[37];
        int k;

        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        *r = (Refresh) { .ctx = ctx, .cfg = cfg, .name = name, .cb = callbacks, .expires_monotonic = USEC_INFINITY };
        r->refresh_token = secret_dup(refresh_token);
        if (!r->refresh_token)
                return -ENOMEM;
        url = aad_token_url(cfg);
        k = url ? aad_refresh_body(cfg, r->refresh_token, &body) : -ENOMEM;
        if (k < 0)
                return k;
        r->req_sent = now_realtime();
        k = token_source_post(ctx, cfg, url, body, on_refresh_done, r, &r->req, request_id);
        if (k < 0)
                return k;
        log_debug("Profile %s: refreshing (request id %s).", name, request_id);
        hedge_arm(r, time_left);
        *ret = TAKE_PTR(r);
        return 0;
}

Refresh *refresh_free(Refresh *r) {
        if (!r)
                return NULL;
        http_request_cancel(r->req);
        http_request_cancel(r->hedge_req);
        sd_event_source_disable_unref(r->hedge_timer);
        secret_free(r->refresh_token);
        free(r);
        return NULL;
}

void refresh_set_config(Refresh *r, const ProfileConfig *cfg) {
        if (r)
                r->cfg = cfg;
}

void refresh_supersede(Refresh *r) {
        if (r)
                r->generation++;
}

const RefreshSource refresh_source_aad = {
        .start = refresh_start,
        .free = refresh_free,
        .set_config = refresh_set_config,
        .supersede = refresh_supersede,
};
