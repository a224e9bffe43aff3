/*
 * back.c - the upstream's leg once dial.c has connected it: SSLRequest,
 * require 'S' and nothing after it, then a TLS handshake with full
 * verification (chain to the route's roots + host name); or, with direct
 * TLS, a ClientHello first and ALPN "postgresql" required.
 *
 * Owns the back state machine (back_set_state). Never falls back to
 * plaintext. Every failure becomes one message for the client that names
 * the cause and the fix, handed to the leg's owner (struct back_ops),
 * which decides when and whether to send it.
 */
#include "back.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "conn.h"
#include "dial.h"
#include "leg.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"
#include "route.h"
#include "tlsctx.h"
#include "worker.h"

static const char *const state_names[BACK_STATES] = {
    [BACK_IDLE] = "idle",   [BACK_DIAL] = "dial",   [BACK_SSLREQ] = "sslreq", [BACK_TLS] = "tls",
    [BACK_READY] = "ready", [BACK_RELAY] = "relay", [BACK_FAILED] = "failed",
};

#define TO(s) (1u << (s))
/* legal[from]: the states it may move to. */
static const unsigned legal[BACK_STATES] = {
    [BACK_IDLE] = TO(BACK_DIAL) | TO(BACK_FAILED),
    [BACK_DIAL] = TO(BACK_SSLREQ) | TO(BACK_TLS) | TO(BACK_FAILED),
    [BACK_SSLREQ] = TO(BACK_TLS) | TO(BACK_FAILED),
    [BACK_TLS] = TO(BACK_READY) | TO(BACK_FAILED),
    [BACK_READY] = TO(BACK_RELAY) | TO(BACK_FAILED),
    [BACK_RELAY] = 0,
    [BACK_FAILED] = 0,
};
#undef TO

const char *back_state_name(enum back_state s)
{
    return (unsigned)s < BACK_STATES ? state_names[s] : "invalid";
}

bool back_move_legal(enum back_state from, enum back_state to)
{
    return (unsigned)from < BACK_STATES && (unsigned)to < BACK_STATES &&
           (legal[from] & (1u << to)) != 0;
}

bool back_set_state(struct conn *c, enum back_state to, const char *why)
{
    enum back_state from = c->bs;
    if (!conn_transition(c, "back", back_state_name(from), back_state_name(to),
                         back_move_legal(from, to), why))
        return false;
    c->bs = to;
    return true;
}

bool back_setting_up(const struct conn *c)
{
    return c->bs == BACK_DIAL || c->bs == BACK_SSLREQ || c->bs == BACK_TLS;
}

bool back_dialing(const struct conn *c)
{
    return c->bs == BACK_DIAL;
}

bool back_negotiating(const struct conn *c)
{
    return c->bs == BACK_SSLREQ || c->bs == BACK_TLS;
}

bool back_pending(const struct conn *c)
{
    return back_setting_up(c) || c->bs == BACK_READY;
}

/* The back leg failed: label is the metrics reason, msg what the client
 * reads. The owner decides what the client hears. Ends the leg. */
static void back_fail(struct conn *c, const char *sqlstate, const char *label, const char *msg)
{
    char q[1200];
    log_warn("event=upstream_failed conn=%llu front=%s upstream=%s sqlstate=%s message=\"%s\"",
             (unsigned long long)c->id, c->front_addr, c->back_addr, sqlstate,
             log_escape(msg, q, sizeof(q)));
    if (!back_set_state(c, BACK_FAILED, label))
        return;
    metrics_upstream_failed(c->route->mslot, msg); /* why /readyz says not ready */
    dial_free(c);
    leg_read_stop(&c->back);
    conn_close_leg(&c->back);
    c->back_ops->failed(c, sqlstate, label, msg);
}

/* A failure of the set-up itself, counted in the metrics. */
static void count_failure(struct conn *c, const char *label)
{
    /* The proxy's own readiness probes are not clients' handshakes: in
     * front of a dead upstream they would raise the failure counter by one
     * every probe interval and bury the real failures (issue 11). */
    if (c->back_ops->probe_metrics)
        metrics_probe_failed(c->route->mslot);
    else
        metrics_handshake_failed(1, label, c->route->mslot);
}

static void fail(struct conn *c, const char *sqlstate, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct conn *c, const char *sqlstate, const char *label, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    count_failure(c, label);
    back_fail(c, sqlstate, label, msg);
}

void back_lost(struct conn *c, const char *what)
{
    char msg[512];
    snprintf(msg, sizeof(msg),
             "pg-tls-proxy: upstream %s closed the connection during TLS set-up (%s) — %s",
             c->back_addr, what,
             c->route->direct_tls
                 ? "--client-direct-tls needs PostgreSQL 17 or newer upstream; remove it "
                   "for older servers"
                 : "see the database server's log");
    back_fail(c, "08001", "closed", msg);
}

/* Why the upstream's handshake failed, in words a user can act on. */
static void handshake_failed(struct conn *c)
{
    const struct route *rt = c->route;
    SSL *ssl = leg_ssl(&c->back);
    long vr = SSL_get_verify_result(ssl);
    char e[200];

    leg_tls_error(e, sizeof(e));
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
            tlsctx_verify_message(seen, rt->verify_name, time(NULL), msg, sizeof(msg));
        fail(c, "08001", label, "%s", msg);
    } else {
        fail(c, "08001", "tls", "pg-tls-proxy: TLS handshake with upstream %s failed: %s — %s",
             c->back_addr, e[0] ? e : "unknown error",
             rt->direct_tls ? "--client-direct-tls needs PostgreSQL 17 or newer upstream; "
                              "remove it for older servers"
                            : "does the upstream accept TLS 1.2 or newer?");
    }
}

void back_print_chain(struct conn *c)
{
    STACK_OF(X509) *chain = SSL_get0_verified_chain(leg_ssl(&c->back));
    char line[1024];
    printf("upstream %s verified as \"%s\": %s %s\n", c->back_addr, c->route->verify_name,
           leg_tls_version(&c->back), leg_tls_cipher(&c->back));
    for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
        tlsctx_cert_summary(sk_X509_value(chain, i), line, sizeof(line));
        printf("  [%d] %s\n", i, line);
    }
    fflush(stdout);
}

static void dial_failed(struct conn *c, const char *sqlstate, const char *label, const char *msg)
{
    count_failure(c, label);
    back_fail(c, sqlstate, label, msg);
}

/* dial.c has connected the socket: start TLS the route's way. */
static void dial_connected(struct conn *c)
{
    const struct route *rt = c->route;
    char err[256];
    uint8_t sslreq[8];

    if (leg_tls_init(&c->back, rt->back_ctx, false, err, sizeof(err)) < 0 ||
        tlsctx_back_session_setup(leg_ssl(&c->back), rt->verify_name, err, sizeof(err)) < 0) {
        fail(c, "XX000", "internal", "pg-tls-proxy: %s", err);
        return;
    }
    if (rt->direct_tls) {
        /* PostgreSQL 17+: the ClientHello is the first thing we send. */
        if (!back_set_state(c, BACK_TLS, "connected, direct TLS"))
            return;
        c->back_tls_ms = uv_now(c->w->loop);
        leg_tls_begin(&c->back);
        if (leg_read_start(&c->back) < 0) {
            fail(c, "08001", "closed", "pg-tls-proxy: lost the upstream %s", c->back_addr);
            return;
        }
        leg_tls_step(&c->back); /* the ClientHello */
        return;
    }
    pg_build_sslrequest(sslreq);
    if (!back_set_state(c, BACK_SSLREQ, "connected"))
        return;
    /* Another instance of a group behind a PROXY-protocol balancer expects
     * a header on every connection (peers.c): LOCAL, its own address. */
    static const uint8_t pp_local[16] = {'\r', '\n', '\r', '\n', 0,    '\r', '\n', 'Q',
                                         'U',  'I',  'T',  '\n', 0x20, 0,    0,    0};
    if (rt->proxy_local && leg_send(&c->back, pp_local, sizeof(pp_local)) < 0) {
        fail(c, "08001", "closed", "pg-tls-proxy: lost the upstream %s", c->back_addr);
        return;
    }
    if (leg_send(&c->back, sslreq, sizeof(sslreq)) < 0 || leg_read_start(&c->back) < 0)
        fail(c, "08001", "closed", "pg-tls-proxy: lost the upstream %s", c->back_addr);
}

void back_start(struct conn *c, const struct back_ops *ops)
{
    c->back_ops = ops;
    if (!back_set_state(c, BACK_DIAL, "start"))
        return;
    c->back_start_ms = uv_now(c->w->loop);
    c->back_deadline = c->route->connect_timeout_ms
                           ? uv_now(c->w->loop) + c->route->connect_timeout_ms
                           : UINT64_MAX;
    conn_arm_timer(c);
    dial_start(c, dial_connected, dial_failed);
}

void back_set_owner(struct conn *c, const struct back_ops *ops)
{
    c->back_ops = ops;
}

/* BACK_SSLREQ: the answer to our SSLRequest. */
static void sslreq_answer(struct conn *c, const uint8_t *buf, size_t len)
{
    if (buf[0] == 'S' && len > 1) {
        /* CVE-2021-23222: bytes after 'S' were not encrypted. */
        fail(c, "08001", "bytes_after_s",
             "pg-tls-proxy: upstream %s sent %zu unexpected bytes after agreeing to TLS "
             "(possible man-in-the-middle, CVE-2021-23222); connection refused",
             c->back_addr, len - 1);
    } else if (buf[0] == 'S') {
        if (!back_set_state(c, BACK_TLS, "'S'"))
            return;
        c->back_tls_ms = uv_now(c->w->loop);
        leg_tls_begin(&c->back);
        leg_tls_step(&c->back); /* the ClientHello */
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
}

/* The handshake is done: ALPN for direct TLS, then READY. */
static void tls_ready(struct conn *c)
{
    if (c->route->direct_tls && !tlsctx_alpn_postgresql(leg_ssl(&c->back))) {
        fail(c, "08001", "alpn",
             "pg-tls-proxy: upstream %s accepted direct TLS without ALPN \"postgresql\" — "
             "is it PostgreSQL 17 or newer? If not, remove --client-direct-tls",
             c->back_addr);
        return;
    }
    c->back.tls_up = true;
    if (!back_set_state(c, BACK_READY, "verified"))
        return;
    /* Nothing should come before our StartupMessage; read again when relaying. */
    leg_read_stop(&c->back);
    leg_tls_release(&c->back);
    conn_arm_timer(c);
    log_debug("event=back_tls_up conn=%llu upstream=%s tls=%s cipher=%s", (unsigned long long)c->id,
              c->back_addr, leg_tls_version(&c->back), leg_tls_cipher(&c->back));
    if (leg_flush(&c->back) < 0) {
        fail(c, "08001", "closed", "pg-tls-proxy: lost the upstream %s", c->back_addr);
        return;
    }
    uint64_t now = uv_now(c->w->loop);
    metrics_back_handshake((double)(now - c->back_tls_ms));
    metrics_upstream_connected(c->route->mslot, (double)(now - c->back_start_ms));
    c->back_ops->ready(c);
}

void back_on_event(struct conn *c, enum leg_event ev, const uint8_t *buf, size_t len)
{
    switch (ev) {
    case LEG_RAW:
        if (c->bs == BACK_SSLREQ)
            sslreq_answer(c, buf, len);
        return;
    case LEG_TLS_READY:
        tls_ready(c);
        return;
    case LEG_TLS_FAILED:
        handshake_failed(c);
        return;
    case LEG_DATA:
        if (c->bs == BACK_RELAY)
            relay_pump(c, &c->back);
        return;
    default:
        return;
    }
}

void back_timeout(struct conn *c)
{
    const struct route *rt = c->route;
    const char *doing = dial_doing(c);
    if (c->bs == BACK_SSLREQ)
        doing = "waiting for its answer to SSLRequest";
    else if (c->bs == BACK_TLS)
        doing = "in the TLS handshake";
    if (rt->bridge != NULL) {
        fail(c, "08001", "timeout",
             "pg-tls-proxy: timed out after %u s %s with upstream %s:%u through bridge \"%s\" "
             "— is a connector for \"%s\" online, and can it reach %s:%u?",
             rt->connect_timeout_ms / 1000, doing != NULL ? doing : "connecting", rt->host,
             rt->port, rt->bridge, rt->bridge, rt->host, rt->port);
        return;
    }
    fail(c, "08001", "timeout",
         "pg-tls-proxy: timed out after %u s %s with upstream %s:%u — is the database "
         "reachable from the proxy host, and are --client-connection-host-or-ip and "
         "--client-connection-port right?",
         rt->connect_timeout_ms / 1000, doing != NULL ? doing : "connecting", rt->host, rt->port);
}
