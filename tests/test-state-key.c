/* Tests for where the state key comes from: the credential file's rules, and auto's choice when
 * there is neither a credential nor a session bus. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile/state-key.h"
#include "testlib.h"

static void write_key(const char *dir, const char *bytes, size_t len) {
        _cleanup_free_ char *path = testlib_path(dir, "state-key");
        int fd;

        (void) unlink(path);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0400);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, bytes, len), (ssize_t) len);
        close(fd);
}

START_TEST(test_credential_file) {
        const char key[] = "0123456789abcdef0123456789abcdef!";
        uint8_t got[SEAL_KEY_SIZE] = {};
        _cleanup_free_ char *path = testlib_path(testlib_scratch, "state-key");

        ck_assert_int_eq(state_key_read_credential(NULL, got), -ENOENT);
        ck_assert_int_eq(state_key_read_credential(testlib_scratch, got), -ENOENT);

        write_key(testlib_scratch, key, 32);
        ck_assert_int_eq(state_key_read_credential(testlib_scratch, got), 0);
        ck_assert_mem_eq(got, key, 32);

        /* Exactly 32 bytes: one fewer or one more is not a key. */
        write_key(testlib_scratch, key, 31);
        ck_assert_int_eq(state_key_read_credential(testlib_scratch, got), -EBADMSG);
        write_key(testlib_scratch, key, 33);
        ck_assert_int_eq(state_key_read_credential(testlib_scratch, got), -EBADMSG);

        /* Not followed: a symlink planted there. */
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(symlink("/etc/hostname", path), 0);
        ck_assert_int_eq(state_key_read_credential(testlib_scratch, got), -EBADMSG);
}
END_TEST

START_TEST(test_load_decides) {
        const char key[] = "0123456789abcdef0123456789abcdef";
        StateKey k;

        /* No session bus anywhere: auto falls to none, at once. */
        ck_assert_int_eq(setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus", 1), 0);
        state_key_load(STATE_PROTECTION_AUTO, NULL, USEC_PER_SEC, &k);
        ck_assert_int_eq(k.protection, STATE_PROTECTION_NONE);
        ck_assert_ptr_null(state_key_bytes(&k));

        state_key_load(STATE_PROTECTION_KEYRING, NULL, USEC_PER_SEC, &k);
        ck_assert_int_eq(k.protection, STATE_PROTECTION_KEYRING);
        ck_assert(!k.available);
        ck_assert_ptr_null(state_key_bytes(&k));

        state_key_load(STATE_PROTECTION_SYSTEMD_CREDS, testlib_scratch, USEC_PER_SEC, &k);
        ck_assert_int_eq(k.protection, STATE_PROTECTION_SYSTEMD_CREDS);
        ck_assert_int_eq(k.error, -ENOENT);
        ck_assert_ptr_null(state_key_bytes(&k));

        /* A credential that is there but wrong is an error under auto too, never none. */
        write_key(testlib_scratch, key, 16);
        state_key_load(STATE_PROTECTION_AUTO, testlib_scratch, USEC_PER_SEC, &k);
        ck_assert_int_eq(k.protection, STATE_PROTECTION_SYSTEMD_CREDS);
        ck_assert_int_eq(k.error, -EBADMSG);
        ck_assert_ptr_null(state_key_bytes(&k));

        write_key(testlib_scratch, key, 32);
        state_key_load(STATE_PROTECTION_AUTO, testlib_scratch, USEC_PER_SEC, &k);
        ck_assert_int_eq(k.protection, STATE_PROTECTION_SYSTEMD_CREDS);
        ck_assert_ptr_nonnull(state_key_bytes(&k));
        ck_assert_mem_eq(state_key_bytes(&k), key, 32);

        /* none keeps the file clear even with a credential at hand. */
        state_key_load(STATE_PROTECTION_NONE, testlib_scratch, USEC_PER_SEC, &k);
        ck_assert_ptr_null(state_key_bytes(&k));
        state_key_clear(&k);
}
END_TEST

static Suite *state_key_suite(void) {
        Suite *s = suite_create("state-key");
        TCase *tc = tcase_create("sources");

        tcase_add_checked_fixture(tc, testlib_scratch_setup, testlib_scratch_teardown);
        tcase_add_test(tc, test_credential_file);
        tcase_add_test(tc, test_load_decides);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(state_key_suite());
}
