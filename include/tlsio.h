/*
 * tlsio.h - one TLS leg over two byte queues of our own (a small BIO method:
 * no zero-filling on every write as OpenSSL's memory BIO does).
 *
 * The socket side is the caller's: ciphertext read from the network is fed
 * in with tlsio_feed(), ciphertext to send is taken out with tlsio_take(),
 * or written straight from tlsio_peek() and then tlsio_consume()d.
 * No sockets, no event loop: two tlsio objects can be wired together in a
 * unit test.
 */
#ifndef PGTP_TLSIO_H
#define PGTP_TLSIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

enum tls_res {
    TLS_OK = 0, /* done / data returned */
    TLS_WANT,   /* needs more ciphertext from the peer */
    TLS_EOF,    /* peer sent close_notify */
    TLS_ERR     /* fatal; see tlsio_error() */
};

/* Bytes data[off, off + len) of a heap buffer of cap bytes (NULL when idle). */
struct tlsbuf {
    unsigned char *data;
    size_t off, len, cap;
};

struct tlsio {
    SSL *ssl;
    BIO *bio;         /* both of ssl's BIOs (owned by ssl): reads rx, appends to tx */
    struct tlsbuf rx; /* ciphertext fed, not yet read by OpenSSL */
    struct tlsbuf tx; /* ciphertext written by OpenSSL, not yet taken */
};

/* Once, first thing in main, before OpenSSL allocates anything: OpenSSL's
 * blocks of 16 KB and more (record and handshake buffers) are served by
 * mmap, so the heap keeps no holes where idle sessions' buffers were
 * (glibc only). false: not done (not glibc, or OpenSSL had already
 * allocated); everything works the same, with more RSS per idle session. */
bool tlsio_mem_init(void);
/* Free the big blocks kept for reuse (with malloc_trim). Any thread. */
void tlsio_mem_trim(void);
/* Every second or so, from every worker (now_ms: uv_now, one clock for all
 * loops): free the kept blocks when none of them was reused for a second
 * (no handshakes, no sessions waking up); calls within a second of the
 * last check do nothing. */
void tlsio_mem_tick(uint64_t now_ms);
#ifdef __GLIBC__
/* What tlsio_mem_init installs (CRYPTO_set_mem_functions), for the unit
 * tests: a request of 16 KB to BIG_BLOCK (128 KB) gets a BIG_BLOCK block,
 * kept for reuse when freed; anything else is malloc's. */
void *tlsio_mem_malloc(size_t n, const char *file, int line);
void *tlsio_mem_realloc(void *p, size_t n, const char *file, int line);
void tlsio_mem_free(void *p, const char *file, int line);
#endif

/* sni may be NULL. Returns 0, or -1 with err filled. */
int tlsio_init(struct tlsio *t, SSL_CTX *ctx, bool accept, char *err, size_t errlen);
void tlsio_free(struct tlsio *t);

int tlsio_feed(struct tlsio *t, const void *buf, size_t len);
enum tls_res tlsio_handshake(struct tlsio *t);
/* Decrypt up to cap bytes into buf; *n receives the count on TLS_OK. */
enum tls_res tlsio_read(struct tlsio *t, void *buf, size_t cap, size_t *n);
/* Encrypt all of buf (the queues never refuse, short of memory). 0 or -1. */
int tlsio_write(struct tlsio *t, const void *buf, size_t len);
/* Queue a close_notify. */
void tlsio_shutdown(struct tlsio *t);

/* Give OpenSSL's record buffers, and our queues, back when nothing is in them. */
void tlsio_release(struct tlsio *t);

size_t tlsio_pending(const struct tlsio *t);
/* Append bytes to the outgoing queue as they are, behind what is queued
 * (the plaintext before TLS, or a leg without TLS). 0 or -1. */
int tlsio_queue_raw(struct tlsio *t, const void *buf, size_t len);
size_t tlsio_take(struct tlsio *t, void *buf, size_t cap);
/* The ciphertext waiting to be sent, in place (*p; returns its length), and
 * how much of it has gone (n <= that length). */
size_t tlsio_peek(const struct tlsio *t, const unsigned char **p);
void tlsio_consume(struct tlsio *t, size_t n);

/* Last OpenSSL error of this thread, as text ("" if none); clears the queue. */
const char *tlsio_error(char *buf, size_t len);

/* "TLSv1.3/TLS_AES_256_GCM_SHA384" style strings for logs. */
const char *tlsio_version(const struct tlsio *t);
const char *tlsio_cipher(const struct tlsio *t);

#endif
