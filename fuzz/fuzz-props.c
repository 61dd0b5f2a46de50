/* Fuzzes the spark.properties edit against an independent model of Properties.load: after
 * props_replace_token() Spark must read the token as the key's value and every other key
 * unchanged, the bytes before the first token line must be untouched, and a second edit with
 * the same token must change nothing. */
#include <errno.h>
#include <string.h>

#include "base/secret.h"
#include "fuzz.h"
#include "outputs/props.h"
#include "props-model.h"

/* A realistic token, tokens that need every kind of escaping (first-char separators and
 * blanks, backslashes, controls, non-ASCII, a surrogate pair), and the empty one, which found
 * that an edit starting at the old value's first char left a continuation behind
 * (fuzz/crashes/props/, fixed in 43310e3). */
static const char *const tokens[] = {
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ1cG4iOiJhbGljZUBjb250b3NvLmNvbSJ9.c2lnbmF0dXJl-_x",
        "=:#! \\\t lead\r\nand caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\u0041 tail ",
        " ",
        "",
};

static Secret *replace(const char *in, size_t len, const Secret *token) {
        Secret *out = NULL;
        int r;

        r = props_replace_token(in, len, token, &out);
        /* Any bytes are a file Spark may have been given: the edit never refuses one. */
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(out);
        return out;
}

static bool units_equal(const uint16_t *a, size_t an, const uint16_t *b, size_t bn) {
        return an == bn && (an == 0 || memcmp(a, b, an * sizeof *a) == 0);
}

/* Spark reads exactly want as key's value. */
static void check_value(const PropsModel *m, const char *key, const char *want) {
        const PropsEntry *e = props_model_get(m, key);
        Chars expected;

        FUZZ_CHECK(e);
        props_model_decode((const uint8_t *) want, strlen(want), &expected);
        FUZZ_CHECK(units_equal(e->value, e->value_len, expected.c, expected.n));
        free(expected.c);
        free(expected.pos);
}

/* Every key but the token's has the same value before and after.
 *
 * One change is inherent, not a bug: a last line holding only a backslash, without a line end,
 * reads as put("", ""); once a line is appended after it, that backslash continues into the
 * next line and the put is gone (the empty key vanishes or keeps an earlier value). Keeping it
 * would need a byte of the file changed, and Spark has no use for an empty key. So when the edit
 * appended to such a file, the empty key is not compared. */
static void check_others_kept(const PropsModel *before, const PropsModel *after, bool appended) {
        bool skip_empty = appended && before->ends_empty;
        size_t i = 0, j = 0;

        for (;;) {
                while (i < before->n &&
                       (units_equal_ascii(before->entries[i].key, before->entries[i].key_len, PROPS_TOKEN_KEY) ||
                        (skip_empty && before->entries[i].key_len == 0)))
                        i++;
                while (j < after->n &&
                       (units_equal_ascii(after->entries[j].key, after->entries[j].key_len, PROPS_TOKEN_KEY) ||
                        (skip_empty && after->entries[j].key_len == 0)))
                        j++;
                if (i >= before->n || j >= after->n)
                        break;
                FUZZ_CHECK(units_equal(before->entries[i].key, before->entries[i].key_len, after->entries[j].key,
                                       after->entries[j].key_len));
                FUZZ_CHECK(units_equal(before->entries[i].value, before->entries[i].value_len, after->entries[j].value,
                                       after->entries[j].value_len));
                i++;
                j++;
        }
        FUZZ_CHECK(i >= before->n && j >= after->n);
}

static void check_replace(const uint8_t *data, size_t size, size_t t) {
        const char *in = (const char *) data;
        Secret *token = secret_new_string(tokens[t]);
        Secret *other = secret_new_string(tokens[t == 0 ? 1 : 0]); /* never the empty one */
        Secret *out, *again, *swapped, *back;
        PropsModel before, after;
        const char *o;
        size_t olen;

        FUZZ_CHECK(token && other);
        out = replace(in, size, token);
        o = secret_reveal(out);
        olen = secret_len(out);

        /* Idempotent, and a function of everything but the token's value. */
        again = replace(o, olen, token);
        FUZZ_CHECK(secret_equal(again, out));
        swapped = replace(o, olen, other);
        back = replace(secret_reveal(swapped), secret_len(swapped), token);
        FUZZ_CHECK(secret_equal(back, out));
        secret_free(back);
        secret_free(swapped);
        secret_free(again);

        props_model_load(data, size, PROPS_TOKEN_KEY, &before);
        props_model_load((const uint8_t *) o, olen, PROPS_TOKEN_KEY, &after);

        if (!before.malformed) {
                FUZZ_CHECK(!after.malformed);
                check_value(&after, PROPS_TOKEN_KEY, tokens[t]);
                check_others_kept(&before, &after, before.first_key_line == SIZE_MAX);
                if (before.first_key_line != SIZE_MAX) {
                        /* Edited in place: everything before the first token line is as it was. */
                        FUZZ_CHECK(olen >= before.first_key_line);
                        FUZZ_CHECK(memcmp(o, in, before.first_key_line) == 0);
                } else {
                        /* Appended: the file is a prefix of the result. */
                        FUZZ_CHECK(olen > size);
                        FUZZ_CHECK(size == 0 || memcmp(o, in, size) == 0);
                }
        } else if (!after.malformed)
                /* Only the old token's value could not be read: now the whole file can. */
                check_value(&after, PROPS_TOKEN_KEY, tokens[t]);

        props_model_free(&before);
        props_model_free(&after);
        secret_free(out);
        secret_free(other);
        secret_free(token);
}

/* A new file for a server named by the kubeconfig (any bytes): two keys, read back exactly. */
static void check_new_file(const uint8_t *data, size_t size, size_t t) {
        char *server = fuzz_strndup(data, size);
        Secret *token = secret_new_string(tokens[t]), *out = NULL;
        size_t n = strlen(server);
        PropsModel m;
        int r;

        FUZZ_CHECK(token);
        r = props_new_file(token, server, &out);
        if (r < 0) {
                /* Only a server that is not UTF-8 cannot be written for Spark's reader. */
                FUZZ_CHECK(r == -EINVAL);
                FUZZ_CHECK(!model_utf8_valid((const uint8_t *) server, n));
        } else {
                char *master = malloc(n + sizeof "k8s://");

                FUZZ_CHECK(master);
                strcpy(master, "k8s://");
                strcat(master, server);
                props_model_load((const uint8_t *) secret_reveal(out), secret_len(out), PROPS_TOKEN_KEY, &m);
                FUZZ_CHECK(!m.malformed);
                FUZZ_CHECK(m.n == 2);
                check_value(&m, PROPS_TOKEN_KEY, tokens[t]);
                check_value(&m, PROPS_MASTER_KEY, master);
                props_model_free(&m);
                free(master);
                secret_free(out);
        }
        secret_free(token);
        free(server);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* The token follows from the length, so a reproducer needs no extra byte. */
        size_t t = size % ELEMENTSOF(tokens);

        check_replace(data, size, t);
        check_new_file(data, size, t);
        return 0;
}
