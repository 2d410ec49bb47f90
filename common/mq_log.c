/* mq_log.c — leveled logging to stderr (see mq_log.h). */
#include "common/mq_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static atomic_int log_level = -1; /* -1: not yet read from the environment */

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int mq_log_parse_level(const char *s, enum mq_log_level *out)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (enum mq_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void mq_log_set_level(enum mq_log_level level)
{
    atomic_store(&log_level, (int)level);
}

int mq_log_enabled(enum mq_log_level level)
{
    int cur = atomic_load(&log_level);
    if (cur < 0) {
        enum mq_log_level l = MQ_LOG_INFO;
        const char *env = getenv("MQ_LOG_LEVEL");
        if (env)
            (void)mq_log_parse_level(env, &l);
        cur = (int)l;
        atomic_store(&log_level, cur);
    }
    return (int)level >= cur;
}

void mq_log_at(enum mq_log_level level, const char *file, int line, const char *fmt, ...)
{
    if (!mq_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    /* One fprintf call: stdio's stream lock keeps lines from different threads whole. */
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s:%d %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            level_names[level], base, line, msg);
}
