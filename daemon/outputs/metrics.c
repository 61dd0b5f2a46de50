/* Prometheus text exposition of profile snapshots. Pure: no clock, no I/O but the memory stream. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outputs/metrics.h"

#define PREFIX "aksspark_tokend_"

/* A label value as the text format wants it: \\, \" and \n escaped, valid UTF-8. */
static void put_label_value(FILE *f, const char *s) {
        size_t n = s ? strlen(s) : 0;

        for (size_t i = 0; i < n;) {
                size_t l = utf8_sequence_length((const unsigned char *) s + i, n - i);

                if (l == 0) {
                        fputs("\xef\xbf\xbd", f);
                        i++;
                        continue;
                }
                if (s[i] == '\\')
                        fputs("\\\\", f);
                else if (s[i] == '"')
                        fputs("\\\"", f);
                else if (s[i] == '\n')
                        fputs("\\n", f);
                else
                        fwrite(s + i, 1, l, f);
                i += l;
        }
}

typedef struct Label {
        const char *name;
        const char *value;
} Label;

/* name{user="...",labels...} value */
static void put_sample(FILE *f, const MetricsDaemon *d, const char *name, const Label *labels, size_t n,
                       uint64_t value) {
        bool first = true;

        fputs(PREFIX, f);
        fputs(name, f);
        if (d->user || n > 0)
                fputc('{', f);
        if (d->user) {
                fputs("user=\"", f);
                put_label_value(f, d->user);
                fputc('"', f);
                first = false;
        }
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s%s=\"", first ? "" : ",", labels[i].name);
                put_label_value(f, labels[i].value);
                fputc('"', f);
                first = false;
        }
        if (d->user || n > 0)
                fputc('}', f);
        fprintf(f, " %" PRIu64 "\n", value);
}

static void put_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", name, help, name, type);
}

static uint64_t unix_seconds(usec_t t) {
        return t / USEC_PER_SEC;
}

int metrics_render(const MetricsDaemon *d, const ProfileSnapshot *profiles, size_t n, char **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;

        put_family(f, "build_info", "gauge", "The daemon's version, as a label; always 1.");
        put_sample(f, d, "build_info", (Label[]) { { "version", d->version ?: "unknown" } }, 1, 1);

        put_family(f, "start_time_seconds", "gauge", "When the daemon started, in unix seconds.");
        if (d->start_time > 0)
                put_sample(f, d, "start_time_seconds", NULL, 0, unix_seconds(d->start_time));

        put_family(
                f, "profile_state", "gauge",
                "The profile's state: 1 for the current one (valid, refreshing, login_required, expired, error), 0 for the others.");
        for (size_t i = 0; i < n; i++)
                for (ProfileState s = 0; s < _PROFILE_STATE_MAX; s++)
                        put_sample(
                                f, d, "profile_state",
                                (Label[]) { { "profile", profiles[i].name }, { "state", profile_state_to_string(s) } },
                                2, profiles[i].state == s);

        put_family(f, "token_expiry_timestamp_seconds", "gauge",
                   "When the profile's access token expires, in unix seconds; absent while there is none.");
        for (size_t i = 0; i < n; i++)
                if (profiles[i].expires_on > 0)
                        put_sample(f, d, "token_expiry_timestamp_seconds",
                                   (Label[]) { { "profile", profiles[i].name } }, 1,
                                   unix_seconds(profiles[i].expires_on));

        put_family(f, "refreshes_total", "counter",
                   "Refreshes since the daemon started, by result (ok, transient, login_required, config_error).");
        for (size_t i = 0; i < n; i++)
                for (RefreshResult r = 0; r < _REFRESH_RESULT_MAX; r++)
                        put_sample(f, d, "refreshes_total",
                                   (Label[]) { { "profile", profiles[i].name },
                                               { "result", refresh_result_to_string(r) } },
                                   2, profiles[i].refreshes[r]);

        put_family(f, "last_refresh_timestamp_seconds", "gauge",
                   "When the profile last got a new token, in unix seconds; absent before the first.");
        for (size_t i = 0; i < n; i++)
                if (profiles[i].last_refresh > 0)
                        put_sample(f, d, "last_refresh_timestamp_seconds",
                                   (Label[]) { { "profile", profiles[i].name } }, 1,
                                   unix_seconds(profiles[i].last_refresh));

        put_family(f, "output_ok", "gauge",
                   "Whether the last write of the output succeeded (1) or failed (0); absent before the first.");
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < profiles[i].n_outputs; j++) {
                        const OutputSnapshot *o = &profiles[i].outputs[j];
                        if (o->attempted)
                                put_sample(f, d, "output_ok",
                                           (Label[]) { { "profile", profiles[i].name },
                                                       { "path", o->path },
                                                       { "kind", o->kind } },
                                           3, o->ok);
                }

        put_family(f, "output_last_write_timestamp_seconds", "gauge",
                   "When the output was last written or tried, in unix seconds.");
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < profiles[i].n_outputs; j++) {
                        const OutputSnapshot *o = &profiles[i].outputs[j];
                        if (o->attempted && o->last_attempt > 0)
                                put_sample(f, d, "output_last_write_timestamp_seconds",
                                           (Label[]) { { "profile", profiles[i].name },
                                                       { "path", o->path },
                                                       { "kind", o->kind } },
                                           3, unix_seconds(o->last_attempt));
                }

        put_family(f, "output_last_success_timestamp_seconds", "gauge",
                   "When the output was last written successfully, in unix seconds; absent before the first.");
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < profiles[i].n_outputs; j++) {
                        const OutputSnapshot *o = &profiles[i].outputs[j];
                        if (o->last_success > 0)
                                put_sample(f, d, "output_last_success_timestamp_seconds",
                                           (Label[]) { { "profile", profiles[i].name },
                                                       { "path", o->path },
                                                       { "kind", o->kind } },
                                           3, unix_seconds(o->last_success));
                }

        if (ferror(f)) {
                fclose(f);
                return -ENOMEM;
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}
