/* The event loop, run one iteration at a time so that it measures its own stalls. */
#pragma once

#include <systemd/sd-event.h>

#include "base/util.h"

/* Log a new longest stall at debug level from this length on. */
#define LOOP_STALL_LOG_MIN (10 * USEC_PER_MSEC)

/* A stall is the time one iteration spends away from waiting: from the moment sd_event_wait()
 * returns to the end of sd_event_dispatch(), i.e. how late every other event source can be
 * served because of what this iteration ran (a blocking call shows up here whole), less the
 * time the thread waited for a CPU (/proc/thread-self/schedstat): a loaded machine is not the
 * daemon's stall. The time preempted is reported beside it. */
typedef struct LoopStats {
        usec_t longest;           /* the longest stall so far, less the time spent preempted */
        usec_t longest_preempted; /* the longest an iteration waited for a CPU (machine load) */
        uint64_t iterations;
} LoopStats;

/* sd_event_loop() with the meter: returns the exit code given to sd_event_exit(), or a
 * negative errno. Each new longest stall of LOOP_STALL_LOG_MIN or more is logged
 * ("Event loop: longest stall so far N.N ms") and the longest is logged at the end; the tests
 * read these lines. Costs two clock reads per iteration and no wake-up. */
int loop_run(sd_event *e, LoopStats *stats);
