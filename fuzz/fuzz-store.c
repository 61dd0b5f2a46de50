/* Fuzzes the state file parser: whatever is on disk, store_parse() accepts it whole or refuses
 * it, and what it accepts survives a write and a read unchanged. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "profile/store.h"

static bool streq_null(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool secret_same(const Secret *a, const Secret *b) {
        return (!a && !b) || (a && b && secret_equal(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        StoredProfile s = {}, again = {};
        Secret *text = NULL;
        int r;

        r = store_parse((const char *) data, size, &s);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG);
                /* ret is set only on success. */
                FUZZ_CHECK(!s.tenant && !s.refresh_token && !s.access_token);
                return 0;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(s.tenant && s.client_id && s.authority_host);
        FUZZ_CHECK(!s.refresh_token || secret_len(s.refresh_token) > 0);
        FUZZ_CHECK(!s.access_token || secret_len(s.access_token) > 0);

        r = store_serialize(&s, &text);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(secret_len(text) > 0 && secret_reveal(text)[secret_len(text) - 1] == '\n');

        r = store_parse(secret_reveal(text), secret_len(text), &again);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(streq_null(s.tenant, again.tenant));
        FUZZ_CHECK(streq_null(s.client_id, again.client_id));
        FUZZ_CHECK(streq_null(s.authority_host, again.authority_host));
        FUZZ_CHECK(streq_null(s.account, again.account));
        FUZZ_CHECK(secret_same(s.refresh_token, again.refresh_token));
        FUZZ_CHECK(secret_same(s.access_token, again.access_token));
        FUZZ_CHECK(s.obtained == again.obtained);
        FUZZ_CHECK(s.expires_on == again.expires_on);
        FUZZ_CHECK(s.refresh_in == again.refresh_in);

        secret_free(text);
        stored_profile_clear(&again);
        stored_profile_clear(&s);
        return 0;
}
