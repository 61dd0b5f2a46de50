/* A client assertion (RFC 7523 JWT) signed with a service principal's certificate, as MSAL
 * builds one for the client-credentials grant. No I/O and no clock: the PEM text, the time and
 * the jti come in. The private key is only ever held by libcrypto and freed with the
 * certificate; the PEM text and password are the caller's Secrets. */
#pragma once

#include <stddef.h>

#include "base/macro.h"
#include "base/secret.h"
#include "base/util.h"

#define ASSERTION_LIFETIME (10 * USEC_PER_MINUTE) /* MSAL's: exp = now + 10 min */

/* PS256 with x5t#S256 is what this daemon sends (MSAL.NET's choice for Azure AD: PSS padding,
 * SHA-256 thumbprint); RS256 with the SHA-1 x5t is the older form Azure AD also accepts. */
typedef enum AssertionAlg {
        ASSERTION_PS256,
        ASSERTION_RS256,
} AssertionAlg;

typedef struct ClientCertificate ClientCertificate;

/* Parse a PEM holding a certificate and its RSA private key (in any order; an encrypted key
 * needs password, NULL otherwise). Errors: -EBADMSG no certificate, -ENOKEY no private key or a
 * wrong password, -EKEYREJECTED the key is not the certificate's, -EPROTONOSUPPORT not RSA
 * (Azure AD takes RSA certificates only), -ENOMEM. */
int client_certificate_load(const Secret *pem, const Secret *password, ClientCertificate **ret);
ClientCertificate *client_certificate_free(ClientCertificate *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ClientCertificate *, client_certificate_free);

/* base64url SHA-1 (x5t) and SHA-256 (x5t#S256) of the certificate's DER form. */
const char *client_certificate_x5t(const ClientCertificate *c);
const char *client_certificate_x5t_s256(const ClientCertificate *c);

/* header.claims.signature: header {"alg","typ":"JWT", "x5t" or "x5t#S256"}, claims aud =
 * audience (the token endpoint URL), iss = sub = client_id, jti, nbf = iat = now, exp = now +
 * ASSERTION_LIFETIME (now in unix usec). */
int client_assertion_build(const ClientCertificate *c, AssertionAlg alg, const char *client_id, const char *audience,
                           usec_t now, const char *jti, Secret **ret);
