/* One profile's life: refresh before expiry, backoff, outputs, and the requests that wait on
 * it. How a sign-in obtains its first token is a token source's business (login-device.c,
 * behind the seam in token-source.h); what the token then means is decided here.
 *
 * The path of one refresh: refresh_timer fires -> profile_refresh_start() starts a Refresh
 * (idp/refresh.c: the body from aad.c, posted by http.c, a second try near expiry) ->
 * on_refresh_done() decides what its answer means -> profile_token_accept() stores the rotated refresh token (profile-store.c's worker, store.c)
 * before dropping the old one, writes the outputs (outputs.c) and arms the next refresh
 * (schedule.c) -> profile_finish_refresh() answers whoever asked.
 *
 * All deadlines are CLOCK_REALTIME instants (what `status` shows) armed as absolute realtime
 * timers, so a refresh that fell due during a suspend or before a wall-clock jump runs at once;
 * beside each, the same deadline on CLOCK_BOOTTIME (counts suspend, never steps), so a backward
 * wall-clock step neither postpones a refresh nor stretches a token's life: whichever clock
 * says so first wins. Boottime deadlines start from when the token arrived in this process
 * (not from the state file). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile-private.h"

#define OUTPUT_RETRY_MIN (5 * USEC_PER_SEC)
#define OUTPUT_RETRY_MAX (5 * USEC_PER_MINUTE)
/* A rejected credential (state error) is tried again this often: a secret file, a certificate
 * or a federated token can be fixed without a reload. */
#define REJECTED_RETRY (5 * USEC_PER_MINUTE)

/* ---- timers ------------------------------------------------------------------------------ */

void profile_refresh_timers_disarm(Profile *p) {
        profile_timer_disarm(p->refresh_timer);
        profile_timer_disarm(p->refresh_timer_boot);
}

static int on_refresh_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        profile_refresh_start(userdata);
        return 0;
}

void profile_refresh_schedule_at(Profile *p, usec_t at) {
        int r;

        p->next_refresh = at;
        r = profile_timer_arm(p, &p->refresh_timer, CLOCK_REALTIME, at, on_refresh_timer);
        if (r >= 0)
                r = profile_timer_arm(
                        p, &p->refresh_timer_boot, CLOCK_BOOTTIME,
                        schedule_boottime_of(at, profile_now(p, CLOCK_REALTIME), profile_now(p, CLOCK_BOOTTIME)),
                        on_refresh_timer);
        if (r < 0) {
                /* Without a timer the token would silently go stale: try once more right now. */
                log_error_errno(r, "Profile %s: failed to arm the refresh timer: %m", p->name);
                p->next_refresh = 0;
        }
}

static int on_expiry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;

        if (p->expiry_notified)
                return 0;
        p->expiry_notified = true;
        if (profile_unattended(p)) {
                log_error(
                        "Profile %s: the access token has expired; getting a new one with the %s credential has failed since (%s). Retrying.",
                        p->name, auth_kind_to_string(p->cfg->auth), p->last_error ? p->last_error : "no answer yet");
                profile_notify_person(p, "expired", "The access token has expired and no new one could be had yet.");
        } else if (p->needs_login || !p->refresh_token) {
                log_warning("Profile %s: the access token has expired and cannot be refreshed; "
                            "sign in with: aksspark-tokenctl --profile %s login",
                            p->name, p->name);
                profile_notify_person(p, "expired",
                                      "The access token has expired; sign in with aksspark-tokenctl login.");
        } else {
                log_error("Profile %s: the access token has expired; refreshing has failed since (%s). Retrying.",
                          p->name, p->last_error ? p->last_error : "no answer yet");
                profile_notify_person(p, "expired", "The access token has expired and could not be refreshed yet.");
        }
        profile_changed(p);
        return 0;
}

static void outputs_start_write(Profile *p, bool retry) {
        int r;

        p->output_retrying = retry;
        r = outputs_write_all(p->outputs, p->access_token, profile_now(p, CLOCK_REALTIME));
        if (r < 0)
                log_warning_errno(r, "Profile %s: cannot start writing the outputs: %m", p->name);
}

static int on_output_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;

        if (profile_token_valid_at(p, profile_now(p, CLOCK_REALTIME)))
                outputs_start_write(p, true);
        return 0;
}

/* The worker wrote every output (outputs.c logged each failure): retry failures with backoff,
 * answer the waiters that waited for the files. */
static void on_outputs_written(Outputs *o, int result, void *userdata) {
        Profile *p = userdata;
        usec_t delay;

        if (result >= 0) {
                if (p->output_retrying)
                        log_info("Profile %s: outputs written after an earlier failure.", p->name);
                p->output_attempt = 0;
                p->output_retrying = false;
                profile_timer_disarm(p->output_timer);
        } else if (!outputs_busy(o)) {
                /* Try again soon rather than at the next refresh. */
                p->output_attempt = p->output_retrying ? p->output_attempt + 1 : 0;
                delay = MIN(OUTPUT_RETRY_MIN << MIN(p->output_attempt, 10u), OUTPUT_RETRY_MAX);
                if (profile_timer_arm(p, &p->output_timer, CLOCK_BOOTTIME, profile_now(p, CLOCK_BOOTTIME) + delay,
                                      on_output_timer) < 0)
                        log_warning("Profile %s: failed to arm the output retry timer.", p->name);
        }
        profile_answer_waiters(p);
        profile_changed(p);
}

static void outputs_write(Profile *p) {
        if (p->access_token)
                outputs_start_write(p, false);
}

/* ---- the sign-in in the state directory (profile-store.c) ---------------------------------- */

/* Save the sign-in; a failure is kept for status and check, and retried by the store with
 * backoff: a restart must never silently lose the sign-in. */
static void sign_in_save(Profile *p) {
        StoredProfile s = {
                .tenant = p->cfg->tenant,
                .client_id = p->cfg->client_id,
                .authority_host = p->cfg->authority_host,
                .server_id = p->cfg->server_id,
                .auth = (char *) auth_kind_to_string(p->cfg->auth),
                .refresh_token = p->refresh_token,
                .access_token = p->access_token,
                .obtained = p->obtained,
                .expires_on = p->expires_on,
                .refresh_in = p->refresh_in,
                .account = p->account,
        };

        (void) sign_in_store_save(p->store, &s);
}

/* A save or removal finished: the token on disk before the new one can go once the new one is
 * saved; answers held for the save go out. */
static void sign_in_loaded(Profile *p, int r, StoredProfile *s);

static void on_store_done(const SignInStoreResult *r, void *userdata) {
        Profile *p = userdata;

        if (r->job == SIGN_IN_STORE_LOAD) {
                sign_in_loaded(p, r->result, r->loaded);
                return;
        }
        if (r->job == SIGN_IN_STORE_SAVE && r->result >= 0)
                p->saved_refresh_token = secret_free(p->saved_refresh_token);
        profile_answer_waiters(p);
        if (r->changed)
                profile_changed(p);
}

static bool stored_matches(const Profile *p, const StoredProfile *s) {
        ProfileIdentity mine = profile_config_identity(p->cfg);
        ProfileIdentity stored = {
                .tenant = s->tenant,
                .client_id = s->client_id,
                .server_id = s->server_id, /* NULL in a file from before it was recorded */
                .authority_host = s->authority_host,
                .auth = s->auth,
        };

        return profile_identity_equal(&mine, &stored);
}

/* What the saved sign-in read at start (r, s) means for the profile. */
static void sign_in_adopt(Profile *p, int r, StoredProfile *s) {
        if (r == -ENOENT) {
                p->needs_login = true;
                log_notice("Profile %s: not signed in yet; run aksspark-tokenctl --profile %s login", p->name, p->name);
                profile_notify_person(p, "login_required", "Not signed in yet.");
                return;
        }
        if (r == -ENOKEY || r == -EKEYREJECTED) {
                p->needs_login = true;
                log_error("Profile %s: the saved sign-in in %s is sealed and %s; a new sign-in is needed: "
                          "aksspark-tokenctl --profile %s login",
                          p->name, p->ctx->state_dir,
                          r == -ENOKEY ? "its key (state_protection) is not at hand"
                                       : "does not open with the key at hand (another machine's or another "
                                         "profile's file, or a key made anew)",
                          p->name);
                profile_notify_person(p, "login_required",
                                      "The saved sign-in cannot be unsealed with this key; sign in again.");
                return;
        }
        if (r < 0) {
                p->needs_login = true;
                log_error_errno(r,
                                "Profile %s: the state file in %s cannot be used (%m); a new sign-in is needed: "
                                "aksspark-tokenctl --profile %s login",
                                p->name, p->ctx->state_dir, p->name);
                profile_notify_person(p, "login_required", "The saved sign-in cannot be read; sign in again.");
                return;
        }
        if (!stored_matches(p, s) || !s->refresh_token) {
                p->needs_login = true;
                log_warning("Profile %s: the saved sign-in belongs to another tenant, client, server, authority "
                            "or way of signing in; a new sign-in is needed: aksspark-tokenctl --profile %s login",
                            p->name, p->name);
                profile_notify_person(p, "login_required",
                                      "The saved sign-in is for another tenant, client or server.");
                return;
        }
        if (!s->server_id) {
                /* Saved before the server was recorded: the refresh token is good for any
                 * audience, the saved access token perhaps for another one. Refresh at once. */
                log_info("Profile %s: the saved access token does not say which server it is for; refreshing.",
                         p->name);
                s->access_token = secret_free(s->access_token);
                s->obtained = s->expires_on = 0;
        }

        p->refresh_token = TAKE_PTR(s->refresh_token);
        p->access_token = TAKE_PTR(s->access_token);
        p->obtained = s->obtained;
        p->expires_on = s->expires_on;
        p->refresh_in = s->refresh_in;
        p->account = TAKE_PTR(s->account);
        if (p->access_token)
                profile_claims_update(p);
        /* A clear file from before sealing: seal it now, not at the next refresh an hour away. */
        if (!s->sealed && state_key_bytes(p->ctx->state_key)) {
                log_info("Profile %s: sealing the saved sign-in (state_protection = %s).", p->name,
                         state_protection_to_string(p->ctx->state_key->protection));
                sign_in_save(p);
        }
}

/* ---- tokens -------------------------------------------------------------------------------- */

static void token_forget(Profile *p) {
        p->access_token = secret_free(p->access_token);
        p->refresh_token = secret_free(p->refresh_token);
        p->saved_refresh_token = secret_free(p->saved_refresh_token);
        p->obtained = p->expires_on = p->refresh_in = 0;
        p->next_refresh = 0;
        profile_refresh_timers_disarm(p);
        profile_timer_disarm(p->expiry_timer);
        profile_timer_disarm(p->expiry_timer_boot);
        p->expires_boot = 0;
        profile_timer_disarm(p->output_timer);
}

static void refresh_arm_next(Profile *p) {
        usec_t at = schedule_refresh_at(p->obtained, p->expires_on, p->cfg->refresh_before, p->refresh_in,
                                        random_u64());

        at = schedule_not_before(at, p->obtained, p->ctx->refresh_floor);
        profile_refresh_schedule_at(p, at);
        p->expiry_notified = false;
        if (profile_timer_arm(p, &p->expiry_timer, CLOCK_REALTIME, p->expires_on, on_expiry_timer) < 0 ||
            (p->expires_boot != 0 &&
             profile_timer_arm(p, &p->expiry_timer_boot, CLOCK_BOOTTIME, p->expires_boot, on_expiry_timer) < 0))
                log_warning("Profile %s: failed to arm the expiry timer.", p->name);
}

/* A new token arrived (refresh or sign-in). The rotated refresh token is on disk before the
 * old one is dropped from memory: a crash in between costs nothing. */
static void waiters_after_load(Profile *p);

void profile_token_accept(Profile *p, AadToken *t, usec_t sent) {
        char left[32], next[32];
        usec_t now = profile_now(p, CLOCK_REALTIME);
        /* A sign-in that ends while the saved one is still being read wins over it. */
        bool was_loading = p->loading;

        p->loading = false;

        secret_free(p->access_token);
        p->access_token = TAKE_PTR(t->access_token);
        if (t->refresh_token) {
                /* The one on disk stays in memory until the new one is saved (sign_in_save()). */
                if (p->saved_refresh_token)
                        secret_free(p->refresh_token);
                else
                        p->saved_refresh_token = p->refresh_token;
                p->refresh_token = TAKE_PTR(t->refresh_token);
                if (p->refresh)
                        profile_refresh_source(p)->supersede(p->refresh); /* a sign-in won over a refresh under way */
        }
        p->obtained = sent;
        p->expires_on = sent + t->expires_in;
        p->expires_boot = schedule_boottime_of(p->expires_on, now, profile_now(p, CLOCK_BOOTTIME));
        p->refresh_in = t->refresh_in;
        profile_claims_update(p);
        p->needs_login = false;     /* before the save: a save that fails at once is kept and retried */
        if (!profile_unattended(p)) /* nothing to keep: the credential itself stays where it is */
                sign_in_save(p);

        p->config_error = false;
        p->attempt = 0;
        p->last_refresh = now;
        profile_set_last_error(p, NULL);

        outputs_write(p);
        refresh_arm_next(p);

        log_info("Profile %s: token for %s valid for %s, next refresh in %s.", p->name,
                 p->account ? p->account : "(unknown account)",
                 format_duration(left, sizeof left, p->expires_on > now ? p->expires_on - now : 0),
                 format_duration(next, sizeof next, p->next_refresh > now ? p->next_refresh - now : 0));
        if (was_loading)
                waiters_after_load(p);
}

void profile_enter_login_required(Profile *p, const char *why) {
        bool was = p->needs_login;

        p->loading = false; /* the saved sign-in, if still being read, is not used */
        p->needs_login = true;
        p->refresh_token = secret_free(p->refresh_token);
        p->saved_refresh_token = secret_free(p->saved_refresh_token);
        profile_refresh_timers_disarm(p);
        p->next_refresh = 0;
        sign_in_store_remove(p->store);
        if (!was) {
                log_warning("Profile %s: a person must sign in (%s): run aksspark-tokenctl --profile %s login", p->name,
                            why, p->name);
                profile_notify_person(p, "login_required", why);
        }
}

/* ---- refresh: what an answer means ------------------------------------------------------- */

static void refresh_retry(Profile *p, usec_t retry_after) {
        usec_t now = profile_now(p, CLOCK_REALTIME), last_chance = USEC_INFINITY, delay;
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

static void on_refresh_done(const RefreshAnswer *a, void *userdata) {
        Profile *p = userdata;
        char buf[512];
        int waiter_result;

        p->refresh = profile_refresh_source(p)->free(p->refresh);
        if (a->superseded) {
                /* The token that replaced ours is the refresh's result. */
                profile_finish_refresh(p, profile_token_valid_at(p, profile_now(p, CLOCK_REALTIME)) ? 0 : -EIO);
                profile_changed(p);
                return;
        }

        if (a->result < 0) {
                p->refreshes[REFRESH_TRANSIENT]++;
                profile_set_last_error(p, "cannot reach %s: %s", p->cfg->authority_host,
                                       a->transport_error ?: strerror(-a->result));
                refresh_retry(p, 0);
                profile_finish_refresh(p, -EIO);
                profile_changed(p);
                return;
        }

        switch (a->outcome) {
        case AAD_OK:
                p->refreshes[REFRESH_OK]++;
                profile_token_accept(p, a->token, a->sent);
                waiter_result = 0;
                break;
        case AAD_NEEDS_LOGIN:
                free(p->claims);
                p->claims = a->error->claims ? strdup(a->error->claims) : NULL;
                if (streq_ptr(a->error->suberror, "message_only")) {
                        p->refreshes[REFRESH_CONFIG_ERROR]++;
                        /* Conditional Access says nothing a person does now can fix it: say so
                         * instead of asking for a sign-in that would fail the same way. */
                        profile_set_last_error(p, "a new sign-in will not help (Azure AD's suberror message_only): %s",
                                               token_source_error_words(a->error, buf, sizeof buf));
                        p->config_error = true;
                        p->next_refresh = 0;
                        log_error("Profile %s: %s", p->name, p->last_error);
                        waiter_result = -EBADR;
                        break;
                }
                p->refreshes[REFRESH_LOGIN_REQUIRED]++;
                profile_set_last_error(p, "%s%s", token_source_error_words(a->error, buf, sizeof buf),
                                       p->claims ? "; the next sign-in answers the claims challenge" : "");
                profile_enter_login_required(p, p->last_error);
                waiter_result = -ENOKEY;
                break;
        case AAD_CONFIG_ERROR:
                p->refreshes[REFRESH_CONFIG_ERROR]++;
                profile_set_last_error(p, "%s", token_source_error_words(a->error, buf, sizeof buf));
                p->config_error = true;
                p->next_refresh = 0;
                log_error("Profile %s: the identity provider rejected the configuration: %s. "
                          "Fix the profile and reload (aksspark-tokenctl reload).",
                          p->name, p->last_error);
                waiter_result = -EBADR;
                break;
        default:
                p->refreshes[REFRESH_TRANSIENT]++;
                profile_set_last_error(p, "HTTP %ld: %s", a->status,
                                       token_source_error_words(a->error, buf, sizeof buf));
                refresh_retry(p, a->retry_after);
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
                profile_refresh_schedule_at(p, profile_now(p, CLOCK_REALTIME) + REJECTED_RETRY);
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

        p->azurecli = azurecli_free(p->azurecli);
        if (result == -ENOKEY) {
                bool was = p->needs_login;

                p->refreshes[REFRESH_LOGIN_REQUIRED]++;
                p->needs_login = true;
                profile_set_last_error(p, "%s", error ?: "az login needed");
                profile_refresh_schedule_at(p, profile_now(p, CLOCK_REALTIME) + REJECTED_RETRY);
                if (!was) {
                        log_warning("Profile %s: the Azure CLI needs a person to sign in again (%s): run az login.",
                                    p->name, p->last_error);
                        profile_notify_person(p, "login_required", p->last_error);
                }
                profile_finish_refresh(p, result);
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

/* Start a refresh (for the unattended kinds: a credential request) unless one is under way.
 * forced: a person asked (refresh, check): one request whose outcome the person sees. */
static void refresh_begin(Profile *p, bool forced) {
        usec_t now = profile_now(p, CLOCK_REALTIME);
        int r;

        if (profile_unattended(p)) {
                credential_start(p);
                return;
        }
        if (p->refresh)
                return;
        if (!p->refresh_token) {
                profile_finish_refresh(p, -ENOKEY);
                return;
        }

        profile_refresh_timers_disarm(p);
        p->refresh_callbacks = (RefreshCallbacks) { .on_done = on_refresh_done, .userdata = p };
        r = profile_refresh_source(p)->start(&p->ctx->sources, p->cfg, p->name, p->refresh_token,
                                             forced || !p->access_token ? USEC_INFINITY
                                                                        : profile_token_time_left(p, now),
                                             &p->refresh_callbacks, &p->refresh);
        if (r < 0) {
                p->refreshes[REFRESH_TRANSIENT]++;
                profile_set_last_error(p, "cannot start the refresh request: %s", strerror(-r));
                refresh_retry(p, 0);
                profile_finish_refresh(p, -EIO);
                return;
        }
        profile_changed(p);
}

void profile_refresh_start(Profile *p) {
        refresh_begin(p, false);
}

void profile_refresh_start_forced(Profile *p) {
        refresh_begin(p, true);
}

/* Stop the refresh under way, if any; no answer comes. */
void profile_refresh_cancel(Profile *p) {
        p->refresh = profile_refresh_source(p)->free(p->refresh);
}

/* ---- requests ------------------------------------------------------------------------------ */

int profile_refresh(Profile *p, profile_done_fn done, void *userdata, ProfileWaiter **ret) {
        ProfileWaiter *w = profile_waiter_new(&p->waiters, WAITER_REFRESH, done, userdata);
        int r = 0;

        if (!w)
                return -ENOMEM;
        if (p->loading)
                p->refresh_wanted = true; /* once the sign-in is read (waiters_after_load()) */
        else if (!p->refresh_token && !profile_unattended(p))
                r = profile_waiter_defer_result(w, -ENOKEY);
        else {
                p->config_error = false; /* a forced refresh is a person's explicit retry */
                profile_refresh_start_forced(p);
        }
        if (r < 0) {
                profile_waiter_cancel(w);
                return r;
        }
        if (ret)
                *ret = w;
        return 0;
}

int profile_check(Profile *p, usec_t min_valid, profile_done_fn done, void *userdata, ProfileWaiter **ret) {
        ProfileWaiter *w;
        int r, verdict;

        w = profile_waiter_new(&p->waiters, WAITER_CHECK, done, userdata);
        if (!w)
                return -ENOMEM;
        w->min_valid = min_valid;
        if (p->loading) {
                /* The verdict once the sign-in is read (waiters_after_load()). */
                if (ret)
                        *ret = w;
                return 0;
        }

        /* An output that failed earlier gets one more try before we give a verdict. */
        if (profile_token_valid_at(p, profile_now(p, CLOCK_REALTIME)) && !outputs_all_ok(p->outputs))
                outputs_write(p);
        verdict = profile_check_result(p, min_valid);

        if (verdict == -EIO) {
                /* Too short, or none: refresh first, then decide. */
                p->config_error = false;
                profile_refresh_start_forced(p);
                r = 0;
        } else if (outputs_busy(p->outputs) && !p->hold_expired) {
                /* The retry above is being written: the verdict waits for it (on_outputs_written()). */
                w->finishing = true;
                w->result = verdict;
                r = profile_waiters_held(p) ? 0 : profile_waiter_defer_result(w, verdict);
        } else
                r = profile_waiter_defer_result(w, verdict);
        if (r < 0) {
                profile_waiter_cancel(w);
                return r;
        }
        if (ret)
                *ret = w;
        return 0;
}

/* ---- sign-in ------------------------------------------------------------------------------- */

static void login_end(Profile *p, int result) {
        p->login = login_device_free(p->login);
        p->browser = login_browser_free(p->browser);
        profile_finish_login(p, result);
        profile_changed(p);
}

static void on_login_code(const AadDeviceCode *code, void *userdata) {
        Profile *p = userdata;

        profile_send_device(p);
        profile_changed(p);
}

static void on_login_done(int result, AadToken *t, usec_t sent, const char *error, void *userdata) {
        Profile *p = userdata;

        if (result >= 0) {
                free(p->claims); /* answered */
                p->claims = NULL;
                profile_token_accept(p, t, sent);
                log_notice("Profile %s: signed in as %s.", p->name, p->account ? p->account : "(unknown account)");
        } else if (error) {
                /* last_error says why, so that the person who ran `login` reads it in the answer. */
                profile_set_last_error(p, "%s", error);
                log_warning("Profile %s: %s", p->name, p->last_error);
        }
        login_end(p, result);
}

int profile_login(Profile *p, int method, profile_device_fn device, profile_done_fn done, void *userdata,
                  ProfileWaiter **ret) {
        ProfileWaiter *w;
        int r;

        if (profile_unattended(p))
                return -EOPNOTSUPP;

        w = profile_waiter_new(&p->waiters, WAITER_LOGIN, done, userdata);
        if (!w)
                return -ENOMEM;
        w->device = device;

        if (p->login || p->browser) {
                /* Join the flow under way; a late joiner still gets the message. */
                if (p->login ? !!login_device_code(p->login) : !!login_browser_url(p->browser))
                        profile_send_device(p);
                if (ret)
                        *ret = w;
                return 0;
        }

        if (method < 0)
                method = p->cfg->auth;
        if (method == AUTH_BROWSER) {
                p->browser_callbacks = (LoginBrowserCallbacks) {
                        .on_url = on_login_code,
                        .on_done = on_login_done,
                        .userdata = p,
                };
                r = login_browser_start(&p->ctx->sources, p->cfg, p->name, p->cfg->redirect_port, p->claims,
                                        &p->browser_callbacks, &p->browser);
                if (r < 0) {
                        profile_waiter_cancel(w);
                        return r;
                }
                log_info("Profile %s: starting a browser sign-in at %s.", p->name, p->cfg->authority_host);
                if (ret)
                        *ret = w;
                return 0;
        }

        p->login_callbacks = (LoginDeviceCallbacks) {
                .on_code = on_login_code,
                .on_done = on_login_done,
                .userdata = p,
        };
        r = login_device_start(&p->ctx->sources, p->cfg, p->name, &p->login_callbacks, &p->login);
        if (r >= 0 && p->claims)
                r = login_device_set_claims(p->login, p->claims);
        if (r < 0) {
                p->login = login_device_free(p->login);
                profile_waiter_cancel(w);
                return r;
        }
        log_info("Profile %s: starting a device sign-in at %s.", p->name, p->cfg->authority_host);
        if (ret)
                *ret = w;
        return 0;
}

int profile_logout(Profile *p) {
        if (profile_unattended(p))
                return -EOPNOTSUPP;
        p->loading = false; /* the saved sign-in, if still being read, is not used */
        profile_refresh_cancel(p);
        token_forget(p);
        p->needs_login = true;
        p->config_error = false;
        p->attempt = 0;
        profile_set_last_error(p, NULL);
        sign_in_store_remove(p->store);
        profile_finish_refresh(p, -ENOKEY);
        log_notice("Profile %s: signed out; the refresh token is forgotten.", p->name);
        profile_changed(p);
        return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

/* Where a signed-in profile goes once its saved sign-in is read. */
static void start_signed_in(Profile *p) {
        usec_t now = profile_now(p, CLOCK_REALTIME);

        /* A kubeconfig output holds no token: it can be there before the first sign-in. */
        if (!profile_token_valid_at(p, now))
                (void) outputs_write_all(p->outputs, NULL, now);

        if (!p->refresh_token)
                return;
        if (profile_token_valid_at(p, now) && p->obtained < p->expires_on) {
                outputs_write(p);
                refresh_arm_next(p);
                if (p->next_refresh <= now)
                        profile_refresh_start(p);
                else
                        log_info("Profile %s: signed in as %s, token still valid; next refresh at the scheduled time.",
                                 p->name, p->account ? p->account : "(unknown account)");
        } else {
                log_info("Profile %s: the saved access token is missing or expired, refreshing now.", p->name);
                profile_refresh_start(p);
        }
}

/* The requests that came while the sign-in was being read: a refresh asked for goes out now,
 * each check gets its verdict (a refresh first when the token is too short). */
static void waiters_after_load(Profile *p) {
        bool refresh = p->refresh_wanted;

        p->refresh_wanted = false;
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next)
                if (w->kind == WAITER_CHECK && !w->finishing) {
                        int verdict = profile_check_result(p, w->min_valid);

                        if (verdict == -EIO)
                                refresh = true;
                        else {
                                w->finishing = true;
                                w->result = verdict;
                        }
                }
        if (refresh) {
                if (!p->refresh_token && !profile_unattended(p))
                        profile_finish_refresh(p, -ENOKEY);
                else {
                        p->config_error = false;
                        profile_refresh_start_forced(p);
                }
        }
        profile_answer_waiters(p);
}

/* The start's job in the store's worker is done (stale temp files swept; for the signed-in
 * kinds, the saved sign-in read). */
static void sign_in_loaded(Profile *p, int r, StoredProfile *s) {
        if (!p->loading)
                return; /* signed out, signed in or reconfigured meanwhile: that decided */
        p->loading = false;
        if (profile_unattended(p))
                /* Nothing is stored for these kinds: ask for the first token at once. */
                profile_refresh_start(p);
        else {
                sign_in_adopt(p, r, s);
                start_signed_in(p);
        }
        waiters_after_load(p);
        profile_changed(p);
}

/* Nothing file-related on the loop: the stale temp files next to the outputs are swept and the
 * saved sign-in is read in the store's worker; the profile goes on in sign_in_loaded(). */
int profile_start(Profile *p) {
        _cleanup_free_ char **sweep = calloc(MAX(p->outputs->n, (size_t) 1), sizeof *sweep);
        int r;

        if (!sweep)
                return -ENOMEM;
        for (size_t i = 0; i < p->outputs->n; i++)
                sweep[i] = p->outputs->items[i].path;
        p->loading = true;
        r = sign_in_store_load(p->store, !profile_unattended(p), sweep, p->outputs->n);
        if (r < 0) {
                log_warning_errno(r, "Profile %s: cannot read the saved sign-in: %m", p->name);
                sign_in_loaded(p, r, NULL);
        }
        profile_changed(p);
        return 0;
}

int profile_new(const ProfileContext *ctx, const ProfileConfig *cfg, Profile **ret) {
        _cleanup_(profile_freep) Profile *p = NULL;
        int r;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->ctx = ctx;
        p->cfg = cfg;
        p->waiters = (ProfileWaiterList) { .profile = p, .event = ctx->sources.event };
        p->name = strdup(cfg->name);
        if (!p->name)
                return -ENOMEM;
        r = outputs_new(cfg, &ctx->outputs_exec, &p->outputs);
        if (r < 0)
                return r;
        r = outputs_attach(p->outputs, ctx->sources.event, on_outputs_written, p);
        if (r < 0)
                return r;
        p->store_callbacks = (SignInStoreCallbacks) { .on_done = on_store_done, .userdata = p };
        r = sign_in_store_new(ctx->sources.event, ctx->state_dir, p->name, ctx->state_key, ctx->now,
                              &p->store_callbacks, &p->store);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

void profile_reconfigure(Profile *p, const ProfileConfig *cfg, Outputs *o) {
        bool foreign;

        foreign = !profile_config_same_identity(cfg, p->cfg);
        outputs_free(p->outputs);
        p->outputs = o;
        p->cfg = cfg;
        /* Cannot fail quietly: without a worker the outputs would be written on the loop. */
        if (outputs_attach(p->outputs, p->ctx->sources.event, on_outputs_written, p) < 0)
                log_warning("Profile %s: no thread for the outputs; writing them from the event loop.", p->name);

        if ((p->login || p->browser) && foreign)
                login_end(p, -ECANCELED);
        else if (p->login)
                login_device_set_config(p->login, cfg);
        else if (p->browser)
                login_browser_set_config(p->browser, cfg);
        if (p->refresh)
                profile_refresh_source(p)->set_config(p->refresh, cfg);
        credential_set_config(p->credential, cfg);
        if (profile_unattended(p)) {
                p->config_error = false;
                if (foreign || !p->access_token) {
                        p->credential = credential_free(p->credential);
                        p->azurecli = azurecli_free(p->azurecli);
                        profile_refresh_cancel(p);
                        token_forget(p);
                        p->attempt = 0;
                        profile_set_last_error(p, NULL);
                        profile_refresh_start(p);
                } else {
                        outputs_write(p);
                        if (!p->credential && !p->azurecli)
                                refresh_arm_next(p);
                }
        } else if (foreign) {
                profile_refresh_cancel(p);
                token_forget(p);
                log_notice("Profile %s: tenant, client or authority changed; the old sign-in is not used.", p->name);
                profile_enter_login_required(p, "the profile now names another tenant, client or authority");
                profile_finish_refresh(p, -ENOKEY);
        } else if (p->access_token) {
                p->config_error = false;
                outputs_write(p);
                if (!p->refresh && p->refresh_token)
                        refresh_arm_next(p);
        }
        if (!p->access_token)
                (void) outputs_write_all(p->outputs, NULL, profile_now(p, CLOCK_REALTIME));
        profile_changed(p);
}

Profile *profile_free(Profile *p) {
        if (!p)
                return NULL;

        profile_refresh_cancel(p);
        p->credential = credential_free(p->credential);
        p->azurecli = azurecli_free(p->azurecli);
        p->login = login_device_free(p->login);
        p->browser = login_browser_free(p->browser);
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next) {
                w->finishing = true;
                w->result = -ECANCELED;
        }
        profile_waiters_flush(&p->waiters);

        sd_event_source_disable_unref(p->refresh_timer);
        sd_event_source_disable_unref(p->refresh_timer_boot);
        sd_event_source_disable_unref(p->expiry_timer_boot);
        sd_event_source_disable_unref(p->expiry_timer);
        sd_event_source_disable_unref(p->output_timer);
        sd_event_source_disable_unref(p->hold_timer);
        sign_in_store_free(p->store); /* a save still under way finishes on its own */
        secret_free(p->saved_refresh_token);
        secret_free(p->access_token);
        secret_free(p->refresh_token);
        outputs_free(p->outputs);
        free(p->snap_outputs);
        free(p->account);
        free(p->tenant);
        free(p->last_error);
        free(p->claims);
        free(p->name);
        free(p);
        return NULL;
}
