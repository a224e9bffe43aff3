/*
 * proxyproto.c - recognise the PROXY protocol header (HAProxy's spec,
 * versions 1 and 2) that a TCP load balancer puts before the client's first
 * byte, and take the client's address out of it.
 *
 * Owns: nothing but its stack. Reads a caller-owned buffer, fills a
 * caller-owned struct.
 * Must never: allocate, do I/O, log, read past the bytes it was handed, or
 * use a length taken from the wire before checking it against what is there.
 * All reads go through struct cursor below; nothing else indexes the input.
 *
 * Decisions are final, as in pgproto.c: 0 ("need more") is returned only
 * while the bytes so far can still begin a valid header, so once the answer
 * is -1 or a length, more bytes never change it. A client that speaks
 * PostgreSQL or TLS straight away (first byte 0x00 or 0x16) is refused on
 * its first byte, because a header starts with 'P' (v1) or 0x0D (v2).
 *
 * Exactness: v1 fields are checked as they arrive by scanners that accept
 * exactly the prefixes of valid fields (IPv4 and IPv6 text as glibc's
 * inet_pton reads it, ports 0..65535 without leading zeros), so a bad byte
 * is refused when it arrives. One simplification: a v1 line is refused for
 * length only when byte 107 arrives without its CRLF, not when the missing
 * fields could no longer fit (at most a few bytes earlier).
 */
#include "cursor.h"
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

/* ---- cursor (cursor.h): the only code that touches input bytes ---------- */

/* ---- results -------------------------------------------------------------- */

/* How a piece of the header looks so far: complete and valid, a valid prefix
 * that needs more bytes, or impossible whatever follows. */
enum step { STEP_OK, STEP_MORE, STEP_BAD };

__attribute__((format(printf, 4, 5))) static int fail(struct proxyproto *out, char *err,
                                                      size_t errlen, const char *fmt, ...)
{
    memset(out, 0, sizeof(*out));
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void clear_err(char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
}

static int need_more(struct proxyproto *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    clear_err(err, errlen);
    return 0;
}

/* Store an address (4 or 16 bytes) and a port (host order) as a sockaddr. */
static void set_addr(struct sockaddr_storage *ss, int family, const uint8_t *addr, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in sin;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        memcpy(&sin.sin_addr, addr, 4);
        memcpy(ss, &sin, sizeof(sin));
    } else {
        struct sockaddr_in6 sin6;
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        memcpy(&sin6.sin6_addr, addr, 16);
        memcpy(ss, &sin6, sizeof(sin6));
    }
}

/* ---- v1 field scanners ---------------------------------------------------- */

/*
 * Each scanner reads the whole of its window c (one field, without the
 * separator). complete: the field ends here, so it must be a whole valid
 * value, stored in *out. Otherwise the field may go on: true means the bytes
 * are a prefix of some valid value, and nothing is stored.
 */

/* Dotted quad as inet_pton(AF_INET) takes it: four decimal octets 0..255,
 * no leading zeros ("01" is refused, "0" is fine). */
static bool scan_ipv4(struct cursor c, bool complete, uint8_t out[4])
{
    uint8_t oct[4] = {0};
    size_t n = 0;       /* octets begun */
    bool digit = false; /* the current octet has a digit */
    unsigned val = 0;
    uint8_t ch;

    while (cur_u8(&c, &ch)) {
        if (ch >= '0' && ch <= '9') {
            if (!digit) {
                n++;
                digit = true;
                val = 0;
            } else if (val == 0) {
                return false; /* leading zero */
            }
            val = val * 10 + (unsigned)(ch - '0');
            if (val > 255)
                return false;
            oct[n - 1] = (uint8_t)val;
        } else if (ch == '.' && digit && n < 4) {
            digit = false;
        } else {
            return false;
        }
    }
    if (!complete)
        return true;
    if (n != 4 || !digit)
        return false;
    memcpy(out, oct, sizeof(oct));
    return true;
}

/*
 * IPv6 text as inet_pton(AF_INET6) takes it: eight groups of 1..4 hex
 * digits; one "::" standing for at least one zero group; the last 32 bits
 * may be a dotted quad, which then ends the address. In prefix mode the test
 * is whether the groups seen, plus the fewest the text so far still demands,
 * fit in eight.
 */
static bool scan_ipv6(struct cursor c, bool complete, uint8_t out[16])
{
    uint16_t grp[8] = {0};
    size_t ngrp = 0;         /* groups stored in grp (a dotted quad counts 2) */
    bool gap = false;        /* "::" seen */
    size_t gap_at = 0;       /* groups before the "::" */
    bool lone_colon = false; /* last byte was a ':' that ended a group */
    unsigned digits = 0, val = 0;
    struct cursor tok = c; /* from the start of the current group to the end */
    uint8_t ch;

    /* A leading ':' is only allowed as the first half of "::". */
    if (cur_peek(&c, &ch) && ch == ':') {
        c.pos++;
        if (!cur_u8(&c, &ch))
            return !complete;
        if (ch != ':')
            return false;
        gap = true;
        tok = c;
    }

    while (cur_u8(&c, &ch)) {
        int h = OPENSSL_hexchar2int(ch);
        if (h >= 0) {
            if (digits == 4)
                return false;
            val = val << 4 | (unsigned)h;
            digits++;
            lone_colon = false;
        } else if (ch == ':') {
            if (digits == 0) {
                /* Only reachable right after another ':': this makes "::". */
                if (gap)
                    return false;
                gap = true;
                gap_at = ngrp;
                lone_colon = false;
            } else {
                if (ngrp == 8)
                    return false;
                grp[ngrp++] = (uint16_t)val;
                digits = 0;
                val = 0;
                lone_colon = true;
            }
            tok = c;
        } else if (ch == '.') {
            /* The current group was the first octet of a dotted quad, which
             * must fill the last two groups: nothing can follow it. */
            if (gap ? ngrp + 2 > 7 : ngrp + 2 != 8)
                return false;
            uint8_t quad[4];
            if (!scan_ipv4(tok, complete, quad))
                return false;
            if (!complete)
                return true;
            grp[ngrp++] = (uint16_t)(quad[0] << 8 | quad[1]);
            grp[ngrp++] = (uint16_t)(quad[2] << 8 | quad[3]);
            digits = 0;
            lone_colon = false;
            break;
        } else {
            return false;
        }
    }

    if (!complete) {
        /* A group in progress, or a ':' that needs a group (or a second ':',
         * which stands for at least one group) after it. */
        size_t demanded = (digits > 0 || lone_colon) ? 1 : 0;
        return ngrp + demanded + (gap ? 1 : 0) <= 8;
    }
    if (lone_colon)
        return false;
    if (digits > 0) {
        if (ngrp == 8)
            return false;
        grp[ngrp++] = (uint16_t)val;
    }
    if (gap ? ngrp > 7 : ngrp != 8)
        return false;

    /* Groups after the "::" go to the end; the gap between is zeros. */
    uint16_t full[8] = {0};
    size_t tail = ngrp - gap_at;
    for (size_t i = 0; i < ngrp; i++)
        full[i < gap_at || !gap ? i : 8 - tail + (i - gap_at)] = grp[i];
    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = (uint8_t)(full[i] >> 8);
        out[2 * i + 1] = (uint8_t)full[i];
    }
    return true;
}

/* Decimal 0..65535: digits only (no sign, no space), no leading zeros. */
static bool scan_port(struct cursor c, bool complete, uint16_t *out)
{
    unsigned val = 0;
    size_t ndigits = 0;
    uint8_t ch;

    while (cur_u8(&c, &ch)) {
        if (ch < '0' || ch > '9')
            return false;
        if (ndigits > 0 && val == 0)
            return false; /* leading zero */
        val = val * 10 + (unsigned)(ch - '0');
        if (val > 65535)
            return false;
        ndigits++;
    }
    if (!complete)
        return true;
    if (ndigits == 0)
        return false;
    *out = (uint16_t)val;
    return true;
}

/* ---- v1 ------------------------------------------------------------------- */

/* Compare the bytes at c's position with lit: the whole literal is there
 * (consumed), the bytes there so far agree with it, or they differ. */
static enum step match_lit(struct cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    size_t have = cur_left(c) < n ? cur_left(c) : n;
    if (memcmp(&c->buf[c->pos], lit, have) != 0)
        return STEP_BAD;
    if (have < n)
        return STEP_MORE;
    c->pos += n;
    return STEP_OK;
}

/* The next field: the bytes up to a space (consumed, *space set) or to the
 * end of c. */
static struct cursor next_field(struct cursor *c, bool *space)
{
    struct cursor f = *c;
    uint8_t ch;
    while (cur_peek(c, &ch) && ch != ' ')
        c->pos++;
    f.end = c->pos;
    *space = cur_u8(c, &ch);
    return f;
}

static const char *const v1_field_names[4] = {"source address", "destination address",
                                              "source port", "destination port"};

/*
 * The four fields of a TCP4/TCP6 line. complete: c holds the whole line
 * (without CRLF); otherwise c holds what has arrived so far.
 */
static enum step v1_fields(struct cursor *c, bool complete, int family, struct proxyproto *out,
                           const char **why)
{
    uint8_t addr[2][16];
    uint16_t port[2];

    for (int i = 0; i < 4; i++) {
        bool space;
        struct cursor f = next_field(c, &space);
        bool whole = space || complete; /* this field has ended */
        *why = v1_field_names[i];
        if (whole && cur_left(&f) == 0)
            return STEP_BAD; /* two spaces, or one at the end */
        if (i == 3 && space)
            return STEP_BAD; /* a fifth field, or a space before the CRLF */
        bool ok;
        if (i < 2)
            ok = family == AF_INET ? scan_ipv4(f, whole, addr[i]) : scan_ipv6(f, whole, addr[i]);
        else
            ok = scan_port(f, whole, &port[i - 2]);
        if (!ok)
            return STEP_BAD;
        if (!whole)
            return STEP_MORE;
        if (!space && i < 3) {
            *why = "line (too few fields)";
            return STEP_BAD;
        }
    }
    out->has_addr = 1;
    set_addr(&out->src, family, addr[0], port[0]);
    set_addr(&out->dst, family, addr[1], port[1]);
    return STEP_OK;
}

/* The line without its CRLF (complete) or the bytes so far (not). */
static enum step v1_line(struct cursor c, bool complete, struct proxyproto *out, const char **why)
{
    static const char *const protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};

    *why = NULL; /* NULL: not a PROXY header at all */
    enum step s = match_lit(&c, "PROXY ");
    if (s != STEP_OK)
        return s == STEP_MORE && !complete ? STEP_MORE : STEP_BAD;

    *why = "protocol (not TCP4, TCP6 or UNKNOWN)";
    size_t which = 3;
    bool maybe = false;
    for (size_t i = 0; i < 3 && which == 3; i++) {
        s = match_lit(&c, protos[i]);
        if (s == STEP_OK)
            which = i;
        maybe = maybe || s == STEP_MORE;
    }
    if (which == 3)
        return maybe && !complete ? STEP_MORE : STEP_BAD;

    out->version = 1;
    if (which == 2) {
        /* The spec: the receiver ignores whatever follows UNKNOWN up to the
         * CRLF, and uses the connection's own addresses. */
        return complete ? STEP_OK : STEP_MORE;
    }
    s = v1_fields(&c, complete, which == 0 ? AF_INET : AF_INET6, out, why);
    if (s == STEP_OK && !complete)
        return STEP_MORE; /* unreachable: an incomplete line cannot end well */
    return s;
}

static int parse_v1(struct cursor c, struct proxyproto *out, char *err, size_t errlen)
{
    /* The line is the bytes up to the first CRLF, which must end by byte 107. */
    struct cursor win = c;
    if (cur_left(&win) > PROXYPROTO_V1_MAX)
        win.end = win.pos + PROXYPROTO_V1_MAX;

    bool found = false, cr = false;
    struct cursor line = win;
    uint8_t ch;
    while (cur_u8(&win, &ch)) {
        if (cr && ch == '\n') {
            found = true;
            break;
        }
        cr = ch == '\r';
    }

    enum step s;
    const char *why;
    if (found) {
        line.end = win.pos - 2;
        s = v1_line(line, true, out, &why);
    } else if (cr) {
        /* The last byte so far is a CR: only a LF can follow, which would
         * make everything before it the whole line. */
        line.end = win.pos - 1;
        s = v1_line(line, true, out, &why);
        if (s == STEP_OK)
            s = STEP_MORE;
    } else {
        s = v1_line(line, false, out, &why);
    }

    if (s == STEP_BAD) {
        if (why == NULL)
            return fail(out, err, errlen, "not a PROXY protocol header");
        return fail(out, err, errlen, "v1 bad %s", why);
    }
    if (s == STEP_MORE) {
        if (cur_left(&c) >= PROXYPROTO_V1_MAX)
            return fail(out, err, errlen, "v1 line longer than %d bytes", PROXYPROTO_V1_MAX);
        return need_more(out, err, errlen);
    }
    clear_err(err, errlen);
    return (int)win.pos;
}

/* ---- v2 ------------------------------------------------------------------- */

#define V2_SIG_LEN 12
#define V2_HDR_LEN 16
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_AF_UNSPEC 0x0
#define V2_AF_INET 0x1
#define V2_AF_INET6 0x2
#define V2_AF_UNIX 0x3
#define V2_TRANSPORT_STREAM 0x1
#define V2_TRANSPORT_MAX 0x2

static const uint8_t v2_sig[V2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                           0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Address block size the family needs (src and dst, addresses then ports):
 * INET 4+4+2+2, INET6 16+16+2+2, UNIX two 108-byte paths. */
static size_t v2_block_size(unsigned family)
{
    switch (family) {
    case V2_AF_INET:
        return 12;
    case V2_AF_INET6:
        return 36;
    case V2_AF_UNIX:
        return 216;
    default:
        return 0;
    }
}

static const char *v2_family_name(unsigned family)
{
    switch (family) {
    case V2_AF_INET:
        return "AF_INET";
    case V2_AF_INET6:
        return "AF_INET6";
    case V2_AF_UNIX:
        return "AF_UNIX";
    default:
        return "AF_UNSPEC";
    }
}

/*
 * What the PROXY command carries:
 * - INET/INET6 over STREAM: the client's TCP addresses (has_addr = 1).
 * - UNSPEC, UNIX, or INET/INET6 over UNSPEC or DGRAM: nothing a TCP peer
 *   address can be made of. The spec lets a receiver accept such a header
 *   and use the connection's own addresses; we do (has_addr = 0), so a
 *   balancer relaying something odd still works, just without the client's
 *   address. The address block must still be as long as the family says.
 * - Family above 3 or transport above 2: the spec says reject.
 * LOCAL (health checks and the balancer's own connections) carries no
 * addresses; the spec says to ignore the family byte and the block.
 */
static int parse_v2(struct cursor c, struct proxyproto *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < V2_SIG_LEN; i++) {
        uint8_t b;
        if (!cur_u8(&c, &b))
            return need_more(out, err, errlen);
        if (b != v2_sig[i])
            return fail(out, err, errlen, "not a PROXY protocol header");
    }

    uint8_t vc;
    if (!cur_u8(&c, &vc))
        return need_more(out, err, errlen);
    unsigned version = vc >> 4, cmd = vc & 0x0fu;
    if (version != 2)
        return fail(out, err, errlen, "v2 header with version %u (want 2)", version);
    if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY)
        return fail(out, err, errlen, "v2 command %u is neither LOCAL nor PROXY", cmd);

    uint8_t ft;
    if (!cur_u8(&c, &ft))
        return need_more(out, err, errlen);
    unsigned family = ft >> 4, transport = ft & 0x0fu;
    if (cmd == V2_CMD_PROXY && (family > V2_AF_UNIX || transport > V2_TRANSPORT_MAX))
        return fail(out, err, errlen, "v2 unknown family/transport byte 0x%02x", (unsigned)ft);

    uint16_t blen;
    if (!cur_be16(&c, &blen))
        return need_more(out, err, errlen);
    if (blen > PROXYPROTO_V2_MAX - V2_HDR_LEN)
        return fail(out, err, errlen, "v2 header longer than %d bytes (%u)", PROXYPROTO_V2_MAX,
                    (unsigned)(V2_HDR_LEN + blen));
    size_t need = cmd == V2_CMD_PROXY ? v2_block_size(family) : 0;
    if (blen < need)
        return fail(out, err, errlen, "v2 address block too short for %s (%u < %zu bytes)",
                    v2_family_name(family), (unsigned)blen, need);

    struct cursor block;
    if (!cur_sub(&c, blen, &block))
        return need_more(out, err, errlen);

    memset(out, 0, sizeof(*out));
    out->version = 2;
    if (cmd == V2_CMD_PROXY && transport == V2_TRANSPORT_STREAM &&
        (family == V2_AF_INET || family == V2_AF_INET6)) {
        int af = family == V2_AF_INET ? AF_INET : AF_INET6;
        size_t alen = family == V2_AF_INET ? 4 : 16;
        uint8_t src[16], dst[16];
        uint16_t sport, dport;
        /* Cannot fail: blen >= the block size was checked above. TLVs after
         * the block are skipped unread: nothing here needs them. */
        if (!cur_copy(&block, src, alen) || !cur_copy(&block, dst, alen) ||
            !cur_be16(&block, &sport) || !cur_be16(&block, &dport))
            return fail(out, err, errlen, "internal error: v2 cursor out of step");
        out->has_addr = 1;
        set_addr(&out->src, af, src, sport);
        set_addr(&out->dst, af, dst, dport);
    }
    clear_err(err, errlen);
    return (int)(V2_HDR_LEN + blen);
}

/* ---- entry ---------------------------------------------------------------- */

int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto *out, char *err,
                     size_t errlen)
{
    struct proxyproto scratch;
    if (out == NULL)
        out = &scratch;
    memset(out, 0, sizeof(*out));
    if (buf == NULL)
        len = 0;

    struct cursor c = {.buf = buf, .end = len, .pos = 0};
    uint8_t first;
    if (!cur_peek(&c, &first))
        return need_more(out, err, errlen);
    if (first == 'P')
        return parse_v1(c, out, err, errlen);
    if (first == v2_sig[0])
        return parse_v2(c, out, err, errlen);
    /* 0x00 starts a StartupMessage or SSLRequest, 0x16 a TLS ClientHello:
     * the client is talking to us directly, not through the balancer. */
    return fail(out, err, errlen, "not a PROXY protocol header");
}
