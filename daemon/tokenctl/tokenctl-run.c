/* aksspark-tokenctl run: start a command only with a fresh token. Checks as `check --min-valid`
 * does (the daemon refreshes first when needed), then replaces itself with the command, its
 * environment extended by where the profile's outputs are; the token itself never goes into
 * an argument or a variable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tokenctl/tokenctl.h"

/* The path of the profile's output of kind (as the check's answer lists them), or NULL. */
static const char *output_path(json_t *answer, const char *kind) {
        json_t *outputs = json_object_get(answer, "outputs");

        for (size_t i = 0; i < json_array_size(outputs); i++) {
                json_t *o = json_array_get(outputs, i);
                const char *k = tokenctl_get_string(o, "kind");

                if (k && strcmp(k, kind) == 0)
                        return tokenctl_get_string(o, "path");
        }
        return NULL;
}

int tokenctl_run(const TokenctlOptions *o, char *const *command) {
        _cleanup_(tokenctl_client_done) TokenctlClient c = { .fd = -EBADF };
        const char *raw = NULL, *kubeconfig, *token_file;
        json_t *a = NULL;
        int r;

        if (!command || !command[0])
                return tokenctl_fail(
                        TOKENCTL_EXIT_USAGE,
                        "run needs a command: aksspark-tokenctl run [--min-valid DUR] -- COMMAND [ARG...]");

        r = tokenctl_client_connect(&c, o->socket);
        if (r == 0)
                r = tokenctl_client_send_request(&c, &(TokenctlRequest) { .op = OP_CHECK,
                                                                          .profile = o->profile,
                                                                          .with_min_valid = true,
                                                                          .min_valid = o->min_valid });
        if (r == 0)
                r = tokenctl_client_read_answer(&c, now_monotonic() + TOKENCTL_WAIT_TIMEOUT, &a, &raw);
        if (r != 0)
                return r;
        if (!json_is_true(json_object_get(a, "ok"))) {
                r = tokenctl_answer_error(a);
                json_decref(a);
                return r ?: TOKENCTL_EXIT_TRANSIENT;
        }

        kubeconfig = output_path(a, "kubeconfig_output");
        token_file = output_path(a, "token_file");
        if ((kubeconfig && setenv("KUBECONFIG", kubeconfig, 1) < 0) ||
            (token_file && setenv("AKSSPARK_TOKEN_FILE", token_file, 1) < 0)) {
                json_decref(a);
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot set the environment: %s", strerror(errno));
        }
        json_decref(a);
        tokenctl_client_done(&c);
        (void) fflush(stdout);

        execvp(command[0], command);
        r = errno;
        /* As env(1) and the shells say it: 127 not found, 126 found but not runnable. */
        tokenctl_fail(r == ENOENT ? 127 : 126, "cannot run %s: %s", command[0], strerror(r));
        return r == ENOENT ? 127 : 126;
}
