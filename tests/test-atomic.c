/* Tests for atomic_replace() and friends on a real file system: new files, replacements,
 * skipped writes, modes, owners, symlinks, created parents, failures and stale temp files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomic.h"
#include "base/util.h"
#include "testlib.h"

static void setup(void) {
        umask(022);
        testlib_scratch_setup();
}

static char *at(const char *name) {
        return testlib_path(testlib_scratch, name);
}

static void assert_content(const char *path, const char *want) {
        _cleanup_free_ char *got = NULL;
        size_t len;

        ck_assert_int_eq(read_file_full(path, 1 << 20, &got, &len), 0);
        ck_assert_uint_eq(len, strlen(want));
        ck_assert_str_eq(got, want);
}

/* Temp files left in d (anything starting with the prefix). */
static unsigned count_temps(const char *d) {
        DIR *dd = opendir(d);
        struct dirent *de;
        unsigned n = 0;

        ck_assert_ptr_nonnull(dd);
        while ((de = readdir(dd)))
                if (string_has_prefix(de->d_name, ATOMIC_TEMP_PREFIX))
                        n++;
        closedir(dd);
        return n;
}

static mode_t mode_of(const char *path) {
        struct stat st;

        ck_assert_int_eq(lstat(path, &st), 0);
        return st.st_mode & 07777;
}

START_TEST(test_create_and_replace) {
        _cleanup_free_ char *p = at("token");
        AtomicResult res;
        struct stat st1, st2;

        ck_assert_int_eq(atomic_replace(p, "first", 5, 0600, 0, &res), 0);
        ck_assert(res.created);
        ck_assert(!res.unchanged);
        ck_assert(!res.mode_narrowed);
        assert_content(p, "first");
        ck_assert_uint_eq(mode_of(p), 0600);
        ck_assert_int_eq(stat(p, &st1), 0);

        ck_assert_int_eq(atomic_replace(p, "second, longer", 14, 0600, 0, &res), 0);
        ck_assert(!res.created);
        ck_assert(!res.unchanged);
        assert_content(p, "second, longer");
        ck_assert_int_eq(stat(p, &st2), 0);
        ck_assert(st1.st_ino != st2.st_ino); /* a new file was renamed over the old one */

        ck_assert_int_eq(atomic_replace(p, "", 0, 0600, 0, &res), 0);
        assert_content(p, "");
        ck_assert_uint_eq(count_temps(testlib_scratch), 0);
}
END_TEST

START_TEST(test_unchanged_is_skipped) {
        _cleanup_free_ char *p = at("token");
        AtomicResult res;
        struct stat st1, st2;

        ck_assert_int_eq(atomic_replace(p, "same", 4, 0600, 0, &res), 0);
        ck_assert_int_eq(stat(p, &st1), 0);
        ck_assert_int_eq(atomic_replace(p, "same", 4, 0600, 0, &res), 0);
        ck_assert(res.unchanged);
        ck_assert(!res.created);
        ck_assert_int_eq(stat(p, &st2), 0);
        ck_assert_uint_eq(st1.st_ino, st2.st_ino);
        ck_assert_int_eq(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
        ck_assert_int_eq(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);

        /* Same length, other bytes: written. */
        ck_assert_int_eq(atomic_replace(p, "sane", 4, 0600, 0, &res), 0);
        ck_assert(!res.unchanged);
        assert_content(p, "sane");

        /* Same bytes, wrong mode: written, to fix the mode. */
        ck_assert_int_eq(chmod(p, 0640), 0);
        ck_assert_int_eq(atomic_replace(p, "sane", 4, 0600, 0, &res), 0);
        ck_assert(!res.unchanged);
        ck_assert_uint_eq(mode_of(p), 0600);
}
END_TEST

START_TEST(test_mode_narrowed) {
        _cleanup_free_ char *p = at("spark.properties");
        AtomicResult res;

        testlib_write_file(p, "a=1\n", 4);
        ck_assert_int_eq(chmod(p, 0644), 0);
        ck_assert_int_eq(atomic_replace(p, "a=2\n", 4, 0600, 0, &res), 0);
        ck_assert(res.mode_narrowed);
        ck_assert_uint_eq(res.old_mode, 0644);
        ck_assert_uint_eq(mode_of(p), 0600);

        /* 0400 is not wider than 0600: it becomes 0600 without a narrowing to report. */
        ck_assert_int_eq(chmod(p, 0400), 0);
        ck_assert_int_eq(atomic_replace(p, "a=3\n", 4, 0600, 0, &res), 0);
        ck_assert(!res.mode_narrowed);
        ck_assert_uint_eq(mode_of(p), 0600);

        /* The mode asked for is exact, whatever the umask. */
        umask(0777);
        ck_assert_int_eq(atomic_replace(p, "a=4\n", 4, 0640, 0, &res), 0);
        umask(022);
        ck_assert_uint_eq(mode_of(p), 0640);
}
END_TEST

START_TEST(test_owner_never_copied) {
        _cleanup_free_ char *p = at("token");
        AtomicResult res;
        struct stat st;

        if (geteuid() != 0)
                return; /* only root could give a file away; test_outputs.py covers it as root too */

        /* A file planted by nobody (as in a sticky /tmp) must not end up nobody's with the token. */
        testlib_write_file(p, "old", 3);
        ck_assert_int_eq(chown(p, 65534, 65534), 0);
        ck_assert_int_eq(chmod(p, 0644), 0);
        ck_assert_int_eq(atomic_replace(p, "new", 3, 0600, 0, &res), 0);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_uint_eq(st.st_uid, 0);
        ck_assert_uint_eq(st.st_gid, 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        assert_content(p, "new");
}
END_TEST

START_TEST(test_symlinks) {
        _cleanup_free_ char *target = at("real/token"), *l1 = at("l1"), *l2 = at("sub/l2"), *sub = at("sub"),
                            *real = at("real"), *dangling = at("dangling"), *dtarget = at("real/created"),
                            *loop_a = at("loop-a"), *loop_b = at("loop-b"), *resolved = NULL;
        AtomicResult res;
        struct stat st;

        ck_assert_int_eq(mkdir(real, 0755), 0);
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        testlib_write_file(target, "old", 3);
        /* l1 -> sub/l2 (relative to the scratch directory), sub/l2 -> ../real/token (relative to sub) */
        ck_assert_int_eq(symlink("sub/l2", l1), 0);
        ck_assert_int_eq(symlink("../real/token", l2), 0);

        ck_assert_int_eq(atomic_resolve_target(l1, &resolved), 0);
        ck_assert_int_eq(stat(resolved, &st), 0);
        ck_assert(S_ISREG(st.st_mode));

        ck_assert_int_eq(atomic_replace(l1, "new", 3, 0600, 0, &res), 0);
        ck_assert(!res.created);
        ck_assert_int_eq(lstat(l1, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_int_eq(lstat(l2, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        assert_content(target, "new");
        ck_assert_uint_eq(mode_of(target), 0600);
        ck_assert_uint_eq(count_temps(testlib_scratch), 0);
        ck_assert_uint_eq(count_temps(real), 0);

        /* Unchanged through the link, too. */
        ck_assert_int_eq(atomic_replace(l1, "new", 3, 0600, 0, &res), 0);
        ck_assert(res.unchanged);

        /* A dangling link: its target is created, the link stays. */
        ck_assert_int_eq(symlink(dtarget, dangling), 0);
        ck_assert_int_eq(atomic_replace(dangling, "made", 4, 0600, 0, &res), 0);
        ck_assert(res.created);
        ck_assert_int_eq(lstat(dangling, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        assert_content(dtarget, "made");

        /* A loop: ELOOP, nothing created. */
        ck_assert_int_eq(symlink("loop-b", loop_a), 0);
        ck_assert_int_eq(symlink("loop-a", loop_b), 0);
        ck_assert_int_eq(atomic_replace(loop_a, "x", 1, 0600, 0, &res), -ELOOP);
        ck_assert_int_eq(lstat(loop_a, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_uint_eq(count_temps(testlib_scratch), 0);
}
END_TEST

START_TEST(test_long_symlink_chain) {
        _cleanup_free_ char *last = NULL;
        AtomicResult res;

        /* 40 hops are fine (as for the kernel), 41 are a loop. */
        for (unsigned i = 0; i < 41; i++) {
                _cleanup_free_ char *name = NULL, *next = NULL;

                ck_assert_int_ge(asprintf(&name, "%s/c%u", testlib_scratch, i), 0);
                ck_assert_int_ge(asprintf(&next, "c%u", i + 1), 0);
                ck_assert_int_eq(symlink(next, name), 0);
        }
        last = at("c1");
        ck_assert_int_eq(atomic_replace(last, "x", 1, 0600, 0, &res), 0);
        free(last);
        last = at("c41");
        assert_content(last, "x");
        free(last);
        last = at("c0");
        ck_assert_int_eq(atomic_replace(last, "y", 1, 0600, 0, &res), -ELOOP);
        free(last);
        last = at("c41");
        assert_content(last, "x");
}
END_TEST

START_TEST(test_mkdir_parents) {
        _cleanup_free_ char *p = at("a/b/c/token"), *a = at("a"), *ab = at("a/b"), *abc = at("a/b/c"),
                            *q = at("x/y/token"), *x = at("x");
        AtomicResult res;
        struct stat st;

        ck_assert_int_eq(atomic_replace(q, "t", 1, 0600, 0, &res), -ENOENT);
        ck_assert_int_eq(stat(x, &st), -1);

        ck_assert_int_eq(atomic_replace(p, "t", 1, 0600, ATOMIC_MKDIR_PARENTS, &res), 0);
        ck_assert(res.created);
        assert_content(p, "t");
        ck_assert_uint_eq(mode_of(a), 0700);
        ck_assert_uint_eq(mode_of(ab), 0700);
        ck_assert_uint_eq(mode_of(abc), 0700);
}
END_TEST

START_TEST(test_refuses_odd_targets) {
        _cleanup_free_ char *d = at("adir"), *fifo = at("fifo"), *file = at("file"), *under = at("file/token"),
                            *slash = at("adir/");
        AtomicResult res;

        ck_assert_int_eq(mkdir(d, 0700), 0);
        ck_assert_int_eq(atomic_replace(d, "x", 1, 0600, 0, &res), -EISDIR);
        ck_assert_int_eq(atomic_replace(slash, "x", 1, 0600, 0, &res), -EISDIR);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        ck_assert_int_eq(atomic_replace(fifo, "x", 1, 0600, 0, &res), -EINVAL);
        testlib_write_file(file, "keep", 4);
        ck_assert_int_eq(atomic_replace(under, "x", 1, 0600, ATOMIC_MKDIR_PARENTS, &res), -ENOTDIR);
        assert_content(file, "keep");
        ck_assert_uint_eq(count_temps(testlib_scratch), 0);
}
END_TEST

/* A write that fails half-way (here: past RLIMIT_FSIZE, EFBIG, as ENOSPC would) keeps the old
 * file byte for byte and leaves no temp file. */
START_TEST(test_failed_write_keeps_old_file) {
        _cleanup_free_ char *p = at("token"), *big = NULL;
        struct rlimit old_limit, limit = { .rlim_cur = 4096, .rlim_max = RLIM_INFINITY };
        AtomicResult res;
        struct stat st1, st2;

        testlib_write_file(p, "old complete content", 20);
        ck_assert_int_eq(chmod(p, 0644), 0);
        ck_assert_int_eq(stat(p, &st1), 0);

        big = malloc(65536);
        memset(big, 'N', 65536);
        signal(SIGXFSZ, SIG_IGN);
        ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
        limit.rlim_max = old_limit.rlim_max;
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limit), 0);
        ck_assert_int_eq(atomic_replace(p, big, 65536, 0600, 0, &res), -EFBIG);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old_limit), 0);

        assert_content(p, "old complete content");
        ck_assert_int_eq(stat(p, &st2), 0);
        ck_assert_uint_eq(st1.st_ino, st2.st_ino);
        ck_assert_uint_eq(st2.st_mode & 07777, 0644);
        ck_assert_uint_eq(count_temps(testlib_scratch), 0);

        /* The cause gone, the next write succeeds. */
        ck_assert_int_eq(atomic_replace(p, big, 65536, 0600, 0, &res), 0);
        ck_assert(res.mode_narrowed);
        ck_assert_int_eq(stat(p, &st2), 0);
        ck_assert_int_eq(st2.st_size, 65536);
}
END_TEST

START_TEST(test_remove_stale_temps) {
        _cleanup_free_ char *p = at("oauthToken"), *link = at("link"), *sub = at("sub"), *in_sub = NULL;
        static const char *const ours[] = {
                ATOMIC_TEMP_PREFIX "0123456789abcdef.oauthToken",
                ATOMIC_TEMP_PREFIX "fedcba9876543210.oauthToken",
        };
        static const char *const others[] = {
                ATOMIC_TEMP_PREFIX "0123456789abcdef.oauthToken2", /* another output's */
                ATOMIC_TEMP_PREFIX "0123456789abcdef.spark.properties",
                ATOMIC_TEMP_PREFIX "xyz.oauthToken", /* not our pattern */
                "oauthToken.bak",
                "oauthToken",
        };
        char *q;

        for (size_t i = 0; i < ELEMENTSOF(ours); i++) {
                q = at(ours[i]);
                testlib_write_file(q, "t", 1);
                free(q);
        }
        for (size_t i = 0; i < ELEMENTSOF(others); i++) {
                q = at(others[i]);
                testlib_write_file(q, "t", 1);
                free(q);
        }
        /* Matching names that are not regular files are not touched. */
        q = at(ATOMIC_TEMP_PREFIX "aaaaaaaaaaaaaaaa.oauthToken");
        ck_assert_int_eq(mkdir(q, 0700), 0);
        free(q);
        q = at(ATOMIC_TEMP_PREFIX "bbbbbbbbbbbbbbbb.oauthToken");
        ck_assert_int_eq(symlink("oauthToken.bak", q), 0);
        free(q);

        ck_assert_int_eq(atomic_remove_stale_temps(p), 2);
        ck_assert_int_eq(atomic_remove_stale_temps(p), 0);
        for (size_t i = 0; i < ELEMENTSOF(ours); i++) {
                q = at(ours[i]);
                ck_assert_int_eq(access(q, F_OK), -1);
                free(q);
        }
        for (size_t i = 0; i < ELEMENTSOF(others); i++) {
                q = at(others[i]);
                ck_assert_int_eq(access(q, F_OK), 0);
                free(q);
        }

        /* Through a symlinked output: the temps are next to the target. */
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        ck_assert_int_eq(symlink("sub/target", link), 0);
        ck_assert_int_ge(asprintf(&in_sub, "%s/sub/%s", testlib_scratch, ATOMIC_TEMP_PREFIX "0000000000000000.target"),
                         0);
        testlib_write_file(in_sub, "t", 1);
        ck_assert_int_eq(atomic_remove_stale_temps(link), 1);
        ck_assert_int_eq(access(in_sub, F_OK), -1);

        /* A directory that does not exist has nothing stale. */
        q = at("nope/oauthToken");
        ck_assert_int_eq(atomic_remove_stale_temps(q), 0);
        free(q);
}
END_TEST

START_TEST(test_long_name) {
        char name[256];
        _cleanup_free_ char *p = NULL;
        AtomicResult res;

        memset(name, 'n', 250);
        name[250] = 0;
        p = at(name);
        ck_assert_int_eq(atomic_replace(p, "long", 4, 0600, 0, &res), 0);
        assert_content(p, "long");
        ck_assert_uint_eq(count_temps(testlib_scratch), 0);
}
END_TEST

START_TEST(test_relative_path) {
        _cleanup_free_ char *cwd = get_current_dir_name(), *p = at("rel");
        AtomicResult res;

        ck_assert_int_eq(chdir(testlib_scratch), 0);
        ck_assert_int_eq(atomic_replace("rel", "r", 1, 0600, 0, &res), 0);
        ck_assert_int_eq(symlink("rel", "rel-link"), 0);
        ck_assert_int_eq(atomic_replace("rel-link", "s", 1, 0600, 0, &res), 0);
        ck_assert_int_eq(chdir(cwd), 0);
        assert_content(p, "s");
}
END_TEST

START_TEST(test_link_rule) {
        struct stat dir = { .st_mode = S_IFDIR | 01777, .st_uid = 0 }, link = { .st_mode = S_IFLNK | 0777 };

        /* Sticky and world-writable: only links of the follower or of the directory's owner. */
        link.st_uid = 1001;
        ck_assert(!atomic_link_is_safe(0, &link, &dir));
        ck_assert(atomic_link_is_safe(1001, &link, &dir));
        link.st_uid = 0;
        ck_assert(atomic_link_is_safe(1001, &link, &dir));
        dir.st_uid = 1002;
        link.st_uid = 1002;
        ck_assert(atomic_link_is_safe(1001, &link, &dir));
        /* Not sticky, or not world-writable: any link. */
        link.st_uid = 1003;
        dir.st_mode = S_IFDIR | 0777;
        ck_assert(atomic_link_is_safe(0, &link, &dir));
        dir.st_mode = S_IFDIR | 01775;
        ck_assert(atomic_link_is_safe(0, &link, &dir));
}
END_TEST

START_TEST(test_planted_link_refused) {
        _cleanup_free_ char *shared = at("shared"), *victim = at("victim"), *planted = at("shared/planted"),
                            *mine = at("shared/mine"), *dangling = at("dangling"), *nowhere = at("nowhere"),
                            *nowhere_file = at("nowhere/sub/token");
        AtomicResult res;
        struct stat st;

        if (geteuid() != 0)
                return; /* giving a link to another user needs root; CI runs as root */
        ck_assert_int_eq(mkdir(shared, 0755), 0);
        ck_assert_int_eq(chmod(shared, 01777), 0);
        testlib_write_file(victim, "root's", 6);
        ck_assert_int_eq(chmod(victim, 0644), 0);
        ck_assert_int_eq(symlink(victim, planted), 0);
        ck_assert_int_eq(lchown(planted, 4242, 4242), 0);

        ck_assert_int_eq(atomic_replace(planted, "jwt", 3, 0600, ATOMIC_MKDIR_PARENTS, &res), -ENOLINK);
        assert_content(victim, "root's");
        ck_assert_uint_eq(mode_of(victim), 0644);
        ck_assert_uint_eq(count_temps(testlib_scratch), 0);

        /* Our own link in the same directory is followed. */
        ck_assert_int_eq(symlink(victim, mine), 0);
        ck_assert_int_eq(atomic_replace(mine, "jwt", 3, 0600, ATOMIC_MKDIR_PARENTS, &res), 0);
        assert_content(victim, "jwt");

        /* A dangling link into a missing directory creates no directory. */
        ck_assert_int_eq(symlink(nowhere_file, dangling), 0);
        ck_assert_int_eq(atomic_replace(dangling, "jwt", 3, 0600, ATOMIC_MKDIR_PARENTS, &res), -ENOENT);
        ck_assert_int_eq(stat(nowhere, &st), -1);
}
END_TEST

/* Root writes a person's file as that person, decided with no link followed: her ~/.kube
 * pointed at a root-only directory is refused; her own link in a sticky directory is followed
 * by her daemon, not by root; a file in root's own directories stays root's. */
START_TEST(test_identity_from_real_chain) {
        _cleanup_free_ char *home = at("home"), *kube = at("home/.kube"), *rootonly = at("rootonly"),
                            *token = at("home/.kube/oauthToken"), *sticky = at("sticky"), *herlink = at("sticky/token"),
                            *hertarget = at("home/token"), *rootfile = at("rootfile");
        AtomicIdentity id;
        AtomicResult res;
        struct stat st;

        if (geteuid() != 0)
                return; /* switching identities needs root; CI runs as root */
        ck_assert_int_eq(chmod(testlib_scratch, 0755), 0);
        ck_assert_int_eq(mkdir(home, 0755), 0);
        ck_assert_int_eq(chown(home, 4242, 4242), 0);
        ck_assert_int_eq(mkdir(rootonly, 0700), 0);
        ck_assert_int_eq(symlink(rootonly, kube), 0);
        ck_assert_int_eq(lchown(kube, 4242, 4242), 0);

        ck_assert_int_eq(atomic_identity_enter(token, &id), 0);
        ck_assert(id.switched);
        ck_assert_int_eq(atomic_replace(token, "jwt", 3, 0600, ATOMIC_MKDIR_PARENTS, &res), -EACCES);
        atomic_identity_leave(&id);
        ck_assert_int_eq(setfsuid((uid_t) -1), 0);
        ck_assert_int_eq(stat(token, &st), -1);

        ck_assert_int_eq(mkdir(sticky, 0755), 0);
        ck_assert_int_eq(chmod(sticky, 01777), 0);
        ck_assert_int_eq(symlink(hertarget, herlink), 0);
        ck_assert_int_eq(lchown(herlink, 4242, 4242), 0);
        /* Root follows no other user's link in its sticky directory (as fs.protected_symlinks)... */
        ck_assert_int_eq(atomic_identity_enter(herlink, &id), 0);
        ck_assert(!id.switched);
        ck_assert_int_eq(atomic_replace(herlink, "jwt", 3, 0600, ATOMIC_MKDIR_PARENTS, &res), -ENOLINK);
        /* ... but her own daemon (her fsuid) follows her own link. */
        (void) setfsgid(4242);
        (void) setfsuid(4242);
        ck_assert_int_eq(atomic_replace(herlink, "jwt", 3, 0600, ATOMIC_MKDIR_PARENTS, &res), 0);
        (void) setfsuid(0);
        (void) setfsgid(0);
        ck_assert_int_eq(lstat(hertarget, &st), 0);
        ck_assert_uint_eq(st.st_uid, 4242);
        assert_content(hertarget, "jwt");

        ck_assert_int_eq(atomic_identity_enter(rootfile, &id), 0);
        ck_assert(!id.switched);
}
END_TEST

static Suite *atomic_suite(void) {
        Suite *s = suite_create("atomic");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, testlib_scratch_teardown);
        tcase_add_test(tc, test_create_and_replace);
        tcase_add_test(tc, test_unchanged_is_skipped);
        tcase_add_test(tc, test_mode_narrowed);
        tcase_add_test(tc, test_owner_never_copied);
        tcase_add_test(tc, test_identity_from_real_chain);
        tcase_add_test(tc, test_symlinks);
        tcase_add_test(tc, test_long_symlink_chain);
        tcase_add_test(tc, test_mkdir_parents);
        tcase_add_test(tc, test_refuses_odd_targets);
        tcase_add_test(tc, test_failed_write_keeps_old_file);
        tcase_add_test(tc, test_remove_stale_temps);
        tcase_add_test(tc, test_long_name);
        tcase_add_test(tc, test_relative_path);
        tcase_add_test(tc, test_link_rule);
        tcase_add_test(tc, test_planted_link_refused);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return testlib_run(atomic_suite());
}
