/* Helpers shared by the unit tests. */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

int testlib_run(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

char *testlib_mkdtemp(void) {
        const char *tmp = getenv("TMPDIR");
        char *p;

        if (asprintf(&p, "%s/aksspark-test.XXXXXX", tmp ? tmp : "/tmp") < 0)
                abort();
        if (!mkdtemp(p))
                abort();
        return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

void testlib_rm_rf(const char *path) {
        if (path)
                (void) nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *testlib_scratch;

void testlib_scratch_setup(void) {
        testlib_scratch = testlib_mkdtemp();
}

void testlib_scratch_teardown(void) {
        testlib_rm_rf(testlib_scratch);
        free(testlib_scratch);
        testlib_scratch = NULL;
}

char *testlib_path(const char *dir, const char *name) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

void testlib_write_file(const char *path, const char *data, size_t len) {
        FILE *f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(data, 1, len, f), len);
        ck_assert_int_eq(fclose(f), 0);
}
