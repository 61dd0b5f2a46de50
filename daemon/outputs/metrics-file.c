/* The metrics file: the exposition text written through atomic.c, mode 0644 (it holds no
 * secret, and node_exporter reads it as another user), coalesced on a defer event. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/atomic.h"
#include "base/log.h"
#include "base/util.h"
#include "outputs/metrics-file.h"

#define METRICS_FILE_MODE 0644
#define METRICS_DIR_MODE 0755

struct MetricsFile {
        sd_event *event;
        metrics_render_fn render;
        void *userdata;
        char *path;
        sd_event_source *defer;
        bool written;   /* path holds a file we wrote */
        int last_error; /* of the last write, 0 ok: log only a change */
};

static void metrics_file_remove(MetricsFile *f) {
        _cleanup_free_ char *target = NULL;

        if (!f->path || !f->written)
                return;
        f->written = false;
        if (atomic_resolve_target(f->path, &target) < 0)
                return;
        if (unlink(target) < 0 && errno != ENOENT)
                log_debug_errno(errno, "Failed to remove the metrics file %s: %m", target);
}

/* mkdir -p, each new directory 0755 whatever the umask (the daemon's is 0077). */
static int mkdir_readable(char *path) {
        for (char *s = path + 1;; s++) {
                char saved = *s;

                if (saved != '/' && saved != 0)
                        continue;
                *s = 0;
                if (mkdir(path, METRICS_DIR_MODE) >= 0) {
                        if (chmod(path, METRICS_DIR_MODE) < 0) {
                                *s = saved;
                                return -errno;
                        }
                } else if (errno != EEXIST) {
                        *s = saved;
                        return -errno;
                }
                *s = saved;
                if (saved == 0)
                        return 0;
        }
}

static int metrics_file_write(MetricsFile *f) {
        _cleanup_free_ char *text = NULL, *target = NULL;
        int r;

        r = f->render(f->userdata, &text);
        if (r < 0)
                return r;
        r = atomic_replace(f->path, text, strlen(text), METRICS_FILE_MODE, 0, NULL);
        if (r != -ENOENT)
                return r;
        /* A directory is missing: make it readable for node_exporter, then try once more. */
        r = atomic_resolve_target(f->path, &target);
        if (r < 0)
                return r;
        *strrchr(target, '/') = 0;
        r = mkdir_readable(target);
        if (r < 0)
                return r;
        return atomic_replace(f->path, text, strlen(text), METRICS_FILE_MODE, 0, NULL);
}

static int on_defer(sd_event_source *s, void *userdata) {
        MetricsFile *f = userdata;
        int r;

        if (!f->path)
                return 0;
        r = metrics_file_write(f);
        if (r >= 0) {
                if (f->last_error < 0)
                        log_info("The metrics file %s is written again.", f->path);
                f->written = true;
        } else if (r != f->last_error)
                log_warning_errno(r,
                                  "Failed to write the metrics file %s, the metrics stay available through "
                                  "aksspark-tokenctl metrics: %m",
                                  f->path);
        f->last_error = r < 0 ? r : 0;
        return 0;
}

void metrics_file_changed(MetricsFile *f) {
        if (!f || !f->path)
                return;
        (void) sd_event_source_set_enabled(f->defer, SD_EVENT_ONESHOT);
}

int metrics_file_set_path(MetricsFile *f, const char *path) {
        char *copy = NULL;

        if (path && f->path && strcmp(path, f->path) == 0)
                return 0;
        if (path) {
                copy = strdup(path);
                if (!copy)
                        return -ENOMEM;
        }
        metrics_file_remove(f);
        free(f->path);
        f->path = copy;
        f->last_error = 0;
        metrics_file_changed(f);
        return 0;
}

int metrics_file_new(sd_event *event, metrics_render_fn render, void *userdata, MetricsFile **ret) {
        _cleanup_(metrics_file_freep) MetricsFile *f = NULL;
        int r;

        f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->event = sd_event_ref(event);
        f->render = render;
        f->userdata = userdata;
        r = sd_event_add_defer(event, &f->defer, on_defer, f);
        if (r < 0)
                return r;
        /* After the socket's and the profiles' events of the same iteration. */
        (void) sd_event_source_set_priority(f->defer, SD_EVENT_PRIORITY_IDLE);
        r = sd_event_source_set_enabled(f->defer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(f);
        return 0;
}

MetricsFile *metrics_file_free(MetricsFile *f) {
        if (!f)
                return NULL;
        metrics_file_remove(f);
        sd_event_source_disable_unref(f->defer);
        sd_event_unref(f->event);
        free(f->path);
        free(f);
        return NULL;
}
