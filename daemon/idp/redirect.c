/* The loopback redirect of the browser sign-in: the request head and the page. Pure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "idp/redirect.h"

#define REDIRECT_TEXT_MAX 300
#define REDIRECT_STATE_MAX 128
#define REDIRECT_ERROR_MAX 64

void redirect_clear(Redirect *r) {
        if (!r)
                return;
        secret_free(r->code);
        free(r->state);
        free(r->error);
        free(r->error_description);
        *r = (Redirect) {};
}

/* application/x-www-form-urlencoded value to bytes ('+' is a space); -EBADMSG on a bad escape
 * or a NUL. */
static int url_decode(const char *s, size_t n, char **ret, size_t *ret_len) {
        char *out = malloc(n + 1), *p = out;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '+')
                        *p++ = ' ';
                else if (s[i] == '%') {
                        int hi = i + 2 < n ? unhexchar(s[i + 1]) : -1;
                        int lo = i + 2 < n ? unhexchar(s[i + 2]) : -1;
                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                                erase_and_free(out, n + 1);
                                return -EBADMSG;
                        }
                        *p++ = (char) (hi << 4 | lo);
                        i += 2;
                } else
                        *p++ = s[i];
        }
        *p = 0;
        *ret = out;
        *ret_len = (size_t) (p - out);
        return 0;
}

static bool plain(const char *s, size_t max) {
        size_t n = strlen(s);

        if (n == 0 || n > max)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= 0x20 || (unsigned char) *s >= 0x7f)
                        return false;
        return true;
}

static char *text_for_log(const char *s) {
        size_t n = strcspn(s, "\r\n");
        char *out;

        if (n > REDIRECT_TEXT_MAX)
                n = REDIRECT_TEXT_MAX;
        out = strndup(s, n);
        if (!out)
                return NULL;
        for (char *c = out; *c; c++)
                if ((unsigned char) *c < 0x20 || (unsigned char) *c == 0x7f || (unsigned char) *c >= 0x80)
                        *c = '?';
        return out;
}

static int query_field(Redirect *r, const char *name, size_t name_len, char *value, size_t value_len) {
#define IS(x) (name_len == strlen(x) && memcmp(name, x, name_len) == 0)
        if (IS("code")) {
                if (r->code || !plain(value, REDIRECT_HEAD_MAX))
                        return -EBADMSG;
                r->code = secret_new(value, value_len);
                return r->code ? 0 : -ENOMEM;
        }
        if (IS("state")) {
                if (r->state || !plain(value, REDIRECT_STATE_MAX))
                        return -EBADMSG;
                r->state = strdup(value);
                return r->state ? 0 : -ENOMEM;
        }
        if (IS("error")) {
                if (r->error || !plain(value, REDIRECT_ERROR_MAX))
                        return -EBADMSG;
                r->error = strdup(value);
                return r->error ? 0 : -ENOMEM;
        }
        if (IS("error_description")) {
                if (r->error_description)
                        return -EBADMSG;
                r->error_description = text_for_log(value);
                return r->error_description ? 0 : -ENOMEM;
        }
#undef IS
        return 0; /* session_state, client_info and the like */
}

static int parse_query(const char *q, size_t n, Redirect *r) {
        while (n > 0) {
                size_t part = 0, name_len;
                const char *eq;
                char *value = NULL;
                size_t value_len;
                int k;

                while (part < n && q[part] != '&')
                        part++;
                eq = memchr(q, '=', part);
                name_len = eq ? (size_t) (eq - q) : part;
                if (eq) {
                        k = url_decode(eq + 1, part - name_len - 1, &value, &value_len);
                        if (k < 0)
                                return k;
                        k = memchr(value, 0, value_len) ? -EBADMSG : query_field(r, q, name_len, value, value_len);
                        erase_and_free(value, value_len + 1);
                        if (k < 0)
                                return k;
                }
                q += part;
                n -= part;
                if (n > 0) {
                        q++;
                        n--;
                }
        }
        return 0;
}

int redirect_parse(const char *buf, size_t len, Redirect *ret, size_t *ret_head_len) {
        _cleanup_(redirect_clear) Redirect r = {};
        const char *end, *line_end, *target, *sp, *q;
        size_t target_len, path_len;
        int k;

        if (!buf || !ret)
                return -EINVAL;
        end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end)
                return len > REDIRECT_HEAD_MAX ? -E2BIG : -EAGAIN;
        if ((size_t) (end - buf) > REDIRECT_HEAD_MAX)
                return -E2BIG;
        line_end = memmem(buf, (size_t) (end - buf) + 2, "\r\n", 2);
        if (!line_end || line_end - buf < 14 || memcmp(buf, "GET ", 4) != 0)
                return -EBADMSG;
        target = buf + 4;
        sp = memchr(target, ' ', (size_t) (line_end - target));
        if (!sp || (size_t) (line_end - sp - 1) != 8 || memcmp(sp + 1, "HTTP/1.", 7) != 0 ||
            (sp[8] != '0' && sp[8] != '1'))
                return -EBADMSG;
        target_len = (size_t) (sp - target);
        if (target_len == 0 || target[0] != '/')
                return -EBADMSG;
        for (size_t i = 0; i < target_len; i++)
                if ((unsigned char) target[i] <= 0x20 || (unsigned char) target[i] >= 0x7f)
                        return -EBADMSG;

        q = memchr(target, '?', target_len);
        path_len = q ? (size_t) (q - target) : target_len;
        r.kind = REDIRECT_OTHER;
        if (path_len == 1 && q) {
                k = parse_query(q + 1, target_len - path_len - 1, &r);
                if (k < 0)
                        return k;
                if (r.error)
                        r.kind = REDIRECT_ERROR;
                else if (r.code)
                        r.kind = REDIRECT_CODE;
        }
        if (ret_head_len)
                *ret_head_len = (size_t) (end - buf) + 4;
        *ret = r;
        r = (Redirect) {};
        return 0;
}

char *redirect_answer(bool ok, const char *what) {
        _cleanup_free_ char *body = NULL;
        char *s;
        int n;

        /* what comes from our own words (never the browser's, never a secret): escape anyway */
        n = asprintf(&body,
                     "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>aksspark-tokend</title></head>\n"
                     "<body><h1>%s</h1><p>%s</p></body></html>\n",
                     ok ? "Signed in" : "Sign-in failed",
                     ok ? "You can close this window: aksspark-tokend has the token." : "");
        if (n < 0)
                return NULL;
        if (!ok && what) {
                _cleanup_free_ char *esc = malloc(strlen(what) * 6 + 1), *b2 = NULL;
                char *p = esc;
                if (!esc)
                        return NULL;
                for (const char *c = what; *c; c++) {
                        if (*c == '<')
                                p = stpcpy(p, "&lt;");
                        else if (*c == '>')
                                p = stpcpy(p, "&gt;");
                        else if (*c == '&')
                                p = stpcpy(p, "&amp;");
                        else if (*c == '"')
                                p = stpcpy(p, "&quot;");
                        else
                                *p++ = *c;
                }
                *p = 0;
                if (asprintf(
                            &b2,
                            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>aksspark-tokend</title></head>\n"
                            "<body><h1>Sign-in failed</h1><p>%s</p></body></html>\n",
                            esc) < 0)
                        return NULL;
                free(body);
                body = TAKE_PTR(b2);
        }
        if (asprintf(&s,
                     "HTTP/1.1 %s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n%s",
                     ok ? "200 OK" : "400 Bad Request", strlen(body), body) < 0)
                return NULL;
        return s;
}
