/* One profile's life: refresh before expiry, backoff, outputs, and the requests that wait on
 * it. How a sign-in obtains its first token is a token source's business (login-device.c,
 * behind the seam in token-source.h); what the token then means is decided here.
 *
 * The path of one refresh: refresh_timer fires -> refresh_start() builds the body (aad.c) and
 * posts it (http.c) -> on_refresh_done() classifies the answer (aad.c) -> token_accept() stores
 * the rotated refresh token (store.c) before dropping the old one, writes the outputs
 * (outputs.c) and arms the next refresh (schedule.c) -> waiters_finish() answers whoever asked.
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

#include "aad.h"
#include "credential.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "login-browser.h"
#include "login-device.h"
#include "notify.h"
#include "outputs.h"
#include "profile-waiters.h"
#include "profile.h"
#include "schedule.h"
#include "store.h"
#include "token-source.h"
#include "worker.h"

#define TIMER_ACCURACY (50 * USEC_PER_MSEC)
#define OUTPUT_RETRY_MIN (5 * USEC_PER_SEC)
#define OUTPUT_RETRY_MAX (5 * USEC_PER_MINUTE)
/* A rejected credential (state error) is tried again this often: a secret file, a certificate
 * or a federated token can be fixed without a reload. */
#define REJECTED_RETRY (5 * USEC_PER_MINUTE)
/* Answers wait this long for an output write in flight (so `login`, `refresh` and `check`
 * answer with the files written), no longer: a hung file system must not hold them. */
#define OUTPUT_ANSWER_WAIT (5 * USEC_PER_SEC)
/* Near expiry a hanging refresh is not the last chance: after HEDGE_DELAY without an answer,
 * with less than HEDGE_WINDOW (plus two http_timeouts) left, a second request goes out on a
 * new connection; the first answer wins and the other is cancelled. */
#define HEDGE_WINDOW (2 * USEC_PER_SEC)
#define HEDGE_DELAY_MAX (1 * USEC_PER_SEC)
#define STORE_RETRY_MIN (1 * USEC_PER_SEC)
#define STORE_RETRY_MAX (1 * USEC_PER_MINUTE)

struct Profile {
        const ProfileContext *ctx;
        const ProfileConfig *cfg;
        char *name;
        Outputs *outputs;

        Secret *access_token;
        Secret *refresh_token;
        usec_t obtained; /* realtime the token's request was sent */
        usec_t expires_on;
        usec_t refresh_in;
        char *account;
        char *tenant;

        bool needs_login;  /* no usable refresh token: a person must sign in */
        char *claims;      /* Conditional Access: the challenge the next sign-in answers */
        bool config_error; /* AAD rejected the configuration: no retries */
        char *last_error;
        usec_t last_refresh;
        usec_t next_refresh;
        unsigned attempt; /* transient failures in a row */
        unsigned output_attempt;
        uint64_t refreshes[_REFRESH_RESULT_MAX]; /* by result, for the metrics */
        bool output_retrying;                    /* the write in flight is a retry after a failure */
        int store_result;                        /* the last save of the sign-in: 0 ok, -errno failed */
        bool store_attempted;
        usec_t store_last_save;       /* realtime of the last attempt */
        unsigned store_attempt;       /* failed saves in a row */
        sd_event_source *store_timer; /* retries a failed save */
        Worker *store_worker;         /* saves and removes the state file off the loop */
        Secret *saved_refresh_token;  /* the one on disk while a newer one could not be saved */
        bool answers_held;            /* waiters wait for the write in flight (hold_timer) */
        bool hold_expired;            /* ... and have waited OUTPUT_ANSWER_WAIT for it */
        sd_event_source *hold_timer;

        sd_event_source *refresh_timer;
        sd_event_source *refresh_timer_boot;
        sd_event_source *expiry_timer_boot;
        usec_t expires_boot; /* CLOCK_BOOTTIME of expires_on; 0 unknown (loaded token) */
        sd_event_source *expiry_timer;
        sd_event_source *output_timer;
        HttpRequest *refresh_req; /* the refresh attempt in flight */
        usec_t refresh_sent;
        unsigned refresh_gen;   /* rt_generation when refresh_req was sent */
        HttpRequest *hedge_req; /* a second try on a new connection while refresh_req hangs */
        usec_t hedge_sent;
        unsigned hedge_gen;
        sd_event_source *hedge_timer;
        unsigned rt_generation; /* bumped whenever refresh_token is replaced */
        bool refresh_forced;    /* refresh_start() runs for `refresh` or `check`: no second try */

        Credential *credential; /* unattended kinds: a request for a token under way */
        CredentialCallbacks credential_callbacks;

        LoginDevice *login; /* a sign-in under way: device code, */
        LoginDeviceCallbacks login_callbacks;
        LoginBrowser *browser; /* or browser */
        LoginBrowserCallbacks browser_callbacks;

        bool expiry_notified; /* for the current token */
        ProfileWaiterList waiters;
        OutputSnapshot *snap_outputs;
};

static void refresh_start(Profile *p);

const char *profile_name(const Profile *p) {
        return p->name;
}

static bool token_valid_at(const Profile *p, usec_t t) {
        return p->access_token && t < p->expires_on && (p->expires_boot == 0 || now_boottime() < p->expires_boot);
}

/* Time the token has left, by the stricter of the two clocks. */
static usec_t token_time_left(const Profile *p, usec_t now) {
        return schedule_time_left(p->expires_on, p->expires_boot, now, now_boottime());
}

/* No person, no refresh token: the credential is presented for every token. */
static bool unattended(const Profile *p) {
        return auth_kind_is_unattended(p->cfg->auth);
}

AuthKind profile_auth(const Profile *p) {
        return p->cfg->auth;
}

ProfileState profile_state(const Profile *p) {
        if (p->refresh_req || p->credential)
                return PROFILE_REFRESHING;
        if (p->config_error)
                return PROFILE_ERROR;
        if (!unattended(p) && (p->needs_login || !p->refresh_token))
                return PROFILE_LOGIN_REQUIRED;
        if (token_valid_at(p, now_realtime()))
                return PROFILE_VALID;
        return PROFILE_EXPIRED;
}

static void profile_changed(Profile *p) {
        if (p->ctx->on_changed)
                p->ctx->on_changed(p, p->ctx->userdata);
}

static void set_last_error(Profile *p, const char *format, ...) _printf_(2, 3);
static void set_last_error(Profile *p, const char *format, ...) {
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

static void notify_person(Profile *p, const char *state, const char *message) {
        const char *cmd = p->ctx->notify_command;
        int r;

        if (!cmd)
                return;
        r = notify_command_run(p->ctx->event, cmd, p->name, state, message);
        if (r < 0)
                log_warning_errno(r, "Profile %s: failed to run notify_command: %m", p->name);
}

/* ---- waiters ---------------------------------------------------------------------------- */

static bool waiters_held(Profile *p);
static int check_result(Profile *p, usec_t min_valid);

/* Answer every waiter marked finishing, unless an output write or state save is still in
 * flight (waiters_held()): then once it is done. A verdict on the outputs given while they were
 * being written is given again. */
static void waiters_flush(Profile *p) {
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

        if (!token_valid_at(p, now) || token_time_left(p, now) < min_valid) {
                if (!unattended(p) && (p->needs_login || !p->refresh_token))
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
static void waiters_finish_refresh(Profile *p, int result) {
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
        waiters_flush(p);
}

static void waiters_finish_login(Profile *p, int result) {
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next)
                if (w->kind == WAITER_LOGIN) {
                        w->finishing = true;
                        w->result = result;
                }
        waiters_flush(p);
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

static int timer_arm(Profile *p, sd_event_source **s, clockid_t clock, usec_t at, sd_event_time_handler_t handler) {
        int r;

        if (*s) {
                r = sd_event_source_set_time(*s, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
                return r;
        }
        return sd_event_add_time(p->ctx->event, s, clock, at, TIMER_ACCURACY, handler, p);
}

static void timer_disarm(sd_event_source *s) {
        if (s)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static void refresh_timers_disarm(Profile *p) {
        timer_disarm(p->refresh_timer);
        timer_disarm(p->refresh_timer_boot);
}

static int on_refresh_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        refresh_start(userdata);
        return 0;
}

static void refresh_schedule_at(Profile *p, usec_t at) {
        int r;

        p->next_refresh = at;
        r = timer_arm(p, &p->refresh_timer, CLOCK_REALTIME, at, on_refresh_timer);
        if (r >= 0)
                r = timer_arm(p, &p->refresh_timer_boot, CLOCK_BOOTTIME,
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
        if (unattended(p)) {
                log_error(
                        "Profile %s: the access token has expired; getting a new one with the %s credential has failed since (%s). Retrying.",
                        p->name, auth_kind_to_string(p->cfg->auth), p->last_error ? p->last_error : "no answer yet");
                notify_person(p, "expired", "The access token has expired and no new one could be had yet.");
        } else if (p->needs_login || !p->refresh_token) {
                log_warning("Profile %s: the access token has expired and cannot be refreshed; "
                            "sign in with: aksspark-tokenctl --profile %s login",
                            p->name, p->name);
                notify_person(p, "expired", "The access token has expired; sign in with aksspark-tokenctl login.");
        } else {
                log_error("Profile %s: the access token has expired; refreshing has failed since (%s). Retrying.",
                          p->name, p->last_error ? p->last_error : "no answer yet");
                notify_person(p, "expired", "The access token has expired and could not be refreshed yet.");
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

        if (token_valid_at(p, now_realtime()))
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
                timer_disarm(p->output_timer);
        } else if (!outputs_busy(o)) {
                /* Try again soon rather than at the next refresh. */
                p->output_attempt = p->output_retrying ? p->output_attempt + 1 : 0;
                delay = MIN(OUTPUT_RETRY_MIN << MIN(p->output_attempt, 10u), OUTPUT_RETRY_MAX);
                if (timer_arm(p, &p->output_timer, CLOCK_BOOTTIME, now_boottime() + delay, on_output_timer) < 0)
                        log_warning("Profile %s: failed to arm the output retry timer.", p->name);
        }
        waiters_flush(p);
        profile_changed(p);
}

static void outputs_write(Profile *p) {
        if (p->access_token)
                outputs_start_write(p, false);
}

static int on_hold_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;

        p->hold_expired = true;
        waiters_flush(p);
        return 0;
}

/* Should answers wait for the output write or state save in flight? Yes, up to
 * OUTPUT_ANSWER_WAIT: `login` and `refresh` answer with the files written and the sign-in saved. */
static bool waiters_held(Profile *p) {
        if (!outputs_busy(p->outputs) && !worker_busy(p->store_worker)) {
                p->answers_held = p->hold_expired = false;
                timer_disarm(p->hold_timer);
                return false;
        }
        if (p->hold_expired)
                return false;
        if (!p->answers_held) {
                if (timer_arm(p, &p->hold_timer, CLOCK_MONOTONIC, now_monotonic() + OUTPUT_ANSWER_WAIT, on_hold_timer) <
                    0)
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
        refresh_timers_disarm(p);
        timer_disarm(p->expiry_timer);
        timer_disarm(p->expiry_timer_boot);
        p->expires_boot = 0;
        timer_disarm(p->output_timer);
}

static void claims_update(Profile *p) {
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

static int state_save(Profile *p);
static void state_save_result(Profile *p, int r);

/* One save (text) or removal (text NULL) of the state file, run by the profile's store worker
 * thread: a state directory on a hung file system holds that thread, never the loop. */
typedef struct StoreJob {
        char *state_dir;
        char *name;
        Secret *text;
        int result;
} StoreJob;

static void store_job_free(void *p) {
        StoreJob *j = p;

        if (!j)
                return;
        free(j->state_dir);
        free(j->name);
        secret_free(j->text);
        free(j);
}

static void store_job_run(void *p) {
        StoreJob *j = p;

        j->result = j->text ? store_save_text(j->state_dir, j->name, j->text) : store_remove(j->state_dir, j->name);
}

static void on_store_job_done(Worker *w, void *p, void *userdata) {
        StoreJob *j = p;
        Profile *prof = userdata;
        bool save = j->text;
        int r = j->result;

        store_job_free(j);
        if (save)
                state_save_result(prof, r);
        else if (r < 0)
                log_warning_errno(r, "Profile %s: failed to remove the saved sign-in: %m", prof->name);
        waiters_flush(prof);
}

/* Queue a job (a newer one replaces one still waiting: the newest state wins); inline when
 * the profile has no worker. */
static int store_submit(Profile *p, Secret *text) {
        StoreJob *j = calloc(1, sizeof *j);

        if (!j) {
                secret_free(text);
                return -ENOMEM;
        }
        j->text = text;
        j->state_dir = strdup(p->ctx->state_dir);
        j->name = strdup(p->name);
        if (!j->state_dir || !j->name) {
                store_job_free(j);
                return -ENOMEM;
        }
        if (p->store_worker)
                return worker_submit(p->store_worker, j);
        store_job_run(j);
        on_store_job_done(NULL, j, p);
        return 0;
}

static void state_remove(Profile *p) {
        int r = store_submit(p, NULL);

        if (r < 0)
                log_warning_errno(r, "Profile %s: cannot remove the saved sign-in: %m", p->name);
}

static int on_store_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;

        if (p->refresh_token && !p->needs_login)
                (void) state_save(p);
        return 0;
}

/* Save the sign-in; a failure is kept for status and check, and retried with backoff: a
 * restart must never silently lose the sign-in. */
static int state_save(Profile *p) {
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
        Secret *text = NULL;
        int r;

        r = store_serialize(&s, &text);
        if (r >= 0)
                r = store_submit(p, text);
        if (r < 0)
                state_save_result(p, r);
        return r;
}

/* A save finished (or could not start): keep its result for status and check; retry failures. */
static void state_save_result(Profile *p, int r) {
        if (p->needs_login)
                return; /* signed out meanwhile: the file is being removed */
        p->store_attempted = true;
        p->store_last_save = now_realtime();
        if (r < 0) {
                usec_t delay = MIN(STORE_RETRY_MIN << MIN(p->store_attempt, 10u), STORE_RETRY_MAX);

                if (p->store_attempt == 0)
                        log_error_errno(r,
                                        "Profile %s: failed to save the sign-in to the state directory %s, "
                                        "a restart now would need a new sign-in; retrying: %m",
                                        p->name, p->ctx->state_dir);
                else
                        log_warning_errno(r, "Profile %s: saving the sign-in failed again: %m", p->name);
                p->store_result = r;
                p->store_attempt++;
                if (timer_arm(p, &p->store_timer, CLOCK_BOOTTIME, now_boottime() + delay, on_store_timer) < 0)
                        log_warning("Profile %s: failed to arm the state save retry timer.", p->name);
                profile_changed(p);
                return;
        }
        if (p->store_result < 0) {
                log_info("Profile %s: the sign-in is saved again.", p->name);
                profile_changed(p);
        }
        p->store_result = 0;
        p->store_attempt = 0;
        p->saved_refresh_token = secret_free(p->saved_refresh_token);
        timer_disarm(p->store_timer);
}

static void refresh_arm_next(Profile *p) {
        usec_t at = schedule_refresh_at(p->obtained, p->expires_on, p->cfg->refresh_before, p->refresh_in,
                                        random_u64());

        at = schedule_not_before(at, p->obtained, p->ctx->refresh_floor);
        refresh_schedule_at(p, at);
        p->expiry_notified = false;
        if (timer_arm(p, &p->expiry_timer, CLOCK_REALTIME, p->expires_on, on_expiry_timer) < 0 ||
            (p->expires_boot != 0 &&
             timer_arm(p, &p->expiry_timer_boot, CLOCK_BOOTTIME, p->expires_boot, on_expiry_timer) < 0))
                log_warning("Profile %s: failed to arm the expiry timer.", p->name);
}

/* A new token arrived (refresh or sign-in). The rotated refresh token is on disk before the
 * old one is dropped from memory: a crash in between costs nothing. */
static void token_accept(Profile *p, AadToken *t, usec_t sent) {
        char left[32], next[32];
        usec_t now = now_realtime();

        secret_free(p->access_token);
        p->access_token = TAKE_PTR(t->access_token);
        if (t->refresh_token) {
                /* The one on disk stays in memory until the new one is saved (state_save()). */
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
        claims_update(p);
        if (!unattended(p)) /* nothing to keep: the credential itself stays where it is */
                state_save(p);

        p->needs_login = false;
        p->config_error = false;
        p->attempt = 0;
        p->last_refresh = now;
        set_last_error(p, NULL);

        outputs_write(p);
        refresh_arm_next(p);

        log_info("Profile %s: token for %s valid for %s, next refresh in %s.", p->name,
                 p->account ? p->account : "(unknown account)",
                 format_duration(left, sizeof left, p->expires_on > now ? p->expires_on - now : 0),
                 format_duration(next, sizeof next, p->next_refresh > now ? p->next_refresh - now : 0));
}

static void enter_login_required(Profile *p, const char *why) {
        bool was = p->needs_login;

        p->needs_login = true;
        p->refresh_token = secret_free(p->refresh_token);
        p->saved_refresh_token = secret_free(p->saved_refresh_token);
        refresh_timers_disarm(p);
        p->next_refresh = 0;
        state_remove(p);
        if (!was) {
                log_warning("Profile %s: a person must sign in (%s): run aksspark-tokenctl --profile %s login", p->name,
                            why, p->name);
                notify_person(p, "login_required", why);
        }
}

/* ---- refresh ------------------------------------------------------------------------------- */

static void refresh_retry(Profile *p, usec_t retry_after) {
        usec_t now = now_realtime(), last_chance = USEC_INFINITY, delay;
        char d[32];

        if (token_valid_at(p, now))
                last_chance = p->expires_on > p->ctx->http_timeout ? p->expires_on - p->ctx->http_timeout : 0;
        p->attempt++;
        delay = schedule_backoff(p->attempt, now, retry_after, last_chance, random_u64());
        refresh_schedule_at(p, now + delay);
        /* Retries come within seconds: say them to the tenth, not rounded down to "0s". */
        if (delay < USEC_PER_MINUTE)
                snprintf(d, sizeof d, "%.1fs", (double) delay / USEC_PER_SEC);
        else
                format_duration(d, sizeof d, delay);
        log_warning("Profile %s: refresh failed: %s. Retry %u in %s.", p->name,
                    p->last_error ? p->last_error : "unknown error", p->attempt, d);
}

/* Stop every request of the refresh attempt (both, when a second one went out). */
static void refresh_cancel(Profile *p) {
        http_request_cancel(p->refresh_req);
        http_request_cancel(p->hedge_req);
        p->refresh_req = p->hedge_req = NULL;
        timer_disarm(p->hedge_timer);
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
                        timer_disarm(p->hedge_timer);
                        waiters_finish_refresh(p, token_valid_at(p, now_realtime()) ? 0 : -EIO);
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
        timer_disarm(p->hedge_timer);

        if (result < 0) {
                errno = -result;
                p->refreshes[REFRESH_TRANSIENT]++;
                set_last_error(p, "cannot reach %s: %s", p->cfg->authority_host,
                               resp && resp->error ? resp->error : strerror(-result));
                refresh_retry(p, 0);
                waiters_finish_refresh(p, -EIO);
                profile_changed(p);
                return;
        }

        switch (o) {
        case AAD_OK:
                p->refreshes[REFRESH_OK]++;
                token_accept(p, &t, sent);
                waiter_result = 0;
                break;
        case AAD_NEEDS_LOGIN:
                free(p->claims);
                p->claims = e.claims ? strdup(e.claims) : NULL;
                if (streq_ptr(e.suberror, "message_only")) {
                        p->refreshes[REFRESH_CONFIG_ERROR]++;
                        /* Conditional Access says nothing a person does now can fix it: say so
                         * instead of asking for a sign-in that would fail the same way. */
                        set_last_error(p, "a new sign-in will not help (Azure AD's suberror message_only): %s",
                                       token_source_error_words(&e, buf, sizeof buf));
                        p->config_error = true;
                        p->next_refresh = 0;
                        log_error("Profile %s: %s", p->name, p->last_error);
                        waiter_result = -EBADR;
                        break;
                }
                p->refreshes[REFRESH_LOGIN_REQUIRED]++;
                set_last_error(p, "%s%s", token_source_error_words(&e, buf, sizeof buf),
                               p->claims ? "; the next sign-in answers the claims challenge" : "");
                enter_login_required(p, p->last_error);
                waiter_result = -ENOKEY;
                break;
        case AAD_CONFIG_ERROR:
                p->refreshes[REFRESH_CONFIG_ERROR]++;
                set_last_error(p, "%s", token_source_error_words(&e, buf, sizeof buf));
                p->config_error = true;
                p->next_refresh = 0;
                log_error("Profile %s: the identity provider rejected the configuration: %s. "
                          "Fix the profile and reload (aksspark-tokenctl reload).",
                          p->name, p->last_error);
                waiter_result = -EBADR;
                break;
        default:
                p->refreshes[REFRESH_TRANSIENT]++;
                set_last_error(p, "HTTP %ld: %s", resp->status, token_source_error_words(&e, buf, sizeof buf));
                refresh_retry(p, retry_after);
                waiter_result = -EIO;
                break;
        }

        waiters_finish_refresh(p, waiter_result);
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
                token_accept(p, t, sent);
        else if (result == -EBADR) {
                bool was = p->config_error;

                set_last_error(p, "%s", error ? error : "the credential was rejected");
                p->config_error = true;
                refresh_schedule_at(p, now_realtime() + REJECTED_RETRY);
                if (!was)
                        log_error(
                                "Profile %s: %s. Fix the credential (it is tried again every %s, and at every refresh or check).",
                                p->name, p->last_error, "5m");
                else
                        log_warning("Profile %s: %s.", p->name, p->last_error);
        } else {
                set_last_error(p, "%s", error ? error : "no token");
                refresh_retry(p, retry_after);
                waiter_result = -EIO;
        }
        waiters_finish_refresh(p, waiter_result);
        profile_changed(p);
}

static void credential_start(Profile *p) {
        int r;

        if (p->credential)
                return;
        timer_disarm(p->refresh_timer);
        p->credential_callbacks = (CredentialCallbacks) { .on_done = on_credential_done, .userdata = p };
        r = credential_acquire(p->ctx, p->cfg, p->name, &p->credential_callbacks, &p->credential);
        if (r < 0) {
                p->refreshes[REFRESH_TRANSIENT]++;
                set_last_error(p, "cannot ask for a token: %s", strerror(-r));
                refresh_retry(p, 0);
                waiters_finish_refresh(p, -EIO);
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
                r = token_source_post_fresh(p->ctx, p->cfg, url, body, on_refresh_done, p, &p->hedge_req, request_id);
        }
        if (r < 0) {
                log_debug_errno(r, "Profile %s: cannot send a second refresh request: %m", p->name);
                return 0;
        }
        log_info("Profile %s: the refresh has no answer yet and the token has %s left; trying again on a new "
                 "connection (request id %s).",
                 p->name, format_duration(left, sizeof left, token_time_left(p, now_realtime())), request_id);
        return 0;
}

/* Near expiry, a second request goes out if the first one has not answered soon. */
static void hedge_arm(Profile *p) {
        usec_t timeout = p->ctx->http_timeout, now = now_realtime();

        /* A forced refresh (refresh, check) is one request whose outcome the person sees. */
        if (p->refresh_forced || !p->access_token || token_time_left(p, now) > 2 * timeout + HEDGE_WINDOW)
                return;
        if (timer_arm(p, &p->hedge_timer, CLOCK_MONOTONIC, now_monotonic() + MIN(timeout / 4, HEDGE_DELAY_MAX),
                      on_hedge_timer) < 0)
                log_debug("Profile %s: cannot arm the second-request timer.", p->name);
}

static void refresh_start(Profile *p) {
        _cleanup_secret_ Secret *body = NULL;
        _cleanup_free_ char *url = NULL;
        char request_id[37];
        int r;

        if (unattended(p)) {
                credential_start(p);
                return;
        }
        if (p->refresh_req)
                return;
        if (!p->refresh_token) {
                waiters_finish_refresh(p, -ENOKEY);
                return;
        }

        refresh_timers_disarm(p);
        url = aad_token_url(p->cfg);
        r = url ? aad_refresh_body(p->cfg, p->refresh_token, &body) : -ENOMEM;
        if (r < 0) {
                p->refreshes[REFRESH_TRANSIENT]++;
                set_last_error(p, "cannot build the refresh request: %s", strerror(-r));
                refresh_retry(p, 0);
                waiters_finish_refresh(p, -EIO);
                return;
        }

        p->refresh_sent = now_realtime();
        p->refresh_gen = p->rt_generation;
        r = token_source_post(p->ctx, p->cfg, url, body, on_refresh_done, p, &p->refresh_req, request_id);
        if (r < 0) {
                p->refreshes[REFRESH_TRANSIENT]++;
                set_last_error(p, "cannot start the refresh request: %s", strerror(-r));
                refresh_retry(p, 0);
                waiters_finish_refresh(p, -EIO);
                return;
        }
        log_debug("Profile %s: refreshing (request id %s).", p->name, request_id);
        hedge_arm(p);
        profile_changed(p);
}

static void refresh_start_forced(Profile *p) {
        p->refresh_forced = true;
        refresh_start(p);
        p->refresh_forced = false;
}

int profile_refresh(Profile *p, profile_done_fn done, void *userdata, ProfileWaiter **ret) {
        ProfileWaiter *w = profile_waiter_new(&p->waiters, WAITER_REFRESH, done, userdata);
        int r = 0;

        if (!w)
                return -ENOMEM;
        if (!p->refresh_token && !unattended(p))
                r = profile_waiter_defer_result(w, -ENOKEY);
        else {
                p->config_error = false; /* a forced refresh is a person's explicit retry */
                refresh_start_forced(p);
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
        if (token_valid_at(p, now_realtime()) && !outputs_all_ok(p->outputs))
                outputs_write(p);

        verdict = check_result(p, min_valid);
        w = profile_waiter_new(&p->waiters, WAITER_CHECK, done, userdata);
        if (!w)
                return -ENOMEM;
        w->min_valid = min_valid;

        if (verdict == -EIO) {
                /* Too short, or none: refresh first, then decide. */
                p->config_error = false;
                refresh_start_forced(p);
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
                token_accept(p, t, sent);
                log_notice("Profile %s: signed in as %s.", p->name, p->account ? p->account : "(unknown account)");
        } else if (error) {
                /* last_error says why, so that the person who ran `login` reads it in the answer. */
                set_last_error(p, "%s", error);
                log_warning("Profile %s: %s", p->name, p->last_error);
        }
        login_end(p, result);
}

int profile_login(Profile *p, int method, profile_device_fn device, profile_done_fn done, void *userdata,
                  ProfileWaiter **ret) {
        ProfileWaiter *w;
        int r;

        if (unattended(p))
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
                r = login_browser_start(p->ctx, p->cfg, p->name, p->cfg->redirect_port, p->claims,
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
        r = login_device_start(p->ctx, p->cfg, p->name, &p->login_callbacks, &p->login);
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
        if (unattended(p))
                return -EOPNOTSUPP;
        refresh_cancel(p);
        token_forget(p);
        p->needs_login = true;
        p->config_error = false;
        p->attempt = 0;
        set_last_error(p, NULL);
        state_remove(p);
        waiters_finish_refresh(p, -ENOKEY);
        log_notice("Profile %s: signed out; the refresh token is forgotten.", p->name);
        profile_changed(p);
        return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

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

static void state_load(Profile *p) {
        _cleanup_(stored_profile_clear) StoredProfile s = {};
        int r;

        r = store_load(p->ctx->state_dir, p->name, &s);
        if (r == -ENOENT) {
                p->needs_login = true;
                log_notice("Profile %s: not signed in yet; run aksspark-tokenctl --profile %s login", p->name, p->name);
                notify_person(p, "login_required", "Not signed in yet.");
                return;
        }
        if (r < 0) {
                p->needs_login = true;
                log_error_errno(r,
                                "Profile %s: the state file in %s cannot be used (%m); a new sign-in is needed: "
                                "aksspark-tokenctl --profile %s login",
                                p->name, p->ctx->state_dir, p->name);
                notify_person(p, "login_required", "The saved sign-in cannot be read; sign in again.");
                return;
        }
        if (!stored_matches(p, &s) || !s.refresh_token) {
                p->needs_login = true;
                log_warning("Profile %s: the saved sign-in belongs to another tenant, client, server, authority "
                            "or way of signing in; a new sign-in is needed: aksspark-tokenctl --profile %s login",
                            p->name, p->name);
                notify_person(p, "login_required", "The saved sign-in is for another tenant, client or server.");
                return;
        }
        if (!s.server_id) {
                /* Saved before the server was recorded: the refresh token is good for any
                 * audience, the saved access token perhaps for another one. Refresh at once. */
                log_info("Profile %s: the saved access token does not say which server it is for; refreshing.",
                         p->name);
                s.access_token = secret_free(s.access_token);
                s.obtained = s.expires_on = 0;
        }

        p->refresh_token = TAKE_PTR(s.refresh_token);
        p->access_token = TAKE_PTR(s.access_token);
        p->obtained = s.obtained;
        p->expires_on = s.expires_on;
        p->refresh_in = s.refresh_in;
        p->account = TAKE_PTR(s.account);
        if (p->access_token)
                claims_update(p);
}

int profile_start(Profile *p) {
        usec_t now = now_realtime();

        outputs_remove_stale_temps(p->outputs);
        if (unattended(p)) {
                /* Nothing is stored for these kinds: ask for the first token at once. */
                refresh_start(p);
                profile_changed(p);
                return 0;
        }
        state_load(p);
        /* A kubeconfig output holds no token: it can be there before the first sign-in. */
        if (!token_valid_at(p, now))
                (void) outputs_write_all(p->outputs, NULL, now);

        if (!p->refresh_token) {
                profile_changed(p);
                return 0;
        }
        if (token_valid_at(p, now) && p->obtained < p->expires_on) {
                outputs_write(p);
                refresh_arm_next(p);
                if (p->next_refresh <= now)
                        refresh_start(p);
                else
                        log_info("Profile %s: signed in as %s, token still valid; next refresh at the scheduled time.",
                                 p->name, p->account ? p->account : "(unknown account)");
        } else {
                log_info("Profile %s: the saved access token is missing or expired, refreshing now.", p->name);
                refresh_start(p);
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
        p->waiters = (ProfileWaiterList) { .profile = p, .event = ctx->event };
        p->name = strdup(cfg->name);
        if (!p->name)
                return -ENOMEM;
        r = outputs_new(cfg, &ctx->outputs_exec, &p->outputs);
        if (r < 0)
                return r;
        r = outputs_attach(p->outputs, ctx->event, on_outputs_written, p);
        if (r < 0)
                return r;
        r = worker_new(ctx->event, "store", store_job_run, on_store_job_done, store_job_free, p, &p->store_worker);
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
        if (outputs_attach(p->outputs, p->ctx->event, on_outputs_written, p) < 0)
                log_warning("Profile %s: no thread for the outputs; writing them from the event loop.", p->name);

        if ((p->login || p->browser) && foreign)
                login_end(p, -ECANCELED);
        else if (p->login)
                login_device_set_config(p->login, cfg);
        else if (p->browser)
                login_browser_set_config(p->browser, cfg);
        if (unattended(p)) {
                p->config_error = false;
                if (foreign || !p->access_token) {
                        p->credential = credential_free(p->credential);
                        refresh_cancel(p);
                        token_forget(p);
                        p->attempt = 0;
                        set_last_error(p, NULL);
                        refresh_start(p);
                } else {
                        outputs_write(p);
                        if (!p->credential)
                                refresh_arm_next(p);
                }
        } else if (foreign) {
                refresh_cancel(p);
                token_forget(p);
                log_notice("Profile %s: tenant, client or authority changed; the old sign-in is not used.", p->name);
                enter_login_required(p, "the profile now names another tenant, client or authority");
                waiters_finish_refresh(p, -ENOKEY);
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

        refresh_cancel(p);
        p->credential = credential_free(p->credential);
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

const Secret *profile_access_token(const Profile *p, usec_t now, usec_t *ret_expires_on) {
        if (!token_valid_at(p, now))
                return NULL;
        if (ret_expires_on)
                *ret_expires_on = p->expires_on;
        return p->access_token;
}

void profile_snapshot(Profile *p, ProfileSnapshot *ret) {
        OutputSnapshot *o = reallocarray(p->snap_outputs, MAX(p->outputs->n, (size_t) 1), sizeof *o);
        size_t n = 0;

        if (o) {
                p->snap_outputs = o;
                for (size_t i = 0; i < p->outputs->n; i++) {
                        const Output *out = &p->outputs->items[i];
                        o[n++] = (OutputSnapshot) {
                                .path = out->path,
                                .kind = output_kind_to_string(out->kind),
                                .attempted = out->attempted,
                                .ok = out->attempted && out->last_result >= 0,
                                .error = out->attempted && out->last_result < 0 ? out->last_message : NULL,
                                .last_attempt = out->last_attempt,
                                .last_success = out->last_success,
                        };
                }
        }

        *ret = (ProfileSnapshot) {
                .name = p->name,
                .state = profile_state(p),
                .expires_on = p->access_token ? p->expires_on : 0,
                .next_refresh = p->refresh_req ? 0 : p->next_refresh,
                .last_refresh = p->last_refresh,
                .last_error = p->last_error,
                .account = p->account,
                .tenant = p->tenant ? p->tenant : p->cfg->tenant,
                .device_message = login_device_code(p->login)     ? login_device_code(p->login)->message
                                  : login_browser_url(p->browser) ? login_browser_url(p->browser)->message
                                                                  : NULL,
                .outputs = o ? p->snap_outputs : NULL,
                .n_outputs = o ? n : 0,
                .store_attempted = p->store_attempted,
                .store_ok = p->store_result >= 0,
                .store_error = p->store_result < 0 ? strerror(-p->store_result) : NULL,
                .store_last_save = p->store_last_save,
        };
        memcpy(ret->refreshes, p->refreshes, sizeof ret->refreshes);
}

char *profile_status_line(Profile *p, usec_t now) {
        ProfileState s = profile_state(p);
        char left[32];
        char *line = NULL;

        if (token_valid_at(p, now) && s != PROFILE_EXPIRED)
                (void) asprintf(&line, "%s: %s, %s left", p->name, profile_state_to_string(s),
                                format_duration(left, sizeof left, p->expires_on - now));
        else
                (void) asprintf(&line, "%s: %s", p->name, profile_state_to_string(s));
        return line;
}
