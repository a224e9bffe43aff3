/*
 * pgproto.c - classify the first packet a PostgreSQL client sends, build
 * the messages the proxy originates itself (SSLRequest, ErrorResponse,
 * CancelRequest), and frame and read the few later messages it must look
 * into (BackendKeyData, Authentication, SASLInitialResponse).
 *
 * Owns: nothing but its stack. Every function reads and writes caller-owned
 * buffers, so unit tests and fuzzers drive it with plain byte arrays.
 * Must never: allocate, do I/O, log, read past the bytes it was handed, or
 * use a length taken from the wire before checking it against what is there.
 * All reads go through struct cursor below; nothing else indexes the input.
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

/* CancelRequest: length word, code, backend pid, secret key. Protocol 3.0 keys
 * are 4 bytes; 3.2 (PostgreSQL 18) allows 4..256 (PG_CANCEL_KEY_MIN/MAX in
 * pgproto.h). */
#define PG_CANCEL_FIXED 12u

/* Offset of the first parameter name in a StartupMessage. */
#define PG_STARTUP_PARAMS 8u

/* ---- cursor (cursor.h): the only code that touches input bytes ---------- */

/* Copy up to n bytes at pos into dst for logging: printable ASCII except '"'
 * and '\\' (so the value can sit inside a quoted key=value log field), every
 * other byte becomes '?'; truncated to dstsize - 1; always NUL-terminated.
 * dstsize must be at least 1. */
static void cur_copy_sanitised(const struct cursor *c, size_t n, char *dst, size_t dstsize)
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

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void pg_build_sslrequest(uint8_t out[8])
{
    put_be32(out, 8);
    put_be32(out + 4, PG_SSLREQUEST_CODE);
}

/* A bounded writer; the caller has already checked the total fits, the
 * checks here are the second line of defence. */
struct writer {
    uint8_t *buf;
    size_t cap;
    size_t pos;
    bool overflow;
};

static void w_bytes(struct writer *w, const void *p, size_t n)
{
    if (w->overflow || w->cap - w->pos < n) {
        w->overflow = true;
        return;
    }
    memcpy(&w->buf[w->pos], p, n);
    w->pos += n;
}

static void w_u8(struct writer *w, uint8_t b)
{
    w_bytes(w, &b, 1);
}

static void w_field(struct writer *w, char type, const char *s, size_t n)
{
    w_u8(w, (uint8_t)type);
    w_bytes(w, s, n);
    w_u8(w, 0);
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

/* ---- messages after the StartupMessage ---------------------------------- */

/*
 * Contracts shared by the readers below: msg/pkt is exactly one message as
 * framed by pg_msg_header (a short buffer or trailing bytes make it
 * malformed), output parameters are written only on success (except the
 * documented *stripped and the name buffer, which is emptied first), and no
 * function writes to its input.
 */

/* The smallest length word: it counts only itself (an empty body). */
#define PG_MSG_LENWORD_MIN 4u
/* 'R' header + int32 auth code. */
#define PG_AUTH_FIXED (PG_MSG_HDR + 4u)
/* SASLInitialResponse's "no initial response" length. */
#define PG_SASL_NO_RESPONSE 0xffffffffu

static const char plus_suffix[] = "-PLUS";
#define PG_PLUS_SUFFIX_LEN (sizeof(plus_suffix) - 1)

/*
 * Open a whole message of the given type: msg[0..len) must be exactly one
 * message, i.e. the type matches and the length word equals len - 1. Leaves
 * *c just after the header, covering the body. Every parser below starts
 * here, so a truncated message or trailing bytes are refused in one place.
 */
static bool open_msg(const uint8_t *msg, size_t len, uint8_t want_type, struct cursor *c)
{
    if (msg == NULL)
        return false;
    *c = (struct cursor){.buf = msg, .end = len, .pos = 0};
    uint8_t type;
    uint32_t word;
    if (!cur_u8(c, &type) || !cur_be32(c, &word))
        return false;
    return type == want_type && word >= PG_MSG_LENWORD_MIN && word == len - 1;
}

int pg_msg_header(const uint8_t *buf, size_t len, size_t max_total, uint8_t *type, size_t *total)
{
    if (buf == NULL)
        len = 0;
    struct cursor c = {.buf = buf, .end = len, .pos = 0};
    uint8_t t;
    uint32_t word;
    if (!cur_u8(&c, &t) || !cur_be32(&c, &word))
        return 0;
    /* 1 + word <= max_total, written so that neither side can wrap. */
    if (word < PG_MSG_LENWORD_MIN || max_total == 0 || word > max_total - 1)
        return -1;
    if (type != NULL)
        *type = t;
    if (total != NULL)
        *total = (size_t)word + 1;
    return 1;
}

/* Key length from a CancelRequest/BackendKeyData size, if in bounds. */
static bool key_len_ok(size_t keylen)
{
    return keylen >= PG_CANCEL_KEY_MIN && keylen <= PG_CANCEL_KEY_MAX;
}

int pg_parse_backend_key(const uint8_t *msg, size_t len, uint32_t *pid, uint8_t *key,
                         size_t *keylen)
{
    struct cursor c;
    if (pid == NULL || key == NULL || keylen == NULL || !open_msg(msg, len, 'K', &c))
        return -1;
    uint32_t p;
    if (!cur_be32(&c, &p))
        return -1;
    size_t n = cur_left(&c);
    if (!key_len_ok(n) || !cur_copy(&c, key, n))
        return -1;
    *pid = p;
    *keylen = n;
    return 0;
}

int pg_parse_cancel(const uint8_t *pkt, size_t len, uint32_t *pid, uint8_t *key, size_t *keylen)
{
    if (pkt == NULL || pid == NULL || key == NULL || keylen == NULL)
        return -1;
    struct cursor c = {.buf = pkt, .end = len, .pos = 0};
    uint32_t word, code, p;
    if (!cur_be32(&c, &word) || !cur_be32(&c, &code) || !cur_be32(&c, &p))
        return -1;
    if (word != len || code != PG_CANCELREQUEST_CODE)
        return -1;
    size_t n = cur_left(&c);
    if (!key_len_ok(n) || !cur_copy(&c, key, n))
        return -1;
    *pid = p;
    *keylen = n;
    return 0;
}

size_t pg_build_cancel(uint8_t *out, size_t cap, uint32_t pid, const uint8_t *key, size_t keylen)
{
    if (out == NULL || key == NULL || !key_len_ok(keylen))
        return 0;
    size_t total = PG_CANCEL_FIXED + keylen; /* at most 268: cannot wrap */
    if (total > cap)
        return 0;

    struct writer w = {.buf = out, .cap = cap, .pos = 0, .overflow = false};
    uint8_t words[PG_CANCEL_FIXED];
    put_be32(words, (uint32_t)total);
    put_be32(words + 4, PG_CANCELREQUEST_CODE);
    put_be32(words + 8, pid);
    w_bytes(&w, words, sizeof(words));
    w_bytes(&w, key, keylen);
    if (w.overflow || w.pos != total)
        return 0;
    return total;
}

/*
 * Codes whose body is fixed by the protocol, as total message sizes. Codes
 * not listed (GSSContinue 8, SASL 10, SASLContinue 11, SASLFinal 12, and any
 * future one) carry data of their own and only need the code word.
 */
static bool auth_size_ok(uint32_t code, size_t len)
{
    switch (code) {
    case 0: /* AuthenticationOk */
    case 2: /* KerberosV5 (obsolete, still well-formed) */
    case 3: /* CleartextPassword */
    case 6: /* SCMCredential (obsolete) */
    case 7: /* GSS */
    case 9: /* SSPI */
        return len == PG_AUTH_FIXED;
    case 5: /* MD5Password: 4-byte salt */
        return len == PG_AUTH_FIXED + 4;
    default:
        return true;
    }
}

int pg_auth_code(const uint8_t *msg, size_t len)
{
    struct cursor c;
    uint32_t code;
    if (!open_msg(msg, len, 'R', &c) || !cur_be32(&c, &code))
        return -1;
    /* The code is an int32 on the wire; a negative one is no valid request
     * and would collide with our -1. */
    if (code > INT32_MAX || !auth_size_ok(code, len))
        return -1;
    return (int)code;
}

int pg_parse_error(const uint8_t *msg, size_t len, struct pg_error_fields *out)
{
    struct cursor c;
    bool have_v = false;
    memset(out, 0, sizeof(*out));
    if (!open_msg(msg, len, 'E', &c))
        return -1;
    for (;;) {
        uint8_t code;
        size_t n;
        if (!cur_u8(&c, &code))
            return -1; /* no terminating NUL */
        if (code == 0)
            break;
        if (!cur_strlen(&c, &n))
            return -1;
        if (code == 'C') {
            if (n != 5)
                return -1;
            for (size_t i = 0; i < 5; i++) {
                uint8_t b = c.buf[c.pos + i];
                if (!((b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z')))
                    return -1;
                out->sqlstate[i] = (char)b;
            }
            out->sqlstate[5] = '\0';
        } else if (code == 'V' || (code == 'S' && !have_v)) {
            /* V is never localised (PostgreSQL 9.6+); S may be. */
            cur_copy_sanitised(&c, n, out->severity, sizeof(out->severity));
            have_v = have_v || code == 'V';
        } else if (code == 'M') {
            cur_copy_sanitised(&c, n, out->message, sizeof(out->message));
        }
        if (!cur_skip(&c, n + 1))
            return -1;
    }
    /* The terminator is the last byte, and a SQLSTATE was there. */
    return cur_left(&c) == 0 && out->sqlstate[0] != '\0' ? 0 : -1;
}

/* Do the n bytes at pos end with the suffix (sfxlen bytes)? */
static bool cur_ends_with(const struct cursor *c, size_t n, const char *sfx, size_t sfxlen)
{
    return n <= c->end - c->pos && n >= sfxlen &&
           memcmp(&c->buf[c->pos + (n - sfxlen)], sfx, sfxlen) == 0;
}

/* Append the n bytes at pos to w (the writer checks its own room). */
static bool cur_write(const struct cursor *c, size_t n, struct writer *w)
{
    if (c->end - c->pos < n)
        return false;
    w_bytes(w, &c->buf[c->pos], n);
    return true;
}

/*
 * Walk an AuthenticationSASL mechanism list. With w == NULL only validates
 * and counts: *kept_bytes is the size of the kept names with their NULs.
 * With a writer, appends each kept name and its NUL. Returns false if the
 * list is malformed: a name without a NUL inside the message, or the empty
 * name that ends the list anywhere but in the last byte.
 */
static bool walk_sasl_list(struct cursor c, struct writer *w, unsigned *kept, unsigned *dropped,
                           size_t *kept_bytes)
{
    *kept = 0;
    *dropped = 0;
    *kept_bytes = 0;
    for (;;) {
        size_t n;
        if (!cur_strlen(&c, &n))
            return false;
        if (n == 0)
            return cur_left(&c) == 1;
        /* Channel binding cannot survive a proxy that terminates TLS: the
         * client would bind to our certificate, the server to its own. */
        if (cur_ends_with(&c, n, plus_suffix, PG_PLUS_SUFFIX_LEN)) {
            (*dropped)++;
        } else {
            (*kept)++;
            *kept_bytes += n + 1; /* bounded by the message size */
            if (w != NULL && !cur_write(&c, n + 1, w))
                return false;
        }
        if (!cur_skip(&c, n + 1))
            return false;
    }
}

/*
 * *stripped (may be NULL) is the number of "-PLUS" names whenever msg is a
 * well-formed AuthenticationSASL, also when 0 is returned because nothing
 * would be left or out is too small; 0 for a malformed message. So a caller
 * can tell "the server offers channel binding only" from garbage.
 */
size_t pg_sasl_strip_plus(const uint8_t *msg, size_t len, uint8_t *out, size_t cap,
                          unsigned *stripped)
{
    unsigned scratch;
    if (stripped == NULL)
        stripped = &scratch;
    *stripped = 0;

    struct cursor c;
    uint32_t code;
    if (!open_msg(msg, len, 'R', &c) || !cur_be32(&c, &code) || code != PG_AUTH_SASL)
        return 0;

    /* Pass 1: validate and size, so nothing is written unless it all fits. */
    unsigned kept, dropped;
    size_t names;
    if (!walk_sasl_list(c, NULL, &kept, &dropped, &names))
        return 0;
    *stripped = dropped;
    if (kept == 0 || out == NULL)
        return 0;
    size_t total = PG_AUTH_FIXED + names + 1; /* <= len: the output only shrinks */
    if (total > cap)
        return 0;

    /* Pass 2: write. */
    struct writer w = {.buf = out, .cap = cap, .pos = 0, .overflow = false};
    uint8_t hdr[PG_AUTH_FIXED];
    hdr[0] = 'R';
    put_be32(hdr + 1, (uint32_t)(total - 1));
    put_be32(hdr + 5, PG_AUTH_SASL);
    w_bytes(&w, hdr, sizeof(hdr));
    unsigned kept2, dropped2;
    size_t names2;
    if (!walk_sasl_list(c, &w, &kept2, &dropped2, &names2) || kept2 != kept)
        return 0;
    w_u8(&w, 0);
    if (w.overflow || w.pos != total)
        return 0;
    return total;
}

/*
 * name may be NULL (namecap 0) to validate only; otherwise it is emptied
 * first, so a failed call never leaves a stale name behind. An empty
 * mechanism name is malformed too.
 */
int pg_sasl_initial_mechanism(const uint8_t *msg, size_t len, char *name, size_t namecap)
{
    if (name != NULL && namecap > 0)
        name[0] = '\0';
    struct cursor c;
    if (!open_msg(msg, len, 'p', &c))
        return -1;
    size_t n;
    if (!cur_strlen(&c, &n) || n == 0)
        return -1;
    struct cursor mech = c;
    uint32_t rlen;
    if (!cur_skip(&c, n + 1) || !cur_be32(&c, &rlen))
        return -1;
    /* -1 means no initial response; any other negative value is invalid,
     * and a response must fill the message exactly. */
    if (rlen == PG_SASL_NO_RESPONSE) {
        if (cur_left(&c) != 0)
            return -1;
    } else if (rlen > INT32_MAX || cur_left(&c) != rlen) {
        return -1;
    }
    if (name != NULL && namecap > 0)
        cur_copy_sanitised(&mech, n, name, namecap);
    return 0;
}
