/* The configuration's check of the files profiles write (config-outputs.c): pure. */
#pragma once

#include <stddef.h>

#include "shared/config.h"

/* A file that a profile writes, and the setting that names it. */
typedef struct ConfigOutput {
        const char *path;
        const char *profile;
        const char *key; /* "token_file", "default token_file", "spark_properties" */
        unsigned line;
} ConfigOutput;

typedef void (*config_output_problem_fn)(unsigned line, const char *message, void *userdata);

/* Two writers of one file would overwrite each other's token: report the second with both
 * named. A file that a profile reads (its kubeconfig or ca_file) must not be written either.
 * At most one problem per output, in the order of outs. 0, or -ENOMEM. */
int config_check_outputs(const ConfigOutput *outs, size_t n, const Config *c, config_output_problem_fn problem,
                         void *userdata);
