/*
 * log.h - one line per event on stderr, key=value.
 */
#ifndef PGTP_LOG_H
#define PGTP_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

extern enum log_level log_min_level;
/* --log-format json: every line becomes one JSON object. */
extern bool log_json;

/* Parse "debug|info|warn|warning|error" (case-insensitive). -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level l);

/* Writes "ts=... level=... " + formatted text + "\n" in one write(2). */
void log_msg(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_min_level <= LOG_DEBUG)                                                            \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Copy s into buf for a quoted log value: '"' and '\\' escaped, control
 * characters as '?'. Returns buf. */
const char *log_escape(const char *s, char *buf, size_t len);

/* Print "pg-tls-proxy: <msg>" to stderr and exit(2). Start-up only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
