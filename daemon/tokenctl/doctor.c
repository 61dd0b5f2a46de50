/* The decisions behind `aksspark-tokenctl doctor`: dates, clock offsets, links the daemon would
 * refuse. Pure; the probes are in tokenctl-doctor.c. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/atomic.h"
#include "tokenctl/doctor.h"

int doctor_parse_http_date(const char *value, time_t *ret) {
        static const char *const formats[] = {
                "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate, what servers send */
                "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
                "%a %b %e %H:%M:%S %Y",      /* asctime */
        };

        if (!value)
                return -EINVAL;
        while (*value == ' ' || *value == '\t')
                value++;
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
                struct tm tm = {};
                const char *end = strptime(value, formats[i], &tm);
                time_t t;

                if (!end)
                        continue;
                while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
                        end++;
                if (*end)
                        continue;
                t = timegm(&tm);
                if (t == (time_t) -1)
                        return -EINVAL;
                *ret = t;
                return 0;
        }
        return -EINVAL;
}

int64_t doctor_clock_offset(usec_t local, time_t server) {
        /* The header counts whole seconds, cut off: the server's clock stood half a second
         * past it on average. Rounded to whole seconds, as it is only that exact. */
        int64_t d = (int64_t) local - ((int64_t) server * (int64_t) USEC_PER_SEC + (int64_t) USEC_PER_SEC / 2);
        int64_t s = (d + (d < 0 ? -(int64_t) USEC_PER_SEC / 2 : (int64_t) USEC_PER_SEC / 2)) / (int64_t) USEC_PER_SEC;

        return s * (int64_t) USEC_PER_SEC;
}

/* The daemon's own rule (atomic.c), so doctor never disagrees with what the daemon does. */
bool doctor_link_refused(uid_t link_owner, uid_t dir_owner, mode_t dir_mode, uid_t follower) {
        struct stat link = { .st_uid = link_owner }, dir = { .st_uid = dir_owner, .st_mode = dir_mode };

        return !atomic_link_is_safe(follower, &link, &dir);
}
