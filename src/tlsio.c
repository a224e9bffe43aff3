/*
 * tlsio.c - a TLS session driven through two byte queues.
 *
 * Owns the SSL object, its BIOs and the queues behind them. Never touches a
 * socket: the caller moves ciphertext between the network and the queues.
 * SSL_read is drained by the caller until TLS_WANT, because plaintext
 * already inside OpenSSL produces no further socket event.
 *
 * The BIOs are a minimal method over struct tlsbuf rather than OpenSSL's
 * memory BIO, which zero-fills every byte it is about to copy in
 * (BUF_MEM_grow_clean): callgrind put that memset at 16 % of the proxy's
 * instructions on a bulk COPY, and the memory BIO's copies at another 16 %.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "tlsio.h"

/* ---- the byte queue ---------------------------------------------------- */

#define TLSBUF_MIN 4096

static int tlsbuf_append(struct tlsbuf *b, const void *p, size_t n)
{
    if (n > b->cap - b->off - b->len) {
        if (b->len + n <= b->cap) {
            memmove(b->data, b->data + b->off, b->len); /* room at the front */
        } else {
            size_t cap = b->cap > 0 ? b->cap : TLSBUF_MIN;
            while (cap < b->len + n)
                cap *= 2;
            unsigned char *d = malloc(cap);
            if (d == NULL)
                return -1;
            if (b->len > 0)
                memcpy(d, b->data + b->off, b->len);
            free(b->data);
            b->data = d;
            b->cap = cap;
        }
        b->off = 0;
    }
    memcpy(b->data + b->off + b->len, p, n);
    b->len += n;
    return 0;
}

static void tlsbuf_consume(struct tlsbuf *b, size_t n)
{
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
}

static void tlsbuf_free(struct tlsbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- the BIO method over it ----------------------------------------------
 * One BIO for both directions (OpenSSL's rbio and wbio): reads take from
 * rx, writes append to tx (one BIO and its lock fewer per TLS leg: ~200
 * bytes of every session). An empty rx means "retry", never EOF: more bytes
 * may come. */

static int qbio_write(BIO *bio, const char *p, size_t n, size_t *done)
{
    struct tlsbuf *b = &((struct tlsio *)BIO_get_data(bio))->tx;
    BIO_clear_retry_flags(bio);
    if (tlsbuf_append(b, p, n) < 0)
        return 0;
    *done = n;
    return 1;
}

static int qbio_read(BIO *bio, char *p, size_t cap, size_t *done)
{
    struct tlsbuf *b = &((struct tlsio *)BIO_get_data(bio))->rx;
    BIO_clear_retry_flags(bio);
    if (b->len == 0) {
        BIO_set_retry_read(bio);
        return 0;
    }
    size_t n = cap < b->len ? cap : b->len;
    memcpy(p, b->data + b->off, n);
    tlsbuf_consume(b, n);
    *done = n;
    return 1;
}

static long qbio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
    const struct tlsio *t = BIO_get_data(bio);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_PENDING: /* what the read side has */
        return (long)t->rx.len;
    case BIO_CTRL_WPENDING:
        return 0;
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static int qbio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static BIO_METHOD *qbio_method;
static pthread_once_t qbio_once = PTHREAD_ONCE_INIT;

static void qbio_setup(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pgtp queue");
    if (m == NULL || !BIO_meth_set_write_ex(m, qbio_write) || !BIO_meth_set_read_ex(m, qbio_read) ||
        !BIO_meth_set_ctrl(m, qbio_ctrl) || !BIO_meth_set_create(m, qbio_create)) {
        BIO_meth_free(m);
        return;
    }
    qbio_method = m; /* lives as long as the process */
}

static BIO *qbio_new(struct tlsio *t)
{
    pthread_once(&qbio_once, qbio_setup);
    if (qbio_method == NULL)
        return NULL;
    BIO *bio = BIO_new(qbio_method);
    if (bio != NULL)
        BIO_set_data(bio, t);
    return bio;
}

/* ---- where OpenSSL's memory comes from -------------------------------------
 * Record buffers (~17 KB each, four per session), the handshake buffer and
 * a few other transient blocks are OpenSSL's only allocations of 16 KB or
 * more. From the heap, each one freed (tlsio_release when a session goes
 * quiet, the end of every handshake) leaves a hole between the small
 * objects live sessions keep, and malloc_trim can give back only the whole
 * pages inside a hole: 1,000 idle sessions kept ~8 KB of RSS each that way
 * (issue 17). Asked for as BIG_BLOCK bytes instead, glibc serves them with
 * mmap (its threshold fixed at that size: by default a freed mapping raises
 * it), so they never sit between small objects; only the pages touched
 * count (RSS), the rest is address space. A few freed blocks are kept for
 * the next handshake or busy session (a fresh mapping costs two system
 * calls and a page fault per page touched: ~15 % of a session's set-up
 * CPU without them); tlsio_mem_trim gives them back with the worker's
 * malloc_trim, tlsio_mem_tick once none was reused for a second. Every other allocation goes to
 * malloc as before. */

#ifdef __GLIBC__
#define BIG_MIN ((size_t)16 * 1024)
#define BIG_BLOCK ((size_t)128 * 1024) /* glibc's default M_MMAP_THRESHOLD */
#define BIG_KEEP 64                    /* freed big blocks kept, all threads */

static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;
static void *big_head; /* kept blocks, linked through their first word */
static unsigned big_kept;
static bool big_reused;         /* a kept block was taken since the last tick's check */
static uint64_t big_checked_ms; /* when a tick last checked (every worker ticks) */

void *tlsio_mem_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    if (n < BIG_MIN || n > BIG_BLOCK)
        return malloc(n);
    void *p = NULL;
    pthread_mutex_lock(&big_lock);
    if (big_head != NULL) {
        p = big_head;
        memcpy(&big_head, p, sizeof(big_head));
        big_kept--;
        big_reused = true;
    }
    pthread_mutex_unlock(&big_lock);
    return p != NULL ? p : malloc(BIG_BLOCK);
}

/* A block tlsio_mem_malloc made big (malloc_usable_size: BIG_BLOCK plus the
 * page rounding of its mapping); any such block serves any big request. */
static bool is_big(void *p)
{
    size_t u = malloc_usable_size(p);
    return u >= BIG_BLOCK && u < BIG_BLOCK + 4096;
}

void tlsio_mem_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    if (p == NULL)
        return;
    if (is_big(p)) {
        pthread_mutex_lock(&big_lock);
        bool keep = big_kept < BIG_KEEP;
        if (keep) {
            memcpy(p, &big_head, sizeof(big_head));
            big_head = p;
            big_kept++;
        }
        pthread_mutex_unlock(&big_lock);
        if (keep)
            return;
    }
    free(p);
}

void *tlsio_mem_realloc(void *p, size_t n, const char *file, int line)
{
    if (p == NULL)
        return tlsio_mem_malloc(n, file, line);
    if (n == 0) {
        tlsio_mem_free(p, file, line);
        return NULL;
    }
    if (is_big(p) && n <= BIG_BLOCK)
        return p; /* it has the room */
    if (n < BIG_MIN || n > BIG_BLOCK)
        return realloc(p, n);
    void *q = tlsio_mem_malloc(n, file, line); /* a block grows or shrinks into the big range */
    if (q == NULL)
        return NULL;
    size_t keep = malloc_usable_size(p); /* a block of more than BIG_BLOCK may shrink into it */
    memcpy(q, p, keep < n ? keep : n);
    free(p);
    return q;
}

bool tlsio_mem_init(void)
{
    if (mallopt(M_MMAP_THRESHOLD, (int)BIG_BLOCK) != 1)
        return false;
    return CRYPTO_set_mem_functions(tlsio_mem_malloc, tlsio_mem_realloc, tlsio_mem_free) == 1;
}

/* Free the kept blocks: all (tick false), or, at most once a second
 * whichever worker calls, when none was reused since the last check. */
static void big_release(bool tick, uint64_t now_ms)
{
    pthread_mutex_lock(&big_lock);
    void *p = NULL;
    if (tick && big_checked_ms != 0 && now_ms - big_checked_ms < 1000) {
        pthread_mutex_unlock(&big_lock);
        return; /* another worker checked within the second */
    }
    if (!tick || !big_reused) {
        p = big_head;
        big_head = NULL;
        big_kept = 0;
    }
    big_reused = false;
    if (tick)
        big_checked_ms = now_ms;
    pthread_mutex_unlock(&big_lock);
    while (p != NULL) {
        void *next;
        memcpy(&next, p, sizeof(next));
        free(p);
        p = next;
    }
}

void tlsio_mem_trim(void)
{
    big_release(false, 0);
}

void tlsio_mem_tick(uint64_t now_ms)
{
    big_release(true, now_ms);
}
#else
bool tlsio_mem_init(void)
{
    return false;
}

void tlsio_mem_trim(void)
{
}

void tlsio_mem_tick(uint64_t now_ms)
{
    (void)now_ms;
}
#endif

/* ---- the session --------------------------------------------------------- */

const char *tlsio_error(char *buf, size_t len)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last == 0) {
        if (len > 0)
            buf[0] = '\0';
        return buf;
    }
    const char *reason = ERR_reason_error_string(last);
    if (reason != NULL)
        snprintf(buf, len, "%s", reason);
    else
        ERR_error_string_n(last, buf, len);
    return buf;
}

int tlsio_init(struct tlsio *t, SSL_CTX *ctx, bool accept, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->ssl = SSL_new(ctx);
    t->bio = qbio_new(t);
    if (t->ssl == NULL || t->bio == NULL) {
        char e[160];
        snprintf(err, errlen, "cannot create TLS session: %s", tlsio_error(e, sizeof(e)));
        SSL_free(t->ssl);
        BIO_free(t->bio);
        memset(t, 0, sizeof(*t));
        return -1;
    }
    SSL_set_bio(t->ssl, t->bio, t->bio); /* the same BIO: one reference taken */
    if (accept)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return 0;
}

void tlsio_free(struct tlsio *t)
{
    if (t->ssl != NULL)
        SSL_free(t->ssl); /* frees the BIO */
    tlsbuf_free(&t->rx);
    tlsbuf_free(&t->tx);
    memset(t, 0, sizeof(*t));
}

int tlsio_feed(struct tlsio *t, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    return t->bio != NULL ? tlsbuf_append(&t->rx, buf, len) : -1;
}

static enum tls_res classify(struct tlsio *t, int r)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_EOF;
    default:
        return TLS_ERR;
    }
}

#ifdef PGTP_HANDSHAKE_CPU
/*
 * make bench's instrumented build only (build/pg-tls-proxy-hscpu): the
 * thread CPU time spent inside SSL_do_handshake, server side (the front
 * leg) and client side (the back leg), printed at exit. It sets OpenSSL's
 * handshakes as they run inside the proxy against tests/bench/tlsfloor.c's,
 * the same handshakes with nothing else on the machine (issue 17).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_ullong hs_ns[2], hs_done[2]; /* [0] server side, [1] client side */

static unsigned long long thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static void hs_report(void)
{
    unsigned long long sn = atomic_load(&hs_done[0]), cn = atomic_load(&hs_done[1]);
    fprintf(stderr,
            "handshake_cpu server_us=%.1f client_us=%.1f server_done=%llu client_done=%llu\n",
            sn ? (double)atomic_load(&hs_ns[0]) / 1e3 / (double)sn : 0.0,
            cn ? (double)atomic_load(&hs_ns[1]) / 1e3 / (double)cn : 0.0, sn, cn);
}

__attribute__((constructor)) static void hs_init(void)
{
    atexit(hs_report);
}
#endif

enum tls_res tlsio_handshake(struct tlsio *t)
{
#ifdef PGTP_HANDSHAKE_CPU
    unsigned long long t0 = thread_cpu_ns();
#endif
    int r = SSL_do_handshake(t->ssl);
#ifdef PGTP_HANDSHAKE_CPU
    int side = SSL_is_server(t->ssl) ? 0 : 1;
    atomic_fetch_add(&hs_ns[side], thread_cpu_ns() - t0);
    if (r == 1)
        atomic_fetch_add(&hs_done[side], 1);
#endif
    return r == 1 ? TLS_OK : classify(t, r);
}

enum tls_res tlsio_read(struct tlsio *t, void *buf, size_t cap, size_t *n)
{
    size_t got = 0;
    /* Nothing fed and nothing buffered: don't ask. SSL_read would set up a
     * fresh 16 KB read buffer just to find no record, and keep it, undoing
     * SSL_MODE_RELEASE_BUFFERS for every idle session. */
    if (t->rx.len == 0 && !SSL_has_pending(t->ssl)) {
        *n = 0;
        return SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN ? TLS_EOF : TLS_WANT;
    }
    int r = SSL_read_ex(t->ssl, buf, cap, &got);
    *n = got;
    return r == 1 ? TLS_OK : classify(t, r);
}

int tlsio_write(struct tlsio *t, const void *buf, size_t len)
{
    size_t done = 0;
    if (len == 0)
        return 0;
    return SSL_write_ex(t->ssl, buf, len, &done) == 1 && done == len ? 0 : -1;
}

void tlsio_shutdown(struct tlsio *t)
{
    /* Only queues our close_notify; we never wait for the peer's. */
    if (SSL_is_init_finished(t->ssl) && !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
}

void tlsio_release(struct tlsio *t)
{
    /* Frees OpenSSL's record buffers when they hold nothing; a no-op
     * otherwise. Idle sessions then cost no 16 KB buffers, nor queues. */
    if (t->ssl != NULL)
        (void)SSL_free_buffers(t->ssl);
    if (t->rx.len == 0)
        tlsbuf_free(&t->rx);
    if (t->tx.len == 0)
        tlsbuf_free(&t->tx);
}

int tlsio_queue_raw(struct tlsio *t, const void *buf, size_t len)
{
    return len == 0 ? 0 : tlsbuf_append(&t->tx, buf, len);
}

size_t tlsio_pending(const struct tlsio *t)
{
    return t->tx.len;
}

size_t tlsio_take(struct tlsio *t, void *buf, size_t cap)
{
    size_t n = cap < t->tx.len ? cap : t->tx.len;
    if (n > 0) {
        memcpy(buf, t->tx.data + t->tx.off, n);
        tlsbuf_consume(&t->tx, n);
    }
    return n;
}

size_t tlsio_peek(const struct tlsio *t, const unsigned char **p)
{
    *p = t->tx.len > 0 ? t->tx.data + t->tx.off : NULL;
    return t->tx.len;
}

void tlsio_consume(struct tlsio *t, size_t n)
{
    tlsbuf_consume(&t->tx, n < t->tx.len ? n : t->tx.len);
}

const char *tlsio_version(const struct tlsio *t)
{
    return t->ssl != NULL ? SSL_get_version(t->ssl) : "-";
}

const char *tlsio_cipher(const struct tlsio *t)
{
    const char *c = t->ssl != NULL ? SSL_get_cipher_name(t->ssl) : NULL;
    return c != NULL ? c : "-";
}
