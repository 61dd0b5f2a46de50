/* Answering the requests that wait on a profile (refresh, check, login): each gets its result
 * when the refresh or sign-in it waits for ends, held while an output write or a save of the
 * sign-in is in flight, so that answers come with the files written. */
#include <errno.h>
#include <stdlib.h>

#include "profile/profile-private.h"

/* Answers wait this long for an output write in flight (so `login`, `refresh` and `check`
 * answer with the files written), no longer: a hung file system must not hold them. */
#define OUTPUT_ANSWER_WAIT (5 * USEC_PER_SEC)

static int on_hold_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Profile *p = userdata;

        p->hold_expired = true;
        profile_answer_waiters(p);
        return 0;
}

/* Answer every waiter marked finishing, unless an output write or state save is still in
 * flight (profile_waiters_held()): then once it is done. A verdict on the outputs given while they were
 * being written is given again. */
void profile_answer_waiters(Profile *p) {
        if (profile_waiters_held(p))
                return;
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next)
                if (w->finishing && w->kind == WAITER_CHECK && (w->result == 0 || w->result == -EREMOTEIO)) {
                        int r = profile_check_result(p, w->min_valid);
                        if (r == 0 || r == -EREMOTEIO)
                                w->result = r;
                }
        profile_waiters_flush(&p->waiters);
}

int profile_check_result(Profile *p, usec_t min_valid) {
        usec_t now = profile_now(p, CLOCK_REALTIME);

        if (!profile_token_valid_at(p, now) || profile_token_time_left(p, now) < min_valid) {
                if (p->needs_login || (!profile_unattended(p) && !p->refresh_token))
                        return -ENOKEY;
                if (p->config_error)
                        return -EBADR;
                return -EIO;
        }
        if (!outputs_all_ok(p->outputs) || sign_in_store_status(p->store).result < 0)
                return -EREMOTEIO;
        return 0;
}

/* A refresh ended: refresh waiters get result, check waiters their own verdict. */
void profile_finish_refresh(Profile *p, int result) {
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next) {
                if (w->kind == WAITER_REFRESH) {
                        w->finishing = true;
                        w->result = result;
                } else if (w->kind == WAITER_CHECK) {
                        int r = profile_check_result(p, w->min_valid);
                        w->finishing = true;
                        /* The refresh's own failure says more than "still too short". */
                        w->result = r == -EIO && result < 0 ? result : r;
                }
        }
        profile_answer_waiters(p);
}

void profile_finish_login(Profile *p, int result) {
        for (ProfileWaiter *w = p->waiters.waiters; w; w = w->waiters_next)
                if (w->kind == WAITER_LOGIN) {
                        w->finishing = true;
                        w->result = result;
                }
        profile_answer_waiters(p);
}

void profile_send_device(Profile *p) {
        for (;;) {
                ProfileWaiter *w;

                for (w = p->waiters.waiters; w && !(w->kind == WAITER_LOGIN && !w->device_sent); w = w->waiters_next)
                        ;
                if (!w)
                        return;
                w->device_sent = true;
                if (w->device)
                        w->device(p, p->login ? login_device_code(p->login) : login_browser_url(p->browser),
                                  w->userdata);
        }
}

/* Should answers wait for the output write or state save in flight? Yes, up to
 * OUTPUT_ANSWER_WAIT: `login` and `refresh` answer with the files written and the sign-in saved. */
bool profile_waiters_held(Profile *p) {
        if (!outputs_busy(p->outputs) && !sign_in_store_busy(p->store)) {
                p->answers_held = p->hold_expired = false;
                profile_timer_disarm(p->hold_timer);
                return false;
        }
        if (p->hold_expired)
                return false;
        if (!p->answers_held) {
                if (profile_timer_arm(p, &p->hold_timer, CLOCK_MONOTONIC,
                                      profile_now(p, CLOCK_MONOTONIC) + OUTPUT_ANSWER_WAIT, on_hold_timer) < 0)
                        return false;
                p->answers_held = true;
        }
        return true;
}
