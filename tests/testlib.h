/* Helpers shared by the unit tests. */
#pragma once

#include <check.h>

/* Run one suite and return the process exit status (0 when all passed). */
int testlib_run(Suite *s);

/* A fresh temporary directory under $TMPDIR (malloc'd path); removed by testlib_rm_rf(). */
char *testlib_mkdtemp(void);
void testlib_rm_rf(const char *path);

/* A fresh scratch directory for each test:
 *     tcase_add_checked_fixture(tc, testlib_scratch_setup, testlib_scratch_teardown);
 * testlib_scratch is its path; testlib_path() joins a name to a directory (malloc'd). */
extern char *testlib_scratch;
void testlib_scratch_setup(void);
void testlib_scratch_teardown(void);
char *testlib_path(const char *dir, const char *name);

/* Write a file with the given bytes; aborts the test on failure. */
void testlib_write_file(const char *path, const char *data, size_t len);
