/* A thread for blocking file I/O: one job running, one waiting (newest wins), results to the
 * loop through an eventfd. See worker.h for why. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop/worker.h"

/* Threads alive, for worker_wait_all() at exit. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_changed = PTHREAD_COND_INITIALIZER;
static unsigned live_threads;

/* What the thread and the loop share, under lock; freed by whichever lets go last. */
typedef struct Shared {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        unsigned refs;
        int efd;

        worker_run_fn run;
        worker_free_fn free_job;
        void *waiting; /* submitted, not started */
        void *running; /* in run() now */
        usec_t running_since;
        void **done; /* ran, not yet collected by the loop (oldest first) */
        size_t n_done;
        bool quit; /* the loop let go: stop after the current job */
} Shared;

struct Worker {
        Shared *shared;
        pthread_t thread;
        bool started;
        sd_event_source *source;
        worker_done_fn done;
        void *userdata;
};

/* Drop one reference; called with the lock held, returns with it released. */
static void shared_unref_unlock(Shared *s) {
        bool last = --s->refs == 0;

        pthread_mutex_unlock(&s->lock);
        if (!last)
                return;
        if (s->waiting)
                s->free_job(s->waiting);
        for (size_t i = 0; i < s->n_done; i++)
                s->free_job(s->done[i]);
        free(s->done);
        safe_close(s->efd);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

static void *worker_thread(void *arg) {
        Shared *s = arg;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                void *job, **done;

                while (!s->waiting && !s->quit)
                        pthread_cond_wait(&s->wake, &s->lock);
                if (!s->waiting)
                        break; /* let go and nothing left to write */
                job = s->waiting;
                s->waiting = NULL;
                s->running = job;
                s->running_since = now_monotonic();
                pthread_mutex_unlock(&s->lock);

                s->run(job);

                pthread_mutex_lock(&s->lock);
                s->running = NULL;
                s->running_since = 0;
                if (s->quit) {
                        /* Nobody collects results any more; a job still waiting (worker_free) is written. */
                        s->free_job(job);
                        continue;
                }
                done = reallocarray(s->done, s->n_done + 1, sizeof *done);
                if (!done) {
                        s->free_job(job); /* the loop sees the worker idle and may submit again */
                        continue;
                }
                s->done = done;
                s->done[s->n_done++] = job;
                (void) eventfd_write(s->efd, 1);
        }
        shared_unref_unlock(s);

        pthread_mutex_lock(&live_lock);
        live_threads--;
        pthread_cond_broadcast(&live_changed);
        pthread_mutex_unlock(&live_lock);
        return NULL;
}

/* One finished job per dispatch: the callback may free the worker, so it is the last thing
 * done with it; a job still queued re-signals the eventfd for the next iteration. */
static int on_worker_event(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        Shared *s = w->shared;
        void *job = NULL;
        eventfd_t value;

        (void) eventfd_read(fd, &value);
        pthread_mutex_lock(&s->lock);
        if (s->n_done > 0) {
                job = s->done[0];
                memmove(s->done, s->done + 1, (s->n_done - 1) * sizeof *s->done);
                s->n_done--;
                if (s->n_done > 0)
                        (void) eventfd_write(s->efd, 1);
        }
        pthread_mutex_unlock(&s->lock);
        if (job)
                w->done(w, job, w->userdata);
        return 0;
}

int worker_new(sd_event *e, const char *name, worker_run_fn run, worker_done_fn done, worker_free_fn free_job,
               void *userdata, Worker **ret) {
        _cleanup_(worker_freep) Worker *w = NULL;
        sigset_t all, old;
        Shared *s;
        int r;

        if (!e || !run || !done || !free_job || !ret)
                return -EINVAL;
        w = calloc(1, sizeof *w);
        s = calloc(1, sizeof *s);
        if (!w || !s) {
                free(s);
                return -ENOMEM;
        }
        w->done = done;
        w->userdata = userdata;
        s->run = run;
        s->free_job = free_job;
        s->refs = 1;
        s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->wake, NULL);
        w->shared = s;
        if (s->efd < 0)
                return -errno;

        r = sd_event_add_io(e, &w->source, s->efd, EPOLLIN, on_worker_event, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(w->source, name);

        /* The thread must not take the loop's signals (sd-event blocks them in this thread only
         * when it adds a signal source; block them all here to be sure). */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        s->refs++;
        pthread_mutex_lock(&live_lock);
        live_threads++;
        pthread_mutex_unlock(&live_lock);
        r = -pthread_create(&w->thread, NULL, worker_thread, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                s->refs--;
                pthread_mutex_lock(&live_lock);
                live_threads--;
                pthread_mutex_unlock(&live_lock);
                return r;
        }
        w->started = true;
        if (name)
                (void) pthread_setname_np(w->thread, name);
        *ret = TAKE_PTR(w);
        return 0;
}

int worker_submit(Worker *w, void *job) {
        Shared *s;

        if (!w || !job)
                return -EINVAL;
        s = w->shared;
        pthread_mutex_lock(&s->lock);
        if (s->waiting)
                s->free_job(s->waiting);
        s->waiting = job;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        return 0;
}

bool worker_busy(const Worker *w) {
        bool busy;

        if (!w)
                return false;
        pthread_mutex_lock(&w->shared->lock);
        busy = w->shared->running || w->shared->waiting || w->shared->n_done > 0;
        pthread_mutex_unlock(&w->shared->lock);
        return busy;
}

usec_t worker_running_since(const Worker *w) {
        usec_t t;

        if (!w)
                return 0;
        pthread_mutex_lock(&w->shared->lock);
        t = w->shared->running_since;
        pthread_mutex_unlock(&w->shared->lock);
        return t;
}

static Worker *worker_release(Worker *w, bool drop_waiting) {
        Shared *s;
        bool busy;

        if (!w)
                return NULL;
        s = w->shared;
        w->shared = NULL;
        sd_event_source_disable_unref(w->source);
        if (s) {
                pthread_mutex_lock(&s->lock);
                s->quit = true;
                if (drop_waiting && s->waiting) {
                        s->free_job(s->waiting);
                        s->waiting = NULL;
                }
                busy = s->running || s->waiting;
                pthread_cond_signal(&s->wake);
                /* An idle thread ends at once; a busy one finishes its writes on its own (it may
                 * never return from the kernel: nobody waits for it but worker_wait_all()). */
                if (w->started && busy)
                        (void) pthread_detach(w->thread);
                shared_unref_unlock(s);
                if (w->started && !busy)
                        (void) pthread_join(w->thread, NULL);
        }
        free(w);
        return NULL;
}

Worker *worker_free(Worker *w) {
        return worker_release(w, false);
}

Worker *worker_abandon(Worker *w) {
        return worker_release(w, true);
}

unsigned worker_wait_all(usec_t timeout) {
        struct timespec deadline;
        unsigned left;
        usec_t until = now_realtime() + timeout;

        deadline.tv_sec = (time_t) (until / USEC_PER_SEC);
        deadline.tv_nsec = (long) (until % USEC_PER_SEC * 1000);
        pthread_mutex_lock(&live_lock);
        while (live_threads > 0 && pthread_cond_timedwait(&live_changed, &live_lock, &deadline) == 0)
                ;
        left = live_threads;
        pthread_mutex_unlock(&live_lock);
        return left;
}
