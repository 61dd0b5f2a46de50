/* Fuzzes the reading of az's answer: the input as its stdout (a token or nothing, never a
 * crash) and as its stderr (a verdict and one clean line of at most AZURECLI_MESSAGE_MAX). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/secret.h"
#include "fuzz.h"
#include "idp/azurecli-output.h"

#define NOW (1764889200ULL * USEC_PER_SEC)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *in = (const char *) data;
        AadToken t = {};
        char *m = NULL;
        int r;

        r = azurecli_parse_token(in, size, NOW, &t);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -ESTALE || r == -ENOMEM);
                FUZZ_CHECK(!t.access_token);
        } else {
                FUZZ_CHECK(r == 0 && t.access_token && secret_len(t.access_token) > 0);
                FUZZ_CHECK(t.expires_in > 0 && !t.refresh_token);
                aad_token_clear(&t);
        }

        (void) azurecli_failure_needs_login(in, size, &m);
        if (m) {
                FUZZ_CHECK(*m && strlen(m) <= AZURECLI_MESSAGE_MAX);
                FUZZ_CHECK(!fuzz_has_control_chars(m));
                FUZZ_CHECK(strchr(m, '\n') == NULL);
        }
        free(m);
        return 0;
}
