/*
 * tlsio: two sessions wired back to back through memory, no sockets.
 * The certificate is made in-process, so no key file is ever written.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "suites.h"
#include "tlsio.h"

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
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"unit.test", -1, -1,
                               0);
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

static void free_ctx(void)
{
    SSL_CTX_free(srv_ctx);
    SSL_CTX_free(cli_ctx);
}

/* Move everything one side has written to the other. */
static size_t shuttle(struct tlsio *from, struct tlsio *to)
{
    unsigned char buf[4096];
    size_t total = 0, n;
    while ((n = tlsio_take(from, buf, sizeof(buf))) > 0) {
        ck_assert_int_eq(tlsio_feed(to, buf, n), 0);
        total += n;
    }
    return total;
}

static void handshake(struct tlsio *s, struct tlsio *c)
{
    enum tls_res rs = TLS_WANT, rc = TLS_WANT;
    for (int i = 0; i < 10 && (rs != TLS_OK || rc != TLS_OK); i++) {
        rc = tlsio_handshake(c);
        shuttle(c, s);
        rs = tlsio_handshake(s);
        shuttle(s, c);
        ck_assert_int_ne(rc, TLS_ERR);
        ck_assert_int_ne(rs, TLS_ERR);
    }
    ck_assert_int_eq(rs, TLS_OK);
    ck_assert_int_eq(rc, TLS_OK);
}

START_TEST(test_handshake_and_data)
{
    struct tlsio s, c;
    char err[128];
    unsigned char big[100000], out[100000];
    size_t got = 0, n;

    ck_assert_int_eq(tlsio_init(&s, srv_ctx, true, err, sizeof(err)), 0);
    ck_assert_int_eq(tlsio_init(&c, cli_ctx, false, err, sizeof(err)), 0);
    handshake(&s, &c);
    ck_assert_str_eq(tlsio_version(&c), "TLSv1.3");

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 7);
    ck_assert_int_eq(tlsio_write(&c, big, sizeof(big)), 0);
    ck_assert_uint_gt(tlsio_pending(&c), sizeof(big));
    shuttle(&c, &s);
    /* Everything must come out without another feed: drain until WANT. */
    while (tlsio_read(&s, out + got, sizeof(out) - got, &n) == TLS_OK)
        got += n;
    ck_assert_uint_eq(got, sizeof(big));
    ck_assert_mem_eq(out, big, sizeof(big));

    tlsio_shutdown(&c);
    shuttle(&c, &s);
    ck_assert_int_eq(tlsio_read(&s, out, sizeof(out), &n), TLS_EOF);
    tlsio_free(&s);
    tlsio_free(&c);
}
END_TEST

/*
 * The byte queues: ciphertext taken in place in uneven slices (peek +
 * consume, as the relay writes it) and fed one byte at a time must carry
 * the stream intact; idle queues are given back by tlsio_release.
 */
START_TEST(test_queues_peek_consume_and_release)
{
    struct tlsio s, c;
    char err[128];
    static unsigned char big[200000], out[200000];
    size_t got = 0, n;

    ck_assert_int_eq(tlsio_init(&s, srv_ctx, true, err, sizeof(err)), 0);
    ck_assert_int_eq(tlsio_init(&c, cli_ctx, false, err, sizeof(err)), 0);
    handshake(&s, &c);
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 13 + 5);
    ck_assert_int_eq(tlsio_write(&c, big, sizeof(big)), 0);
    size_t slice = 1;
    for (;;) {
        const unsigned char *p = NULL;
        size_t avail = tlsio_peek(&c, &p);
        if (avail == 0) {
            ck_assert_ptr_null(p);
            break;
        }
        ck_assert_uint_eq(avail, tlsio_pending(&c));
        size_t k = slice < avail ? slice : avail;
        if (k < 64) { /* small slices: byte by byte into the peer */
            for (size_t i = 0; i < k; i++)
                ck_assert_int_eq(tlsio_feed(&s, p + i, 1), 0);
        } else {
            ck_assert_int_eq(tlsio_feed(&s, p, k), 0);
        }
        tlsio_consume(&c, k);
        ck_assert_uint_eq(tlsio_pending(&c), avail - k);
        slice = slice * 3 + 1; /* 1, 4, 13, 40, 121, ... */
        while (tlsio_read(&s, out + got, sizeof(out) - got, &n) == TLS_OK)
            got += n;
    }
    ck_assert_uint_eq(got, sizeof(big));
    ck_assert_mem_eq(out, big, sizeof(big));
    /* Everything consumed: the queues and OpenSSL's buffers go. */
    tlsio_release(&s);
    tlsio_release(&c);
    ck_assert_ptr_null(s.rx.data);
    ck_assert_ptr_null(c.tx.data);
    /* ... and come back when needed. */
    ck_assert_int_eq(tlsio_write(&s, "pong", 4), 0);
    shuttle(&s, &c);
    ck_assert_int_eq(tlsio_read(&c, out, sizeof(out), &n), TLS_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_mem_eq(out, "pong", 4);
    tlsio_free(&s);
    tlsio_free(&c);
}
END_TEST

START_TEST(test_garbage_is_error)
{
    struct tlsio s;
    char err[128];
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    ck_assert_int_eq(tlsio_init(&s, srv_ctx, true, err, sizeof(err)), 0);
    ck_assert_int_eq(tlsio_feed(&s, junk, sizeof(junk) - 1), 0);
    ck_assert_int_eq(tlsio_handshake(&s), TLS_ERR);
    char e[128];
    ck_assert_str_ne(tlsio_error(e, sizeof(e)), "");
    tlsio_free(&s);
}
END_TEST

START_TEST(test_untrusted_server_fails_verification)
{
    struct tlsio s, c;
    char err[128];
    SSL_CTX *strict = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(strict, SSL_VERIFY_PEER, NULL); /* empty trust store */

    ck_assert_int_eq(tlsio_init(&s, srv_ctx, true, err, sizeof(err)), 0);
    ck_assert_int_eq(tlsio_init(&c, strict, false, err, sizeof(err)), 0);
    enum tls_res rc = TLS_WANT;
    for (int i = 0; i < 10 && rc == TLS_WANT; i++) {
        rc = tlsio_handshake(&c);
        shuttle(&c, &s);
        tlsio_handshake(&s);
        shuttle(&s, &c);
    }
    ck_assert_int_eq(rc, TLS_ERR);
    ck_assert_int_ne(SSL_get_verify_result(c.ssl), X509_V_OK);
    tlsio_free(&s);
    tlsio_free(&c);
    SSL_CTX_free(strict);
}
END_TEST

#ifdef __GLIBC__
#include <malloc.h>

/* tlsio_mem_*: OpenSSL's allocator (tlsio_mem_init). Called directly here:
 * the unit-test process has long allocated through OpenSSL. */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 31u + seed);
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(i * 31u + seed))
            return 0;
    return 1;
}

START_TEST(test_mem_small_is_malloc)
{
    unsigned char *p = tlsio_mem_malloc(100, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_lt(malloc_usable_size(p), 16 * 1024);
    fill(p, 100, 1);
    p = tlsio_mem_realloc(p, 4000, __FILE__, __LINE__); /* stays small */
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_lt(malloc_usable_size(p), 16 * 1024);
    ck_assert(same(p, 100, 1));
    tlsio_mem_free(p, __FILE__, __LINE__);
    tlsio_mem_free(NULL, __FILE__, __LINE__);
}
END_TEST

START_TEST(test_mem_big_blocks_kept_and_reused)
{
    tlsio_mem_trim(); /* nothing kept from an earlier test */
    /* as tlsio_mem_init: blocks given back are unmapped, not left in the heap */
    (void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    unsigned char *a = tlsio_mem_malloc(17 * 1024, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_ge(malloc_usable_size(a), 128 * 1024);
    fill(a, 128 * 1024, 2); /* the whole block is the caller's */
    tlsio_mem_free(a, __FILE__, __LINE__);
    unsigned char *b = tlsio_mem_malloc(64 * 1024, __FILE__, __LINE__);
    ck_assert_ptr_eq(b, a); /* the kept block serves the next big request */
    /* A big block has the room for any big size: realloc keeps it. */
    ck_assert_ptr_eq(tlsio_mem_realloc(b, 128 * 1024, __FILE__, __LINE__), b);
    ck_assert_ptr_eq(tlsio_mem_realloc(b, 20 * 1024, __FILE__, __LINE__), b);
    tlsio_mem_free(b, __FILE__, __LINE__);
    tlsio_mem_tick(10000); /* b was reused since the last check: kept */
    unsigned char *c = tlsio_mem_malloc(30 * 1024, __FILE__, __LINE__);
    ck_assert_ptr_eq(c, a);
    fill(c + 64, 8192, 7); /* a kept block keeps it; a fresh mapping is zeros */
    tlsio_mem_free(c, __FILE__, __LINE__);
    tlsio_mem_tick(11000); /* reused again: kept */
    tlsio_mem_tick(11500); /* another worker, within the second: nothing */
    c = tlsio_mem_malloc(30 * 1024, __FILE__, __LINE__);
    ck_assert_ptr_eq(c, a);
    ck_assert(same(c + 64, 8192, 7)); /* still the kept block */
    tlsio_mem_free(c, __FILE__, __LINE__);
    tlsio_mem_tick(12000); /* reused since 11000: kept */
    tlsio_mem_tick(13000); /* none reused since: given back */
    c = tlsio_mem_malloc(30 * 1024, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(c);
    tlsio_mem_free(c, __FILE__, __LINE__);
    tlsio_mem_trim();
}
END_TEST

START_TEST(test_mem_realloc_across_the_range)
{
    /* small -> big: the contents move */
    unsigned char *p = tlsio_mem_malloc(1000, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(p);
    fill(p, 1000, 3);
    p = tlsio_mem_realloc(p, 40 * 1024, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(malloc_usable_size(p), 128 * 1024);
    ck_assert(same(p, 1000, 3));
    /* big -> more than BIG_BLOCK: malloc's realloc, contents kept */
    fill(p, 128 * 1024, 4);
    p = tlsio_mem_realloc(p, 300 * 1024, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(p);
    ck_assert(same(p, 128 * 1024, 4));
    /* more than BIG_BLOCK shrinking into the big range: only what fits is
     * copied (a copy of the old usable size would overrun the new block) */
    fill(p, 300 * 1024, 5);
    p = tlsio_mem_realloc(p, 50 * 1024, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(p);
    ck_assert(same(p, 50 * 1024, 5));
    /* big -> small: malloc's realloc (a kept block is never shrunk) */
    p = tlsio_mem_realloc(p, 100, __FILE__, __LINE__);
    ck_assert_ptr_nonnull(p);
    ck_assert(same(p, 100, 5));
    ck_assert_ptr_null(tlsio_mem_realloc(p, 0, __FILE__, __LINE__)); /* frees */
    tlsio_mem_trim();
}
END_TEST
#endif

Suite *tlsio_suite(void)
{
    Suite *s = suite_create("tlsio");
    TCase *tc = tcase_create("memory-bio");
    tcase_add_unchecked_fixture(tc, make_ctx, free_ctx);
    tcase_add_test(tc, test_handshake_and_data);
    tcase_add_test(tc, test_queues_peek_consume_and_release);
    tcase_add_test(tc, test_garbage_is_error);
    tcase_add_test(tc, test_untrusted_server_fails_verification);
#ifdef __GLIBC__
    tcase_add_test(tc, test_mem_small_is_malloc);
    tcase_add_test(tc, test_mem_big_blocks_kept_and_reused);
    tcase_add_test(tc, test_mem_realloc_across_the_range);
#endif
    suite_add_tcase(s, tc);
    return s;
}
