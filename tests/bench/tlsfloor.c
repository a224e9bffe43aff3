/*
 * tlsfloor: the TLS floor of one proxied session on this machine, OpenSSL alone.
 *
 *   tlsfloor N CERT KEY CA NAME
 *
 * A proxy that terminates TLS does, for every session, one full server-side
 * handshake (the front leg, CERT/KEY) and one full client-side handshake that
 * verifies the upstream's chain against CA and its name NAME (the back leg),
 * then holds both sessions while the client is idle; for every query it
 * decrypts the query from one leg and encrypts it to the other, and the same
 * for the result. This program does just that in one thread, the two ends of
 * each handshake talking through in-memory BIO pairs (no sockets, no event
 * loop, no protocol), and prints one line of key=value:
 *   server_us, client_us  thread CPU per handshake of each side (mean of N)
 *   pair_us               their sum: the least CPU a proxy spends per session
 *   idle_pair_kb          RSS growth per established pair held idle (N of
 *                         them), after SSL_free_buffers() and with the BIO
 *                         pair swapped for a null BIO (a proxy's sockets are
 *                         not TLS state)
 *   select_us             thread CPU of the TLS records of one pgbench -S
 *                         select: a QUERY_BYTES query and a RESULT_BYTES
 *                         result, each decrypted and encrypted once (mean of
 *                         SELECT_ROUNDS); what a TLS-terminating proxy adds
 *                         per select to a relay hop that has no TLS
 * scripts/bench.sh reads the proxy's CPU per connection and per select and
 * its memory per idle session against these (issue 17). TLS 1.3 (OpenSSL's
 * default), no session tickets and no session cache, as between libpq and
 * PostgreSQL. Exit 1 on any failure (a handshake or a verification that does
 * not succeed, a record that does not arrive whole).
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* clock_gettime, sysconf under -std=c17 */
#endif
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WARMUP_PAIRS 20 /* the first handshakes load providers and tables */
#define MAX_ROUNDS 16   /* a TLS 1.3 handshake needs 2 or 3 */
/* One pgbench -S select on the wire: its Query message (Q, length, "SELECT
 * abalance FROM pgbench_accounts WHERE aid = 123456;", NUL) and the result
 * (RowDescription of one int4 column, one DataRow, CommandComplete "SELECT
 * 1", ReadyForQuery). */
#define QUERY_BYTES 62
#define RESULT_BYTES 70
#define SELECT_ROUNDS 20000

static double thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long rss_kb(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

struct session {
    SSL *front; /* server side: what the client talks to */
    SSL *back;  /* client side: the verified leg to the upstream */
};

struct cost {
    double server_us, client_us;
};

/* One step of one side; 1 when its handshake is done, 0 to go on, -1 on error. */
static int step(SSL *ssl, double *spent)
{
    double t0 = thread_cpu_us();
    int r = SSL_do_handshake(ssl);
    *spent += thread_cpu_us() - t0;
    if (r == 1)
        return 1;
    return SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ ? 0 : -1;
}

/* A full handshake between a new front and a new back SSL; the back leg
 * verifies the chain and the name. */
static int open_session(SSL_CTX *server, SSL_CTX *client, const char *name, struct session *s,
                        struct cost *c)
{
    BIO *front_bio = NULL, *back_bio = NULL;
    s->front = SSL_new(server);
    s->back = SSL_new(client);
    if (s->front == NULL || s->back == NULL || BIO_new_bio_pair(&front_bio, 0, &back_bio, 0) != 1)
        return -1;
    SSL_set_bio(s->front, front_bio, front_bio);
    SSL_set_bio(s->back, back_bio, back_bio);
    SSL_set_accept_state(s->front);
    SSL_set_connect_state(s->back);
    if (SSL_set_tlsext_host_name(s->back, name) != 1 || SSL_set1_host(s->back, name) != 1)
        return -1;
    int front_done = 0, back_done = 0;
    for (int round = 0; !(front_done && back_done); round++) {
        if (round == MAX_ROUNDS)
            return -1;
        if (!back_done && (back_done = step(s->back, &c->client_us)) < 0)
            return -1;
        if (!front_done && (front_done = step(s->front, &c->server_us)) < 0)
            return -1;
    }
    return SSL_get_verify_result(s->back) == X509_V_OK ? 0 : -1;
}

/* What an idle proxied session keeps: the SSL objects, not the buffers nor
 * the transport (a null BIO stands for the socket). */
static void make_idle(struct session *s)
{
    SSL_set_bio(s->front, BIO_new(BIO_s_null()), NULL);
    SSL_set_bio(s->back, BIO_new(BIO_s_null()), NULL);
    SSL_free_buffers(s->front);
    SSL_free_buffers(s->back);
}

static void close_session(struct session *s)
{
    SSL_free(s->front);
    SSL_free(s->back);
}

/* One way of a select: encrypted by one leg, decrypted by its peer. */
static int pass_record(SSL *from, SSL *to, const unsigned char *buf, size_t len)
{
    unsigned char got[RESULT_BYTES > QUERY_BYTES ? RESULT_BYTES : QUERY_BYTES];
    size_t n = 0, m = 0;
    if (SSL_write_ex(from, buf, len, &n) != 1 || n != len)
        return -1;
    return SSL_read_ex(to, got, sizeof(got), &m) == 1 && m == len ? 0 : -1;
}

/* CPU per select of the records alone, over an established session. */
static int select_cost(struct session *s, double *us)
{
    unsigned char query[QUERY_BYTES], result[RESULT_BYTES];
    memset(query, 'q', sizeof(query));
    memset(result, 'r', sizeof(result));
    double t0 = thread_cpu_us();
    for (int i = 0; i < SELECT_ROUNDS; i++)
        if (pass_record(s->back, s->front, query, sizeof(query)) != 0 ||
            pass_record(s->front, s->back, result, sizeof(result)) != 0)
            return -1;
    *us = (thread_cpu_us() - t0) / SELECT_ROUNDS;
    return 0;
}

static int make_contexts(char **argv, SSL_CTX **server, SSL_CTX **client)
{
    *server = SSL_CTX_new(TLS_server_method());
    *client = SSL_CTX_new(TLS_client_method());
    if (*server == NULL || *client == NULL ||
        SSL_CTX_use_certificate_chain_file(*server, argv[2]) != 1 ||
        SSL_CTX_use_PrivateKey_file(*server, argv[3], SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(*client, argv[4], NULL) != 1)
        return -1;
    SSL_CTX_set_options(*server, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(*server, 0);
    SSL_CTX_set_session_cache_mode(*server, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_cache_mode(*client, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(*client, SSL_VERIFY_PEER, NULL);
    return 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "tlsfloor: %s\n", what);
    ERR_print_errors_fp(stderr);
    return 1;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long n = argc == 6 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 6 || *end != '\0' || n < 1 || n > 1000000) {
        fprintf(stderr, "usage: %s N CERT KEY CA NAME   (N: 1..1000000 sessions)\n", argv[0]);
        return 2;
    }
    SSL_CTX *server = NULL, *client = NULL;
    if (make_contexts(argv, &server, &client) != 0)
        return fail("cannot load the certificate, key or CA");
    struct cost c = {0, 0};
    double select_us = 0;
    for (int i = 0; i < WARMUP_PAIRS; i++) {
        struct session s = {NULL, NULL};
        int rc = open_session(server, client, argv[5], &s, &c);
        if (rc == 0 && i == WARMUP_PAIRS - 1)
            rc = select_cost(&s, &select_us);
        close_session(&s);
        if (rc != 0)
            return fail("warm-up handshake or select records failed");
    }
    struct session *held = calloc((size_t)n, sizeof(*held));
    if (held == NULL)
        return fail("out of memory");
    c = (struct cost){0, 0};
    long rss0 = rss_kb();
    for (long i = 0; i < n; i++) {
        if (open_session(server, client, argv[5], &held[i], &c) != 0)
            return fail("handshake or verification failed");
        make_idle(&held[i]);
    }
    long rss1 = rss_kb();
    printf("tls=\"%s\" pairs=%ld server_us=%.0f client_us=%.0f pair_us=%.0f idle_pair_kb=%.1f "
           "select_us=%.2f\n",
           OpenSSL_version(OPENSSL_VERSION), n, c.server_us / (double)n, c.client_us / (double)n,
           (c.server_us + c.client_us) / (double)n,
           rss0 < 0 || rss1 < 0 ? -1.0 : (double)(rss1 - rss0) / (double)n, select_us);
    for (long i = 0; i < n; i++)
        close_session(&held[i]);
    free(held);
    SSL_CTX_free(server);
    SSL_CTX_free(client);
    return 0;
}
