/* What Azure's HTTP headers say: Retry-After, and where Arc's 401 challenge points. Pure. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/macro.h"
#include "idp/aad.h"

#define AAD_RETRY_AFTER_MAX (366LL * 24 * 3600)

/* ---- Arc's challenge ----------------------------------------------------------------------- */

int aad_arc_challenge_path(const char *www_authenticate, const char *key_dir, char **ret) {
        const char *v = www_authenticate, *name;
        size_t n, dir_len;

        if (!v || !key_dir || !ret)
                return -EINVAL;
        while (*v == ' ')
                v++;
        if (strncasecmp(v, "Basic realm=", 12) != 0)
                return -EBADMSG;
        v += 12;
        n = strcspn(v, "\r\n");
        while (n > 0 && v[n - 1] == ' ')
                n--;
        dir_len = strlen(key_dir);
        while (dir_len > 1 && key_dir[dir_len - 1] == '/')
                dir_len--;
        /* Only a file name directly in key_dir: no "..", no subdirectory, ends in ".key". */
        if (n <= dir_len + 1 || strncmp(v, key_dir, dir_len) != 0 || v[dir_len] != '/')
                return -EBADMSG;
        name = v + dir_len + 1;
        n -= dir_len + 1;
        if (n < 5 || n > 255 || memchr(name, '/', n) || memcmp(name + n - 4, ".key", 4) != 0 || name[0] == '.')
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) name[i] <= ' ' || name[i] == 0x7f)
                        return -EBADMSG;
        if (asprintf(ret, "%.*s/%.*s", (int) dir_len, key_dir, (int) n, name) < 0)
                return -ENOMEM;
        return 0;
}

/* ---- Retry-After --------------------------------------------------------------------------- */

static const char *const month_names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
static const char *const day_names[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
static const char *const day_names_long[] = { "Monday", "Tuesday",  "Wednesday", "Thursday",
                                              "Friday", "Saturday", "Sunday" };

static int name_index(const char *s, const char *const *names, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(s, names[i]) == 0)
                        return (int) i;
        return -1;
}

static bool year_is_leap(int64_t y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d) {
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static int date_to_unix(int64_t year, const char *month, int day, int h, int mi, int s, int64_t *ret) {
        static const int month_days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int m = name_index(month, month_names, ELEMENTSOF(month_names));

        if (m < 0 || year < 1970 || year > 9999 || day < 1 || day > month_days[m] + (m == 1 && year_is_leap(year)) ||
            h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60)
                return -EINVAL;
        *ret = days_from_civil(year, m + 1, day) * 86400 + h * 3600 + mi * 60 + MIN(s, 59);
        return 0;
}

/* The three forms RFC 9110 §5.6.7 says a recipient must accept. */
static int http_date_parse(const char *v, time_t now, int64_t *ret) {
        char wday[16], month[4], zone[4];
        int day, year, h, mi, s, n = -1;

        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (sscanf(v, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wday, &day, month, &year, &h, &mi, &s,
                   zone, &n) == 8 &&
            n >= 0 && v[n] == 0)
                return name_index(wday, day_names, ELEMENTSOF(day_names)) >= 0 && strcmp(zone, "GMT") == 0
                               ? date_to_unix(year, month, day, h, mi, s, ret)
                               : -EINVAL;

        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT. A two-digit year is the one within 50 years
         * of now: more than 50 years ahead is the most recent past year with those digits. */
        n = -1;
        if (sscanf(v, "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d %3[A-Z]%n", wday, &day, month, &year, &h, &mi, &s,
                   zone, &n) == 8 &&
            n >= 0 && v[n] == 0) {
                struct tm tm;
                int64_t this_year, y;

                if (name_index(wday, day_names_long, ELEMENTSOF(day_names_long)) < 0 || strcmp(zone, "GMT") != 0 ||
                    year < 0 || !gmtime_r(&now, &tm))
                        return -EINVAL;
                this_year = (int64_t) tm.tm_year + 1900;
                y = this_year - this_year % 100 + year;
                if (y > this_year + 50)
                        y -= 100;
                else if (y <= this_year - 50)
                        y += 100;
                return date_to_unix(y, month, day, h, mi, s, ret);
        }

        /* asctime: Sun Nov  6 08:49:37 1994 */
        n = -1;
        if (sscanf(v, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wday, month, &day, &h, &mi, &s, &year, &n) == 7 &&
            n >= 0 && v[n] == 0)
                return name_index(wday, day_names, ELEMENTSOF(day_names)) >= 0
                               ? date_to_unix(year, month, day, h, mi, s, ret)
                               : -EINVAL;

        return -EINVAL;
}

int aad_parse_retry_after(const char *value, time_t now, usec_t *ret) {
        char buf[64];
        size_t n;
        int64_t when, delta;
        int r;

        if (!value)
                return -EINVAL;
        while (*value == ' ' || *value == '\t')
                value++;
        n = strlen(value);
        while (n > 0 && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r' || value[n - 1] == '\n'))
                n--;
        if (n == 0 || n >= sizeof buf)
                return -EINVAL;
        memcpy(buf, value, n);
        buf[n] = 0;

        if (strspn(buf, "0123456789") == n) {
                delta = 0;
                for (size_t i = 0; i < n && delta < AAD_RETRY_AFTER_MAX; i++)
                        delta = delta * 10 + (buf[i] - '0');
        } else {
                r = http_date_parse(buf, now, &when);
                if (r < 0)
                        return r;
                delta = when > (int64_t) now ? when - (int64_t) now : 0;
        }

        *ret = (usec_t) MIN(delta, AAD_RETRY_AFTER_MAX) * USEC_PER_SEC;
        return 0;
}
