/* struct Profile and the helpers its modules share. Only profile*.c include this file: every
 * other module sees a Profile through profile.h alone. */
#pragma once

#include <stdbool.h>

#include "base/jwt.h"
#include "base/log.h"
#include "idp/aad.h"
#include "idp/azurecli.h"
#include "idp/credential.h"
#include "idp/login-browser.h"
#include "idp/login-device.h"
#include "idp/token-source.h"
#include "loop/http.h"
#include "loop/notify.h"
#include "loop/worker.h"
#include "outputs/outputs.h"
#include "profile/profile-waiters.h"
#include "profile/profile.h"
#include "profile/schedule.h"
#include "profile/store.h"

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
        AzureCli *azurecli; /* auth = azurecli: az asked for a token */
        AzureCliCallbacks azurecli_callbacks;

        LoginDevice *login; /* a sign-in under way: device code, */
        LoginDeviceCallbacks login_callbacks;
        LoginBrowser *browser; /* or browser */
        LoginBrowserCallbacks browser_callbacks;

        bool expiry_notified; /* for the current token */
        ProfileWaiterList waiters;
        OutputSnapshot *snap_outputs;
};

/* profile.c: state, waiters, timers, tokens */
bool profile_token_valid_at(const Profile *p, usec_t t);
usec_t profile_token_time_left(const Profile *p, usec_t now);
bool profile_unattended(const Profile *p);
void profile_changed(Profile *p);
void profile_set_last_error(Profile *p, const char *format, ...) _printf_(2, 3);
void profile_notify_person(Profile *p, const char *state, const char *message);
void profile_answer_waiters(Profile *p);
void profile_finish_refresh(Profile *p, int result);
int profile_timer_arm(Profile *p, sd_event_source **s, clockid_t clock, usec_t at, sd_event_time_handler_t handler);
void profile_timer_disarm(sd_event_source *s);
void profile_refresh_timers_disarm(Profile *p);
void profile_refresh_schedule_at(Profile *p, usec_t at);
void profile_token_accept(Profile *p, AadToken *t, usec_t sent);
void profile_enter_login_required(Profile *p, const char *why);
void profile_claims_update(Profile *p);

/* profile-store.c: the sign-in in the state directory */
int profile_store_worker_new(Profile *p);
int profile_store_save(Profile *p);
void profile_store_remove(Profile *p);
void profile_store_load(Profile *p);

/* profile-refresh.c: one refresh attempt */
void profile_refresh_start(Profile *p);
void profile_refresh_start_forced(Profile *p);
void profile_refresh_cancel(Profile *p);
