/* One refresh attempt of a profile: the request, its second try near expiry (the hedge), the
 * unattended kinds' credential request, and what each answer means for the profile. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile-private.h"

/* A rejected credential (state error) is tried again this often: a secret file, a certificate
 * or a federated token can be fixed without a reload. */
#define REJECTED_RETRY (5 * USEC_PER_MINUTE)
/* Near expiry a hanging refresh is not the last chance: after HEDGE_DELAY without an answer,
 * with less than HEDGE_WINDOW (plus two http_timeouts) left, a second request goes out on a
 * new connection; the first answer wins and the other is cancelled. */
#define HEDGE_WINDOW (2 * USEC_PER_SEC)
#define HEDGE_DELAY_MAX (1 * USEC_PER_SEC)

/* ---- refresh ------------------------------------------------------------------------------- */

static void refresh_retry(Profile *p, usec_t retry_after) {
        usec_t now = now_realtime(), last_chance = USEC_INFINITY, delay;
        char d[32];

        if (profile_token_valid_at(p, now))
                last_chance = p->expires_on > p->ctx->sources.http_timeout
                                      ? p->expires_on - p->ctx->sources.http_timeout
                                      : 0;
        p->attempt++;
        delay = schedule_backoff(p->attempt, now, retry_after, last_chance, random_u64());
        profile_refresh_schedule_at(p, now + delay);
        /* Retries come within seconds: say them to the tenth, not rounded down to "0s". */
        if (delay < USEC_PER_MINUTE)
                snprintf(d, sizeof d, "%.1fs", (double) delay / USEC_PER_SEC);
        else
                format_duration(d, sizeof d, delay);
        log_warning("Profile %s: refresh failed: %s. Retry %u in %s.", p->name,
                    p->last_error ? p->last_error : "unknown error", p->attempt, d);
}

/* Stop every request of the refresh attempt (both, when a second one went out). */
void profile_refresh_cancel(Profile *p) {
        http_request_cancel(p->refresh_req);
        http_request_cancel(p->hedge_req);
        p->refresh_req = p->hedge_req = NULL;
        profile_timer_disarm(p->hedge_timer);
}

static void on_refresh_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata) {
        Profile *p = userdata;
        _cleanup_(aad_token_clear) AadToken t = {};
        _cleanup_(aad_error_clear) AadError e = {};
        bool hedge = req == p->hedge_req, stale;
        usec_t retry_after = 0, sent;
        unsigned gen;
        AadOutcome o = AAD_TRANSIENT;
        char buf[512];
        int waiter_result;

        /* Which of the attempt's requests this is; the one still running (if any) becomes
         * refresh_req, so "a refresh is under way" stays one pointer. */
        gen = hedge ? p->hedge_gen : p->refresh_gen;
        sent = hedge ? p->hedge_sent : p->refresh_sent;
        if (!hedge && p->hedge_req) {
                p->refresh_req = p->hedge_req;
                p->refresh_sent = p->hedge_sent;
                p->refresh_gen = p->hedge_gen;
        } else if (!hedge)
                p->refresh_req = NULL;
        p->hedge_req = NULL;
        /* The refresh token this request sent was replaced meanwhile (the other request, or a
         * sign-in, won): its answer, whatever it says, is about a token we no longer use. */
        stale = gen != p->rt_generation;

        if (result >= 0) {
                o = aad_parse_token_answer(resp->status, resp->body, resp->body_len, &t, &e);
                if (resp->retry_after)
                        (void) aad_parse_retry_after(resp->retry_after, (time_t) (now_realtime() / USEC_PER_SEC),
                                                     &retry_after);
        }
        if (stale) {
                log_debug("Profile %s: ignoring the answer to a superseded refresh request.", p->name);
                if (!p->refresh_req) {
                        /* The token that replaced ours is the refresh's result. */
                        profile_timer_disarm(p->hedge_timer);
                        profile_finish_refresh(p, profile_token_valid_at(p, now_realtime()) ? 0 : -EIO);
                        profile_changed(p);
                }
                return;
        }
        if (o != AAD_OK && p->refresh_req) {
                /* The other request may still bring a token: it decides. */
                log_info("Profile %s: one of two refresh requests failed (%s); waiting for the other.", p->name,
                         result < 0             ? strerror(-result)
                         : o == AAD_NEEDS_LOGIN ? "invalid_grant"
                                                : "bad answer");
                return;
        }
        if (o == AAD_OK && p->refresh_req) {
                http_request_cancel(p->refresh_req);
                p->refresh_req = NULL;
        }
        profile_timer_disarm(p->hedge_timer);

        if (result < 0) {
                errno = -result;
                p->refreshes[REFRESH_TRANSIENT]++;
                profile_set_last_error(p, "cannot reach %s: %s", p->cfg->authority_host,
                                       resp && resp->error ? resp->error : strerror(-result));
                refresh_retry(p, 0);
                profile_finish_refresh(p, -EIO);
                profile_changed(p);
                return;
        }

        switch (o) {
        case AAD_OK:
                p->refreshes[REFRESH_OK]++;
                profile_token_accept(p, &t, sent);
                waiter_result = 0;
                break;
        case AAD_NEEDS_LOGIN:
                free(p->claims);
                p->claims = e.claims ? strdup(e.claims) : NULL;
                if (streq_ptr(e.suberror, "message_only")) {
                        p->refreshes[REFRESH_CONFIG_ERROR]++;
                        /* Conditional Access says nothing a person does now can fix it: say so
                         * instead of asking for a sign-in that would fail the same way. */
                        profile_set_last_error(p, "a new sign-in will not help (Azure AD's suberror message_only): %s",
                                               token_source_error_words(&e, buf, sizeof buf));
                        p->config_error = true;
                        p->next_refresh = 0;
                        log_error("Profile %s: %s", p->name, p->last_error);
                        waiter_result = -EBADR;
                        break;
                }
                p->refreshes[REFRESH_LOGIN_REQUIRED]++;
                profile_set_last_error(p, "%s%s", token_source_error_words(&e, buf, sizeof buf),
                                       p->claims ? "; the next sign-in answers the claims challenge" : "");
                profile_enter_login_required(p, p->last_error);
                waiter_result = -ENOKEY;
                break;
        case AAD_CONFIG_ERROR:
                p->refreshes[REFRESH_CONFIG_ERROR]++;
                profile_set_last_error(p, "%s", token_source_error_words(&e, buf, sizeof buf));
                p->config_error = true;
                p->next_refresh = 0;
                log_error("Profile %s: the identity provider rejected the configuration: %s. "
                          "Fix the profile and reload (aksspark-tokenctl reload).",
                          p->name, p->last_error);
                waiter_result = -EBADR;
                break;
        default:
                p->refreshes[REFRESH_TRANSIENT]++;
                profile_set_last_error(p, "HTTP %ld: %s", resp->status, token_source_error_words(&e, buf, sizeof buf));
                refresh_retry(p, retry_after);
                waiter_result = -EIO;
                break;
        }

        profile_finish_refresh(p, waiter_result);
        profile_changed(p);
}

/* ---- unattended kinds -------------------------------------------------------------------- */

static void on_credential_done(int result, AadToken *t, usec_t sent, usec_t retry_after, const char *error,
                               void *userdata) {
        Profile *p = userdata;
        int waiter_result = result;

        p->credential = credential_free(p->credential);
        p->refreshes[result >= 0 ? REFRESH_OK : result == -EBADR ? REFRESH_CONFIG_ERROR : REFRESH_TRANSIENT]++;
        if (result >= 0)
                profile_token_accept(p, t, sent);
        else if (result == -EBADR) {
                bool was = p->config_error;

                profile_set_last_error(p, "%s", error ? error : "the credential was rejected");
                p->config_error = true;
                profile_refresh_schedule_at(p, now_realtime() + REJECTED_RETRY);
                if (!was)
                        log_error(
                                "Profile %s: %s. Fix the credential (it is tried again every %s, and at every refresh or check).",
                                p->name, p->last_error, "5m");
                else
                        log_warning("Profile %s: %s.", p->name, p->last_error);
        } else {
                profile_set_last_error(p, "%s", error ? error : "no token");
                refresh_retry(p, retry_after);
                waiter_result = -EIO;
        }
        profile_finish_refresh(p, waiter_result);
        profile_changed(p);
}

/* auth = azurecli: az's own sign-in lapsed. The token is az's to renew: ask again now and then,
 * so a person's `az login` is picked up without a word to the daemon. */
static void on_azurecli_done(int result, AadToken *t, usec_t sent, const char *error, void *userdata) {
        Profile *p = userdata;
        int waiter_result = result;

        p->azurecli = azurecli_free(p->azurecli);
        if (result == -ENOKEY) {
                bool was = p->needs_login;

                p->refreshes[REFRESH_LOGIN_REQUIRED]++;
                p->needs_login = true;
                profile_set_last_error(p, "%s", error ?: "az login needed");
                profile_refresh_schedule_at(p, now_realtime() + REJECTED_RETRY);
                if (!was) {
                        log_warning("Profile %s: the Azure CLI needs a person to sign in again (%s): run az login.",
                                    p->name, p->last_error);
                        profile_notify_person(p, "login_required", p->last_error);
                }
                profile_finish_refresh(p, waiter_result);
                profile_changed(p);
                return;
        }
        on_credential_done(result, t, sent, 0, error, p);
}

static void credential_start(Profile *p) {
        int r;

        if (p->credential || p->azurecli)
                return;
        profile_timer_disarm(p->refresh_timer);
        if (p->cfg->auth == AUTH_AZURECLI) {
                p->azurecli_callbacks = (AzureCliCallbacks) { .on_done = on_azurecli_done, .userdata = p };
                r = azurecli_acquire(&p->ctx->sources, p->cfg, p->name, &p->azurecli_callbacks, &p->azurecli);
        } else {
                p->credential_callbacks = (CredentialCallbacks) { .on_done = on_credential_done, .userdata = p };
                r = credential_acquire(&p->ctx->sources, p->cfg, p->name, &p->credential_callbacks, &p->credential);
        }
        if (r < 0) {
                p->refreshes[REFRESH_TRANSIENT]++;
                profile_set_last_error(p, "cannot ask for a token: %s", strerror(-r));
                refresh_retry(p, 0);
                profile_finish_refresh(p, -EIO);
                return;
        }
        profile_changed(p);
}

static int on_hedge_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;
        _cleanup_secret_ Secret *body = NULL;
        _cleanup_free_ char *url = NULL;
        char request_id[37], left[32];
        int r;

        if (!p->refresh_req || p->hedge_req || !p->refresh_token)
                return 0;
        url = aad_token_url(p->cfg);
        r = url ? aad_refresh_body(p->cfg, p->refresh_token, &body) : -ENOMEM;
        if (r >= 0) {
                p->hedge_sent = now_realtime();
                p->hedge_gen = p->rt_generation;
                r = token_source_post_fresh(&p->ctx->sources, p->cfg, url, body, on_refresh_done, p, &p->hedge_req,
                                            request_id);
        }
        if (r < 0) {
                log_debug_errno(r, "Profile %s: cannot send a second refresh request: %m", p->name);
                return 0;
        }
        log_info("Profile %s: the refresh has no answer yet and the token has %s left; trying again on a new "
                 "connection (request id %s).",
                 p->name, format_duration(left, sizeof left, profile_token_time_left(p, now_realtime())), request_id);
        return 0;
}

/* Near expiry, a second request goes out if the first one has not answered soon. */
static void hedge_arm(Profile *p) {
        usec_t timeout = p->ctx->sources.http_timeout, now = now_realtime();

        /* A forced refresh (refresh, check) is one request whose outcome the person sees. */
        if (p->refresh_forced || !p->access_token || profile_token_time_left(p, now) > 2 * timeout + HEDGE_WINDOW)
                return;
        if (profile_timer_arm(p, &p->hedge_timer, CLOCK_MONOTONIC, now_monotonic() + MIN(timeout / 4, HEDGE_DELAY_MAX),
                              on_hedge_timer) < 0)
                log_debug("Profile %s: cannot arm the second-request timer.", p->name);
}

void profile_refresh_start(Profile *p) {
        _cleanup_secret_ Secret *body = NULL;
        _cleanup_free_ char *url = NULL;
        char request_id[37];
        int r;

        if (profile_unattended(p)) {
                credential_start(p);
                return;
        }
        if (p->refresh_req)
                return;
        if (!p->refresh_token) {
                profile_finish_refresh(p, -ENOKEY);
                return;
        }

        profile_refresh_timers_disarm(p);
        url = aad_token_url(p->cfg);
        r = url ? aad_refresh_body(p->cfg, p->refresh_token, &body) : -ENOMEM;
        if (r < 0) {
                p->refreshes[REFRESH_TRANSIENT]++;
                profile_set_last_error(p, "cannot build the refresh request: %s", strerror(-r));
                refresh_retry(p, 0);
                profile_finish_refresh(p, -EIO);
                return;
        }

        p->refresh_sent = now_realtime();
        p->refresh_gen = p->rt_generation;
        r = token_source_post(&p->ctx->sources, p->cfg, url, body, on_refresh_done, p, &p->refresh_req, request_id);
        if (r < 0) {
                p->refreshes[REFRESH_TRANSIENT]++;
                profile_set_last_error(p, "cannot start the refresh request: %s", strerror(-r));
                refresh_retry(p, 0);
                profile_finish_refresh(p, -EIO);
                return;
        }
        log_debug("Profile %s: refreshing (request id %s).", p->name, request_id);
        hedge_arm(p);
        profile_changed(p);
}

void profile_refresh_start_forced(Profile *p) {
        p->refresh_forced = true;
        profile_refresh_start(p);
        p->refresh_forced = false;
}
