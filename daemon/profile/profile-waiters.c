/* The list of requests waiting on one profile: adding, cancelling, and answering them in order. */
#include <stdlib.h>

#include "profile/profile-waiters.h"

static void waiter_unlink(ProfileWaiter *w) {
        LIST_REMOVE(waiters, w->list->waiters, w);
}

static void waiter_free(ProfileWaiter *w) {
        sd_event_source_disable_unref(w->defer);
        free(w);
}

void profile_waiter_cancel(ProfileWaiter *w) {
        if (!w)
                return;
        waiter_unlink(w);
        waiter_free(w);
}

ProfileWaiter *profile_waiter_new(ProfileWaiterList *l, WaiterKind kind, profile_done_fn done, void *userdata) {
        ProfileWaiter *w = calloc(1, sizeof *w);

        if (!w)
                return NULL;
        w->profile = l->profile;
        w->list = l;
        w->kind = kind;
        w->done = done;
        w->userdata = userdata;
        /* Append, so that waiters are answered in the order they asked. */
        LIST_APPEND(waiters, l->waiters, w);
        return w;
}

/* Callbacks may add or cancel waiters, so we restart the scan after each one instead of holding
 * a pointer into the list. */
void profile_waiters_flush(ProfileWaiterList *l) {
        for (;;) {
                ProfileWaiter *w;
                profile_done_fn done;
                void *userdata;
                int result;

                for (w = l->waiters; w && !w->finishing; w = w->waiters_next)
                        ;
                if (!w)
                        return;
                waiter_unlink(w);
                done = w->done;
                userdata = w->userdata;
                result = w->result;
                waiter_free(w);
                if (done)
                        done(l->profile, result, userdata);
        }
}

static int on_waiter_defer(sd_event_source *s, void *userdata) {
        ProfileWaiter *w = userdata;

        w->finishing = true;
        profile_waiters_flush(w->list);
        return 0;
}

int profile_waiter_defer_result(ProfileWaiter *w, int result) {
        int r;

        w->result = result;
        r = sd_event_add_defer(w->list->event, &w->defer, on_waiter_defer, w);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(w->defer, SD_EVENT_ONESHOT);
}
