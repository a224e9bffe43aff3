/*
 * test_leg_bridge.c - unit tests for src/leg_bridge.c, the bridge
 * transport of a leg, on a loop of the test's own: the leg over one end of
 * a real loopback TCP pair, and on the other end a "connector" of the
 * test's own (a tlsio client on a non-blocking socket, pumped between loop
 * turns). The set-up (ClientHello given as the preamble's extra bytes,
 * handshake, token) reports once; bytes after the token wait until the leg
 * reads and are never delivered inside leg_read_start; large transfers
 * arrive byte-exact both ways; a leg that stops reading gets nothing until
 * it reads again, then everything; close_notify and a bare TCP EOF are
 * LEG_EOF; leg_shutdown sends close_notify and FIN; a wrong token, a
 * handshake with garbage and a connector gone mid-handshake fail the
 * set-up; a leg closed during its set-up never reports it. Every test ends
 * with uv_loop_close() == 0.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "bridgeproto.h"
#include "leg.h"
#include "netpair.h"
#include "suites.h"
#include "worker.h"

#define BIG ((size_t)3 * READ_BUF_SIZE + 123)

static struct worker *w;
static SSL_CTX *srv_ctx, *cli_ctx;
static const uint8_t token[BRIDGE_TOKEN_LEN] = "0123456789abcdef0123456789abcde";

/* ---- the leg under test ---- */

struct tleg {
    struct leg leg; /* first: the callback gets &leg */
    uint8_t *in;
    size_t in_len;
    bool eof, shut, closed, failed, drained;
    int nev_after_closed;
    int setups;
    enum leg_bridge_setup setup;
    char why[256];
    size_t stop_after; /* > 0: leg_read_stop once this much has arrived */
};

static void on_event(struct leg *l, enum leg_event ev, const uint8_t *buf, size_t len)
{
    struct tleg *t = (struct tleg *)l;
    if (t->closed)
        t->nev_after_closed++;
    switch (ev) {
    case LEG_RAW:
        ck_assert_uint_le(t->in_len + len, BIG);
        memcpy(t->in + t->in_len, buf, len);
        t->in_len += len;
        if (t->stop_after > 0 && t->in_len >= t->stop_after) {
            t->stop_after = 0;
            leg_read_stop(l);
        }
        break;
    case LEG_EOF:
        t->eof = true;
        break;
    case LEG_SHUT:
        t->shut = true;
        break;
    case LEG_DRAINED:
        t->drained = true;
        break;
    case LEG_ERROR:
    case LEG_WRITE_FAILED:
        t->failed = true;
        break;
    case LEG_CLOSED:
        t->closed = true;
        break;
    default:
        break;
    }
}

static void setup_cb(void *arg, enum leg_bridge_setup res, const char *why)
{
    struct tleg *t = arg;
    t->setups++;
    t->setup = res;
    snprintf(t->why, sizeof(t->why), "%s", why);
}

/* ---- the test's connector: a tlsio client on a non-blocking socket ---- */

struct peer {
    int fd;
    struct tlsio t;
    bool up, failed, tcp_eof, tls_eof, shut;
    uint8_t *in;
    size_t in_len;
    uint8_t *out; /* plaintext to write once the handshake is done */
    size_t out_len;
};

static void make_ctx(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"bridge.test", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
    srv_ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate(srv_ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(srv_ctx, key), 1);
    SSL_CTX_set_mode(srv_ctx, SSL_MODE_RELEASE_BUFFERS);
    cli_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(cli_ctx, SSL_VERIFY_PEER, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(cli_ctx), x);
    X509_free(x);
    EVP_PKEY_free(key);
}

static void peer_init(struct peer *p, int fd)
{
    char err[200];
    memset(p, 0, sizeof(*p));
    p->fd = fd;
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    ck_assert_int_eq(tlsio_init(&p->t, cli_ctx, false, err, sizeof(err)), 0);
    p->in = malloc(BIG);
    ck_assert_ptr_nonnull(p->in);
}

static void peer_free(struct peer *p)
{
    tlsio_free(&p->t);
    if (p->fd >= 0)
        close(p->fd);
    free(p->in);
    free(p->out);
}

/* Move bytes between the socket and the TLS, both ways. True on progress. */
static bool peer_pump(struct peer *p)
{
    bool progress = false;
    uint8_t buf[16384];
    const unsigned char *q = NULL;
    size_t n = tlsio_peek(&p->t, &q);
    if (n > 0 && p->fd >= 0) {
        ssize_t k = send(p->fd, q, n, MSG_NOSIGNAL);
        if (k > 0) {
            tlsio_consume(&p->t, (size_t)k);
            progress = true;
        }
    }
    for (;;) {
        ssize_t k = p->fd >= 0 && !p->tcp_eof ? recv(p->fd, buf, sizeof(buf), 0) : -1;
        if (k > 0) {
            ck_assert_int_eq(tlsio_feed(&p->t, buf, (size_t)k), 0);
            progress = true;
            continue;
        }
        if (k == 0) {
            p->tcp_eof = true;
            progress = true;
        }
        break;
    }
    if (!p->up && !p->failed) {
        enum tls_res r = tlsio_handshake(&p->t);
        if (r == TLS_OK) {
            p->up = true;
            progress = true;
        } else if (r != TLS_WANT) {
            p->failed = true;
        }
    }
    if (p->up && p->out_len > 0) {
        ck_assert_int_eq(tlsio_write(&p->t, p->out, p->out_len), 0);
        p->out_len = 0;
        progress = true;
    }
    if (p->up && p->shut && p->out_len == 0) {
        tlsio_shutdown(&p->t);
        p->shut = false;
        progress = true;
    }
    while (p->up && !p->tls_eof) {
        size_t got = 0;
        enum tls_res r = tlsio_read(&p->t, buf, sizeof(buf), &got);
        if (r == TLS_OK) {
            ck_assert_uint_le(p->in_len + got, BIG);
            memcpy(p->in + p->in_len, buf, got);
            p->in_len += got;
            progress = true;
            continue;
        }
        if (r == TLS_EOF)
            p->tls_eof = true;
        break;
    }
    return progress;
}

/* Queued until the handshake is done, then encrypted by peer_pump. */
static void peer_write(struct peer *p, const void *buf, size_t len)
{
    uint8_t *o = realloc(p->out, p->out_len + len);
    ck_assert_ptr_nonnull(o);
    memcpy(o + p->out_len, buf, len);
    p->out = o;
    p->out_len += len;
}

/* ---- plumbing ---- */

static struct tleg *tleg_new(void)
{
    struct tleg *t = calloc(1, sizeof(*t));
    ck_assert_ptr_nonnull(t);
    t->in = malloc(BIG);
    ck_assert_ptr_nonnull(t->in);
    leg_init(&t->leg, NULL, w, on_event);
    ck_assert_int_eq(leg_bridge_open(&t->leg), 0);
    ck_assert(t->leg.open);
    ck_assert_ptr_eq(t->leg.tp, &leg_bridge_transport);
    return t;
}

static void tleg_free(struct tleg *t)
{
    ck_assert(t->closed);
    ck_assert_int_eq(t->nev_after_closed, 0);
    ck_assert_ptr_null(t->leg.tp_data);
    leg_free(&t->leg);
    free(t->in);
    free(t);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    w = calloc(1, sizeof(*w));
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(uv_loop_init(&w->loop_storage), 0);
    w->loop = &w->loop_storage;
    make_ctx();
}

static void teardown(void)
{
    leg_chunk_cache_free(w);
    ck_assert_int_eq(uv_loop_close(w->loop), 0);
    free(w);
    SSL_CTX_free(srv_ctx);
    SSL_CTX_free(cli_ctx);
}

/* Turn the loop and pump the peer until done(), or give up after ~5 s. */
static void run_until(struct tleg *t, struct peer *p, bool (*done)(struct tleg *, struct peer *))
{
    for (int i = 0; i < 50000 && !done(t, p); i++) {
        uv_run(w->loop, UV_RUN_NOWAIT);
        if (!(p != NULL && peer_pump(p)))
            usleep(100);
    }
    ck_assert_msg(done(t, p), "condition not reached");
}

/* A few turns with nothing expected to happen to the leg. */
static void run_idle(struct tleg *t, struct peer *p, int turns)
{
    (void)t;
    for (int i = 0; i < turns; i++) {
        uv_run(w->loop, UV_RUN_NOWAIT);
        if (p != NULL)
            peer_pump(p);
        usleep(200);
    }
}

static void close_and_free(struct tleg *t, struct peer *p)
{
    leg_close(&t->leg);
    leg_close(&t->leg); /* idempotent */
    ck_assert_int_eq(uv_run(w->loop, UV_RUN_DEFAULT), 0);
    tleg_free(t);
    if (p != NULL)
        peer_free(p);
}

static bool set_up(struct tleg *t, struct peer *p)
{
    (void)p;
    return t->setups > 0;
}

/*
 * A leg and its connector with the set-up done: the ClientHello goes as
 * the preamble's extra bytes (as bridge.c hands them over), then the
 * handshake runs over the socket, then the token (and after, when given).
 */
static void start_pair(struct tleg **tp, struct peer *p, const uint8_t *tok, const void *after,
                       size_t after_len)
{
    int fds[2];
    char err[256];
    netpair_tcp(fds, SOCK_CLOEXEC | SOCK_NONBLOCK);
    struct tleg *t = tleg_new();
    peer_init(p, fds[0]);
    ck_assert_int_eq(tlsio_handshake(&p->t), TLS_WANT);
    uint8_t hello[4096];
    size_t hn = tlsio_take(&p->t, hello, sizeof(hello));
    ck_assert_uint_gt(hn, 0);
    ck_assert_int_eq(
        leg_bridge_start(&t->leg, fds[1], srv_ctx, hello, hn, token, setup_cb, t, err, sizeof(err)),
        0);
    ck_assert_int_eq(t->setups, 0); /* never from inside leg_bridge_start */
    peer_write(p, tok, BRIDGE_TOKEN_LEN);
    if (after_len > 0)
        peer_write(p, after, after_len);
    *tp = t;
}

static bool got_hello(struct tleg *t, struct peer *p)
{
    (void)p;
    return t->in_len == 5;
}

static bool both_big(struct tleg *t, struct peer *p)
{
    return t->in_len == BIG && p->in_len == BIG;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(i * seed + 7);
}

START_TEST(test_setup_then_both_ways)
{
    struct peer p;
    struct tleg *t;
    start_pair(&t, &p, token, "hello", 5);
    run_until(t, &p, set_up);
    ck_assert_int_eq(t->setup, LEG_BRIDGE_UP);
    ck_assert_int_eq(t->setups, 1);
    /* The bytes behind the token wait: the leg does not read yet. */
    run_idle(t, &p, 20);
    ck_assert_uint_eq(t->in_len, 0);
    ck_assert_int_eq(leg_read_start(&t->leg), 0);
    ck_assert_uint_eq(t->in_len, 0); /* never inside read_start */
    run_until(t, &p, got_hello);
    ck_assert_mem_eq(t->in, "hello", 5);
    t->in_len = 0;

    uint8_t *a = malloc(BIG), *b = malloc(BIG);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    fill(a, BIG, 31);
    fill(b, BIG, 17);
    ck_assert_int_eq(leg_send(&t->leg, a, BIG), 0);
    peer_write(&p, b, BIG);
    run_until(t, &p, both_big);
    ck_assert_mem_eq(p.in, a, BIG);
    ck_assert_mem_eq(t->in, b, BIG);
    ck_assert(!t->failed);
    ck_assert(t->drained);
    ck_assert_uint_eq(leg_backlog(&t->leg), 0);
    ck_assert_uint_eq(leg_write_queue(&t->leg), 0);
    leg_tls_release(&t->leg); /* the outer TLS's buffers, idle: given back */
    free(a);
    free(b);
    close_and_free(t, &p);
}
END_TEST

static bool got_big(struct tleg *t, struct peer *p)
{
    (void)p;
    return t->in_len == BIG;
}

static bool got_some(struct tleg *t, struct peer *p)
{
    (void)p;
    return t->in_len > 0 && t->stop_after == 0;
}

/* Backpressure: a leg that stops reading mid-stream is told nothing more
 * (what came stays in the outer TLS and the kernel) until it reads again,
 * then gets everything, in order, from the loop. */
START_TEST(test_read_stop_holds_plaintext)
{
    struct peer p;
    struct tleg *t;
    start_pair(&t, &p, token, NULL, 0);
    run_until(t, &p, set_up);
    ck_assert_int_eq(t->setup, LEG_BRIDGE_UP);
    uint8_t *b = malloc(BIG);
    ck_assert_ptr_nonnull(b);
    fill(b, BIG, 13);
    t->stop_after = 1000;
    ck_assert_int_eq(leg_read_start(&t->leg), 0);
    peer_write(&p, b, BIG);
    run_until(t, &p, got_some);
    size_t first = t->in_len;
    ck_assert_uint_lt(first, BIG);
    run_idle(t, &p, 50);
    ck_assert_uint_eq(t->in_len, first); /* nothing while stopped */
    ck_assert_int_eq(leg_read_start(&t->leg), 0);
    ck_assert_uint_eq(t->in_len, first); /* nor inside read_start */
    run_until(t, &p, got_big);
    ck_assert_mem_eq(t->in, b, BIG);
    free(b);
    close_and_free(t, &p);
}
END_TEST

static bool got_eof(struct tleg *t, struct peer *p)
{
    (void)p;
    return t->eof;
}

/* The connector's close_notify is the leg's EOF, after the bytes before it. */
START_TEST(test_close_notify_is_eof)
{
    struct peer p;
    struct tleg *t;
    start_pair(&t, &p, token, NULL, 0);
    run_until(t, &p, set_up);
    ck_assert_int_eq(leg_read_start(&t->leg), 0);
    peer_write(&p, "bye", 3);
    p.shut = true; /* close_notify after it */
    run_until(t, &p, got_eof);
    ck_assert_uint_eq(t->in_len, 3);
    ck_assert(!t->failed);
    close_and_free(t, &p);
}
END_TEST

/* A connector killed: TCP EOF without close_notify is EOF too. */
START_TEST(test_tcp_eof_is_eof)
{
    struct peer p;
    struct tleg *t;
    start_pair(&t, &p, token, "last", 4);
    run_until(t, &p, set_up);
    run_idle(t, &p, 10); /* "last" is in the outer TLS before the FIN */
    ck_assert_int_eq(shutdown(p.fd, SHUT_WR), 0);
    run_idle(t, NULL, 10);
    ck_assert_int_eq(leg_read_start(&t->leg), 0);
    run_until(t, &p, got_eof);
    ck_assert_uint_eq(t->in_len, 4);
    ck_assert_mem_eq(t->in, "last", 4);
    close_and_free(t, &p);
}
END_TEST

static bool shut_seen(struct tleg *t, struct peer *p)
{
    return t->shut && p->tls_eof && p->tcp_eof;
}

/* leg_shutdown: close_notify, then FIN, then LEG_SHUT. */
START_TEST(test_shutdown)
{
    struct peer p;
    struct tleg *t;
    start_pair(&t, &p, token, NULL, 0);
    run_until(t, &p, set_up);
    ck_assert_int_eq(leg_send(&t->leg, "done", 4), 0);
    ck_assert_int_eq(leg_shutdown(&t->leg), 0);
    run_until(t, &p, shut_seen);
    ck_assert_uint_eq(p.in_len, 4);
    ck_assert_mem_eq(p.in, "done", 4);
    close_and_free(t, &p);
}
END_TEST

START_TEST(test_wrong_token)
{
    struct peer p;
    struct tleg *t;
    uint8_t other[BRIDGE_TOKEN_LEN];
    memcpy(other, token, sizeof(other));
    other[BRIDGE_TOKEN_LEN - 1] ^= 1;
    start_pair(&t, &p, other, NULL, 0);
    run_until(t, &p, set_up);
    ck_assert_int_eq(t->setup, LEG_BRIDGE_BAD_TOKEN);
    ck_assert_ptr_nonnull(strstr(t->why, "did not present this stream's token"));
    close_and_free(t, &p);
}
END_TEST

/* Half a token, then the connector goes: LOST. */
START_TEST(test_eof_before_token)
{
    struct peer p;
    struct tleg *t;
    int fds[2];
    char err[256];
    netpair_tcp(fds, SOCK_CLOEXEC | SOCK_NONBLOCK);
    t = tleg_new();
    peer_init(&p, fds[0]);
    ck_assert_int_eq(
        leg_bridge_start(&t->leg, fds[1], srv_ctx, NULL, 0, token, setup_cb, t, err, sizeof(err)),
        0);
    peer_write(&p, token, 10); /* queued until the handshake is done */
    for (int i = 0; i < 50000 && !p.up; i++) {
        uv_run(w->loop, UV_RUN_NOWAIT);
        if (!peer_pump(&p))
            usleep(100);
    }
    ck_assert(p.up);
    run_idle(t, &p, 10);
    ck_assert_int_eq(t->setups, 0);
    ck_assert_int_eq(shutdown(p.fd, SHUT_WR), 0);
    run_until(t, &p, set_up);
    ck_assert_int_eq(t->setup, LEG_BRIDGE_LOST);
    ck_assert_ptr_nonnull(strstr(t->why, "token"));
    close_and_free(t, &p);
}
END_TEST

/* Not TLS at all: the handshake fails. */
START_TEST(test_handshake_garbage)
{
    struct tleg *t = tleg_new();
    int fds[2];
    char err[256];
    netpair_tcp(fds, SOCK_CLOEXEC | SOCK_NONBLOCK);
    static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
    ck_assert_int_eq(leg_bridge_start(&t->leg, fds[1], srv_ctx, (const uint8_t *)junk,
                                      sizeof(junk) - 1, token, setup_cb, t, err, sizeof(err)),
                     0);
    run_until(t, NULL, set_up);
    ck_assert_int_eq(t->setup, LEG_BRIDGE_TLS_FAILED);
    ck_assert_str_ne(t->why, "");
    close(fds[0]);
    close_and_free(t, NULL);
}
END_TEST

/* Closed during its set-up: the set-up never reports, the close does. */
START_TEST(test_close_during_setup)
{
    struct tleg *t = tleg_new();
    int fds[2];
    char err[256];
    netpair_tcp(fds, SOCK_CLOEXEC | SOCK_NONBLOCK);
    ck_assert_int_eq(
        leg_bridge_start(&t->leg, fds[1], srv_ctx, NULL, 0, token, setup_cb, t, err, sizeof(err)),
        0);
    close(fds[0]);      /* the EOF would be a set-up failure... */
    leg_close(&t->leg); /* ...but the leg is closed first */
    ck_assert_int_eq(uv_run(w->loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(t->setups, 0);
    tleg_free(t);
}
END_TEST

/* A leg opened but never given a descriptor closes cleanly too, and a
 * descriptor refused leaves it the caller's. */
START_TEST(test_open_without_descriptor)
{
    struct tleg *t = tleg_new();
    char err[256];
    ck_assert_int_eq(
        leg_bridge_start(&t->leg, -1, srv_ctx, NULL, 0, token, setup_cb, t, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "bridge connection"));
    leg_bridge_detach(&t->leg);
    close_and_free(t, NULL);
}
END_TEST

Suite *leg_bridge_suite(void)
{
    Suite *s = suite_create("leg_bridge");
    TCase *tc = tcase_create("leg_bridge");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_setup_then_both_ways);
    tcase_add_test(tc, test_read_stop_holds_plaintext);
    tcase_add_test(tc, test_close_notify_is_eof);
    tcase_add_test(tc, test_tcp_eof_is_eof);
    tcase_add_test(tc, test_shutdown);
    tcase_add_test(tc, test_wrong_token);
    tcase_add_test(tc, test_eof_before_token);
    tcase_add_test(tc, test_handshake_garbage);
    tcase_add_test(tc, test_close_during_setup);
    tcase_add_test(tc, test_open_without_descriptor);
    suite_add_tcase(s, tc);
    return s;
}
