/* The event loop with a stall meter: how long each iteration kept the loop from waiting. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"
#include "loop/loop.h"

/* How long this thread has waited on a run queue, from /proc/thread-self/schedstat's second
 * field (ns); 0 when unknown. */
static usec_t run_delay(int fd) {
        char buf[128];
        unsigned long long on_cpu, waited;
        ssize_t n;

        if (fd < 0)
                return 0;
        n = pread(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        if (sscanf(buf, "%llu %llu", &on_cpu, &waited) != 2)
                return 0;
        return (usec_t) (waited / 1000);
}

static void loop_note(LoopStats *stats, usec_t stall, usec_t preempted) {
        stats->iterations++;
        stats->longest_preempted = MAX(stats->longest_preempted, preempted);
        if (stall <= stats->longest)
                return;
        stats->longest = stall;
        if (stall >= LOOP_STALL_LOG_MIN)
                log_debug("Event loop: longest stall so far %llu.%llu ms (and %llu.%llu ms waiting for a CPU).",
                          (unsigned long long) (stall / USEC_PER_MSEC),
                          (unsigned long long) (stall % USEC_PER_MSEC / 100),
                          (unsigned long long) (preempted / USEC_PER_MSEC),
                          (unsigned long long) (preempted % USEC_PER_MSEC / 100));
}

int loop_run(sd_event *e, LoopStats *stats) {
        _cleanup_close_ int sched = -EBADF;
        int code = 0, r;

        if (!e || !stats)
                return -EINVAL;
        sched = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);

        for (;;) {
                usec_t start, delay, after, wall, preempted;

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
                delay = run_delay(sched);
                if (r > 0) {
                        r = sd_event_dispatch(e);
                        if (r < 0)
                                return r;
                }
                wall = now_monotonic() - start;
                after = run_delay(sched);
                preempted = MIN(after > delay ? after - delay : 0, wall);
                loop_note(stats, wall - preempted, preempted);
        }

        log_info("Event loop: longest stall %llu.%llu ms over %llu iterations (longest wait for a CPU %llu.%llu ms).",
                 (unsigned long long) (stats->longest / USEC_PER_MSEC),
                 (unsigned long long) (stats->longest % USEC_PER_MSEC / 100), (unsigned long long) stats->iterations,
                 (unsigned long long) (stats->longest_preempted / USEC_PER_MSEC),
                 (unsigned long long) (stats->longest_preempted % USEC_PER_MSEC / 100));
        (void) sd_event_get_exit_code(e, &code);
        return code;
}
