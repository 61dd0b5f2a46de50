/* Request handling: each operation on the socket -> its answer, and the requests that wait on a
 * profile. Requests are parsed and answers built by protocol.c; what it needs of the daemon it
 * asks through the RequestContext (requests.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/secret.h"
#include "profile/profile.h"
#include "server/connection.h"
#include "server/requests.h"
#include "shared/protocol.h"
#include "version.h"

/* The profile list an unknown-profile answer shows is cut here. */
#define PROFILE_LIST_MAX 512

/* ---- answers that need a profile ----------------------------------------------------------- */

static void answer_status(Connection *c, Profile *p) {
        ProfileSnapshot snap;

        profile_snapshot(p, &snap);
        connection_answer(c, protocol_status_answer(&snap, now_realtime()), false);
}

static const char *snapshot_last_error(Profile *p) {
        ProfileSnapshot snap;

        profile_snapshot(p, &snap);
        return snap.last_error;
}

/* The error answer for a profile operation that ended with r < 0; login: it was a sign-in. */
static void answer_profile_error(Connection *c, Profile *p, int r, bool login) {
        const char *name = profile_name(p);
        const char *last_error = NULL;
        ErrorCode e = error_code_from_errno(r);

        /* Not for -ECANCELED: a profile being freed may no longer have its configuration. */
        if (r == -EKEYREJECTED || r == -EIO || r == -EBADR || r == -ENOKEY)
                last_error = snapshot_last_error(p);

        switch (r) {
        case -ENOKEY:
                if (profile_auth(p) == AUTH_AZURECLI) {
                        connection_answer_errorf(c, e,
                                                 "profile %s: the Azure CLI needs a person to sign in again "
                                                 "(%s): run 'az login'",
                                                 name, last_error ?: "az login needed");
                        return;
                }
                connection_answer_errorf(c, e, "profile %s needs a sign-in: run 'aksspark-tokenctl --profile %s login'",
                                         name, name);
                return;
        case -EKEYREJECTED:
                connection_answer_errorf(c, e, "profile %s: the sign-in was declined or failed%s%s; run login again",
                                         name, last_error ? ": " : "", last_error ?: "");
                return;
        case -EKEYEXPIRED:
                connection_answer_errorf(
                        c, e, "profile %s: the sign-in code expired before the sign-in finished; run login again",
                        name);
                return;
        case -EIO:
                if (login)
                        connection_answer_errorf(c, e, "profile %s: %s; try again", name,
                                                 last_error ?: "the sign-in failed, see the daemon's log");
                else
                        connection_answer_errorf(c, e, "profile %s: the refresh failed: %s; the daemon keeps retrying",
                                                 name, last_error ?: "see the daemon's log");
                return;
        case -EBADR:
                connection_answer_errorf(c, e, "profile %s: the identity provider rejected the configuration: %s", name,
                                         last_error ?: "see the daemon's log");
                return;
        case -EREMOTEIO: {
                ProfileSnapshot snap;
                const OutputSnapshot *bad = NULL;

                profile_snapshot(p, &snap);
                for (size_t i = 0; i < snap.n_outputs && !bad; i++)
                        if (snap.outputs[i].attempted && !snap.outputs[i].ok)
                                bad = &snap.outputs[i];
                if (bad)
                        connection_answer_errorf(c, e, "profile %s: cannot write %s: %s", name, bad->path,
                                                 bad->error ?: "failed");
                else if (snap.store_attempted && !snap.store_ok)
                        connection_answer_errorf(c, e,
                                                 "profile %s: cannot save the sign-in in the state directory: %s; "
                                                 "a restart now would need a new sign-in (the daemon keeps retrying)",
                                                 name, snap.store_error ?: "failed");
                else
                        connection_answer_errorf(c, e, "profile %s: an output has not been written yet", name);
                return;
        }
        case -ECANCELED:
                connection_answer_errorf(
                        c, e, "profile %s was removed from the configuration, or the daemon is stopping", name);
                return;
        default:
                connection_answer_errorf(c, e, "profile %s: %s", name, strerror(-r));
                return;
        }
}

/* ---- waiting requests --------------------------------------------------------------------- */

/* A refresh, check or login under way for one connection, which is held until it is answered. */
typedef struct PendingRequest {
        Connection *connection;
        RequestOp op;
        usec_t min_valid;
        ProfileWaiter *waiter;
        sd_event_source *wait_timer;
        bool starting; /* inside request_start_wait() */
        bool ended;    /* answered while starting */
} PendingRequest;

static PendingRequest *pending_free(PendingRequest *pr) {
        if (!pr)
                return NULL;
        sd_event_source_disable_unref(pr->wait_timer);
        free(pr);
        return NULL;
}

/* The connection went away first: what it waited for is cancelled. */
static void on_connection_gone(void *data) {
        PendingRequest *pr = data;

        profile_waiter_cancel(pr->waiter);
        pending_free(pr);
}

static void pending_end(PendingRequest *pr) {
        Connection *c = pr->connection;

        pr->waiter = NULL;
        pr->wait_timer = sd_event_source_disable_unref(pr->wait_timer);
        if (pr->starting) {
                pr->ended = true;
                return; /* request_start_wait() releases and frees */
        }
        pending_free(pr);
        connection_release(c);
}

/* A check that refreshed, and still has a token shorter than asked: say so, it is no failure
 * of the identity provider (AAD gives 60 to 90 minutes). */
static bool answer_too_short(Connection *c, Profile *p, usec_t min_valid) {
        usec_t now = now_realtime();
        ProfileSnapshot snap;
        char left[32], asked[32];

        profile_snapshot(p, &snap);
        if (snap.state != PROFILE_VALID || snap.expires_on <= now || snap.expires_on - now >= min_valid)
                return false;
        connection_answer_errorf(c, ERR_REFRESH_FAILED,
                                 "profile %s: the token is valid for %s, less than the %s asked for, even just after a "
                                 "refresh",
                                 snap.name, format_duration(left, sizeof left, snap.expires_on - now),
                                 format_duration(asked, sizeof asked, min_valid));
        return true;
}

static void on_profile_done(Profile *p, int result, void *userdata) {
        PendingRequest *pr = userdata;
        Connection *c = pr->connection;

        if (result == -EIO && pr->op == OP_CHECK && answer_too_short(c, p, pr->min_valid))
                ;
        else if (result < 0)
                answer_profile_error(c, p, result, pr->op == OP_LOGIN);
        else
                answer_status(c, p);
        pending_end(pr);
}

static void on_profile_device(Profile *p, const AadDeviceCode *code, void *userdata) {
        PendingRequest *pr = userdata;
        Connection *c = pr->connection;

        connection_answer(
                c,
                protocol_login_started_answer(code->message, code->verification_uri, code->user_code, code->expires_in),
                false);
        connection_update_events(c);
}

static int on_wait_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        PendingRequest *pr = userdata;

        profile_waiter_cancel(pr->waiter);
        pr->waiter = NULL;
        connection_answer_errorf(pr->connection, ERR_TIMEOUT,
                                 "no answer from the identity provider within %llus; the daemon keeps trying",
                                 (unsigned long long) (REQUEST_WAIT_TIMEOUT / USEC_PER_SEC));
        pending_end(pr);
        return 0;
}

static void request_start_wait(const RequestContext *rc, Connection *c, Profile *p, const Request *req) {
        ProfileWaiter *w = NULL;
        PendingRequest *pr;
        int r;

        pr = calloc(1, sizeof *pr);
        if (!pr) {
                connection_answer(c, NULL, false);
                return;
        }
        *pr = (PendingRequest) {
                .connection = c,
                .op = req->op,
                .min_valid = req->min_valid,
                .starting = true,
        };
        connection_hold(c, on_connection_gone, pr);
        switch (req->op) {
        case OP_REFRESH:
                r = profile_refresh(p, on_profile_done, pr, &w);
                break;
        case OP_CHECK:
                r = profile_check(p, req->min_valid, on_profile_done, pr, &w);
                break;
        case OP_LOGIN:
                r = profile_login(p, req->login_method, on_profile_device, on_profile_done, pr, &w);
                break;
        default:
                r = -EINVAL;
        }
        pr->starting = false;
        if (r < 0 || pr->ended) {
                /* Failed to start, or answered already, inside the call: nothing waits. */
                pending_free(pr);
                connection_release(c);
                if (r < 0)
                        answer_profile_error(c, p, r, false);
                return;
        }
        pr->waiter = w;

        if (req->op != OP_LOGIN) {
                /* A sign-in ends by itself when its code expires; a refresh may retry for an hour. */
                r = sd_event_add_time_relative(rc->event, &pr->wait_timer, CLOCK_MONOTONIC, REQUEST_WAIT_TIMEOUT,
                                               USEC_PER_SEC, on_wait_timeout, pr);
                if (r < 0)
                        log_warning_errno(r, "Failed to arm a request timeout, the request waits without one: %m");
        }
}

/* ---- requests ------------------------------------------------------------------------------ */

static void answer_unknown_profile(const RequestContext *rc, Connection *c, const char *name) {
        Profile *const *profiles;
        size_t n_profiles = rc->list_profiles(rc->userdata, &profiles);
        _cleanup_free_ char *list = NULL;
        StrBuf b = {};

        /* Names until the list passes 448 bytes, cut at 511: the answer stays one short line. */
        for (size_t i = 0; i < n_profiles && b.len < PROFILE_LIST_MAX - 64; i++)
                strbuf_appendf(&b, "%s%s", i ? ", " : "", profile_name(profiles[i]));
        strbuf_truncate(&b, PROFILE_LIST_MAX - 1);
        list = strbuf_take(&b);

        if (n_profiles == 0)
                connection_answer_error(c, ERR_UNKNOWN_PROFILE, "no profile is configured");
        else if (name)
                /* name passed profile_name_is_valid(): safe to show. */
                connection_answer_errorf(c, ERR_UNKNOWN_PROFILE, "there is no profile named %s (profiles: %s)", name,
                                         list ?: "");
        else
                connection_answer_errorf(
                        c, ERR_UNKNOWN_PROFILE,
                        "no profile is named 'default' and there are several: name one with --profile (profiles: %s)",
                        list ?: "");
}

static void answer_token(Connection *c, Profile *p) {
        usec_t expires_on = 0;
        const Secret *t = profile_access_token(p, now_realtime(), &expires_on);
        const char *name = profile_name(p);

        if (t) {
                connection_answer(c, protocol_token_answer(secret_reveal(t), expires_on), true);
                return;
        }
        switch (profile_state(p)) {
        case PROFILE_LOGIN_REQUIRED:
                answer_profile_error(c, p, -ENOKEY, false);
                break;
        case PROFILE_ERROR:
                answer_profile_error(c, p, -EBADR, false);
                break;
        default: {
                const char *last_error = snapshot_last_error(p);
                connection_answer_errorf(c, ERR_REFRESH_FAILED, "profile %s has no valid token right now%s%s", name,
                                         last_error ? ": " : "", last_error ?: "");
        }
        }
}

static void answer_metrics(const RequestContext *rc, Connection *c) {
        _cleanup_free_ char *text = NULL;

        if (rc->metrics(rc->userdata, &text) < 0)
                connection_answer(c, NULL, false);
        else
                connection_answer(c, protocol_metrics_answer(text), false);
}

static void answer_profiles(const RequestContext *rc, Connection *c) {
        Profile *const *profiles;
        size_t n_profiles = rc->list_profiles(rc->userdata, &profiles);
        _cleanup_free_ ProfileSnapshot *snaps = calloc(MAX(n_profiles, (size_t) 1), sizeof *snaps);

        if (!snaps) {
                connection_answer(c, NULL, false);
                return;
        }
        for (size_t i = 0; i < n_profiles; i++)
                profile_snapshot(profiles[i], &snaps[i]);
        connection_answer(c, protocol_profiles_answer(snaps, n_profiles), false);
}

/* A reload under way for one connection, which is held until the reload is applied. */
typedef struct PendingReload {
        const RequestContext *rc;
        Connection *connection;
        void *waiter;
} PendingReload;

static void on_reload_connection_gone(void *data) {
        PendingReload *pr = data;

        pr->rc->reload_cancel(pr->rc->userdata, pr->waiter);
        free(pr);
}

static void on_reload_done(int r, const ConfigErrors *errors, void *userdata) {
        PendingReload *pr = userdata;
        Connection *c = pr->connection;
        _cleanup_free_ char *message = NULL;
        StrBuf b = {};

        free(pr);
        if (r >= 0)
                connection_answer(c, protocol_ok_answer(), false);
        else {
                strbuf_append(&b, "the configuration was not reloaded: ");
                for (size_t i = 0; errors && i < errors->n; i++)
                        strbuf_appendf(&b, "%s%s", i ? "; " : "", errors->lines[i]);
                if (!errors || errors->n == 0)
                        strbuf_append(&b, strerror(-r));
                message = strbuf_take(&b);
                connection_answer_error(c, ERR_RELOAD_FAILED, message);
        }
        connection_release(c);
}

static void answer_reload(const RequestContext *rc, Connection *c) {
        PendingReload *pr;
        int r;

        pr = calloc(1, sizeof *pr);
        if (!pr) {
                connection_answer(c, NULL, false);
                return;
        }
        *pr = (PendingReload) { .rc = rc, .connection = c };
        connection_hold(c, on_reload_connection_gone, pr);
        /* done never runs inside this call: the file is read in a thread. */
        r = rc->reload(rc->userdata, on_reload_done, pr, &pr->waiter);
        if (r < 0)
                on_reload_done(r, NULL, pr);
}

void requests_handle_line(Connection *c, const char *line, size_t len, void *userdata) {
        const RequestContext *rc = userdata;
        _cleanup_(request_clear) Request req = {};
        const char *message = NULL;
        ErrorCode code = ERR_BAD_REQUEST;
        Profile *p;
        int r;

        r = protocol_parse_request(line, len, &req, &code, &message);
        if (r < 0) {
                log_debug("Connection %u: bad request (%s).", c->id, error_code_to_string(code));
                connection_answer_error(c, code, message);
                return;
        }
        log_debug("Connection %u: %s%s%s.", c->id, request_op_to_string(req.op), req.profile ? " " : "",
                  req.profile ?: "");

        switch (req.op) {
        case OP_PROFILES:
                answer_profiles(rc, c);
                return;
        case OP_RELOAD:
                answer_reload(rc, c);
                return;
        case OP_VERSION:
                connection_answer(c, protocol_version_answer(PACKAGE_VERSION), false);
                return;
        case OP_METRICS:
                /* Every profile: "profile" is ignored, as for profiles and version. */
                answer_metrics(rc, c);
                return;
        default:
                break;
        }

        p = rc->find_profile(rc->userdata, req.profile);
        if (!p) {
                answer_unknown_profile(rc, c, req.profile);
                return;
        }

        if ((req.op == OP_LOGIN || req.op == OP_LOGOUT) && auth_kind_is_unattended(profile_auth(p))) {
                _cleanup_free_ char *m = NULL;
                if (profile_auth(p) == AUTH_AZURECLI) {
                        connection_answer_errorf(c, ERR_BAD_REQUEST,
                                                 "profile %s uses auth = azurecli: the sign-in is the Azure CLI's; "
                                                 "run 'az login' (with the profile's AZURE_CONFIG_DIR), and the daemon "
                                                 "picks it up at the next refresh or check",
                                                 profile_name(p));
                        return;
                }
                if (asprintf(
                            &m,
                            "profile %s uses auth = %s: there is no person to sign in or out, its tokens come from the credential",
                            profile_name(p), auth_kind_to_string(profile_auth(p))) < 0)
                        m = NULL;
                connection_answer_error(c, ERR_BAD_REQUEST, m ?: "this profile has no person to sign in or out");
                return;
        }

        switch (req.op) {
        case OP_STATUS:
                answer_status(c, p);
                return;
        case OP_TOKEN:
                answer_token(c, p);
                return;
        case OP_LOGOUT:
                r = profile_logout(p);
                if (r < 0)
                        answer_profile_error(c, p, r, false);
                else
                        answer_status(c, p);
                return;
        case OP_REFRESH:
        case OP_CHECK:
        case OP_LOGIN:
                request_start_wait(rc, c, p, &req);
                return;
        default:
                connection_answer_error(c, ERR_INTERNAL, "unhandled op");
                return;
        }
}
