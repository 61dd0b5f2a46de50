/* What a profile shows: its access token, its snapshot (status, metrics) and status line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile-private.h"

const Secret *profile_access_token(const Profile *p, usec_t now, usec_t *ret_expires_on) {
        if (!profile_token_valid_at(p, now))
                return NULL;
        if (ret_expires_on)
                *ret_expires_on = p->expires_on;
        return p->access_token;
}

void profile_snapshot(Profile *p, ProfileSnapshot *ret) {
        SignInStoreStatus store = sign_in_store_status(p->store);
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
                .next_refresh = p->refresh ? 0 : p->next_refresh,
                .last_refresh = p->last_refresh,
                .last_error = p->last_error,
                .account = p->account,
                .tenant = p->tenant ? p->tenant : p->cfg->tenant,
                .device_message = login_device_code(p->login)     ? login_device_code(p->login)->message
                                  : login_browser_url(p->browser) ? login_browser_url(p->browser)->message
                                                                  : NULL,
                .outputs = o ? p->snap_outputs : NULL,
                .n_outputs = o ? n : 0,
                .store_attempted = store.attempted,
                .store_ok = store.result >= 0,
                .store_error = store.result < 0 ? strerror(-store.result) : NULL,
                .store_last_save = store.last_save,
                .store_protection = p->ctx->state_key ? state_protection_to_string(p->ctx->state_key->protection)
                                                      : NULL,
                .store_key_missing = p->ctx->state_key && p->ctx->state_key->protection != STATE_PROTECTION_NONE &&
                                     !p->ctx->state_key->available,
        };
        memcpy(ret->refreshes, p->refreshes, sizeof ret->refreshes);
}

char *profile_status_line(Profile *p, usec_t now) {
        ProfileState s = profile_state(p);
        char left[32];
        char *line = NULL;

        if (profile_token_valid_at(p, now) && s != PROFILE_EXPIRED)
                (void) asprintf(&line, "%s: %s, %s left", p->name, profile_state_to_string(s),
                                format_duration(left, sizeof left, p->expires_on - now));
        else
                (void) asprintf(&line, "%s: %s", p->name, profile_state_to_string(s));
        return line;
}
