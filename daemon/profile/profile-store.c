/* The sign-in store: saves and removals of one profile's state file run in the store's worker
 * thread (a state directory on a hung file system holds that thread, never the loop), a failed
 * save is retried with backoff, and each finished job is reported through one callback. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/atomic.h"
#include "base/log.h"
#include "base/macro.h"
#include "loop/worker.h"
#include "profile/profile-store.h"
#include "profile/state-key.h"

#define TIMER_ACCURACY (50 * USEC_PER_MSEC)
#define STORE_RETRY_MIN (1 * USEC_PER_SEC)
#define STORE_RETRY_MAX (1 * USEC_PER_MINUTE)

struct SignInStore {
        sd_event *event;
        char *state_dir;
        char *name;
        usec_t (*now)(clockid_t clock);
        const SignInStoreCallbacks *cb;
        const StateKey *key; /* seals what is saved; NULL or protection none: kept in clear */

        Worker *worker;
        sd_event_source *retry_timer; /* retries a failed save */
        Secret *retry_text;           /* what that retry saves */
        bool removed;                 /* removed since the last save: a save's result no longer counts */
        bool loading;                 /* the load at start is under way: jobs wait for it */
        bool deferred;                /* a save (deferred_text) or removal (NULL) waits for the load */
        Secret *deferred_text;
        SignInStoreStatus status;
        unsigned attempt; /* failed saves in a row */
};

/* One save, removal or load of the state file, run by the store's worker thread: a state
 * directory on a hung file system holds that thread, never the loop. */
typedef struct StoreJob {
        SignInStoreJob kind;
        char *state_dir;
        char *name;
        Secret *text;      /* save */
        bool read_sign_in; /* load */
        char **sweep;
        size_t n_sweep;
        int *swept;   /* per sweep path: temp files removed, or -errno */
        bool has_key; /* load: the key to unseal with */
        uint8_t key[SEAL_KEY_SIZE];
        StoredProfile loaded;
        int result;
} StoreJob;

static usec_t store_now(const SignInStore *s, clockid_t clock) {
        if (s->now)
                return s->now(clock);
        return clock == CLOCK_REALTIME ? now_realtime() : now_boottime();
}

static void store_job_free(void *p) {
        StoreJob *j = p;

        if (!j)
                return;
        free(j->state_dir);
        free(j->name);
        secret_free(j->text);
        for (size_t i = 0; i < j->n_sweep; i++)
                free(j->sweep[i]);
        free(j->sweep);
        free(j->swept);
        stored_profile_clear(&j->loaded);
        explicit_bzero(j->key, sizeof j->key);
        free(j);
}

static void store_job_freep(StoreJob **j) {
        store_job_free(*j);
}

static void store_job_run(void *p) {
        StoreJob *j = p;

        switch (j->kind) {
        case SIGN_IN_STORE_SAVE:
                j->result = store_save_text(j->state_dir, j->name, j->text);
                break;
        case SIGN_IN_STORE_REMOVE:
                j->result = store_remove(j->state_dir, j->name);
                break;
        case SIGN_IN_STORE_LOAD:
                for (size_t i = 0; i < j->n_sweep; i++)
                        j->swept[i] = atomic_remove_stale_temps(j->sweep[i]);
                j->result = j->read_sign_in
                                    ? store_load_sealed(j->state_dir, j->name, j->has_key ? j->key : NULL, &j->loaded)
                                    : -ENODATA;
                break;
        }
}

static int job_submit(SignInStore *s, Secret *text);

static int save_submit(SignInStore *s, Secret *text);

static int on_retry_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        SignInStore *s = userdata;
        Secret *text;

        if (s->removed || !s->retry_text)
                return 0;
        text = secret_dup(s->retry_text);
        (void) save_submit(s, text);
        return 0;
}

static void retry_arm(SignInStore *s) {
        usec_t at = store_now(s, CLOCK_BOOTTIME) + MIN(STORE_RETRY_MIN << MIN(s->attempt - 1, 10u), STORE_RETRY_MAX);
        int r;

        if (s->retry_timer) {
                r = sd_event_source_set_time(s->retry_timer, at);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->retry_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(s->event, &s->retry_timer, CLOCK_BOOTTIME, at, TIMER_ACCURACY, on_retry_timer, s);
        if (r < 0)
                log_warning("Profile %s: failed to arm the state save retry timer.", s->name);
}

/* A save finished (or could not start): keep its result for status and check; retry failures.
 * Returns whether the results changed. */
static bool save_result(SignInStore *s, int r) {
        bool changed;

        if (s->removed)
                return false; /* signed out meanwhile: the file is being removed */
        s->status.attempted = true;
        s->status.last_save = store_now(s, CLOCK_REALTIME);
        if (r < 0) {
                errno = -r;
                if (s->attempt == 0)
                        log_error_errno(r,
                                        "Profile %s: failed to save the sign-in to the state directory %s, "
                                        "a restart now would need a new sign-in; retrying: %m",
                                        s->name, s->state_dir);
                else
                        log_warning_errno(r, "Profile %s: saving the sign-in failed again: %m", s->name);
                s->status.result = r;
                s->attempt++;
                retry_arm(s);
                return true;
        }
        changed = s->status.result < 0;
        if (changed)
                log_info("Profile %s: the sign-in is saved again.", s->name);
        s->status.result = 0;
        s->attempt = 0;
        s->retry_text = secret_free(s->retry_text);
        if (s->retry_timer)
                (void) sd_event_source_set_enabled(s->retry_timer, SD_EVENT_OFF);
        return changed;
}

static void on_load_done(SignInStore *s, StoreJob *j) {
        SignInStoreResult result = { .job = SIGN_IN_STORE_LOAD, .result = j->result, .loaded = &j->loaded };

        for (size_t i = 0; i < j->n_sweep; i++)
                if (j->swept[i] < 0)
                        log_debug_errno(j->swept[i], "Failed to look for stale temp files next to %s: %m", j->sweep[i]);
                else if (j->swept[i] > 0)
                        log_info("Removed %d temp file(s) an interrupted write left next to %s.", j->swept[i],
                                 j->sweep[i]);
        s->loading = false;
        if (s->deferred) {
                s->deferred = false;
                (void) job_submit(s, TAKE_PTR(s->deferred_text));
        }
        s->cb->on_done(&result, s->cb->userdata);
}

static void on_store_job_done(Worker *w, void *p, void *userdata) {
        _cleanup_(store_job_freep) StoreJob *j = p;
        SignInStore *s = userdata;
        SignInStoreResult result = { .job = j->kind, .result = j->result };

        if (j->kind == SIGN_IN_STORE_LOAD) {
                on_load_done(s, j);
                return;
        }
        if (j->kind == SIGN_IN_STORE_SAVE)
                result.changed = save_result(s, j->result);
        else if (j->result < 0)
                log_warning_errno(j->result, "Profile %s: failed to remove the saved sign-in: %m", s->name);
        s->cb->on_done(&result, s->cb->userdata);
}

/* Queue a save (text) or removal (NULL); a newer one replaces one still waiting (the newest
 * state wins), and one asked for during the load waits for it. Takes text. */
static int job_submit(SignInStore *s, Secret *text) {
        StoreJob *j;

        if (s->loading) {
                secret_free(s->deferred_text);
                s->deferred_text = text;
                s->deferred = true;
                return 0;
        }
        j = calloc(1, sizeof *j);
        if (!j) {
                secret_free(text);
                return -ENOMEM;
        }
        j->kind = text ? SIGN_IN_STORE_SAVE : SIGN_IN_STORE_REMOVE;
        j->text = text;
        j->state_dir = strdup(s->state_dir);
        j->name = strdup(s->name);
        if (!j->state_dir || !j->name) {
                store_job_free(j);
                return -ENOMEM;
        }
        return worker_submit(s->worker, j);
}

static int save_submit(SignInStore *s, Secret *text) {
        int r;

        if (!text)
                r = -ENOMEM;
        else {
                /* kept for a retry until a save succeeds */
                secret_free(s->retry_text);
                s->retry_text = secret_dup(text);
                r = s->retry_text ? job_submit(s, text) : (secret_free(text), -ENOMEM);
        }
        if (r < 0 && save_result(s, r))
                s->cb->on_done(&(SignInStoreResult) { .job = SIGN_IN_STORE_SAVE, .result = r, .changed = true },
                               s->cb->userdata);
        return r;
}

/* Sealed under the state key when there is one, with a fresh nonce; clear only when the
 * protection in force is none. A protection whose key is missing refuses: never a clear copy. */
static int serialize(const SignInStore *s, const StoredProfile *stored, Secret **ret) {
        uint8_t nonce[SEAL_NONCE_SIZE];
        int r;

        if (!s->key || s->key->protection == STATE_PROTECTION_NONE)
                return store_serialize(stored, ret);
        if (!s->key->available)
                return -ENOKEY;
        if (getrandom(nonce, sizeof nonce, 0) != (ssize_t) sizeof nonce)
                return -EIO;
        r = store_serialize_sealed(stored, s->key->bytes, nonce, ret);
        explicit_bzero(nonce, sizeof nonce);
        return r;
}

int sign_in_store_save(SignInStore *s, const StoredProfile *stored) {
        Secret *text = NULL;
        int r;

        s->removed = false;
        r = serialize(s, stored, &text);
        if (r < 0) {
                if (save_result(s, r))
                        s->cb->on_done(&(SignInStoreResult) { .job = SIGN_IN_STORE_SAVE, .result = r, .changed = true },
                                       s->cb->userdata);
                return r;
        }
        return save_submit(s, text);
}

void sign_in_store_remove(SignInStore *s) {
        int r;

        s->removed = true;
        s->retry_text = secret_free(s->retry_text);
        if (s->retry_timer)
                (void) sd_event_source_set_enabled(s->retry_timer, SD_EVENT_OFF);
        r = job_submit(s, NULL);
        if (r < 0)
                log_warning_errno(r, "Profile %s: cannot remove the saved sign-in: %m", s->name);
}

int sign_in_store_load(SignInStore *s, bool read_sign_in, char *const *sweep, size_t n_sweep) {
        StoreJob *j = calloc(1, sizeof *j);
        int r;

        if (!j)
                return -ENOMEM;
        *j = (StoreJob) { .kind = SIGN_IN_STORE_LOAD, .read_sign_in = read_sign_in };
        if (state_key_bytes(s->key)) {
                memcpy(j->key, state_key_bytes(s->key), sizeof j->key);
                j->has_key = true;
        }
        j->state_dir = strdup(s->state_dir);
        j->name = strdup(s->name);
        j->sweep = calloc(MAX(n_sweep, (size_t) 1), sizeof *j->sweep);
        j->swept = calloc(MAX(n_sweep, (size_t) 1), sizeof *j->swept);
        if (!j->state_dir || !j->name || !j->sweep || !j->swept) {
                store_job_free(j);
                return -ENOMEM;
        }
        for (; j->n_sweep < n_sweep; j->n_sweep++) {
                j->sweep[j->n_sweep] = strdup(sweep[j->n_sweep]);
                if (!j->sweep[j->n_sweep]) {
                        store_job_free(j);
                        return -ENOMEM;
                }
        }
        r = worker_submit(s->worker, j);
        if (r >= 0)
                s->loading = true;
        return r;
}

bool sign_in_store_busy(const SignInStore *s) {
        return s && worker_busy(s->worker);
}

SignInStoreStatus sign_in_store_status(const SignInStore *s) {
        return s->status;
}

int sign_in_store_new(sd_event *event, const char *state_dir, const char *name, const StateKey *key,
                      usec_t (*now)(clockid_t clock), const SignInStoreCallbacks *callbacks, SignInStore **ret) {
        SignInStore *s = calloc(1, sizeof *s);
        int r;

        if (!s)
                return -ENOMEM;
        *s = (SignInStore) { .event = event, .key = key, .now = now, .cb = callbacks };
        s->state_dir = strdup(state_dir);
        s->name = strdup(name);
        if (!s->state_dir || !s->name) {
                sign_in_store_free(s);
                return -ENOMEM;
        }
        r = worker_new(event, "store", store_job_run, on_store_job_done, store_job_free, s, &s->worker);
        if (r < 0) {
                sign_in_store_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

SignInStore *sign_in_store_free(SignInStore *s) {
        if (!s)
                return NULL;
        worker_free(s->worker); /* a save still under way finishes on its own */
        sd_event_source_disable_unref(s->retry_timer);
        secret_free(s->retry_text);
        secret_free(s->deferred_text);
        free(s->state_dir);
        free(s->name);
        free(s);
        return NULL;
}
