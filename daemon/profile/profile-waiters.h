/* The requests that wait on one profile (profile-waiters.c): a list answered in the order they
 * asked, each exactly once or cancelled. Used by profile.c only; what a waiter is told is
 * decided there. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "base/list.h"
#include "profile/profile.h"

typedef enum WaiterKind {
        WAITER_REFRESH,
        WAITER_CHECK,
        WAITER_LOGIN,
} WaiterKind;

typedef struct ProfileWaiterList ProfileWaiterList;

struct ProfileWaiter {
        Profile *profile; /* handed to the callbacks */
        ProfileWaiterList *list;
        WaiterKind kind;
        usec_t min_valid;
        profile_done_fn done;
        profile_device_fn device;
        void *userdata;
        bool device_sent;
        bool finishing;
        int result;
        sd_event_source *defer; /* delivers a result decided at once, from the loop */
        LIST_FIELDS(ProfileWaiter, waiters);
};

struct ProfileWaiterList {
        Profile *profile;
        sd_event *event;
        LIST_HEAD(ProfileWaiter, waiters); /* in the order they asked */
};

/* A new waiter at the end of l. NULL when out of memory. */
ProfileWaiter *profile_waiter_new(ProfileWaiterList *l, WaiterKind kind, profile_done_fn done, void *userdata);
/* Answer every waiter marked finishing with its result, oldest first. Callbacks may add or
 * cancel waiters. */
void profile_waiters_flush(ProfileWaiterList *l);
/* Answer w with result from the loop, so callers never see their callback run inside the call. */
int profile_waiter_defer_result(ProfileWaiter *w, int result);
