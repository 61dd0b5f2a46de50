/* Fuzzes the metrics renderer: any snapshot (names, paths, kinds, versions of arbitrary bytes,
 * any times and counts) renders to text a Prometheus parser accepts: every line a HELP or TYPE
 * comment or one sample `name{label="value",...} integer`, every label value escaped so that it
 * reads back as the input (with bad UTF-8 as U+FFFD), one sample per state per profile. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "outputs/metrics.h"

#define MAX_PROFILES 4
#define MAX_OUTPUTS 3

/* Consumes the input: NUL-separated strings and 8-byte numbers taken in turn. */
typedef struct Reader {
        const uint8_t *p;
        size_t left;
} Reader;

static char *read_string(Reader *r) {
        const uint8_t *end = memchr(r->p, 0, r->left);
        size_t n = end ? (size_t) (end - r->p) : r->left;
        char *s = fuzz_strndup(r->p, n);

        r->p += MIN(n + 1, r->left);
        r->left -= MIN(n + 1, r->left);
        return s;
}

static uint64_t read_u64(Reader *r) {
        uint64_t v = 0;
        size_t n = MIN(r->left, sizeof v);

        memcpy(&v, r->p, n);
        r->p += n;
        r->left -= n;
        return v;
}

/* s as the renderer must show it once unescaped: bad bytes as U+FFFD. */
static char *utf8_fixed(const char *s) {
        size_t n = strlen(s);
        char *out = malloc(n * 3 + 1), *o = out;

        FUZZ_CHECK(out);
        for (size_t i = 0; i < n;) {
                size_t l = utf8_sequence_length((const unsigned char *) s + i, n - i);
                if (l == 0) {
                        memcpy(o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                } else {
                        memcpy(o, s + i, l);
                        o += l;
                        i += l;
                }
        }
        *o = 0;
        return out;
}

static bool is_name_char(char c, bool first) {
        return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
}

/* One sample line (without '\n'): checks its syntax and returns the unescaped value of the
 * label "profile" (malloc'd, NULL if none) in *ret_profile. */
static void check_sample(const char *l, size_t len, const char *user, char **ret_profile) {
        const char *end = l + len, *q = l;
        char *profile = NULL;

        FUZZ_CHECK(len > 0 && is_name_char(*q, true));
        while (q < end && is_name_char(*q, false))
                q++;
        if (q < end && *q == '{') {
                q++;
                for (bool first = true; q < end && *q != '}'; first = false) {
                        const char *name;
                        size_t name_len;
                        char *value = malloc(len + 1), *v = value;

                        FUZZ_CHECK(value);
                        if (!first) {
                                FUZZ_CHECK(*q == ',');
                                q++;
                        }
                        name = q;
                        FUZZ_CHECK(q < end && is_name_char(*q, true));
                        while (q < end && is_name_char(*q, false))
                                q++;
                        name_len = (size_t) (q - name);
                        FUZZ_CHECK(q + 1 < end && q[0] == '=' && q[1] == '"');
                        q += 2;
                        while (q < end && *q != '"') {
                                if (*q == '\\') {
                                        FUZZ_CHECK(q + 1 < end);
                                        FUZZ_CHECK(q[1] == '\\' || q[1] == '"' || q[1] == 'n');
                                        *v++ = q[1] == 'n' ? '\n' : q[1];
                                        q += 2;
                                } else
                                        *v++ = *q++;
                        }
                        FUZZ_CHECK(q < end && *q == '"');
                        q++;
                        *v = 0;
                        /* The value is valid UTF-8: fixing it changes nothing. */
                        char *fixed = utf8_fixed(value);
                        FUZZ_CHECK(strcmp(fixed, value) == 0);
                        free(fixed);
                        if (first && user) {
                                char *want = utf8_fixed(user);
                                FUZZ_CHECK(name_len == 4 && memcmp(name, "user", 4) == 0);
                                FUZZ_CHECK(strcmp(value, want) == 0);
                                free(want);
                        }
                        if (name_len == 7 && memcmp(name, "profile", 7) == 0) {
                                FUZZ_CHECK(!profile);
                                profile = value;
                        } else
                                free(value);
                }
                FUZZ_CHECK(q < end && *q == '}');
                q++;
        }
        FUZZ_CHECK(q < end && *q == ' ');
        q++;
        FUZZ_CHECK(q < end);
        for (; q < end; q++)
                FUZZ_CHECK(*q >= '0' && *q <= '9');
        *ret_profile = profile;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Reader r = { data, size };
        ProfileSnapshot p[MAX_PROFILES] = {};
        OutputSnapshot o[MAX_PROFILES][MAX_OUTPUTS] = {};
        char *strings[64];
        size_t n_strings = 0, n, n_state_lines = 0;
        MetricsDaemon d = {};
        char *text = NULL;
        uint64_t flags;

        flags = read_u64(&r);
        n = flags % (MAX_PROFILES + 1);
        d.version = strings[n_strings++] = read_string(&r);
        d.user = flags & 0x100 ? (strings[n_strings++] = read_string(&r)) : NULL;
        d.start_time = read_u64(&r);
        for (size_t i = 0; i < n; i++) {
                uint64_t f = read_u64(&r);

                p[i].name = strings[n_strings++] = read_string(&r);
                p[i].state = (ProfileState) (f % (_PROFILE_STATE_MAX + 1)); /* one past the end too */
                p[i].expires_on = read_u64(&r);
                p[i].last_refresh = f & 0x10 ? read_u64(&r) : 0;
                for (size_t k = 0; k < _REFRESH_RESULT_MAX; k++)
                        p[i].refreshes[k] = f & (0x20 << k) ? read_u64(&r) : 0;
                p[i].n_outputs = (f >> 12) % (MAX_OUTPUTS + 1);
                p[i].outputs = o[i];
                for (size_t j = 0; j < p[i].n_outputs; j++) {
                        uint64_t g = read_u64(&r);
                        o[i][j].path = strings[n_strings++] = read_string(&r);
                        o[i][j].kind = strings[n_strings++] = read_string(&r);
                        o[i][j].attempted = g & 1;
                        o[i][j].ok = g & 2;
                        o[i][j].last_attempt = g & 4 ? read_u64(&r) : 0;
                        o[i][j].last_success = g & 8 ? read_u64(&r) : 0;
                }
        }

        FUZZ_CHECK(metrics_render(&d, p, n, &text) == 0);
        FUZZ_CHECK(text);
        FUZZ_CHECK(*text && text[strlen(text) - 1] == '\n');

        for (const char *l = text; *l;) {
                const char *nl = strchr(l, '\n');
                size_t len = (size_t) (nl - l);

                FUZZ_CHECK(nl);
                if (len >= 7 && (memcmp(l, "# HELP ", 7) == 0 || memcmp(l, "# TYPE ", 7) == 0))
                        FUZZ_CHECK(memcmp(l + 7, "aksspark_tokend_", 16) == 0);
                else {
                        char *profile = NULL;

                        FUZZ_CHECK(memcmp(l, "aksspark_tokend_", 16) == 0);
                        check_sample(l, len, d.user, &profile);
                        if (len > 30 && memcmp(l, "aksspark_tokend_profile_state{", 30) == 0) {
                                /* Five states per profile, in the order of the snapshot. */
                                size_t i = n_state_lines++ / _PROFILE_STATE_MAX;
                                char *want;
                                FUZZ_CHECK(i < n && profile);
                                want = utf8_fixed(p[i].name);
                                FUZZ_CHECK(strcmp(profile, want) == 0);
                                free(want);
                        }
                        free(profile);
                }
                l = nl + 1;
        }
        FUZZ_CHECK(n_state_lines == n * _PROFILE_STATE_MAX);

        free(text);
        for (size_t i = 0; i < n_strings; i++)
                free(strings[i]);
        return 0;
}
