/*
 * pgproto.c - classify the first packet a PostgreSQL client sends, and build
 * the messages the proxy originates itself at start-up (SSLRequest,
 * ErrorResponse). The later messages it looks into are pgmsg.c's.
 *
 * Owns: nothing but its stack. Every function reads and writes caller-owned
 * buffers, so unit tests and fuzzers drive it with plain byte arrays.
 * Must never: allocate, do I/O, log, read past the bytes it was handed, or
 * use a length taken from the wire before checking it against what is there.
 * All reads go through struct cursor (cursor.h); nothing else indexes the input.
 *
 * Decisions are final: once pg_parse_first returns anything but INCOMPLETE
 * for a prefix of the stream, more bytes never change the answer. That lets
 * the caller reject a bad packet as soon as it is recognisably bad (an
 * oversized length word is refused after 4 bytes, not after 10000).
 * Beyond the header: on INCOMPLETE, out->len is the length word once it has
 * arrived and passed the bounds check (what the caller is waiting for), else
 * 0; on INVALID it is 0.
 */
#include "cursor.h"
#include "pgproto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PG_PROTO_MAJOR(p) ((uint32_t)(p) >> 16)
#define PG_PROTO_MINOR(p) ((uint32_t)(p)&0xffffu)
#define PG_REQUEST_MAJOR 1234u /* the "protocol" of SSLRequest and friends */

/* Offset of the first parameter name in a StartupMessage. */
#define PG_STARTUP_PARAMS 8u

/* ---- the first packet --------------------------------------------------- */

__attribute__((format(printf, 4, 5))) static enum pg_first_kind
reject(struct pg_first *out, char *err, size_t errlen, const char *fmt, ...)
{
    memset(&out->startup, 0, sizeof(out->startup));
    out->kind = PG_FIRST_INVALID;
    out->len = 0;
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return PG_FIRST_INVALID;
}

/* Not enough bytes yet. out->len keeps the length word when it is known, so
 * the caller can tell how much it is waiting for. */
static enum pg_first_kind need_more(struct pg_first *out)
{
    memset(&out->startup, 0, sizeof(out->startup));
    out->kind = PG_FIRST_INCOMPLETE;
    return PG_FIRST_INCOMPLETE;
}

static enum pg_first_kind accept_kind(struct pg_first *out, enum pg_first_kind kind)
{
    if (kind != PG_FIRST_STARTUP)
        memset(&out->startup, 0, sizeof(out->startup));
    out->kind = kind;
    return kind;
}

/*
 * Walk the StartupMessage parameter list. c covers the received part of the
 * packet (c->end <= pktlen); pktlen is the length word. Errors that the
 * length word already proves (a terminator that is not the last byte, a
 * string running into the end of the packet) are reported even before the
 * whole packet has arrived.
 */
static enum pg_first_kind parse_params(struct cursor *c, size_t pktlen, struct pg_first *out,
                                       char *err, size_t errlen)
{
    struct pg_startup_info *si = &out->startup;
    bool whole = c->end == pktlen;

    for (;;) {
        size_t nlen, vlen;
        char name[PG_LOGVAL_MAX];

        if (c->pos == pktlen)
            return reject(out, err, errlen, "startup packet parameter list is not terminated");
        if (!cur_strlen(c, &nlen)) {
            if (!whole)
                return need_more(out);
            return reject(out, err, errlen,
                          "startup packet parameter name at offset %zu is not terminated", c->pos);
        }
        if (nlen == 0) {
            /* The terminator. PostgreSQL insists it is the last byte. */
            size_t after = pktlen - c->pos - 1;
            if (after != 0)
                return reject(
                    out, err, errlen,
                    "startup packet has data after the parameter list terminator (%zu bytes)",
                    after);
            /* The terminator is the packet's last byte and it has arrived,
             * so the whole packet is here. */
            return accept_kind(out, PG_FIRST_STARTUP);
        }

        cur_copy_sanitised(c, nlen, name, sizeof(name));
        char *dst = NULL;
        if (cur_equals(c, nlen, "user"))
            dst = si->user;
        else if (cur_equals(c, nlen, "database"))
            dst = si->database;
        else if (cur_equals(c, nlen, "application_name"))
            dst = si->application_name;
        /* Everything else, "_pq_." protocol options included, is the
         * server's business: it answers with NegotiateProtocolVersion. */

        if (!cur_skip(c, nlen + 1))
            return reject(out, err, errlen, "internal error: cursor out of step");
        if (c->pos == pktlen)
            return reject(out, err, errlen, "startup packet parameter \"%s\" has no value", name);
        if (!cur_strlen(c, &vlen)) {
            if (!whole)
                return need_more(out);
            return reject(out, err, errlen,
                          "startup packet value of parameter \"%s\" is not terminated", name);
        }
        /* As in PostgreSQL, a repeated parameter overrides the earlier one. */
        if (dst != NULL)
            cur_copy_sanitised(c, vlen, dst, PG_LOGVAL_MAX);
        si->nparams++;
        if (!cur_skip(c, vlen + 1))
            return reject(out, err, errlen, "internal error: cursor out of step");
    }
}

enum pg_first_kind pg_parse_first(const uint8_t *buf, size_t len, struct pg_first *out, char *err,
                                  size_t errlen)
{
    struct pg_first scratch;
    if (out == NULL)
        out = &scratch;
    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (buf == NULL)
        len = 0;

    struct cursor c = {.buf = buf, .end = len, .pos = 0};
    uint8_t first;
    if (!cur_u8(&c, &first))
        return need_more(out);
    /* PG17 direct TLS: the client starts a handshake with no SSLRequest. No
     * valid length word starts with 0x16 (that would be > 350 MB). */
    if (first == PG_TLS_HANDSHAKE_BYTE)
        return accept_kind(out, PG_FIRST_DIRECT_TLS);

    c.pos = 0; /* that byte is also the top of the length word */
    uint32_t plen;
    if (!cur_be32(&c, &plen))
        return need_more(out);
    if (plen < PG_STARTUP_MIN || plen > PG_STARTUP_MAX)
        return reject(out, err, errlen,
                      "invalid length of startup packet: %" PRIu32 " (must be %d to %d)", plen,
                      PG_STARTUP_MIN, PG_STARTUP_MAX);
    out->len = plen;

    uint32_t code;
    if (!cur_be32(&c, &code))
        return need_more(out);
    out->code = code;
    bool whole = len >= plen;

    switch (code) {
    case PG_SSLREQUEST_CODE:
    case PG_GSSENCREQUEST_CODE:
        if (plen != 8)
            return reject(out, err, errlen, "%s has length %" PRIu32 ", must be 8",
                          code == PG_SSLREQUEST_CODE ? "SSLRequest" : "GSSENCRequest", plen);
        return accept_kind(out, code == PG_SSLREQUEST_CODE ? PG_FIRST_SSLREQUEST
                                                           : PG_FIRST_GSSENCREQUEST);
    case PG_CANCELREQUEST_CODE:
        if (plen < PG_CANCEL_FIXED + PG_CANCEL_KEY_MIN ||
            plen > PG_CANCEL_FIXED + PG_CANCEL_KEY_MAX)
            return reject(out, err, errlen,
                          "CancelRequest has length %" PRIu32 ", must be %u to %u "
                          "(a %u to %u byte key)",
                          plen, PG_CANCEL_FIXED + PG_CANCEL_KEY_MIN,
                          PG_CANCEL_FIXED + PG_CANCEL_KEY_MAX, (unsigned)PG_CANCEL_KEY_MIN,
                          (unsigned)PG_CANCEL_KEY_MAX);
        return whole ? accept_kind(out, PG_FIRST_CANCEL) : need_more(out);
    case PG_PEERCANCEL_CODE:
        /* The lengths of peermsg.h: 70 bytes around a 16..268-byte CancelRequest;
         * the content is peermsg.c's to check. */
        if (plen < 70 + PG_CANCEL_FIXED + PG_CANCEL_KEY_MIN ||
            plen > 70 + PG_CANCEL_FIXED + PG_CANCEL_KEY_MAX)
            return reject(out, err, errlen, "PeerCancelRequest has length %" PRIu32, plen);
        return whole ? accept_kind(out, PG_FIRST_PEER_CANCEL) : need_more(out);
    default:
        break;
    }

    uint32_t major = PG_PROTO_MAJOR(code), minor = PG_PROTO_MINOR(code);
    if (major == PG_REQUEST_MAJOR)
        return reject(out, err, errlen, "unsupported request code %" PRIu32 " (%u.%u)", code,
                      (unsigned)major, (unsigned)minor);
    if (major != 3)
        return reject(out, err, errlen,
                      "unsupported frontend protocol %u.%u: pg-tls-proxy speaks protocol 3",
                      (unsigned)major, (unsigned)minor);

    out->startup.proto = code;
    struct cursor params = {.buf = buf, .end = whole ? plen : len, .pos = PG_STARTUP_PARAMS};
    return parse_params(&params, plen, out, err, errlen);
}

/* ---- builders ----------------------------------------------------------- */

void pg_build_sslrequest(uint8_t out[8])
{
    put_be32(out, 8);
    put_be32(out + 4, PG_SSLREQUEST_CODE);
}

/* *total += 2 + n (field type byte, string, NUL) without wrapping. */
static bool add_field(size_t *total, size_t n)
{
    if (n > SIZE_MAX - 2 - *total)
        return false;
    *total += 2 + n;
    return true;
}

static bool sqlstate_ok(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < 5; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z')))
            return false;
    }
    return s[5] == '\0';
}

size_t pg_build_error(uint8_t *out, size_t cap, const char *severity, const char *sqlstate,
                      const char *message, const char *hint)
{
    if (out == NULL || severity == NULL || message == NULL || !sqlstate_ok(sqlstate))
        return 0;

    size_t slen = strlen(severity), mlen = strlen(message);
    size_t hlen = hint != NULL ? strlen(hint) : 0;
    size_t total = 1 + 4; /* 'E' + length word */
    /* S and V both carry the severity; then C, M and the optional H. */
    const size_t lens[] = {slen, slen, 5, mlen, hlen};
    bool ok = true;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
        if (i < 4 || hlen > 0)
            ok = ok && add_field(&total, lens[i]);
    ok = ok && total < SIZE_MAX;
    if (!ok)
        return 0;
    total += 1; /* the NUL that ends the field list */
    if (total > cap || total - 1 > INT32_MAX)
        return 0;

    struct writer w = {.buf = out, .cap = cap, .pos = 0, .overflow = false};
    uint8_t lenword[4];
    put_be32(lenword, (uint32_t)(total - 1)); /* counts itself, not the 'E' */
    w_u8(&w, 'E');
    w_bytes(&w, lenword, sizeof(lenword));
    w_field(&w, 'S', severity, slen);
    w_field(&w, 'V', severity, slen); /* non-localised severity (protocol 3, PG 9.6+) */
    w_field(&w, 'C', sqlstate, 5);
    w_field(&w, 'M', message, mlen);
    if (hlen > 0)
        w_field(&w, 'H', hint, hlen);
    w_u8(&w, 0);
    if (w.overflow || w.pos != total)
        return 0;
    return total;
}

int pg_startup_param(const uint8_t *pkt, size_t len, const char *name, char *out, size_t cap)
{
    int found = -1;
    if (pkt == NULL || len < 9 || cap == 0)
        return -1;
    size_t pktlen = (size_t)pkt[0] << 24 | (size_t)pkt[1] << 16 | (size_t)pkt[2] << 8 | pkt[3];
    if (pktlen > len || pktlen < 9)
        return -1;
    size_t pos = 8;
    while (pos < pktlen && pkt[pos] != '\0') {
        const uint8_t *n = pkt + pos;
        const uint8_t *nend = memchr(n, '\0', pktlen - pos);
        if (nend == NULL || (size_t)(nend - pkt) + 1 >= pktlen)
            return -1;
        const uint8_t *v = nend + 1;
        const uint8_t *vend = memchr(v, '\0', pktlen - (size_t)(v - pkt));
        if (vend == NULL)
            return -1;
        size_t vlen = (size_t)(vend - v);
        /* As PostgreSQL does, a repeated parameter overrides the earlier one. */
        if (strcmp((const char *)n, name) == 0) {
            if (vlen >= cap)
                return -1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            found = 0;
        }
        pos = (size_t)(vend - pkt) + 1;
    }
    return found;
}
