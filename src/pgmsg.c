/*
 * pgmsg.c - frame and read the few messages after the StartupMessage the
 * proxy must look into (BackendKeyData, Authentication, ErrorResponse,
 * SASLInitialResponse), rewrite AuthenticationSASL, and parse and build
 * CancelRequest.
 *
 * Owns: nothing but its stack; every function reads and writes caller-owned
 * buffers. Must never: allocate, do I/O, log, read past the bytes it was
 * handed, or use a length from the wire before checking it against what is
 * there. All reads go through struct cursor (cursor.h).
 */
#include "pgmsg.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cursor.h"
#include "pgproto.h"

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
