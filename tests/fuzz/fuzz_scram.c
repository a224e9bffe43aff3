/*
 * fuzz_scram.c - libFuzzer target for the SCRAM message parsers of
 * src/scram_server.c and src/scram_client.c, and scram_secret_parse.
 *
 * The first byte picks options (offer/use channel binding, prefix our
 * nonce so that the client's parser gets past its first check); the rest
 * is split at the first 0xff byte into a first and a final message. The
 * server side gets them as client-first and client-final, the client side
 * as server-first and server-final; the whole input is also parsed as a
 * stored verifier (and must print back to what parses again to the same).
 * abort() when a failure leaves no SQLSTATE or message, or a success
 * leaves an unterminated or wrongly sized output.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define VERIFIER                                                                                   \
    "SCRAM-SHA-256$4096:lFwC9V339dgV/fqpnr7yaw==$KJ5oSJJBuy5PH8emZHl6OsnCBdDGWUaUVrhNftRX4j0=:"    \
    "Cw5QYuiR3j19oC6s11xht+H7h6Nf62+6Zqu6rjq65X4="

static void require(bool ok)
{
    if (!ok)
        abort();
}

static void check_err(const struct scram_error *e)
{
    require(e->sqlstate != NULL && strlen(e->sqlstate) == 5);
    require(memchr(e->message, 0, sizeof(e->message)) != NULL && e->message[0] != '\0');
    require(memchr(e->detail, 0, sizeof(e->detail)) != NULL);
}

/* Copy to an exact-size heap buffer so ASan sees any read past it. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n > 0 ? n : 1);
    require(d != NULL);
    if (n > 0)
        memcpy(d, p, n);
    return d;
}

static void server_side(uint8_t opts, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    struct scram_server sv;
    struct scram_secret sec;
    struct scram_error err;
    uint8_t mk[SCRAM_KEY_LEN] = {1}, cb[32], key[SCRAM_KEY_LEN];
    char out[SCRAM_MSG_MAX];
    memset(cb, 0x5c, sizeof(cb));
    require(scram_secret_parse(VERIFIER, &sec) == 0);
    scram_server_init(&sv, (opts & 4) ? NULL : &sec, mk, "fuzz", (opts & 1) ? cb : NULL,
                      (opts & 1) ? sizeof(cb) : 0);
    const char *mech = (opts & 2) ? SCRAM_MECH_PLUS : SCRAM_MECH;
    int n = scram_server_first(&sv, mech, a, an, out, sizeof(out), &err);
    if (n < 0) {
        check_err(&err);
        scram_server_clear(&sv);
        return;
    }
    require((size_t)n == strlen(out) && strncmp(out, "r=", 2) == 0);
    n = scram_server_final(&sv, b, bn, out, sizeof(out), key, &err);
    if (n < 0)
        check_err(&err);
    else
        require((size_t)n == strlen(out) && strncmp(out, "v=", 2) == 0);
    scram_server_clear(&sv);
}

static void client_side(uint8_t opts, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    static const uint8_t mechs[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0";
    struct scram_client c;
    struct scram_error err;
    uint8_t cb[48], ck[SCRAM_KEY_LEN] = {2}, sk[SCRAM_KEY_LEN] = {3};
    char out[SCRAM_MSG_MAX];
    memset(cb, 0x3a, sizeof(cb));
    require(scram_client_init(&c, mechs, sizeof(mechs), (opts & 1) ? cb : NULL,
                              (opts & 1) ? sizeof(cb) : 0) == 0);
    require(scram_client_first(&c, out, sizeof(out)) > 0);
    /* With option 8, the message starts "r=<our nonce>" and a goes after. */
    uint8_t *msg;
    size_t mn;
    if (opts & 8) {
        size_t pre = 2 + strlen(c.client_nonce);
        mn = pre + an;
        msg = malloc(mn > 0 ? mn : 1);
        require(msg != NULL);
        memcpy(msg, "r=", 2);
        memcpy(msg + 2, c.client_nonce, pre - 2);
        if (an > 0)
            memcpy(msg + pre, a, an);
    } else {
        msg = dup_exact(a, an);
        mn = an;
    }
    int rc = scram_client_server_first(&c, msg, mn, &err);
    free(msg);
    if (rc != 0) {
        check_err(&err);
        scram_client_clear(&c);
        return;
    }
    require(c.iterations >= 1 && c.iterations <= SCRAM_ITERATIONS_MAX);
    require(c.salt_len >= 1 && c.salt_len <= SCRAM_SALT_MAX);
    int n = scram_client_final(&c, ck, sk, out, sizeof(out));
    require(n > 0 && (size_t)n == strlen(out));
    if (scram_client_server_final(&c, b, bn, &err) != 0)
        check_err(&err);
    scram_client_clear(&c);
}

static void secret_side(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    require(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    struct scram_secret a, b;
    if (scram_secret_parse(s, &a) == 0) {
        char text[512];
        int n = scram_secret_format(&a, text, sizeof(text));
        require(n > 0 && (size_t)n == strlen(text));
        require(scram_secret_parse(text, &b) == 0);
        require(a.iterations == b.iterations && a.salt_len == b.salt_len &&
                memcmp(a.salt, b.salt, a.salt_len) == 0 &&
                memcmp(a.stored_key, b.stored_key, SCRAM_KEY_LEN) == 0 &&
                memcmp(a.server_key, b.server_key, SCRAM_KEY_LEN) == 0);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opts = data[0];
    const uint8_t *rest = data + 1;
    size_t rn = size - 1;
    const uint8_t *sep = memchr(rest, 0xff, rn);
    size_t an = sep != NULL ? (size_t)(sep - rest) : rn;
    const uint8_t *bp = sep != NULL ? sep + 1 : rest + rn;
    size_t bn = sep != NULL ? rn - an - 1 : 0;
    uint8_t *a = dup_exact(rest, an), *b = dup_exact(bp, bn);
    if (opts & 16)
        client_side(opts, a, an, b, bn);
    else
        server_side(opts, a, an, b, bn);
    free(a);
    free(b);
    secret_side(rest, rn);
    return 0;
}
