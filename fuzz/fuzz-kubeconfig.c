/* Fuzzes reading the API server from a kubeconfig: any text gives the server or one of the
 * documented refusals, without leaks (libyaml documents are easy to leak on error paths). */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *server = NULL;
        int r;

        r = kubeconfig_current_server((const char *) data, size, &server);
        if (r < 0) {
                FUZZ_CHECK(r == -ENOENT || r == -ENODATA || r == -EBADMSG);
                FUZZ_CHECK(!server);
                return 0;
        }
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(server);
        free(server);
        return 0;
}
