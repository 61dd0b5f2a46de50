/* Where the state file's key comes from: systemd's credentials on a jump host, the desktop's
 * Secret Service on a workstation, or nowhere (state_protection = none). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/util.h"
#include "profile/state-key.h"

#define SECRETS_BUS "org.freedesktop.secrets"
#define SECRETS_PATH "/org/freedesktop/secrets"
#define SECRETS_SERVICE "org.freedesktop.Secret.Service"
#define SECRETS_COLLECTION "org.freedesktop.Secret.Collection"
#define SECRETS_ITEM "org.freedesktop.Secret.Item"
/* The attributes the key's item is found by (what secret-tool lookup takes). */
#define KEY_ATTRIBUTES 2, "application", "aksspark-tokend", "purpose", "state-key"

const uint8_t *state_key_bytes(const StateKey *k) {
        return k && k->protection != STATE_PROTECTION_NONE && k->available ? k->bytes : NULL;
}

void state_key_clear(StateKey *k) {
        if (k)
                explicit_bzero(k->bytes, sizeof k->bytes);
}

int state_key_read_credential(const char *credentials_dir, uint8_t ret[SEAL_KEY_SIZE]) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint8_t buf[SEAL_KEY_SIZE + 1];
        size_t len = 0;
        struct stat st;
        int r = 0;

        if (!credentials_dir || !*credentials_dir)
                return -ENOENT;
        if (asprintf(&path, "%s/state-key", credentials_dir) < 0)
                return -ENOMEM;
        fd = open_regular_nofollow(path, &st);
        if (fd < 0)
                return fd;

        while (len < sizeof buf) {
                ssize_t n = read(fd, buf + len, sizeof buf - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (r >= 0 && len != SEAL_KEY_SIZE)
                r = -EBADMSG;
        if (r >= 0)
                memcpy(ret, buf, SEAL_KEY_SIZE);
        explicit_bzero(buf, sizeof buf);
        return r;
}

static void strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

/* The whole exchange shares one deadline: each call may wait only what is left of it. */
static int bus_call_budget(sd_bus *bus, usec_t deadline) {
        usec_t now = now_monotonic();

        if (now >= deadline)
                return -ETIMEDOUT;
        return sd_bus_set_method_call_timeout(bus, deadline - now);
}

/* The Secret Service's answer is the key: wipe the message when it is freed. */
static void message_sensitive(sd_bus_message *m) {
        if (m)
                (void) sd_bus_message_sensitive(m);
}

static int keyring_read_item(sd_bus *bus, const char *item, const char *session, uint8_t ret[SEAL_KEY_SIZE]) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const void *params, *value;
        size_t params_len, value_len;
        const char *s;
        int r;

        r = sd_bus_call_method(bus, SECRETS_BUS, item, SECRETS_ITEM, "GetSecret", &error, &reply, "o", session);
        message_sensitive(reply);
        if (r < 0)
                return r == -ETIMEDOUT ? r : -ENOLCK;
        r = sd_bus_message_enter_container(reply, 'r', "oayays");
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &s);
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &params, &params_len);
        if (r >= 0)
                r = sd_bus_message_read_array(reply, 'y', &value, &value_len);
        if (r < 0)
                return -EBADMSG;
        if (value_len != SEAL_KEY_SIZE)
                return -EBADMSG;
        memcpy(ret, value, SEAL_KEY_SIZE);
        return 0;
}

/* A new random key as an item of the default collection: only when that is unlocked, since
 * unlocking or creating a collection needs a person at a prompt. */
static int keyring_create_item(sd_bus *bus, const char *session, uint8_t ret[SEAL_KEY_SIZE], usec_t deadline) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *m = NULL;
        uint8_t key[SEAL_KEY_SIZE];
        const char *collection, *item, *prompt;
        _cleanup_free_ char *collection_path = NULL;
        int locked = true;
        int r;

        r = sd_bus_call_method(bus, SECRETS_BUS, SECRETS_PATH, SECRETS_SERVICE, "ReadAlias", &error, &reply, "s",
                               "default");
        if (r < 0)
                return r == -ETIMEDOUT ? r : -ENOLCK;
        r = sd_bus_message_read(reply, "o", &collection);
        if (r < 0)
                return -EBADMSG;
        if (streq(collection, "/"))
                return -ENOLCK; /* no default collection yet */
        collection_path = strdup(collection);
        if (!collection_path)
                return -ENOMEM;
        reply = sd_bus_message_unref(reply);

        r = bus_call_budget(bus, deadline);
        if (r < 0)
                return r;
        r = sd_bus_get_property_trivial(bus, SECRETS_BUS, collection_path, SECRETS_COLLECTION, "Locked", &error, 'b',
                                        &locked);
        if (r < 0)
                return r == -ETIMEDOUT ? r : -ENOLCK;
        if (locked)
                return -ENOLCK;

        if (getrandom(key, sizeof key, 0) != (ssize_t) sizeof key)
                return -EIO;

        r = sd_bus_message_new_method_call(bus, &m, SECRETS_BUS, collection_path, SECRETS_COLLECTION, "CreateItem");
        if (r < 0)
                goto finish;
        message_sensitive(m);
        r = sd_bus_message_append(m, "a{sv}", 2, "org.freedesktop.Secret.Item.Label", "s", "aksspark-tokend state key",
                                  "org.freedesktop.Secret.Item.Attributes", "a{ss}", KEY_ATTRIBUTES);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'r', "oayays");
        if (r >= 0)
                r = sd_bus_message_append(m, "o", session);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', NULL, 0);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', key, sizeof key);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", "application/octet-stream");
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", 0);
        if (r < 0)
                goto finish;

        r = bus_call_budget(bus, deadline);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                r = r == -ETIMEDOUT ? r : -ENOLCK;
                goto finish;
        }
        r = sd_bus_message_read(reply, "oo", &item, &prompt);
        if (r < 0) {
                r = -EBADMSG;
                goto finish;
        }
        if (!streq(prompt, "/")) { /* it wants a person: not stored */
                r = -ENOLCK;
                goto finish;
        }
        memcpy(ret, key, sizeof key);
        r = 0;

finish:
        explicit_bzero(key, sizeof key);
        return r;
}

int state_key_from_keyring(uint64_t timeout, bool activate, uint8_t ret[SEAL_KEY_SIZE]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *m = NULL;
        _cleanup_(strv_freep) char **unlocked = NULL, **locked = NULL;
        _cleanup_free_ char *session = NULL;
        usec_t deadline;
        const char *s;
        int r;

        r = sd_bus_open_user(&bus);
        if (r < 0)
                return -EHOSTDOWN;
        deadline = now_monotonic() + timeout;
        r = bus_call_budget(bus, deadline);
        if (r < 0)
                return r;

        /* "plain": the secret crosses the bus unencrypted, which the session bus (a socket of
         * this user's only) allows; "dh" would add a key exchange for nothing here. */
        r = sd_bus_message_new_method_call(bus, &m, SECRETS_BUS, SECRETS_PATH, SECRETS_SERVICE, "OpenSession");
        if (r >= 0)
                r = sd_bus_message_set_auto_start(m, activate);
        if (r >= 0)
                r = sd_bus_message_append(m, "sv", "plain", "s", "");
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return r == -ETIMEDOUT ? r : -EHOSTDOWN;
        r = sd_bus_message_skip(reply, "v");
        if (r >= 0)
                r = sd_bus_message_read(reply, "o", &s);
        if (r < 0)
                return -EBADMSG;
        session = strdup(s);
        if (!session)
                return -ENOMEM;
        reply = sd_bus_message_unref(reply);

        r = bus_call_budget(bus, deadline);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, SECRETS_BUS, SECRETS_PATH, SECRETS_SERVICE, "SearchItems", &error, &reply, "a{ss}",
                               KEY_ATTRIBUTES);
        if (r < 0)
                return r == -ETIMEDOUT ? r : -EHOSTDOWN;
        r = sd_bus_message_read_strv(reply, &unlocked);
        if (r >= 0)
                r = sd_bus_message_read_strv(reply, &locked);
        if (r < 0)
                return -EBADMSG;

        if (locked && locked[0] && !(unlocked && unlocked[0]))
                return -ENOLCK;
        r = bus_call_budget(bus, deadline);
        if (r < 0)
                return r;
        if (unlocked && unlocked[0])
                return keyring_read_item(bus, unlocked[0], session, ret);
        return keyring_create_item(bus, session, ret, deadline);
}

void state_key_load(StateProtection wanted, const char *credentials_dir, uint64_t keyring_timeout, StateKey *ret) {
        StateKey k = { .protection = wanted };
        int r;

        switch (wanted) {
        case STATE_PROTECTION_NONE:
                k.available = false;
                break;
        case STATE_PROTECTION_SYSTEMD_CREDS:
                r = state_key_read_credential(credentials_dir, k.bytes);
                k.available = r >= 0;
                k.error = MIN(r, 0);
                break;
        case STATE_PROTECTION_KEYRING:
                r = state_key_from_keyring(keyring_timeout, true, k.bytes);
                k.available = r >= 0;
                k.error = MIN(r, 0);
                break;
        default: /* auto: the first key holder that is there */
                r = state_key_read_credential(credentials_dir, k.bytes);
                if (r != -ENOENT) { /* there, but perhaps not 32 bytes: that is an error, not none */
                        k.protection = STATE_PROTECTION_SYSTEMD_CREDS;
                        k.available = r >= 0;
                        k.error = MIN(r, 0);
                        break;
                }
                /* Only a Secret Service that runs already: auto does not start one (a headless
                 * session's would have no unlocked keyring, and would stay behind). */
                r = state_key_from_keyring(keyring_timeout, false, k.bytes);
                if (r >= 0) {
                        k.protection = STATE_PROTECTION_KEYRING;
                        k.available = true;
                        break;
                }
                /* Nothing holds a key: clear, as before (doctor warns); error says why. */
                k = (StateKey) { .protection = STATE_PROTECTION_NONE, .error = r };
                break;
        }
        *ret = k;
        explicit_bzero(&k, sizeof k);
}
