/*
 * peermsg.c - building, parsing and verifying PeerCancelRequests (the
 * format is in peermsg.h).
 *
 * Owns nothing: caller-owned buffers, the caller's replay table and clock.
 * Never logs. The MAC is compared with CRYPTO_memcmp (a stranger must not
 * learn a valid MAC byte by byte from timing) and checked before anything
 * else is believed: hops, timestamp and nonce of an unauthenticated message
 * are not even looked at, so a forger cannot fill the replay table.
 */
#include "peermsg.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cursor.h"

_Static_assert(PEERMSG_FIXED == 70, "pgproto.c checks PeerCancelRequest lengths with 70");

static const char *const names[] = {
    [PEERMSG_OK] = "ok",       [PEERMSG_MALFORMED] = "malformed", [PEERMSG_BAD_MAC] = "bad_mac",
    [PEERMSG_STALE] = "stale", [PEERMSG_REPLAYED] = "replayed",   [PEERMSG_NO_HOPS] = "no_hops",
};

const char *peermsg_result_name(enum peermsg_result r)
{
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "invalid";
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static bool mac(const uint8_t *secret, size_t secretlen, const uint8_t *data, size_t len,
                uint8_t out[PEERMSG_MAC])
{
    unsigned int outlen = 0;
    return HMAC(EVP_sha256(), secret, (int)secretlen, data, len, out, &outlen) != NULL &&
           outlen == PEERMSG_MAC;
}

size_t peermsg_build(uint8_t *out, size_t cap, const struct peermsg *m, const uint8_t *secret,
                     size_t secretlen)
{
    uint32_t pid;
    size_t keylen;
    uint8_t key[PG_CANCEL_KEY_MAX];
    if (m == NULL || secret == NULL || secretlen < PEERMSG_SECRET_MIN ||
        m->cancel_len < PEERMSG_CANCEL_MIN || m->cancel_len > PEERMSG_CANCEL_MAX ||
        pg_parse_cancel(m->cancel, m->cancel_len, &pid, key, &keylen) != 0)
        return 0;
    OPENSSL_cleanse(key, sizeof(key));
    size_t total = PEERMSG_FIXED + m->cancel_len;
    if (out == NULL || cap < total)
        return 0;
    put32(out, (uint32_t)total);
    put32(out + 4, PEERMSG_CODE);
    out[8] = PEERMSG_VERSION;
    out[9] = m->hops;
    out[10] = m->origin;
    out[11] = 0;
    put32(out + 12, (uint32_t)(m->ts_ms >> 32));
    put32(out + 16, (uint32_t)m->ts_ms);
    memcpy(out + 20, m->nonce, PEERMSG_NONCE);
    out[36] = (uint8_t)(m->cancel_len >> 8);
    out[37] = (uint8_t)m->cancel_len;
    memcpy(out + PEERMSG_HDR, m->cancel, m->cancel_len);
    size_t signed_len = PEERMSG_HDR + m->cancel_len;
    if (!mac(secret, secretlen, out, signed_len, out + signed_len)) {
        OPENSSL_cleanse(out, total);
        return 0;
    }
    return total;
}

enum peermsg_result peermsg_parse(const uint8_t *pkt, size_t len, struct peermsg *m)
{
    struct cursor c = {.buf = pkt, .end = pkt != NULL ? len : 0, .pos = 0};
    uint32_t total, code, hi, lo;
    uint8_t version, zero;
    uint16_t n;

    memset(m, 0, sizeof(*m));
    if (!cur_be32(&c, &total) || !cur_be32(&c, &code) || total != len || code != PEERMSG_CODE ||
        !cur_u8(&c, &version) || version != PEERMSG_VERSION || !cur_u8(&c, &m->hops) ||
        !cur_u8(&c, &m->origin) || !cur_u8(&c, &zero) || zero != 0 || !cur_be32(&c, &hi) ||
        !cur_be32(&c, &lo) || !cur_copy(&c, m->nonce, PEERMSG_NONCE) || !cur_be16(&c, &n) ||
        n < PEERMSG_CANCEL_MIN || n > PEERMSG_CANCEL_MAX || len != PEERMSG_FIXED + (size_t)n ||
        !cur_copy(&c, m->cancel, n) ||
        pg_parse_cancel(m->cancel, n, &m->pid, m->key, &m->keylen) != 0) {
        OPENSSL_cleanse(m, sizeof(*m));
        return PEERMSG_MALFORMED;
    }
    m->ts_ms = ((uint64_t)hi << 32) | lo;
    m->cancel_len = n;
    return PEERMSG_OK;
}

/* Seen within the window? Else remember it (evicting the oldest slot). */
static bool replayed(struct peermsg_replay *rp, const uint8_t *nonce, uint64_t ts_ms,
                     uint64_t now_ms)
{
    for (size_t i = 0; i < PEERMSG_REPLAY_SLOTS; i++) {
        uint64_t t = rp->slot[i].ts_ms; /* never more than a window ahead of now_ms */
        if (t != 0 && (t >= now_ms || now_ms - t <= (uint64_t)2 * PEERMSG_WINDOW_MS) &&
            CRYPTO_memcmp(rp->slot[i].nonce, nonce, PEERMSG_NONCE) == 0)
            return true;
    }
    memcpy(rp->slot[rp->next].nonce, nonce, PEERMSG_NONCE);
    rp->slot[rp->next].ts_ms = ts_ms != 0 ? ts_ms : 1;
    rp->next = (rp->next + 1) % PEERMSG_REPLAY_SLOTS;
    return false;
}

enum peermsg_result peermsg_verify(const uint8_t *pkt, size_t len, const uint8_t *secret,
                                   size_t secretlen, uint64_t now_ms, struct peermsg_replay *rp,
                                   struct peermsg *m)
{
    uint8_t want[PEERMSG_MAC];
    enum peermsg_result r = peermsg_parse(pkt, len, m);
    if (r != PEERMSG_OK)
        return r;
    size_t signed_len = len - PEERMSG_MAC;
    if (secret == NULL || secretlen < PEERMSG_SECRET_MIN ||
        !mac(secret, secretlen, pkt, signed_len, want) ||
        CRYPTO_memcmp(want, pkt + signed_len, PEERMSG_MAC) != 0)
        r = PEERMSG_BAD_MAC;
    else if (m->hops == 0)
        r = PEERMSG_NO_HOPS;
    else if ((m->ts_ms > now_ms ? m->ts_ms - now_ms : now_ms - m->ts_ms) > PEERMSG_WINDOW_MS)
        r = PEERMSG_STALE; /* (a difference: no sum to overflow) */
    else if (rp != NULL && replayed(rp, m->nonce, m->ts_ms, now_ms))
        r = PEERMSG_REPLAYED;
    OPENSSL_cleanse(want, sizeof(want));
    if (r != PEERMSG_OK)
        OPENSSL_cleanse(m, sizeof(*m));
    return r;
}
