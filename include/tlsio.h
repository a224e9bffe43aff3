/*
 * tlsio.h - one TLS leg over memory BIOs.
 *
 * The socket side is the caller's: ciphertext read from the network is fed
 * in with tlsio_feed(), ciphertext to send is taken out with tlsio_take().
 * No sockets, no event loop: two tlsio objects can be wired together in a
 * unit test.
 */
#ifndef PGTP_TLSIO_H
#define PGTP_TLSIO_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

enum tls_res {
    TLS_OK = 0, /* done / data returned */
    TLS_WANT,   /* needs more ciphertext from the peer */
    TLS_EOF,    /* peer sent close_notify */
    TLS_ERR     /* fatal; see tlsio_error() */
};

struct tlsio {
    SSL *ssl;
    BIO *in;  /* network -> OpenSSL (owned by ssl) */
    BIO *out; /* OpenSSL -> network (owned by ssl) */
};

/* sni may be NULL. Returns 0, or -1 with err filled. */
int tlsio_init(struct tlsio *t, SSL_CTX *ctx, bool accept, char *err, size_t errlen);
void tlsio_free(struct tlsio *t);

int tlsio_feed(struct tlsio *t, const void *buf, size_t len);
enum tls_res tlsio_handshake(struct tlsio *t);
/* Decrypt up to cap bytes into buf; *n receives the count on TLS_OK. */
enum tls_res tlsio_read(struct tlsio *t, void *buf, size_t cap, size_t *n);
/* Encrypt all of buf (memory BIOs never refuse). 0 or -1. */
int tlsio_write(struct tlsio *t, const void *buf, size_t len);
/* Queue a close_notify. */
void tlsio_shutdown(struct tlsio *t);

/* Give OpenSSL's record buffers back when nothing is in them. */
void tlsio_release(struct tlsio *t);

size_t tlsio_pending(const struct tlsio *t);
size_t tlsio_take(struct tlsio *t, void *buf, size_t cap);

/* Last OpenSSL error of this thread, as text ("" if none); clears the queue. */
const char *tlsio_error(char *buf, size_t len);

/* "TLSv1.3/TLS_AES_256_GCM_SHA384" style strings for logs. */
const char *tlsio_version(const struct tlsio *t);
const char *tlsio_cipher(const struct tlsio *t);

#endif
