/* Fuzzes metrics_join(): any texts (split at NUL bytes into up to three instances, the users
 * fixed as the kernel would give them) join into an exposition whose every sample is an
 * aksspark_tokend_ series labelled first with one instance's user and with no other user label
 * (relabelling it as that user changes nothing), and whose every other line is a HELP or TYPE
 * comment of an aksspark_tokend_ family. */
#include <string.h>

#include "fuzz.h"
#include "shared/metrics-join.h"

static const char *const users[] = { "alice", "bob", "car\"ol\\" };

/* Which user's label comes first, or -1. */
static int first_user(const char *line, size_t len) {
        const char *brace = memchr(line, '{', len);

        if (!brace)
                return -1;
        for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
                static const char *const escaped[] = { "user=\"alice\"", "user=\"bob\"", "user=\"car\\\"ol\\\\\"" };
                size_t l = strlen(escaped[i]);

                if ((size_t) (line + len - brace - 1) >= l && memcmp(brace + 1, escaped[i], l) == 0)
                        return (int) i;
        }
        return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *copy = fuzz_strndup(data, size), *out = NULL, *p;
        MetricsInstance in[3] = {};
        size_t n = 0, off = 0;

        while (n < 3 && off <= size) {
                size_t l = strnlen(copy + off, size - off);

                in[n] = (MetricsInstance) { .user = users[n],
                                            .text = (n == 1 && l == 0) ? NULL : copy + off,
                                            .len = l };
                n++;
                off += l + 1;
        }
        if (metrics_join(in, n, &out) == 0) {
                for (p = out; *p;) {
                        char *nl = strchr(p, '\n'), *again = NULL;
                        size_t len;

                        FUZZ_CHECK(nl);
                        len = (size_t) (nl - p);
                        if (len >= 7 && (memcmp(p, "# HELP ", 7) == 0 || memcmp(p, "# TYPE ", 7) == 0))
                                FUZZ_CHECK(strncmp(p + 7, METRICS_JOIN_PREFIX, strlen(METRICS_JOIN_PREFIX)) == 0);
                        else {
                                int u = first_user(p, len);

                                FUZZ_CHECK(strncmp(p, METRICS_JOIN_PREFIX, strlen(METRICS_JOIN_PREFIX)) == 0);
                                FUZZ_CHECK(u >= 0);
                                /* No other user label: relabelling as the same user changes nothing. */
                                FUZZ_CHECK(metrics_relabel_sample(p, len, users[u], &again) == 0);
                                FUZZ_CHECK(strlen(again) == len && memcmp(again, p, len) == 0);
                                free(again);
                        }
                        p = nl + 1;
                }
                free(out);
        }
        free(copy);
        return 0;
}
