/* The device-code sign-in (a person types a code on another device): one token source behind
 * the seam described in token-source.h. It asks for a device code, reports the message for the
 * person once, polls at the pace the identity provider sets until the sign-in ends, and reports
 * the end once. It knows nothing of the profile that started it. */
#pragma once

#include "idp/aad.h"
#include "idp/token-source.h"
#include "shared/config.h"

typedef struct LoginDevice LoginDevice;

typedef struct LoginDeviceCallbacks {
        /* The message for the person is known (called once, before the end). */
        void (*on_code)(const AadDeviceCode *code, void *userdata);
        /* The sign-in ended; called once, as the last thing the sign-in does, so the callee may
         * free it. result 0: token is the new token (take what you keep) and sent the realtime
         * its request was sent. Else -EKEYREJECTED declined or failed, -EKEYEXPIRED the code
         * expired, -EBADR the identity provider rejected the configuration, -EIO or another
         * errno the sign-in could not go on; error, when not NULL, says why for the person
         * (it could not start). */
        void (*on_done)(int result, AadToken *token, usec_t sent, const char *error, void *userdata);
        void *userdata;
} LoginDeviceCallbacks;

/* Ask for a device code; the callbacks run from the loop, never inside this call. name is the
 * profile's, for log lines. ctx, cfg, name and callbacks must outlive the sign-in (see
 * login_device_set_config()). */
int login_device_start(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name,
                       const LoginDeviceCallbacks *callbacks, LoginDevice **ret);
/* Stops the sign-in; no callback runs. NULL-safe. */
LoginDevice *login_device_free(LoginDevice *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(LoginDevice *, login_device_free);

/* The profile was reconfigured for the same identity: poll with the new configuration. */
void login_device_set_config(LoginDevice *l, const ProfileConfig *cfg);

/* Send a Conditional Access claims challenge with the redemption (as MSAL does); NULL: none. */
int login_device_set_claims(LoginDevice *l, const char *claims);

/* The device code once the identity provider answered, else NULL. */
const AadDeviceCode *login_device_code(const LoginDevice *l);
