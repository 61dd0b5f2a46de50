/* The device-code sign-in: ask for a code, show the message once, poll until the person has
 * signed in, declined, or the code expired. A token source (token-source.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "idp/login-device.h"
#include "idp/token-source.h"

#define TIMER_ACCURACY (50 * USEC_PER_MSEC)

struct LoginDevice {
        const TokenSourceContext *ctx;
        const ProfileConfig *cfg;
        const char *name;
        const LoginDeviceCallbacks *cb;

        HttpRequest *req;
        AadDeviceCode device;
        bool device_known;
        usec_t deadline;
        usec_t poll_interval;
        usec_t poll_sent;
        sd_event_source *poll_timer;
        char *claims; /* a Conditional Access challenge to answer, or NULL */
};

static void login_poll(LoginDevice *l);

/* The last thing any path does: the callee may free l. */
static void login_done(LoginDevice *l, int result, AadToken *t, const char *error) {
        l->cb->on_done(result, t, l->poll_sent, error, l->cb->userdata);
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        login_poll(userdata);
        return 0;
}

static void login_poll_later(LoginDevice *l) {
        usec_t at = now_boottime() + l->poll_interval;
        int r;

        if (l->poll_timer) {
                r = sd_event_source_set_time(l->poll_timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(l->poll_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(l->ctx->event, &l->poll_timer, CLOCK_BOOTTIME, at, TIMER_ACCURACY, on_poll_timer,
                                      l);
        if (r < 0) {
                log_error_errno(r, "Profile %s: failed to arm the sign-in poll timer: %m", l->name);
                login_done(l, -EIO, NULL, NULL);
        }
}

static void on_poll_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata) {
        LoginDevice *l = userdata;
        _cleanup_(aad_token_clear) AadToken t = {};
        _cleanup_(aad_error_clear) AadError e = {};
        char buf[512];
        AadOutcome o;

        l->req = NULL;
        if (result < 0) {
                log_warning("Profile %s: polling the sign-in failed (%s), trying again.", l->name,
                            resp && resp->error ? resp->error : strerror(-result));
                login_poll_later(l);
                return;
        }

        o = aad_parse_token_answer(resp->status, resp->body, resp->body_len, &t, &e);
        switch (o) {
        case AAD_OK:
                login_done(l, 0, &t, NULL);
                return;
        case AAD_PENDING:
                login_poll_later(l);
                return;
        case AAD_SLOW_DOWN:
                l->poll_interval += AAD_SLOW_DOWN_STEP_SEC * USEC_PER_SEC;
                log_debug("Profile %s: the identity provider asked to poll slower (every %llus).", l->name,
                          (unsigned long long) (l->poll_interval / USEC_PER_SEC));
                login_poll_later(l);
                return;
        case AAD_DECLINED:
                log_warning("Profile %s: the sign-in was declined.", l->name);
                login_done(l, -EKEYREJECTED, NULL, NULL);
                return;
        case AAD_CODE_EXPIRED:
                log_warning("Profile %s: the sign-in code expired before it was used: %s", l->name,
                            token_source_error_words(&e, buf, sizeof buf));
                login_done(l, -EKEYEXPIRED, NULL, NULL);
                return;
        case AAD_NEEDS_LOGIN:
                log_warning("Profile %s: the sign-in failed: %s", l->name,
                            token_source_error_words(&e, buf, sizeof buf));
                login_done(l, -EKEYREJECTED, NULL, NULL);
                return;
        case AAD_CONFIG_ERROR:
                log_error("Profile %s: the identity provider rejected the configuration: %s", l->name,
                          token_source_error_words(&e, buf, sizeof buf));
                login_done(l, -EBADR, NULL, NULL);
                return;
        case AAD_TRANSIENT:
        default:
                log_warning("Profile %s: polling the sign-in got HTTP %ld (%s), trying again.", l->name, resp->status,
                            token_source_error_words(&e, buf, sizeof buf));
                login_poll_later(l);
                return;
        }
}

static void login_poll(LoginDevice *l) {
        _cleanup_secret_ Secret *body = NULL;
        _cleanup_free_ char *url = NULL;
        char request_id[37];
        int r;

        if (now_realtime() >= l->deadline) {
                log_warning("Profile %s: the sign-in code expired before the sign-in finished.", l->name);
                login_done(l, -EKEYEXPIRED, NULL, NULL);
                return;
        }

        url = aad_token_url(l->cfg);
        r = url ? aad_device_token_body_claims(l->cfg, l->device.device_code, l->claims, &body) : -ENOMEM;
        if (r < 0) {
                login_done(l, r, NULL, NULL);
                return;
        }
        l->poll_sent = now_realtime();
        r = token_source_post(l->ctx, l->cfg, url, body, on_poll_done, l, &l->req, request_id);
        if (r < 0) {
                log_warning_errno(r, "Profile %s: cannot poll the sign-in: %m", l->name);
                login_poll_later(l);
        }
}

static void on_devicecode_done(HttpRequest *req, int result, const HttpResponse *resp, void *userdata) {
        LoginDevice *l = userdata;
        _cleanup_(aad_error_clear) AadError e = {};
        _cleanup_free_ char *error = NULL;
        char buf[512];
        AadOutcome o;

        l->req = NULL;
        /* The error says why, so that the person who ran `login` reads it in the answer. */
        if (result < 0) {
                if (asprintf(&error, "cannot start the sign-in: cannot reach %s: %s", l->cfg->authority_host,
                             resp && resp->error ? resp->error : strerror(-result)) < 0)
                        error = NULL;
                login_done(l, -EIO, NULL, error);
                return;
        }

        o = aad_parse_device_code_answer(resp->status, resp->body, resp->body_len, &l->device, &e);
        if (o != AAD_OK) {
                if (asprintf(&error, "cannot start the sign-in: HTTP %ld: %s", resp->status,
                             token_source_error_words(&e, buf, sizeof buf)) < 0)
                        error = NULL;
                login_done(l, o == AAD_CONFIG_ERROR ? -EBADR : -EIO, NULL, error);
                return;
        }

        l->device_known = true;
        l->deadline = l->poll_sent + l->device.expires_in;
        l->poll_interval = l->device.interval > 0 ? l->device.interval : AAD_DEFAULT_INTERVAL_SEC * USEC_PER_SEC;
        /* The message carries the URL and the user code a person types; never the device code. */
        log_notice("Profile %s: %s", l->name, l->device.message);
        l->cb->on_code(&l->device, l->cb->userdata);
        login_poll_later(l);
}

int login_device_start(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                       const LoginDeviceCallbacks *callbacks, LoginDevice **ret) {
        _cleanup_(login_device_freep) LoginDevice *l = NULL;
        _cleanup_secret_ Secret *body = NULL;
        _cleanup_free_ char *url = NULL, *form = NULL;
        char request_id[37];
        int r;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (LoginDevice) {
                .ctx = ctx,
                .cfg = cfg,
                .name = name,
                .cb = callbacks,
        };

        url = aad_devicecode_url(cfg);
        r = url ? aad_devicecode_body(cfg, &form) : -ENOMEM;
        if (r >= 0) {
                body = secret_new_string(form);
                if (!body)
                        r = -ENOMEM;
        }
        if (r < 0)
                return r;
        l->poll_sent = now_realtime();
        r = token_source_post(ctx, cfg, url, body, on_devicecode_done, l, &l->req, request_id);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

LoginDevice *login_device_free(LoginDevice *l) {
        if (!l)
                return NULL;
        http_request_cancel(l->req);
        sd_event_source_disable_unref(l->poll_timer);
        aad_device_code_clear(&l->device);
        free(l->claims);
        free(l);
        return NULL;
}

void login_device_set_config(LoginDevice *l, const ProfileConfig *cfg) {
        l->cfg = cfg;
}

int login_device_set_claims(LoginDevice *l, const char *claims) {
        char *c = NULL;

        if (claims) {
                c = strdup(claims);
                if (!c)
                        return -ENOMEM;
        }
        free(l->claims);
        l->claims = c;
        return 0;
}

const AadDeviceCode *login_device_code(const LoginDevice *l) {
        return l && l->device_known ? &l->device : NULL;
}
