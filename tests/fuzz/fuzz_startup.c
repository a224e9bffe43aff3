/*
 * fuzz_startup.c - libFuzzer target for pg_parse_first.
 *
 * Feeds the input as the first bytes a client sends and abort()s when an
 * invariant the proxy relies on breaks: the kind is in range, a complete
 * packet fits inside what was received and inside the start-up bounds,
 * logged strings are NUL-terminated and sanitised, err never overflows, and
 * decisions are final (a shorter prefix that already decided agrees with the
 * full input; every proper prefix of a complete packet is INCOMPLETE).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERRLEN 40 /* small on purpose: most reasons get truncated */
#define CANARY 16

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool complete_kind(enum pg_first_kind k)
{
    return k == PG_FIRST_SSLREQUEST || k == PG_FIRST_GSSENCREQUEST || k == PG_FIRST_CANCEL ||
           k == PG_FIRST_PEER_CANCEL || k == PG_FIRST_STARTUP;
}

static void check_logval(const char *s)
{
    const char *nul = memchr(s, 0, PG_LOGVAL_MAX);
    require(nul != NULL);
    for (const char *p = s; p < nul; p++)
        require(*p >= 0x20 && *p <= 0x7e && *p != '"' && *p != '\\');
}

static bool same_result(const struct pg_first *a, const struct pg_first *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == PG_FIRST_INVALID || a->kind == PG_FIRST_INCOMPLETE)
        return true;
    return a->len == b->len && a->code == b->code &&
           memcmp(&a->startup, &b->startup, sizeof(a->startup)) == 0;
}

/* Parse data[0..n) with a canaried err buffer and check what holds for any
 * input. */
static enum pg_first_kind parse_checked(const uint8_t *data, size_t n, struct pg_first *out)
{
    char err[ERRLEN + CANARY];
    memset(err, 0xa5, sizeof(err));
    enum pg_first_kind k = pg_parse_first(data, n, out, err, ERRLEN);

    require(k >= PG_FIRST_INCOMPLETE && k <= PG_FIRST_INVALID);
    require(out->kind == k);
    for (size_t i = ERRLEN; i < sizeof(err); i++)
        require((uint8_t)err[i] == 0xa5);
    require(memchr(err, 0, ERRLEN) != NULL);
    require((k == PG_FIRST_INVALID) == (err[0] != '\0'));

    check_logval(out->startup.user);
    check_logval(out->startup.database);
    check_logval(out->startup.application_name);
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pg_first out;
    enum pg_first_kind k = parse_checked(data, size, &out);

    if (complete_kind(k)) {
        require(out.len >= PG_STARTUP_MIN && out.len <= size && out.len <= PG_STARTUP_MAX);
        uint32_t word = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
                        (uint32_t)data[3];
        require(word == out.len);
    }
    switch (k) {
    case PG_FIRST_SSLREQUEST:
        require(out.len == 8 && out.code == PG_SSLREQUEST_CODE);
        break;
    case PG_FIRST_GSSENCREQUEST:
        require(out.len == 8 && out.code == PG_GSSENCREQUEST_CODE);
        break;
    case PG_FIRST_CANCEL:
        require(out.len >= 16 && out.len <= 12 + 256 && out.code == PG_CANCELREQUEST_CODE);
        break;
    case PG_FIRST_PEER_CANCEL: /* its content is peermsg.c's (fuzz_peermsg) */
        require(out.len >= 70 + 16 && out.len <= 70 + 12 + 256 && out.code == PG_PEERCANCEL_CODE);
        break;
    case PG_FIRST_STARTUP:
        require(out.code >> 16 == 3 && out.startup.proto == out.code);
        require(data[out.len - 1] == 0); /* the terminator is the last byte */
        /* Each pair takes at least 3 bytes ("n\0\0"), plus header and terminator. */
        require((size_t)out.startup.nparams * 3 + 9 <= out.len);
        break;
    case PG_FIRST_DIRECT_TLS:
        require(size >= 1 && data[0] == PG_TLS_HANDSHAKE_BYTE && out.len == 0);
        break;
    case PG_FIRST_INCOMPLETE:
        require(size < 8 || out.len > size);
        break;
    case PG_FIRST_INVALID:
        require(size >= 4);
        break;
    }
    if (k != PG_FIRST_STARTUP)
        require(out.startup.nparams == 0 && out.startup.user[0] == '\0');

    /* err and out are optional and change nothing. */
    require(pg_parse_first(data, size, NULL, NULL, 0) == k);

    /* Decisions are final: a shorter prefix that decided agrees with us. */
    if (size > 0) {
        struct pg_first shorter;
        if (parse_checked(data, size - 1, &shorter) != PG_FIRST_INCOMPLETE)
            require(same_result(&shorter, &out));
    }
    if (complete_kind(k)) {
        struct pg_first p;
        require(parse_checked(data, out.len - 1, &p) == PG_FIRST_INCOMPLETE);
        require(parse_checked(data, out.len, &p) == k && same_result(&p, &out));
    }
    return 0;
}
