/* Levelled logging to stderr; journald priority prefixes when stderr is the journal. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"

static int max_level = LOG_INFO;
static bool stderr_is_journal = false;

static const char *const level_names[] = {
        [LOG_ERR] = "error",
        [LOG_WARNING] = "warning",
        [LOG_INFO] = "info",
        [LOG_DEBUG] = "debug",
};

void log_open(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        stderr_is_journal = false;
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return;
        if (fstat(STDERR_FILENO, &st) < 0)
                return;
        stderr_is_journal = st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (level_names[i] && strcmp(level_names[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        error = abs(error);
        if (level > max_level)
                return -error;

        errno = error; /* for %m */
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof buf, format, ap);
        va_end(ap);

        /* One record per line: a message can never forge a second log line. */
        for (char *p = buf; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';

        if (stderr_is_journal)
                fprintf(stderr, "<%d>%s\n", level, buf);
        else if (level <= LOG_WARNING)
                fprintf(stderr, "%s: %s\n", level == LOG_ERR ? "error" : "warning", buf);
        else
                fprintf(stderr, "%s\n", buf);
        if (max_level >= LOG_DEBUG && level >= LOG_DEBUG && !stderr_is_journal)
                fprintf(stderr, "  (%s:%d %s)\n", file, line, func);

        errno = saved;
        return -error;
}
