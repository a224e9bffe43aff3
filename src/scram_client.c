/*
 * scram_client.c - the proxy as SCRAM-SHA-256(-PLUS) client towards the
 * upstream (auth modes password and scram). Follows libpq's
 * fe-auth-scram.c: the mechanism choice (-PLUS whenever the server offers
 * it and the leg is TLS, else gs2 'y' over TLS so that a stripped
 * mechanism list is caught by the server), the same checks of the
 * server's messages with the same texts, and the server's final signature
 * checked in constant time: a server that cannot prove it holds the
 * verifier is refused.
 *
 * Pure: the caller moves the bytes and runs the PBKDF2 (off the loop).
 * Owns only struct scram_client, which scram_client_clear wipes.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "scram.h"
#include "scram_impl.h"

#define CLIENT_NONCE_RAW 18 /* libpq's SCRAM_RAW_NONCE_LEN */

/* Upstream sent something no PostgreSQL sends: a protocol violation. */
static int bad(struct scram_error *err, const char *message)
{
    return scram_fail(err, "08P01", message, NULL);
}

static bool offered(const uint8_t *mechs, size_t len, const char *name)
{
    size_t i = 0, want = strlen(name);
    while (i < len && mechs[i] != 0) {
        const uint8_t *z = memchr(mechs + i, 0, len - i);
        size_t n = z != NULL ? (size_t)(z - (mechs + i)) : len - i;
        if (n == want && memcmp(mechs + i, name, n) == 0)
            return true;
        i += n + 1;
    }
    return false;
}

int scram_client_init(struct scram_client *c, const uint8_t *mechs, size_t mechs_len,
                      const uint8_t *cb, size_t cb_len)
{
    memset(c, 0, sizeof(*c));
    if (cb_len > SCRAM_CB_MAX || (cb_len > 0 && cb == NULL))
        return -1;
    if (cb_len > 0) {
        memcpy(c->cb, cb, cb_len);
        c->cb_len = cb_len;
    }
    if (cb_len > 0 && offered(mechs, mechs_len, SCRAM_MECH_PLUS)) {
        c->plus = true;
        return 0;
    }
    if (!offered(mechs, mechs_len, SCRAM_MECH))
        return -1;
    c->cb_supported = cb_len > 0;
    return 0;
}

const char *scram_client_mechanism(const struct scram_client *c)
{
    return c->plus ? SCRAM_MECH_PLUS : SCRAM_MECH;
}

static const char *gs2_header(const struct scram_client *c)
{
    return c->plus ? "p=" SCRAM_CB_TYPE ",," : c->cb_supported ? "y,," : "n,,";
}

int scram_client_first(struct scram_client *c, char *out, size_t cap)
{
    uint8_t raw[CLIENT_NONCE_RAW];
    if (c->step != 0 || RAND_bytes(raw, sizeof(raw)) != 1 ||
        scram_b64_encode(raw, sizeof(raw), c->client_nonce, sizeof(c->client_nonce)) < 0)
        return -1;
    /* The user name goes in the start-up packet; libpq sends "n=". */
    snprintf(c->client_first_bare, sizeof(c->client_first_bare), "n=,r=%s", c->client_nonce);
    int w = snprintf(out, cap, "%s%s", gs2_header(c), c->client_first_bare);
    if (w < 0 || (size_t)w >= cap)
        return -1;
    c->step = 1;
    return w;
}

/* A message's common checks, as libpq words them. */
static int check_message(const uint8_t *data, size_t len, struct scram_error *err)
{
    if (len == 0)
        return bad(err, "malformed SCRAM message (empty message)");
    if (memchr(data, 0, len) != NULL)
        return bad(err, "malformed SCRAM message (length mismatch)");
    if (len >= SCRAM_MSG_MAX)
        return bad(err, "malformed SCRAM message (message too long)");
    return 0;
}

static int need_attr(const char **p, const char *end, char want, const char **v, size_t *n,
                     struct scram_error *err)
{
    char msg[96];
    switch (scram_attr(p, end, want, NULL, v, n)) {
    case SCRAM_ATTR_OK:
        return 0;
    case SCRAM_ATTR_NO_EQUALS:
        snprintf(msg, sizeof(msg),
                 "malformed SCRAM message (expected character \"=\" for attribute \"%c\")", want);
        return bad(err, msg);
    default:
        snprintf(msg, sizeof(msg), "malformed SCRAM message (attribute \"%c\" expected)", want);
        return bad(err, msg);
    }
}

int scram_client_server_first(struct scram_client *c, const uint8_t *data, size_t len,
                              struct scram_error *err)
{
    if (c->step != 1)
        return bad(err, "invalid SCRAM exchange state");
    if (check_message(data, len, err) != 0)
        return -1;
    const char *p = (const char *)data, *end = p + len, *nonce, *salt, *iter;
    size_t nonce_len, salt_len, iter_len, mine = strlen(c->client_nonce);
    if (need_attr(&p, end, 'r', &nonce, &nonce_len, err) != 0)
        return -1;
    /* The server's nonce must extend ours (a replayed or made-up exchange
     * does not) and stay printable. */
    if (nonce_len <= mine || CRYPTO_memcmp(nonce, c->client_nonce, mine) != 0 ||
        !scram_printable(nonce, nonce_len))
        return bad(err, "invalid SCRAM response (nonce mismatch)");
    if (nonce_len >= sizeof(c->nonce))
        return bad(err, "malformed SCRAM message (nonce too long)");
    if (need_attr(&p, end, 's', &salt, &salt_len, err) != 0)
        return -1;
    int sl = scram_b64_decode(salt, salt_len, c->salt, sizeof(c->salt));
    if (sl < 1)
        return bad(err, "malformed SCRAM message (invalid salt)");
    if (need_attr(&p, end, 'i', &iter, &iter_len, err) != 0)
        return -1;
    unsigned it = 0;
    bool ok = iter_len > 0 && iter_len <= 8;
    for (size_t i = 0; ok && i < iter_len; i++) {
        ok = iter[i] >= '0' && iter[i] <= '9';
        it = it * 10 + (unsigned)(iter[i] - '0');
    }
    /* A server asking more than SCRAM_ITERATIONS_MAX would make us spend
     * seconds of CPU per login: refused (libpq has no bound). */
    if (!ok || it < 1 || it > SCRAM_ITERATIONS_MAX)
        return bad(err, "malformed SCRAM message (invalid iteration count)");
    if (p < end)
        return bad(err, "malformed SCRAM message (garbage at end of server-first-message)");
    memcpy(c->nonce, nonce, nonce_len);
    c->nonce[nonce_len] = '\0';
    c->salt_len = (size_t)sl;
    c->iterations = it;
    memcpy(c->server_first, data, len);
    c->server_first[len] = '\0';
    c->step = 2;
    return 0;
}

int scram_client_final(struct scram_client *c, const uint8_t client_key[SCRAM_KEY_LEN],
                       const uint8_t server_key[SCRAM_KEY_LEN], char *out, size_t cap)
{
    if (c->step != 2)
        return -1;
    const char *gs2 = gs2_header(c);
    uint8_t cbind[32 + SCRAM_CB_MAX];
    size_t gl = strlen(gs2);
    memcpy(cbind, gs2, gl);
    if (c->plus)
        memcpy(cbind + gl, c->cb, c->cb_len);
    char cb64[2 * sizeof(cbind)], without[SCRAM_MSG_MAX];
    if (scram_b64_encode(cbind, gl + (c->plus ? c->cb_len : 0), cb64, sizeof(cb64)) < 0)
        return -1;
    int wl = snprintf(without, sizeof(without), "c=%s,r=%s", cb64, c->nonce);
    int al = snprintf(c->auth_message, sizeof(c->auth_message), "%s,%s,%s", c->client_first_bare,
                      c->server_first, without);
    if (wl < 0 || (size_t)wl >= sizeof(without) || al < 0 || (size_t)al >= sizeof(c->auth_message))
        return -1;
    uint8_t stored[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], proof[SCRAM_KEY_LEN];
    char proof64[64];
    int rc = -1;
    if (scram_sha256(client_key, SCRAM_KEY_LEN, stored) != 0 ||
        scram_hmac(stored, SCRAM_KEY_LEN, c->auth_message, (size_t)al, sig) != 0)
        goto out;
    /* ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage) */
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        proof[i] = client_key[i] ^ sig[i];
    if (scram_b64_encode(proof, SCRAM_KEY_LEN, proof64, sizeof(proof64)) < 0)
        goto out;
    int w = snprintf(out, cap, "%s,p=%s", without, proof64);
    if (w < 0 || (size_t)w >= cap)
        goto out;
    memcpy(c->server_key, server_key, SCRAM_KEY_LEN);
    c->step = 3;
    rc = w;
out:
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(sig, sizeof(sig));
    OPENSSL_cleanse(proof, sizeof(proof));
    OPENSSL_cleanse(proof64, sizeof(proof64));
    return rc;
}

int scram_client_server_final(struct scram_client *c, const uint8_t *data, size_t len,
                              struct scram_error *err)
{
    if (c->step != 3)
        return bad(err, "invalid SCRAM exchange state");
    if (check_message(data, len, err) != 0)
        return -1;
    const char *p = (const char *)data, *end = p + len, *v;
    size_t n;
    if (*p == 'e') {
        /* "e=invalid-proof" and friends (RFC 5802 7): PostgreSQL itself
         * sends an ErrorResponse instead, but others may not. */
        if (need_attr(&p, end, 'e', &v, &n, err) != 0)
            return -1;
        char text[64];
        size_t i;
        for (i = 0; i < n && i < sizeof(text) - 1; i++)
            text[i] = v[i] >= 0x20 && v[i] <= 0x7e ? v[i] : '?';
        text[i] = '\0';
        char msg[128];
        snprintf(msg, sizeof(msg), "error received from server in SCRAM exchange: %s", text);
        return scram_fail(err, "28000", msg, NULL);
    }
    if (need_attr(&p, end, 'v', &v, &n, err) != 0)
        return -1;
    uint8_t got[SCRAM_KEY_LEN + 3], want[SCRAM_KEY_LEN];
    int rc = -1;
    if (scram_b64_decode(v, n, got, sizeof(got)) != SCRAM_KEY_LEN) {
        bad(err, "malformed SCRAM message (invalid server signature)");
    } else if (p < end) {
        bad(err, "malformed SCRAM message (garbage at end of server-final-message)");
    } else if (scram_hmac(c->server_key, SCRAM_KEY_LEN, c->auth_message,
                          strlen(c->auth_message), want) != 0) {
        scram_fail(err, "XX000", "could not compute the SCRAM server signature", NULL);
    } else if (CRYPTO_memcmp(got, want, SCRAM_KEY_LEN) != 0) {
        /* The server does not hold the verifier our key was made from:
         * not the server we meant, whatever its certificate says. */
        scram_fail(err, "28000", "incorrect server signature", NULL);
    } else {
        c->step = 4;
        rc = 0;
    }
    OPENSSL_cleanse(got, sizeof(got));
    OPENSSL_cleanse(want, sizeof(want));
    return rc;
}

void scram_client_clear(struct scram_client *c)
{
    OPENSSL_cleanse(c, sizeof(*c));
}
