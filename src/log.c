/*
 * log.c - one line per event on stderr, "ts=... level=... key=value ...".
 *
 * Each line goes out in a single write(2) so that lines from concurrent
 * writers never interleave. Callers are responsible for never passing
 * secrets (passwords, key material, parameter values) in the text.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

enum log_level log_min_level = LOG_INFO;
bool log_json;

static log_sink_fn sink_fn; /* log_set_sink: tests only */
static void *sink_arg;

void log_set_sink(log_sink_fn fn, void *arg)
{
    sink_fn = fn;
    sink_arg = arg;
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

const char *log_level_name(enum log_level l)
{
    return (unsigned)l < 4 ? level_names[l] : "?";
}

/*
 * Append s[0..n) as a JSON string (quoted) to out[o..], truncated so that
 * nothing goes past cap; the caller guarantees o + 2 <= cap. '"' and '\\' are
 * escaped, control characters and DEL become \u00XX, valid UTF-8 passes as
 * it is, and every byte that is not part of valid UTF-8 (a client's SNI or
 * a certificate subject may hold anything) becomes \u00XX too: the line
 * stays valid UTF-8 and so valid JSON, and the byte's value can still be
 * read. Returns the new length.
 */
static size_t json_str(char *out, size_t o, size_t cap, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t lim = cap - 1; /* the closing quote */
    out[o++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char ch = u[i];
        size_t k = ch < 0x20 || ch == 0x7f ? 0 : utf8_seq(u + i, n - i);
        if (ch == '"' || ch == '\\') {
            if (o + 2 > lim)
                break;
            out[o++] = '\\';
            out[o++] = (char)ch;
            i++;
        } else if (k == 0) {
            if (o + 6 > lim)
                break;
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = '0';
            out[o++] = '0';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
            i++;
        } else {
            if (o + k > lim)
                break;
            memcpy(out + o, u + i, k);
            o += k;
            i += k;
        }
    }
    out[o++] = '"';
    return o;
}

/* Keys whose values are codes, strings whatever they look like: a SQLSTATE
 * such as 08001 or 53300 must not become the number 8001 or 53300. */
static bool key_is_code(const char *k, size_t klen)
{
    static const char suffix[] = "sqlstate";
    size_t sl = sizeof(suffix) - 1;
    return klen >= sl && memcmp(k + klen - sl, suffix, sl) == 0;
}

/* A JSON number as we write them: 0 or a decimal without a leading zero,
 * no sign, at most 15 digits (exact in a double, so every reader agrees). */
static bool json_uint(const char *v, size_t n)
{
    if (n == 0 || n > 15 || (v[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

/*
 * Our lines are `key=value ...` with values bare, "quoted" (with \" and \\
 * escapes, see log_escape) or [bracketed] (a list with spaces inside). A
 * token like [::1]:5432 (an IPv6 address and port) starts with a bracket
 * but goes on after it: it is one bare value, brackets and port included.
 * Values become JSON strings, except bare unsigned decimals, which are
 * numbers unless their key names a code (sqlstate). Pure: no I/O.
 */
size_t log_to_json(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    char val[2048];
    if (cap < 3)
        return 0;
    out[o++] = '{';
    const char *p = in;
    /* Room for the rest of a member: ',' '"' ... '":' and the closing '}'. */
    while (*p != '\0' && o + 16 < cap) {
        while (*p == ' ')
            p++;
        const char *k = p;
        while (*p != '\0' && *p != '=' && *p != ' ')
            p++;
        size_t klen = (size_t)(p - k);
        if (klen == 0 || *p != '=') {
            while (*p != '\0' && *p != ' ')
                p++;
            continue;
        }
        p++; /* '=' */
        size_t vlen = 0;
        bool bare = false;
        if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                if (vlen < sizeof(val))
                    val[vlen++] = *p;
            }
            if (*p == '"')
                p++;
        } else if (*p == '[') {
            const char *open = p;
            int depth = 0;
            for (p++; *p != '\0' && !(*p == ']' && depth == 0); p++) {
                if (*p == '[')
                    depth++;
                else if (*p == ']')
                    depth--;
                if (vlen < sizeof(val))
                    val[vlen++] = *p;
            }
            if (*p == ']')
                p++;
            if (*p != '\0' && *p != ' ') {
                /* [v6]:port: the whole token, as written. */
                while (*p != '\0' && *p != ' ')
                    p++;
                vlen = (size_t)(p - open) < sizeof(val) ? (size_t)(p - open) : sizeof(val);
                memcpy(val, open, vlen);
            }
        } else {
            bare = true;
            for (; *p != '\0' && *p != ' '; p++)
                if (vlen < sizeof(val))
                    val[vlen++] = *p;
        }
        if (o > 1)
            out[o++] = ',';
        /* Room after the key for ':""}' whatever its length. */
        o = json_str(out, o, cap - 4, k, klen);
        out[o++] = ':';
        if (bare && !key_is_code(k, klen) && json_uint(val, vlen) && o + vlen < cap) {
            memcpy(out + o, val, vlen);
            o += vlen;
        } else {
            o = json_str(out, o, cap - 1, val, vlen);
        }
    }
    out[o++] = '}';
    return o;
}

void log_msg(enum log_level l, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;

    if (l < log_min_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, log_level_name(l));
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    if (sink_fn != NULL) {
        line[len] = '\0';
        sink_fn(sink_arg, l, line, len);
        return;
    }
    if (log_json) {
        /* Worst case six bytes out per byte in (\u00XX). */
        char json[sizeof(line) * 6 + 64];
        line[len] = '\0';
        size_t jl = log_to_json(line, json, sizeof(json) - 1);
        json[jl++] = '\n';
        ssize_t wj = write(STDERR_FILENO, json, jl);
        (void)wj;
        return;
    }
    line[len++] = '\n';
    /* A short write to stderr is not worth retrying or reporting. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

bool log_gate_pass(struct log_gate *g, unsigned *seen)
{
    atomic_fetch_add_explicit(&g->count, 1, memory_order_relaxed);
    long long now = (long long)time(NULL), last = atomic_load(&g->at);
    if (now == last || !atomic_compare_exchange_strong(&g->at, &last, now))
        return false;
    *seen = atomic_exchange(&g->count, 0);
    return true;
}

const char *log_escape(const char *s, char *buf, size_t len)
{
    size_t o = 0;
    if (len == 0)
        return buf;
    for (; *s != '\0' && o + 2 < len; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            buf[o++] = '\\';
        buf[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    buf[o] = '\0';
    return buf;
}

void log_reportv(const char *prefix, const char *event, const char *fmt, va_list ap)
{
    char msg[1536];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (!log_json) {
        fprintf(stderr, "%s%s\n", prefix, msg);
        fflush(stderr);
        return;
    }
    /* As a log line, so that a JSON reader sees one object like any other. */
    char q[sizeof(msg) + 8];
    log_msg(LOG_ERROR, "event=%s message=\"%s\"", event, log_escape(msg, q, sizeof(q)));
}

void log_report(const char *prefix, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_reportv(prefix, event, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_reportv("pg-tls-proxy: ", "fatal", fmt, ap);
    va_end(ap);
    exit(2);
}
