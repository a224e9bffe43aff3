/*
 * cursor.h - a bounds-checked read-only window on received bytes, shared by
 * the wire parsers (pgproto.c, pgmsg.c, proxyproto.c). Every read checks what
 * is left first; no caller does pointer arithmetic on lengths from the wire.
 * Also its mirror for output, the bounded writer of pgproto.c and pgmsg.c.
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

/* Copy up to n bytes at pos into dst for logging: printable ASCII except '"'
 * and '\\' (so the value can sit inside a quoted key=value log field), every
 * other byte becomes '?'; truncated to dstsize - 1; always NUL-terminated.
 * dstsize must be at least 1. */
static inline void cur_copy_sanitised(const struct cursor *c, size_t n, char *dst, size_t dstsize)
{
    size_t avail = c->end - c->pos;
    if (n > avail)
        n = avail;
    if (n > dstsize - 1)
        n = dstsize - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = c->buf[c->pos + i];
        dst[i] = (b >= 0x20 && b <= 0x7e && b != '"' && b != '\\') ? (char)b : '?';
    }
    /* Clear the rest too, so a shorter repeated parameter leaves no tail of
     * the earlier value behind the NUL. */
    memset(&dst[n], 0, dstsize - n);
}

/* ---- output: the bounded writer ---------------------------------------- */

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A bounded writer; the caller has already checked the total fits, the
 * checks here are the second line of defence. */
struct writer {
    uint8_t *buf;
    size_t cap;
    size_t pos;
    bool overflow;
};

static inline void w_bytes(struct writer *w, const void *p, size_t n)
{
    if (w->overflow || w->cap - w->pos < n) {
        w->overflow = true;
        return;
    }
    memcpy(&w->buf[w->pos], p, n);
    w->pos += n;
}

static inline void w_u8(struct writer *w, uint8_t b)
{
    w_bytes(w, &b, 1);
}

static inline void w_field(struct writer *w, char type, const char *s, size_t n)
{
    w_u8(w, (uint8_t)type);
    w_bytes(w, s, n);
    w_u8(w, 0);
}

#endif
