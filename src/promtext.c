/*
 * promtext.c - the Prometheus text exposition format (0.0.4) as a writer:
 * HELP/TYPE lines, label values escaped and made valid UTF-8, numbers.
 *
 * Owns nothing: writes into the caller's buffer and counts what did not
 * fit, like snprintf. Never allocates, locks or logs; what the metrics are
 * is metrics.c's business.
 */
#include "promtext.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

void prom_put(struct prom_out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

void prom_puts(struct prom_out *o, const char *s)
{
    prom_put(o, s, strlen(s));
}

void prom_putf(struct prom_out *o, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    /* Only numbers and our own metric and label names pass through here
     * (label values from outside go through prom_label_value); all fit. */
    if (n > 0)
        prom_put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/*
 * A label value: backslash, double quote and newline escaped as the format
 * requires. Certificate subjects are not ours to trust, so other control
 * characters and bytes that are not UTF-8 (the format requires UTF-8)
 * become '?' rather than break the scrape.
 */
void prom_label_value(struct prom_out *o, const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    while (*p != '\0') {
        if (*p == '\\') {
            prom_put(o, "\\\\", 2);
        } else if (*p == '"') {
            prom_put(o, "\\\"", 2);
        } else if (*p == '\n') {
            prom_put(o, "\\n", 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            prom_put(o, "?", 1);
        } else {
            /* the NUL ends a sequence early: not UTF-8 */
            size_t n = utf8_seq(p, strnlen((const char *)p, 4));
            if (n == 0) {
                prom_put(o, "?", 1);
                n = 1;
            } else {
                prom_put(o, (const char *)p, n);
            }
            p += n;
            continue;
        }
        p++;
    }
}

/* HELP texts are ours: no backslash or newline that would need escaping. */
void prom_family(struct prom_out *o, const char *name, const char *type, const char *help)
{
    prom_puts(o, "# HELP ");
    prom_puts(o, name);
    prom_puts(o, " ");
    prom_puts(o, help);
    prom_puts(o, "\n# TYPE ");
    prom_puts(o, name);
    prom_puts(o, " ");
    prom_puts(o, type);
    prom_puts(o, "\n");
}
