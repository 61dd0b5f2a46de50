/* Sealing bytes at rest: AES-256-GCM with associated data. Pure (key, nonce and bytes are
 * arguments); the caller brings a fresh random nonce for every seal. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "base/secret.h"

#define SEAL_KEY_SIZE 32
#define SEAL_NONCE_SIZE 12
#define SEAL_TAG_SIZE 16
#define SEAL_OVERHEAD (SEAL_NONCE_SIZE + SEAL_TAG_SIZE)
/* What a sealed blob may hold at most: the state file's secrets are a few KiB. */
#define SEAL_PLAINTEXT_MAX (1024 * 1024)

/* plain (plain_len bytes) sealed under key and aad: *ret is nonce || ciphertext || tag,
 * plain_len + SEAL_OVERHEAD bytes (malloc'd). -EINVAL for a NULL argument or an oversized plain;
 * -ENOMEM; -EIO when libcrypto fails. */
int seal_encrypt(const uint8_t key[SEAL_KEY_SIZE], const uint8_t nonce[SEAL_NONCE_SIZE], const void *aad,
                 size_t aad_len, const void *plain, size_t plain_len, uint8_t **ret, size_t *ret_len);

/* The opposite: *ret the plain bytes as a Secret. -EBADMSG when sealed is too short or too long,
 * -EKEYREJECTED when the tag does not match (another key, other associated data, altered bytes);
 * -ENOMEM; -EIO. */
int seal_decrypt(const uint8_t key[SEAL_KEY_SIZE], const void *aad, size_t aad_len, const uint8_t *sealed,
                 size_t sealed_len, Secret **ret);
