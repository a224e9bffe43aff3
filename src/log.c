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

enum log_level log_min_level = LOG_INFO;
bool log_json;

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

/* Append s as a JSON string (quoted, escaped) to out; returns the new length. */
static size_t json_str(char *out, size_t o, size_t cap, const char *s, size_t n)
{
    if (o + 2 >= cap)
        return o;
    out[o++] = '"';
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o++] = '"';
    return o;
}

/*
 * Our lines are `key=value ...`, values bare, "quoted" (with \" and \\
 * escapes, see log_escape) or [bracketed]. Turn one into a JSON object,
 * bare all-digit values as numbers. in is NUL-terminated.
 */
static size_t to_json(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    char val[2048];
    out[o++] = '{';
    const char *p = in;
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
        bool number = false;
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
        } else {
            number = *p >= '0' && *p <= '9';
            for (; *p != '\0' && *p != ' '; p++) {
                number = number && *p >= '0' && *p <= '9';
                if (vlen < sizeof(val))
                    val[vlen++] = *p;
            }
            number = number && vlen > 0 && vlen < 16;
        }
        if (o > 1)
            out[o++] = ',';
        o = json_str(out, o, cap, k, klen);
        out[o++] = ':';
        if (number) {
            memcpy(out + o, val, vlen);
            o += vlen;
        } else {
            o = json_str(out, o, cap, val, vlen);
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
    if (log_json) {
        char json[sizeof(line) * 2 + 64];
        line[len] = '\0';
        size_t jl = to_json(line, json, sizeof(json) - 1);
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

void fatal(const char *fmt, ...)
{
    va_list ap;
    fputs("pg-tls-proxy: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}
