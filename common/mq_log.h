/* mq_log.h — leveled logging to stderr, one line per call, safe from any thread.
 *
 * Line format: "2026-11-23T22:40:01.123Z LEVEL file.c:42 message". The level threshold is
 * process-wide (mq_log_set_level), default INFO; MQ_LOG_LEVEL=debug|info|warn|error in the
 * environment sets it at the first call.
 */
#ifndef MQ_LOG_H
#define MQ_LOG_H

enum mq_log_level { MQ_LOG_DEBUG = 0, MQ_LOG_INFO, MQ_LOG_WARN, MQ_LOG_ERROR };

void mq_log_set_level(enum mq_log_level level);
int mq_log_enabled(enum mq_log_level level);
/* Parses "debug", "info", "warn", "error"; returns -EINVAL for anything else. */
int mq_log_parse_level(const char *s, enum mq_log_level *out);

void mq_log_at(enum mq_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define mq_debug(...)                                                                              \
    do {                                                                                           \
        if (mq_log_enabled(MQ_LOG_DEBUG))                                                          \
            mq_log_at(MQ_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__);                              \
    } while (0)
#define mq_info(...)  mq_log_at(MQ_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define mq_warn(...)  mq_log_at(MQ_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define mq_error(...) mq_log_at(MQ_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)

#endif
