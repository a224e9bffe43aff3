/*
 * utf8.h - is this a valid UTF-8 sequence? One check for every writer that
 * must not pass invalid UTF-8 on: JSON log lines (log.c) and Prometheus
 * label values (promtext.c). Pure, header-only.
 */
#ifndef PGTP_UTF8_H
#define PGTP_UTF8_H

#include <stddef.h>

/* Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 if there is
 * none (an invalid or truncated sequence, an overlong form, a surrogate). */
static inline size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned cp, min;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1fu;
        min = 0x80;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0fu;
        min = 0x800;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

#endif
