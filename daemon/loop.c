/* The event loop with a stall meter: how long each iteration kept the loop from waiting. */
#include <errno.h>

#include "log.h"
#include "loop.h"

static void loop_note(LoopStats *stats, usec_t stall) {
        stats->iterations++;
        if (stall <= stats->longest)
                return;
        stats->longest = stall;
        if (stall >= LOOP_STALL_LOG_MIN)
                log_debug("Event loop: longest stall so far %llu.%llu ms.",
                          (unsigned long long) (stall / USEC_PER_MSEC),
                          (unsigned long long) (stall % USEC_PER_MSEC / 100));
}

int loop_run(sd_event *e, LoopStats *stats) {
        int code = 0, r;

        if (!e || !stats)
                return -EINVAL;

        for (;;) {
                usec_t start;

                r = sd_event_get_state(e);
                if (r < 0)
                        return r;
                if (r == SD_EVENT_FINISHED)
                        break;

                r = sd_event_prepare(e);
                if (r == 0)
                        r = sd_event_wait(e, UINT64_MAX);
                if (r < 0)
                        return r;
                start = now_monotonic();
                if (r > 0) {
                        r = sd_event_dispatch(e);
                        if (r < 0)
                                return r;
                }
                loop_note(stats, now_monotonic() - start);
        }

        log_info("Event loop: longest stall %llu.%llu ms over %llu iterations.",
                 (unsigned long long) (stats->longest / USEC_PER_MSEC),
                 (unsigned long long) (stats->longest % USEC_PER_MSEC / 100), (unsigned long long) stats->iterations);
        (void) sd_event_get_exit_code(e, &code);
        return code;
}
