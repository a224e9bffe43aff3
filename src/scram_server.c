/*
 * scram_server.c - the proxy as the SCRAM-SHA-256(-PLUS) server towards a
 * client (auth mode scram), from a stored verifier. Follows PostgreSQL's
 * auth-scram.c: the same checks in the same order, the same SQLSTATEs and
 * texts (so a client sees what PostgreSQL would have told it), the same
 * mock exchange for an unknown user, and the proof computed even when the
 * exchange is doomed, so that timing does not tell which users exist.
 *
 * Pure: the caller moves the bytes. Owns only struct scram_server, which
 * scram_server_clear wipes. Never puts a key, proof or nonce in an error.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "scram.h"
#include "scram_impl.h"
#include "utf8.h"

#define SERVER_NONCE_RAW 18 /* PostgreSQL's SCRAM_RAW_NONCE_LEN: 24 base64 characters */
#define CB_HEADER "p=" SCRAM_CB_TYPE ",,"

static int malformed(struct scram_error *err, const char *detail)
{
    return scram_fail(err, "08P01", "malformed SCRAM message", "%s", detail);
}

/* The user as PostgreSQL names it in messages: the start-up packet's name
 * cut to NAMEDATALEN - 1 (63) bytes, at a character boundary. */
static void keep_user(char dst[64], const char *user)
{
    size_t n = user != NULL ? strlen(user) : 0, i = 0;
    while (i < n) {
        size_t k = utf8_seq((const unsigned char *)user + i, n - i);
        if (k == 0)
            k = 1;
        if (i + k > 63)
            break;
        i += k;
    }
    if (i > 0)
        memcpy(dst, user, i);
    dst[i] = '\0';
}

void scram_server_init(struct scram_server *s, const struct scram_secret *secret,
                       const uint8_t mock_key[SCRAM_KEY_LEN], const char *user,
                       const uint8_t *cb, size_t cb_len)
{
    memset(s, 0, sizeof(*s));
    if (secret != NULL && secret->salt_len > 0 && secret->salt_len <= SCRAM_SALT_MAX) {
        s->secret = *secret;
    } else {
        scram_secret_mock(mock_key, user != NULL ? user : "", SCRAM_DEFAULT_ITERATIONS,
                          &s->secret);
        s->mock = true;
    }
    if (cb != NULL && cb_len > 0 && cb_len <= SCRAM_CB_MAX) {
        memcpy(s->cb, cb, cb_len);
        s->cb_len = cb_len;
    }
    keep_user(s->user, user);
}

int scram_server_mechanisms(const struct scram_server *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    const char *names[2] = {s->cb_len > 0 ? SCRAM_MECH_PLUS : NULL, SCRAM_MECH};
    for (int i = 0; i < 2; i++) {
        if (names[i] == NULL)
            continue;
        size_t l = strlen(names[i]) + 1;
        if (n + l + 1 > cap)
            return -1;
        memcpy(out + n, names[i], l);
        n += l;
    }
    if (n + 1 > cap)
        return -1;
    out[n++] = 0;
    return (int)n;
}

/* The checks every message gets first (PostgreSQL's scram_exchange). */
static int check_message(const uint8_t *data, size_t len, struct scram_error *err)
{
    if (len == 0)
        return malformed(err, "The message is empty.");
    if (memchr(data, 0, len) != NULL)
        return malformed(err, "Message length does not match input length.");
    if (len >= SCRAM_MSG_MAX)
        return malformed(err, "The message is too long.");
    return 0;
}

/* An attribute the server side needs, with auth-scram.c's texts. */
static int need_attr(const char **p, const char *end, char want, const char **v, size_t *n,
                     struct scram_error *err)
{
    char got = 0, cb[8];
    switch (scram_attr(p, end, want, &got, v, n)) {
    case SCRAM_ATTR_OK:
        return 0;
    case SCRAM_ATTR_END:
        return scram_fail(err, "08P01", "malformed SCRAM message",
                          "Expected attribute \"%c\" but found \"%s\".", want,
                          scram_sanitize_char('\0', cb));
    case SCRAM_ATTR_WRONG:
        return scram_fail(err, "08P01", "malformed SCRAM message",
                          "Expected attribute \"%c\" but found \"%s\".", want,
                          scram_sanitize_char(got, cb));
    default:
        return scram_fail(err, "08P01", "malformed SCRAM message",
                          "Expected character \"=\" for attribute \"%c\".", want);
    }
}

/* Any further attribute (extensions, ignored), as read_any_attr. */
static int any_attr(const char **p, const char *end, char *attr, const char **v, size_t *n,
                    struct scram_error *err)
{
    char got = 0, cb[8];
    switch (scram_attr(p, end, 0, &got, v, n)) {
    case SCRAM_ATTR_OK:
        *attr = got;
        return 0;
    case SCRAM_ATTR_END:
        return malformed(err, "Attribute expected, but found end of string.");
    case SCRAM_ATTR_WRONG:
        return scram_fail(err, "08P01", "malformed SCRAM message",
                          "Attribute expected, but found invalid character \"%s\".",
                          scram_sanitize_char(got, cb));
    default:
        return scram_fail(err, "08P01", "malformed SCRAM message",
                          "Expected character \"=\" for attribute \"%c\".", got);
    }
}

static int comma_after_flag(const char **p, const char *end, struct scram_error *err)
{
    char cb[8];
    if (*p >= end || **p != ',')
        return scram_fail(err, "08P01", "malformed SCRAM message",
                          "Comma expected, but found character \"%s\".",
                          scram_sanitize_char(*p < end ? **p : '\0', cb));
    (*p)++;
    return 0;
}

/* gs2-header: "n,", "y," or "p=tls-server-end-point," then "," (no authzid). */
static int read_gs2(struct scram_server *s, const char **p, const char *end,
                    struct scram_error *err)
{
    const char *start = *p;
    char flag = *start, cb[8];
    if (flag == 'n' || flag == 'y') {
        if (s->plus)
            return malformed(err, "The client selected SCRAM-SHA-256-PLUS, but the SCRAM "
                                  "message does not include channel binding data.");
        /* 'y': "I could bind, but you did not offer it". We did offer it
         * (TLS front): someone removed -PLUS from the list on the way. */
        if (flag == 'y' && s->cb_len > 0)
            return scram_fail(err, "28000", "SCRAM channel binding negotiation error",
                              "The client supports SCRAM channel binding but thinks the "
                              "server does not.  However, this server does support channel "
                              "binding.");
        (*p)++;
        if (comma_after_flag(p, end, err) != 0)
            return -1;
    } else if (flag == 'p') {
        if (!s->plus)
            return malformed(err, "The client selected SCRAM-SHA-256 without channel binding, "
                                  "but the SCRAM message includes channel binding data.");
        const char *v;
        size_t n;
        if (need_attr(p, end, 'p', &v, &n, err) != 0)
            return -1;
        if (n != strlen(SCRAM_CB_TYPE) || memcmp(v, SCRAM_CB_TYPE, n) != 0) {
            char name[31];
            size_t i;
            for (i = 0; i < n && i < sizeof(name) - 1; i++)
                name[i] = v[i] >= 0x21 && v[i] <= 0x7e ? v[i] : '?';
            name[i] = '\0';
            char msg[96];
            snprintf(msg, sizeof(msg), "unsupported SCRAM channel-binding type \"%s\"", name);
            return scram_fail(err, "08P01", msg, NULL);
        }
    } else {
        return scram_fail(err, "08P01", "malformed SCRAM message",
                          "Unexpected channel-binding flag \"%s\".",
                          scram_sanitize_char(flag, cb));
    }
    if (*p < end && **p == 'a')
        return scram_fail(err, "0A000",
                          "client uses authorization identity, but it is not supported", NULL);
    if (*p >= end || **p != ',')
        return scram_fail(err, "08P01", "malformed SCRAM message",
                          "Unexpected attribute \"%s\" in client-first-message.",
                          scram_sanitize_char(*p < end ? **p : '\0', cb));
    (*p)++;
    s->gs2_len = (size_t)(*p - start);
    if (s->gs2_len >= sizeof(s->gs2))
        return malformed(err, "The GS2 header is too long.");
    memcpy(s->gs2, start, s->gs2_len);
    s->gs2[s->gs2_len] = '\0';
    return 0;
}

int scram_server_first(struct scram_server *s, const char *mech, const uint8_t *data, size_t len,
                       char *out, size_t cap, struct scram_error *err)
{
    if (s->step != 0)
        return scram_fail(err, "08P01", "invalid SCRAM exchange state", NULL);
    if (s->cb_len > 0 && strcmp(mech, SCRAM_MECH_PLUS) == 0)
        s->plus = true;
    else if (strcmp(mech, SCRAM_MECH) == 0)
        s->plus = false;
    else
        return scram_fail(err, "08P01",
                          "client selected an invalid SASL authentication mechanism", NULL);
    if (check_message(data, len, err) != 0)
        return -1;
    const char *p = (const char *)data, *end = p + len;
    if (read_gs2(s, &p, end, err) != 0)
        return -1;
    const char *bare = p;
    if (p < end && *p == 'm')
        return scram_fail(err, "0A000", "client requires an unsupported SCRAM extension", NULL);
    const char *v, *nonce;
    size_t n, nonce_len;
    /* The user name in the message is ignored (libpq sends "n="): the
     * start-up packet's is the one that counts, as in PostgreSQL. */
    if (need_attr(&p, end, 'n', &v, &n, err) != 0 ||
        need_attr(&p, end, 'r', &nonce, &nonce_len, err) != 0)
        return -1;
    if (!scram_printable(nonce, nonce_len))
        return scram_fail(err, "08P01", "non-printable characters in SCRAM nonce", NULL);
    while (p < end) {
        char attr;
        if (any_attr(&p, end, &attr, &v, &n, err) != 0)
            return -1;
    }
    size_t bare_len = (size_t)(end - bare);
    memcpy(s->client_first_bare, bare, bare_len);
    s->client_first_bare[bare_len] = '\0';

    uint8_t raw[SERVER_NONCE_RAW];
    char ours[32], salt[SCRAM_SALT_MAX * 2];
    if (RAND_bytes(raw, sizeof(raw)) != 1 ||
        scram_b64_encode(raw, sizeof(raw), ours, sizeof(ours)) < 0 ||
        scram_b64_encode(s->secret.salt, s->secret.salt_len, salt, sizeof(salt)) < 0)
        return scram_fail(err, "XX000", "could not generate random nonce", NULL);
    int w = snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)nonce_len, nonce, ours);
    if (w < 0 || (size_t)w >= sizeof(s->nonce))
        return malformed(err, "The nonce is too long.");
    w = snprintf(s->server_first, sizeof(s->server_first), "r=%s,s=%s,i=%u", s->nonce, salt,
                 s->secret.iterations);
    if (w < 0 || (size_t)w >= sizeof(s->server_first) || (size_t)w >= cap)
        return scram_fail(err, "XX000", "SCRAM message too long", NULL);
    memcpy(out, s->server_first, (size_t)w + 1);
    s->step = 1;
    return w;
}

/* c=: base64 of the gs2 header, plus our certificate's hash under -PLUS. */
static int check_binding(const struct scram_server *s, const char *v, size_t n,
                         struct scram_error *err)
{
    if (s->plus) {
        uint8_t input[sizeof(s->gs2) + SCRAM_CB_MAX];
        char want[2 * sizeof(input)];
        memcpy(input, s->gs2, s->gs2_len);
        memcpy(input + s->gs2_len, s->cb, s->cb_len);
        int w = scram_b64_encode(input, s->gs2_len + s->cb_len, want, sizeof(want));
        if (w < 0 || (size_t)w != n || CRYPTO_memcmp(want, v, n) != 0)
            return scram_fail(err, "28000", "SCRAM channel binding check failed", NULL);
        return 0;
    }
    /* Without binding the client repeats its flag: "n,," is "biws", "y,,"
     * is "eSws"; anything else disagrees with its first message. */
    bool ok = n == 4 && ((s->gs2[0] == 'n' && memcmp(v, "biws", 4) == 0) ||
                         (s->gs2[0] == 'y' && memcmp(v, "eSws", 4) == 0));
    if (!ok)
        return scram_fail(err, "08P01",
                          "unexpected SCRAM channel-binding attribute in client-final-message",
                          NULL);
    return 0;
}

int scram_server_final(struct scram_server *s, const uint8_t *data, size_t len, char *out,
                       size_t cap, uint8_t client_key[SCRAM_KEY_LEN], struct scram_error *err)
{
    if (s->step != 1)
        return scram_fail(err, "08P01", "invalid SCRAM exchange state", NULL);
    if (check_message(data, len, err) != 0)
        return -1;
    const char *p = (const char *)data, *end = p + len, *v, *nonce, *proof_at;
    size_t n, nonce_len;
    char attr = 0;
    if (need_attr(&p, end, 'c', &v, &n, err) != 0 || check_binding(s, v, n, err) != 0 ||
        need_attr(&p, end, 'r', &nonce, &nonce_len, err) != 0)
        return -1;
    do { /* extensions are skipped up to the proof */
        proof_at = p;
        if (any_attr(&p, end, &attr, &v, &n, err) != 0)
            return -1;
    } while (attr != 'p');
    uint8_t proof[SCRAM_KEY_LEN + 3];
    if (scram_b64_decode(v, n, proof, sizeof(proof)) != SCRAM_KEY_LEN)
        return malformed(err, "Malformed proof in client-final-message.");
    if (p < end)
        return malformed(err, "Garbage found at the end of client-final-message.");
    if (nonce_len != strlen(s->nonce) || CRYPTO_memcmp(nonce, s->nonce, nonce_len) != 0)
        return scram_fail(err, "08P01", "invalid SCRAM response", "Nonce does not match.");

    /* AuthMessage = client-first-bare "," server-first "," final-without-proof */
    char auth[3 * SCRAM_MSG_MAX];
    size_t without_proof = (size_t)(proof_at - (const char *)data) - 1;
    int a = snprintf(auth, sizeof(auth), "%s,%s,%.*s", s->client_first_bare, s->server_first,
                     (int)without_proof, (const char *)data);
    uint8_t sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
    int rc = -1;
    bool reported = false;
    if (a < 0 || (size_t)a >= sizeof(auth) ||
        scram_hmac(s->secret.stored_key, SCRAM_KEY_LEN, auth, (size_t)a, sig) != 0)
        goto out;
    /* ClientKey = ClientProof XOR ClientSignature; H(ClientKey) must be the
     * StoredKey. Computed for a mock exchange too (timing). */
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        key[i] = proof[i] ^ sig[i];
    scram_sha256(key, SCRAM_KEY_LEN, stored);
    bool good = CRYPTO_memcmp(stored, s->secret.stored_key, SCRAM_KEY_LEN) == 0;
    if (!good || s->mock) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "password authentication failed for user \"%s\"", s->user);
        reported = true;
        scram_fail(err, "28P01", msg, NULL);
        goto out;
    }
    char sigb64[64];
    if (scram_hmac(s->secret.server_key, SCRAM_KEY_LEN, auth, (size_t)a, sig) != 0 ||
        scram_b64_encode(sig, SCRAM_KEY_LEN, sigb64, sizeof(sigb64)) < 0)
        goto out;
    int w = snprintf(out, cap, "v=%s", sigb64);
    if (w < 0 || (size_t)w >= cap)
        goto out;
    memcpy(client_key, key, SCRAM_KEY_LEN);
    s->step = 2;
    rc = w;
out:
    if (rc < 0 && !reported)
        scram_fail(err, "XX000", "could not compute the SCRAM server signature", NULL);
    OPENSSL_cleanse(proof, sizeof(proof));
    OPENSSL_cleanse(sig, sizeof(sig));
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(auth, sizeof(auth));
    return rc;
}

void scram_server_clear(struct scram_server *s)
{
    OPENSSL_cleanse(s, sizeof(*s));
}
