/* The metrics file (metrics_file, --metrics-file) for node_exporter's textfile collector: the
 * exposition text, rewritten atomically after each change and removed when the daemon stops. */
#pragma once

#include <systemd/sd-event.h>

#include "base/macro.h"

/* Makes the current text (malloc'd) or returns a negative errno. */
typedef int (*metrics_render_fn)(void *userdata, char **ret_text);

typedef struct MetricsFile MetricsFile;

int metrics_file_new(sd_event *event, metrics_render_fn render, void *userdata, MetricsFile **ret);
/* Removes the file it wrote (the target, when the path is a symlink: the link may belong to
 * root, as in the jump-host template). */
MetricsFile *metrics_file_free(MetricsFile *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(MetricsFile *, metrics_file_free);

/* Write to path from now on (NULL: no file), starting soon; a file written under another path
 * is removed. */
int metrics_file_set_path(MetricsFile *f, const char *path);

/* What the metrics show changed: rewrite the file once the loop is idle, so that a burst of
 * changes costs one write. Failures are logged once per kind of failure, not per write. */
void metrics_file_changed(MetricsFile *f);
