/*
 * test_connector_loop.c - the connector's real loop on its own thread
 * against a fake proxy written here (blocking sockets + tlsio on this
 * thread: a test double of bridge.c, not the real one) and an echo target
 * on a third thread, all on loopback:
 *   - control: preamble (stream 0), verify-full TLS with ALPN, HELLO fields,
 *     WELCOME; PINGs answered;
 *   - OPEN to the echo target: data connection with the stream's preamble,
 *     the token first, then 200 KB echoed back byte-exact, and one
 *     stream_closed line with both byte counts;
 *   - OPEN to a target not on --allow: FAIL not_allowed; to a closed port
 *     on the list: FAIL unreachable;
 *   - REJECT: logged as tunnel_rejected, and the connector comes back;
 *   - stop: BYE on the control connection, run returns 0 (loop closed).
 * The certificate is made in-process; only its public part is written (a
 * temporary file for --bridge-ca-path).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "connector.h"
#include "connector_int.h" /* peak_queued */
#include "log.h"
#include "suites.h"
#include "tlsio.h"

#define IO_MS 10000

/* ---- the log, captured ------------------------------------------------------ */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[65536];
static size_t log_len;

static void sink(void *arg, enum log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)level;
    pthread_mutex_lock(&log_mu);
    if (log_len + len + 2 < sizeof(log_text)) {
        memcpy(log_text + log_len, line, len);
        log_len += len;
        log_text[log_len++] = '\n';
        log_text[log_len] = '\0';
    }
    pthread_mutex_unlock(&log_mu);
}

/* The first log line holding all of a and b (b may be NULL), copied into out. */
static bool log_find(const char *a, const char *b, char *out, size_t cap)
{
    bool found = false;
    pthread_mutex_lock(&log_mu);
    for (const char *p = log_text; *p != '\0' && !found;) {
        const char *e = strchr(p, '\n');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        char line[2048];
        snprintf(line, sizeof(line), "%.*s", (int)n, p);
        if (strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL)) {
            snprintf(out, cap, "%s", line);
            found = true;
        }
        p += n + (e != NULL);
    }
    pthread_mutex_unlock(&log_mu);
    return found;
}

/* Wait up to IO_MS for such a line (the connector logs on its thread). */
static bool log_wait(const char *a, const char *b, char *out, size_t cap)
{
    for (int i = 0; i < IO_MS / 20; i++) {
        if (log_find(a, b, out, cap))
            return true;
        usleep(20000);
    }
    return false;
}

/* ---- certificates ----------------------------------------------------------- */

static SSL_CTX *srv_ctx;
static char ca_file[64];

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    static const unsigned char want[] = "\x0dpgtp-bridge/1";
    unsigned char *o = NULL;
    if (SSL_select_next_proto(&o, outlen, want, sizeof(want) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = o;
    return SSL_TLSEXT_ERR_OK;
}

static void make_certs(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"bridge.test", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
    ck_assert_ptr_nonnull(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ck_assert_int_gt(X509_sign(x, key, EVP_sha256()), 0);

    srv_ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate(srv_ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(srv_ctx, key), 1);
    SSL_CTX_set_alpn_select_cb(srv_ctx, alpn_cb, NULL);

    strcpy(ca_file, "/tmp/pgtp-bridge-ca-XXXXXX");
    int fd = mkstemp(ca_file);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_int_eq(PEM_write_X509(f, x), 1); /* the certificate only, never the key */
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* ---- blocking sockets ----------------------------------------------------------- */

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int accept_within(int lfd, int ms)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    ck_assert_msg(poll(&p, 1, ms) == 1, "nothing connected within %d ms", ms);
    return accept(lfd, NULL, NULL);
}

static void read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&p, 1, IO_MS), 1);
        ssize_t r = read(fd, (char *)buf + got, n - got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
}

/* ---- the echo target ------------------------------------------------------------ */

struct echo {
    int lfd;
    pthread_t th;
};

static void *echo_main(void *arg)
{
    struct echo *e = arg;
    int fd = accept(e->lfd, NULL, NULL);
    char buf[16384];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w <= 0)
                break;
            off += w;
        }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* ---- one side of the fake proxy: TLS over a blocking socket ---------------------- */

struct peer {
    int fd;
    bool silent; /* PINGs are returned to the caller, not answered */
    struct tlsio t;
    uint8_t in[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    size_t inlen;
};

static void peer_flush(struct peer *p)
{
    unsigned char b[16384];
    size_t n;
    while ((n = tlsio_take(&p->t, b, sizeof(b))) > 0)
        ck_assert_int_eq(write(p->fd, b, n), (ssize_t)n);
}

/* Read what the socket has into TLS; false at EOF. */
static bool peer_recv(struct peer *p)
{
    unsigned char b[16384];
    struct pollfd pf = {.fd = p->fd, .events = POLLIN};
    ck_assert_msg(poll(&pf, 1, IO_MS) == 1, "the connector sent nothing within %d ms", IO_MS);
    ssize_t n = read(p->fd, b, sizeof(b));
    if (n <= 0)
        return false;
    ck_assert_int_eq(tlsio_feed(&p->t, b, (size_t)n), 0);
    return true;
}

/* Accept, check the preamble's stream, TLS as the server. */
static void peer_accept(struct peer *p, int lfd, uint64_t stream)
{
    uint8_t pre[BRIDGE_PREAMBLE_LEN];
    uint64_t got;
    char err[128];
    memset(p, 0, sizeof(*p));
    p->fd = accept_within(lfd, IO_MS);
    ck_assert_int_ge(p->fd, 0);
    read_exact(p->fd, pre, sizeof(pre));
    ck_assert_int_eq(memcmp(pre, BRIDGE_MAGIC, BRIDGE_MAGIC_LEN), 0);
    ck_assert_int_eq(bridge_preamble_decode(pre, sizeof(pre), &got), 1);
    ck_assert_uint_eq(got, stream);
    ck_assert_int_eq(tlsio_init(&p->t, srv_ctx, true, err, sizeof(err)), 0);
    enum tls_res r;
    while ((r = tlsio_handshake(&p->t)) == TLS_WANT) {
        peer_flush(p);
        ck_assert(peer_recv(p));
    }
    ck_assert_int_eq(r, TLS_OK);
    peer_flush(p);
}

/* The connector may have closed first: the close_notify is best effort. */
static void peer_close(struct peer *p)
{
    unsigned char b[1024];
    size_t n;
    tlsio_shutdown(&p->t);
    while ((n = tlsio_take(&p->t, b, sizeof(b))) > 0)
        if (write(p->fd, b, n) < 0)
            break;
    close(p->fd);
    tlsio_free(&p->t);
}

/* Exactly n plaintext bytes. */
static void peer_read(struct peer *p, void *buf, size_t n)
{
    size_t got = 0, k;
    while (got < n) {
        enum tls_res r = tlsio_read(&p->t, (char *)buf + got, n - got, &k);
        if (r == TLS_OK) {
            got += k;
            continue;
        }
        ck_assert_int_eq(r, TLS_WANT);
        ck_assert(peer_recv(p));
    }
}

static void peer_send_frame(struct peer *p, uint8_t type, const char *const *kv)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), type);
    for (; kv != NULL && kv[0] != NULL; kv += 2)
        bridge_frame_add(&f, kv[0], kv[1]);
    int n = bridge_frame_end(&f);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(tlsio_write(&p->t, buf, (size_t)n), 0);
    peer_flush(p);
}

/* The next frame that is not a PING (PINGs are answered, or returned
 * when p->silent) or PONG; its
 * payload NUL-terminated in payload. Returns the type, or 0 at EOF. */
static uint8_t peer_frame(struct peer *p, char *payload, size_t cap)
{
    for (;;) {
        uint8_t type;
        const uint8_t *pl;
        size_t plen, used, k;
        int d = bridge_frame_decode(p->in, p->inlen, &type, &pl, &plen, &used);
        ck_assert_int_ge(d, 0);
        if (d == 1) {
            ck_assert_uint_lt(plen, cap);
            memcpy(payload, pl, plen);
            payload[plen] = '\0';
            memmove(p->in, p->in + used, p->inlen - used);
            p->inlen -= used;
            if (type == BRIDGE_PING && p->silent)
                return type;
            if (type == BRIDGE_PING) {
                const char *kv[] = {"t", "x", NULL};
                peer_send_frame(p, BRIDGE_PONG, kv);
                continue;
            }
            if (type == BRIDGE_PONG)
                continue;
            return type;
        }
        enum tls_res r = tlsio_read(&p->t, p->in + p->inlen, sizeof(p->in) - p->inlen, &k);
        if (r == TLS_OK) {
            p->inlen += k;
            continue;
        }
        if (r == TLS_EOF)
            return 0;
        ck_assert_int_eq(r, TLS_WANT);
        if (!peer_recv(p))
            return 0;
    }
}

static void payload_is(const char *payload, const char *key, const char *want)
{
    char v[BRIDGE_VALUE_MAX + 1];
    ck_assert_int_eq(
        bridge_payload_get((const uint8_t *)payload, strlen(payload), key, v, sizeof(v)), 1);
    ck_assert_str_eq(v, want);
}

/* ---- the connector on its thread ------------------------------------------------- */

struct running {
    struct connector_opts o;
    struct connector *cn;
    pthread_t th;
    int rc;
};

static void *run_main(void *arg)
{
    struct running *r = arg;
    r->rc = connector_run(r->cn);
    return NULL;
}

static void start_connector(struct running *r, uint16_t proxy_port, const char *allow)
{
    char addr[32], err[512];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", proxy_port);
    const char *argv[] = {
        "connector",   "--bridge-address",
        addr,          "--bridge-id",
        "unit-bridge", "--bridge-ca-path",
        ca_file,       "--bridge-tls-validation-host",
        "localhost",   "--allow",
        allow,         "--connector-name",
        "unit-conn",   "--heartbeat-interval",
        "1",           "--connect-timeout", /* generous: memcheck on a busy machine */
        "30",          "--reconnect-max",
        "1",           NULL};
    const char *env[] = {"PG_TLS_PROXY_BRIDGE_SECRET=unit-s3cret", NULL};
    FILE *out = fopen("/dev/null", "w");
    enum connector_parse_res res =
        connector_opts_parse(&r->o, sizeof(argv) / sizeof(argv[0]) - 1, (char **)argv, (char **)env,
                             out, err, sizeof(err));
    fclose(out);
    ck_assert_msg(res == CONNECTOR_RUN, "%s", err);
    r->cn = connector_new(&r->o, false, err, sizeof(err));
    ck_assert_msg(r->cn != NULL, "%s", err);
    ck_assert_int_eq(pthread_create(&r->th, NULL, run_main, r), 0);
}

static void stop_connector(struct running *r)
{
    connector_stop(r->cn);
    pthread_join(r->th, NULL);
    ck_assert_int_eq(r->rc, 0); /* uv_loop_close == 0: no handle forgotten */
    connector_free(r->cn);
    connector_opts_free(&r->o);
}

static void control_up(struct peer *ctl, int lfd)
{
    char payload[BRIDGE_FRAME_MAX + 1];
    peer_accept(ctl, lfd, 0);
    ck_assert_int_eq(peer_frame(ctl, payload, sizeof(payload)), BRIDGE_HELLO);
    payload_is(payload, "v", "1");
    payload_is(payload, "id", "unit-bridge");
    payload_is(payload, "secret", "unit-s3cret");
    payload_is(payload, "name", "unit-conn");
    const char *kv[] = {"heartbeat", "1", "connector", "3", NULL};
    peer_send_frame(ctl, BRIDGE_WELCOME, kv);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as connector_main does */
    log_len = 0;
    log_text[0] = '\0';
    log_set_sink(sink, NULL);
    make_certs();
}

static void teardown(void)
{
    log_set_sink(NULL, NULL);
    if (getenv("PGTP_TEST_LOG") != NULL) /* the connector's lines, when debugging a test */
        fputs(log_text, stderr);
    SSL_CTX_free(srv_ctx);
    unlink(ca_file);
}

START_TEST(test_open_echo_and_refusals)
{
    uint16_t pport, eport, dport;
    int lfd = listen_any(&pport);
    struct echo e = {.lfd = listen_any(&eport)};
    int dead = listen_any(&dport);
    close(dead); /* nothing listens there any more: connection refused */
    ck_assert_int_eq(pthread_create(&e.th, NULL, echo_main, &e), 0);

    char allow[64], target[32], dtarget[32], payload[BRIDGE_FRAME_MAX + 1], line[2048];
    snprintf(target, sizeof(target), "127.0.0.1:%u", eport);
    snprintf(dtarget, sizeof(dtarget), "127.0.0.1:%u", dport);
    snprintf(allow, sizeof(allow), "%s,%s", target, dtarget);
    struct running r;
    start_connector(&r, pport, allow);

    struct peer ctl, data;
    control_up(&ctl, lfd);

    /* An allowed target: a data connection with the stream's preamble, the token. */
    uint8_t token[BRIDGE_TOKEN_LEN];
    char tokhex[2 * BRIDGE_TOKEN_LEN + 1];
    for (size_t i = 0; i < sizeof(token); i++)
        token[i] = (uint8_t)(i * 7 + 1);
    bridge_token_format(token, tokhex);
    const char *open1[] = {"stream", "00000000000000a1", "token", tokhex, "target", target, NULL};
    peer_send_frame(&ctl, BRIDGE_OPEN, open1);
    peer_accept(&data, lfd, 0xa1);
    uint8_t got[BRIDGE_TOKEN_LEN];
    peer_read(&data, got, sizeof(got));
    ck_assert_mem_eq(got, token, sizeof(token));

    /* 200 KB through, echoed back byte-exact. */
    static uint8_t big[200000], back[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31 + (i >> 9));
    ck_assert_int_eq(tlsio_write(&data.t, big, sizeof(big)), 0);
    peer_flush(&data);
    peer_read(&data, back, sizeof(back));
    ck_assert_mem_eq(back, big, sizeof(big));
    peer_close(&data);

    /* Not on the list. */
    const char *open2[] = {"stream", "00000000000000a2", "token", tokhex,
                           "target", "127.0.0.1:1",      NULL};
    peer_send_frame(&ctl, BRIDGE_OPEN, open2);
    ck_assert_int_eq(peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_FAIL);
    payload_is(payload, "stream", "00000000000000a2");
    payload_is(payload, "code", "not_allowed");
    payload_is(payload, "message", "127.0.0.1:1 is not on this connector's --allow list");

    /* On the list, nobody listening. */
    const char *open3[] = {"stream", "00000000000000a3", "token", tokhex, "target", dtarget, NULL};
    peer_send_frame(&ctl, BRIDGE_OPEN, open3);
    ck_assert_int_eq(peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_FAIL);
    payload_is(payload, "stream", "00000000000000a3");
    payload_is(payload, "code", "unreachable");
    ck_assert_msg(strstr(payload, "connection refused") != NULL, "%s", payload);
    ck_assert_msg(strstr(payload, dtarget) != NULL, "%s", payload);

    /* Stop: BYE, then the end of the control connection. */
    connector_stop(r.cn);
    ck_assert_int_eq(peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_BYE);
    stop_connector(&r);
    peer_close(&ctl);
    pthread_join(e.th, NULL);
    close(e.lfd);
    close(lfd);

    ck_assert(log_find("event=tunnel_up", "connector=unit-conn", line, sizeof(line)));
    ck_assert_msg(strstr(line, "bridge=unit-bridge") && strstr(line, "connector_number=3"), "%s",
                  line);
    ck_assert(log_find("event=stream_open", "stream=00000000000000a1", line, sizeof(line)));
    ck_assert(log_wait("event=stream_closed", "stream=00000000000000a1", line, sizeof(line)));
    ck_assert_msg(strstr(line, "bytes_to_target=200000 bytes_from_target=200000"), "%s", line);
    ck_assert(log_find("event=stream_refused", "code=not_allowed", line, sizeof(line)));
    ck_assert(log_find("event=stream_failed", "code=unreachable", line, sizeof(line)));
    /* The secret never reaches the log. */
    pthread_mutex_lock(&log_mu);
    ck_assert(strstr(log_text, "unit-s3cret") == NULL);
    pthread_mutex_unlock(&log_mu);
}
END_TEST

/* REJECT is logged with its reason and the connector tries again. */
START_TEST(test_reject_then_reconnect)
{
    uint16_t pport;
    int lfd = listen_any(&pport);
    char payload[BRIDGE_FRAME_MAX + 1], line[2048];
    struct running r;
    start_connector(&r, pport, "127.0.0.1:5432");
    struct peer ctl;
    peer_accept(&ctl, lfd, 0);
    ck_assert_int_eq(peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_HELLO);
    const char *kv[] = {"reason", "unknown bridge id or wrong secret", NULL};
    peer_send_frame(&ctl, BRIDGE_REJECT, kv);
    peer_close(&ctl);
    /* Back within the backoff (0.25..0.5 s for the first retry). */
    control_up(&ctl, lfd);
    ck_assert(log_wait("event=tunnel_up", NULL, line, sizeof(line)));
    stop_connector(&r);
    peer_close(&ctl);
    close(lfd);
    ck_assert(
        log_find("event=tunnel_rejected", "unknown bridge id or wrong secret", line, sizeof(line)));
    ck_assert(log_find("event=tunnel_up", NULL, line, sizeof(line)));
}
END_TEST

/* A certificate for another name: refused, and the log says which name. */
START_TEST(test_wrong_name_refused)
{
    uint16_t pport;
    int lfd = listen_any(&pport);
    char line[2048], err[512], addr[32];
    struct running r;
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", pport);
    const char *argv[] = {"connector",
                          "--bridge-address",
                          addr,
                          "--bridge-id",
                          "b",
                          "--bridge-ca-path",
                          ca_file,
                          "--allow",
                          "127.0.0.1:5432",
                          "--bridge-secret",
                          "x",
                          NULL};
    FILE *out = fopen("/dev/null", "w");
    ck_assert_int_eq(connector_opts_parse(&r.o, sizeof(argv) / sizeof(argv[0]) - 1, (char **)argv,
                                          NULL, out, err, sizeof(err)),
                     CONNECTOR_RUN);
    fclose(out);
    r.cn = connector_new(&r.o, false, err, sizeof(err));
    ck_assert_ptr_nonnull(r.cn);
    ck_assert_int_eq(pthread_create(&r.th, NULL, run_main, &r), 0);
    /* The connector checks 127.0.0.1; the certificate says localhost. */
    int fd = accept_within(lfd, IO_MS);
    struct peer p = {.fd = fd};
    uint8_t pre[BRIDGE_PREAMBLE_LEN];
    read_exact(fd, pre, sizeof(pre));
    ck_assert_int_eq(tlsio_init(&p.t, srv_ctx, true, err, sizeof(err)), 0);
    for (int i = 0; i < 10 && tlsio_handshake(&p.t) == TLS_WANT; i++) {
        peer_flush(&p);
        if (!peer_recv(&p))
            break;
    }
    tlsio_free(&p.t);
    close(fd);
    (void)log_wait("event=tunnel_failed", "verify", line, sizeof(line));
    stop_connector(&r);
    close(lfd);
    ck_assert(log_find("event=tunnel_failed", "certificate verify failed", line, sizeof(line)));
    ck_assert_msg(strstr(line, "name checked: 127.0.0.1") != NULL, "%s", line);
}
END_TEST

/* A target that reads nothing for a second, then checks BULK bytes of
 * pattern(i) and sends BULK bytes of pattern(i + 1) back. */
#define BULK (5u << 20)
static uint8_t pattern(size_t i, unsigned salt)
{
    return (uint8_t)((i * 131u + (i >> 13) + salt) & 0xff);
}

struct slow {
    int lfd;
    pthread_t th;
    bool ok;
};

static void *slow_main(void *arg)
{
    struct slow *t = arg;
    static uint8_t buf[65536];
    int fd = accept(t->lfd, NULL, NULL);
    size_t got = 0;
    bool same = fd >= 0;
    sleep(1); /* everything the proxy sends piles up in front of us */
    while (same && got < BULK) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (ssize_t k = 0; k < n && same; k++)
            same = buf[k] == pattern(got + (size_t)k, 0);
        got += (size_t)n;
    }
    for (size_t off = 0; same && off < BULK;) {
        size_t n = BULK - off < sizeof(buf) ? BULK - off : sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = pattern(off + k, 1);
        ssize_t w = write(fd, buf, n);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    t->ok = same && got == BULK;
    if (fd >= 0)
        close(fd);
    return NULL;
}

/*
 * Backpressure both ways: 5 MB to a target that does not read for a
 * second, 5 MB back to a proxy that does not read for a second. Both
 * arrive byte-exact, and the connector never queued much more than the
 * high-water mark for one side (one read more, TLS framing).
 */
START_TEST(test_backpressure)
{
    uint16_t pport, tport;
    int lfd = listen_any(&pport);
    struct slow t = {.lfd = listen_any(&tport)};
    /* Small receive buffers (inherited by the accepted sockets), so that
     * a few MB are enough to fill the kernel's part and reach ours. */
    int small = 32768;
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(t.lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    ck_assert_int_eq(pthread_create(&t.th, NULL, slow_main, &t), 0);
    char target[32], tokhex[2 * BRIDGE_TOKEN_LEN + 1];
    uint8_t token[BRIDGE_TOKEN_LEN] = {1, 2, 3}, got[BRIDGE_TOKEN_LEN];
    snprintf(target, sizeof(target), "127.0.0.1:%u", tport);
    bridge_token_format(token, tokhex);
    struct running r;
    start_connector(&r, pport, target);
    struct peer ctl, data;
    control_up(&ctl, lfd);
    const char *open1[] = {"stream", "00000000000000b1", "token", tokhex, "target", target, NULL};
    peer_send_frame(&ctl, BRIDGE_OPEN, open1);
    peer_accept(&data, lfd, 0xb1);
    peer_read(&data, got, sizeof(got));

    static uint8_t chunk[65536];
    for (size_t off = 0; off < BULK; off += sizeof(chunk)) {
        for (size_t k = 0; k < sizeof(chunk); k++)
            chunk[k] = pattern(off + k, 0);
        ck_assert_int_eq(tlsio_write(&data.t, chunk, sizeof(chunk)), 0);
        peer_flush(&data); /* blocks while the connector holds back */
    }
    sleep(1); /* now we are the slow reader */
    static uint8_t want[sizeof(chunk)];
    for (size_t off = 0; off < BULK; off += sizeof(chunk)) {
        peer_read(&data, chunk, sizeof(chunk));
        for (size_t k = 0; k < sizeof(chunk); k++)
            want[k] = pattern(off + k, 1);
        ck_assert_msg(memcmp(chunk, want, sizeof(chunk)) == 0, "bytes from %zu differ", off);
    }
    pthread_join(t.th, NULL);
    ck_assert(t.ok);
    peer_close(&data);
    connector_stop(r.cn);
    pthread_join(r.th, NULL);
    ck_assert_int_eq(r.rc, 0);
    size_t peak = r.cn->peak_queued;
    connector_free(r.cn);
    connector_opts_free(&r.o);
    peer_close(&ctl);
    close(t.lfd);
    close(lfd);
    ck_assert_msg(peak > CONN_HWM, "peak %zu: the mark was not reached", peak);
    ck_assert_uint_le(peak, CONN_HWM + 2 * CONN_READ_BUF);
}
END_TEST

/* Echo n bytes through an open data connection, byte-exact. */
static void echo_check(struct peer *data, size_t n, unsigned salt)
{
    static uint8_t out[65536], back[65536];
    ck_assert_uint_le(n, sizeof(out));
    for (size_t i = 0; i < n; i++)
        out[i] = pattern(i, salt);
    ck_assert_int_eq(tlsio_write(&data->t, out, n), 0);
    peer_flush(data);
    peer_read(data, back, n);
    ck_assert_int_eq(memcmp(out, back, n), 0);
}

/*
 * The control connection dies (the proxy stops answering PINGs): the
 * connector counts it dead after 3 heartbeats, reconnects by itself, and
 * the stream already open keeps working all along. Then stop: BYE, and the
 * open stream may still finish before the connector exits.
 */
START_TEST(test_control_loss_keeps_streams)
{
    uint16_t pport, eport;
    int lfd = listen_any(&pport);
    struct echo e = {.lfd = listen_any(&eport)};
    ck_assert_int_eq(pthread_create(&e.th, NULL, echo_main, &e), 0);
    char target[32], tokhex[2 * BRIDGE_TOKEN_LEN + 1], payload[BRIDGE_FRAME_MAX + 1], line[2048];
    uint8_t token[BRIDGE_TOKEN_LEN] = {9}, got[BRIDGE_TOKEN_LEN];
    snprintf(target, sizeof(target), "127.0.0.1:%u", eport);
    bridge_token_format(token, tokhex);
    struct running r;
    start_connector(&r, pport, target);
    struct peer ctl, data;
    control_up(&ctl, lfd);
    const char *open1[] = {"stream", "00000000000000c1", "token", tokhex, "target", target, NULL};
    peer_send_frame(&ctl, BRIDGE_OPEN, open1);
    peer_accept(&data, lfd, 0xc1);
    peer_read(&data, got, sizeof(got));
    echo_check(&data, 1000, 3);

    /* Silence: the connector PINGs every second, then gives up. */
    ctl.silent = true;
    int pings = 0;
    uint8_t type;
    while ((type = peer_frame(&ctl, payload, sizeof(payload))) == BRIDGE_PING)
        pings++;
    ck_assert_int_eq(type, 0); /* closed by the connector */
    ck_assert_int_ge(pings, 2);
    peer_close(&ctl);
    ck_assert(log_wait("event=tunnel_dead", "streams_open=1", line, sizeof(line)));
    ck_assert_msg(strstr(line, "open streams keep running") != NULL, "%s", line);
    echo_check(&data, 50000, 4);

    /* Back by itself. */
    control_up(&ctl, lfd);
    echo_check(&data, 2000, 5);

    /* Stop: BYE; the stream still works until it ends, then the exit. */
    connector_stop(r.cn);
    ck_assert_int_eq(peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_BYE);
    payload_is(payload, "reason", "connector shutting down");
    echo_check(&data, 3000, 6);
    peer_close(&data);
    stop_connector(&r);
    peer_close(&ctl);
    pthread_join(e.th, NULL);
    close(e.lfd);
    close(lfd);
    ck_assert(log_find("event=stream_closed", "stream=00000000000000c1", line, sizeof(line)));
    ck_assert_msg(strstr(line, "reason=proxy_closed") != NULL, "%s", line);
}
END_TEST

/* One HTTP GET to 127.0.0.1:port; the whole response into out. */
static void http_get(uint16_t port, const char *path, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    size_t got = 0;
    ssize_t r;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    while (got + 1 < cap && poll(&pf, 1, IO_MS) == 1 &&
           (r = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
}

/* --health-address: 503 with the reason until WELCOME, then 200 "ok". */
START_TEST(test_health_endpoint)
{
    uint16_t pport, hport;
    int lfd = listen_any(&pport);
    int h = listen_any(&hport);
    close(h); /* a free port for the endpoint */
    char addr[32], hp[16], err[512], body[2048];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", pport);
    snprintf(hp, sizeof(hp), "%u", hport);
    struct running r;
    const char *argv[] = {"connector",
                          "--bridge-address",
                          addr,
                          "--bridge-id",
                          "unit-bridge",
                          "--bridge-ca-path",
                          ca_file,
                          "--bridge-tls-validation-host",
                          "localhost",
                          "--allow",
                          "127.0.0.1:5432",
                          "--connector-name",
                          "unit-conn",
                          "--health-address",
                          hp,
                          "--bridge-secret",
                          "unit-s3cret",
                          NULL};
    FILE *out = fopen("/dev/null", "w");
    ck_assert_int_eq(connector_opts_parse(&r.o, sizeof(argv) / sizeof(argv[0]) - 1, (char **)argv,
                                          NULL, out, err, sizeof(err)),
                     CONNECTOR_RUN);
    fclose(out);
    r.cn = connector_new(&r.o, false, err, sizeof(err));
    ck_assert_msg(r.cn != NULL, "%s", err);
    ck_assert_int_eq(pthread_create(&r.th, NULL, run_main, &r), 0);

    http_get(hport, "/healthz", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 503 ", 13) == 0, "%s", body);
    ck_assert_msg(strstr(body, "\r\n\r\ntunnel down: ") != NULL, "%s", body);

    struct peer ctl;
    control_up(&ctl, lfd);
    char line[2048];
    ck_assert(log_wait("event=tunnel_up", NULL, line, sizeof(line)));
    http_get(hport, "/healthz", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 200 ", 13) == 0, "%s", body);
    ck_assert_msg(strstr(body, "\r\n\r\nok\n") != NULL, "%s", body);
    http_get(hport, "/readyz", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 200 ", 13) == 0, "%s", body);
    http_get(hport, "/metrics", body, sizeof(body));
    ck_assert_msg(strstr(body, "\npgtp_connector_tunnel_up 1\n") != NULL, "%s", body);
    http_get(hport, "/nope", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 404 ", 13) == 0, "%s", body);

    /* The proxy goes away: 503 again, with why. */
    peer_close(&ctl);
    ck_assert(log_wait("event=tunnel_down", NULL, line, sizeof(line)));
    http_get(hport, "/healthz", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 503 ", 13) == 0, "%s", body);
    ck_assert_msg(strstr(body, "tunnel down: ") != NULL, "%s", body);
    stop_connector(&r);
    close(lfd);
}
END_TEST

Suite *connector_loop_suite(void)
{
    Suite *s = suite_create("connector_loop");
    TCase *tc = tcase_create("loop");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_open_echo_and_refusals);
    tcase_add_test(tc, test_reject_then_reconnect);
    tcase_add_test(tc, test_wrong_name_refused);
    tcase_add_test(tc, test_health_endpoint);
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_control_loss_keeps_streams);
    suite_add_tcase(s, tc);
    return s;
}
