/* Client assertions for the certificate credential: load the PEM, name the certificate, sign
 * the JWT with libcrypto. Pure: no file, no clock, no random source of its own. */
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <string.h>

#include "base/jwt.h"
#include "idp/assertion.h"

struct ClientCertificate {
        X509 *cert;
        EVP_PKEY *key;
        char *x5t;
        char *x5t_s256;
};

ClientCertificate *client_certificate_free(ClientCertificate *c) {
        if (!c)
                return NULL;
        X509_free(c->cert);
        EVP_PKEY_free(c->key); /* libcrypto clears RSA key material when freeing it */
        free(c->x5t);
        free(c->x5t_s256);
        free(c);
        return NULL;
}

static int password_cb(char *buf, int size, int rwflag, void *userdata) {
        const Secret *password = userdata;
        size_t n;

        if (!password || size <= 0)
                return -1;
        n = secret_len(password);
        if (n > (size_t) size)
                return -1;
        memcpy(buf, secret_reveal(password), n);
        return (int) n;
}

static int thumbprint(X509 *cert, const EVP_MD *md, char **ret) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (X509_digest(cert, md, digest, &n) != 1)
                return -ENOMEM;
        return base64url_encode(digest, n, ret);
}

int client_certificate_load(const Secret *pem, const Secret *password, ClientCertificate **ret) {
        _cleanup_(client_certificate_freep) ClientCertificate *c = NULL;
        BIO *bio;
        int r;

        if (!pem || !ret)
                return -EINVAL;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        bio = BIO_new_mem_buf(secret_reveal(pem), (int) secret_len(pem));
        if (!bio)
                return -ENOMEM;
        c->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!c->cert)
                return -EBADMSG;

        /* A second pass: the key may come before or after the certificate. */
        bio = BIO_new_mem_buf(secret_reveal(pem), (int) secret_len(pem));
        if (!bio)
                return -ENOMEM;
        c->key = PEM_read_bio_PrivateKey(bio, NULL, password_cb, (void *) password);
        BIO_free(bio);
        if (!c->key)
                return -ENOKEY;
        if (EVP_PKEY_base_id(c->key) != EVP_PKEY_RSA)
                return -EPROTONOSUPPORT;
        if (X509_check_private_key(c->cert, c->key) != 1)
                return -EKEYREJECTED;

        r = thumbprint(c->cert, EVP_sha1(), &c->x5t);
        if (r < 0)
                return r;
        r = thumbprint(c->cert, EVP_sha256(), &c->x5t_s256);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

const char *client_certificate_x5t(const ClientCertificate *c) {
        return c ? c->x5t : NULL;
}

const char *client_certificate_x5t_s256(const ClientCertificate *c) {
        return c ? c->x5t_s256 : NULL;
}

static int json_part(json_t *j, char **ret) {
        _cleanup_free_ char *text = NULL;

        if (!j)
                return -ENOMEM;
        text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        return base64url_encode(text, strlen(text), ret);
}

static int sign(EVP_PKEY *key, AssertionAlg alg, const char *data, size_t len, unsigned char **ret, size_t *ret_len) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        unsigned char *sig = NULL;
        size_t n = 0;
        int r = -EIO;

        if (!ctx)
                return -ENOMEM;
        if (EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, key) != 1)
                goto out;
        if (alg == ASSERTION_PS256 && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                                       EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
                goto out;
        if (EVP_DigestSign(ctx, NULL, &n, (const unsigned char *) data, len) != 1)
                goto out;
        sig = malloc(n);
        if (!sig) {
                r = -ENOMEM;
                goto out;
        }
        if (EVP_DigestSign(ctx, sig, &n, (const unsigned char *) data, len) != 1) {
                free(sig);
                goto out;
        }
        *ret = sig;
        *ret_len = n;
        r = 0;
out:
        EVP_MD_CTX_free(ctx);
        return r;
}

int client_assertion_build(const ClientCertificate *c, AssertionAlg alg, const char *client_id, const char *audience,
                           usec_t now, const char *jti, Secret **ret) {
        _cleanup_free_ char *header = NULL, *claims = NULL, *signature = NULL, *out = NULL;
        _cleanup_free_ unsigned char *sig = NULL;
        json_t *h, *j;
        json_int_t t = (json_int_t) (now / USEC_PER_SEC);
        size_t sig_len = 0;
        Secret *s;
        int r;

        if (!c || !client_id || !audience || !jti || !ret || (alg != ASSERTION_PS256 && alg != ASSERTION_RS256))
                return -EINVAL;

        h = json_pack("{s:s, s:s, s:s}", "alg", alg == ASSERTION_PS256 ? "PS256" : "RS256", "typ", "JWT",
                      alg == ASSERTION_PS256 ? "x5t#S256" : "x5t", alg == ASSERTION_PS256 ? c->x5t_s256 : c->x5t);
        r = json_part(h, &header);
        json_decref(h);
        if (r < 0)
                return r;
        j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", audience, "iss", client_id, "sub", client_id, "jti",
                      jti, "nbf", t, "iat", t, "exp", t + (json_int_t) (ASSERTION_LIFETIME / USEC_PER_SEC));
        r = json_part(j, &claims);
        json_decref(j);
        if (r < 0)
                return r;

        if (asprintf(&out, "%s.%s", header, claims) < 0) {
                out = NULL;
                return -ENOMEM;
        }
        r = sign(c->key, alg, out, strlen(out), &sig, &sig_len);
        if (r < 0)
                return r;
        r = base64url_encode(sig, sig_len, &signature);
        if (r < 0)
                return r;

        free(TAKE_PTR(out));
        if (asprintf(&out, "%s.%s.%s", header, claims, signature) < 0) {
                out = NULL;
                return -ENOMEM;
        }
        /* The assertion proves the identity for ten minutes: it is a secret. */
        s = secret_new_string(out);
        explicit_bzero(out, strlen(out));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
