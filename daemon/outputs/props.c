/* The spark.properties edit: find the token's logical lines the way java.util.Properties.load
 * does and replace only their values, keeping every other byte. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "base/secret.h"
#include "base/util.h"
#include "outputs/props.h"

/* Spark reads the file through a UTF-8 Reader. Every byte below 0x80 decodes to the same char
 * at the same place (Java's decoder replaces a malformed sequence without swallowing the ASCII
 * byte after it), and every char that carries structure (\r \n \\ = : # ! space \t \f) is
 * ASCII, so walking bytes makes exactly the decisions Properties.load makes walking chars.
 * A UTF-8 BOM is three non-ASCII bytes: like Java, we make it part of the first key. */

/* One logical line, as LineReader.readLine() (JDK 17) returns it, with the input offset of
 * each char so an edit can be mapped back onto the bytes. */
typedef struct LineReader {
        const char *in;
        size_t len;
        size_t off;

        char *chars; /* the logical line: continuations joined, comments skipped */
        size_t *pos; /* input offset of each char */
        size_t n, cap;
        size_t end; /* where the line's content ends: its terminating line end, or
                                 * the input's end; bytes from here on are kept */

        /* At the end of input a continuation was still open: bytes appended after it would join
         * the last logical line. */
        bool pending_at_end;
} LineReader;

/* The logical lines held the old token's value: wipe them. */
static void line_reader_done(LineReader *r) {
        erase_and_free(r->chars, r->cap);
        free(r->pos);
}

static int line_reader_push(LineReader *r, size_t len, char c, size_t at) {
        if (len >= r->cap) {
                size_t cap = MAX(r->cap * 2, (size_t) 256);
                char *c2;
                size_t *p2;

                c2 = malloc(cap);
                if (!c2)
                        return -ENOMEM;
                if (r->chars)
                        memcpy(c2, r->chars, r->cap);
                erase_and_free(r->chars, r->cap);
                r->chars = c2;
                p2 = reallocarray(r->pos, cap, sizeof(size_t));
                if (!p2)
                        return -ENOMEM;
                r->pos = p2;
                r->cap = cap;
        }
        r->chars[len] = c;
        r->pos[len] = at;
        return 0;
}

static bool is_eol(char c) {
        return c == '\n' || c == '\r';
}

/* Java's Properties whitespace: SP, HT, FF (not line ends, which end the line). */
static bool is_props_space(char c) {
        return c == ' ' || c == '\t' || c == '\f';
}

/* Returns 1 with the next logical line, 0 at the end of input, or -ENOMEM. */
static int line_reader_next(LineReader *lr) {
        size_t len = 0, last_cont_eol = SIZE_MAX;
        bool skip_ws = true, appended = false, backslash = false;
        int r;

        if (lr->off >= lr->len) /* keep pending_at_end from the call that reached the end */
                return 0;

        for (;;) {
                size_t at;
                char c;

                if (lr->off >= lr->len) {
                        lr->pending_at_end = appended;
                        if (len == 0)
                                return 0;
                        lr->n = backslash ? len - 1 : len;
                        /* The unterminated last physical line after a continuation held only
                         * blanks: the content ended at the continuation's line end. */
                        if (last_cont_eol != SIZE_MAX && lr->pos[len - 1] < last_cont_eol)
                                lr->end = last_cont_eol;
                        else
                                lr->end = lr->len;
                        return 1;
                }

                at = lr->off;
                c = lr->in[lr->off++];

                if (skip_ws) {
                        if (is_props_space(c))
                                continue;
                        if (!appended && is_eol(c))
                                continue;
                        skip_ws = false;
                        appended = false;
                }

                if (len == 0 && (c == '#' || c == '!')) {
                        /* A comment runs to the end of its physical line and is never continued. */
                        while (lr->off < lr->len && !is_eol(lr->in[lr->off]))
                                lr->off++;
                        if (lr->off >= lr->len) {
                                lr->pending_at_end = false;
                                return 0;
                        }
                        lr->off++;
                        skip_ws = true;
                        continue;
                }

                if (!is_eol(c)) {
                        r = line_reader_push(lr, len, c, at);
                        if (r < 0)
                                return r;
                        len++;
                        backslash = c == '\\' ? !backslash : false;
                        continue;
                }

                if (len == 0) {
                        skip_ws = true;
                        continue;
                }
                if (lr->off >= lr->len) {
                        lr->pending_at_end = backslash;
                        lr->n = backslash ? len - 1 : len;
                        lr->end = at;
                        return 1;
                }
                if (!backslash) {
                        lr->n = len;
                        lr->end = at;
                        return 1;
                }
                /* An odd number of backslashes continues the logical line on the next one. */
                len--;
                skip_ws = true;
                appended = true;
                backslash = false;
                last_cont_eol = at;
                if (c == '\r' && lr->in[lr->off] == '\n')
                        lr->off++;
        }
}

/* Does chars[0..n), unescaped as loadConvert() does, equal the ASCII string key? A malformed
 * \uXXXX (on which Java throws) matches nothing. */
static bool key_equals(const char *chars, size_t n, const char *key) {
        size_t i = 0, k = 0, klen = strlen(key);

        while (i < n) {
                unsigned c = (unsigned char) chars[i++];

                if (c == '\\') {
                        if (i >= n)
                                return false;
                        c = (unsigned char) chars[i++];
                        if (c == 'u') {
                                unsigned v = 0;

                                if (n - i < 4)
                                        return false;
                                for (unsigned j = 0; j < 4; j++) {
                                        int h = unhexchar(chars[i++]);
                                        if (h < 0)
                                                return false;
                                        v = (v << 4) | (unsigned) h;
                                }
                                c = v;
                        } else if (c == 't')
                                c = '\t';
                        else if (c == 'r')
                                c = '\r';
                        else if (c == 'n')
                                c = '\n';
                        else if (c == 'f')
                                c = '\f';
                }
                if (k >= klen || c != (unsigned char) key[k])
                        return false;
                k++;
        }
        return k == klen;
}

/* Where the value of a logical line starts (load0's valueStart), and whether the line has no
 * separator at all (the key runs to the end of the line). */
static size_t line_value_start(const char *chars, size_t n, size_t *ret_key_len, bool *ret_no_sep) {
        size_t key_len = 0, value_start = n;
        bool has_sep = false, backslash = false, no_sep = true;

        while (key_len < n) {
                char c = chars[key_len];

                if ((c == '=' || c == ':') && !backslash) {
                        value_start = key_len + 1;
                        has_sep = true;
                        no_sep = false;
                        break;
                }
                if (is_props_space(c) && !backslash) {
                        value_start = key_len + 1;
                        no_sep = false;
                        break;
                }
                backslash = c == '\\' ? !backslash : false;
                key_len++;
        }
        while (value_start < n) {
                char c = chars[value_start];

                if (!is_props_space(c)) {
                        if (!has_sep && (c == '=' || c == ':'))
                                has_sep = true;
                        else
                                break;
                }
                value_start++;
        }

        *ret_key_len = key_len;
        *ret_no_sep = no_sep;
        return value_start;
}

/* Decode one UTF-8 sequence (strict: no overlongs, surrogates or values past U+10FFFF).
 * Returns its length, or 0 when malformed. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *ret) {
        uint32_t c;
        size_t n;

        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                n = 2;
                c = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                n = 3;
                c = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                n = 4;
                c = s[0] & 0x07;
        } else
                return 0;
        if (len < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }
        if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
                return 0;
        *ret = c;
        return n;
}

static size_t put_u16_escape(char *out, uint32_t u) {
        static const char hex[] = "0123456789ABCDEF";

        if (out) {
                out[0] = '\\';
                out[1] = 'u';
                out[2] = hex[(u >> 12) & 0xf];
                out[3] = hex[(u >> 8) & 0xf];
                out[4] = hex[(u >> 4) & 0xf];
                out[5] = hex[u & 0xf];
        }
        return 6;
}

/* One pass of the escaping; with out == NULL it only measures. full: as Properties.store
 * (every special char, non-ASCII as \uXXXX); otherwise only what load would misread (backslash,
 * controls, leading blanks and separators), keeping ':' and UTF-8 as they are: for spark.master,
 * whose URL a person should recognise. */
static int escape_pass(const char *value, size_t len, bool full, char *out, size_t *ret_len) {
        const unsigned char *s = (const unsigned char *) value;
        size_t i = 0, o = 0;

        while (i < len) {
                bool first = i == 0;
                const char *esc = NULL;
                uint32_t c;
                size_t n;

                n = utf8_decode(s + i, len - i, &c);
                if (n == 0)
                        return -EINVAL;

                switch (c) {
                case '\\':
                        esc = "\\\\";
                        break;
                case '\t':
                        esc = "\\t";
                        break;
                case '\n':
                        esc = "\\n";
                        break;
                case '\r':
                        esc = "\\r";
                        break;
                case '\f':
                        esc = "\\f";
                        break;
                case ' ':
                        if (first)
                                esc = "\\ ";
                        break;
                case '=':
                case ':':
                        if (full || first)
                                esc = c == '=' ? "\\=" : "\\:";
                        break;
                case '#':
                case '!':
                        if (full)
                                esc = c == '#' ? "\\#" : "\\!";
                        break;
                }

                if (esc) {
                        if (out)
                                memcpy(out + o, esc, 2);
                        o += 2;
                } else if (c < 0x20 || c == 0x7f || (full && c > 0x7e)) {
                        if (c >= 0x10000) {
                                uint32_t v = c - 0x10000;
                                o += put_u16_escape(out ? out + o : NULL, 0xd800 | (v >> 10));
                                o += put_u16_escape(out ? out + o : NULL, 0xdc00 | (v & 0x3ff));
                        } else
                                o += put_u16_escape(out ? out + o : NULL, c);
                } else {
                        if (out)
                                memcpy(out + o, s + i, n);
                        o += n;
                }
                i += n;
        }

        *ret_len = o;
        return 0;
}

static int escape(const char *value, size_t len, bool full, char **ret, size_t *ret_len) {
        size_t n, m;
        char *buf;
        int r;

        r = escape_pass(value, len, full, NULL, &n);
        if (r < 0)
                return r;
        buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        (void) escape_pass(value, len, full, buf, &m);
        buf[n] = 0;
        *ret = buf;
        *ret_len = n;
        return 0;
}

int props_escape_value(const char *value, size_t len, char **ret, size_t *ret_len) {
        return escape(value, len, true, ret, ret_len);
}

/* The line end the file uses: its first one, else LF. */
static const char *file_line_end(const char *in, size_t len) {
        for (size_t i = 0; i < len; i++) {
                if (in[i] == '\n')
                        return "\n";
                if (in[i] == '\r')
                        return i + 1 < len && in[i + 1] == '\n' ? "\r\n" : "\r";
        }
        return "\n";
}

/* Would bytes appended to in start a new logical line? False after an unterminated last
 * line, a trailing continuation or a comment without its line end. */
static int ends_fresh(const char *in, size_t len, bool *ret) {
        LineReader lr = { .in = in, .len = len };
        int r;

        while ((r = line_reader_next(&lr)) > 0)
                ;
        line_reader_done(&lr);
        if (r < 0)
                return r;
        *ret = !lr.pending_at_end && (len == 0 || is_eol(in[len - 1]));
        return 0;
}

typedef struct Edit {
        size_t from, to; /* input bytes [from, to) are replaced */
        bool add_sep;
} Edit;

/* Where the token goes: every line of ours rewritten in place, or, when there is none, a new
 * line appended after prefix (what ends an open last line), ended by eol. */
typedef struct EditPlan {
        Edit *edits;
        size_t n_edits;
        char prefix[8];
        const char *eol;
} EditPlan;

static void edit_plan_done(EditPlan *plan) {
        free(plan->edits);
        plan->edits = NULL;
}

/* Pure: locate every line to rewrite (or how to append). The token plays no part. */
static int props_find_edits(const char *in, size_t len, EditPlan *ret) {
        _cleanup_free_ Edit *edits = NULL;
        size_t n_edits = 0, cap_edits = 0;
        LineReader lr = { .in = in, .len = len };
        EditPlan plan = {};
        int r;

        while ((r = line_reader_next(&lr)) > 0) {
                size_t key_len, value_start;
                bool no_sep;

                value_start = line_value_start(lr.chars, lr.n, &key_len, &no_sep);
                if (!key_equals(lr.chars, key_len, PROPS_TOKEN_KEY))
                        continue;

                if (n_edits == cap_edits) {
                        size_t cap = MAX(cap_edits * 2, (size_t) 4);
                        Edit *e = reallocarray(edits, cap, sizeof(Edit));
                        if (!e) {
                                r = -ENOMEM;
                                break;
                        }
                        edits = e;
                        cap_edits = cap;
                }
                edits[n_edits++] = (Edit) {
                        /* Right after the separator's last raw byte, so a value that began on a
                         * continuation line ends up on the key's line, and the edit is idempotent. */
                        .from = lr.pos[value_start - 1] + 1,
                        .to = lr.end,
                        .add_sep = no_sep,
                };
        }
        line_reader_done(&lr);
        if (r < 0)
                return r;

        if (n_edits == 0) {
                bool fresh;

                /* Append; first end an unterminated last line, then, if that left a continuation
                 * open, end it with an empty line (at most two: a CR continuation swallows one LF). */
                plan.eol = file_line_end(in, len);
                for (unsigned i = 0; i < 3; i++) {
                        _cleanup_free_ char *probe = NULL;
                        size_t plen = strlen(plan.prefix);

                        probe = malloc(len + plen + 1);
                        if (!probe)
                                return -ENOMEM;
                        if (len > 0)
                                memcpy(probe, in, len);
                        memcpy(probe + len, plan.prefix, plen);
                        r = ends_fresh(probe, len + plen, &fresh);
                        if (r < 0)
                                return r;
                        if (fresh)
                                break;
                        strcat(plan.prefix, plan.eol);
                }
        }

        plan.edits = TAKE_PTR(edits);
        plan.n_edits = n_edits;
        *ret = plan;
        return 0;
}

static size_t put(char *out, size_t o, const char *s, size_t n) {
        memcpy(out + o, s, n);
        return o + n;
}

/* Pure: the input with the plan applied to the escaped value esc, as a Secret. */
static int props_splice(const char *in, size_t len, const EditPlan *plan, const char *esc, size_t esc_len,
                        Secret **ret) {
        const char *sep = " ";
        size_t out_len = len, o = 0, prev = 0;
        Secret *s;
        char *out;

        for (size_t i = 0; i < plan->n_edits; i++)
                out_len = out_len - (plan->edits[i].to - plan->edits[i].from) + esc_len + plan->edits[i].add_sep;
        if (plan->n_edits == 0)
                out_len += strlen(plan->prefix) + strlen(PROPS_TOKEN_KEY) + strlen(sep) + esc_len + strlen(plan->eol);

        out = malloc(out_len + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < plan->n_edits; i++) {
                const Edit *e = &plan->edits[i];

                o = put(out, o, in + prev, e->from - prev);
                if (e->add_sep)
                        out[o++] = '=';
                o = put(out, o, esc, esc_len);
                prev = e->to;
        }
        if (len > prev)
                memcpy(out + o, in + prev, len - prev);
        o += len - prev;
        if (plan->n_edits == 0) {
                o = put(out, o, plan->prefix, strlen(plan->prefix));
                o = put(out, o, PROPS_TOKEN_KEY, strlen(PROPS_TOKEN_KEY));
                o = put(out, o, sep, strlen(sep));
                o = put(out, o, esc, esc_len);
                o = put(out, o, plan->eol, strlen(plan->eol));
        }
        out[o] = 0;

        s = secret_adopt(out, o); /* frees out when it fails */
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int props_replace_token(const char *in, size_t len, const Secret *token, Secret **ret) {
        _cleanup_(edit_plan_done) EditPlan plan = {};
        char *esc = NULL;
        size_t esc_len = 0;
        int r;

        if (!token || (!in && len > 0))
                return -EINVAL;

        r = props_escape_value(secret_reveal(token), secret_len(token), &esc, &esc_len);
        if (r < 0)
                return r;

        r = props_find_edits(in, len, &plan);
        if (r >= 0)
                r = props_splice(in, len, &plan, esc, esc_len, ret);
        erase_and_free(esc, esc_len);
        return r;
}

int props_new_file(const Secret *token, const char *k8s_server, Secret **ret) {
        _cleanup_free_ char *master = NULL;
        char *esc = NULL, *out;
        size_t esc_len = 0, master_len = 0, out_len, o = 0, klen = strlen(PROPS_TOKEN_KEY);
        Secret *s;
        int r;

        if (!token)
                return -EINVAL;

        if (k8s_server) {
                _cleanup_free_ char *url = NULL;

                if (asprintf(&url, "k8s://%s", k8s_server) < 0)
                        return -ENOMEM;
                r = escape(url, strlen(url), false, &master, &master_len);
                if (r < 0)
                        return r;
        }

        r = props_escape_value(secret_reveal(token), secret_len(token), &esc, &esc_len);
        if (r < 0)
                return r;

        out_len = klen + 1 + esc_len + 1;
        if (master)
                out_len += strlen(PROPS_MASTER_KEY) + 1 + master_len + 1;
        out = malloc(out_len + 1);
        if (!out) {
                erase_and_free(esc, esc_len);
                return -ENOMEM;
        }

        memcpy(out + o, PROPS_TOKEN_KEY, klen);
        o += klen;
        out[o++] = ' ';
        memcpy(out + o, esc, esc_len);
        o += esc_len;
        out[o++] = '\n';
        if (master) {
                memcpy(out + o, PROPS_MASTER_KEY, strlen(PROPS_MASTER_KEY));
                o += strlen(PROPS_MASTER_KEY);
                out[o++] = ' ';
                memcpy(out + o, master, master_len);
                o += master_len;
                out[o++] = '\n';
        }
        out[o] = 0;
        erase_and_free(esc, esc_len);

        s = secret_adopt(out, o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
