/* Levelled logging to stderr, with journald priority prefixes when stderr is the journal.
 * Library code returns errors; only the caller that decides logs them. Secrets are an opaque
 * type (secret.h), so the format checker rejects any attempt to print one. */
#pragma once

#include <syslog.h>

#include "base/macro.h"

void log_open(void);               /* detect JOURNAL_STREAM */
void log_set_max_level(int level); /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
int log_get_max_level(void);
int log_level_from_string(const char *s); /* "error" | "warning" | "info" | "debug", else -EINVAL */
const char *log_level_to_string(int level);

/* Logs at level with errno set to error (for %m) and returns -abs(error) (or 0 if error is 0). */
int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
        _printf_(6, 7);

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) ((void) log_full_errno((level), 0, __VA_ARGS__))

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
