/* Keeping one profile's sign-in in the state directory: saves off the loop in the profile's
 * store worker, retried with backoff; loading it at start, refused for another identity. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "profile/profile-private.h"

#define STORE_RETRY_MIN (1 * USEC_PER_SEC)
#define STORE_RETRY_MAX (1 * USEC_PER_MINUTE)

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
        profile_answer_waiters(prof);
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

void profile_store_remove(Profile *p) {
        int r = store_submit(p, NULL);

        if (r < 0)
                log_warning_errno(r, "Profile %s: cannot remove the saved sign-in: %m", p->name);
}

static int on_store_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;

        if (p->refresh_token && !p->needs_login)
                (void) profile_store_save(p);
        return 0;
}

/* Sealed under the state key when there is one, with a fresh nonce; clear only when the
 * protection in force is none. A protection whose key is missing refuses: never a clear copy. */
static int profile_store_serialize(Profile *p, const StoredProfile *s, Secret **ret) {
        const StateKey *k = p->ctx->state_key;
        uint8_t nonce[SEAL_NONCE_SIZE];
        int r;

        if (!k || k->protection == STATE_PROTECTION_NONE)
                return store_serialize(s, ret);
        if (!k->available)
                return -ENOKEY;
        if (getrandom(nonce, sizeof nonce, 0) != (ssize_t) sizeof nonce)
                return -EIO;
        r = store_serialize_sealed(s, k->bytes, nonce, ret);
        explicit_bzero(nonce, sizeof nonce);
        return r;
}

/* Save the sign-in; a failure is kept for status and check, and retried with backoff: a
 * restart must never silently lose the sign-in. */
int profile_store_save(Profile *p) {
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

        r = profile_store_serialize(p, &s, &text);
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
                if (profile_timer_arm(p, &p->store_timer, CLOCK_BOOTTIME, now_boottime() + delay, on_store_timer) < 0)
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
        profile_timer_disarm(p->store_timer);
}

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

void profile_store_load(Profile *p) {
        _cleanup_(stored_profile_clear) StoredProfile s = {};
        int r;

        r = store_load_sealed(p->ctx->state_dir, p->name, state_key_bytes(p->ctx->state_key), &s);
        if (r == -ENOENT) {
                p->needs_login = true;
                log_notice("Profile %s: not signed in yet; run aksspark-tokenctl --profile %s login", p->name, p->name);
                profile_notify_person(p, "login_required", "Not signed in yet.");
                return;
        }
        if (r == -ENOKEY || r == -EKEYREJECTED) {
                p->needs_login = true;
                log_error("Profile %s: the saved sign-in in %s is sealed and %s; a new sign-in is needed: "
                          "aksspark-tokenctl --profile %s login",
                          p->name, p->ctx->state_dir,
                          r == -ENOKEY ? "its key (state_protection) is not at hand"
                                       : "does not open with the key at hand (another machine's or another "
                                         "profile's file, or a key made anew)",
                          p->name);
                profile_notify_person(p, "login_required",
                                      "The saved sign-in cannot be unsealed with this key; sign in again.");
                return;
        }
        if (r < 0) {
                p->needs_login = true;
                log_error_errno(r,
                                "Profile %s: the state file in %s cannot be used (%m); a new sign-in is needed: "
                                "aksspark-tokenctl --profile %s login",
                                p->name, p->ctx->state_dir, p->name);
                profile_notify_person(p, "login_required", "The saved sign-in cannot be read; sign in again.");
                return;
        }
        if (!stored_matches(p, &s) || !s.refresh_token) {
                p->needs_login = true;
                log_warning("Profile %s: the saved sign-in belongs to another tenant, client, server, authority "
                            "or way of signing in; a new sign-in is needed: aksspark-tokenctl --profile %s login",
                            p->name, p->name);
                profile_notify_person(p, "login_required",
                                      "The saved sign-in is for another tenant, client or server.");
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
                profile_claims_update(p);
        /* A clear file from before sealing: seal it now, not at the next refresh an hour away. */
        if (!s.sealed && state_key_bytes(p->ctx->state_key)) {
                log_info("Profile %s: sealing the saved sign-in (state_protection = %s).", p->name,
                         state_protection_to_string(p->ctx->state_key->protection));
                (void) profile_store_save(p);
        }
}

int profile_store_worker_new(Profile *p) {
        return worker_new(p->ctx->sources.event, "store", store_job_run, on_store_job_done, store_job_free, p,
                          &p->store_worker);
}
