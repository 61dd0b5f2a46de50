/* PKCE S256 and the sign-in's state, from random bytes the caller provides. */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "base/jwt.h"
#include "idp/pkce.h"

int pkce_challenge(const char *verifier, char ret[static PKCE_CHALLENGE_LEN + 1]) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        _cleanup_free_ char *s = NULL;
        int r;

        if (!verifier)
                return -EINVAL;
        if (EVP_Digest(verifier, strlen(verifier), digest, &n, EVP_sha256(), NULL) != 1 || n != 32)
                return -EIO;
        r = base64url_encode(digest, n, &s);
        if (r < 0)
                return r;
        if (strlen(s) != PKCE_CHALLENGE_LEN)
                return -EIO;
        memcpy(ret, s, PKCE_CHALLENGE_LEN + 1);
        return 0;
}

int pkce_new(const uint8_t random[static PKCE_RANDOM_BYTES], Pkce *ret) {
        _cleanup_free_ char *state = NULL;
        char *verifier = NULL;
        Pkce p = {};
        int r;

        if (!ret)
                return -EINVAL;
        r = base64url_encode(random, 32, &verifier);
        if (r < 0)
                return r;
        p.verifier = secret_adopt(verifier, strlen(verifier));
        if (!p.verifier)
                return -ENOMEM;
        r = pkce_challenge(secret_reveal(p.verifier), p.challenge);
        if (r >= 0)
                r = base64url_encode(random + 32, 16, &state);
        if (r < 0) {
                pkce_clear(&p);
                return r;
        }
        memcpy(p.state, state, PKCE_STATE_LEN + 1);
        *ret = p;
        return 0;
}

void pkce_clear(Pkce *p) {
        if (!p)
                return;
        secret_free(p->verifier);
        *p = (Pkce) {};
}
