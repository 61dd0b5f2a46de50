/* One Prometheus exposition from every jump-host instance's, each series labelled with the
 * user the kernel says answered (never what the text says). Pure: no I/O, no clock. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define METRICS_JOIN_PREFIX "aksspark_tokend_"
#define METRICS_JOIN_UP "aksspark_tokend_up"

typedef struct MetricsInstance {
        const char *user; /* the label: from the kernel's credentials of the answering process */
        const char *text; /* its exposition (need not end in a newline); NULL: it did not answer */
        size_t len;
} MetricsInstance;

/* The sample line (no newline) with its user label set to user: any user label the line has is
 * dropped, user="..." is put first, every other label and the value are kept. -EBADMSG when the
 * line is not a sample of the text format (a name, optional {labels}, a value, an optional
 * timestamp). *ret malloc'd. */
int metrics_relabel_sample(const char *line, size_t len, const char *user, char **ret);

/* Every instance's families joined: each family's HELP and TYPE once (the first instance's),
 * then its samples from every instance, relabelled; lines that are not samples or comments of an
 * aksspark_tokend_ family, or that claim METRICS_JOIN_UP, are dropped; last,
 * aksspark_tokend_up{user="..."} 1 or 0 for each instance. *ret malloc'd. */
int metrics_join(const MetricsInstance *instances, size_t n, char **ret);
