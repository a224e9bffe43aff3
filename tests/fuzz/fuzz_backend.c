/*
 * fuzz_backend.c - libFuzzer target for the readers of messages after the
 * StartupMessage: pg_msg_header framing, pg_parse_backend_key (with a
 * CancelRequest round trip), pg_auth_code, pg_parse_error,
 * pg_sasl_strip_plus and pg_sasl_initial_mechanism.
 *
 * The input is a byte stream as it would arrive on a connection. It is
 * framed message by message; each framed message (and the same bytes cut
 * one short, and with one byte of what follows) goes through every reader,
 * each compared with an independent reference written here in the plainest
 * way. Outputs go to heap buffers of exactly the size allowed so that ASan
 * sees any overrun. abort() on any disagreement or broken invariant.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TOTAL 4096 /* framing bound; small so the -1 path is reachable */
#define NAMES_MAX 512  /* no message here can hold more mechanism names */

static void require(bool ok)
{
    if (!ok)
        abort();
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Exactly one message of this type: header there, length word == len - 1. */
static bool ref_whole(const uint8_t *m, size_t len, uint8_t type)
{
    return len >= 5 && m[0] == type && be32(m + 1) == len - 1;
}

/* ---- BackendKeyData ------------------------------------------------------ */

static void check_backend_key(const uint8_t *m, size_t len)
{
    uint32_t pid = 0;
    size_t keylen = 0;
    uint8_t *key = malloc(PG_CANCEL_KEY_MAX);
    require(key != NULL);
    int r = pg_parse_backend_key(m, len, &pid, key, &keylen);

    bool want =
        ref_whole(m, len, 'K') && len >= 9 + PG_CANCEL_KEY_MIN && len <= 9 + PG_CANCEL_KEY_MAX;
    require(r == (want ? 0 : -1));
    if (r == 0) {
        require(pid == be32(m + 5));
        require(keylen == len - 9);
        require(memcmp(key, m + 9, keylen) == 0);

        /* Round trip through a CancelRequest, as the proxy does when a
         * client cancels. */
        size_t cap = 12 + keylen;
        uint8_t *pkt = malloc(cap);
        require(pkt != NULL);
        require(pg_build_cancel(pkt, cap - 1, pid, key, keylen) == 0);
        require(pg_build_cancel(pkt, cap, pid, key, keylen) == cap);
        struct pg_first first;
        require(pg_parse_first(pkt, cap, &first, NULL, 0) == PG_FIRST_CANCEL);
        require(first.len == cap);
        uint32_t pid2 = 0;
        size_t keylen2 = 0;
        uint8_t key2[PG_CANCEL_KEY_MAX];
        require(pg_parse_cancel(pkt, first.len, &pid2, key2, &keylen2) == 0);
        require(pid2 == pid && keylen2 == keylen && memcmp(key2, key, keylen) == 0);
        require(pg_parse_cancel(pkt, first.len - 1, &pid2, key2, &keylen2) == -1);
        free(pkt);
    }
    free(key);
}

/* The raw bytes as a CancelRequest too: same reference, other layout. */
static void check_cancel(const uint8_t *p, size_t len)
{
    uint32_t pid = 0;
    size_t keylen = 0;
    uint8_t key[PG_CANCEL_KEY_MAX];
    int r = pg_parse_cancel(p, len, &pid, key, &keylen);
    bool want = len >= 12 + PG_CANCEL_KEY_MIN && len <= 12 + PG_CANCEL_KEY_MAX && be32(p) == len &&
                be32(p + 4) == PG_CANCELREQUEST_CODE;
    require(r == (want ? 0 : -1));
    if (r == 0)
        require(pid == be32(p + 8) && keylen == len - 12 && memcmp(key, p + 12, keylen) == 0);
}

/* ---- Authentication ------------------------------------------------------ */

static void check_auth(const uint8_t *m, size_t len)
{
    int r = pg_auth_code(m, len);
    int want = -1;
    if (ref_whole(m, len, 'R') && len >= 9 && be32(m + 5) <= INT32_MAX) {
        uint32_t code = be32(m + 5);
        size_t body = len - 9;
        bool ok;
        if (code == 0 || code == 2 || code == 3 || code == 6 || code == 7 || code == 9)
            ok = body == 0;
        else if (code == 5)
            ok = body == 4;
        else
            ok = true;
        want = ok ? (int)code : -1;
    }
    require(r == want);
}

/* A reference AuthenticationSASL reader: the names (pointers into m) in
 * order. Returns the count, or -1 if m is not a well-formed one. */
static int ref_sasl_names(const uint8_t *m, size_t len, const uint8_t **names, size_t *lens)
{
    if (!ref_whole(m, len, 'R') || len < 10 || be32(m + 5) != PG_AUTH_SASL)
        return -1;
    size_t i = 9;
    int n = 0;
    for (;;) {
        size_t j = i;
        while (j < len && m[j] != 0)
            j++;
        if (j == len)
            return -1; /* no NUL */
        if (j == i)
            return i == len - 1 ? n : -1; /* the empty name must be the last byte */
        require(n < NAMES_MAX);
        names[n] = m + i;
        lens[n] = j - i;
        n++;
        i = j + 1;
    }
}

static bool ref_is_plus(const uint8_t *name, size_t n)
{
    return n >= 5 && memcmp(name + n - 5, "-PLUS", 5) == 0;
}

static void check_sasl_strip(const uint8_t *m, size_t len, size_t capsel)
{
    static const uint8_t *in_names[NAMES_MAX], *out_names[NAMES_MAX];
    static size_t in_lens[NAMES_MAX], out_lens[NAMES_MAX];

    int nin = ref_sasl_names(m, len, in_names, in_lens);
    unsigned want_stripped = 0;
    size_t want_len = 0;
    if (nin >= 0) {
        size_t keep = 0;
        for (int i = 0; i < nin; i++) {
            if (ref_is_plus(in_names[i], in_lens[i]))
                want_stripped++;
            else
                keep += in_lens[i] + 1;
        }
        if (keep > 0)
            want_len = 9 + keep + 1;
    }

    /* Capacity: enough, exactly enough, or one short of what is needed. */
    size_t cap = len;
    if (capsel % 3 == 1 && want_len > 0)
        cap = want_len;
    else if (capsel % 3 == 2 && want_len > 0)
        cap = want_len - 1;
    uint8_t *out = malloc(cap > 0 ? cap : 1);
    require(out != NULL);
    memset(out, 0xa5, cap);

    unsigned stripped = 12345;
    size_t n = pg_sasl_strip_plus(m, len, out, cap, &stripped);
    require(stripped == want_stripped);
    require(n == (want_len <= cap ? want_len : 0));
    if (n == 0) {
        for (size_t i = 0; i < cap; i++)
            require(out[i] == 0xa5); /* nothing written */
        free(out);
        return;
    }

    /* The result is a well-formed AuthenticationSASL with no -PLUS name,
     * the others in their original order, and stripped + kept = original. */
    int nout = ref_sasl_names(out, n, out_names, out_lens);
    require(nout > 0);
    require((unsigned)nout + stripped == (unsigned)nin);
    int k = 0;
    for (int i = 0; i < nin; i++) {
        if (ref_is_plus(in_names[i], in_lens[i]))
            continue;
        require(k < nout);
        require(out_lens[k] == in_lens[i] && memcmp(out_names[k], in_names[i], in_lens[i]) == 0);
        k++;
    }
    require(k == nout);
    for (int i = 0; i < nout; i++)
        require(!ref_is_plus(out_names[i], out_lens[i]));
    require(pg_auth_code(out, n) == PG_AUTH_SASL);

    /* Stripping again changes nothing. */
    uint8_t *again = malloc(n);
    require(again != NULL);
    unsigned s2 = 99;
    require(pg_sasl_strip_plus(out, n, again, n, &s2) == n);
    require(s2 == 0 && memcmp(again, out, n) == 0);
    free(again);
    free(out);
}

/* ---- SASLInitialResponse ------------------------------------------------- */

static char ref_sanitise(uint8_t b)
{
    return (b >= 0x20 && b <= 0x7e && b != '"' && b != '\\') ? (char)b : '?';
}

static void check_sasl_initial(const uint8_t *m, size_t len, size_t namecap)
{
    bool want = false;
    size_t nlen = 0;
    if (ref_whole(m, len, 'p')) {
        const uint8_t *nul = memchr(m + 5, 0, len - 5);
        if (nul != NULL && nul != m + 5) {
            nlen = (size_t)(nul - (m + 5));
            size_t after = len - 5 - nlen - 1;
            if (after >= 4) {
                uint32_t rlen = be32(nul + 1);
                want = rlen == 0xffffffffu ? after == 4 : (rlen <= INT32_MAX && after - 4 == rlen);
            }
        }
    }

    char *name = malloc(namecap > 0 ? namecap : 1);
    require(name != NULL);
    memset(name, 'Z', namecap);
    int r = pg_sasl_initial_mechanism(m, len, namecap > 0 ? name : NULL, namecap);
    require(r == (want ? 0 : -1));
    if (namecap > 0) {
        require(memchr(name, 0, namecap) != NULL);
        if (r != 0) {
            require(name[0] == '\0');
        } else {
            size_t n = nlen < namecap - 1 ? nlen : namecap - 1;
            require(strlen(name) == n);
            for (size_t i = 0; i < n; i++)
                require(name[i] == ref_sanitise(m[5 + i]));
        }
    }
    free(name);
}

/* ---- driver -------------------------------------------------------------- */

/* Every reader on m[0..len), with len bytes in a buffer of their own. */
/* ---- ErrorResponse fields ----------------------------------------------- */

static bool ref_sanitised(const char *got, const uint8_t *src, size_t n, size_t cap)
{
    size_t want = n < cap - 1 ? n : cap - 1;
    if (strlen(got) != want)
        return false;
    for (size_t i = 0; i < want; i++) {
        uint8_t b = src[i];
        char c = (b >= 0x20 && b <= 0x7e && b != '"' && b != '\\') ? (char)b : '?';
        if (got[i] != c)
            return false;
    }
    return true;
}

static void check_error(const uint8_t *m, size_t len)
{
    struct pg_error_fields ef;
    int r = pg_parse_error(m, len, &ef);
    /* Reference: walk the fields the plainest way. */
    bool ok = ref_whole(m, len, 'E');
    const uint8_t *c = NULL, *sev = NULL, *msg = NULL;
    size_t sevn = 0, msgn = 0;
    bool have_v = false;
    size_t i = 5;
    while (ok) {
        if (i >= len) {
            ok = false;
            break;
        }
        uint8_t code = m[i++];
        if (code == 0)
            break;
        size_t j = i;
        while (j < len && m[j] != 0)
            j++;
        if (j >= len) {
            ok = false;
            break;
        }
        if (code == 'C') {
            ok = j - i == 5;
            for (size_t k = i; ok && k < j; k++)
                ok = (m[k] >= '0' && m[k] <= '9') || (m[k] >= 'A' && m[k] <= 'Z');
            c = m + i;
        } else if (code == 'V' || (code == 'S' && !have_v)) {
            sev = m + i;
            sevn = j - i;
            have_v = have_v || code == 'V';
        } else if (code == 'M') {
            msg = m + i;
            msgn = j - i;
        }
        i = j + 1;
    }
    ok = ok && i == len && c != NULL;
    require(r == (ok ? 0 : -1));
    if (r == 0) {
        require(memcmp(ef.sqlstate, c, 5) == 0 && ef.sqlstate[5] == '\0');
        require(sev == NULL ? ef.severity[0] == '\0'
                            : ref_sanitised(ef.severity, sev, sevn, sizeof(ef.severity)));
        require(msg == NULL ? ef.message[0] == '\0'
                            : ref_sanitised(ef.message, msg, msgn, sizeof(ef.message)));
    }
}

static void check_all(const uint8_t *src, size_t len, size_t sel)
{
    uint8_t *m = malloc(len > 0 ? len : 1);
    require(m != NULL);
    if (len > 0)
        memcpy(m, src, len);
    check_backend_key(m, len);
    check_cancel(m, len);
    check_auth(m, len);
    check_error(m, len);
    check_sasl_strip(m, len, sel);
    check_sasl_initial(m, len, sel % 3 == 0 ? PG_LOGVAL_MAX : sel % 3 == 1 ? 5 : 0);
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Whole input as one message, whatever its header says. */
    check_all(data, size, size);

    size_t pos = 0, count = 0;
    while (pos < size) {
        size_t left = size - pos;
        uint8_t type = 0;
        size_t total = 0;
        int r = pg_msg_header(data + pos, left, MAX_TOTAL, &type, &total);
        if (left < 5) {
            require(r == 0);
            break;
        }
        uint32_t word = be32(data + pos + 1);
        bool ok = word >= 4 && (size_t)word + 1 <= MAX_TOTAL;
        require(r == (ok ? 1 : -1));
        if (r != 1)
            break;
        require(type == data[pos] && total == (size_t)word + 1);
        /* A shorter header is only ever "need more". */
        for (size_t cut = 0; cut < 5; cut++)
            require(pg_msg_header(data + pos, cut, MAX_TOTAL, NULL, NULL) == 0);
        if (total > left)
            break; /* body not here yet */

        check_all(data + pos, total, count);
        check_all(data + pos, total - 1, count + 1); /* truncated */
        if (total < left)
            check_all(data + pos, total + 1, count + 2); /* a trailing byte */
        pos += total;
        count++;
    }
    return 0;
}
