/* The secret type: bytes that are wiped when freed and that only their owners reveal. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/secret.h"

struct Secret {
        size_t len;
        char *data; /* NUL after len */
};

Secret *secret_adopt(char *buf, size_t len) {
        Secret *s;

        if (!buf)
                return NULL;
        s = malloc(sizeof *s);
        if (!s) {
                erase_and_free(buf, len);
                return NULL;
        }
        s->len = len;
        s->data = buf;
        return s;
}

Secret *secret_new(const char *bytes, size_t len) {
        char *buf;

        if (len == SIZE_MAX)
                return NULL;
        buf = malloc(len + 1);
        if (!buf)
                return NULL;
        if (len > 0)
                memcpy(buf, bytes, len);
        buf[len] = 0;
        return secret_adopt(buf, len);
}

Secret *secret_new_string(const char *s) {
        return s ? secret_new(s, strlen(s)) : NULL;
}

Secret *secret_dup(const Secret *s) {
        return s ? secret_new(s->data, s->len) : NULL;
}

Secret *secret_free(Secret *s) {
        if (!s)
                return NULL;
        erase_and_free(s->data, s->len + 1);
        explicit_bzero(s, sizeof *s);
        free(s);
        return NULL;
}

const char *secret_reveal(const Secret *s) {
        return s ? s->data : NULL;
}

size_t secret_len(const Secret *s) {
        return s ? s->len : 0;
}

bool secret_equal(const Secret *a, const Secret *b) {
        unsigned char diff = 0;

        if (!a || !b)
                return a == b;
        if (a->len != b->len)
                return false;
        for (size_t i = 0; i < a->len; i++)
                diff |= (unsigned char) (a->data[i] ^ b->data[i]);
        return diff == 0;
}

void erase_and_free(void *p, size_t len) {
        if (!p)
                return;
        explicit_bzero(p, len);
        free(p);
}

int erase_realloc(char **buf, size_t *buf_cap, size_t used, size_t cap) {
        char *n = malloc(cap);

        if (!n)
                return -ENOMEM;
        if (used > 0)
                memcpy(n, *buf, used);
        erase_and_free(*buf, *buf_cap);
        *buf = n;
        *buf_cap = cap;
        return 0;
}
