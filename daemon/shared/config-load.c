/* Reading the configuration file: the one part of the configuration that does file I/O. The
 * text goes to the pure parser (config.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/macro.h"
#include "base/util.h"
#include "shared/config-load.h"

#define CONFIG_FILE_MAX (1024 * 1024)

int config_read(const char *path, char **ret_text, size_t *ret_len) {
        return read_file_full(path, CONFIG_FILE_MAX, ret_text, ret_len);
}

int config_load_text(const char *path, int read_result, const char *text, size_t len, const ConfigEnv *env,
                     Config **ret, ConfigErrors *reterr_errors) {
        char *line;
        int r = read_result;

        if (!path || !reterr_errors)
                return -EINVAL;
        config_errors_clear(reterr_errors);

        if (r < 0) {
                if (r == -EFBIG)
                        r = asprintf(&line, "%s: larger than %d KiB, which is no configuration file", path,
                                     CONFIG_FILE_MAX / 1024) < 0
                                    ? -ENOMEM
                                    : -EFBIG;
                else {
                        errno = -r;
                        r = asprintf(&line, "%s: cannot read the configuration: %m", path) < 0 ? -ENOMEM : r;
                }
                if (r == -ENOMEM)
                        return r;
                reterr_errors->lines = calloc(2, sizeof(char *));
                if (!reterr_errors->lines) {
                        free(line);
                        return -ENOMEM;
                }
                reterr_errors->lines[0] = line;
                reterr_errors->n = 1;
                return r;
        }

        return config_parse(path, text, len, env, ret, reterr_errors);
}

int config_load(const char *path, const ConfigEnv *env, Config **ret, ConfigErrors *reterr_errors) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        if (!path || !reterr_errors)
                return -EINVAL;
        r = config_read(path, &text, &len);
        return config_load_text(path, r, text, len, env, ret, reterr_errors);
}
