/*
 * scram.h - SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, for
 * both ends the proxy can play: the SCRAM server towards a client (auth mode
 * scram, from a stored verifier) and the SCRAM client towards the upstream
 * (auth modes password and scram). Also the verifier PostgreSQL stores in
 * pg_authid ("SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>") and the
 * tls-server-end-point channel binding (RFC 5929) of a certificate.
 *
 * Pure: no I/O, no globals, no logging. Every secret (passwords, salted
 * passwords, ClientKey, proofs) is wiped with OPENSSL_cleanse once used and
 * compared with CRYPTO_memcmp. Messages from the peer are untrusted input:
 * every parser is bounded and fuzzed (tests/fuzz/fuzz_scram.c).
 */
#ifndef PGTP_SCRAM_H
#define PGTP_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define SCRAM_KEY_LEN 32          /* SHA-256 */
#define SCRAM_SALT_MAX 64         /* bytes of salt we accept (PostgreSQL makes 16) */
#define SCRAM_DEFAULT_ITERATIONS 4096
#define SCRAM_ITERATIONS_MAX 10000000u /* a server asking more is refused */
#define SCRAM_CB_MAX 64           /* channel-binding data: a certificate hash */
#define SCRAM_MSG_MAX 2048        /* longest SCRAM message built or accepted */
#define SCRAM_PASSWORD_MAX 1024   /* longest password accepted */

#define SCRAM_MECH "SCRAM-SHA-256"
#define SCRAM_MECH_PLUS "SCRAM-SHA-256-PLUS"
#define SCRAM_CB_TYPE "tls-server-end-point"

/* What PostgreSQL stores for a role. */
struct scram_secret {
    unsigned iterations;
    uint8_t salt[SCRAM_SALT_MAX];
    size_t salt_len;
    uint8_t stored_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
};

/* "SCRAM-SHA-256$<iter>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>"
 * (exactly, nothing around it) -> out. 0, or -1 if malformed. */
int scram_secret_parse(const char *text, struct scram_secret *out);
/* The same text, NUL-terminated, into buf. Its length, or -1 if cap is
 * too small. */
int scram_secret_format(const struct scram_secret *s, char *buf, size_t cap);

/* SASLprep (RFC 4013) as PostgreSQL applies it to a password: ASCII is
 * kept as is; other valid UTF-8 is normalised; a password that is not
 * valid UTF-8 or holds prohibited characters is used as it came. The
 * result goes to out (NUL-terminated, cap bytes at most). Its length, or
 * -1 if it does not fit or out of memory. */
int scram_saslprep(const char *password, char *out, size_t cap);

/* SaltedPassword = Hi(SASLprep(password), salt, iterations): PBKDF2 with
 * HMAC-SHA-256, the costly step (milliseconds at 4096 iterations): call it
 * off the event loop. 0 or -1. */
int scram_salted_password(const char *password, const uint8_t *salt, size_t salt_len,
                          unsigned iterations, uint8_t out[SCRAM_KEY_LEN]);
/* ClientKey, StoredKey = H(ClientKey), ServerKey from a SaltedPassword
 * (any output may be NULL). */
void scram_keys(const uint8_t salted[SCRAM_KEY_LEN], uint8_t client_key[SCRAM_KEY_LEN],
                uint8_t stored_key[SCRAM_KEY_LEN], uint8_t server_key[SCRAM_KEY_LEN]);
/* A verifier for password with a salt of salt_len random bytes (RAND_bytes)
 * and the given iterations. 0 or -1. */
int scram_secret_make(const char *password, size_t salt_len, unsigned iterations,
                      struct scram_secret *out);
/* A mock verifier for a user the auth file does not hold, so that an
 * unknown user gets the same exchange as a known one: salt and keys are
 * HMAC-SHA-256(key, ...) of the user name, the same for the same key and
 * user every time; nobody can log in with it. */
void scram_secret_mock(const uint8_t key[SCRAM_KEY_LEN], const char *user, unsigned iterations,
                       struct scram_secret *out);

/* tls-server-end-point data of cert (RFC 5929 section 4.1, as PostgreSQL's
 * be_tls_get_certificate_hash): the certificate's DER hashed with its
 * signature's digest, SHA-256 when that is MD5 or SHA-1. Length written to
 * out (at most SCRAM_CB_MAX), or -1 (no usable digest, e.g. Ed25519, whose
 * certificates PostgreSQL cannot bind to either). */
int scram_cert_hash(X509 *cert, uint8_t out[SCRAM_CB_MAX]);

/* How an exchange failed, with the SQLSTATE and text PostgreSQL itself
 * would send in that case (auth-scram.c), for the ErrorResponse. */
struct scram_error {
    const char *sqlstate; /* "08P01", "28000", "28P01" */
    char message[160];    /* no secret ever */
    char detail[200];     /* may be empty */
};

/* ---- the proxy as SCRAM server (towards the client) ---- */
struct scram_server {
    struct scram_secret secret;
    bool mock;          /* an unknown user: the proof never verifies */
    uint8_t cb[SCRAM_CB_MAX]; /* our certificate's hash, when -PLUS is offered */
    size_t cb_len;      /* 0: only SCRAM-SHA-256 is offered (plaintext front) */
    bool plus;          /* the client chose SCRAM-SHA-256-PLUS */
    char gs2[96];       /* the client's gs2 header, as sent */
    size_t gs2_len;
    char client_first_bare[SCRAM_MSG_MAX];
    char server_first[SCRAM_MSG_MAX];
    char nonce[160];    /* client nonce + our nonce */
    char user[64];      /* for the 28P01 text: as PostgreSQL, at most 63 bytes */
    int step;           /* 0: before first, 1: first answered, 2: done */
};
/* secret: the user's verifier, or NULL for a mock exchange (mock_key and
 * user make its salt); cb/cb_len: our certificate's tls-server-end-point
 * data, or cb_len 0 when no channel binding is offered. */
void scram_server_init(struct scram_server *s, const struct scram_secret *secret,
                       const uint8_t mock_key[SCRAM_KEY_LEN], const char *user,
                       const uint8_t *cb, size_t cb_len);
/* The mechanisms to offer, in PostgreSQL's order ("SCRAM-SHA-256-PLUS" first
 * when cb_len > 0), as AuthenticationSASL's body: each NUL-terminated, then
 * one more NUL. Its length, or -1 if cap is too small. */
int scram_server_mechanisms(const struct scram_server *s, uint8_t *out, size_t cap);
/* SASLInitialResponse: the mechanism the client chose and its
 * client-first-message (data, len). On success the server-first-message
 * goes to out (NUL-terminated), its length returned. -1 with err filled
 * (unknown mechanism, malformed message, channel-binding negotiation
 * errors: the texts PostgreSQL uses). */
int scram_server_first(struct scram_server *s, const char *mech, const uint8_t *data, size_t len,
                       char *out, size_t cap, struct scram_error *err);
/* SASLResponse: the client-final-message. Checks the channel binding
 * (gs2 header and cbind data), the nonce and the proof (constant time).
 * On success: the server-final-message ("v=...") to out (its length
 * returned) and the client's ClientKey to client_key. Errors: -1 with err
 * filled; a wrong proof, and every mock exchange, gives 28P01 "password
 * authentication failed for user \"<user>\"" (the user as given). */
int scram_server_final(struct scram_server *s, const uint8_t *data, size_t len, char *out,
                       size_t cap, uint8_t client_key[SCRAM_KEY_LEN], struct scram_error *err);
/* Wipe everything (idempotent). */
void scram_server_clear(struct scram_server *s);

/* ---- the proxy as SCRAM client (towards the upstream) ---- */
struct scram_client {
    bool plus;          /* SCRAM-SHA-256-PLUS, bound to cb */
    bool cb_supported;  /* we could bind (TLS) but the server did not offer -PLUS: gs2 'y' */
    uint8_t cb[SCRAM_CB_MAX];
    size_t cb_len;
    char client_nonce[64];
    char client_first_bare[SCRAM_MSG_MAX];
    char server_first[SCRAM_MSG_MAX];
    char nonce[160];    /* the combined nonce from server-first */
    uint8_t salt[SCRAM_SALT_MAX];
    size_t salt_len;
    unsigned iterations;
    uint8_t server_key[SCRAM_KEY_LEN]; /* kept for the server-final check */
    char auth_message[3 * SCRAM_MSG_MAX];
    int step;
};
/* mechs: AuthenticationSASL's body (NUL-separated names, empty name last),
 * mechs_len its length; cb/cb_len: the upstream certificate's
 * tls-server-end-point data (cb_len 0: not TLS). Picks SCRAM-SHA-256-PLUS
 * when offered and cb_len > 0, else SCRAM-SHA-256 ('y' when cb_len > 0,
 * else 'n'). -1 when neither is offered. */
int scram_client_init(struct scram_client *c, const uint8_t *mechs, size_t mechs_len,
                      const uint8_t *cb, size_t cb_len);
/* The chosen mechanism's name. */
const char *scram_client_mechanism(const struct scram_client *c);
/* The client-first-message (with a fresh random nonce) to out. Its length,
 * or -1. */
int scram_client_first(struct scram_client *c, char *out, size_t cap);
/* The server-first-message: checks it (our nonce is its prefix, salt,
 * iterations within bounds) and keeps salt and iterations (c->salt,
 * c->iterations) for the caller's PBKDF2. 0, or -1 with err filled. */
int scram_client_server_first(struct scram_client *c, const uint8_t *data, size_t len,
                              struct scram_error *err);
/* The client-final-message from the keys (client_key from the password's
 * SaltedPassword, or recovered by scram_server_final; stored_key =
 * H(client_key); server_key to check the server's signature later). Its
 * length, or -1. */
int scram_client_final(struct scram_client *c, const uint8_t client_key[SCRAM_KEY_LEN],
                       const uint8_t server_key[SCRAM_KEY_LEN], char *out, size_t cap);
/* The server-final-message: 0 if its signature is the one the server_key
 * given to scram_client_final makes (constant time), -1 otherwise (an
 * "e=..." error, malformed, or a wrong signature: err says which). */
int scram_client_server_final(struct scram_client *c, const uint8_t *data, size_t len,
                              struct scram_error *err);
/* Wipe everything (idempotent). */
void scram_client_clear(struct scram_client *c);

#endif
