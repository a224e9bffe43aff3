/*
 * test_bridge.c - the bridge thread (src/bridge*.c) end to end over
 * loopback TCP, without the worker side: the results it would post to a
 * worker are captured (bridge_test_hooks). A connector is played by the
 * test with blocking sockets and OpenSSL: the preamble, TLS with ALPN,
 * HELLO, WELCOME, OPEN and its data connection, FAIL, heartbeats, REJECT
 * and BYE on a reload and on stop. Also the pieces on their own: the
 * choice of a connector, the "no connector" text, the reload decision.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "authfile.h"
#include "bridgeint.h"
#include "config.h"
#include "log.h"
#include "suites.h"

#define SECRET "Zm9vYmFyYmF6cXV4LXRlc3Qtc2VjcmV0LXRleHQtMDE"
#define SECRET2 "another-secret-for-the-rotation-test-xxxxxx"

/* ---- captured results and log lines ---- */

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cap_cond = PTHREAD_COND_INITIALIZER;
static struct bridge_result *results; /* newest first */
static char logbuf[65536];
static size_t loglen;

static void capture(void *arg, struct worker *w, struct bridge_result *r)
{
    (void)arg;
    ck_assert_ptr_eq(w, (struct worker *)&cap_lock); /* the worker that asked */
    pthread_mutex_lock(&cap_lock);
    r->next = results;
    results = r;
    pthread_cond_broadcast(&cap_cond);
    pthread_mutex_unlock(&cap_lock);
}

static void sink(void *arg, enum log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)level;
    pthread_mutex_lock(&cap_lock);
    if (loglen + len + 1 < sizeof(logbuf)) {
        memcpy(logbuf + loglen, line, len);
        loglen += len;
        logbuf[loglen++] = '\n';
        logbuf[loglen] = '\0';
    }
    pthread_mutex_unlock(&cap_lock);
}

static bool log_has(const char *needle)
{
    pthread_mutex_lock(&cap_lock);
    bool yes = strstr(logbuf, needle) != NULL;
    pthread_mutex_unlock(&cap_lock);
    return yes;
}

static unsigned log_count(const char *needle)
{
    unsigned n = 0;
    pthread_mutex_lock(&cap_lock);
    for (const char *p = strstr(logbuf, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    pthread_mutex_unlock(&cap_lock);
    return n;
}

/* The result for stream, waited for up to ms; taken from the list. */
static struct bridge_result *result_wait(uint64_t stream, unsigned ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&cap_lock);
    struct bridge_result *found = NULL;
    for (;;) {
        for (struct bridge_result **p = &results; *p != NULL; p = &(*p)->next)
            if ((*p)->stream == stream) {
                found = *p;
                *p = found->next;
                break;
            }
        if (found != NULL || pthread_cond_timedwait(&cap_cond, &cap_lock, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&cap_lock);
    ck_assert_msg(found != NULL, "no result for stream %llx", (unsigned long long)stream);
    return found;
}

/* ---- a private CA's leaf for 127.0.0.1, and the bridges file ---- */

static char dir[64], cert_path[128], key_path[128], file_path[128];
static X509 *leaf;

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ck_assert_ptr_nonnull(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}

static void make_identity(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(key);
    leaf = X509_new();
    X509_set_version(leaf, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(leaf), 7);
    X509_gmtime_adj(X509_getm_notBefore(leaf), -3600);
    X509_gmtime_adj(X509_getm_notAfter(leaf), 86400);
    X509_set_pubkey(leaf, key);
    X509_NAME *n = X509_get_subject_name(leaf);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"bridge.test", -1, -1,
                               0);
    X509_set_issuer_name(leaf, n);
    add_ext(leaf, NID_subject_alt_name, "DNS:bridge.test,IP:127.0.0.1");
    ck_assert_int_gt(X509_sign(leaf, key, EVP_sha256()), 0);
    snprintf(dir, sizeof(dir), "/tmp/pgtp-bridge-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    snprintf(key_path, sizeof(key_path), "%s/key.pem", dir);
    snprintf(file_path, sizeof(file_path), "%s/bridges.txt", dir);
    FILE *f = fopen(cert_path, "w");
    ck_assert_int_eq(PEM_write_X509(f, leaf), 1);
    fclose(f);
    f = fopen(key_path, "w");
    ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    EVP_PKEY_free(key);
}

/* The bridges file: each id with the verifier of its secret. */
static void write_bridges(const char *id1, const char *secret1, const char *id2,
                          const char *secret2)
{
    FILE *f = fopen(file_path, "w");
    ck_assert_ptr_nonnull(f);
    const char *ids[2] = {id1, id2}, *secrets[2] = {secret1, secret2};
    for (int i = 0; i < 2; i++) {
        if (ids[i] == NULL)
            continue;
        struct scram_secret s;
        char text[256];
        ck_assert_int_eq(scram_secret_make(secrets[i], 16, 4096, &s), 0);
        ck_assert_int_gt(scram_secret_format(&s, text, sizeof(text)), 0);
        fprintf(f, "\"%s\" \"%s\"\n", ids[i], text);
    }
    fclose(f);
}

static void cleanup_files(void)
{
    unlink(cert_path);
    unlink(key_path);
    unlink(file_path);
    rmdir(dir);
    X509_free(leaf);
    leaf = NULL;
}

/* ---- the test's connector ---- */

static unsigned port;

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void send_preamble(int fd, uint64_t stream)
{
    uint8_t pre[BRIDGE_PREAMBLE_LEN];
    bridge_preamble_encode(stream, pre);
    ck_assert_int_eq(send(fd, pre, sizeof(pre), 0), (ssize_t)sizeof(pre));
}

/* Stream 0 and TLS, verifying the proxy's certificate; alpn: offer ours. */
static int control_open(struct conn *c, const char *alpn)
{
    c->fd = tcp_connect();
    send_preamble(c->fd, 0);
    c->ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(c->ctx), leaf);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    SSL_set1_host(c->ssl, "127.0.0.1");
    if (alpn != NULL) {
        unsigned char wire[64];
        wire[0] = (unsigned char)strlen(alpn);
        memcpy(wire + 1, alpn, strlen(alpn));
        SSL_set_alpn_protos(c->ssl, wire, (unsigned)strlen(alpn) + 1);
    }
    SSL_set_fd(c->ssl, c->fd);
    int r = SSL_connect(c->ssl);
    ERR_clear_error();
    return r == 1 ? 0 : -1;
}

static void control_close(struct conn *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
    memset(c, 0, sizeof(*c));
}

static void send_frame(struct conn *c, uint8_t type, const char *const *kv)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), type);
    for (size_t i = 0; kv[i] != NULL; i += 2)
        bridge_frame_add(&f, kv[i], kv[i + 1]);
    int n = bridge_frame_end(&f);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(SSL_write(c->ssl, buf, n), n);
}

static bool read_full(struct conn *c, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        int r = SSL_read(c->ssl, p + got, (int)(n - got));
        if (r <= 0) {
            ERR_clear_error();
            return false;
        }
        got += (size_t)r;
    }
    return true;
}

/* The next frame's type (0: closed) and payload (NUL-terminated). */
static uint8_t read_frame(struct conn *c, char *payload, size_t cap)
{
    uint8_t h[BRIDGE_FRAME_HDR];
    if (!read_full(c, h, sizeof(h)))
        return 0;
    size_t n = (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | h[4];
    ck_assert_uint_lt(n, cap);
    ck_assert(read_full(c, (uint8_t *)payload, n));
    payload[n] = '\0';
    return h[0];
}

/* Frames until one of type want (PINGs are answered or not). */
static uint8_t read_until(struct conn *c, uint8_t want, char *payload, size_t cap, bool pong)
{
    for (;;) {
        uint8_t t = read_frame(c, payload, cap);
        if (t == BRIDGE_PING && want != BRIDGE_PING) {
            if (pong)
                send_frame(c, BRIDGE_PONG, (const char *const[]){"t", "x", NULL});
            continue;
        }
        return t;
    }
}

static void hello(struct conn *c, const char *id, const char *secret, const char *name)
{
    send_frame(c, BRIDGE_HELLO,
               (const char *const[]){"v", "1", "id", id, "secret", secret, "name", name, NULL});
}

/* A connector online: preamble, TLS, HELLO, WELCOME. */
static void connector_up(struct conn *c, const char *id, const char *secret, const char *name)
{
    ck_assert_int_eq(control_open(c, BRIDGE_ALPN), 0);
    hello(c, id, secret, name);
    char p[BRIDGE_FRAME_MAX + 1];
    ck_assert_int_eq(read_until(c, BRIDGE_WELCOME, p, sizeof(p), true), BRIDGE_WELCOME);
    ck_assert_ptr_nonnull(strstr(p, "heartbeat="));
    ck_assert_ptr_nonnull(strstr(p, "connector="));
}

static struct config cfg;

static void start(unsigned heartbeat_ms, unsigned timeout_ms)
{
    make_identity();
    write_bridges("db1", SECRET, "db2", SECRET2);
    port = free_port();
    static char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
    memset(&cfg, 0, sizeof(cfg));
    cfg.bridge_listen = listen;
    cfg.bridges_file = file_path;
    cfg.front_cert_path = cert_path;
    cfg.front_key_path = key_path;
    loglen = 0;
    logbuf[0] = '\0';
    log_set_sink(sink, NULL);
    bridge_test_hooks(capture, NULL, heartbeat_ms, timeout_ms);
    char err[512];
    ck_assert_msg(bridge_start(&cfg, NULL, 0, err, sizeof(err)) == 0, "%s", err);
    ck_assert(bridge_enabled());
}

static void stop(void)
{
    bridge_join();
    ck_assert(!bridge_enabled());
    ck_assert(!log_has("loop_close_failed")); /* every handle closed */
    bridge_test_hooks(NULL, NULL, 0, 0);
    log_set_sink(NULL, NULL);
    pthread_mutex_lock(&cap_lock);
    while (results != NULL) {
        struct bridge_result *r = results;
        results = r->next;
        bridge_result_free(r);
    }
    pthread_mutex_unlock(&cap_lock);
    cleanup_files();
}

static struct worker *const W = (struct worker *)&cap_lock; /* never dereferenced */

/* ---- the tests ---- */

START_TEST(test_open_and_data)
{
    start(0, 0);
    struct conn c;
    connector_up(&c, "db1", SECRET, "vpc-a");
    ck_assert(log_has("event=bridge_up bridge=db1 connector=\"vpc-a\""));

    uint8_t token[BRIDGE_TOKEN_LEN];
    for (int i = 0; i < BRIDGE_TOKEN_LEN; i++)
        token[i] = (uint8_t)i;
    bridge_open(W, 0x1122334455667788ull, token, "db1", "db.internal", 5432);
    char p[BRIDGE_FRAME_MAX + 1], tok[2 * BRIDGE_TOKEN_LEN + 1];
    ck_assert_int_eq(read_until(&c, BRIDGE_OPEN, p, sizeof(p), true), BRIDGE_OPEN);
    bridge_token_format(token, tok);
    char want[512];
    snprintf(want, sizeof(want), "stream=1122334455667788\ntoken=%s\ntarget=db.internal:5432\n",
             tok);
    ck_assert_str_eq(p, want);

    /* Its data connection: the preamble, then bytes the worker reads. */
    int d = tcp_connect();
    send_preamble(d, 0x1122334455667788ull);
    ck_assert_int_eq(send(d, "hello", 5, 0), 5);
    struct bridge_result *r = result_wait(0x1122334455667788ull, 5000);
    ck_assert_int_ge(r->fd, 0);
    ck_assert_str_eq(r->connector, "vpc-a#1");
    char got[8] = "";
    struct timeval tv = {.tv_sec = 5};
    setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t n = 0;
    while (n < 5) {
        ssize_t k = recv(r->fd, got + n, 5 - n, 0);
        if (k < 0 && errno == EAGAIN)
            continue; /* non-blocking: the worker would poll */
        ck_assert_int_gt(k, 0);
        n += (size_t)k;
    }
    ck_assert_str_eq(got, "hello");
    bridge_result_free(r);
    close(d);

    /* A second data connection for the same stream, and one for a stream
     * nobody asked for: closed. */
    int d2 = tcp_connect();
    send_preamble(d2, 0x1122334455667788ull);
    char x;
    ck_assert_int_le(recv(d2, &x, 1, 0), 0);
    close(d2);
    int d3 = tcp_connect();
    send_preamble(d3, 0x99);
    ck_assert_int_le(recv(d3, &x, 1, 0), 0);
    close(d3);

    /* Someone else knocking. */
    int k = tcp_connect();
    ck_assert_int_eq(send(k, "GET / HTTP/1.1\r\n", 16, 0), 16);
    ck_assert_int_le(recv(k, &x, 1, 0), 0);
    close(k);
    ck_assert(log_has("event=bridge_refused"));
    ck_assert(log_has("reason=\"not a bridge connector\""));

    /* Drain: BYE to the connector. */
    bridge_stop();
    ck_assert_int_eq(read_until(&c, BRIDGE_BYE, p, sizeof(p), false), BRIDGE_BYE);
    ck_assert_str_eq(p, "reason=proxy shutting down\n");
    control_close(&c);
    stop();
    ck_assert_ptr_null(strstr(logbuf, SECRET));
}
END_TEST

START_TEST(test_fail_and_no_connector)
{
    uint8_t token[BRIDGE_TOKEN_LEN] = {0};
    /* Not started (--check): answered at once, saying so. */
    bridge_test_hooks(capture, NULL, 0, 0);
    bridge_open(W, 9, token, "db1", "db", 5432);
    struct bridge_result *off = result_wait(9, 1000);
    ck_assert_str_eq(off->label, "error");
    ck_assert_ptr_nonnull(strstr(off->msg, "the bridge listener is not running"));
    bridge_result_free(off);
    start(0, 0);
    /* Nobody online yet. */
    bridge_open(W, 1, token, "db1", "db.internal", 5432);
    struct bridge_result *r = result_wait(1, 5000);
    ck_assert_int_lt(r->fd, 0);
    ck_assert_str_eq(r->sqlstate, "08001");
    ck_assert_str_eq(r->label, "no_connector");
    ck_assert_str_eq(r->msg, "pg-tls-proxy: bridge \"db1\" has no connector online (never seen "
                             "since the proxy started) — start pg-tls-proxy connector with "
                             "--bridge-id db1 in the database's network, or check its log");
    bridge_result_free(r);

    struct conn c;
    connector_up(&c, "db1", SECRET, "vpc-a");
    char p[BRIDGE_FRAME_MAX + 1];
    bridge_open(W, 2, token, "db1", "10.0.0.5", 5433);
    ck_assert_int_eq(read_until(&c, BRIDGE_OPEN, p, sizeof(p), true), BRIDGE_OPEN);
    send_frame(&c, BRIDGE_FAIL,
               (const char *const[]){"stream", "0000000000000002", "code", "not_allowed", "message",
                                     "10.0.0.5:5433 is not allowed", NULL});
    r = result_wait(2, 5000);
    ck_assert_str_eq(r->label, "not_allowed");
    ck_assert_msg(strstr(r->msg, "bridge \"db1\" connector \"vpc-a\" could not reach "
                                 "10.0.0.5:5433: 10.0.0.5:5433 is not allowed") != NULL &&
                      strstr(r->msg, "--allow") != NULL,
                  "%s", r->msg);
    bridge_result_free(r);

    bridge_open(W, 3, token, "db1", "::1", 5432);
    ck_assert_int_eq(read_until(&c, BRIDGE_OPEN, p, sizeof(p), true), BRIDGE_OPEN);
    ck_assert_ptr_nonnull(strstr(p, "target=[::1]:5432\n"));
    send_frame(&c, BRIDGE_FAIL,
               (const char *const[]){"stream", "0000000000000003", "code", "unreachable", "message",
                                     "connection refused", NULL});
    r = result_wait(3, 5000);
    ck_assert_str_eq(r->label, "unreachable");
    bridge_result_free(r);

    /* A stream left pending when its connector goes. */
    bridge_open(W, 4, token, "db1", "db", 5432);
    ck_assert_int_eq(read_until(&c, BRIDGE_OPEN, p, sizeof(p), true), BRIDGE_OPEN);
    control_close(&c);
    r = result_wait(4, 5000);
    ck_assert_str_eq(r->label, "error");
    ck_assert_ptr_nonnull(strstr(r->msg, "connector closed before opening the stream") != NULL
                              ? r->msg
                              : strstr(r->msg, "closed before opening the stream"));
    bridge_result_free(r);

    /* An id the file does not hold. */
    bridge_open(W, 6, token, "nosuch", "db", 5432);
    r = result_wait(6, 5000);
    ck_assert_str_eq(r->label, "no_connector");
    ck_assert_msg(strstr(r->msg, "bridge \"nosuch\" is not in the proxy's --bridges-file") != NULL,
                  "%s", r->msg);
    bridge_result_free(r);

    /* Gone: the text says when it was last seen. */
    bridge_open(W, 5, token, "db1", "db", 5432);
    r = result_wait(5, 5000);
    ck_assert_str_eq(r->label, "no_connector");
    ck_assert_ptr_nonnull(strstr(r->msg, "(last seen 20"));
    ck_assert_ptr_nonnull(strstr(r->msg, " s ago)"));
    bridge_result_free(r);
    ck_assert(log_has("event=bridge_down bridge=db1"));
    stop();
}
END_TEST

START_TEST(test_rejections)
{
    start(0, 0);
    char p[BRIDGE_FRAME_MAX + 1];
    struct conn c;
    /* Wrong secret and unknown id: the same answer. */
    ck_assert_int_eq(control_open(&c, BRIDGE_ALPN), 0);
    hello(&c, "db1", "wrong-secret", "vpc-a");
    ck_assert_int_eq(read_frame(&c, p, sizeof(p)), BRIDGE_REJECT);
    ck_assert_str_eq(p, "reason=bridge db1: wrong secret or unknown bridge id\n");
    ck_assert_int_eq(read_frame(&c, p, sizeof(p)), 0);
    control_close(&c);
    ck_assert_int_eq(control_open(&c, NULL), 0); /* no ALPN offered: fine */
    hello(&c, "nosuch", SECRET, "vpc-a");
    ck_assert_int_eq(read_frame(&c, p, sizeof(p)), BRIDGE_REJECT);
    ck_assert_str_eq(p, "reason=bridge nosuch: wrong secret or unknown bridge id\n");
    control_close(&c);
    ck_assert(log_has("event=bridge_rejected bridge=db1 connector=\"vpc-a\" addr=127.0.0.1:"));
    ck_assert(!log_has("wrong-secret"));

    /* Another ALPN: the handshake fails. */
    ck_assert_int_eq(control_open(&c, "postgresql"), -1);
    control_close(&c);
    /* Another protocol version. */
    ck_assert_int_eq(control_open(&c, BRIDGE_ALPN), 0);
    send_frame(&c, BRIDGE_HELLO, (const char *const[]){"v", "2", "id", "db1", NULL});
    ck_assert_int_eq(read_frame(&c, p, sizeof(p)), BRIDGE_REJECT);
    ck_assert_ptr_nonnull(strstr(p, "protocol version 2"));
    control_close(&c);
    /* A frame before HELLO. */
    ck_assert_int_eq(control_open(&c, BRIDGE_ALPN), 0);
    send_frame(&c, BRIDGE_PING, (const char *const[]){"t", "1", NULL});
    ck_assert_int_eq(read_frame(&c, p, sizeof(p)), BRIDGE_REJECT);
    control_close(&c);

    /* The right secret twice: the second from the cache. */
    connector_up(&c, "db1", SECRET, "a");
    struct conn c2;
    connector_up(&c2, "db1", SECRET, "b");
    control_close(&c2);
    control_close(&c);
    /* The drain's stop and bridge_join's may both be queued: one closes. */
    bridge_stop();
    bridge_stop();
    stop();
}
END_TEST

START_TEST(test_heartbeat)
{
    start(300, 0); /* PING every 300 ms, dead after 900 ms */
    char p[BRIDGE_FRAME_MAX + 1];
    struct conn quiet;
    connector_up(&quiet, "db2", SECRET2, "quiet");
    ck_assert_int_eq(read_frame(&quiet, p, sizeof(p)), BRIDGE_PING);
    /* It answers nothing: after three heartbeats it is closed. */
    uint8_t t;
    while ((t = read_frame(&quiet, p, sizeof(p))) == BRIDGE_PING)
        ;
    ck_assert_int_eq(t, 0);
    control_close(&quiet);
    for (int i = 0; i < 50 && !log_has("reason=\"no heartbeat for 1 s\""); i++)
        usleep(20000);
    ck_assert(log_has("event=bridge_down bridge=db2 connector=\"quiet#1\""));

    stop();
}
END_TEST

START_TEST(test_reload)
{
    start(0, 0);
    char p[BRIDGE_FRAME_MAX + 1];
    struct conn a, b;
    /* A PING of ours is answered with the same payload. */
    connector_up(&a, "db1", SECRET, "a");
    connector_up(&b, "db2", SECRET2, "b");
    send_frame(&a, BRIDGE_PING, (const char *const[]){"t", "42", NULL});
    ck_assert_int_eq(read_until(&a, BRIDGE_PONG, p, sizeof(p), true), BRIDGE_PONG);
    ck_assert_str_eq(p, "t=42\n");

    /* A reload that changes nothing keeps everyone. */
    char err[512];
    ck_assert_msg(bridge_reload(&cfg, err, sizeof(err)) == 0, "%s", err);
    send_frame(&a, BRIDGE_PING, (const char *const[]){"t", "43", NULL});
    ck_assert_int_eq(read_until(&a, BRIDGE_PONG, p, sizeof(p), true), BRIDGE_PONG);
    ck_assert_str_eq(p, "t=43\n");
    send_frame(&b, BRIDGE_PING, (const char *const[]){"t", "44", NULL});
    ck_assert_int_eq(read_until(&b, BRIDGE_PONG, p, sizeof(p), true), BRIDGE_PONG);

    /* db1's secret rotated, db2 removed: both told at once. */
    write_bridges("db1", "rotated-secret-xxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL, NULL);
    ck_assert_msg(bridge_reload(&cfg, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(read_until(&a, BRIDGE_BYE, p, sizeof(p), true), BRIDGE_BYE);
    ck_assert_str_eq(p, "reason=bridge secret changed\n");
    ck_assert_int_eq(read_until(&b, BRIDGE_BYE, p, sizeof(p), true), BRIDGE_BYE);
    ck_assert_str_eq(p, "reason=bridge removed\n");
    control_close(&a);
    control_close(&b);
    /* The old secret no longer works (the cache forgot it). */
    ck_assert_int_eq(control_open(&a, BRIDGE_ALPN), 0);
    hello(&a, "db1", SECRET, "a");
    ck_assert_int_eq(read_until(&a, BRIDGE_REJECT, p, sizeof(p), true), BRIDGE_REJECT);
    control_close(&a);

    /* A broken file: refused, the old one stays. */
    FILE *f = fopen(file_path, "w");
    fputs("\"bad id\" \"SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB\"\n", f);
    fclose(f);
    ck_assert_int_eq(bridge_reload(&cfg, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "--bridges-file"));
    connector_up(&a, "db1", "rotated-secret-xxxxxxxxxxxxxxxxxxxxxxxxxxx", "a");
    control_close(&a);
    stop();
}
END_TEST

START_TEST(test_timeouts)
{
    start(0, 400); /* every deadline 400 ms */
    char p[BRIDGE_FRAME_MAX + 1], x;
    /* No preamble, then no HELLO: closed, logged. */
    int quiet = tcp_connect();
    ck_assert_int_le(recv(quiet, &x, 1, 0), 0);
    close(quiet);
    struct conn c;
    ck_assert_int_eq(control_open(&c, BRIDGE_ALPN), 0);
    ck_assert_int_eq(read_frame(&c, p, sizeof(p)), 0);
    control_close(&c);
    ck_assert(log_has("reason=\"no preamble within 1 s\""));
    ck_assert(log_has("reason=\"no HELLO within 1 s\""));
    /* An OPEN whose data connection never comes. */
    connector_up(&c, "db1", SECRET, "slow");
    uint8_t token[BRIDGE_TOKEN_LEN] = {1};
    bridge_open(W, 77, token, "db1", "db", 5432);
    ck_assert_int_eq(read_until(&c, BRIDGE_OPEN, p, sizeof(p), true), BRIDGE_OPEN);
    struct bridge_result *r = result_wait(77, 5000);
    ck_assert_str_eq(r->label, "timeout");
    ck_assert_msg(strstr(r->msg, "connector \"slow\" opened no connection to db:5432") != NULL,
                  "%s", r->msg);
    bridge_result_free(r);
    /* Its late data connection finds nobody: closed. */
    int d = tcp_connect();
    send_preamble(d, 77);
    ck_assert_int_le(recv(d, &x, 1, 0), 0);
    close(d);
    /* A stream the session gave up on: its data connection is closed too. */
    bridge_open(W, 78, token, "db1", "db", 5432);
    ck_assert_int_eq(read_until(&c, BRIDGE_OPEN, p, sizeof(p), true), BRIDGE_OPEN);
    bridge_forget(78);
    usleep(50000);
    d = tcp_connect();
    send_preamble(d, 78);
    ck_assert_int_le(recv(d, &x, 1, 0), 0);
    close(d);
    control_close(&c);
    stop();
}
END_TEST

/* More HELLOs at once than BRIDGE_KDF_RUNNING + BRIDGE_KDF_QUEUED: the
 * rest are told "busy" at once. */
START_TEST(test_busy)
{
    /* The checks wait at the gate: two run, sixteen queue, the rest hear
     * "busy" at once. */
    static uv_mutex_t gate;
    ck_assert_int_eq(uv_mutex_init(&gate), 0);
    uv_mutex_lock(&gate);
    bauth_test_gate(&gate);
    start(0, 0);
    enum { N = BRIDGE_KDF_RUNNING + BRIDGE_KDF_QUEUED + 3 };
    struct conn c[N];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(control_open(&c[i], BRIDGE_ALPN), 0);
        hello(&c[i], "db1", "not-the-secret", "n");
    }
    /* Every HELLO handled (the busy ones answered) before any check ends. */
    for (int i = 0;
         i < 500 && log_count("reason=\"busy:") < N - BRIDGE_KDF_RUNNING - BRIDGE_KDF_QUEUED; i++)
        usleep(20000);
    uv_mutex_unlock(&gate);
    char p[BRIDGE_FRAME_MAX + 1];
    int busy = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(read_frame(&c[i], p, sizeof(p)), BRIDGE_REJECT);
        busy += strstr(p, "reason=busy: too many connectors") != NULL;
        wrong += strstr(p, "wrong secret or unknown bridge id") != NULL;
        control_close(&c[i]);
    }
    ck_assert_int_eq(busy, N - BRIDGE_KDF_RUNNING - BRIDGE_KDF_QUEUED);
    ck_assert_int_eq(wrong, BRIDGE_KDF_RUNNING + BRIDGE_KDF_QUEUED);
    stop();
    bauth_test_gate(NULL);
    uv_mutex_destroy(&gate);
}
END_TEST

/* A connector that sends PINGs and reads nothing is closed, not queued for. */
START_TEST(test_not_reading)
{
    start(0, 0);
    struct conn c;
    connector_up(&c, "db1", SECRET, "deaf");
    static char big[BRIDGE_VALUE_MAX];
    memset(big, 'p', sizeof(big) - 1);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    size_t sent = 0;
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_PING);
    bridge_frame_add(&f, "t", big); /* and more keys (ignored): bigger frames */
    bridge_frame_add(&f, "a", big);
    bridge_frame_add(&f, "b", big);
    int n = bridge_frame_end(&f);
    ck_assert_int_gt(n, 3 * BRIDGE_VALUE_MAX);
    while (sent < ((size_t)256 << 20) && !log_has("reads nothing")) {
        if (SSL_write(c.ssl, buf, n) != n)
            break;
        sent += (size_t)n;
    }
    ERR_clear_error();
    for (int i = 0; i < 100 && !log_has("reads nothing"); i++)
        usleep(20000);
    ck_assert_msg(log_has("reason=\"the connector reads nothing: its write queue is full\""),
                  "sent %zu bytes", sent);
    control_close(&c);
    stop();
}
END_TEST

/* ---- the pieces on their own ---- */

START_TEST(test_pick_fewest)
{
    struct bstate *b = calloc(1, sizeof(*b));
    struct bctl c[3];
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 3; i++) {
        snprintf(c[i].id, sizeof(c[i].id), "db1");
        c[i].b = b;
    }
    ck_assert_ptr_null(breg_pick(b, "db1"));
    c[0].nstreams = 2;
    c[1].nstreams = 1;
    c[2].nstreams = 1;
    for (int i = 0; i < 3; i++)
        breg_up(b, &c[i]);
    ck_assert_ptr_eq(breg_pick(b, "db1"), &c[1]); /* fewest; the longest online of equals */
    c[1].nstreams = 3;
    ck_assert_ptr_eq(breg_pick(b, "db1"), &c[2]);
    breg_down(b, &c[2]);
    ck_assert_ptr_eq(breg_pick(b, "db1"), &c[0]);
    ck_assert_ptr_null(breg_pick(b, "db2"));
    struct bentry *e = breg_entry(b, "db1", false);
    ck_assert_uint_eq(e->nlive, 2);
    e->last_seen = 1796641323; /* 2026-12-07T11:02:03Z */
    char msg[512];
    breg_no_connector_msg(e, "db1", 1796641365, msg, sizeof(msg));
    ck_assert_str_eq(msg, "pg-tls-proxy: bridge \"db1\" has no connector online (last seen "
                          "2026-12-07T11:02:03Z, 42 s ago) — start pg-tls-proxy connector with "
                          "--bridge-id db1 in the database's network, or check its log");
    free(b->entries);
    free(b);
}
END_TEST

START_TEST(test_reload_reason)
{
    make_identity();
    write_bridges("db1", SECRET, "db2", SECRET2);
    char err[512];
    struct authfile *a = bauth_load(file_path, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);
    write_bridges("db1", SECRET, "db3", SECRET2);
    struct authfile *b = bauth_load(file_path, err, sizeof(err));
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(bauth_reload_reason(a, a, "db1"));
    /* A verifier made again from the same secret has another salt. */
    ck_assert_str_eq(bauth_reload_reason(a, b, "db1"), "bridge secret changed");
    ck_assert_str_eq(bauth_reload_reason(a, b, "db2"), "bridge removed");
    authfile_free(a);
    authfile_free(b);
    FILE *f = fopen(file_path, "w");
    fputs(
        "\"no/slash\" \"SCRAM-SHA-256$4096:c2FsdA==$"
        "KJ5oSJJBuy5PH8emZHl6OsnCBdDGWUaUVrhNftRX4j0=:Cw5QYuiR3j19oC6s11xht+H7h6Nf62+6Zqu6rjq65X4="
        "\"\n",
        f);
    fclose(f);
    ck_assert_ptr_null(bauth_load(file_path, err, sizeof(err)));
    ck_assert_msg(strstr(err, "line 1: \"no/slash\" is not a bridge id") != NULL, "%s", err);
    char t[128];
    bauth_reject_text("x", t, sizeof(t));
    ck_assert_str_eq(t, "bridge x: wrong secret or unknown bridge id");
    cleanup_files();
}
END_TEST

Suite *bridge_suite(void)
{
    Suite *s = suite_create("bridge");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_pick_fewest);
    tcase_add_test(t, test_reload_reason);
    tcase_add_test(t, test_open_and_data);
    tcase_add_test(t, test_fail_and_no_connector);
    tcase_add_test(t, test_rejections);
    tcase_add_test(t, test_heartbeat);
    tcase_add_test(t, test_reload);
    tcase_add_test(t, test_timeouts);
    tcase_add_test(t, test_busy);
    tcase_add_test(t, test_not_reading);
    suite_add_tcase(s, t);
    return s;
}
