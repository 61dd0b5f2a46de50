/* Prometheus text exposition (format 0.0.4) of the daemon's profiles: what the `metrics` op
 * answers and what metrics_file holds. Pure: a snapshot in, text out. */
#pragma once

#include <stddef.h>

#include "base/util.h"
#include "shared/protocol.h"

/* The daemon as a whole. user is a label on every series: node_exporter's textfile collector
 * merges the files of every person on a jump host, and each of them has a profile "default". */
typedef struct MetricsDaemon {
        const char *version;
        const char *user;  /* NULL: no user label */
        usec_t start_time; /* realtime, 0 = unknown (not shown) */
} MetricsDaemon;

/* Every family gets its HELP and TYPE lines, even without samples. Per profile (names must be
 * unique, as the configuration makes them):
 *   aksspark_tokend_profile_state{profile,state}            1 for the current state, 0 others
 *   aksspark_tokend_token_expiry_timestamp_seconds{profile}  only while there is a token
 *   aksspark_tokend_refreshes_total{profile,result}          ok|transient|login_required|config_error
 *   aksspark_tokend_last_refresh_timestamp_seconds{profile}  only after a successful refresh
 * per output, once it has been written or tried:
 *   aksspark_tokend_output_ok{profile,path,kind}                     1|0
 *   aksspark_tokend_output_last_write_timestamp_seconds{...}         the last attempt
 *   aksspark_tokend_output_last_success_timestamp_seconds{...}       only after a success
 * and aksspark_tokend_build_info{version} 1, aksspark_tokend_start_time_seconds.
 * Times are unix seconds. Label values are escaped (\\, \", \n) and bytes that are not UTF-8
 * become U+FFFD. Returns 0 and the text (malloc'd, ends with '\n'), or -ENOMEM. */
int metrics_render(const MetricsDaemon *d, const ProfileSnapshot *profiles, size_t n, char **ret);
