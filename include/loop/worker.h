/* One thread that runs blocking file I/O (output writes) off the event loop.
 *
 * Why a thread: a write to a FIFO, a hung NFS home or a stopped FUSE server blocks in the
 * kernel, and nothing in the loop may wait on it (interface.md, "Robustness promises"). Each
 * Worker is one thread with at most one job running and one waiting: a job submitted while one
 * waits replaces it (the newest content wins), so a hung file system costs one thread and two
 * jobs, never a growing queue. Results come back to the loop through an eventfd that sd-event
 * watches; the loop never waits on the thread, not even when freeing it: a busy thread is
 * detached and frees its own job when (if ever) its system call returns. At exit the daemon
 * gives such threads WORKER_EXIT_WAIT to finish, then exits anyway (exit_group ends them). A job owns copies of everything it touches.
 *
 * Threads share nothing else with the loop: the job's run function gets only the job, and
 * must not log (the loop logs from the done callback). Credentials set with setfsuid(2) in a
 * job are per thread. */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "base/macro.h"
#include "base/util.h"

typedef struct Worker Worker;

/* How long the daemon waits at exit for writes still under way: SIGTERM must stop it within a
 * second even with a write hung. */
#define WORKER_EXIT_WAIT (400 * USEC_PER_MSEC)

typedef void (*worker_run_fn)(void *job);                             /* in the worker thread */
typedef void (*worker_done_fn)(Worker *w, void *job, void *userdata); /* on the loop; owns job */
typedef void (*worker_free_fn)(void *job);

/* done gets every job that ran, in order, and must free it (free_job does); free_job also
 * frees jobs that never ran (replaced, or left when the worker is freed). */
int worker_new(sd_event *e, const char *name, worker_run_fn run, worker_done_fn done, worker_free_fn free_job,
               void *userdata, Worker **ret);

/* Queue job (taken, also on failure). A job already waiting is freed: this one replaces it. */
int worker_submit(Worker *w, void *job);

/* Is a job running or waiting? running_since: monotonic start of the running one (0: none). */
bool worker_busy(const Worker *w);
usec_t worker_running_since(const Worker *w);

/* Idle: stops and joins the thread. Busy: detaches it; it still runs the job running and the
 * one waiting (the newest content still reaches the file), then ends. done is not called
 * again. */
Worker *worker_free(Worker *w);
/* The same, but a job still waiting is dropped, never run: what it would write has been
 * superseded (a reload made a new worker for the same files, or removed them from the
 * configuration), and a thread that comes back from a hung file system must not write an older
 * content over what the new worker wrote since. The job running then is not stopped. */
Worker *worker_abandon(Worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);

/* At exit, after every worker is freed: wait up to timeout (realtime clock) for detached
 * threads to finish their last writes. Returns how many are still running (hung); process exit
 * ends them. */
unsigned worker_wait_all(usec_t timeout);
