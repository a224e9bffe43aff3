/*
 * connector_fixture.c - the harness of the connector's loop tests (see
 * connector_fixture.h): a test double of the proxy's side (bridge.c is not
 * used), written with blocking sockets and tlsio on the test's thread,
 * while the connector runs its real loop on another.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "connector_fixture.h"
#include "log.h"
#include "suites.h"

/* ---- the log, captured ------------------------------------------------------ */

static pthread_mutex_t cf_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char cf_log_text[65536];
static size_t cf_log_len;

static void sink(void *arg, enum log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)level;
    pthread_mutex_lock(&cf_log_mu);
    if (cf_log_len + len + 2 < sizeof(cf_log_text)) {
        memcpy(cf_log_text + cf_log_len, line, len);
        cf_log_len += len;
        cf_log_text[cf_log_len++] = '\n';
        cf_log_text[cf_log_len] = '\0';
    }
    pthread_mutex_unlock(&cf_log_mu);
}

/* The first log line holding all of a and b (b may be NULL), copied into out. */
bool cf_log_find(const char *a, const char *b, char *out, size_t cap)
{
    bool found = false;
    pthread_mutex_lock(&cf_log_mu);
    for (const char *p = cf_log_text; *p != '\0' && !found;) {
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
    pthread_mutex_unlock(&cf_log_mu);
    return found;
}

/* Wait up to CF_IO_MS for such a line (the connector logs on its thread). */
bool cf_log_wait(const char *a, const char *b, char *out, size_t cap)
{
    for (int i = 0; i < CF_IO_MS / 20; i++) {
        if (cf_log_find(a, b, out, cap))
            return true;
        usleep(20000);
    }
    return false;
}

/* ---- certificates ----------------------------------------------------------- */

SSL_CTX *cf_srv_ctx;
char cf_ca_file[64];

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

    cf_srv_ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate(cf_srv_ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(cf_srv_ctx, key), 1);
    SSL_CTX_set_alpn_select_cb(cf_srv_ctx, alpn_cb, NULL);

    strcpy(cf_ca_file, "/tmp/pgtp-bridge-ca-XXXXXX");
    int fd = mkstemp(cf_ca_file);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_int_eq(PEM_write_X509(f, x), 1); /* the certificate only, never the key */
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* ---- blocking sockets ----------------------------------------------------------- */

int cf_listen(uint16_t *port)
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

int cf_accept_within(int lfd, int ms)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    ck_assert_msg(poll(&p, 1, ms) == 1, "nothing connected within %d ms", ms);
    return accept(lfd, NULL, NULL);
}

void cf_read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&p, 1, CF_IO_MS), 1);
        ssize_t r = read(fd, (char *)buf + got, n - got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
}

/* ---- the echo target ------------------------------------------------------------ */

void *cf_echo_main(void *arg)
{
    struct cf_echo *e = arg;
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

void cf_peer_flush(struct cf_peer *p)
{
    unsigned char b[16384];
    size_t n;
    while ((n = tlsio_take(&p->t, b, sizeof(b))) > 0)
        ck_assert_int_eq(write(p->fd, b, n), (ssize_t)n);
}

/* Read what the socket has into TLS; false at EOF. */
bool cf_peer_recv(struct cf_peer *p)
{
    unsigned char b[16384];
    struct pollfd pf = {.fd = p->fd, .events = POLLIN};
    ck_assert_msg(poll(&pf, 1, CF_IO_MS) == 1, "the connector sent nothing within %d ms", CF_IO_MS);
    ssize_t n = read(p->fd, b, sizeof(b));
    if (n <= 0)
        return false;
    ck_assert_int_eq(tlsio_feed(&p->t, b, (size_t)n), 0);
    return true;
}

/* Accept, check the preamble's stream, TLS as the server. */
void cf_peer_accept(struct cf_peer *p, int lfd, uint64_t stream)
{
    uint8_t pre[BRIDGE_PREAMBLE_LEN];
    uint64_t got;
    char err[128];
    memset(p, 0, sizeof(*p));
    p->fd = cf_accept_within(lfd, CF_IO_MS);
    ck_assert_int_ge(p->fd, 0);
    cf_read_exact(p->fd, pre, sizeof(pre));
    ck_assert_int_eq(memcmp(pre, BRIDGE_MAGIC, BRIDGE_MAGIC_LEN), 0);
    ck_assert_int_eq(bridge_preamble_decode(pre, sizeof(pre), &got), 1);
    ck_assert_uint_eq(got, stream);
    ck_assert_int_eq(tlsio_init(&p->t, cf_srv_ctx, true, err, sizeof(err)), 0);
    enum tls_res r;
    while ((r = tlsio_handshake(&p->t)) == TLS_WANT) {
        cf_peer_flush(p);
        ck_assert(cf_peer_recv(p));
    }
    ck_assert_int_eq(r, TLS_OK);
    cf_peer_flush(p);
}

/* The connector may have closed first: the close_notify is best effort. */
void cf_peer_close(struct cf_peer *p)
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
void cf_peer_read(struct cf_peer *p, void *buf, size_t n)
{
    size_t got = 0, k;
    while (got < n) {
        enum tls_res r = tlsio_read(&p->t, (char *)buf + got, n - got, &k);
        if (r == TLS_OK) {
            got += k;
            continue;
        }
        ck_assert_int_eq(r, TLS_WANT);
        ck_assert(cf_peer_recv(p));
    }
}

void cf_peer_send_frame(struct cf_peer *p, uint8_t type, const char *const *kv)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), type);
    for (; kv != NULL && kv[0] != NULL; kv += 2)
        bridge_frame_add(&f, kv[0], kv[1]);
    int n = bridge_frame_end(&f);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(tlsio_write(&p->t, buf, (size_t)n), 0);
    cf_peer_flush(p);
}

/* The next frame that is not a PING (PINGs are answered, or returned
 * when p->silent) or PONG; its
 * payload NUL-terminated in payload. Returns the type, or 0 at EOF. */
uint8_t cf_peer_frame(struct cf_peer *p, char *payload, size_t cap)
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
                cf_peer_send_frame(p, BRIDGE_PONG, kv);
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
        if (!cf_peer_recv(p))
            return 0;
    }
}

void cf_payload_is(const char *payload, const char *key, const char *want)
{
    char v[BRIDGE_VALUE_MAX + 1];
    ck_assert_int_eq(
        bridge_payload_get((const uint8_t *)payload, strlen(payload), key, v, sizeof(v)), 1);
    ck_assert_str_eq(v, want);
}

/* ---- the connector on its thread ------------------------------------------------- */

void *cf_run_main(void *arg)
{
    struct cf_running *r = arg;
    r->rc = connector_run(r->cn);
    return NULL;
}

void cf_start(struct cf_running *r, uint16_t proxy_port, const char *allow)
{
    char addr[32], err[512];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", proxy_port);
    const char *argv[] = {
        "connector",   "--bridge-address",
        addr,          "--bridge-id",
        "unit-bridge", "--bridge-ca-path",
        cf_ca_file,    "--bridge-tls-validation-host",
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
    ck_assert_int_eq(pthread_create(&r->th, NULL, cf_run_main, r), 0);
}

void cf_stop(struct cf_running *r)
{
    connector_stop(r->cn);
    pthread_join(r->th, NULL);
    ck_assert_int_eq(r->rc, 0); /* uv_loop_close == 0: no handle forgotten */
    connector_free(r->cn);
    connector_opts_free(&r->o);
}

void cf_control_up(struct cf_peer *ctl, int lfd)
{
    char payload[BRIDGE_FRAME_MAX + 1];
    cf_peer_accept(ctl, lfd, 0);
    ck_assert_int_eq(cf_peer_frame(ctl, payload, sizeof(payload)), BRIDGE_HELLO);
    cf_payload_is(payload, "v", "1");
    cf_payload_is(payload, "id", "unit-bridge");
    cf_payload_is(payload, "secret", "unit-s3cret");
    cf_payload_is(payload, "name", "unit-conn");
    const char *kv[] = {"heartbeat", "1", "connector", "3", NULL};
    cf_peer_send_frame(ctl, BRIDGE_WELCOME, kv);
}

void cf_setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as connector_main does */
    cf_log_len = 0;
    cf_log_text[0] = '\0';
    log_set_sink(sink, NULL);
    make_certs();
}

void cf_teardown(void)
{
    log_set_sink(NULL, NULL);
    if (getenv("PGTP_TEST_LOG") != NULL) /* the connector's lines, when debugging a test */
        fputs(cf_log_text, stderr);
    SSL_CTX_free(cf_srv_ctx);
    unlink(cf_ca_file);
}

uint8_t cf_pattern(size_t i, unsigned salt)
{
    return (uint8_t)((i * 131u + (i >> 13) + salt) & 0xff);
}

/* Echo n bytes through an open data connection, byte-exact. */
void cf_echo_check(struct cf_peer *data, size_t n, unsigned salt)
{
    static uint8_t out[65536], back[65536];
    ck_assert_uint_le(n, sizeof(out));
    for (size_t i = 0; i < n; i++)
        out[i] = cf_pattern(i, salt);
    ck_assert_int_eq(tlsio_write(&data->t, out, n), 0);
    cf_peer_flush(data);
    cf_peer_read(data, back, n);
    ck_assert_int_eq(memcmp(out, back, n), 0);
}

bool cf_log_has(const char *s)
{
    pthread_mutex_lock(&cf_log_mu);
    bool found = strstr(cf_log_text, s) != NULL;
    pthread_mutex_unlock(&cf_log_mu);
    return found;
}
