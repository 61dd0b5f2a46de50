/* One Prometheus exposition from every jump-host instance's, with user labels from the kernel's
 * word rather than the text's. Pure: no I/O, no clock, no globals. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "base/util.h"
#include "shared/metrics-join.h"

static bool is_name_start(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool is_name_char(char c) {
        return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Length of the metric or label name at s (0: none). Label names take no ':', which only
 * metric names may hold; close enough for dropping what is not ours. */
static size_t name_length(const char *s, size_t len) {
        size_t i = 0;

        if (len == 0 || !is_name_start(s[0]))
                return 0;
        while (i < len && is_name_char(s[i]))
                i++;
        return i;
}

static size_t skip_blanks(const char *s, size_t len, size_t i) {
        while (i < len && (s[i] == ' ' || s[i] == '\t'))
                i++;
        return i;
}

/* A quoted label value at s[i] == '"': index just past the closing quote, or 0 when unclosed,
 * badly escaped or holding a raw newline. */
static size_t quoted_end(const char *s, size_t len, size_t i) {
        for (i++; i < len; i++) {
                if (s[i] == '"')
                        return i + 1;
                if (s[i] == '\n')
                        return 0;
                if (s[i] == '\\') {
                        if (i + 1 >= len || (s[i + 1] != '\\' && s[i + 1] != '"' && s[i + 1] != 'n'))
                                return 0;
                        i++;
                }
        }
        return 0;
}

/* A number as the text format writes one: a float (or NaN, +Inf, -Inf). */
static bool is_number(const char *s, size_t len, bool integer) {
        char buf[64], *end;

        if (len == 0 || len >= sizeof(buf))
                return false;
        memcpy(buf, s, len);
        buf[len] = 0;
        errno = 0;
        if (integer)
                (void) strtoll(buf, &end, 10);
        else
                (void) strtod(buf, &end);
        return *end == 0 && (!integer || errno == 0);
}

static void put_label_value(FILE *f, const char *s) {
        for (; *s; s++)
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
}

static int memstream_finish(FILE *f, char **text, char **ret) {
        if (fclose(f) != 0 || !*text) {
                free(*text);
                *text = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(*text);
        return 0;
}

int metrics_relabel_sample(const char *line, size_t len, const char *user, char **ret) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0, name_len, i, value_start, value_end;
        FILE *f;

        name_len = name_length(line, len);
        if (name_len == 0)
                return -EBADMSG;
        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        fwrite(line, 1, name_len, f);
        fputs("{user=\"", f);
        put_label_value(f, user);
        fputc('"', f);

        i = name_len;
        if (i < len && line[i] == '{') {
                i = skip_blanks(line, len, i + 1);
                while (i < len && line[i] != '}') {
                        size_t l = name_length(line + i, len - i), label_start = i, end;

                        if (l == 0)
                                goto bad;
                        i = skip_blanks(line, len, i + l);
                        if (i >= len || line[i] != '=')
                                goto bad;
                        i = skip_blanks(line, len, i + 1);
                        if (i >= len || line[i] != '"' || (end = quoted_end(line, len, i)) == 0)
                                goto bad;
                        if (!(l == 4 && memcmp(line + label_start, "user", 4) == 0)) {
                                fputc(',', f);
                                fwrite(line + label_start, 1, l, f);
                                fputc('=', f);
                                fwrite(line + i, 1, end - i, f);
                        }
                        i = skip_blanks(line, len, end);
                        if (i < len && line[i] == ',')
                                i = skip_blanks(line, len, i + 1);
                        else if (i < len && line[i] != '}')
                                goto bad;
                }
                if (i >= len)
                        goto bad;
                i++;
        }
        fputc('}', f);

        /* " value [timestamp]" */
        if (i >= len || (line[i] != ' ' && line[i] != '\t'))
                goto bad;
        value_start = skip_blanks(line, len, i);
        for (value_end = value_start; value_end < len && line[value_end] != ' ' && line[value_end] != '\t';)
                value_end++;
        if (!is_number(line + value_start, value_end - value_start, false))
                goto bad;
        fputc(' ', f);
        fwrite(line + value_start, 1, value_end - value_start, f);
        i = skip_blanks(line, len, value_end);
        if (i < len) {
                size_t ts_end = i;

                while (ts_end < len && line[ts_end] != ' ' && line[ts_end] != '\t')
                        ts_end++;
                if (!is_number(line + i, ts_end - i, true) || skip_blanks(line, len, ts_end) != len)
                        goto bad;
                fputc(' ', f);
                fwrite(line + i, 1, ts_end - i, f);
        }
        return memstream_finish(f, &text, ret);
bad:
        fclose(f);
        return -EBADMSG;
}

typedef struct Family {
        char *name;
        char *help; /* the text after the name, NULL if none came */
        char *type;
        char *samples; /* relabelled lines, each ending in \n */
        size_t samples_len;
        FILE *f;
} Family;

/* Each Family on its own: its memory stream points at its samples and samples_len. */
typedef struct Families {
        Family **items;
        size_t n;
} Families;

static void families_done(Families *fs) {
        for (size_t i = 0; i < fs->n; i++) {
                if (fs->items[i]->f)
                        fclose(fs->items[i]->f);
                free(fs->items[i]->name);
                free(fs->items[i]->help);
                free(fs->items[i]->type);
                free(fs->items[i]->samples);
                free(fs->items[i]);
        }
        free(fs->items);
}

static bool name_is_ours(const char *name, size_t len) {
        size_t plen = strlen(METRICS_JOIN_PREFIX);

        return len > plen && memcmp(name, METRICS_JOIN_PREFIX, plen) == 0 &&
               !(len == strlen(METRICS_JOIN_UP) && memcmp(name, METRICS_JOIN_UP, len) == 0);
}

static Family *family_find(Families *fs, const char *name, size_t len) {
        for (size_t i = 0; i < fs->n; i++)
                if (strlen(fs->items[i]->name) == len && memcmp(fs->items[i]->name, name, len) == 0)
                        return fs->items[i];
        return NULL;
}

static Family *family_get(Families *fs, const char *name, size_t len) {
        Family *fam = family_find(fs, name, len), **items;

        if (fam)
                return fam;
        items = realloc(fs->items, (fs->n + 1) * sizeof(Family *));
        if (!items)
                return NULL;
        fs->items = items;
        fam = calloc(1, sizeof(Family));
        if (!fam)
                return NULL;
        fam->name = strndup(name, len);
        fam->f = fam->name ? open_memstream(&fam->samples, &fam->samples_len) : NULL;
        if (!fam->f) {
                free(fam->name);
                free(fam);
                return NULL;
        }
        fs->items[fs->n++] = fam;
        return fam;
}

/* The family a sample belongs to: its own name's, or a histogram's or summary's for its
 * _bucket, _sum and _count series. */
static Family *family_of_sample(Families *fs, const char *name, size_t len) {
        static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
        Family *fam = family_find(fs, name, len);

        if (fam)
                return fam;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t sl = strlen(suffixes[i]);

                if (len > sl && memcmp(name + len - sl, suffixes[i], sl) == 0 &&
                    (fam = family_find(fs, name, len - sl)) && fam->type &&
                    (streq(fam->type, "histogram") || streq(fam->type, "summary")))
                        return fam;
        }
        return family_get(fs, name, len);
}

static bool type_is_known(const char *s, size_t len) {
        static const char *const types[] = { "counter", "gauge", "histogram", "summary", "untyped" };

        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (strlen(types[i]) == len && memcmp(s, types[i], len) == 0)
                        return true;
        return false;
}

/* "# HELP name text" or "# TYPE name type": recorded once per family, the first one seen. */
static int add_comment(Families *fs, const char *line, size_t len) {
        bool help;
        size_t i, l;
        Family *fam;
        char **slot;

        if (len >= 7 && memcmp(line, "# HELP ", 7) == 0)
                help = true;
        else if (len >= 7 && memcmp(line, "# TYPE ", 7) == 0)
                help = false;
        else
                return 0;
        i = skip_blanks(line, len, 7);
        l = name_length(line + i, len - i);
        if (l == 0 || !name_is_ours(line + i, l))
                return 0;
        if (i + l < len && line[i + l] != ' ')
                return 0;
        fam = family_get(fs, line + i, l);
        if (!fam)
                return -ENOMEM;
        i = skip_blanks(line, len, i + l);
        if (!help && !type_is_known(line + i, len - i))
                return 0;
        slot = help ? &fam->help : &fam->type;
        if (*slot)
                return 0;
        *slot = strndup(line + i, len - i);
        return *slot ? 0 : -ENOMEM;
}

static int add_instance(Families *fs, const MetricsInstance *m) {
        const char *p = m->text, *end = m->text + m->len;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p), l;
                _cleanup_free_ char *sample = NULL;
                Family *fam;
                int r;

                if (len > 0 && p[0] == '#')
                        r = add_comment(fs, p, len);
                else if ((l = name_length(p, len)) > 0 && name_is_ours(p, l) &&
                         metrics_relabel_sample(p, len, m->user, &sample) >= 0) {
                        fam = family_of_sample(fs, p, l);
                        r = fam ? 0 : -ENOMEM;
                        if (fam) {
                                fputs(sample, fam->f);
                                fputc('\n', fam->f);
                        }
                } else
                        r = 0; /* not a sample of ours: dropped */
                if (r < 0)
                        return r;
                p += len + 1;
        }
        return 0;
}

static bool user_seen_before(const MetricsInstance *instances, size_t i) {
        for (size_t k = 0; k < i; k++)
                if (streq(instances[k].user, instances[i].user))
                        return true;
        return false;
}

int metrics_join(const MetricsInstance *instances, size_t n, char **ret) {
        _cleanup_free_ char *text = NULL;
        Families fs = {};
        size_t size = 0;
        FILE *f;
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++)
                /* A user answers for one instance only: a second copy of the same series would make
                 * node_exporter drop the whole file. */
                if (instances[i].text && !user_seen_before(instances, i))
                        r = add_instance(&fs, &instances[i]);
        if (r < 0) {
                families_done(&fs);
                return r;
        }

        f = open_memstream(&text, &size);
        if (!f) {
                families_done(&fs);
                return -ENOMEM;
        }
        for (size_t i = 0; i < fs.n; i++) {
                Family *fam = fs.items[i];

                if (fclose(TAKE_PTR(fam->f)) != 0 || !fam->samples) {
                        r = -ENOMEM;
                        continue;
                }
                if (fam->samples_len == 0)
                        continue;
                if (fam->help)
                        fprintf(f, "# HELP %s %s\n", fam->name, fam->help);
                if (fam->type)
                        fprintf(f, "# TYPE %s %s\n", fam->name, fam->type);
                fputs(fam->samples, f);
        }
        fputs("# HELP " METRICS_JOIN_UP " Whether the person's aksspark-tokend answered within 1 s.\n"
              "# TYPE " METRICS_JOIN_UP " gauge\n",
              f);
        for (size_t i = 0; i < n; i++) {
                if (user_seen_before(instances, i))
                        continue;
                fputs(METRICS_JOIN_UP "{user=\"", f);
                put_label_value(f, instances[i].user);
                fprintf(f, "\"} %d\n", instances[i].text ? 1 : 0);
        }
        families_done(&fs);
        if (r < 0) {
                fclose(f);
                return r;
        }
        return memstream_finish(f, &text, ret);
}
