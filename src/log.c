/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum log_level max_level = LOG_INFO;

void log_init(void)
{
    static const char *names[] = {"error", "warn", "info", "debug", "trace"};
    const char *v = getenv("BORE_LOG");
    int ours = v != NULL && *v != '\0';
    if (!ours) v = getenv("RUST_LOG");
    if (v == NULL) return;
    for (int i = 0; i < 5; i++) {
        if (strcasecmp(v, names[i]) == 0) {
            max_level = (enum log_level)i;
            return;
        }
    }
    /* RUST_LOG has a richer syntax (bore=debug,...) meant for upstream: only
     * its bare levels are honoured, the rest quietly. */
    if (ours)
        log_msg(LOG_WARN, "bore", "unknown BORE_LOG level '%s' (valid: error, warn, info, debug, "
                "trace); logging at info", v);
}

int log_enabled(enum log_level level) { return level <= max_level; }

void log_msg(enum log_level level, const char *target, const char *fmt, ...)
{
    static const char *tags[] = {"ERROR", " WARN", " INFO", "DEBUG", "TRACE"};
    if (!log_enabled(level)) return;

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);

    char line[1024];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000, tags[level], target);
    if (n < 0 || (size_t)n >= sizeof line) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2) len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr); /* stderr is unbuffered: one write per line */
}
