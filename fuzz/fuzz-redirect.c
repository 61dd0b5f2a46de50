/* Fuzzes what a browser (or anything else that finds the loopback port) may send to the
 * redirect listener: whatever arrives, the parse ends with a verdict, a code comes with a
 * plain value, and what may be logged has no control characters. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "idp/redirect.h"

static void check_plain(const char *s, size_t max) {
        if (!s)
                return;
        FUZZ_CHECK(strlen(s) <= max);
        for (; *s; s++)
                FUZZ_CHECK((unsigned char) *s > 0x20 && (unsigned char) *s < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Redirect r = {};
        size_t head = 0;
        int k;

        k = redirect_parse((const char *) data, size, &r, &head);
        FUZZ_CHECK(k == 0 || k == -EAGAIN || k == -E2BIG || k == -EBADMSG || k == -ENOMEM);
        if (k == 0) {
                FUZZ_CHECK(head >= 4 && head <= size);
                FUZZ_CHECK(memcmp(data + head - 4, "\r\n\r\n", 4) == 0);
                if (r.kind == REDIRECT_CODE)
                        FUZZ_CHECK(r.code && secret_len(r.code) > 0);
                if (r.kind == REDIRECT_ERROR)
                        FUZZ_CHECK(r.error);
                check_plain(r.state, 128);
                check_plain(r.error, 64);
                if (r.error_description) {
                        FUZZ_CHECK(strlen(r.error_description) <= 300);
                        FUZZ_CHECK(!fuzz_has_control_chars(r.error_description));
                }
                redirect_clear(&r);
        } else
                FUZZ_CHECK(!r.code && !r.state && !r.error);
        return 0;
}
