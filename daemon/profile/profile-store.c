/* The sign-in store: saves and removals of one profile's state file run in the store's worker
 * thread (a state directory on a hung file system holds that thread, never the loop), a failed
 * save is retried with backoff, and each finished job is reported through one callback. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/macro.h"
#include "loop/worker.h"
#include "profile/profile-store.h"

#define TIMER_ACCURACY (50 * USEC_PER_MSEC)
#define STORE_RETRY_MIN (1 * USEC_PER_SEC)
#define STORE_RETRY_MAX (1 * USEC_PER_MINUTE)

struct SignInStore {
        sd_event *event;
        char *state_dir;
        char *name;
        usec_t (*now)(clockid_t clock);
        const SignInStoreCallbacks *cb;

        Worker *worker;
        sd_event_source *retry_timer; /* retries a failed save */
        Secret *retry_text;           /* what that retry saves */
        bool removed;                 /* removed since the last save: a save's result no longer counts */
        SignInStoreStatus status;
        unsigned attempt; /* failed saves in a row */
};

/* One save (text) or removal (text NULL) of the state file, run by the store's worker thread. */
typedef struct StoreJob {
        char *state_dir;
        char *name;
        Secret *text;
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
        free(j);
}

static void store_job_run(void *p) {
        StoreJob *j = p;

        j->result = j->text ? store_save_text(j->state_dir, j->name, j->text) : store_remove(j->state_dir, j->name);
}

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

static void on_store_job_done(Worker *w, void *p, void *userdata) {
        StoreJob *j = p;
        SignInStore *s = userdata;
        bool saved = j->text, changed = false;
        int r = j->result;

        store_job_free(j);
        if (saved)
                changed = save_result(s, r);
        else if (r < 0)
                log_warning_errno(r, "Profile %s: failed to remove the saved sign-in: %m", s->name);
        s->cb->on_done(saved, r, changed, s->cb->userdata);
}

/* Queue a job (a newer one replaces one still waiting: the newest state wins). Takes text. */
static int job_submit(SignInStore *s, Secret *text) {
        StoreJob *j = calloc(1, sizeof *j);

        if (!j) {
                secret_free(text);
                return -ENOMEM;
        }
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
                s->cb->on_done(true, r, true, s->cb->userdata);
        return r;
}

int sign_in_store_save(SignInStore *s, const StoredProfile *stored) {
        Secret *text = NULL;
        int r;

        s->removed = false;
        r = store_serialize(stored, &text);
        if (r < 0) {
                if (save_result(s, r))
                        s->cb->on_done(true, r, true, s->cb->userdata);
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

int sign_in_store_load(SignInStore *s, StoredProfile *ret) {
        return store_load(s->state_dir, s->name, ret);
}

bool sign_in_store_busy(const SignInStore *s) {
        return s && worker_busy(s->worker);
}

SignInStoreStatus sign_in_store_status(const SignInStore *s) {
        return s->status;
}

int sign_in_store_new(sd_event *event, const char *state_dir, const char *name, usec_t (*now)(clockid_t clock),
                      const SignInStoreCallbacks *callbacks, SignInStore **ret) {
        SignInStore *s = calloc(1, sizeof *s);
        int r;

        if (!s)
                return -ENOMEM;
        *s = (SignInStore) { .event = event, .now = now, .cb = callbacks };
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
        free(s->state_dir);
        free(s->name);
        free(s);
        return NULL;
}
