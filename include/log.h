/*
 * log.h - one line per event on stderr, key=value.
 */
#ifndef PGTP_LOG_H
#define PGTP_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
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

/*
 * Test hook: with a sink set, every line log_msg would write (text form,
 * without the newline, NUL-terminated; JSON mode ignored) goes to
 * fn(arg, level, line, len) instead of stderr. fn may be called from any
 * worker thread at once: it does its own locking. Set it before the
 * threads that log start and clear it (fn NULL) after they are joined.
 * The session harness (tests/unit/session_fixture.c) reads the event lines
 * with it; the proxy itself never sets one.
 */
typedef void (*log_sink_fn)(void *arg, enum log_level level, const char *line, size_t len);
void log_set_sink(log_sink_fn fn, void *arg);

/*
 * One line a second at most for one kind of event, however many threads
 * see it: log_gate_pass counts the event and says whether its line may be
 * written now; *seen then receives how many events (this one included)
 * the gate counted since the last line it let through. A static struct
 * log_gate starts zeroed (no line yet).
 */
struct log_gate {
    atomic_llong at;   /* time() of the last line let through */
    atomic_uint count; /* events since then */
};
bool log_gate_pass(struct log_gate *g, unsigned *seen);

/* Copy s into buf for a quoted log value: '"' and '\\' escaped, control
 * characters as '?'. Returns buf. */
const char *log_escape(const char *s, char *buf, size_t len);

/*
 * A message for a person at the terminal: "<prefix><msg>" on stderr as it
 * is in text mode; with --log-format json, a log line at error level
 * {"event":"<event>","message":"<msg>"} so that every line on stderr is
 * JSON (usage errors, fatal start-up errors, --check failures).
 */
void log_report(const char *prefix, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_reportv(const char *prefix, const char *event, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/*
 * One key=value line (without the newline, NUL-terminated) as a JSON
 * object: quoted and [bracketed] values become strings, bare unsigned
 * decimals numbers (except under keys ending in "sqlstate", always
 * strings), other bare values strings; bytes that are not UTF-8 and
 * control characters are escaped as \u00XX. Writes at most cap bytes (no
 * NUL); returns the length. Pure, for log_msg and the unit tests.
 */
size_t log_to_json(const char *in, char *out, size_t cap);

/* "pg-tls-proxy: <msg>" to stderr (a JSON line with --log-format json, see
 * log_report) and exit(2). Start-up only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
