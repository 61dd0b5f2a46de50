/* The commands kubectl and Spark run on every call: token and exec-credential. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json-wipe.h"
#include "base/macro.h"
#include "base/util.h"
#include "shared/kubeconfig.h"
#include "shared/protocol.h"
#include "tokenctl/tokenctl.h"

/* forbidden and busy answer the connection, not a request: nothing more will come. */
static bool connection_refused(json_t *answer) {
        ErrorCode e = error_code_from_string(tokenctl_get_string(answer, "error"));

        return !json_is_true(json_object_get(answer, "ok")) && (e == ERR_FORBIDDEN || e == ERR_BUSY);
}

/* The token, waiting for a refresh when the daemon has none yet (just started, say): a check
 * with min_valid 0 and the token request, pipelined on one connection. */
static int fetch_token(const TokenctlOptions *o, json_t **ret) {
        _cleanup_(tokenctl_client_done) TokenctlClient c = { .fd = -EBADF };
        TokenctlRequest check_req = { .op = OP_CHECK, .profile = o->profile, .with_min_valid = true };
        TokenctlRequest token_req = { .op = OP_TOKEN, .profile = o->profile };
        json_t *check = NULL, *token = NULL;
        usec_t deadline = now_monotonic() + TOKENCTL_WAIT_TIMEOUT, expires_on;
        int r;

        r = tokenctl_client_connect(&c, o->socket);
        if (r != 0)
                return r;
        r = tokenctl_client_send_request(&c, &check_req);
        if (r == 0)
                r = tokenctl_client_send_request(&c, &token_req);
        if (r == 0)
                r = tokenctl_client_read_answer(&c, deadline, &check, NULL);
        if (r != 0)
                return r;
        if (connection_refused(check)) {
                r = tokenctl_answer_error(check);
                json_decref(check);
                return r;
        }
        r = tokenctl_client_read_answer(&c, deadline, &token, NULL);
        if (r != 0) {
                json_decref(check);
                return r;
        }

        /* A failed output does not make the token less valid: only the token answer counts,
         * and the check's error explains a missing token best. */
        if (json_is_true(json_object_get(token, "ok")) && tokenctl_get_string(token, "access_token") &&
            tokenctl_get_time(token, "expires_on", &expires_on) && expires_on > now_realtime()) {
                json_decref(check);
                *ret = token;
                return 0;
        }
        r = tokenctl_answer_error(json_is_true(json_object_get(check, "ok")) ? token : check);
        json_decref(check);
        json_decref(token);
        return r;
}

int tokenctl_token(const TokenctlOptions *o) {
        json_t *a = NULL;
        const char *token;
        int r = fetch_token(o, &a);

        if (r != 0)
                return r;
        token = tokenctl_get_string(a, "access_token");
        r = tokenctl_write_line(STDOUT_FILENO, token);
        json_decref(a);
        if (r < 0)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot write the token to standard output: %s",
                                     strerror(-r));
        return 0;
}

static const char *exec_api_version_known(const char *v) {
        if (strcmp(v, KUBECONFIG_EXEC_V1) == 0)
                return KUBECONFIG_EXEC_V1;
        if (strcmp(v, KUBECONFIG_EXEC_V1BETA1) == 0)
                return KUBECONFIG_EXEC_V1BETA1;
        return NULL;
}

/* --api-version, else what client-go says in KUBERNETES_EXEC_INFO, else v1beta1 as kubelogin
 * answers: the clients that send no KUBERNETES_EXEC_INFO (fabric8, so Spark) are the older
 * ones, and fabric8 refuses an answer whose apiVersion is not its kubeconfig's. */
static int exec_api_version(const char *requested, const char **ret) {
        const char *info = getenv("KUBERNETES_EXEC_INFO");
        json_t *j, *v;
        int r = 0;

        if (requested) {
                *ret = exec_api_version_known(requested);
                return *ret ? 0
                            : tokenctl_fail(TOKENCTL_EXIT_USAGE, "--api-version: '%s' is not %s or %s.", requested,
                                            KUBECONFIG_EXEC_V1, KUBECONFIG_EXEC_V1BETA1);
        }
        *ret = KUBECONFIG_EXEC_V1BETA1;
        if (!info || !*info)
                return 0;
        j = json_loads(info, 0, NULL);
        v = json_object_get(j, "apiVersion");
        if (json_is_string(v)) {
                *ret = exec_api_version_known(json_string_value(v));
                if (!*ret)
                        r = tokenctl_fail(
                                TOKENCTL_EXIT_USAGE,
                                "kubectl asks for ExecCredential %s, which this client does not speak; set apiVersion: "
                                "%s in the kubeconfig's exec section.",
                                json_string_value(v), KUBECONFIG_EXEC_V1);
        }
        json_decref(j);
        return r;
}

int tokenctl_exec_credential(const TokenctlOptions *o) {
        const char *api_version;
        json_t *a = NULL, *out;
        char expiry[64];
        usec_t expires_on = 0;
        char *s;
        int r;

        r = exec_api_version(o->api_version, &api_version);
        if (r != 0)
                return r;
        r = fetch_token(o, &a);
        if (r != 0)
                return r;
        (void) tokenctl_get_time(a, "expires_on", &expires_on);
        format_rfc3339(expiry, sizeof expiry, expires_on);
        out = json_pack("{s:s, s:s, s:{s:b}, s:{s:s, s:s}}", "kind", "ExecCredential", "apiVersion", api_version,
                        "spec", "interactive", 0, "status", "token", tokenctl_get_string(a, "access_token"),
                        "expirationTimestamp", expiry);
        json_decref(a);
        s = out ? json_dumps(out, JSON_COMPACT) : NULL;
        json_decref(out);
        if (!s)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "out of memory");
        r = tokenctl_write_line(STDOUT_FILENO, s);
        json_wiping_free(s);
        if (r < 0)
                return tokenctl_fail(TOKENCTL_EXIT_TRANSIENT, "cannot write the credential to standard output: %s",
                                     strerror(-r));
        return 0;
}
