/*
 * pgauth.c - authentication messages (pgauth.h): read and built with
 * explicit bounds, nothing kept.
 */
#include "pgauth.h"

#include <string.h>

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A whole message of type t: its length word must be len - 1. */
static int framed(const uint8_t *msg, size_t len, uint8_t t)
{
    if (msg == NULL || len < 5 || msg[0] != t || len - 1 > UINT32_MAX)
        return -1;
    return get32(msg + 1) == len - 1 ? 0 : -1;
}

int pg_auth_parse(const uint8_t *msg, size_t len, int *code, const uint8_t **data, size_t *datalen)
{
    if (framed(msg, len, 'R') < 0 || len < 9)
        return -1;
    uint32_t c = get32(msg + 5);
    if (c > 1000)
        return -1;
    *code = (int)c;
    *data = msg + 9;
    *datalen = len - 9;
    return 0;
}

size_t pg_auth_build(uint8_t *out, size_t cap, int code, const void *data, size_t datalen)
{
    if (code < 0 || datalen > cap || cap - datalen < 9)
        return 0;
    out[0] = 'R';
    put32(out + 1, (uint32_t)(8 + datalen));
    put32(out + 5, (uint32_t)code);
    if (datalen > 0)
        memcpy(out + 9, data, datalen);
    return 9 + datalen;
}

int pg_password_parse(const uint8_t *msg, size_t len, const char **password, size_t *pwlen)
{
    if (framed(msg, len, 'p') < 0 || len < 6 || msg[len - 1] != '\0')
        return -1;
    const uint8_t *nul = memchr(msg + 5, '\0', len - 5);
    if (nul != msg + len - 1)
        return -1; /* "invalid password packet size" */
    *password = (const char *)(msg + 5);
    *pwlen = len - 6;
    return 0;
}

int pg_sasl_initial_parse(const uint8_t *msg, size_t len, const char **mech, const uint8_t **data,
                          size_t *datalen)
{
    if (framed(msg, len, 'p') < 0)
        return -1;
    const uint8_t *body = msg + 5, *end = msg + len;
    const uint8_t *nul = memchr(body, '\0', (size_t)(end - body));
    if (nul == NULL || nul == body || end - (nul + 1) < 4)
        return -1;
    uint32_t n = get32(nul + 1);
    const uint8_t *d = nul + 5;
    if (n == UINT32_MAX) { /* -1: no initial response */
        if (d != end)
            return -1;
        *data = NULL;
        *datalen = 0;
    } else {
        if ((size_t)(end - d) != n)
            return -1;
        *data = d;
        *datalen = n;
    }
    *mech = (const char *)body;
    return 0;
}

int pg_sasl_response_parse(const uint8_t *msg, size_t len, const uint8_t **data, size_t *datalen)
{
    if (framed(msg, len, 'p') < 0)
        return -1;
    *data = msg + 5;
    *datalen = len - 5;
    return 0;
}

size_t pg_p_build(uint8_t *out, size_t cap, const void *body, size_t bodylen)
{
    if (bodylen > cap || cap - bodylen < 5)
        return 0;
    out[0] = 'p';
    put32(out + 1, (uint32_t)(4 + bodylen));
    if (bodylen > 0)
        memcpy(out + 5, body, bodylen);
    return 5 + bodylen;
}

size_t pg_sasl_initial_build(uint8_t *out, size_t cap, const char *mech, const void *data,
                             size_t datalen)
{
    size_t m = strlen(mech) + 1;
    if (m > cap || datalen > cap - m || cap - m - datalen < 9)
        return 0;
    size_t total = 5 + m + 4 + datalen;
    out[0] = 'p';
    put32(out + 1, (uint32_t)(total - 1));
    memcpy(out + 5, mech, m);
    put32(out + 5 + m, (uint32_t)datalen);
    if (datalen > 0)
        memcpy(out + 9 + m, data, datalen);
    return total;
}
