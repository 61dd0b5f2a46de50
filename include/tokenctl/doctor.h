/* The decisions behind `aksspark-tokenctl doctor`, apart from the probing: pure. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "base/util.h"

/* How far the local clock may be from the identity provider's before tokens look expired or
 * not yet valid to one side (Azure AD allows 5 minutes of skew). */
#define DOCTOR_MAX_CLOCK_SKEW (5 * USEC_PER_MINUTE)

/* An HTTP Date header (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT"; also the obsolete
 * RFC 850 and asctime forms) as unix seconds. -EINVAL when it is none of them. */
int doctor_parse_http_date(const char *value, time_t *ret);

/* local minus server (a Date header's whole seconds), in microseconds rounded to whole seconds;
 * negative: the local clock is behind. */
int64_t doctor_clock_offset(usec_t local, time_t server);

/* Would the kernel's fs.protected_symlinks refuse to let follower follow a symlink owned by
 * link_owner in a directory (dir_owner, dir_mode)? It does in a sticky world-writable directory
 * when the link belongs neither to the follower nor to the directory's owner. */
bool doctor_link_refused(uid_t link_owner, uid_t dir_owner, mode_t dir_mode, uid_t follower);
