/*
 * connector_net.c - the connector's network helpers: resolve-and-connect
 * (every address in turn), writes that copy only what the socket did not
 * take at once, heap TCP handles that outlive their owner until their
 * close callback, and the client TLS context and sessions for the proxy.
 *
 * Owns each cdial until its callback has run (or it was cancelled and its
 * requests have finished), and every TCP handle it has not handed over.
 * Never logs: callers get messages and decide.
 */
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "connector_int.h"

/* ---- TCP handles and writes ----------------------------------------------- */

static void free_handle_cb(uv_handle_t *h)
{
    free(h);
}

void cnet_close(uv_tcp_t *tcp)
{
    if (tcp == NULL)
        return;
    tcp->data = NULL; /* write callbacks still to come only free their request */
    if (!uv_is_closing((uv_handle_t *)tcp))
        uv_close((uv_handle_t *)tcp, free_handle_cb);
}

struct cwrite {
    uv_write_t req;
    unsigned char data[];
};

int cnet_write(uv_tcp_t *tcp, const void *p, size_t n, uv_write_cb cb)
{
    const unsigned char *b = p;
    if (n == 0)
        return 0;
    uv_buf_t buf = uv_buf_init((char *)(uintptr_t)b, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)tcp, &buf, 1);
    if (w < 0 && w != UV_EAGAIN)
        return w;
    size_t done = w > 0 ? (size_t)w : 0;
    if (done == n)
        return 0;
    struct cwrite *cw = malloc(sizeof(*cw) + (n - done));
    if (cw == NULL)
        return UV_ENOMEM;
    memcpy(cw->data, b + done, n - done);
    buf = uv_buf_init((char *)cw->data, (unsigned)(n - done));
    int r = uv_write(&cw->req, (uv_stream_t *)tcp, &buf, 1, cb);
    if (r < 0)
        free(cw);
    return r;
}

void cnet_write_done(uv_write_t *req)
{
    free((struct cwrite *)req);
}

int cnet_flush_tls(uv_tcp_t *tcp, struct tlsio *t, uv_write_cb cb)
{
    const unsigned char *p;
    size_t n = tlsio_peek(t, &p);
    int r = cnet_write(tcp, p, n, cb);
    tlsio_consume(t, n);
    return r;
}

size_t cnet_queued(const uv_tcp_t *tcp, const struct tlsio *t)
{
    return (tcp != NULL ? tcp->write_queue_size : 0) + (t != NULL ? tlsio_pending(t) : 0);
}

void cnet_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[CONN_READ_BUF];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

uint64_t cnet_now_ms(uv_loop_t *loop)
{
    uv_update_time(loop);
    return uv_now(loop);
}

/* ---- resolve and connect ------------------------------------------------- */

struct cdial {
    uv_loop_t *loop;
    uv_getaddrinfo_t gai;
    uv_connect_t creq;
    uv_tcp_t *tcp; /* the attempt in progress */
    struct addrinfo *res, *cur;
    bool resolving, connecting, cancelled;
    cdial_cb cb;
    void *arg;
    uint16_t port;
    int last_status;
    char last_addr[INET6_ADDRSTRLEN + 16];
    char host[CONNECTOR_HOST_MAX];
};

static void addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        uv_ip6_name(s6, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        snprintf(buf, len, "[%s]:%u", ip, port);
        return;
    }
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
    uv_ip4_name(s4, ip, sizeof(ip));
    snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
}

static void dial_free(struct cdial *d)
{
    if (d->res != NULL)
        uv_freeaddrinfo(d->res);
    free(d);
}

/* Report once, then the dial is gone. */
static void dial_finish(struct cdial *d, uv_tcp_t *tcp, int status, const char *msg)
{
    cdial_cb cb = d->cb;
    void *arg = d->arg;
    dial_free(d);
    cb(arg, tcp, status, msg);
}

static void try_next(struct cdial *d);

static void connect_cb(uv_connect_t *req, int status)
{
    struct cdial *d = req->data;
    uv_tcp_t *tcp = d->tcp;
    d->connecting = false;
    d->tcp = NULL;
    if (d->cancelled) {
        cnet_close(tcp);
        dial_free(d);
        return;
    }
    if (status == 0) {
        tcp->data = NULL;
        dial_finish(d, tcp, 0, "connected");
        return;
    }
    cnet_close(tcp);
    d->last_status = status;
    d->cur = d->cur->ai_next;
    try_next(d);
}

static void try_next(struct cdial *d)
{
    for (; d->cur != NULL; d->cur = d->cur->ai_next) {
        addr_text(d->cur->ai_addr, d->last_addr, sizeof(d->last_addr));
        uv_tcp_t *tcp = malloc(sizeof(*tcp));
        if (tcp == NULL || uv_tcp_init(d->loop, tcp) != 0) {
            free(tcp);
            d->last_status = UV_ENOMEM;
            continue;
        }
        tcp->data = NULL;
        (void)uv_tcp_nodelay(tcp, 1);
        /* Idle sessions must outlive NAT gateways between here and the
         * proxy (AWS's forgets a flow after 350 s of silence). */
        (void)uv_tcp_keepalive(tcp, 1, CONN_KEEPALIVE_S);
        d->creq.data = d;
        int r = uv_tcp_connect(&d->creq, tcp, d->cur->ai_addr, connect_cb);
        if (r == 0) {
            d->tcp = tcp;
            d->connecting = true;
            return;
        }
        cnet_close(tcp);
        d->last_status = r;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "%s (%s)", uv_strerror(d->last_status), d->last_addr);
    dial_finish(d, NULL, d->last_status, msg);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct cdial *d = req->data;
    d->resolving = false;
    d->res = res;
    if (d->cancelled) {
        dial_free(d);
        return;
    }
    if (status < 0 || res == NULL) {
        char msg[CONNECTOR_HOST_MAX + 80];
        snprintf(msg, sizeof(msg), "cannot resolve \"%s\": %s", d->host,
                 status < 0 ? uv_strerror(status) : "no address");
        dial_finish(d, NULL, status < 0 ? status : UV_EAI_NONAME, msg);
        return;
    }
    d->cur = res;
    d->last_status = UV_EAI_NONAME;
    try_next(d);
}

struct cdial *cdial_start(uv_loop_t *loop, const char *host, uint16_t port, cdial_cb cb, void *arg)
{
    struct cdial *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->loop = loop;
    d->cb = cb;
    d->arg = arg;
    d->port = port;
    snprintf(d->host, sizeof(d->host), "%s", host);
    char svc[8];
    snprintf(svc, sizeof(svc), "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    d->gai.data = d;
    if (uv_getaddrinfo(loop, &d->gai, gai_cb, host, svc, &hints) != 0) {
        free(d);
        return NULL;
    }
    d->resolving = true;
    return d;
}

void cdial_cancel(struct cdial *d)
{
    if (d == NULL || d->cancelled)
        return;
    d->cancelled = true;
    if (d->resolving)
        (void)uv_cancel((uv_req_t *)&d->gai); /* else its callback comes anyway */
    if (d->connecting)
        cnet_close(d->tcp); /* connect_cb follows with UV_ECANCELED */
}

/* ---- TLS towards the proxy ------------------------------------------------ */

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* A PEM file, or every *.pem and *.crt of a directory. */
static int load_roots(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    struct stat st;
    char e[200];
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "--bridge-ca-path \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (X509_STORE_load_file(store, path) != 1) {
            snprintf(err, errlen, "--bridge-ca-path \"%s\": no PEM certificate could be read (%s)",
                     path, tlsio_error(e, sizeof(e)));
            return -1;
        }
        return 0;
    }
    DIR *dir = opendir(path);
    int loaded = 0;
    struct dirent *de;
    while (dir != NULL && (de = readdir(dir)) != NULL) {
        char file[4096];
        if (!has_suffix(de->d_name, ".pem") && !has_suffix(de->d_name, ".crt"))
            continue;
        snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
        if (X509_STORE_load_file(store, file) != 1) {
            snprintf(err, errlen, "--bridge-ca-path: \"%s\": no PEM certificate could be read (%s)",
                     file, tlsio_error(e, sizeof(e)));
            closedir(dir);
            return -1;
        }
        loaded++;
    }
    if (dir != NULL)
        closedir(dir);
    if (loaded == 0) {
        snprintf(err, errlen, "--bridge-ca-path \"%s\": no *.pem or *.crt file in it", path);
        return -1;
    }
    return 0;
}

SSL_CTX *cnet_tls_ctx(const char *ca_path, char *err, size_t errlen)
{
    static const unsigned char alpn[] = "\x0d" BRIDGE_ALPN;
    _Static_assert(sizeof(BRIDGE_ALPN) - 1 == 0x0d, "ALPN length prefix");
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char e[200];
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create a TLS context: %s", tlsio_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    int ok = ca_path != NULL ? load_roots(ctx, ca_path, err, errlen) == 0
                             : SSL_CTX_set_default_verify_paths(ctx) == 1;
    if (ok && SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        snprintf(err, errlen, "cannot set ALPN: %s", tlsio_error(e, sizeof(e)));
        ok = 0;
    }
    if (!ok) {
        if (ca_path == NULL)
            snprintf(err, errlen, "cannot load the system's CA roots: %s",
                     tlsio_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static bool is_ip(const char *s)
{
    unsigned char b[16];
    return uv_inet_pton(AF_INET, s, b) == 0 || uv_inet_pton(AF_INET6, s, b) == 0;
}

int cnet_tls_start(struct tlsio *t, SSL_CTX *ctx, const char *name, uint64_t stream, char *err,
                   size_t errlen)
{
    uint8_t pre[BRIDGE_PREAMBLE_LEN];
    char e[200];
    if (tlsio_init(t, ctx, false, err, errlen) < 0)
        return -1;
    /* SSL_set1_host takes an IP address as one (OpenSSL 3): checked against
     * the certificate's IP SANs, not sent as SNI (RFC 6066 forbids it). */
    if (SSL_set1_host(t->ssl, name) != 1 ||
        (!is_ip(name) && SSL_set_tlsext_host_name(t->ssl, name) != 1)) {
        snprintf(err, errlen, "cannot check the name \"%s\": %s", name, tlsio_error(e, sizeof(e)));
        tlsio_free(t);
        return -1;
    }
    bridge_preamble_encode(stream, pre);
    if (tlsio_queue_raw(t, pre, sizeof(pre)) < 0 || tlsio_handshake(t) == TLS_ERR) {
        snprintf(err, errlen, "cannot start TLS: %s", tlsio_error(e, sizeof(e)));
        tlsio_free(t);
        return -1;
    }
    return 0;
}

void cnet_tls_failure(const struct tlsio *t, const char *name, char *buf, size_t len)
{
    char e[200];
    long v = t->ssl != NULL ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        ERR_clear_error();
        snprintf(buf, len, "TLS certificate verify failed: %s (name checked: %s)",
                 X509_verify_cert_error_string(v), name);
        return;
    }
    tlsio_error(e, sizeof(e));
    snprintf(buf, len, "TLS handshake failed: %s", e[0] != '\0' ? e : "connection closed");
}

bool cnet_alpn_ok(const struct tlsio *t)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    return n == sizeof(BRIDGE_ALPN) - 1 && memcmp(p, BRIDGE_ALPN, n) == 0;
}
