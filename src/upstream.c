/*
 * upstream.c - opening the back leg: resolve, connect (every address in
 * turn), SSLRequest, require 'S' and nothing after it, then a TLS handshake
 * with full verification (chain to the configured roots + host name).
 *
 * Owns struct back_setup (resolver and connect requests), which lives only
 * until the back leg is ready or has failed. Never falls back to
 * plaintext. Every failure becomes one message for the client that names
 * the cause and the fix; conn.c decides when to send it.
 */
#include "upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "log.h"
#include "metrics.h"
#include "tlsctx.h"
#include "conn.h"
#include "leg.h"
#include "relay.h"
#include "worker.h"

struct back_setup {
    struct conn *c;
    uv_getaddrinfo_t gai;
    uv_connect_t connect_req;
    struct addrinfo *addrs, *cur;
    bool gai_pending, connect_pending;
    bool detached; /* the conn let go; the last callback frees */
    size_t errs_len;
    char errs[400]; /* one entry per address tried */
};

static void setup_destroy(struct back_setup *s)
{
    if (s->addrs != NULL)
        uv_freeaddrinfo(s->addrs);
    free(s);
}

void back_setup_free(struct conn *c)
{
    struct back_setup *s = c->setup;
    if (s == NULL)
        return;
    c->setup = NULL;
    if (s->gai_pending)
        uv_cancel((uv_req_t *)&s->gai);
    if (s->gai_pending || s->connect_pending) {
        s->detached = true;
        return;
    }
    setup_destroy(s);
}

static const struct config *cfg_of(struct conn *c)
{
    return c->w->rt->cfg;
}

/* The back leg failed: label is the metrics reason, msg what the client reads. */
static void fail(struct conn *c, const char *sqlstate, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct conn *c, const char *sqlstate, const char *label, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* The proxy's own readiness probes are not clients' handshakes: in
     * front of a dead upstream they would raise the failure counter by one
     * every probe interval and bury the real failures (issue 11). */
    if (c->health_probe)
        metrics_probe_failed();
    else
        metrics_handshake_failed(1, label);
    conn_back_failed(c, sqlstate, msg);
}

static void note_error(struct back_setup *s, const char *what, const char *addr)
{
    if (s->errs_len >= sizeof(s->errs))
        return;
    int n = snprintf(s->errs + s->errs_len, sizeof(s->errs) - s->errs_len, "%s%s (%s)",
                     s->errs_len ? "; " : "", what, addr);
    if (n > 0)
        s->errs_len += (size_t)n;
}

static void connect_cb(uv_connect_t *req, int status);
static void handshake_failed(struct conn *c);

/*
 * The leg's socket is made here rather than by uv_tcp_connect, so that its
 * number can be checked: a leg may not take one of the descriptors kept in
 * reserve for refusing clients (conn_fd_nearly_out). Returns 0, a libuv
 * error, or 1 (with *fdno and *limit set) when only reserved ones are left.
 */
static int back_socket(struct conn *c, int family, int *fdno, unsigned long long *limit)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    if (conn_fd_nearly_out(fd, limit)) {
        *fdno = fd;
        close(fd);
        conn_fd_limit_log(fd, *limit);
        return 1;
    }
    int r = uv_tcp_open(&c->back.tcp, fd);
    if (r != 0)
        close(fd);
    return r;
}

/* Try the next resolved address, or report that none worked. */
static void try_connect(struct conn *c)
{
    struct back_setup *s = c->setup;
    const struct config *cfg = cfg_of(c);

    while (s->cur != NULL) {
        struct addrinfo *ai = s->cur;
        s->cur = ai->ai_next;
        format_sockaddr(ai->ai_addr, c->back_addr, sizeof(c->back_addr));
        uv_tcp_init(c->w->loop, &c->back.tcp);
        c->back.tcp.data = &c->back;
        c->back.open = true;
        conn_hold(c);
        s->connect_req.data = s;
        int fdno = -1;
        unsigned long long limit = 0;
        int r = back_socket(c, ai->ai_family, &fdno, &limit);
        if (r == 0)
            r = uv_tcp_connect(&s->connect_req, &c->back.tcp, ai->ai_addr, connect_cb);
        if (r == 0) {
            s->connect_pending = true;
            c->bs = BACK_CONNECT;
            return;
        }
        if (r == 1 || r == UV_EMFILE || r == UV_ENFILE) {
            /* Our limit, not the upstream's fault: say so, with 53300. */
            conn_close_leg(&c->back);
            c->setup->cur = NULL;
            if (r == 1)
                fail(c, "53300", "fd_exhausted",
                     "pg-tls-proxy: too many connections: the proxy is nearly out of file "
                     "descriptors (%d open, limit %llu) — raise its open-files limit (ulimit -n / "
                     "LimitNOFILE) or lower the load",
                     fdno + 1, limit);
            else
                fail(
                    c, "53300", "fd_exhausted",
                    "pg-tls-proxy: too many connections: the proxy is out of file descriptors "
                    "(%s) — raise its open-files limit (ulimit -n / LimitNOFILE) or lower the load",
                    uv_strerror(r));
            return;
        }
        note_error(s, uv_strerror(r), c->back_addr);
        c->bs = BACK_CONNECT;
        conn_close_leg(&c->back); /* back_on_close() continues with the next */
        return;
    }
    fail(c, "08001", "unreachable",
         "pg-tls-proxy: upstream %s:%u is unreachable: %s — is the database running, and are "
         "--client-connection-host-or-ip and --client-connection-port right?",
         cfg->upstream_host, cfg->upstream_port, s->errs_len ? s->errs : "no address");
}

/* The back tcp handle has closed while setting up: next address, if any. */
void back_on_close(struct conn *c)
{
    if (c->phase == PHASE_OPEN && c->bs == BACK_CONNECT && c->setup != NULL)
        try_connect(c);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct back_setup *s = req->data;
    struct conn *c = s->c;

    s->gai_pending = false;
    if (s->detached || c->phase != PHASE_OPEN || c->bs != BACK_RESOLVE) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        if (s->detached && !s->connect_pending)
            setup_destroy(s);
        conn_release(c);
        return;
    }
    if (status < 0) {
        const struct config *cfg = cfg_of(c);
        fail(c, "08001", "dns",
             "pg-tls-proxy: could not resolve upstream host \"%s\": %s — check "
             "--client-connection-host-or-ip and this host's DNS",
             cfg->upstream_host, uv_strerror(status));
    } else {
        s->addrs = s->cur = res;
        try_connect(c);
    }
    conn_release(c);
}

void back_start(struct conn *c)
{
    const struct config *cfg = cfg_of(c);
    struct back_setup *s = calloc(1, sizeof(*s));
    char port[8];

    if (s == NULL) {
        fail(c, "XX000", "internal", "pg-tls-proxy: out of memory");
        return;
    }
    s->c = c;
    c->setup = s;
    c->bs = BACK_RESOLVE;
    c->back_start_ms = uv_now(c->w->loop);
    c->back_deadline = c->w->rt->connect_timeout_ms
                           ? uv_now(c->w->loop) + c->w->rt->connect_timeout_ms
                           : UINT64_MAX;
    conn_arm_timer(c);

    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", cfg->upstream_port);
    s->gai.data = s;
    int r = uv_getaddrinfo(c->w->loop, &s->gai, gai_cb, cfg->upstream_host, port, &hints);
    if (r < 0) {
        fail(c, "08001", "dns", "pg-tls-proxy: could not resolve upstream host \"%s\": %s",
             cfg->upstream_host, uv_strerror(r));
        return;
    }
    s->gai_pending = true;
    conn_hold(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct back_setup *s = req->data;
    struct conn *c = s->c;
    char err[256];
    uint8_t sslreq[8];

    s->connect_pending = false;
    if (s->detached) {
        if (!s->gai_pending)
            setup_destroy(s);
        return;
    }
    if (c->phase != PHASE_OPEN || status == UV_ECANCELED)
        return;
    if (status < 0) {
        note_error(s, uv_strerror(status), c->back_addr);
        conn_close_leg(&c->back); /* back_on_close() tries the next address */
        return;
    }
    uv_tcp_nodelay(&c->back.tcp, 1);
    unsigned ka = c->w->rt->cfg->keepalive_s;
    uv_tcp_keepalive(&c->back.tcp, ka > 0, ka);
    if (tlsio_init(&c->back.tls, c->w->back_ctx, false, err, sizeof(err)) < 0 ||
        tlsctx_back_session_setup(c->back.tls.ssl, cfg_of(c)->upstream_verify_name, err,
                                  sizeof(err)) < 0) {
        fail(c, "XX000", "internal", "pg-tls-proxy: %s", err);
        return;
    }
    if (cfg_of(c)->back_direct_tls) {
        /* PostgreSQL 17+: the ClientHello is the first thing we send. */
        c->bs = BACK_TLS;
        if (tlsio_handshake(&c->back.tls) == TLS_ERR) {
            handshake_failed(c);
            return;
        }
        if (leg_flush(&c->back) < 0 || leg_read_start(&c->back) < 0) {
            note_error(s, "write failed", c->back_addr);
            conn_close_leg(&c->back);
        }
        return;
    }
    pg_build_sslrequest(sslreq);
    c->bs = BACK_SSLREQ;
    if (leg_send(&c->back, sslreq, sizeof(sslreq)) < 0 || leg_read_start(&c->back) < 0) {
        note_error(s, "write failed", c->back_addr);
        conn_close_leg(&c->back);
    }
}

/* Why the upstream's handshake failed, in words a user can act on. */
static void handshake_failed(struct conn *c)
{
    const struct config *cfg = cfg_of(c);
    SSL *ssl = c->back.tls.ssl;
    long vr = SSL_get_verify_result(ssl);
    char e[200];

    tlsio_error(e, sizeof(e));
    leg_flush(&c->back); /* our alert, so the server logs why */
    if (vr != X509_V_OK) {
        /* Which certificate failed and why, as the verify callback saw it
         * (tlsctx.c); without it (no memory), the bare code and the leaf. */
        const struct tlsctx_verify_failure *seen = tlsctx_verify_failure(ssl);
        struct tlsctx_verify_failure bare = {.err = (int)vr};
        if (seen == NULL) {
            X509 *peer = SSL_get0_peer_certificate(ssl);
            if (peer != NULL)
                tlsctx_cert_names(peer, bare.names, sizeof(bare.names));
            seen = &bare;
        }
        char msg[1024];
        const char *label =
            tlsctx_verify_message(seen, cfg->upstream_verify_name, time(NULL), msg, sizeof(msg));
        fail(c, "08001", label, "%s", msg);
    } else {
        fail(c, "08001", "tls", "pg-tls-proxy: TLS handshake with upstream %s failed: %s — %s",
             c->back_addr, e[0] ? e : "unknown error",
             cfg->back_direct_tls ? "--client-direct-tls needs PostgreSQL 17 or newer upstream; "
                                    "remove it for older servers"
                                  : "does the upstream accept TLS 1.2 or newer?");
    }
}

static void print_chain(struct conn *c)
{
    STACK_OF(X509) *chain = SSL_get0_verified_chain(c->back.tls.ssl);
    char line[1024];
    printf("upstream %s verified as \"%s\": %s %s\n", c->back_addr, cfg_of(c)->upstream_verify_name,
           tlsio_version(&c->back.tls), tlsio_cipher(&c->back.tls));
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        tlsctx_cert_summary(sk_X509_value(chain, i), line, sizeof(line));
        printf("  [%d] %s\n", i, line);
    }
    fflush(stdout);
}

void back_on_data(struct conn *c, const uint8_t *buf, size_t len)
{
    if (c->bs == BACK_SSLREQ) {
        if (buf[0] == 'S' && len > 1) {
            /* CVE-2021-23222: bytes after 'S' were not encrypted. */
            fail(c, "08001", "bytes_after_s",
                 "pg-tls-proxy: upstream %s sent %zu unexpected bytes after agreeing to TLS "
                 "(possible man-in-the-middle, CVE-2021-23222); connection refused",
                 c->back_addr, len - 1);
        } else if (buf[0] == 'S') {
            c->bs = BACK_TLS;
            if (tlsio_handshake(&c->back.tls) == TLS_ERR) {
                handshake_failed(c);
                return;
            }
            if (leg_flush(&c->back) < 0)
                fail(c, "08001", "closed", "pg-tls-proxy: lost the upstream %s", c->back_addr);
        } else if (buf[0] == 'N') {
            fail(c, "08001", "refused_tls",
                 "pg-tls-proxy: upstream %s refused TLS (it answered 'N' to SSLRequest) — "
                 "turn ssl on in the database server; pg-tls-proxy never falls back to "
                 "plaintext",
                 c->back_addr);
        } else if (buf[0] == 'E') {
            fail(c, "08001", "refused_tls",
                 "pg-tls-proxy: upstream %s answered the TLS request with an error — see the "
                 "database server's log",
                 c->back_addr);
        } else {
            fail(c, "08001", "protocol",
                 "pg-tls-proxy: upstream %s does not speak the PostgreSQL protocol (it "
                 "answered 0x%02x to SSLRequest) — check --client-connection-port",
                 c->back_addr, buf[0]);
        }
        return;
    }
    if (tlsio_feed(&c->back.tls, buf, len) < 0) {
        conn_close(c);
        return;
    }
    if (c->bs == BACK_TLS) {
        enum tls_res r = tlsio_handshake(&c->back.tls);
        if (r == TLS_WANT) {
            if (leg_flush(&c->back) < 0)
                fail(c, "08001", "closed", "pg-tls-proxy: lost the upstream %s", c->back_addr);
            return;
        }
        if (r != TLS_OK) {
            handshake_failed(c);
            return;
        }
        if (cfg_of(c)->back_direct_tls && !tlsctx_alpn_postgresql(c->back.tls.ssl)) {
            fail(c, "08001", "alpn",
                 "pg-tls-proxy: upstream %s accepted direct TLS without ALPN \"postgresql\" — "
                 "is it PostgreSQL 17 or newer? If not, remove --client-direct-tls",
                 c->back_addr);
            return;
        }
        c->back.tls_up = true;
        c->bs = BACK_READY;
        /* Nothing should come before our StartupMessage; read again when relaying. */
        leg_read_stop(&c->back);
        tlsio_release(&c->back.tls);
        conn_arm_timer(c);
        log_debug("event=back_tls_up conn=%llu upstream=%s tls=%s cipher=%s",
                  (unsigned long long)c->id, c->back_addr, tlsio_version(&c->back.tls),
                  tlsio_cipher(&c->back.tls));
        if (leg_flush(&c->back) < 0) {
            fail(c, "08001", "closed", "pg-tls-proxy: lost the upstream %s", c->back_addr);
            return;
        }
        metrics_upstream_connected((double)(uv_now(c->w->loop) - c->back_start_ms));
        if (c->probe && !c->health_probe)
            print_chain(c);
        conn_back_ready(c);
        return;
    }
    if (c->bs == BACK_RELAY)
        relay_pump(c, &c->back);
}

void back_timeout(struct conn *c)
{
    const struct config *cfg = cfg_of(c);
    static const char *const what[] = {
        [BACK_RESOLVE] = "resolving its name",
        [BACK_CONNECT] = "connecting",
        [BACK_SSLREQ] = "waiting for its answer to SSLRequest",
        [BACK_TLS] = "in the TLS handshake",
    };
    const char *w = c->bs <= BACK_TLS && what[c->bs] ? what[c->bs] : "connecting";
    fail(c, "08001", "timeout",
         "pg-tls-proxy: timed out after %u s %s with upstream %s:%u — is the database "
         "reachable from the proxy host, and are --client-connection-host-or-ip and "
         "--client-connection-port right?",
         c->w->rt->connect_timeout_ms / 1000, w, cfg->upstream_host, cfg->upstream_port);
}
