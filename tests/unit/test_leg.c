/*
 * leg: the leg layer over a transport of the test's own (struct
 * leg_transport in memory, as a bridge stream would plug in): the events a
 * leg reports (raw bytes, TLS ready and failed, plaintext waiting, EOF,
 * errors, drained, closed), its write accounting, and TLS between two legs
 * wired back to back. No sockets; the worker's loop only gives the clock
 * and is closed at the end of every test (uv_loop_close() == 0).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "leg.h"
#include "suites.h"
#include "worker.h"

#define MEM_OUT ((size_t)256 * 1024)
#define MAX_EVENTS 64

/* A leg on a memory transport; the leg comes first (container). */
struct memleg {
    struct leg leg;
    bool take_all; /* try_write takes everything (else nothing: queued) */
    bool closing;
    bool shutdown_asked;
    uint8_t out[MEM_OUT]; /* what the transport "sent" */
    size_t out_len;
    struct chunk *pending[16]; /* queued writes, completed by the test */
    size_t npending;
    enum leg_event ev[MAX_EVENTS];
    size_t nev;
    char text[160]; /* the last event's bytes (NUL-terminated) */
};

static struct memleg *mem(struct leg *l)
{
    return (struct memleg *)l;
}

static int m_read_start(struct leg *l)
{
    (void)l;
    return 0;
}

static void m_read_stop(struct leg *l)
{
    (void)l;
}

static int m_try_write(struct leg *l, const uint8_t *p, size_t len)
{
    struct memleg *m = mem(l);
    if (!m->take_all)
        return 0;
    ck_assert_uint_le(m->out_len + len, MEM_OUT);
    memcpy(m->out + m->out_len, p, len);
    m->out_len += len;
    return (int)len;
}

static int m_write(struct leg *l, struct chunk *ch)
{
    struct memleg *m = mem(l);
    ck_assert_uint_lt(m->npending, 16);
    m->pending[m->npending++] = ch;
    return 0;
}

static size_t m_write_queue(const struct leg *l)
{
    const struct memleg *m = (const struct memleg *)l;
    size_t n = 0;
    for (size_t i = 0; i < m->npending; i++)
        n += m->pending[i]->len;
    return n;
}

static int m_shutdown(struct leg *l)
{
    mem(l)->shutdown_asked = true;
    return 0;
}

static void m_close(struct leg *l)
{
    mem(l)->closing = true;
}

static bool m_closing(const struct leg *l)
{
    return ((const struct memleg *)l)->closing;
}

static const struct leg_transport mem_transport = {
    .name = "memory",
    .read_start = m_read_start,
    .read_stop = m_read_stop,
    .try_write = m_try_write,
    .write = m_write,
    .write_queue = m_write_queue,
    .shutdown = m_shutdown,
    .close = m_close,
    .closing = m_closing,
};

static void on_event(struct leg *l, enum leg_event ev, const uint8_t *buf, size_t len)
{
    struct memleg *m = mem(l);
    ck_assert_uint_lt(m->nev, MAX_EVENTS);
    m->ev[m->nev++] = ev;
    size_t n = len < sizeof(m->text) - 1 ? len : sizeof(m->text) - 1;
    if (buf != NULL)
        memcpy(m->text, buf, n);
    m->text[buf != NULL ? n : 0] = '\0';
}

static bool saw(const struct memleg *m, enum leg_event ev)
{
    for (size_t i = 0; i < m->nev; i++)
        if (m->ev[i] == ev)
            return true;
    return false;
}

static struct worker *w;

static void setup(void)
{
    w = calloc(1, sizeof(*w));
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(uv_loop_init(&w->loop_storage), 0);
    w->loop = &w->loop_storage;
}

static void teardown(void)
{
    leg_chunk_cache_free(w);
    ck_assert_int_eq(uv_loop_close(w->loop), 0);
    free(w);
}

static struct memleg *memleg_new(bool take_all)
{
    struct memleg *m = calloc(1, sizeof(*m));
    ck_assert_ptr_nonnull(m);
    leg_init(&m->leg, NULL, w, on_event);
    m->leg.tp = &mem_transport;
    m->leg.open = true;
    m->take_all = take_all;
    return m;
}

static void memleg_free(struct memleg *m)
{
    leg_close(&m->leg);
    ck_assert(m->closing);
    leg_transport_closed(&m->leg);
    ck_assert_int_eq(m->ev[m->nev - 1], LEG_CLOSED);
    ck_assert(!m->leg.open);
    leg_free(&m->leg);
    free(m);
}

START_TEST(raw_eof_error)
{
    struct memleg *m = memleg_new(true);
    ck_assert_int_eq(leg_read_start(&m->leg), 0);
    leg_transport_read(&m->leg, 3, (const uint8_t *)"abc");
    ck_assert_uint_eq(m->nev, 1);
    ck_assert_int_eq(m->ev[0], LEG_RAW);
    ck_assert_str_eq(m->text, "abc");
    leg_transport_read(&m->leg, 0, NULL); /* EAGAIN: nothing */
    ck_assert_uint_eq(m->nev, 1);
    leg_transport_read(&m->leg, UV_ECONNRESET, NULL);
    ck_assert_int_eq(m->ev[1], LEG_ERROR);
    ck_assert_ptr_nonnull(strstr(m->text, "read failed"));
    ck_assert(m->leg.eof);
    ck_assert(!m->leg.reading);
    leg_transport_read(&m->leg, UV_EOF, NULL);
    ck_assert_int_eq(m->ev[2], LEG_EOF);
    memleg_free(m);
}
END_TEST

/* What the transport does not take is queued in chunks, counted at their
 * capacity; a completion reports DRAINED, a failed one WRITE_FAILED. */
START_TEST(write_accounting)
{
    struct memleg *m = memleg_new(true);
    ck_assert_int_eq(leg_send(&m->leg, "S", 1), 0);
    ck_assert_uint_eq(m->out_len, 1);
    ck_assert_uint_eq(m->leg.sent, 1);
    ck_assert_uint_eq(leg_backlog(&m->leg), 0);

    m->take_all = false;
    ck_assert_int_eq(leg_send(&m->leg, "0123456789", 10), 0);
    ck_assert_uint_eq(m->npending, 1);
    ck_assert_uint_eq(m->leg.queued, CHUNK_SMALL); /* what it costs */
    ck_assert_uint_eq(leg_write_queue(&m->leg), 10);
    ck_assert(leg_unsent(&m->leg));
    ck_assert_int_eq(leg_send(&m->leg, "x", 1), 0); /* behind a queued write: queued too */
    ck_assert_uint_eq(m->npending, 2);

    leg_transport_written(m->pending[0], 0);
    ck_assert_int_eq(m->ev[m->nev - 1], LEG_DRAINED);
    ck_assert_uint_eq(m->leg.queued, CHUNK_SMALL);
    leg_transport_written(m->pending[1], UV_EPIPE);
    ck_assert_int_eq(m->ev[m->nev - 1], LEG_WRITE_FAILED);
    ck_assert_ptr_nonnull(strstr(m->text, "write failed"));
    ck_assert_uint_eq(m->leg.queued, 0);
    ck_assert(!leg_unsent(&m->leg));

    ck_assert_int_eq(leg_shutdown(&m->leg), 0);
    ck_assert(m->shutdown_asked);
    ck_assert_int_ne(leg_shutdown(&m->leg), 0); /* once */
    leg_transport_shut(&m->leg, 0);
    ck_assert_int_eq(m->ev[m->nev - 1], LEG_SHUT);
    memleg_free(m);
}
END_TEST

/* A closing leg owes nothing: its writes in flight are cancelled without
 * LEG_DRAINED, so a drain that counted them would wait out its timeout. */
START_TEST(closing_leg_owes_nothing)
{
    struct memleg *m = memleg_new(false);
    ck_assert_int_eq(leg_send(&m->leg, "0123456789", 10), 0);
    ck_assert_uint_eq(m->npending, 1);
    ck_assert(leg_unsent(&m->leg));
    leg_close(&m->leg);
    ck_assert(!leg_unsent(&m->leg));
    size_t nev = m->nev;
    leg_transport_written(m->pending[0], UV_ECANCELED);
    ck_assert_uint_eq(m->nev, nev); /* nothing reported once closing */
    ck_assert_uint_eq(m->leg.queued, 0);
    memleg_free(m);
}
END_TEST

static SSL_CTX *srv_ctx, *cli_ctx;

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
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"leg.test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);
    srv_ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate(srv_ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(srv_ctx, key), 1);
    cli_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(cli_ctx, SSL_VERIFY_PEER, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(cli_ctx), x);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* What one leg's transport sent, read by the other's. */
static void shuttle(struct memleg *from, struct memleg *to)
{
    static uint8_t buf[MEM_OUT];
    size_t n = from->out_len;
    if (n == 0)
        return;
    memcpy(buf, from->out, n);
    from->out_len = 0;
    leg_transport_read(&to->leg, (ssize_t)n, buf);
}

START_TEST(tls_back_to_back)
{
    make_ctx();
    struct memleg *s = memleg_new(true), *c = memleg_new(true);
    char err[200];
    ck_assert_int_eq(leg_tls_init(&s->leg, srv_ctx, true, err, sizeof(err)), 0);
    ck_assert_int_eq(leg_tls_init(&c->leg, cli_ctx, false, err, sizeof(err)), 0);
    /* before leg_tls_begin, reads are the owner's: an upstream's 'S' */
    leg_transport_read(&c->leg, 1, (const uint8_t *)"S");
    ck_assert_int_eq(c->ev[0], LEG_RAW);
    leg_tls_begin(&s->leg);
    leg_tls_begin(&c->leg);
    leg_tls_step(&c->leg); /* the ClientHello */
    for (int i = 0; i < 10 && !(saw(s, LEG_TLS_READY) && saw(c, LEG_TLS_READY)); i++) {
        /* the last flight of a side that is done is the owner's to flush */
        ck_assert_int_eq(leg_flush(&c->leg), 0);
        ck_assert_int_eq(leg_flush(&s->leg), 0);
        shuttle(c, s);
        shuttle(s, c);
    }
    ck_assert(saw(s, LEG_TLS_READY));
    ck_assert(saw(c, LEG_TLS_READY));
    ck_assert_str_eq(leg_tls_version(&c->leg), "TLSv1.3");
    ck_assert_ptr_nonnull(leg_ssl(&c->leg));

    /* plaintext: written, flushed, fed, reported, read */
    ck_assert_int_eq(leg_write_plain(&s->leg, "hello", 5), 0);
    ck_assert_int_eq(leg_flush(&s->leg), 0);
    size_t before = c->nev;
    shuttle(s, c);
    ck_assert_uint_gt(c->nev, before);
    ck_assert_int_eq(c->ev[c->nev - 1], LEG_DATA);
    char got[16];
    size_t n = 0, total = 0;
    enum tls_res r;
    while ((r = leg_read_plain(&c->leg, got + total, sizeof(got) - total, &n)) == TLS_OK)
        total += n;
    ck_assert_int_eq(r, TLS_WANT);
    ck_assert_uint_eq(total, 5);
    ck_assert_mem_eq(got, "hello", 5);

    /* lingering: bytes are dropped unseen, EOF still reported */
    ck_assert_int_eq(leg_write_plain(&s->leg, "more", 4), 0);
    ck_assert_int_eq(leg_flush(&s->leg), 0);
    ck_assert_int_eq(leg_tls_close(&s->leg), 0);
    leg_read_stop(&c->leg);
    ck_assert_int_eq(leg_read_discard(&c->leg), 0);
    before = c->nev;
    shuttle(s, c);
    ck_assert_uint_eq(c->nev, before);
    leg_transport_read(&c->leg, UV_EOF, NULL);
    ck_assert_int_eq(c->ev[c->nev - 1], LEG_EOF);

    memleg_free(s);
    memleg_free(c);
    SSL_CTX_free(srv_ctx);
    SSL_CTX_free(cli_ctx);
}
END_TEST

/* A client that does not trust the server's certificate: TLS_FAILED,
 * with the reason left for the owner to read. */
START_TEST(tls_failed)
{
    make_ctx();
    SSL_CTX *strict = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(strict, SSL_VERIFY_PEER, NULL);
    struct memleg *s = memleg_new(true), *c = memleg_new(true);
    char err[200];
    ck_assert_int_eq(leg_tls_init(&s->leg, srv_ctx, true, err, sizeof(err)), 0);
    ck_assert_int_eq(leg_tls_init(&c->leg, strict, false, err, sizeof(err)), 0);
    leg_tls_begin(&s->leg);
    leg_tls_begin(&c->leg);
    leg_tls_step(&c->leg);
    for (int i = 0; i < 10 && !saw(c, LEG_TLS_FAILED); i++) {
        shuttle(c, s);
        shuttle(s, c);
    }
    ck_assert(saw(c, LEG_TLS_FAILED));
    ck_assert(!saw(c, LEG_TLS_READY));
    ck_assert_int_ne(SSL_get_verify_result(leg_ssl(&c->leg)), X509_V_OK);
    leg_tls_error(err, sizeof(err));
    ck_assert_ptr_nonnull(strstr(err, "certificate"));
    memleg_free(s);
    memleg_free(c);
    SSL_CTX_free(strict);
    SSL_CTX_free(srv_ctx);
    SSL_CTX_free(cli_ctx);
}
END_TEST

Suite *leg_suite(void)
{
    Suite *s = suite_create("leg");
    TCase *tc = tcase_create("leg");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, raw_eof_error);
    tcase_add_test(tc, write_accounting);
    tcase_add_test(tc, closing_leg_owes_nothing);
    tcase_add_test(tc, tls_back_to_back);
    tcase_add_test(tc, tls_failed);
    suite_add_tcase(s, tc);
    return s;
}
