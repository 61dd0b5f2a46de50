/* When to refresh a token and how long to back off after a failure. Pure.
 *
 * Refresh (L = expires_on - obtained, the token's lifetime as the answer gave it):
 *   due    = refresh_before >= L ? obtained + L/2 : expires_on - refresh_before
 *   latest = L >= 10 min ? expires_on - 5 min : obtained + L/2
 *   due    = min(due, latest)
 *   due    = min(due, obtained + refresh_in)          when AAD sent refresh_in
 *   floor  = obtained + L/4                           never a refresh loop, whatever the inputs
 *   due    = max(due, floor)
 *   due    = max(due - random % (min(L/20, 2 min) + 1), floor)   spread a jump host's daemons
 * A token that is already expired (L == 0) is due at once. Then schedule_not_before() keeps
 * scheduled refreshes at least SCHEDULE_MIN_INTERVAL apart.
 *
 * Backoff after transient failure number `attempt` (1, 2, ...):
 *   base   = min(1 s << (attempt - 1), 5 min)
 *   delay  = base/2 + random % (base/2 + 1)           "equal jitter": in [base/2, base]
 *   delay  = max(delay, min(retry_after, 1 h))        honour Retry-After, within reason
 *   if last_chance is finite (a token is still valid):
 *     delay = min(delay, max(last_chance - now, 1 s)), so once last_chance has passed the
 *     daemon tries about once a second until the token expires: last_chance assumes an answer
 *     takes the whole http_timeout, and most take milliseconds (in the soak, waiting the plain
 *     backoff there caused three lapses in four). Never a tight loop: at least 1 s.
 * With no token to save (USEC_INFINITY) the plain delay applies. */
#include "profile/schedule.h"
#include "base/macro.h"

#define SCHEDULE_SHORT_TOKEN (10 * USEC_PER_MINUTE)
#define SCHEDULE_SPREAD_MAX (2 * USEC_PER_MINUTE)
#define SCHEDULE_RETRY_AFTER_MAX (1 * USEC_PER_HOUR)

usec_t schedule_refresh_at(usec_t obtained, usec_t expires_on, usec_t refresh_before, usec_t refresh_in,
                           uint64_t random) {
        usec_t lifetime, due, latest, floor, spread;

        if (expires_on <= obtained)
                return obtained;
        lifetime = expires_on - obtained;

        due = refresh_before >= lifetime ? obtained + lifetime / 2 : expires_on - refresh_before;
        latest = lifetime >= SCHEDULE_SHORT_TOKEN ? expires_on - SCHEDULE_LATEST_BEFORE_EXPIRY
                                                  : obtained + lifetime / 2;
        due = MIN(due, latest);
        if (refresh_in > 0 && refresh_in < lifetime)
                due = MIN(due, obtained + refresh_in);

        floor = obtained + lifetime / 4;
        due = MAX(due, floor);

        spread = random % (MIN(lifetime / 20, SCHEDULE_SPREAD_MAX) + 1);
        return due - floor > spread ? due - spread : floor;
}

usec_t schedule_not_before(usec_t at, usec_t previous, usec_t min_interval) {
        if (previous > USEC_INFINITY - min_interval)
                return USEC_INFINITY;
        return MAX(at, previous + min_interval);
}

usec_t schedule_boottime_of(usec_t deadline_real, usec_t now_real, usec_t now_boot) {
        usec_t left = deadline_real > now_real ? deadline_real - now_real : 0;

        return left > USEC_INFINITY - now_boot ? USEC_INFINITY : now_boot + left;
}

usec_t schedule_time_left(usec_t deadline_real, usec_t deadline_boot, usec_t now_real, usec_t now_boot) {
        usec_t left = deadline_real > now_real ? deadline_real - now_real : 0;

        if (deadline_boot != 0)
                left = MIN(left, deadline_boot > now_boot ? deadline_boot - now_boot : 0);
        return left;
}

usec_t schedule_backoff(unsigned attempt, usec_t now, usec_t retry_after, usec_t last_chance, uint64_t random) {
        usec_t base, delay;

        if (attempt == 0)
                attempt = 1;
        base = attempt > 20 ? SCHEDULE_BACKOFF_MAX : MIN(SCHEDULE_BACKOFF_MIN << (attempt - 1), SCHEDULE_BACKOFF_MAX);
        delay = base / 2 + random % (base / 2 + 1);
        delay = MAX(delay, MIN(retry_after, SCHEDULE_RETRY_AFTER_MAX));

        if (last_chance != USEC_INFINITY)
                delay = MIN(delay, MAX(last_chance > now ? last_chance - now : 0, SCHEDULE_BACKOFF_MIN));
        return delay;
}
