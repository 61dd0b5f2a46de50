/* The configuration's value checks: pure predicates over one string each (a GUID, a tenant, an
 * authority URL), the path clean-up, and the "did you mean" key guess. */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "base/macro.h"
#include "base/util.h"
#include "shared/config-values.h"

static unsigned edit_distance(const char *a, const char *b) {
        unsigned row[33];
        size_t la = strlen(a), lb = strlen(b);

        if (la > 32 || lb > 32)
                return UINT_MAX;
        for (size_t j = 0; j <= lb; j++)
                row[j] = (unsigned) j;
        for (size_t i = 1; i <= la; i++) {
                unsigned diag = row[0];
                row[0] = (unsigned) i;
                for (size_t j = 1; j <= lb; j++) {
                        unsigned up = row[j];
                        unsigned cost = tolower((unsigned char) a[i - 1]) != tolower((unsigned char) b[j - 1]);
                        row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1), diag + cost);
                        diag = up;
                }
        }
        return row[lb];
}

const char *config_closest_key(const char *name, const char *const *keys, size_t n) {
        const char *best = NULL;
        unsigned best_d = 3; /* a typo, not a different word */

        for (size_t i = 0; i < n; i++) {
                unsigned d = edit_distance(name, keys[i]);
                if (d < best_d) {
                        best_d = d;
                        best = keys[i];
                }
        }
        return best;
}

void config_path_simplify(char *path) {
        const char *r = path;
        char *w = path;

        while (*r) {
                const char *c;
                size_t n;

                while (*r == '/')
                        r++;
                c = r;
                while (*r && *r != '/')
                        r++;
                n = (size_t) (r - c);
                if (n == 0 || (n == 1 && c[0] == '.'))
                        continue;
                *w++ = '/';
                memmove(w, c, n);
                w += n;
        }
        if (w == path)
                *w++ = '/';
        *w = 0;
}

static bool is_hex_run(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!isxdigit((unsigned char) s[i]))
                        return false;
        return true;
}

bool config_is_guid(const char *s) {
        return strlen(s) == 36 && is_hex_run(s, 8) && s[8] == '-' && is_hex_run(s + 9, 4) && s[13] == '-' &&
               is_hex_run(s + 14, 4) && s[18] == '-' && is_hex_run(s + 19, 4) && s[23] == '-' && is_hex_run(s + 24, 12);
}

/* A DNS name of two labels or more: it ends up in URL paths, so nothing else may pass. */
static bool is_domain(const char *s) {
        size_t labels = 0, total = strlen(s);

        if (total == 0 || total > 253)
                return false;
        for (const char *l = s;;) {
                size_t n = strspn(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");
                if (n == 0 || n > 63 || l[0] == '-' || l[n - 1] == '-')
                        return false;
                labels++;
                if (l[n] == 0)
                        break;
                if (l[n] != '.')
                        return false;
                l += n + 1;
        }
        return labels >= 2;
}

bool config_tenant_is_valid(const char *s) {
        return (s && streq(s, "organizations")) || config_is_guid(s) || is_domain(s);
}

/* host[:port], where host may be an [IPv6] literal. */
bool config_authority_is_valid(const char *a, size_t n) {
        size_t i = 0;

        if (n == 0)
                return false;
        if (a[0] == '[') {
                const char *close = memchr(a, ']', n);
                if (!close || close == a + 1)
                        return false;
                for (const char *c = a + 1; c < close; c++)
                        if (!isxdigit((unsigned char) *c) && *c != ':' && *c != '.')
                                return false;
                i = (size_t) (close - a) + 1;
        } else {
                while (i < n && (isalnum((unsigned char) a[i]) || a[i] == '-' || a[i] == '.'))
                        i++;
                if (i == 0)
                        return false;
        }
        if (i == n)
                return true;
        if (a[i] != ':' || i + 1 == n || n - i - 1 > 5)
                return false;
        for (i++; i < n; i++)
                if (!isdigit((unsigned char) a[i]))
                        return false;
        return true;
}

bool config_authority_is_loopback(const char *a, size_t n) {
        static const char *const hosts[] = { "127.0.0.1", "localhost", "[::1]" };

        for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
                size_t l = strlen(hosts[i]);
                if (n >= l && strncasecmp(a, hosts[i], l) == 0 && (n == l || a[l] == ':'))
                        return true;
        }
        return false;
}

/* https://host[:port][/path], or http:// to this machine only (tests, local proxies). */
bool config_is_visible_ascii(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= 0x20 || (unsigned char) *s >= 0x7f)
                        return false;
        return true;
}
