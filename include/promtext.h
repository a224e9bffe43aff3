/*
 * promtext.h - writing the Prometheus text exposition format into a
 * caller's buffer.
 */
#ifndef PGTP_PROMTEXT_H
#define PGTP_PROMTEXT_H

#include <stddef.h>

/* An snprintf-like writer: counts what it would write past cap, so one pass
 * both fills the buffer and measures the whole output. {buf, cap, 0} starts
 * one; buf is not NUL-terminated by these functions. */
struct prom_out {
    char *buf;
    size_t cap, len;
};

/* n bytes of s as they are (what does not fit is only counted). */
void prom_put(struct prom_out *o, const char *s, size_t n);
void prom_puts(struct prom_out *o, const char *s);
/* printf for numbers and our own names: at most 255 bytes per call. */
void prom_putf(struct prom_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * A label value from outside: backslash, double quote and newline escaped;
 * other control characters and bytes that are not valid UTF-8 become '?'.
 */
void prom_label_value(struct prom_out *o, const char *v);
/* "# HELP name help" and "# TYPE name type" lines; help is ours (no escaping). */
void prom_family(struct prom_out *o, const char *name, const char *type, const char *help);

#endif
