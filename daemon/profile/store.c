/* The state directory: one 0600 JSON file per profile with what a restart needs, and the lock. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/json-wipe.h"
#include "base/jwt.h"
#include "base/macro.h"
#include "base/seal.h"
#include "profile/store.h"

/* 1: everything in clear. 2: the tokens sealed in "sealed", the rest in clear and bound to
 * them as associated data. */
#define STORE_FORMAT_CLEAR 1
#define STORE_FORMAT_SEALED 2
/* Tokens are a few KiB; anything near this is not a file we wrote. */
#define STORE_FILE_MAX (1024 * 1024)

void stored_profile_clear(StoredProfile *s) {
        if (!s)
                return;
        free(s->tenant);
        free(s->client_id);
        free(s->authority_host);
        free(s->server_id);
        free(s->auth);
        secret_free(s->refresh_token);
        secret_free(s->access_token);
        free(s->account);
        *s = (StoredProfile) {};
}

static int json_set_string(json_t *o, const char *key, const char *value, size_t len) {
        json_t *v = json_stringn(value, len);

        if (!v)
                return -ENOMEM;
        return json_object_set_new(o, key, v) < 0 ? -ENOMEM : 0;
}

static int json_set_usec(json_t *o, const char *key, usec_t value) {
        if (value > (usec_t) LLONG_MAX)
                return -ERANGE;
        return json_object_set_new(o, key, json_integer((json_int_t) value)) < 0 ? -ENOMEM : 0;
}

/* Dump o straight into our own buffer (no jansson-internal copy), twice: size, then bytes. */
static int json_dump_secret(json_t *o, size_t flags, bool newline, Secret **ret) {
        size_t size;
        char *buf;

        size = json_dumpb(o, NULL, 0, flags);
        if (size == 0)
                return -ENOMEM;
        buf = malloc(size + 2);
        if (!buf)
                return -ENOMEM;
        if (json_dumpb(o, buf, size, flags) != size) {
                erase_and_free(buf, size + 2);
                return -EIO;
        }
        if (newline)
                buf[size++] = '\n';
        buf[size] = 0;

        *ret = secret_adopt(buf, size);
        return *ret ? 0 : -ENOMEM;
}

static int json_set_secret(json_t *o, const char *key, const Secret *value) {
        if (!value)
                return 0;
        return json_set_string(o, key, secret_reveal(value), secret_len(value));
}

/* What sealed tokens are bound to: the format and the identity they were issued for, so that
 * neither a file moved to another profile nor an edited identity decrypts. */
static int store_associated_data(const char *tenant, const char *client_id, const char *authority_host,
                                 const char *server_id, const char *auth, char **ret) {
        json_t *a = json_pack("[siss?s?s?s?]", "aksspark-tokend state", STORE_FORMAT_SEALED, tenant, client_id,
                              authority_host, server_id, auth ? auth : STORE_AUTH_DEFAULT);
        char *text;

        if (!a)
                return -ENOMEM;
        text = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

/* The file's fields that stay in clear. */
static int store_json_clear_fields(const StoredProfile *s, int version, json_t **ret) {
        json_t *o;
        int r = -ENOMEM;

        o = json_object();
        if (!o)
                return -ENOMEM;
        if (json_object_set_new(o, "version", json_integer(version)) < 0)
                goto fail;

        struct {
                const char *key;
                const char *value;
        } strings[] = {
                { "tenant", s->tenant },       { "client_id", s->client_id }, { "authority_host", s->authority_host },
                { "server_id", s->server_id }, { "auth", s->auth },           { "account", s->account },
        };
        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                if (strings[i].value) {
                        r = json_set_string(o, strings[i].key, strings[i].value, strlen(strings[i].value));
                        if (r < 0)
                                goto fail;
                }

        r = json_set_usec(o, "obtained_usec", s->obtained);
        if (r >= 0)
                r = json_set_usec(o, "expires_on_usec", s->expires_on);
        if (r >= 0)
                r = json_set_usec(o, "refresh_in_usec", s->refresh_in);
        if (r < 0)
                goto fail;
        *ret = o;
        return 0;

fail:
        json_decref(o);
        return r;
}

int store_serialize(const StoredProfile *s, Secret **ret) {
        json_t *o = NULL;
        int r;

        if (!s || !ret)
                return -EINVAL;

        r = store_json_clear_fields(s, STORE_FORMAT_CLEAR, &o);
        if (r >= 0)
                r = json_set_secret(o, "refresh_token", s->refresh_token);
        if (r >= 0)
                r = json_set_secret(o, "access_token", s->access_token);
        if (r >= 0)
                r = json_dump_secret(o, JSON_INDENT(2), true, ret);
        json_wipe_and_decref(o);
        return r;
}

/* The tokens alone, as compact JSON: what gets sealed. */
static int store_secrets_text(const StoredProfile *s, Secret **ret) {
        json_t *o = json_object();
        int r;

        if (!o)
                return -ENOMEM;
        r = json_set_secret(o, "refresh_token", s->refresh_token);
        if (r >= 0)
                r = json_set_secret(o, "access_token", s->access_token);
        if (r >= 0)
                r = json_dump_secret(o, JSON_COMPACT, false, ret);
        json_wipe_and_decref(o);
        return r;
}

int store_serialize_sealed(const StoredProfile *s, const uint8_t key[SEAL_KEY_SIZE],
                           const uint8_t nonce[SEAL_NONCE_SIZE], Secret **ret) {
        _cleanup_secret_ Secret *secrets = NULL;
        _cleanup_free_ char *aad = NULL, *encoded = NULL;
        _cleanup_free_ uint8_t *sealed = NULL;
        size_t sealed_len;
        json_t *o = NULL;
        int r;

        if (!s || !key || !nonce || !ret)
                return -EINVAL;

        r = store_associated_data(s->tenant, s->client_id, s->authority_host, s->server_id, s->auth, &aad);
        if (r < 0)
                return r;
        r = store_secrets_text(s, &secrets);
        if (r < 0)
                return r;
        r = seal_encrypt(key, nonce, aad, strlen(aad), secret_reveal(secrets), secret_len(secrets), &sealed,
                         &sealed_len);
        if (r < 0)
                return r;
        r = base64url_encode(sealed, sealed_len, &encoded);
        if (r < 0)
                return r;

        r = store_json_clear_fields(s, STORE_FORMAT_SEALED, &o);
        if (r >= 0)
                r = json_set_string(o, "sealed", encoded, strlen(encoded));
        if (r >= 0)
                r = json_dump_secret(o, JSON_INDENT(2), true, ret);
        json_decref(o);
        return r;
}

/* A missing key or JSON null gives NULL; a value of another type is corrupt. */
static int json_get_string(json_t *o, const char *key, const char **ret_value, size_t *ret_len) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                *ret_value = NULL;
                *ret_len = 0;
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        *ret_value = json_string_value(v);
        *ret_len = json_string_length(v);
        return 0;
}

static int json_get_strdup(json_t *o, const char *key, bool required, char **ret) {
        const char *value;
        size_t len;
        int r;

        r = json_get_string(o, key, &value, &len);
        if (r < 0)
                return r;
        if (!value) {
                if (required)
                        return -EBADMSG;
                *ret = NULL;
                return 0;
        }
        if (strlen(value) != len) /* embedded NUL: not something we wrote */
                return -EBADMSG;
        *ret = strdup(value);
        return *ret ? 0 : -ENOMEM;
}

static int json_get_secret(json_t *o, const char *key, Secret **ret) {
        const char *value;
        size_t len;
        int r;

        r = json_get_string(o, key, &value, &len);
        if (r < 0)
                return r;
        if (!value || len == 0) {
                *ret = NULL;
                return 0;
        }
        *ret = secret_new(value, len);
        return *ret ? 0 : -ENOMEM;
}

static int json_get_usec(json_t *o, const char *key, usec_t *ret) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EBADMSG;
        *ret = (usec_t) json_integer_value(v);
        return 0;
}

/* The tokens of a sealed file, into s (whose identity is already read: it is the associated data). */
static int store_unseal(json_t *o, const uint8_t *key, StoredProfile *s) {
        _cleanup_secret_ Secret *plain = NULL;
        _cleanup_free_ char *aad = NULL;
        const char *encoded;
        char *blob = NULL;
        size_t encoded_len, blob_len;
        json_error_t error;
        json_t *inner;
        int r;

        r = json_get_string(o, "sealed", &encoded, &encoded_len);
        if (r < 0)
                return r;
        if (!encoded)
                return -EBADMSG;
        if (!key)
                return -ENOKEY;

        if (base64url_decode(encoded, encoded_len, &blob, &blob_len) < 0)
                return -EBADMSG;
        r = store_associated_data(s->tenant, s->client_id, s->authority_host, s->server_id, s->auth, &aad);
        if (r >= 0)
                r = seal_decrypt(key, aad, strlen(aad), (const uint8_t *) blob, blob_len, &plain);
        free(blob);
        if (r < 0)
                return r;

        inner = json_loadb(secret_reveal(plain), secret_len(plain), JSON_REJECT_DUPLICATES, &error);
        explicit_bzero(&error, sizeof error); /* its excerpt of the text may hold a token */
        if (!inner)
                return -EBADMSG;
        r = json_is_object(inner) ? 0 : -EBADMSG;
        if (r >= 0)
                r = json_get_secret(inner, "refresh_token", &s->refresh_token);
        if (r >= 0)
                r = json_get_secret(inner, "access_token", &s->access_token);
        json_wipe_and_decref(inner);
        return r;
}

int store_parse(const char *text, size_t len, StoredProfile *ret) {
        return store_parse_sealed(text, len, NULL, ret);
}

int store_parse_sealed(const char *text, size_t len, const uint8_t *key, StoredProfile *ret) {
        _cleanup_(stored_profile_clear) StoredProfile s = {};
        json_t *o, *version;
        json_error_t error;
        json_int_t format;
        int r;

        if (!text || !ret)
                return -EINVAL;
        if (len == 0 || len > STORE_FILE_MAX)
                return -EBADMSG;

        o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
        if (!o)
                return -EBADMSG;

        r = -EBADMSG;
        if (!json_is_object(o))
                goto finish;
        version = json_object_get(o, "version");
        if (!json_is_integer(version))
                goto finish;
        format = json_integer_value(version);
        if (format != STORE_FORMAT_CLEAR && format != STORE_FORMAT_SEALED)
                goto finish;

        r = json_get_strdup(o, "tenant", true, &s.tenant);
        if (r >= 0)
                r = json_get_strdup(o, "client_id", true, &s.client_id);
        if (r >= 0)
                r = json_get_strdup(o, "authority_host", true, &s.authority_host);
        /* Files from before these were recorded: server_id unknown, auth the only one there was. */
        if (r >= 0)
                r = json_get_strdup(o, "server_id", false, &s.server_id);
        if (r >= 0)
                r = json_get_strdup(o, "auth", false, &s.auth);
        if (r >= 0 && !s.auth) {
                s.auth = strdup(STORE_AUTH_DEFAULT);
                if (!s.auth)
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = json_get_strdup(o, "account", false, &s.account);
        s.sealed = format == STORE_FORMAT_SEALED;
        if (r >= 0 && s.sealed)
                r = store_unseal(o, key, &s);
        else if (r >= 0) /* a clear file, from before sealing or state_protection = none */
                r = json_get_secret(o, "refresh_token", &s.refresh_token);
        if (r >= 0 && format == STORE_FORMAT_CLEAR)
                r = json_get_secret(o, "access_token", &s.access_token);
        if (r >= 0)
                r = json_get_usec(o, "obtained_usec", &s.obtained);
        if (r >= 0)
                r = json_get_usec(o, "expires_on_usec", &s.expires_on);
        if (r >= 0)
                r = json_get_usec(o, "refresh_in_usec", &s.refresh_in);
        if (r < 0)
                goto finish;

        *ret = s;
        s = (StoredProfile) {};
        r = 0;

finish:
        json_wipe_and_decref(o);
        return r;
}

static int store_path(const char *state_dir, const char *profile, char **ret) {
        if (!state_dir || !*state_dir || !profile_name_is_valid(profile))
                return -EINVAL;
        if (asprintf(ret, "%s/%s.json", state_dir, profile) < 0)
                return -ENOMEM;
        return 0;
}

int store_load(const char *state_dir, const char *profile, StoredProfile *ret) {
        return store_load_sealed(state_dir, profile, NULL, ret);
}

int store_load_sealed(const char *state_dir, const char *profile, const uint8_t *key, StoredProfile *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        char *data = NULL;
        size_t len = 0;
        struct stat st;
        int r;

        r = store_path(state_dir, profile, &path);
        if (r < 0)
                return r;

        /* A symlink or FIFO planted here is not a state file we wrote: don't follow or block on it. */
        fd = open_regular_nofollow(path, &st);
        if (fd < 0)
                return fd;
        if (st.st_size > STORE_FILE_MAX)
                return -EBADMSG;
        /* The file holds a refresh token: a wider mode (someone's chmod, an old backup) is
         * narrowed, not refused, so the daemon keeps working. */
        if ((st.st_mode & 07777) != 0600)
                (void) fchmod(fd, 0600);

        data = malloc((size_t) st.st_size + 1);
        if (!data)
                return -ENOMEM;
        while (len <= (size_t) st.st_size) {
                ssize_t n = read(fd, data + len, (size_t) st.st_size + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        erase_and_free(data, (size_t) st.st_size + 1);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > (size_t) st.st_size) /* grew under us: not our atomic writes */
                r = -EBADMSG;
        else
                r = store_parse_sealed(data, len, key, ret);
        erase_and_free(data, (size_t) st.st_size + 1);
        return r;
}

int store_save(const char *state_dir, const char *profile, const StoredProfile *s) {
        _cleanup_secret_ Secret *text = NULL;
        int r;

        r = store_serialize(s, &text);
        if (r < 0)
                return r;
        return store_save_text(state_dir, profile, text);
}

int store_save_text(const char *state_dir, const char *profile, const Secret *text) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r;

        r = store_path(state_dir, profile, &path);
        if (r < 0)
                return r;

        /* atomic_replace() writes through a symlink (right for outputs); a symlink here is not
         * ours and would carry the refresh token elsewhere: replace the link itself. */
        if (lstat(path, &st) >= 0 && S_ISLNK(st.st_mode) && unlink(path) < 0 && errno != ENOENT)
                return -errno;
        /* Temp files a crash left behind hold old refresh tokens: only the lock holder saves. */
        (void) atomic_remove_stale_temps(path);

        return atomic_replace(path, secret_reveal(text), secret_len(text), 0600, ATOMIC_MKDIR_PARENTS, NULL);
}

int store_remove(const char *state_dir, const char *profile) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int dfd = -EBADF;
        int r;

        r = store_path(state_dir, profile, &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : -errno;

        /* A logout must survive a power loss: the old refresh token must not come back. */
        dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return -errno;
        return 0;
}

static pid_t lock_read_holder(int fd) {
        char buf[32];
        ssize_t n;
        char *end;
        long v;

        n = pread(fd, buf, sizeof buf - 1, 0);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        errno = 0;
        v = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || (*end != '\n' && *end != 0) || v <= 0 || v > INT_MAX)
                return 0;
        return (pid_t) v;
}

int store_lock(const char *state_dir, int *ret_fd, pid_t *ret_holder) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        char buf[32];
        ssize_t w;
        int r, n;

        if (!state_dir || !*state_dir || !ret_fd)
                return -EINVAL;

        r = mkdir_parents(state_dir, 0700);
        if (r < 0)
                return r;
        if (asprintf(&path, "%s/lock", state_dir) < 0)
                return -ENOMEM;

        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;

        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                if (r != -EWOULDBLOCK)
                        return r;
                if (ret_holder)
                        *ret_holder = lock_read_holder(fd);
                return -EBUSY;
        }

        n = snprintf(buf, sizeof buf, "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0)
                return -errno;
        w = pwrite(fd, buf, (size_t) n, 0);
        if (w < 0)
                return -errno;
        if (w != n)
                return -EIO;

        *ret_fd = TAKE_FD(fd);
        return 0;
}
