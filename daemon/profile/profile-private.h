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
#include "idp/refresh.h"
#include "idp/token-source.h"
#include "loop/http.h"
#include "loop/notify.h"
#include "loop/worker.h"
#include "outputs/outputs.h"
#include "profile/profile-store.h"
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
        SignInStore *store;                      /* the sign-in in the state directory (profile-store.c) */
        bool loading;                            /* the start's job in the store's worker is under way */
        bool refresh_wanted;                     /* ... and a refresh was asked for meanwhile */
        SignInStoreCallbacks store_callbacks;
        Secret *saved_refresh_token; /* the one on disk while a newer one could not be saved */
        bool answers_held;           /* waiters wait for the write in flight (hold_timer) */
        bool hold_expired;           /* ... and have waited OUTPUT_ANSWER_WAIT for it */
        sd_event_source *hold_timer;

        sd_event_source *refresh_timer;
        sd_event_source *refresh_timer_boot;
        sd_event_source *expiry_timer_boot;
        usec_t expires_boot; /* CLOCK_BOOTTIME of expires_on; 0 unknown (loaded token) */
        sd_event_source *expiry_timer;
        sd_event_source *output_timer;
        Refresh *refresh; /* the refresh under way (idp/refresh.c) */
        RefreshCallbacks refresh_callbacks;

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

/* profile-state.c: facts and tools; they call nothing else of the profile */
usec_t profile_now(const Profile *p, clockid_t clock); /* the context's clock */
const RefreshSource *profile_refresh_source(const Profile *p);
bool profile_token_valid_at(const Profile *p, usec_t t);
usec_t profile_token_time_left(const Profile *p, usec_t now);
bool profile_unattended(const Profile *p);
void profile_changed(Profile *p);
void profile_set_last_error(Profile *p, const char *format, ...) _printf_(2, 3);
void profile_notify_person(Profile *p, const char *state, const char *message);
int profile_timer_arm(Profile *p, sd_event_source **s, clockid_t clock, usec_t at, sd_event_time_handler_t handler);
void profile_timer_disarm(sd_event_source *s);
void profile_claims_update(Profile *p);

/* profile-answers.c: the waiters' answers */
void profile_answer_waiters(Profile *p);
void profile_finish_refresh(Profile *p, int result);
void profile_finish_login(Profile *p, int result);
void profile_send_device(Profile *p);
int profile_check_result(Profile *p, usec_t min_valid);
bool profile_waiters_held(Profile *p);

/* profile.c: the engine (timers, refreshes, tokens, sign-in) */
void profile_refresh_timers_disarm(Profile *p);
void profile_refresh_schedule_at(Profile *p, usec_t at);
void profile_token_accept(Profile *p, AadToken *t, usec_t sent);
void profile_enter_login_required(Profile *p, const char *why);
void profile_refresh_start(Profile *p);
void profile_refresh_start_forced(Profile *p);
void profile_refresh_cancel(Profile *p);
