/* Fuzzes the sealed state file reader: with the fuzzer's fixed key, store_parse_sealed() accepts
 * a file whole or refuses it (corrupt, or sealed under another key or identity), and what it
 * accepts survives a sealed write and a read unchanged. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "profile/store.h"

/* The key the seeds in corpus/store-sealed were sealed with (fuzz/corpus/store-sealed/README). */
static const uint8_t key[SEAL_KEY_SIZE] = "aksspark-tokend fuzz key 32 byte";
static const uint8_t nonce[SEAL_NONCE_SIZE] = "fuzz nonce 1";

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

        r = store_parse_sealed((const char *) data, size, key, &s);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EKEYREJECTED);
                FUZZ_CHECK(!s.tenant && !s.refresh_token && !s.access_token);
                return 0;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(s.tenant && s.client_id && s.authority_host && s.auth);
        FUZZ_CHECK(!s.refresh_token || secret_len(s.refresh_token) > 0);

        /* Without the key a sealed file is refused, a clear one read the same. */
        r = store_parse_sealed((const char *) data, size, NULL, &again);
        FUZZ_CHECK(s.sealed ? r == -ENOKEY : r == 0);
        stored_profile_clear(&again);

        r = store_serialize_sealed(&s, key, nonce, &text);
        FUZZ_CHECK(r == 0);
        r = store_parse_sealed(secret_reveal(text), secret_len(text), key, &again);
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(again.sealed);
        FUZZ_CHECK(streq_null(s.tenant, again.tenant));
        FUZZ_CHECK(streq_null(s.client_id, again.client_id));
        FUZZ_CHECK(streq_null(s.authority_host, again.authority_host));
        FUZZ_CHECK(streq_null(s.server_id, again.server_id));
        FUZZ_CHECK(streq_null(s.auth, again.auth));
        FUZZ_CHECK(streq_null(s.account, again.account));
        FUZZ_CHECK(secret_same(s.refresh_token, again.refresh_token));
        FUZZ_CHECK(secret_same(s.access_token, again.access_token));
        FUZZ_CHECK(s.obtained == again.obtained && s.expires_on == again.expires_on &&
                   s.refresh_in == again.refresh_in);

        secret_free(text);
        stored_profile_clear(&again);
        stored_profile_clear(&s);
        return 0;
}
