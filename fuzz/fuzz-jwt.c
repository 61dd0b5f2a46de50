/* Fuzzes base64url decoding and the display claims of an access token. Each input is used twice:
 * as a token as it stands, and as a JSON payload wrapped into a well-formed JWT, so the claim
 * code is reached without the fuzzer having to find base64 of JSON by itself. */
#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "base/jwt.h"
#include "fuzz.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *model_base64url_encode(const char *in, size_t len) {
        char *out = malloc(len / 3 * 4 + 5), *p = out;
        size_t i = 0;

        FUZZ_CHECK(out);
        for (; i + 3 <= len; i += 3) {
                uint32_t v = (uint32_t) (uint8_t) in[i] << 16 | (uint32_t) (uint8_t) in[i + 1] << 8 |
                             (uint8_t) in[i + 2];
                *p++ = alphabet[v >> 18 & 63];
                *p++ = alphabet[v >> 12 & 63];
                *p++ = alphabet[v >> 6 & 63];
                *p++ = alphabet[v & 63];
        }
        if (len - i == 1) {
                uint32_t v = (uint32_t) (uint8_t) in[i] << 16;
                *p++ = alphabet[v >> 18 & 63];
                *p++ = alphabet[v >> 12 & 63];
        } else if (len - i == 2) {
                uint32_t v = (uint32_t) (uint8_t) in[i] << 16 | (uint32_t) (uint8_t) in[i + 1] << 8;
                *p++ = alphabet[v >> 18 & 63];
                *p++ = alphabet[v >> 12 & 63];
                *p++ = alphabet[v >> 6 & 63];
        }
        *p = 0;
        return out;
}

static void check_base64url(const char *in, size_t len) {
        char *out = NULL, *again = NULL, *enc;
        size_t out_len = SIZE_MAX, again_len, n = len;
        int r;

        r = base64url_decode(in, len, &out, &out_len);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL);
                FUZZ_CHECK(!out && out_len == SIZE_MAX);
                return;
        }
        FUZZ_CHECK(r == 0 && out);
        FUZZ_CHECK(out[out_len] == 0);

        /* Only the alphabet and up to two '=' at the end (making a multiple of 4) were accepted,
         * and every 4 characters gave 3 bytes. */
        while (n > 0 && in[n - 1] == '=')
                n--;
        FUZZ_CHECK(len - n <= 2 && (len == n || len % 4 == 0));
        for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(in[i] && strchr(alphabet, in[i]));
        FUZZ_CHECK(n % 4 != 1);
        FUZZ_CHECK(out_len == n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));

        /* Canonical re-encoding decodes to the same bytes and differs at most in the last char
         * (whose unused low bits a sloppy encoder may have set). */
        enc = model_base64url_encode(out, out_len);
        FUZZ_CHECK(strlen(enc) == n);
        FUZZ_CHECK(n == 0 || memcmp(enc, in, n - 1) == 0);
        FUZZ_CHECK(base64url_decode(enc, n, &again, &again_len) == 0);
        FUZZ_CHECK(again_len == out_len && memcmp(again, out, out_len) == 0);

        free(enc);
        free(again);
        free(out);
}

static void check_claim(const char *s) {
        if (!s)
                return;
        FUZZ_CHECK(*s && strlen(s) <= 256);
        FUZZ_CHECK(!fuzz_has_control_chars(s));
}

static int check_claims(const char *token, size_t len) {
        JwtClaims c = {};
        int r;

        r = jwt_read_claims(token, len, &c);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG);
                FUZZ_CHECK(!c.account && !c.tenant && !c.object_id && c.exp == 0);
                return r;
        }
        FUZZ_CHECK(r == 0);
        check_claim(c.account);
        check_claim(c.tenant);
        check_claim(c.object_id);
        FUZZ_CHECK(c.exp >= 0);
        jwt_claims_clear(&c);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *in = (const char *) data;
        char *payload, *token;
        json_error_t error;
        json_t *j;
        int r;

        check_base64url(in, size);
        (void) check_claims(in, size);

        /* The input as the payload of a JWT: read exactly when it is a JSON object. */
        if (size > 64 * 1024 / 4 * 3)
                return 0;
        payload = model_base64url_encode(in, size);
        token = malloc(strlen(payload) + 64);
        FUZZ_CHECK(token);
        strcpy(token, "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.");
        strcat(token, payload);
        strcat(token, ".c2ln");
        r = check_claims(token, strlen(token));
        j = json_loadb(in, size, 0, &error);
        FUZZ_CHECK((r == 0) == json_is_object(j));
        json_decref(j);
        free(token);
        free(payload);
        return 0;
}
