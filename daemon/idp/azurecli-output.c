/* Reading az's answer: its token and expiry on stdout, or its reason on stderr. Pure. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "base/json-wipe.h"
#include "base/jwt.h"
#include "base/secret.h"
#include "idp/azurecli-output.h"

#define EXPIRES_ON_MAX 32503680000LL /* year 3000: anything later is no expiry */

static int expires_on_seconds(const json_t *v, int64_t *ret) {
        int64_t s = 0;

        if (json_is_integer(v))
                s = json_integer_value(v);
        else if (json_is_string(v)) {
                const char *t = json_string_value(v);
                size_t n = json_string_length(v);

                if (n == 0 || n > 12)
                        return -EBADMSG;
                for (size_t i = 0; i < n; i++) {
                        if (t[i] < '0' || t[i] > '9')
                                return -EBADMSG;
                        s = s * 10 + (t[i] - '0');
                }
        } else
                return -EBADMSG;
        if (s <= 0 || s > EXPIRES_ON_MAX)
                return -EBADMSG;
        *ret = s;
        return 0;
}

int azurecli_parse_token(const char *out, size_t len, usec_t now, AadToken *ret) {
        _cleanup_(json_wipe_and_decrefp) json_t *j = NULL;
        const json_t *at, *eo;
        int64_t expires_on = 0;
        int r;

        j = json_loadb(out, len, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(j))
                return -EBADMSG;
        at = json_object_get(j, "accessToken");
        if (!json_is_string(at) || json_string_length(at) == 0)
                return -EBADMSG;

        eo = json_object_get(j, "expires_on");
        if (eo) {
                r = expires_on_seconds(eo, &expires_on);
                if (r < 0)
                        return r;
        } else {
                JwtClaims c = {};

                r = jwt_read_claims(json_string_value(at), json_string_length(at), &c);
                expires_on = c.exp;
                jwt_claims_clear(&c);
                if (r < 0 || expires_on <= 0 || expires_on > EXPIRES_ON_MAX)
                        return -EBADMSG;
        }
        if ((usec_t) expires_on * USEC_PER_SEC <= now + USEC_PER_SEC)
                return -ESTALE;

        *ret = (AadToken) {
                .access_token = secret_new(json_string_value(at), json_string_length(at)),
                .expires_in = (usec_t) expires_on * USEC_PER_SEC - now,
        };
        return ret->access_token ? 0 : -ENOMEM;
}

static bool has(const char *line, size_t n, const char *word) {
        size_t w = strlen(word);

        for (size_t i = 0; i + w <= n; i++)
                if (strncasecmp(line + i, word, w) == 0)
                        return true;
        return false;
}

/* The AADSTS codes that only a person can answer (MFA, an expired or revoked sign-in). */
static const char *const login_codes[] = {
        "AADSTS50076", "AADSTS50079", "AADSTS70043", "AADSTS700082", "AADSTS50078",
        "AADSTS50173", "AADSTS50133", "AADSTS50158", "AADSTS65001",  "AADSTS530003",
};

bool azurecli_failure_needs_login(const char *err, size_t len, char **ret_message) {
        const char *line = NULL;
        size_t n = 0;
        bool login = false;

        /* The first line with something on it is az's message. */
        for (size_t i = 0; i < len;) {
                size_t e = i, s;

                while (e < len && err[e] != '\n')
                        e++;
                s = i;
                while (s < e && (err[s] == ' ' || err[s] == '\t' || err[s] == '\r'))
                        s++;
                if (!line && s < e) {
                        line = err + s;
                        n = e - s;
                }
                if (has(err + i, e - i, "az login") || has(err + i, e - i, "interaction_required"))
                        login = true;
                for (size_t k = 0; k < sizeof login_codes / sizeof login_codes[0]; k++)
                        if (has(err + i, e - i, login_codes[k]))
                                login = true;
                i = e + 1;
        }

        if (ret_message) {
                char *m = NULL;

                while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\r' || line[n - 1] == '\t'))
                        n--;
                if (line && n > 0) {
                        n = n > AZURECLI_MESSAGE_MAX ? AZURECLI_MESSAGE_MAX : n;
                        m = malloc(n + 1);
                        if (m) {
                                for (size_t i = 0; i < n; i++)
                                        m[i] = line[i] >= 0x20 && line[i] < 0x7f ? line[i] : '?';
                                m[n] = 0;
                        }
                }
                *ret_message = m;
        }
        return login;
}
