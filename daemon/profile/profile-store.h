/* The sign-in store: one profile's sign-in in the state directory. It owns its worker thread
 * (saves and removals run off the loop), its retry timer (a failed save is retried with
 * backoff) and the results `status` and `check` show, and reports each finished job through
 * one callback. It knows nothing of the profile that owns it. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "profile/state-key.h"
#include "profile/store.h"

typedef struct SignInStore SignInStore;

typedef enum SignInStoreJob {
        SIGN_IN_STORE_SAVE,
        SIGN_IN_STORE_REMOVE,
        SIGN_IN_STORE_LOAD,
} SignInStoreJob;

/* A job finished. */
typedef struct SignInStoreResult {
        SignInStoreJob job;
        int result;            /* 0 or -errno (a failed save is already scheduled for a retry) */
        bool changed;          /* the store's results changed (for `status`) */
        StoredProfile *loaded; /* SIGN_IN_STORE_LOAD with result 0: take what you keep */
} SignInStoreResult;

typedef struct SignInStoreCallbacks {
        void (*on_done)(const SignInStoreResult *result, void *userdata);
        void *userdata;
} SignInStoreCallbacks;

/* What `status` and `check` show of the store. */
typedef struct SignInStoreStatus {
        bool attempted;   /* a save was tried since the start */
        int result;       /* the last save: 0 ok, -errno failed */
        usec_t last_save; /* realtime of the last attempt */
} SignInStoreStatus;

/* state_dir and name are copied; key (kept by the owner for the store's life) seals what is
 * saved and unseals what is loaded, NULL: kept in clear; now NULL: the system's clock. A save
 * under a protection whose key is missing fails with -ENOKEY: never a clear copy. */
int sign_in_store_new(sd_event *event, const char *state_dir, const char *name, const StateKey *key,
                      usec_t (*now)(clockid_t clock), const SignInStoreCallbacks *callbacks, SignInStore **ret);
/* A save or removal under way finishes on its own; no callback runs. NULL-safe. */
SignInStore *sign_in_store_free(SignInStore *s);

/* Save s (serialized now; the newest save replaces one still waiting). A failure is kept and
 * retried with backoff until a save succeeds or the sign-in is removed. */
int sign_in_store_save(SignInStore *s, const StoredProfile *stored);
/* Remove the saved sign-in (and forget a save still to be retried). */
void sign_in_store_remove(SignInStore *s);
/* At start, in the worker: remove the temp files an interrupted write left next to each of
 * sweep (n_sweep paths, copied), then read the saved sign-in when read_sign_in. Reported as
 * SIGN_IN_STORE_LOAD (result -ENODATA when nothing was to be read); saves and removals asked
 * for meanwhile run after it. */
int sign_in_store_load(SignInStore *s, bool read_sign_in, char *const *sweep, size_t n_sweep);

/* A save or removal is under way. */
bool sign_in_store_busy(const SignInStore *s);
SignInStoreStatus sign_in_store_status(const SignInStore *s);
