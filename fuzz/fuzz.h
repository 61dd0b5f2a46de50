/* Shared helpers for the libFuzzer targets: an invariant check that always aborts, and copies. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Unlike assert(), never compiled out: a broken invariant is a finding, whatever the build. */
#define FUZZ_CHECK(expr)                                                                             \
        do {                                                                                         \
                if (!(expr)) {                                                                       \
                        fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #expr); \
                        abort();                                                                     \
                }                                                                                    \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input (which libFuzzer does not terminate). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);

        FUZZ_CHECK(s);
        if (size > 0)
                memcpy(s, data, size);
        s[size] = 0;
        return s;
}

/* The input in a buffer of exactly its size, so ASan sees any read past the end. */
static inline char *fuzz_memdup(const uint8_t *data, size_t size) {
        char *s = malloc(size > 0 ? size : 1);

        FUZZ_CHECK(s);
        if (size > 0)
                memcpy(s, data, size);
        return s;
}

static inline bool fuzz_has_control_chars(const char *s) {
        for (; s && *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}
