/* One profile's life: sign-in, refresh before expiry, backoff, outputs, and the requests that
 * wait on it. Driven by the event loop; every waiter is answered exactly once or cancelled. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "base/secret.h"
#include "idp/aad.h"
#include "idp/refresh.h"
#include "idp/token-source.h"
#include "loop/http.h"
#include "outputs/outputs.h"
#include "profile/state-key.h"
#include "shared/config.h"
#include "shared/protocol.h"

typedef struct Profile Profile;
typedef struct ProfileWaiter ProfileWaiter;

/* What a profile needs from the daemon around it, and nothing more (systemd's CurlGlue pattern):
 * the loop, the HTTP client, the daemon-wide settings it reads, and one callback to report that
 * its state changed. The owner keeps the context alive for as long as any profile using it, and
 * may update the settings (on reload) between two events; a profile reads them each time it needs
 * them and never learns who its owner is. */
typedef struct ProfileContext {
        TokenSourceContext sources; /* the loop, the HTTP client and its timeout */
        usec_t refresh_floor;       /* scheduled refreshes at least this far apart */
        const char *state_dir;
        const StateKey *state_key;  /* seals the state file; NULL: kept in clear */
        const char *notify_command; /* NULL: none */
        OutputsExec outputs_exec;   /* what kubeconfig outputs run (manager_start()) */
        /* How a signed-in profile refreshes; NULL: refresh_source_aad (a test's stand-in else). */
        const RefreshSource *refresh_source;
        /* The time on CLOCK_REALTIME, CLOCK_BOOTTIME or CLOCK_MONOTONIC; NULL: the system's
         * (a test's stand-in clock else). Timers still run on the system's clocks. */
        usec_t (*now)(clockid_t clock);
        /* The profile's state (or what `status` shows of it) changed. May be NULL. */
        void (*on_changed)(Profile *p, void *userdata);
        void *userdata;
} ProfileContext;

/* result: 0 success, else the error the answer should carry:
 *   -ENOKEY login_required, -EKEYEXPIRED login expired, -EKEYREJECTED declined,
 *   -EIO refresh failed (transient, see last_error), -EBADR configuration error,
 *   -ECANCELED the profile went away (reload, shutdown). */
typedef void (*profile_done_fn)(Profile *p, int result, void *userdata);
/* The device message is ready: show it to the person. */
typedef void (*profile_device_fn)(Profile *p, const AadDeviceCode *code, void *userdata);

int profile_new(const ProfileContext *ctx, const ProfileConfig *cfg, Profile **ret);
Profile *profile_free(Profile *p); /* answers its waiters with -ECANCELED */
DEFINE_TRIVIAL_CLEANUP_FUNC(Profile *, profile_free);

/* Load the state store, write outputs if needed, arm the refresh timer. Never blocks. */
int profile_start(Profile *p);

/* Take over a new configuration for the same name (reload) without losing the sign-in, unless
 * the tenant, client or authority changed. Takes outputs (built from cfg by the caller, so that
 * everything that can fail happens before the switch). */
void profile_reconfigure(Profile *p, const ProfileConfig *cfg, Outputs *outputs);

const char *profile_name(const Profile *p);
AuthKind profile_auth(const Profile *p);
ProfileState profile_state(const Profile *p);

/* Refresh now (sharing one in flight), then call done. */
int profile_refresh(Profile *p, profile_done_fn done, void *userdata, ProfileWaiter **ret);

/* Answer at once if the token is valid for min_valid and every output is written, else
 * refresh first. done gets 0, -ENOKEY, -EIO or -EREMOTEIO (an output could not be written). */
int profile_check(Profile *p, usec_t min_valid, profile_done_fn done, void *userdata, ProfileWaiter **ret);

/* Start (or join) the sign-in: device() once the message (device code, or the browser's URL) is
 * known, done() at the end. method: AUTH_BROWSER or AUTH_DEVICE_CODE for this one sign-in, -1 for
 * the profile's own auth.
 * -EOPNOTSUPP for the unattended kinds (as profile_logout()): there is no person. */
int profile_login(Profile *p, int method, profile_device_fn device, profile_done_fn done, void *userdata,
                  ProfileWaiter **ret);

/* Forget the refresh token (and the state file); state becomes login_required. */
int profile_logout(Profile *p);

/* The waiter's callbacks will not run. NULL-safe. */
void profile_waiter_cancel(ProfileWaiter *w);

/* The current access token (NULL when none or expired) and its expiry. */
const Secret *profile_access_token(const Profile *p, usec_t now, usec_t *ret_expires_on);

/* A view for `status`; valid until the profile next changes. */
void profile_snapshot(Profile *p, ProfileSnapshot *ret);

/* "name: state (41m left)" for STATUS= */
char *profile_status_line(Profile *p, usec_t now);
