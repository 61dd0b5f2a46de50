/* An independent model of what Spark reads from a spark.properties file: the bytes decoded as
 * UTF-8 (InputStreamReader), then java.util.Properties.load (JDK 17 LineReader, load0,
 * loadConvert) over the chars. Written from the JDK sources, not from daemon/outputs/props.c, so the
 * props fuzzer can compare the two. Slow and simple on purpose. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

typedef struct PropsEntry {
        uint16_t *key, *value; /* UTF-16, as Java's String */
        size_t key_len, value_len;
        size_t order; /* position in the file: the last put() of a key wins */
} PropsEntry;

typedef struct PropsModel {
        PropsEntry *entries; /* sorted by key after props_model_load(), one per key */
        size_t n;
        bool malformed; /* load() throws (a malformed \uXXXX) */
        /* The last logical line is empty: a lone backslash at the very end, read as put("", ""). */
        bool ends_empty;
        /* Input offset where the first logical line whose key is `key` starts, or SIZE_MAX. */
        size_t first_key_line;
} PropsModel;

typedef struct Chars {
        uint16_t *c;
        size_t *pos; /* input byte offset each char came from */
        size_t n;
} Chars;

static void chars_push(Chars *s, uint16_t c, size_t pos) {
        /* Every input byte gives at most two chars: the buffers are sized for that. */
        s->c[s->n] = c;
        s->pos[s->n] = pos;
        s->n++;
}

/* Java's UTF-8 decoder with REPLACE: one U+FFFD per maximal ill-formed subsequence (as
 * sun.nio.cs.UTF_8 counts them). */
static void props_model_decode(const uint8_t *in, size_t len, Chars *ret) {
        ret->c = malloc((2 * len + 1) * sizeof *ret->c);
        ret->pos = malloc((2 * len + 1) * sizeof *ret->pos);
        ret->n = 0;
        FUZZ_CHECK(ret->c && ret->pos);

        for (size_t i = 0; i < len;) {
                uint8_t b = in[i];
                size_t need, k;
                uint32_t cp;
                uint8_t lo = 0x80, hi = 0xbf;

                if (b < 0x80) {
                        chars_push(ret, b, i++);
                        continue;
                }
                if (b >= 0xc2 && b <= 0xdf) {
                        need = 1;
                        cp = b & 0x1f;
                } else if (b >= 0xe0 && b <= 0xef) {
                        need = 2;
                        cp = b & 0x0f;
                        /* Java takes ED A0..BF as the start of a sequence (and then
                         * replaces the whole surrogate), where Unicode would stop at A0. */
                        if (b == 0xe0)
                                lo = 0xa0;
                } else if (b >= 0xf0 && b <= 0xf4) {
                        need = 3;
                        cp = b & 0x07;
                        if (b == 0xf0)
                                lo = 0x90;
                        else if (b == 0xf4)
                                hi = 0x8f;
                } else {
                        chars_push(ret, 0xfffd, i++);
                        continue;
                }
                for (k = 1; k <= need; k++) {
                        uint8_t c;

                        if (i + k >= len)
                                break;
                        c = in[i + k];
                        if (c < lo || c > hi)
                                break;
                        lo = 0x80;
                        hi = 0xbf;
                        cp = (cp << 6) | (c & 0x3f);
                }
                if (k <= need) {
                        chars_push(ret, 0xfffd, i);
                        i += k;
                        continue;
                }
                if (cp >= 0xd800 && cp <= 0xdfff)
                        chars_push(ret, 0xfffd, i);
                else if (cp >= 0x10000) {
                        chars_push(ret, (uint16_t) (0xd800 | ((cp - 0x10000) >> 10)), i);
                        chars_push(ret, (uint16_t) (0xdc00 | ((cp - 0x10000) & 0x3ff)), i);
                } else
                        chars_push(ret, (uint16_t) cp, i);
                i += need + 1;
        }
}

/* Strict UTF-8: what the decoder above takes without a replacement. */
static bool model_utf8_valid(const uint8_t *in, size_t len) {
        for (size_t i = 0; i < len;) {
                uint8_t b = in[i], lo = 0x80, hi = 0xbf;
                size_t need;

                if (b < 0x80) {
                        i++;
                        continue;
                }
                if (b >= 0xc2 && b <= 0xdf)
                        need = 1;
                else if (b >= 0xe0 && b <= 0xef) {
                        need = 2;
                        lo = b == 0xe0 ? 0xa0 : 0x80;
                        hi = b == 0xed ? 0x9f : 0xbf;
                } else if (b >= 0xf0 && b <= 0xf4) {
                        need = 3;
                        lo = b == 0xf0 ? 0x90 : 0x80;
                        hi = b == 0xf4 ? 0x8f : 0xbf;
                } else
                        return false;
                for (size_t k = 1; k <= need; k++) {
                        if (i + k >= len || in[i + k] < lo || in[i + k] > hi)
                                return false;
                        lo = 0x80;
                        hi = 0xbf;
                }
                i += need + 1;
        }
        return true;
}

static bool model_blank(uint16_t c) {
        return c == ' ' || c == '\t' || c == '\f';
}

/* LineReader.readLine() of JDK 17. Returns the logical line's length or -1 at the end; *ret_start
 * is the offset of its first char. */
static long model_read_line(const Chars *in, size_t *off, uint16_t *line, size_t *ret_start) {
        size_t len = 0;
        bool skip_ws = true, appended = false, backslash = false, started = false;

        for (;;) {
                uint16_t c;

                if (*off >= in->n) {
                        if (len == 0)
                                return -1;
                        return (long) (backslash ? len - 1 : len);
                }
                c = in->c[(*off)++];

                if (skip_ws) {
                        if (model_blank(c))
                                continue;
                        if (!appended && (c == '\r' || c == '\n'))
                                continue;
                        skip_ws = false;
                        appended = false;
                }
                if (len == 0 && (c == '#' || c == '!')) {
                        for (;;) {
                                if (*off >= in->n)
                                        return -1;
                                c = in->c[(*off)++];
                                if (c == '\r' || c == '\n')
                                        break;
                        }
                        skip_ws = true;
                        continue;
                }
                if (c != '\n' && c != '\r') {
                        if (!started)
                                *ret_start = *off - 1;
                        started = true;
                        line[len++] = c;
                        backslash = c == '\\' ? !backslash : false;
                        continue;
                }
                if (len == 0) {
                        skip_ws = true;
                        continue;
                }
                if (*off >= in->n)
                        return (long) (backslash ? len - 1 : len);
                if (!backslash)
                        return (long) len;
                len--;
                skip_ws = true;
                appended = true;
                backslash = false;
                if (c == '\r' && in->c[*off] == '\n')
                        (*off)++;
        }
}

static int model_hex(uint16_t c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* loadConvert(); false where Java throws "Malformed \uxxxx encoding". */
static bool model_convert(const uint16_t *in, size_t len, uint16_t **ret, size_t *ret_len) {
        uint16_t *out = malloc((len + 1) * sizeof *out);
        size_t o = 0;

        FUZZ_CHECK(out);
        for (size_t i = 0; i < len;) {
                uint16_t c = in[i++];

                if (c == '\\') {
                        /* readLine() never leaves a lone backslash at a line's end. */
                        FUZZ_CHECK(i < len);
                        c = in[i++];
                        if (c == 'u') {
                                unsigned v = 0;

                                if (i + 4 > len) {
                                        free(out);
                                        return false;
                                }
                                for (unsigned j = 0; j < 4; j++) {
                                        int h = model_hex(in[i++]);
                                        if (h < 0) {
                                                free(out);
                                                return false;
                                        }
                                        v = (v << 4) | (unsigned) h;
                                }
                                c = (uint16_t) v;
                        } else if (c == 't')
                                c = '\t';
                        else if (c == 'r')
                                c = '\r';
                        else if (c == 'n')
                                c = '\n';
                        else if (c == 'f')
                                c = '\f';
                }
                out[o++] = c;
        }
        *ret = out;
        *ret_len = o;
        return true;
}

static bool units_equal_ascii(const uint16_t *u, size_t n, const char *s) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (u[i] != (unsigned char) s[i])
                        return false;
        return true;
}

static int units_compare(const uint16_t *a, size_t an, const uint16_t *b, size_t bn) {
        for (size_t i = 0; i < an && i < bn; i++)
                if (a[i] != b[i])
                        return a[i] < b[i] ? -1 : 1;
        return an < bn ? -1 : an > bn;
}

static int entry_compare(const void *x, const void *y) {
        const PropsEntry *a = x, *b = y;
        int r = units_compare(a->key, a->key_len, b->key, b->key_len);

        if (r != 0)
                return r;
        return a->order < b->order ? -1 : a->order > b->order;
}

static void props_model_free(PropsModel *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->entries[i].key);
                free(m->entries[i].value);
        }
        free(m->entries);
        *m = (PropsModel) {};
}

/* Properties.load of the file; key (ASCII) is the one whose first line is located. */
static void props_model_load(const uint8_t *in, size_t len, const char *key, PropsModel *ret) {
        PropsModel m = { .first_key_line = SIZE_MAX };
        Chars chars;
        uint16_t *line;
        size_t off = 0, cap = 0;
        long limit;

        props_model_decode(in, len, &chars);
        line = malloc((chars.n + 1) * sizeof *line);
        FUZZ_CHECK(line);

        for (;;) {
                size_t start = 0, key_len = 0, value_start;
                bool has_sep = false, backslash = false;
                PropsEntry e = {};

                limit = model_read_line(&chars, &off, line, &start);
                if (limit < 0)
                        break;
                m.ends_empty = limit == 0;

                value_start = (size_t) limit;
                while (key_len < (size_t) limit) {
                        uint16_t c = line[key_len];

                        if ((c == '=' || c == ':') && !backslash) {
                                value_start = key_len + 1;
                                has_sep = true;
                                break;
                        }
                        if (model_blank(c) && !backslash) {
                                value_start = key_len + 1;
                                break;
                        }
                        backslash = c == '\\' ? !backslash : false;
                        key_len++;
                }
                while (value_start < (size_t) limit) {
                        uint16_t c = line[value_start];

                        if (!model_blank(c)) {
                                if (!has_sep && (c == '=' || c == ':'))
                                        has_sep = true;
                                else
                                        break;
                        }
                        value_start++;
                }

                if (!model_convert(line, key_len, &e.key, &e.key_len) ||
                    !model_convert(line + value_start, (size_t) limit - value_start, &e.value, &e.value_len)) {
                        free(e.key);
                        m.malformed = true;
                        break;
                }
                if (m.first_key_line == SIZE_MAX && units_equal_ascii(e.key, e.key_len, key))
                        m.first_key_line = limit > 0 ? chars.pos[start] : len;
                if (m.n == cap) {
                        cap = cap ? cap * 2 : 16;
                        m.entries = realloc(m.entries, cap * sizeof *m.entries);
                        FUZZ_CHECK(m.entries);
                }
                e.order = m.n;
                m.entries[m.n++] = e;
        }

        /* Hashtable.put: one entry per key, the last one written. */
        if (m.n > 0) {
                size_t w = 0;

                qsort(m.entries, m.n, sizeof *m.entries, entry_compare);
                for (size_t i = 0; i < m.n; i++) {
                        if (i + 1 < m.n && units_compare(m.entries[i].key, m.entries[i].key_len, m.entries[i + 1].key,
                                                         m.entries[i + 1].key_len) == 0) {
                                free(m.entries[i].key);
                                free(m.entries[i].value);
                                continue;
                        }
                        m.entries[w++] = m.entries[i];
                }
                m.n = w;
        }

        free(line);
        free(chars.c);
        free(chars.pos);
        *ret = m;
}

static const PropsEntry *props_model_get(const PropsModel *m, const char *key) {
        for (size_t i = 0; i < m->n; i++)
                if (units_equal_ascii(m->entries[i].key, m->entries[i].key_len, key))
                        return &m->entries[i];
        return NULL;
}
