/* Display claims of an access token (account, tenant, expiry); never a decision. Pure. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/jwt.h"
#include "base/macro.h"

#define JWT_CLAIM_MAX 256 /* longer claims are not names a person reads */
#define JWT_PAYLOAD_MAX (64 * 1024)

void jwt_claims_clear(JwtClaims *c) {
        if (!c)
                return;
        free(c->account);
        free(c->tenant);
        free(c->object_id);
        *c = (JwtClaims) {};
}

static int base64url_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '-')
                return 62;
        if (c == '_')
                return 63;
        return -1;
}

int base64url_encode(const void *data, size_t len, char **ret) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const unsigned char *in = data;
        uint32_t acc = 0;
        unsigned bits = 0;
        char *out, *p;

        if (!ret || (!data && len > 0))
                return -EINVAL;
        out = malloc(len / 3 * 4 + 5);
        if (!out)
                return -ENOMEM;
        p = out;
        for (size_t i = 0; i < len; i++) {
                acc = (acc << 8) | in[i];
                bits += 8;
                while (bits >= 6) {
                        bits -= 6;
                        *p++ = alphabet[(acc >> bits) & 63];
                }
        }
        if (bits > 0)
                *p++ = alphabet[(acc << (6 - bits)) & 63];
        *p = 0;
        *ret = out;
        return 0;
}

int base64url_decode(const char *in, size_t len, char **ret, size_t *ret_len) {
        size_t pad = 0, out_len, o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        char *out;

        if (!in && len > 0)
                return -EINVAL;
        /* Padding is optional, but when present it must make the length a multiple of 4. */
        while (pad < 2 && len > pad && in[len - 1 - pad] == '=')
                pad++;
        if (pad > 0 && len % 4 != 0)
                return -EINVAL;
        len -= pad;
        if (len % 4 == 1)
                return -EINVAL;

        out_len = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
        out = malloc(out_len + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                int v = base64url_value((unsigned char) in[i]);

                if (v < 0) {
                        free(out);
                        return -EINVAL;
                }
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char) ((acc >> bits) & 0xFF);
                }
        }
        out[o] = 0;

        *ret = out;
        *ret_len = o;
        return 0;
}

/* A claim fit for display: a non-empty string without control characters, not too long. */
static char *claim_string(json_t *payload, const char *name) {
        json_t *v = json_object_get(payload, name);
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);

        if (!s || n == 0 || n > JWT_CLAIM_MAX)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return NULL;
        return strdup(s);
}

static int64_t claim_time(json_t *payload, const char *name) {
        json_t *v = json_object_get(payload, name);
        int64_t t = 0;

        if (json_is_integer(v))
                t = json_integer_value(v);
        else if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 1e12)
                t = (int64_t) json_real_value(v);
        else if (json_is_string(v)) {
                const char *s = json_string_value(v);

                if (!*s)
                        return 0;
                for (; *s; s++) {
                        if (*s < '0' || *s > '9' || t > INT64_C(100000000000))
                                return 0;
                        t = t * 10 + (*s - '0');
                }
        }
        return t > 0 ? t : 0;
}

int jwt_read_claims(const char *token, size_t len, JwtClaims *ret) {
        static const char *const account_claims[] = { "upn", "unique_name", "preferred_username", "name",
                                                      "appid" /* an application (idtyp app): its id */ };
        _cleanup_free_ char *payload = NULL;
        const char *dot1, *dot2;
        json_error_t error;
        json_t *j;
        JwtClaims c = {};
        size_t n;
        int r;

        if (!token || !ret)
                return -EINVAL;
        /* header.payload.signature: exactly two dots (five parts would be an encrypted JWE) */
        dot1 = memchr(token, '.', len);
        dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t) (dot1 + 1 - token)) : NULL;
        if (!dot1 || dot1 == token || !dot2 || memchr(dot2 + 1, '.', len - (size_t) (dot2 + 1 - token)))
                return -EBADMSG;
        if ((size_t) (dot2 - dot1 - 1) > JWT_PAYLOAD_MAX)
                return -EBADMSG;

        r = base64url_decode(dot1 + 1, (size_t) (dot2 - dot1 - 1), &payload, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EBADMSG;
        j = json_loadb(payload, n, 0, &error);
        if (!json_is_object(j)) {
                json_decref(j);
                return -EBADMSG;
        }

        for (size_t i = 0; i < ELEMENTSOF(account_claims) && !c.account; i++)
                c.account = claim_string(j, account_claims[i]);
        c.tenant = claim_string(j, "tid");
        c.object_id = claim_string(j, "oid");
        c.exp = claim_time(j, "exp");
        json_decref(j);

        *ret = c;
        return 0;
}
