/* AES-256-GCM sealing with libcrypto's EVP interface: pure, no randomness of its own. */
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/seal.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);

int seal_encrypt(const uint8_t key[SEAL_KEY_SIZE], const uint8_t nonce[SEAL_NONCE_SIZE], const void *aad,
                 size_t aad_len, const void *plain, size_t plain_len, uint8_t **ret, size_t *ret_len) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
        uint8_t *out, *ct;
        size_t out_len;
        int n, fin;

        if (!key || !nonce || (!aad && aad_len > 0) || (!plain && plain_len > 0) || !ret || !ret_len)
                return -EINVAL;
        if (plain_len > SEAL_PLAINTEXT_MAX || aad_len > INT_MAX)
                return -EINVAL;

        out_len = plain_len + SEAL_OVERHEAD;
        out = malloc(out_len);
        if (!out)
                return -ENOMEM;
        memcpy(out, nonce, SEAL_NONCE_SIZE);
        ct = out + SEAL_NONCE_SIZE;

        ctx = EVP_CIPHER_CTX_new();
        if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_SIZE, NULL) != 1 ||
            EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
            (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1) ||
            EVP_EncryptUpdate(ctx, ct, &n, plain, (int) plain_len) != 1 ||
            EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1 || (size_t) (n + fin) != plain_len ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_SIZE, ct + plain_len) != 1) {
                free(out);
                return -EIO;
        }

        *ret = out;
        *ret_len = out_len;
        return 0;
}

int seal_decrypt(const uint8_t key[SEAL_KEY_SIZE], const void *aad, size_t aad_len, const uint8_t *sealed,
                 size_t sealed_len, Secret **ret) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = NULL;
        const uint8_t *ct;
        size_t ct_len;
        char *plain;
        int n = 0, fin = 0, r;

        if (!key || (!aad && aad_len > 0) || (!sealed && sealed_len > 0) || !ret || aad_len > INT_MAX)
                return -EINVAL;
        if (sealed_len < SEAL_OVERHEAD || sealed_len - SEAL_OVERHEAD > SEAL_PLAINTEXT_MAX)
                return -EBADMSG;

        ct = sealed + SEAL_NONCE_SIZE;
        ct_len = sealed_len - SEAL_OVERHEAD;
        plain = malloc(ct_len + 1);
        if (!plain)
                return -ENOMEM;

        ctx = EVP_CIPHER_CTX_new();
        if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_SIZE, NULL) != 1 ||
            EVP_DecryptInit_ex(ctx, NULL, NULL, key, sealed) != 1 ||
            (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) aad_len) != 1) ||
            EVP_DecryptUpdate(ctx, (uint8_t *) plain, &n, ct, (int) ct_len) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_SIZE, (void *) (ct + ct_len)) != 1) {
                erase_and_free(plain, ct_len + 1);
                return -EIO;
        }
        /* Only the final step checks the tag: until it passes, the bytes are not to be trusted. */
        if (EVP_DecryptFinal_ex(ctx, (uint8_t *) plain + n, &fin) != 1) {
                erase_and_free(plain, ct_len + 1);
                return -EKEYREJECTED;
        }
        if ((size_t) (n + fin) != ct_len) {
                erase_and_free(plain, ct_len + 1);
                return -EIO;
        }
        plain[ct_len] = 0;
        *ret = secret_adopt(plain, ct_len);
        r = *ret ? 0 : -ENOMEM;
        return r;
}
