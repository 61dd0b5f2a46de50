/* The small facts and tools every part of a profile uses: is the token valid and for how long,
 * the state `status` shows, the last error, the account from the token, the timers, and telling
 * the owner and the person. They call nothing else of the profile. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "profile/profile-private.h"

#define TIMER_ACCURACY (50 * USEC_PER_MSEC)

usec_t profile_now(const Profile *p, clockid_t clock) {
        if (p->ctx->now)
                return p->ctx->now(clock);
        return clock == CLOCK_REALTIME ? now_realtime() : clock == CLOCK_BOOTTIME ? now_boottime() : now_monotonic();
}

const RefreshSource *profile_refresh_source(const Profile *p) {
        return p->ctx->refresh_source ?: &refresh_source_aad;
}

const char *profile_name(const Profile *p) {
        return p->name;
}

bool profile_token_valid_at(const Profile *p, usec_t t) {
        return p->access_token && t < p->expires_on &&
               (p->expires_boot == 0 || profile_now(p, CLOCK_BOOTTIME) < p->expires_boot);
}

/* Time the token has left, by the stricter of the two clocks. */
usec_t profile_token_time_left(const Profile *p, usec_t now) {
        return schedule_time_left(p->expires_on, p->expires_boot, now, profile_now(p, CLOCK_BOOTTIME));
}

/* No person, no refresh token: the credential is presented for every token. */
bool profile_unattended(const Profile *p) {
        return auth_kind_is_unattended(p->cfg->auth);
}

AuthKind profile_auth(const Profile *p) {
        return p->cfg->auth;
}

ProfileState profile_state(const Profile *p) {
        if (p->refresh || p->credential || p->azurecli)
                return PROFILE_REFRESHING;
        if (p->config_error)
                return PROFILE_ERROR;
        if (p->needs_login || (!profile_unattended(p) && !p->refresh_token))
                return PROFILE_LOGIN_REQUIRED;
        if (profile_token_valid_at(p, profile_now(p, CLOCK_REALTIME)))
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
