/*
 * connector.c - the connector's control connection to the proxy's bridge
 * listener: preamble, verify-full TLS, HELLO, WELCOME, heartbeats, OPENs
 * handed to connector_stream.c, reconnects with backoff and jitter, and
 * the BYE on the way out (connector_main.c runs the loop and stops it).
 *
 * Owns the control connection and its timers.
 * Every failure is logged once per attempt with its cause; the secret is
 * only ever written into the HELLO frame, which is wiped once encrypted.
 * Streams are independent connections: losing the control connection
 * never touches them.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "connector_int.h"
#include "log.h"
#include "sdnotify.h"

#define CTL_BYE_LINGER_MS 1000 /* after our BYE: the socket's shutdown, at most this long */

uint64_t connector_backoff_next(uint64_t *base, uint64_t cap_ms, uint32_t rnd)
{
    uint64_t b = *base < CONNECTOR_BACKOFF_START_MS ? CONNECTOR_BACKOFF_START_MS : *base;
    if (b > cap_ms)
        b = cap_ms;
    uint64_t lo = b / 2;
    uint64_t wait = lo + (uint64_t)rnd % (b - lo + 1);
    *base = b * 2 > cap_ms ? cap_ms : b * 2;
    return wait;
}

static uint32_t random32(void)
{
    uint32_t r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
        r = (uint32_t)rand();
    return r;
}

static void ctl_start(struct connector *cn);
static void hb_cb(uv_timer_t *t);

/* ---- tearing down and retrying ---------------------------------------------- */

static void ctl_teardown(struct connector *cn)
{
    cdial_cancel(cn->dial);
    cn->dial = NULL;
    cnet_close(cn->tcp);
    cn->tcp = NULL;
    if (cn->tls.ssl != NULL)
        tlsio_free(&cn->tls);
    cn->inlen = 0;
    uv_timer_stop(&cn->ctl_timer);
}

static void retry_cb(uv_timer_t *t)
{
    ctl_start(t->data);
}

/*
 * The control connection has failed or ended: log why (once), close it and
 * try again after the backoff. Ends the control connection: callers return.
 */
static void ctl_retry(struct connector *cn, enum log_level lvl, const char *event,
                      const char *reason)
{
    const struct connector_opts *o = cn->o;
    char q[600];
    bool was_up = cn->state == CTL_UP;
    uint64_t now = cnet_now_ms(&cn->loop);
    if (was_up && now - cn->up_since_ms >= CONNECTOR_BACKOFF_RESET_MS)
        cn->backoff_base_ms = CONNECTOR_BACKOFF_START_MS;
    ctl_teardown(cn);
    cn->state = CTL_WAIT;
    snprintf(cn->down_reason, sizeof(cn->down_reason), "%s", reason);
    log_escape(reason, q, sizeof(q));
    if (cn->with_signals && !cn->stopping)
        sdnotify_status("tunnel down to %s (bridge %s): %s; retrying", o->bridge_address,
                        o->bridge_id, reason);
    if (cn->stopping) {
        log_msg(lvl, "event=%s connector=%s bridge=%s proxy=%s reason=\"%s\"", event, o->name,
                o->bridge_id, o->bridge_address, q);
        connector_maybe_finish(cn);
        return;
    }
    uint64_t wait =
        connector_backoff_next(&cn->backoff_base_ms, o->reconnect_max_s * 1000ull, random32());
    if (was_up)
        log_msg(lvl,
                "event=%s connector=%s bridge=%s proxy=%s reason=\"%s\" up_ms=%llu "
                "streams_open=%zu retry_in_ms=%llu note=\"open streams keep running: each is "
                "its own connection\"",
                event, o->name, o->bridge_id, o->bridge_address, q,
                (unsigned long long)(now - cn->up_since_ms), cn->nstreams,
                (unsigned long long)wait);
    else
        log_msg(lvl, "event=%s connector=%s bridge=%s proxy=%s reason=\"%s\" retry_in_ms=%llu",
                event, o->name, o->bridge_id, o->bridge_address, q, (unsigned long long)wait);
    uv_timer_start(&cn->ctl_timer, retry_cb, wait, 0);
}

/* ---- writing ---------------------------------------------------------------- */

static void ctl_write_cb(uv_write_t *req, int status)
{
    struct connector *cn = req->handle->data;
    cnet_write_done(req);
    if (cn == NULL || status == 0 || status == UV_ECANCELED)
        return;
    char why[160];
    snprintf(why, sizeof(why), "writing to the proxy: %s", uv_strerror(status));
    ctl_retry(cn, LOG_WARN, cn->state == CTL_UP ? "tunnel_down" : "tunnel_failed", why);
}

/* Send what TLS has queued. 0, or -1: the connection was ended. */
static int ctl_flush(struct connector *cn)
{
    int r = cnet_flush_tls(cn->tcp, &cn->tls, ctl_write_cb);
    if (r == 0)
        return 0;
    char why[160];
    snprintf(why, sizeof(why), "writing to the proxy: %s", uv_strerror(r));
    ctl_retry(cn, LOG_WARN, cn->state == CTL_UP ? "tunnel_down" : "tunnel_failed", why);
    return -1;
}

/* Never ends the connection: a write that fails shows up in ctl_write_cb
 * or as a read error. */
void connector_send_frame(struct connector *cn, const uint8_t *frame, size_t len)
{
    if (cn->tcp == NULL || (cn->state != CTL_UP && cn->state != CTL_HELLO)) {
        log_debug("event=frame_dropped connector=%s type=%c reason=\"no control connection\"",
                  cn->o->name, frame[0]);
        return;
    }
    if (tlsio_write(&cn->tls, frame, len) == 0)
        (void)cnet_flush_tls(cn->tcp, &cn->tls, ctl_write_cb);
}

static void send_simple(struct connector *cn, uint8_t type, const char *key, const char *value)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), type);
    if (key != NULL)
        bridge_frame_add(&f, key, value);
    int n = bridge_frame_end(&f);
    if (n > 0)
        connector_send_frame(cn, buf, (size_t)n);
}

/* HELLO carries the secret: built, encrypted, wiped. 0 or -1 (ended). */
static int send_hello(struct connector *cn)
{
    const struct connector_opts *o = cn->o;
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_HELLO);
    bridge_frame_addf(&f, "v", "%d", BRIDGE_VERSION);
    bridge_frame_add(&f, "id", o->bridge_id);
    bridge_frame_add(&f, "secret", o->bridge_secret);
    bridge_frame_add(&f, "name", o->name);
    int n = bridge_frame_end(&f);
    int w = n > 0 ? tlsio_write(&cn->tls, buf, (size_t)n) : -1;
    OPENSSL_cleanse(buf, sizeof(buf));
    if (w < 0) {
        ctl_retry(cn, LOG_ERROR, "tunnel_failed", "cannot build the HELLO frame");
        return -1;
    }
    cn->state = CTL_HELLO;
    return ctl_flush(cn);
}

/* ---- frames from the proxy ------------------------------------------------ */

/* A decimal number of at most 9 digits from the payload, or 0. */
static unsigned payload_uint(const uint8_t *p, size_t len, const char *key)
{
    char v[16];
    if (bridge_payload_get(p, len, key, v, sizeof(v)) != 1 || v[0] == '\0' ||
        strspn(v, "0123456789") != strlen(v) || strlen(v) > 9)
        return 0;
    return (unsigned)strtoul(v, NULL, 10);
}

static int on_welcome(struct connector *cn, const uint8_t *p, size_t len)
{
    if (cn->state != CTL_HELLO) {
        ctl_retry(cn, LOG_WARN, "tunnel_down", "protocol error: a second WELCOME");
        return -1;
    }
    /* We PING at the shorter of the two intervals, so that a proxy that
     * wants to hear from us more often does; silence counts against the
     * longer one (see hb_cb). */
    unsigned number = payload_uint(p, len, "connector");
    unsigned iv = cn->o->heartbeat_s;
    cn->proxy_heartbeat_s = payload_uint(p, len, "heartbeat");
    if (cn->proxy_heartbeat_s > 0 && cn->proxy_heartbeat_s < iv)
        iv = cn->proxy_heartbeat_s;
    uv_timer_start(&cn->hb_timer, hb_cb, iv * 1000ull, iv * 1000ull);
    cn->state = CTL_UP;
    cn->up_since_ms = cnet_now_ms(&cn->loop);
    cn->down_reason[0] = '\0';
    uv_timer_stop(&cn->ctl_timer);
    if (cn->with_signals)
        sdnotify_status("tunnel up to %s (bridge %s)", cn->o->bridge_address, cn->o->bridge_id);
    log_info("event=tunnel_up connector=%s bridge=%s proxy=%s connector_number=%u "
             "heartbeat_s=%u tls=%s",
             cn->o->name, cn->o->bridge_id, cn->o->bridge_address, number, iv,
             tlsio_version(&cn->tls));
    return 0;
}

static int on_reason_frame(struct connector *cn, uint8_t type, const uint8_t *p, size_t len)
{
    char reason[BRIDGE_VALUE_MAX + 1] = "";
    char why[BRIDGE_VALUE_MAX + 64];
    if (bridge_payload_get(p, len, "reason", reason, sizeof(reason)) != 1)
        snprintf(reason, sizeof(reason), "(none given)");
    if (type == BRIDGE_REJECT) {
        ctl_retry(cn, LOG_ERROR, "tunnel_rejected", reason);
    } else {
        snprintf(why, sizeof(why), "BYE from the proxy: %s", reason);
        ctl_retry(cn, LOG_WARN, "tunnel_down", why);
    }
    return -1;
}

/* One frame; 0, or -1 if the connection was ended. */
static int on_frame(struct connector *cn, uint8_t type, const uint8_t *p, size_t len)
{
    switch (type) {
    case BRIDGE_WELCOME:
        return on_welcome(cn, p, len);
    case BRIDGE_REJECT:
    case BRIDGE_BYE:
        return on_reason_frame(cn, type, p, len);
    case BRIDGE_PING: {
        uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
        buf[0] = BRIDGE_PONG; /* the same payload back */
        buf[1] = (uint8_t)(len >> 24);
        buf[2] = (uint8_t)(len >> 16);
        buf[3] = (uint8_t)(len >> 8);
        buf[4] = (uint8_t)len;
        memcpy(buf + BRIDGE_FRAME_HDR, p, len);
        connector_send_frame(cn, buf, BRIDGE_FRAME_HDR + len);
        return 0;
    }
    case BRIDGE_PONG:
        return 0;
    case BRIDGE_OPEN:
        if (cn->state != CTL_UP) {
            ctl_retry(cn, LOG_WARN, "tunnel_failed", "protocol error: OPEN before WELCOME");
            return -1;
        }
        cstream_open(cn, p, len);
        return 0;
    default:
        log_debug("event=frame_ignored connector=%s type=%c", cn->o->name, type);
        return 0;
    }
}

/* Decrypt what is there and act on every whole frame. 0 or -1 (ended). */
static int ctl_drain(struct connector *cn)
{
    for (;;) {
        size_t n = 0;
        enum tls_res r = tlsio_read(&cn->tls, cn->in + cn->inlen, sizeof(cn->in) - cn->inlen, &n);
        if (r == TLS_OK) {
            cn->inlen += n;
            uint8_t type;
            const uint8_t *payload;
            size_t plen, used;
            int d;
            while ((d = bridge_frame_decode(cn->in, cn->inlen, &type, &payload, &plen, &used)) ==
                   1) {
                if (on_frame(cn, type, payload, plen) < 0)
                    return -1;
                memmove(cn->in, cn->in + used, cn->inlen - used);
                cn->inlen -= used;
            }
            if (d < 0) {
                ctl_retry(cn, LOG_WARN, "tunnel_down", "protocol error: a malformed frame");
                return -1;
            }
            continue;
        }
        if (r == TLS_WANT)
            return ctl_flush(cn); /* TLS may have answered something */
        char why[300], e[200];
        snprintf(why, sizeof(why), "%s%s",
                 r == TLS_EOF ? "the proxy closed the TLS session" : "TLS error from the proxy: ",
                 r == TLS_EOF ? "" : tlsio_error(e, sizeof(e)));
        ctl_retry(cn, LOG_WARN, cn->state == CTL_UP ? "tunnel_down" : "tunnel_failed", why);
        return -1;
    }
}

static int ctl_handshake(struct connector *cn)
{
    enum tls_res r = tlsio_handshake(&cn->tls);
    char why[400];
    if (r == TLS_ERR) {
        cnet_tls_failure(&cn->tls, cn->o->validation_host, why, sizeof(why));
        ctl_retry(cn, LOG_ERROR, "tunnel_failed", why);
        return -1;
    }
    if (ctl_flush(cn) < 0 || r == TLS_WANT)
        return -1;
    if (!cnet_alpn_ok(&cn->tls)) {
        ctl_retry(cn, LOG_ERROR, "tunnel_failed",
                  "the server did not agree to ALPN " BRIDGE_ALPN
                  ": is --bridge-address a pg-tls-proxy --bridge-listen address?");
        return -1;
    }
    return send_hello(cn);
}

static void ctl_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct connector *cn = s->data;
    if (cn == NULL || nread == 0)
        return;
    if (nread < 0) {
        char why[160];
        snprintf(why, sizeof(why), "%s",
                 nread == UV_EOF ? "the proxy closed the connection" : uv_strerror((int)nread));
        ctl_retry(cn, LOG_WARN, cn->state == CTL_UP ? "tunnel_down" : "tunnel_failed", why);
        return;
    }
    cn->last_read_ms = cnet_now_ms(&cn->loop);
    if (tlsio_feed(&cn->tls, buf->base, (size_t)nread) < 0) {
        ctl_retry(cn, LOG_ERROR, "tunnel_down", "out of memory");
        return;
    }
    if (cn->state == CTL_TLS && ctl_handshake(cn) < 0)
        return;
    if (cn->state == CTL_HELLO || cn->state == CTL_UP)
        (void)ctl_drain(cn);
}

/* ---- connecting -------------------------------------------------------------- */

static void ctl_deadline_cb(uv_timer_t *t)
{
    struct connector *cn = t->data;
    char why[160];
    snprintf(why, sizeof(why), "timed out after %u s %s", cn->o->connect_timeout_s,
             cn->state == CTL_DIALING ? "connecting to the proxy"
             : cn->state == CTL_TLS   ? "in the TLS handshake"
                                      : "waiting for WELCOME");
    ctl_retry(cn, LOG_WARN, "tunnel_failed", why);
}

static void ctl_dial_cb(void *arg, uv_tcp_t *tcp, int status, const char *msg)
{
    struct connector *cn = arg;
    char err[300];
    (void)status;
    cn->dial = NULL;
    if (tcp == NULL) {
        snprintf(err, sizeof(err), "connecting to the proxy: %s", msg);
        ctl_retry(cn, LOG_WARN, "tunnel_failed", err);
        return;
    }
    cn->tcp = tcp;
    tcp->data = cn;
    if (cnet_tls_start(&cn->tls, cn->ctx, cn->o->validation_host, 0, err, sizeof(err)) < 0) {
        ctl_retry(cn, LOG_ERROR, "tunnel_failed", err);
        return;
    }
    cn->state = CTL_TLS;
    cn->last_read_ms = cnet_now_ms(&cn->loop);
    if (uv_read_start((uv_stream_t *)tcp, cnet_alloc_cb, ctl_read_cb) != 0) {
        ctl_retry(cn, LOG_ERROR, "tunnel_failed", "cannot read from the proxy");
        return;
    }
    (void)ctl_flush(cn);
}

static void ctl_start(struct connector *cn)
{
    if (cn->stopping)
        return;
    cn->reconnects++;
    cn->state = CTL_DIALING;
    cn->dial = cdial_start(&cn->loop, cn->o->bridge_host, cn->o->bridge_port, ctl_dial_cb, cn);
    if (cn->dial == NULL) {
        ctl_retry(cn, LOG_ERROR, "tunnel_failed", "cannot start resolving the bridge address");
        return;
    }
    uv_timer_start(&cn->ctl_timer, ctl_deadline_cb, cn->o->connect_timeout_s * 1000ull, 0);
}

/* ---- heartbeats --------------------------------------------------------------- */

static void hb_cb(uv_timer_t *t)
{
    struct connector *cn = t->data;
    if (cn->state != CTL_UP)
        return;
    unsigned interval = cn->o->heartbeat_s;
    if (cn->proxy_heartbeat_s > interval && cn->proxy_heartbeat_s <= 3600)
        interval = cn->proxy_heartbeat_s;
    uint64_t silent = cnet_now_ms(&cn->loop) - cn->last_read_ms;
    if (silent >= (uint64_t)BRIDGE_DEAD_AFTER * interval * 1000) {
        char why[120];
        snprintf(why, sizeof(why), "nothing from the proxy for %llu ms (dead after %d heartbeats)",
                 (unsigned long long)silent, BRIDGE_DEAD_AFTER);
        ctl_retry(cn, LOG_WARN, "tunnel_dead", why);
        return;
    }
    char now[24];
    snprintf(now, sizeof(now), "%llu", (unsigned long long)cnet_now_ms(&cn->loop));
    send_simple(cn, BRIDGE_PING, "t", now);
}

/* ---- stopping ------------------------------------------------------------------ */

static void bye_done(struct connector *cn)
{
    ctl_teardown(cn);
    cn->state = CTL_WAIT;
    connector_maybe_finish(cn);
}

static void bye_shutdown_cb(uv_shutdown_t *req, int status)
{
    struct connector *cn = req->handle->data;
    (void)status;
    free(req);
    if (cn != NULL && cn->state == CTL_CLOSING)
        bye_done(cn);
}

static void bye_linger_cb(uv_timer_t *t)
{
    bye_done(t->data);
}

void connector_ctl_stop(struct connector *cn)
{
    uv_timer_stop(&cn->hb_timer);
    if (cn->state == CTL_CLOSING)
        return;
    if (cn->state != CTL_UP && cn->state != CTL_HELLO) {
        ctl_teardown(cn);
        cn->state = CTL_WAIT;
        return;
    }
    uv_shutdown_t *req = malloc(sizeof(*req));
    send_simple(cn, BRIDGE_BYE, "reason", "connector shutting down");
    tlsio_shutdown(&cn->tls);
    if (req == NULL || cnet_flush_tls(cn->tcp, &cn->tls, ctl_write_cb) < 0 ||
        uv_shutdown(req, (uv_stream_t *)cn->tcp, bye_shutdown_cb) != 0) {
        free(req);
        bye_done(cn);
        return;
    }
    cn->state = CTL_CLOSING;
    uv_timer_start(&cn->ctl_timer, bye_linger_cb, CTL_BYE_LINGER_MS, 0);
}

void connector_ctl_begin(struct connector *cn)
{
    unsigned hb = cn->o->heartbeat_s;
    uv_timer_start(&cn->hb_timer, hb_cb, hb * 1000ull, hb * 1000ull);
    ctl_start(cn);
}
