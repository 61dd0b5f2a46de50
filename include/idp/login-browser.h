/* The browser sign-in (authorization code with PKCE S256 and a loopback redirect): one token
 * source behind the seam in token-source.h. It listens on 127.0.0.1 for this one sign-in,
 * reports the URL for the person once, checks state when the browser comes back, answers it
 * with a small page, redeems the code once with the code_verifier, and reports the end once.
 * The listener is non-blocking on the loop and closes when the sign-in ends. */
#pragma once

#include "idp/aad.h"
#include "idp/token-source.h"
#include "shared/config.h"

#define LOGIN_BROWSER_TIMEOUT (10 * USEC_PER_MINUTE) /* the authorization code's own life */

typedef struct LoginBrowser LoginBrowser;

typedef struct LoginBrowserCallbacks {
        /* The URL to open is known (called once, inside login_browser_start's loop turn, before
         * the end): url->message says what to do, url->verification_uri is the URL. */
        void (*on_url)(const AadDeviceCode *url, void *userdata);
        /* As LoginDeviceCallbacks.on_done: 0 with the token, -EKEYREJECTED declined or failed,
         * -EKEYEXPIRED nobody came back in time, -EBADR the configuration was rejected, -EIO. */
        void (*on_done)(int result, AadToken *token, usec_t sent, const char *error, void *userdata);
        void *userdata;
} LoginBrowserCallbacks;

/* Listen on 127.0.0.1:port (0: any free port) and make the URL; claims (a Conditional Access
 * challenge) may be NULL. -EADDRINUSE when port is taken. */
int login_browser_start(const TokenSourceContext *ctx, const ProfileConfig *cfg, const char *name, unsigned port,
                        const char *claims, const LoginBrowserCallbacks *callbacks, LoginBrowser **ret);
LoginBrowser *login_browser_free(LoginBrowser *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(LoginBrowser *, login_browser_free);

/* The profile was reconfigured for the same identity: redeem with the new configuration. */
void login_browser_set_config(LoginBrowser *l, const ProfileConfig *cfg);

/* The URL (in the shape of a device code answer, user_code NULL) once known, else NULL. */
const AadDeviceCode *login_browser_url(const LoginBrowser *l);
