/* The key that seals the state file (state_protection): where it comes from, and which
 * protection is in force. The daemon only ever reads a key; it never writes one anywhere. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "base/seal.h"
#include "shared/config.h"

typedef struct StateKey {
        StateProtection protection; /* in force: SYSTEMD_CREDS, KEYRING or NONE (never AUTO) */
        bool available;             /* false: protection wanted, key missing (saves are refused) */
        int error;                  /* why not available: -ENOENT, -EBADMSG, ... */
        uint8_t bytes[SEAL_KEY_SIZE];
} StateKey;

/* The key for a save or load: NULL when the state is kept in clear (protection none) or the key
 * is missing. */
const uint8_t *state_key_bytes(const StateKey *k);

/* $CREDENTIALS_DIRECTORY/state-key into ret: -ENOENT when credentials_dir is NULL or holds none,
 * -EBADMSG when it is not exactly SEAL_KEY_SIZE bytes or not a regular file. A file on the
 * service's own tmpfs: reading it cannot stall. */
int state_key_read_credential(const char *credentials_dir, uint8_t ret[SEAL_KEY_SIZE]);

/* The key from the session's Secret Service (org.freedesktop.secrets), made once (random) and
 * kept there when it has none: -EHOSTDOWN no session bus or no service, -ENOLCK the default
 * collection is locked (unlocking needs a person at a prompt), -ETIMEDOUT it did not answer
 * within timeout: the whole exchange waits at most that long. activate: let the bus start the
 * service (D-Bus activation) when none runs. */
int state_key_from_keyring(uint64_t timeout, bool activate, uint8_t ret[SEAL_KEY_SIZE]);

/* Decide the protection in force for wanted (auto tries systemd-creds, then keyring, then none)
 * and get its key. Never fails: a wanted key that cannot be had leaves available false and the
 * reason in error, for the caller to log. */
void state_key_load(StateProtection wanted, const char *credentials_dir, uint64_t keyring_timeout, StateKey *ret);

/* Wipe the key bytes. */
void state_key_clear(StateKey *k);
