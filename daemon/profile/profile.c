/* One profile's life: refresh before expiry, backoff, outputs, and the requests that wait on
 * it. How a sign-in obtains its first token is a token source's business (login-device.c,
 * behind the seam in token-source.h); what the token then means is decided here.
 *
 * The path of one refresh: refresh_timer fires -> profile_refresh_start() (profile-refresh.c)
 * builds the body (aad.c) and posts it (http.c) -> on_refresh_done() classifies the answer
 * (aad.c) -> profile_token_accept() stores the rotated refresh token (profile-store.c, store.c)
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

#define TIMER_ACCURACY (50 * USEC_PER_MSEC)
#define OUTPUT_RETRY_MIN (5 * USEC_PER_SEC)
#define OUTPUT_RETRY_MAX (5 * USEC_PER_MINUTE)
/* Answers wait this long for an output write in flight (so `login`, `refresh` and `check`
 * answer with the files written), no longer: a hung file system must not hold them. */
#define OUTPUT_ANSWER_WAIT (5 * USEC_PER_SEC)

const char *profile_name(const Profile *p) {
        return p->name;
}

bool profile_token_valid_at(const Profile *p, usec_t t) {
        return p->access_token && t < p->expires_on && (p->expires_boot == 0 || now_boottime() < p->expires_boot);
}

/* Time the token has left, by the stricter of the two clocks. */
usec_t profile_token_time_left(const Profile *p, usec_t now) {
        return schedule_time_left(p->expires_on, p->expires_boot, now, now_boottime());
}

/* No person, no refresh token: the credential is presented for every token. */
bool profile_unattended(const Profile *p) {
        return auth_kind_is_unattended(p->cfg->auth);
}

AuthKind profile_auth(const Profile *p) {
        return p->cfg->auth;
}

ProfileState profile_state(const Profile *p) {
        if (p->refresh_req || p->credential || p->azurecli)
                return PROFILE_REFRESHING;
        if (p->config_error)
                return PROFILE_ERROR;
        if (p->needs_login || (!profile_unattended(p) && !p->refresh_token))
                return PROFILE_LOGIN_REQUIRED;
        if (profile_token_valid_at(p, now_realtime()))
                return PROFILE_VALID;
        return PROFILE_EXPIRED;
}

void profile_changed(Profile *p) {
        if (p->ctx->on_changed)
                p->ctx->on_changed(p, p->ctx->userdata);
}

void profile_set_last_error(Profile *p, const char *format, ...) {
        va_list ap;
        char *s = NULL;

        free(p->last_error);
        p->last_error = NULL;
        if (!format)
                return;
        va_start(ap, format);
        if (vasprintf(&s, format, ap) < 0)
                s = NULL;
        va_end(ap);
        p->last_error = s;
}

void profile_notify_person(Profile *p, const char *state, const char *message) {
        const char *cmd = p->ctx->notify_command;
        int r;

        if (!cmd)
                return;
        r = notify_command_run(p->ctx->sources.event, cmd, p->name, state, message);
        if (r < 0)
                log_warning_errno(r, "Profile %s: failed to run notify_command: %m", p->name);
}

/* ---- waiters ---------------------------------------------------------------------------- */

static bool waiters_held(Profile *p);
static int check_result(Profile *p, usec_t min_valid);

/* Answer every waiter marked finishing, unless an output write or state save is still in
 * flight (waiters_held()): then once it is done. A verdict on the outputs given while they were
 * being written is given again. */
void profile_answer_waiters(Profile *p) {
        if (waiters_held(p))
                return;
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next)
                if (w->finishing && w->kind == WAITER_CHECK && (w->result == 0 || w->result == -EREMOTEIO)) {
                        int r = check_result(p, w->min_valid);
                        if (r == 0 || r == -EREMOTEIO)
                                w->result = r;
                }
        profile_waiters_flush(&p->waiters);
}

static int check_result(Profile *p, usec_t min_valid) {
        usec_t now = now_realtime();

        if (!profile_token_valid_at(p, now) || profile_token_time_left(p, now) < min_valid) {
                if (p->needs_login || (!profile_unattended(p) && !p->refresh_token))
                        return -ENOKEY;
                if (p->config_error)
                        return -EBADR;
                return -EIO;
        }
        if (!outputs_all_ok(p->outputs) || p->store_result < 0)
                return -EREMOTEIO;
        return 0;
}

/* A refresh ended: refresh waiters get result, check waiters their own verdict. */
void profile_finish_refresh(Profile *p, int result) {
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next) {
                if (w->kind == WAITER_REFRESH) {
                        w->finishing = true;
                        w->result = result;
                } else if (w->kind == WAITER_CHECK) {
                        int r = check_result(p, w->min_valid);
                        w->finishing = true;
                        /* The refresh's own failure says more than "still too short". */
                        w->result = r == -EIO && result < 0 ? result : r;
                }
        }
        profile_answer_waiters(p);
}

static void waiters_finish_login(Profile *p, int result) {
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next)
                if (w->kind == WAITER_LOGIN) {
                        w->finishing = true;
                        w->result = result;
                }
        profile_answer_waiters(p);
}

static void waiters_send_device(Profile *p) {
        for (;;) {
                ProfileWaiter *w;

                for (w = p->waiters.waiters; w && !(w->kind == WAITER_LOGIN && !w->device_sent); w = w->waiters_next)
                        ;
                if (!w)
                        return;
                w->device_sent = true;
                if (w->device)
                        w->device(p, p->login ? login_device_code(p->login) : login_browser_url(p->browser),
                                  w->userdata);
        }
}

/* ---- timers ------------------------------------------------------------------------------ */

int profile_timer_arm(Profile *p, sd_event_source **s, clockid_t clock, usec_t at, sd_event_time_handler_t handler) {
        int r;

        if (*s) {
                r = sd_event_source_set_time(*s, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
                return r;
        }
        return sd_event_add_time(p->ctx->sources.event, s, clock, at, TIMER_ACCURACY, handler, p);
}

void profile_timer_disarm(sd_event_source *s) {
        if (s)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

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
                r = profile_timer_arm(p, &p->refresh_timer_boot, CLOCK_BOOTTIME,
                                      schedule_boottime_of(at, now_realtime(), now_boottime()), on_refresh_timer);
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
        r = outputs_write_all(p->outputs, p->access_token, now_realtime());
        if (r < 0)
                log_warning_errno(r, "Profile %s: cannot start writing the outputs: %m", p->name);
}

static int on_output_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;

        if (profile_token_valid_at(p, now_realtime()))
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
                if (profile_timer_arm(p, &p->output_timer, CLOCK_BOOTTIME, now_boottime() + delay, on_output_timer) < 0)
                        log_warning("Profile %s: failed to arm the output retry timer.", p->name);
        }
        profile_answer_waiters(p);
        profile_changed(p);
}

static void outputs_write(Profile *p) {
        if (p->access_token)
                outputs_start_write(p, false);
}

static int on_hold_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;

        p->hold_expired = true;
        profile_answer_waiters(p);
        return 0;
}

/* Should answers wait for the output write or state save in flight? Yes, up to
 * OUTPUT_ANSWER_WAIT: `login` and `refresh` answer with the files written and the sign-in saved. */
static bool waiters_held(Profile *p) {
        if (!outputs_busy(p->outputs) && !worker_busy(p->store_worker)) {
                p->answers_held = p->hold_expired = false;
                profile_timer_disarm(p->hold_timer);
                return false;
        }
        if (p->hold_expired)
                return false;
        if (!p->answers_held) {
                if (profile_timer_arm(p, &p->hold_timer, CLOCK_MONOTONIC, now_monotonic() + OUTPUT_ANSWER_WAIT,
                                      on_hold_timer) < 0)
                        return false;
                p->answers_held = true;
        }
        return true;
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

void profile_claims_update(Profile *p) {
        JwtClaims c = {};

        if (jwt_read_claims(secret_reveal(p->access_token), secret_len(p->access_token), &c) < 0)
                return;
        if (c.account) {
                free(p->account);
                p->account = TAKE_PTR(c.account);
        }
        if (c.tenant) {
                free(p->tenant);
                p->tenant = TAKE_PTR(c.tenant);
        }
        jwt_claims_clear(&c);
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
void profile_token_accept(Profile *p, AadToken *t, usec_t sent) {
        char left[32], next[32];
        usec_t now = now_realtime();

        secret_free(p->access_token);
        p->access_token = TAKE_PTR(t->access_token);
        if (t->refresh_token) {
                /* The one on disk stays in memory until the new one is saved (profile_store_save()). */
                if (p->saved_refresh_token)
                        secret_free(p->refresh_token);
                else
                        p->saved_refresh_token = p->refresh_token;
                p->refresh_token = TAKE_PTR(t->refresh_token);
                p->rt_generation++;
        }
        p->obtained = sent;
        p->expires_on = sent + t->expires_in;
        p->expires_boot = schedule_boottime_of(p->expires_on, now, now_boottime());
        p->refresh_in = t->refresh_in;
        profile_claims_update(p);
        if (!profile_unattended(p)) /* nothing to keep: the credential itself stays where it is */
                profile_store_save(p);

        p->needs_login = false;
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
}

void profile_enter_login_required(Profile *p, const char *why) {
        bool was = p->needs_login;

        p->needs_login = true;
        p->refresh_token = secret_free(p->refresh_token);
        p->saved_refresh_token = secret_free(p->saved_refresh_token);
        profile_refresh_timers_disarm(p);
        p->next_refresh = 0;
        profile_store_remove(p);
        if (!was) {
                log_warning("Profile %s: a person must sign in (%s): run aksspark-tokenctl --profile %s login", p->name,
                            why, p->name);
                profile_notify_person(p, "login_required", why);
        }
}

int profile_refresh(Profile *p, profile_done_fn done, void *userdata, ProfileWaiter **ret) {
        ProfileWaiter *w = profile_waiter_new(&p->waiters, WAITER_REFRESH, done, userdata);
        int r = 0;

        if (!w)
                return -ENOMEM;
        if (!p->refresh_token && !profile_unattended(p))
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

        /* An output that failed earlier gets one more try before we give a verdict. */
        if (profile_token_valid_at(p, now_realtime()) && !outputs_all_ok(p->outputs))
                outputs_write(p);

        verdict = check_result(p, min_valid);
        w = profile_waiter_new(&p->waiters, WAITER_CHECK, done, userdata);
        if (!w)
                return -ENOMEM;
        w->min_valid = min_valid;

        if (verdict == -EIO) {
                /* Too short, or none: refresh first, then decide. */
                p->config_error = false;
                profile_refresh_start_forced(p);
                r = 0;
        } else if (outputs_busy(p->outputs) && !p->hold_expired) {
                /* The retry above is being written: the verdict waits for it (on_outputs_written()). */
                w->finishing = true;
                w->result = verdict;
                r = waiters_held(p) ? 0 : profile_waiter_defer_result(w, verdict);
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
        waiters_finish_login(p, result);
        profile_changed(p);
}

static void on_login_code(const AadDeviceCode *code, void *userdata) {
        Profile *p = userdata;

        waiters_send_device(p);
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
                        waiters_send_device(p);
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
        profile_refresh_cancel(p);
        token_forget(p);
        p->needs_login = true;
        p->config_error = false;
        p->attempt = 0;
        profile_set_last_error(p, NULL);
        profile_store_remove(p);
        profile_finish_refresh(p, -ENOKEY);
        log_notice("Profile %s: signed out; the refresh token is forgotten.", p->name);
        profile_changed(p);
        return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

int profile_start(Profile *p) {
        usec_t now = now_realtime();

        outputs_remove_stale_temps(p->outputs);
        if (profile_unattended(p)) {
                /* Nothing is stored for these kinds: ask for the first token at once. */
                profile_refresh_start(p);
                profile_changed(p);
                return 0;
        }
        profile_store_load(p);
        /* A kubeconfig output holds no token: it can be there before the first sign-in. */
        if (!profile_token_valid_at(p, now))
                (void) outputs_write_all(p->outputs, NULL, now);

        if (!p->refresh_token) {
                profile_changed(p);
                return 0;
        }
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
        r = profile_store_worker_new(p);
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
                if (!p->refresh_req && p->refresh_token)
                        refresh_arm_next(p);
        }
        if (!p->access_token)
                (void) outputs_write_all(p->outputs, NULL, now_realtime());
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
        sd_event_source_disable_unref(p->store_timer);
        worker_free(p->store_worker); /* a save still under way finishes on its own */
        sd_event_source_disable_unref(p->hedge_timer);
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
