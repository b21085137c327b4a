/* log.h - one line per event on stderr: RFC 3339 UTC timestamp, level,
 * target, message, in the shape of upstream bore's tracing output:
 *
 *   2026-11-27T04:05:33.123456Z  INFO bore::server: listening at 0.0.0.0:7835
 *
 * The level comes from BORE_LOG (or RUST_LOG, for upstream users):
 * error, warn, info (default), debug, trace; an unknown BORE_LOG value is
 * reported with a warning. Callers never pass secrets. */
#ifndef BORE_LOG_H
#define BORE_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

void log_init(void);
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(...) log_msg(LOG_ERROR, LOG_TARGET, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, LOG_TARGET, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, LOG_TARGET, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, LOG_TARGET, __VA_ARGS__);                   \
    } while (0)

#endif
