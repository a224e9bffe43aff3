/*
 * bridgeproto.c - the bridge protocol's codecs (bridgeproto.h): the
 * preamble, frames, "key=value" payloads, stream ids, tokens, bridge ids
 * and host:port. Everything here reads only inside the buffer it is given
 * and is fuzzed (tests/fuzz/fuzz_bridgeproto.c).
 */
#include "bridgeproto.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

bool bridge_frame_type_known(uint8_t t)
{
    switch (t) {
    case BRIDGE_HELLO:
    case BRIDGE_WELCOME:
    case BRIDGE_REJECT:
    case BRIDGE_OPEN:
    case BRIDGE_FAIL:
    case BRIDGE_PING:
    case BRIDGE_PONG:
    case BRIDGE_BYE:
        return true;
    default:
        return false;
    }
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

void bridge_preamble_encode(uint64_t stream, uint8_t out[BRIDGE_PREAMBLE_LEN])
{
    static const uint8_t magic[BRIDGE_MAGIC_LEN] = {'P', 'G', 'T', 'P', 'B', 'R', 'G', '1'};
    for (size_t i = 0; i < BRIDGE_MAGIC_LEN; i++)
        out[i] = magic[i];
    put_be64(out + BRIDGE_MAGIC_LEN, stream);
}

int bridge_preamble_decode(const uint8_t *buf, size_t len, uint64_t *stream)
{
    /* A wrong first byte is known to be wrong before all 16 have come. */
    size_t n = len < BRIDGE_MAGIC_LEN ? len : BRIDGE_MAGIC_LEN;
    if (memcmp(buf, BRIDGE_MAGIC, n) != 0)
        return -1;
    if (len < BRIDGE_PREAMBLE_LEN)
        return 0;
    *stream = get_be64(buf + BRIDGE_MAGIC_LEN);
    return 1;
}

int bridge_frame_decode(const uint8_t *buf, size_t len, uint8_t *type, const uint8_t **payload,
                        size_t *plen, size_t *used)
{
    if (len < 1)
        return 0;
    if (!bridge_frame_type_known(buf[0]))
        return -1;
    if (len < BRIDGE_FRAME_HDR)
        return 0;
    uint32_t n = ((uint32_t)buf[1] << 24) | ((uint32_t)buf[2] << 16) | ((uint32_t)buf[3] << 8) |
                 (uint32_t)buf[4];
    if (n > BRIDGE_FRAME_MAX)
        return -1;
    if (len - BRIDGE_FRAME_HDR < n)
        return 0;
    *type = buf[0];
    *payload = buf + BRIDGE_FRAME_HDR;
    *plen = n;
    *used = BRIDGE_FRAME_HDR + (size_t)n;
    return 1;
}

void bridge_frame_begin(struct bridge_frame *f, uint8_t *buf, size_t cap, uint8_t type)
{
    f->buf = buf;
    f->cap = cap;
    f->len = 0;
    f->overflow = cap < BRIDGE_FRAME_HDR;
    if (!f->overflow) {
        memset(buf, 0, BRIDGE_FRAME_HDR);
        buf[0] = type;
        f->len = BRIDGE_FRAME_HDR;
    }
}

static bool key_valid(const char *k)
{
    if (*k == '\0')
        return false;
    for (; *k != '\0'; k++)
        if (!((*k >= 'a' && *k <= 'z') || *k == '_'))
            return false;
    return true;
}

/* A value may hold any byte but NUL, '\n' and the other C0 controls and DEL. */
static bool value_byte_ok(unsigned char ch)
{
    return ch >= 0x20 && ch != 0x7f;
}

void bridge_frame_add(struct bridge_frame *f, const char *key, const char *value)
{
    if (f->overflow)
        return;
    size_t kl = strlen(key), vl = strlen(value);
    if (!key_valid(key) || vl > BRIDGE_VALUE_MAX) {
        f->overflow = true;
        return;
    }
    for (size_t i = 0; i < vl; i++)
        if (!value_byte_ok((unsigned char)value[i])) {
            f->overflow = true;
            return;
        }
    size_t need = kl + 1 + vl + 1;
    if (need > f->cap - f->len || f->len - BRIDGE_FRAME_HDR + need > BRIDGE_FRAME_MAX) {
        f->overflow = true;
        return;
    }
    uint8_t *p = f->buf + f->len;
    for (size_t i = 0; i < kl; i++)
        p[i] = (uint8_t)key[i];
    p[kl] = '=';
    for (size_t i = 0; i < vl; i++)
        p[kl + 1 + i] = (uint8_t)value[i];
    p[kl + 1 + vl] = '\n';
    f->len += need;
}

void bridge_frame_addf(struct bridge_frame *f, const char *key, const char *fmt, ...)
{
    char v[BRIDGE_VALUE_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(v, sizeof(v), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > BRIDGE_VALUE_MAX) {
        f->overflow = true;
        return;
    }
    bridge_frame_add(f, key, v);
}

int bridge_frame_end(struct bridge_frame *f)
{
    if (f->overflow)
        return -1;
    size_t n = f->len - BRIDGE_FRAME_HDR;
    f->buf[1] = (uint8_t)(n >> 24);
    f->buf[2] = (uint8_t)(n >> 16);
    f->buf[3] = (uint8_t)(n >> 8);
    f->buf[4] = (uint8_t)n;
    return (int)f->len;
}

int bridge_payload_get(const uint8_t *payload, size_t len, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    int found = 0;
    size_t i = 0;
    if (cap > 0)
        out[0] = '\0';
    while (i < len) {
        const uint8_t *line = payload + i;
        const uint8_t *nl = memchr(line, '\n', len - i);
        if (nl == NULL)
            return -1; /* no final newline */
        size_t ll = (size_t)(nl - line);
        const uint8_t *eq = memchr(line, '=', ll);
        if (eq == NULL || eq == line)
            return -1;
        size_t klen = (size_t)(eq - line);
        for (size_t j = 0; j < klen; j++)
            if (!((line[j] >= 'a' && line[j] <= 'z') || line[j] == '_'))
                return -1;
        const uint8_t *v = eq + 1;
        size_t vl = ll - klen - 1;
        if (vl > BRIDGE_VALUE_MAX)
            return -1;
        for (size_t j = 0; j < vl; j++)
            if (!value_byte_ok(v[j]))
                return -1;
        if (found == 0 && klen == kl && memcmp(line, key, kl) == 0) {
            if (vl + 1 > cap)
                return -1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            found = 1; /* the first one counts; the rest is still checked */
        }
        i += ll + 1;
    }
    return found;
}

static int hex_decode(const char *text, uint8_t *out, size_t n)
{
    if (strlen(text) != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)text[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int bridge_stream_parse(const char *text, uint64_t *stream)
{
    uint8_t b[8];
    if (hex_decode(text, b, sizeof(b)) != 0)
        return -1;
    *stream = get_be64(b);
    return 0;
}

void bridge_stream_format(uint64_t stream, char out[17])
{
    uint8_t b[8];
    put_be64(b, stream);
    hex_encode(b, sizeof(b), out);
}

int bridge_token_parse(const char *text, uint8_t token[BRIDGE_TOKEN_LEN])
{
    return hex_decode(text, token, BRIDGE_TOKEN_LEN);
}

void bridge_token_format(const uint8_t token[BRIDGE_TOKEN_LEN], char out[2 * BRIDGE_TOKEN_LEN + 1])
{
    hex_encode(token, BRIDGE_TOKEN_LEN, out);
}

bool bridge_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > BRIDGE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

int bridge_hostport_parse(const char *text, char *host, size_t hostcap, uint16_t *port)
{
    const char *colon, *hs = text;
    size_t hl;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hs = text + 1;
        hl = (size_t)(close - hs);
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - text);
        if (memchr(text, ':', hl) != NULL)
            return -1; /* a bare IPv6 address: brackets are needed */
    }
    if (hl == 0 || hl + 1 > hostcap)
        return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char ch = (unsigned char)hs[i];
        if (ch <= 0x20 || ch == 0x7f || ch == '/' || ch == '[' || ch == ']' || ch == ',')
            return -1;
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return -1;
    unsigned long v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    *port = (uint16_t)v;
    return 0;
}
