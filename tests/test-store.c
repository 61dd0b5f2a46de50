/* Tests for the state directory: JSON round trip, corrupt files, modes, the lock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "profile/store.h"
#include "testlib.h"

static void fill_profile(StoredProfile *s) {
        char rt[1300];

        /* Refresh tokens are opaque and long; include bytes JSON must escape. */
        for (size_t i = 0; i < sizeof rt - 1; i++)
                rt[i] = (char) ('A' + i % 26);
        rt[sizeof rt - 1] = 0;
        memcpy(rt + 10, "\"\\/\n\t", 5);

        *s = (StoredProfile) {
                .tenant = strdup("72f988bf-86f1-41af-91ab-2d7cd011db47"),
                .client_id = strdup("80faf920-1908-4b52-b5ef-a8e7bedfc67a"),
                .authority_host = strdup("https://login.microsoftonline.com"),
                .refresh_token = secret_new_string(rt),
                .access_token = secret_new_string("eyJhbGciOi.eyJ1cG4iOiJhbGljZSJ9.c2ln"),
                .obtained = 1764150000123456ULL,
                .expires_on = 1764153599000000ULL,
                .refresh_in = 1800ULL * 1000000ULL,
                .account = strdup("alice@contoso.com \xc3\xa9"),
        };
}

static void assert_profiles_equal(const StoredProfile *a, const StoredProfile *b) {
        ck_assert_str_eq(a->tenant, b->tenant);
        ck_assert_str_eq(a->client_id, b->client_id);
        ck_assert_str_eq(a->authority_host, b->authority_host);
        ck_assert(secret_equal(a->refresh_token, b->refresh_token));
        ck_assert(secret_equal(a->access_token, b->access_token));
        ck_assert_uint_eq(a->obtained, b->obtained);
        ck_assert_uint_eq(a->expires_on, b->expires_on);
        ck_assert_uint_eq(a->refresh_in, b->refresh_in);
        if (a->account || b->account)
                ck_assert_str_eq(a->account, b->account);
}

START_TEST(test_round_trip) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_secret_ Secret *text = NULL;

        fill_profile(&s);
        ck_assert_int_eq(store_serialize(&s, &text), 0);
        ck_assert_ptr_nonnull(strstr(secret_reveal(text), "\"version\": 1"));
        ck_assert_int_eq(store_parse(secret_reveal(text), secret_len(text), &back), 0);
        assert_profiles_equal(&s, &back);
}
END_TEST

START_TEST(test_round_trip_optional_missing) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_secret_ Secret *text = NULL;

        fill_profile(&s);
        s.access_token = secret_free(s.access_token);
        free(s.account);
        s.account = NULL;
        s.refresh_in = 0;
        ck_assert_int_eq(store_serialize(&s, &text), 0);
        ck_assert_ptr_null(strstr(secret_reveal(text), "access_token"));
        ck_assert_int_eq(store_parse(secret_reveal(text), secret_len(text), &back), 0);
        ck_assert_ptr_null(back.access_token);
        ck_assert_ptr_null(back.account);
        assert_profiles_equal(&s, &back);
}
END_TEST

static void assert_corrupt(const char *text) {
        StoredProfile s = { .tenant = (char *) "untouched" };

        ck_assert_msg(store_parse(text, strlen(text), &s) == -EBADMSG, "accepted: %s", text);
        ck_assert_str_eq(s.tenant, "untouched"); /* ret untouched on failure */
}

#define VALID_HEAD "{\"version\": 1, \"tenant\": \"t\", \"client_id\": \"c\", \"authority_host\": \"https://a\""

START_TEST(test_parse_corrupt) {
        static const char *const bad[] = {
                "",
                " ",
                "null",
                "[]",
                "\"string\"",
                "{}",
                "{\"version\": 1}",
                VALID_HEAD "",
                VALID_HEAD ", \"refresh_token\": \"r\"",
                "{\"tenant\": \"t\", \"client_id\": \"c\", \"authority_host\": \"https://a\"}",
                "{\"version\": 2, \"tenant\": \"t\", \"client_id\": \"c\", \"authority_host\": \"https://a\"}",
                "{\"version\": \"1\", \"tenant\": \"t\", \"client_id\": \"c\", \"authority_host\": \"https://a\"}",
                "{\"version\": 1.0, \"tenant\": \"t\", \"client_id\": \"c\", \"authority_host\": \"https://a\"}",
                "{\"version\": 1, \"tenant\": 5, \"client_id\": \"c\", \"authority_host\": \"https://a\"}",
                "{\"version\": 1, \"tenant\": null, \"client_id\": \"c\", \"authority_host\": \"https://a\"}",
                "{\"version\": 1, \"tenant\": \"t\", \"authority_host\": \"https://a\"}",
                VALID_HEAD ", \"refresh_token\": [\"r\"]}",
                VALID_HEAD ", \"refresh_token\": 12}",
                VALID_HEAD ", \"access_token\": {}}",
                VALID_HEAD ", \"account\": true}",
                VALID_HEAD ", \"expires_on_usec\": \"1764153599000000\"}",
                VALID_HEAD ", \"expires_on_usec\": -1}",
                VALID_HEAD ", \"obtained_usec\": 1.5}",
                VALID_HEAD ", \"refresh_in_usec\": []}",
                VALID_HEAD ", \"tenant\": \"dup\"}",
                VALID_HEAD ", \"account\": \"a\\u0000b\"}",
                VALID_HEAD ", \"refresh_token\": \"r\"} trailing",
                "\xff\xfe{}",
                "{\"version\": 1, \"tenant\": \"\xc3\x28\", \"client_id\": \"c\", \"authority_host\": \"https://a\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_corrupt(bad[i]);
}
END_TEST

START_TEST(test_parse_tolerates_unknown_fields) {
        _cleanup_(stored_profile_clear) StoredProfile s = {};
        const char *text = VALID_HEAD ", \"refresh_token\": \"r\", \"future\": {\"x\": [1, 2]}, "
                                      "\"account\": null, \"access_token\": null}";

        ck_assert_int_eq(store_parse(text, strlen(text), &s), 0);
        ck_assert_str_eq(s.tenant, "t");
        ck_assert_str_eq(secret_reveal(s.refresh_token), "r");
        ck_assert_ptr_null(s.access_token);
        ck_assert_ptr_null(s.account);
        ck_assert_uint_eq(s.expires_on, 0);
}
END_TEST

START_TEST(test_parse_every_truncation) {
        _cleanup_(stored_profile_clear) StoredProfile s = {};
        _cleanup_secret_ Secret *text = NULL;
        size_t len;

        fill_profile(&s);
        ck_assert_int_eq(store_serialize(&s, &text), 0);
        len = secret_len(text);
        ck_assert_int_gt(len, 2);
        ck_assert_int_eq(secret_reveal(text)[len - 1], '\n');
        /* Every cut before the closing brace is a partial write. */
        for (size_t cut = 0; cut < len - 1; cut++) {
                StoredProfile back = {};
                ck_assert_msg(store_parse(secret_reveal(text), cut, &back) == -EBADMSG, "cut %zu accepted", cut);
        }
}
END_TEST

START_TEST(test_parse_huge) {
        _cleanup_free_ char *big = NULL, *deep = NULL;
        size_t n = 2 * 1024 * 1024, depth = 100000;
        StoredProfile s = {};
        int len;

        /* Valid JSON, but far over any state file we would write. */
        big = malloc(n + 200);
        ck_assert_ptr_nonnull(big);
        memset(big, ' ', n);
        len = snprintf(big + n, 200, "%s, \"refresh_token\": \"r\"}", VALID_HEAD);
        ck_assert_int_eq(store_parse(big, n + (size_t) len, &s), -EBADMSG);

        /* Deep nesting must not exhaust the stack. */
        deep = malloc(depth * 2);
        ck_assert_ptr_nonnull(deep);
        memset(deep, '[', depth);
        memset(deep + depth, ']', depth);
        ck_assert_int_eq(store_parse(deep, depth * 2, &s), -EBADMSG);
}
END_TEST

static size_t count_entries(const char *d) {
        DIR *dd = opendir(d);
        struct dirent *de;
        size_t n = 0;

        ck_assert_ptr_nonnull(dd);
        while ((de = readdir(dd)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(dd);
        return n;
}

START_TEST(test_save_load_modes) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_free_ char *state = testlib_path(testlib_scratch, "a/b/state"), *file = NULL;
        struct stat st;
        mode_t old_umask;

        fill_profile(&s);
        old_umask = umask(0); /* the modes must not depend on the umask */
        ck_assert_int_eq(store_save(state, "default", &s), 0);
        umask(old_umask);

        ck_assert_int_eq(stat(state, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0700);
        file = testlib_path(state, "default.json");
        ck_assert_int_eq(lstat(file, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_uint_eq(count_entries(state), 1); /* no temp file left */

        ck_assert_int_eq(store_load(state, "default", &back), 0);
        assert_profiles_equal(&s, &back);
        stored_profile_clear(&back);

        /* Overwrite: the new content replaces the old. */
        s.expires_on += 3600 * 1000000ULL;
        secret_free(s.refresh_token);
        s.refresh_token = secret_new_string("rotated");
        ck_assert_int_eq(store_save(state, "default", &s), 0);
        ck_assert_int_eq(store_load(state, "default", &back), 0);
        assert_profiles_equal(&s, &back);
        ck_assert_uint_eq(count_entries(state), 1);
}
END_TEST

START_TEST(test_save_replaces_symlink_and_stale_temps) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_free_ char *file = testlib_path(testlib_scratch, "default.json"),
                            *elsewhere = testlib_path(testlib_scratch, "elsewhere"),
                            *stale = testlib_path(testlib_scratch, ".aksspark-tmp.0123456789abcdef.default.json");
        struct stat st;

        /* A crash mid-write left a temp file; a symlink points the state file elsewhere. */
        testlib_write_file(stale, "old refresh token", 17);
        testlib_write_file(elsewhere, "x", 1);
        ck_assert_int_eq(symlink(elsewhere, file), 0);

        fill_profile(&s);
        ck_assert_int_eq(store_save(testlib_scratch, "default", &s), 0);
        ck_assert_int_eq(lstat(file, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
        ck_assert_int_eq(stat(elsewhere, &st), 0);
        ck_assert_int_eq(st.st_size, 1); /* the token did not go through the link */
        ck_assert_int_eq(access(stale, F_OK), -1);
        ck_assert_int_eq(store_load(testlib_scratch, "default", &back), 0);
        assert_profiles_equal(&s, &back);
        ck_assert_uint_eq(count_entries(testlib_scratch), 2);
}
END_TEST

START_TEST(test_load_missing_and_remove) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};

        ck_assert_int_eq(store_load(testlib_scratch, "default", &back), -ENOENT);
        ck_assert_int_eq(store_load("/nonexistent/aksspark", "default", &back), -ENOENT);

        fill_profile(&s);
        ck_assert_int_eq(store_save(testlib_scratch, "p1", &s), 0);
        ck_assert_int_eq(store_save(testlib_scratch, "p2", &s), 0);
        ck_assert_int_eq(store_remove(testlib_scratch, "p1"), 0);
        ck_assert_int_eq(store_load(testlib_scratch, "p1", &back), -ENOENT);
        ck_assert_int_eq(store_remove(testlib_scratch, "p1"), 0); /* idempotent */
        ck_assert_int_eq(store_load(testlib_scratch, "p2", &back), 0);
}
END_TEST

START_TEST(test_bad_profile_names) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};

        fill_profile(&s);
        ck_assert_int_eq(store_save(testlib_scratch, "../escape", &s), -EINVAL);
        ck_assert_int_eq(store_save(testlib_scratch, "", &s), -EINVAL);
        ck_assert_int_eq(store_load(testlib_scratch, "a/b", &back), -EINVAL);
        ck_assert_int_eq(store_remove(testlib_scratch, "../x"), -EINVAL);
}
END_TEST

START_TEST(test_load_corrupt_files) {
        _cleanup_free_ char *file = testlib_path(testlib_scratch, "default.json"),
                            *target = testlib_path(testlib_scratch, "target");
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_secret_ Secret *text = NULL;
        struct stat st;

        /* Partial file: what a non-atomic writer would have left. */
        fill_profile(&s);
        ck_assert_int_eq(store_serialize(&s, &text), 0);
        testlib_write_file(file, secret_reveal(text), secret_len(text) / 2);
        ck_assert_int_eq(store_load(testlib_scratch, "default", &back), -EBADMSG);

        testlib_write_file(file, "", 0);
        ck_assert_int_eq(store_load(testlib_scratch, "default", &back), -EBADMSG);

        /* A symlink, a directory and a FIFO are refused without following or blocking. */
        ck_assert_int_eq(unlink(file), 0);
        testlib_write_file(target, secret_reveal(text), secret_len(text));
        ck_assert_int_eq(symlink(target, file), 0);
        ck_assert_int_eq(store_load(testlib_scratch, "default", &back), -EBADMSG);
        ck_assert_int_eq(unlink(file), 0);
        ck_assert_int_eq(mkdir(file, 0700), 0);
        ck_assert_int_eq(store_load(testlib_scratch, "default", &back), -EBADMSG);
        ck_assert_int_eq(rmdir(file), 0);
        ck_assert_int_eq(mkfifo(file, 0600), 0);
        ck_assert_int_eq(store_load(testlib_scratch, "default", &back), -EBADMSG);
        ck_assert_int_eq(unlink(file), 0);

        /* A wider mode is narrowed on load, and the content still used. */
        testlib_write_file(file, secret_reveal(text), secret_len(text));
        ck_assert_int_eq(chmod(file, 0644), 0);
        ck_assert_int_eq(store_load(testlib_scratch, "default", &back), 0);
        assert_profiles_equal(&s, &back);
        ck_assert_int_eq(stat(file, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
}
END_TEST

static pid_t read_lock_pid(const char *state) {
        _cleanup_free_ char *p = testlib_path(state, "lock");
        char buf[32] = {};
        int fd = open(p, O_RDONLY | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_gt(read(fd, buf, sizeof buf - 1), 0);
        close(fd);
        return (pid_t) atoi(buf);
}

START_TEST(test_lock_contention) {
        _cleanup_free_ char *state = testlib_path(testlib_scratch, "s/t");
        int ready[2], fd = -1, flags;
        pid_t child, holder = -1;
        struct stat st;
        char c;

        ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                int cfd;
                if (store_lock(state, &cfd, NULL) < 0)
                        _exit(1);
                (void) !write(ready[1], "x", 1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        ck_assert_int_eq(read(ready[0], &c, 1), 1);
        close(ready[0]);

        ck_assert_int_eq(stat(state, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0700);
        ck_assert_int_eq(read_lock_pid(state), child);

        ck_assert_int_eq(store_lock(state, &fd, &holder), -EBUSY);
        ck_assert_int_eq(holder, child);
        ck_assert_int_eq(fd, -1);

        /* The kernel drops the lock with its holder: no stale-lock cleanup needed. */
        ck_assert_int_eq(kill(child, SIGKILL), 0);
        ck_assert_int_eq(waitpid(child, NULL, 0), child);

        ck_assert_int_eq(store_lock(state, &fd, &holder), 0);
        ck_assert_int_ge(fd, 0);
        flags = fcntl(fd, F_GETFD);
        ck_assert(flags & FD_CLOEXEC);
        ck_assert_int_eq(read_lock_pid(state), getpid());

        /* Another open file description of ours is refused too, naming us. */
        holder = -1;
        int fd2 = -1;
        ck_assert_int_eq(store_lock(state, &fd2, &holder), -EBUSY);
        ck_assert_int_eq(holder, getpid());

        close(fd);
        ck_assert_int_eq(store_lock(state, &fd2, &holder), 0);
        close(fd2);
}
END_TEST

START_TEST(test_lock_holder_unknown) {
        int fd = -1, fd2 = -1;
        pid_t holder = -1;

        ck_assert_int_eq(store_lock(testlib_scratch, &fd, NULL), 0);
        /* A holder that has not written its pid yet (or garbage): unknown, not a wrong pid. */
        ck_assert_int_eq(ftruncate(fd, 0), 0);
        ck_assert_int_eq(pwrite(fd, "garbage", 7, 0), 7);
        ck_assert_int_eq(store_lock(testlib_scratch, &fd2, &holder), -EBUSY);
        ck_assert_int_eq(holder, 0);
        close(fd);
}
END_TEST

START_TEST(test_identity_keys) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {}, old = {};
        _cleanup_secret_ Secret *text = NULL;
        static const char before[] = "{\"version\": 1, \"tenant\": \"t\", \"client_id\": \"c\", "
                                     "\"authority_host\": \"https://a\", \"refresh_token\": \"r\"}";

        fill_profile(&s);
        s.server_id = strdup("6dae42f8-4368-4678-94ff-3960e28e3630");
        s.auth = strdup("client_secret");
        ck_assert_int_eq(store_serialize(&s, &text), 0);
        ck_assert_int_eq(store_parse(secret_reveal(text), secret_len(text), &back), 0);
        assert_profiles_equal(&s, &back);
        ck_assert_str_eq(back.server_id, s.server_id);
        ck_assert_str_eq(back.auth, "client_secret");

        /* A file from before they were recorded: the server unknown, the device code flow. */
        ck_assert_int_eq(store_parse(before, strlen(before), &old), 0);
        ck_assert_ptr_null(old.server_id);
        ck_assert_str_eq(old.auth, STORE_AUTH_DEFAULT);
}
END_TEST

static const uint8_t test_key[SEAL_KEY_SIZE] = "0123456789abcdef0123456789abcdef";
static const uint8_t test_nonce[SEAL_NONCE_SIZE] = "nonce-nonce!";

START_TEST(test_sealed_round_trip) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_secret_ Secret *text = NULL;
        const char *t;

        fill_profile(&s);
        s.server_id = strdup("6dae42f8-4368-4678-94ff-3960e28e3630");
        ck_assert_int_eq(store_serialize_sealed(&s, test_key, test_nonce, &text), 0);
        t = secret_reveal(text);
        ck_assert_ptr_nonnull(strstr(t, "\"version\": 2"));
        ck_assert_ptr_nonnull(strstr(t, "\"sealed\": \""));
        /* No token, nor any part of one, in the file. */
        ck_assert_ptr_null(strstr(t, "ABCDEFGHIJ"));
        ck_assert_ptr_null(strstr(t, "eyJhbGciOi"));
        ck_assert_ptr_null(strstr(t, "refresh_token"));
        ck_assert_ptr_nonnull(strstr(t, s.tenant)); /* the identity stays readable */

        ck_assert_int_eq(store_parse_sealed(t, secret_len(text), test_key, &back), 0);
        ck_assert(back.sealed);
        assert_profiles_equal(&s, &back);
        ck_assert_str_eq(back.server_id, s.server_id);
}
END_TEST

START_TEST(test_sealed_refusals) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_secret_ Secret *text = NULL;
        _cleanup_free_ char *moved = NULL, *edited = NULL;
        uint8_t other[SEAL_KEY_SIZE];
        const char *t;
        char *at;

        fill_profile(&s);
        ck_assert_int_eq(store_serialize_sealed(&s, test_key, test_nonce, &text), 0);
        t = secret_reveal(text);

        /* No key at hand, another key. */
        ck_assert_int_eq(store_parse_sealed(t, secret_len(text), NULL, &back), -ENOKEY);
        ck_assert_int_eq(store_parse(t, secret_len(text), &back), -ENOKEY);
        memcpy(other, test_key, sizeof other);
        other[0] ^= 1;
        ck_assert_int_eq(store_parse_sealed(t, secret_len(text), other, &back), -EKEYREJECTED);

        /* The same blob under another identity (a file moved to another profile, or edited). */
        moved = strdup(t);
        at = strstr(moved, "72f988bf");
        ck_assert_ptr_nonnull(at);
        at[0] = '8';
        ck_assert_int_eq(store_parse_sealed(moved, strlen(moved), test_key, &back), -EKEYREJECTED);
        edited = strdup(t);
        at = strstr(edited, "\"client_id\"");
        ck_assert_ptr_nonnull(at);
        memcpy(at, "\"auth\": \"browser\", \"x\"", strlen("\"auth\": \"browser\", \"x\""));
        ck_assert_int_eq(store_parse_sealed(edited, strlen(edited), test_key, &back), -EBADMSG); /* client_id gone */

        /* A sealed file without its blob, or with one that is not base64url. */
        ck_assert_int_eq(store_parse_sealed("{\"version\":2,\"tenant\":\"t\",\"client_id\":\"c\","
                                            "\"authority_host\":\"h\"}",
                                            strlen("{\"version\":2,\"tenant\":\"t\",\"client_id\":\"c\","
                                                   "\"authority_host\":\"h\"}"),
                                            test_key, &back),
                         -EBADMSG);
        ck_assert_int_eq(store_parse_sealed("{\"version\":2,\"tenant\":\"t\",\"client_id\":\"c\","
                                            "\"authority_host\":\"h\",\"sealed\":\"!!\"}",
                                            strlen("{\"version\":2,\"tenant\":\"t\",\"client_id\":\"c\","
                                                   "\"authority_host\":\"h\",\"sealed\":\"!!\"}"),
                                            test_key, &back),
                         -EBADMSG);
        ck_assert_ptr_null(back.tenant);
}
END_TEST

/* A clear file from before sealing still loads with a key, and says it was clear. */
START_TEST(test_clear_file_with_key) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_secret_ Secret *text = NULL;

        fill_profile(&s);
        ck_assert_int_eq(store_serialize(&s, &text), 0);
        ck_assert_int_eq(store_parse_sealed(secret_reveal(text), secret_len(text), test_key, &back), 0);
        ck_assert(!back.sealed);
        assert_profiles_equal(&s, &back);
}
END_TEST

/* Two seals of the same state differ (the nonce), and both open. */
START_TEST(test_sealed_nonce_changes) {
        _cleanup_(stored_profile_clear) StoredProfile s = {}, back = {};
        _cleanup_secret_ Secret *a = NULL, *b = NULL;
        uint8_t nonce2[SEAL_NONCE_SIZE];

        fill_profile(&s);
        memcpy(nonce2, test_nonce, sizeof nonce2);
        nonce2[0] ^= 0xff;
        ck_assert_int_eq(store_serialize_sealed(&s, test_key, test_nonce, &a), 0);
        ck_assert_int_eq(store_serialize_sealed(&s, test_key, nonce2, &b), 0);
        ck_assert(!secret_equal(a, b));
        ck_assert_int_eq(store_parse_sealed(secret_reveal(b), secret_len(b), test_key, &back), 0);
        assert_profiles_equal(&s, &back);
}
END_TEST

/* The fuzzer's seeds were sealed by another implementation (Python's cryptography, from the
 * format as store.h describes it): this reader agrees with it, seed by seed. */
START_TEST(test_sealed_seeds_of_another_implementation) {
        static const uint8_t fuzz_key[SEAL_KEY_SIZE] = "aksspark-tokend fuzz key 32 byte";
        static const struct {
                const char *name;
                int result;
        } seeds[] = {
                { "minimal", 0 },
                { "full", 0 },
                { "clear", 0 },
                { "another-key", -EKEYREJECTED },
                { "moved", -EKEYREJECTED },
                { "inner-array", -EBADMSG },
                { "short", -EBADMSG },
        };
        const char *src = getenv("AKSSPARK_SOURCE_DIR") ?: "..";

        for (size_t i = 0; i < ELEMENTSOF(seeds); i++) {
                _cleanup_(stored_profile_clear) StoredProfile s = {};
                _cleanup_free_ char *path = NULL, *text = NULL;
                size_t len;

                ck_assert_int_ge(asprintf(&path, "%s/fuzz/corpus/store-sealed/%s", src, seeds[i].name), 0);
                ck_assert_int_eq(read_file_full(path, 1 << 20, &text, &len), 0);
                ck_assert_msg(store_parse_sealed(text, len, fuzz_key, &s) == seeds[i].result, "seed %s", seeds[i].name);
                if (strcmp(seeds[i].name, "full") == 0) {
                        ck_assert(s.sealed);
                        ck_assert_str_eq(secret_reveal(s.refresh_token), "0.ARoA-seed-refresh-\"\\/");
                        ck_assert_str_eq(secret_reveal(s.access_token), "eyJhbGciOi.eyJ1cG4iOiJhbGljZSJ9.c2ln");
                        ck_assert_str_eq(s.auth, "browser");
                }
        }
}
END_TEST

static Suite *store_suite(void) {
        Suite *s = suite_create("store");
        TCase *tc = tcase_create("json");

        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_identity_keys);
        tcase_add_test(tc, test_round_trip_optional_missing);
        tcase_add_test(tc, test_parse_corrupt);
        tcase_add_test(tc, test_parse_tolerates_unknown_fields);
        tcase_add_test(tc, test_parse_every_truncation);
        tcase_add_test(tc, test_parse_huge);
        tcase_add_test(tc, test_sealed_round_trip);
        tcase_add_test(tc, test_sealed_refusals);
        tcase_add_test(tc, test_clear_file_with_key);
        tcase_add_test(tc, test_sealed_nonce_changes);
        tcase_add_test(tc, test_sealed_seeds_of_another_implementation);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_checked_fixture(tc, testlib_scratch_setup, testlib_scratch_teardown);
        tcase_add_test(tc, test_save_load_modes);
        tcase_add_test(tc, test_save_replaces_symlink_and_stale_temps);
        tcase_add_test(tc, test_load_missing_and_remove);
        tcase_add_test(tc, test_bad_profile_names);
        tcase_add_test(tc, test_load_corrupt_files);
        tcase_add_test(tc, test_lock_contention);
        tcase_add_test(tc, test_lock_holder_unknown);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(store_suite());
}
