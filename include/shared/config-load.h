/* Reading the configuration file (the parser, config.h, is pure). */
#pragma once

#include "shared/config.h"

/* Read path and parse it. A file that cannot be read is one entry in reterr_errors. */
int config_load(const char *path, const ConfigEnv *env, Config **ret, ConfigErrors *reterr_errors);
