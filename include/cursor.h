/*
 * cursor.h - a bounds-checked read-only window on received bytes, shared by
 * the wire parsers (pgproto.c, proxyproto.c). Every read checks what is
 * left first; no caller does pointer arithmetic on lengths from the wire.
 */
#ifndef PGTP_CURSOR_H
#define PGTP_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A window on buf[0..end). end never exceeds the bytes received;
 * pos <= end always holds. */
struct cursor {
    const uint8_t *buf;
    size_t end;
    size_t pos;
};

static inline size_t cur_left(const struct cursor *c)
{
    return c->end - c->pos;
}

static inline bool cur_u8(struct cursor *c, uint8_t *v)
{
    if (c->pos >= c->end)
        return false;
    *v = c->buf[c->pos++];
    return true;
}

static inline bool cur_peek(const struct cursor *c, uint8_t *v)
{
    if (c->pos >= c->end)
        return false;
    *v = c->buf[c->pos];
    return true;
}

static inline bool cur_be16(struct cursor *c, uint16_t *v)
{
    if (cur_left(c) < 2)
        return false;
    *v = (uint16_t)(c->buf[c->pos] << 8 | c->buf[c->pos + 1]);
    c->pos += 2;
    return true;
}

static inline bool cur_be32(struct cursor *c, uint32_t *v)
{
    if (cur_left(c) < 4)
        return false;
    const uint8_t *p = &c->buf[c->pos];
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
    c->pos += 4;
    return true;
}

static inline bool cur_skip(struct cursor *c, size_t n)
{
    if (cur_left(c) < n)
        return false;
    c->pos += n;
    return true;
}

/* Copy n bytes at pos into dst and advance. */
static inline bool cur_copy(struct cursor *c, void *dst, size_t n)
{
    if (cur_left(c) < n)
        return false;
    if (n > 0)
        memcpy(dst, &c->buf[c->pos], n);
    c->pos += n;
    return true;
}

/* Split the next n bytes off c into *sub (a window on just those bytes) and
 * move c past them. False, and nothing moved, if fewer than n are there. */
static inline bool cur_sub(struct cursor *c, size_t n, struct cursor *sub)
{
    if (cur_left(c) < n)
        return false;
    *sub = (struct cursor){.buf = c->buf, .end = c->pos + n, .pos = c->pos};
    c->pos += n;
    return true;
}

/* Length of the NUL-terminated string at pos, without moving. False if there
 * is no NUL before end. */
static inline bool cur_strlen(const struct cursor *c, size_t *n)
{
    const void *nul = memchr(&c->buf[c->pos], 0, cur_left(c));
    if (nul == NULL)
        return false;
    *n = (size_t)((const uint8_t *)nul - &c->buf[c->pos]);
    return true;
}

/* Do the n bytes at pos equal the C string s? */
static inline bool cur_equals(const struct cursor *c, size_t n, const char *s)
{
    return cur_left(c) >= n && strlen(s) == n && memcmp(&c->buf[c->pos], s, n) == 0;
}

#endif
