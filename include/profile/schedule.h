/* When to refresh and how long to back off. Pure: times and random bits are arguments.
 * The exact rules are written at the top of daemon/schedule.c. */
#pragma once

#include <stdbool.h>

#include "base/util.h"
#include "shared/config.h"

#define SCHEDULE_LATEST_BEFORE_EXPIRY (5 * USEC_PER_MINUTE)
#define SCHEDULE_BACKOFF_MIN (1 * USEC_PER_SEC)
#define SCHEDULE_BACKOFF_MAX (5 * USEC_PER_MINUTE)
/* No token, however short the answer says it lives, is refreshed on schedule more often (the
 * daemon's floor, unless a test moves it). */
#define SCHEDULE_MIN_INTERVAL CONFIG_REFRESH_FLOOR

/* The realtime at which to refresh a token obtained at `obtained` (when the request was sent)
 * that expires at `expires_on`. refresh_in is AAD's hint (0 = none). random spreads daemons. */
usec_t schedule_refresh_at(usec_t obtained, usec_t expires_on, usec_t refresh_before, usec_t refresh_in,
                           uint64_t random);

/* A scheduled refresh at `at`, but not sooner than min_interval after the previous refresh
 * started (`previous`, its request's send time): an answer with expires_in 1 must not make a
 * refresh loop. A forced refresh (refresh, check) does not go through here. */
usec_t schedule_not_before(usec_t at, usec_t previous, usec_t min_interval);

/* The CLOCK_BOOTTIME instant of a realtime deadline, taken now: kept beside the realtime one,
 * so a backward wall-clock step can neither postpone a refresh nor stretch a token's life. */
usec_t schedule_boottime_of(usec_t deadline_real, usec_t now_real, usec_t now_boot);

/* Time left until the earlier of both clocks' deadlines (boottime 0: not known, realtime
 * only). 0 once either has passed. */
usec_t schedule_time_left(usec_t deadline_real, usec_t deadline_boot, usec_t now_real, usec_t now_boot);

/* Delay before retry number `attempt` (1 for the first retry) after a transient failure at
 * now: capped exponential backoff with jitter, at least retry_after (0 = none), but never past
 * last_chance (the last instant a try can surely beat expiry; USEC_INFINITY = no token to save),
 * and at most 1 s once last_chance has passed while the token still lives. */
usec_t schedule_backoff(unsigned attempt, usec_t now, usec_t retry_after, usec_t last_chance, uint64_t random);
