/* Reading the configuration file (the parser, config.h, is pure). */
#pragma once

#include "shared/config.h"

/* Read path and parse it. A file that cannot be read is one entry in reterr_errors. */
int config_load(const char *path, const ConfigEnv *env, Config **ret, ConfigErrors *reterr_errors);

/* The two halves of config_load(), for a reload that reads in a worker thread: config_read()
 * only reads (no logging, safe in a thread); config_load_text() turns its result (read_result
 * < 0: the read failed) into a Config or problems, as config_load() does. */
int config_read(const char *path, char **ret_text, size_t *ret_len);
int config_load_text(const char *path, int read_result, const char *text, size_t len, const ConfigEnv *env,
                     Config **ret, ConfigErrors *reterr_errors);
