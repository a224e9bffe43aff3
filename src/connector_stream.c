/*
 * connector_stream.c - one stream: an OPEN from the proxy, checked against
 * --allow; a TCP connection to the target; a data connection to the proxy
 * (preamble with the stream id, verify-full TLS, the token); then the bytes
 * both ways, untouched (they are the proxy's own TLS session with the
 * database), with backpressure: a side is not read while the other side has
 * more than CONN_HWM bytes waiting, and is read again below CONN_LWM.
 *
 * Owns each stream and everything it opens; a stream is freed in its
 * timer's close callback, its TCP handles are detached (cnet_close) so
 * late callbacks find nothing. The token is wiped once sent. Failures
 * before the splice are answered with FAIL on the control connection.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "connector_int.h"
#include "log.h"

#define STREAM_DRAIN_MS                                                                            \
    5000 /* after one side's EOF: the longest the rest may go without progress */
#define DRAIN_TICK_MS 500

enum stream_state { S_TARGET, S_PROXY, S_TLS, S_SPLICE, S_DRAIN, S_CLOSED };

struct cstream {
    struct connector *cn;
    struct cstream *prev, *next;
    enum stream_state state;
    uint64_t id;
    char idhex[17];
    uint8_t token[BRIDGE_TOKEN_LEN];
    char host[CONNECTOR_HOST_MAX];
    uint16_t port;
    struct cdial *dial;
    uv_tcp_t *target, *proxy;
    struct tlsio tls;
    uv_timer_t timer; /* connect deadline, then the drain deadline */
    bool target_paused, proxy_paused;
    uint64_t to_target, from_target, started_ms;
    const char *drain_reason;
    size_t drain_queued;       /* what was left at the last drain tick */
    unsigned drain_stalled_ms; /* since it last shrank */
};

static void send_fail(struct connector *cn, const char *idhex, const char *code, const char *msg)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_FAIL);
    bridge_frame_add(&f, "stream", idhex);
    bridge_frame_add(&f, "code", code);
    bridge_frame_add(&f, "message", msg);
    int n = bridge_frame_end(&f);
    if (n > 0)
        connector_send_frame(cn, buf, (size_t)n);
}

static void free_stream_cb(uv_handle_t *h)
{
    free(h->data);
}

/* The one way a stream ends; idempotent. reason NULL: it never opened
 * (its failure is logged by the caller). */
static void stream_end(struct cstream *s, const char *reason)
{
    struct connector *cn = s->cn;
    if (s->state == S_CLOSED)
        return;
    if (reason != NULL)
        log_info("event=stream_closed connector=%s stream=%s target=%s:%u bytes_to_target=%llu "
                 "bytes_from_target=%llu duration_ms=%llu reason=%s",
                 cn->o->name, s->idhex, s->host, s->port, (unsigned long long)s->to_target,
                 (unsigned long long)s->from_target,
                 (unsigned long long)(cnet_now_ms(&cn->loop) - s->started_ms), reason);
    s->state = S_CLOSED;
    cdial_cancel(s->dial);
    s->dial = NULL;
    cnet_close(s->target);
    cnet_close(s->proxy);
    s->target = s->proxy = NULL;
    if (s->tls.ssl != NULL)
        tlsio_free(&s->tls);
    OPENSSL_cleanse(s->token, sizeof(s->token));
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        cn->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    cn->nstreams--;
    uv_close((uv_handle_t *)&s->timer, free_stream_cb);
    connector_stream_gone(cn);
}

/* Before the splice: FAIL to the proxy, a log line, the end. */
static void stream_fail(struct cstream *s, const char *code, const char *msg)
{
    char q[600];
    log_warn("event=stream_failed connector=%s stream=%s target=%s:%u code=%s message=\"%s\"",
             s->cn->o->name, s->idhex, s->host, s->port, code, log_escape(msg, q, sizeof(q)));
    send_fail(s->cn, s->idhex, code, msg);
    stream_end(s, NULL);
}

/* ---- the splice ------------------------------------------------------------- */

static void target_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);
static void proxy_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf);
static void write_cb(uv_write_t *req, int status);

/* Draining and nothing left to send either way: done. */
static bool drained(struct cstream *s)
{
    if (s->state != S_DRAIN || cnet_queued(s->target, NULL) > 0 ||
        cnet_queued(s->proxy, &s->tls) > 0)
        return false;
    stream_end(s, s->drain_reason);
    return true;
}

/* Every DRAIN_TICK_MS while draining: the queues must keep shrinking. A
 * write request completes only when all of it has gone, so partial
 * progress is seen here, not in write_cb. */
static void drain_tick_cb(uv_timer_t *t)
{
    struct cstream *s = t->data;
    size_t q = cnet_queued(s->target, NULL) + cnet_queued(s->proxy, &s->tls);
    if (q < s->drain_queued) {
        s->drain_queued = q;
        s->drain_stalled_ms = 0;
        return;
    }
    s->drain_stalled_ms += DRAIN_TICK_MS;
    if (s->drain_stalled_ms >= STREAM_DRAIN_MS)
        stream_end(s, "drain_stalled");
}

/* While draining: what the side still open sends is read and dropped, so
 * that closing it does not turn into a reset that could destroy what we
 * are still delivering to it. Its EOF is fine; an error ends the stream. */
static void discard_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct cstream *s = h->data;
    (void)buf;
    if (s != NULL && nread < 0 && nread != UV_EOF)
        stream_end(s, h == (uv_stream_t *)s->target ? "target_read_error" : "proxy_read_error");
    else if (s != NULL && nread == UV_EOF)
        uv_read_stop(h);
}

/* One side has ended (closed names it): stop reading it, send what is
 * queued for the other (and our close_notify to the proxy) while it keeps
 * moving (a slow reader is fine, STREAM_DRAIN_MS without progress is not),
 * then close both. May end the stream. */
static void stream_drain(struct cstream *s, const char *reason, uv_tcp_t *closed)
{
    uv_tcp_t *open = closed == s->target ? s->proxy : s->target;
    if (s->state == S_DRAIN)
        return;
    s->state = S_DRAIN;
    s->drain_reason = reason;
    uv_read_stop((uv_stream_t *)closed);
    uv_read_stop((uv_stream_t *)open);
    if (uv_read_start((uv_stream_t *)open, cnet_alloc_cb, discard_read_cb) != 0) {
        stream_end(s, reason);
        return;
    }
    if (closed == s->target) {
        tlsio_shutdown(&s->tls);
        if (cnet_flush_tls(s->proxy, &s->tls, write_cb) < 0) {
            stream_end(s, reason);
            return;
        }
    }
    if (drained(s))
        return;
    s->drain_queued = cnet_queued(s->target, NULL) + cnet_queued(s->proxy, &s->tls);
    s->drain_stalled_ms = 0;
    uv_timer_start(&s->timer, drain_tick_cb, DRAIN_TICK_MS, DRAIN_TICK_MS);
}

static void write_cb(uv_write_t *req, int status)
{
    struct cstream *s = req->handle->data;
    bool to_target = s != NULL && req->handle == (uv_stream_t *)s->target;
    cnet_write_done(req);
    if (s == NULL || status == UV_ECANCELED)
        return;
    if (status < 0) {
        stream_end(s, to_target ? "target_write_error" : "proxy_write_error");
        return;
    }
    if (drained(s) || s->state != S_SPLICE)
        return;
    if (!to_target && cnet_queued(s->proxy, &s->tls) == 0)
        tlsio_release(&s->tls); /* idle streams keep no TLS buffers */
    /* Room again on one side: read the other again. */
    if (to_target && s->proxy_paused && cnet_queued(s->target, NULL) < CONN_LWM) {
        s->proxy_paused = false;
        uv_read_start((uv_stream_t *)s->proxy, cnet_alloc_cb, proxy_read_cb);
    } else if (!to_target && s->target_paused && cnet_queued(s->proxy, &s->tls) < CONN_LWM) {
        s->target_paused = false;
        uv_read_start((uv_stream_t *)s->target, cnet_alloc_cb, target_read_cb);
    }
}

/* Encrypted towards the proxy. 0, or -1 if the stream ended. */
static int proxy_flush(struct cstream *s)
{
    if (cnet_flush_tls(s->proxy, &s->tls, write_cb) == 0)
        return 0;
    stream_end(s, "proxy_write_error");
    return -1;
}

static void target_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct cstream *s = h->data;
    if (s == NULL || nread == 0 || s->state != S_SPLICE)
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            stream_drain(s, "target_closed", s->target);
        else
            stream_end(s, "target_read_error");
        return;
    }
    s->from_target += (uint64_t)nread;
    if (tlsio_write(&s->tls, buf->base, (size_t)nread) < 0) {
        stream_end(s, "out_of_memory");
        return;
    }
    if (proxy_flush(s) < 0)
        return;
    size_t q = cnet_queued(s->proxy, &s->tls);
    if (q > s->cn->peak_queued)
        s->cn->peak_queued = q;
    if (q > CONN_HWM) {
        s->target_paused = true;
        uv_read_stop(h);
    }
}

/* Plaintext from the proxy to the target, until TLS wants more. May end
 * the stream: 0, or -1. */
static int proxy_to_target(struct cstream *s)
{
    static char plain[CONN_READ_BUF];
    for (;;) {
        size_t n = 0;
        enum tls_res r = tlsio_read(&s->tls, plain, sizeof(plain), &n);
        if (r == TLS_OK) {
            if (cnet_write(s->target, plain, n, write_cb) < 0) {
                stream_end(s, "target_write_error");
                return -1;
            }
            s->to_target += n;
            continue;
        }
        if (r == TLS_WANT)
            break;
        if (r == TLS_EOF) {
            stream_drain(s, "proxy_closed", s->proxy);
        } else {
            stream_end(s, "proxy_tls_error");
        }
        return -1;
    }
    if (proxy_flush(s) < 0)
        return -1;
    if (cnet_queued(s->proxy, &s->tls) == 0)
        tlsio_release(&s->tls); /* idle streams keep no TLS buffers */
    size_t q = cnet_queued(s->target, NULL);
    if (q > s->cn->peak_queued)
        s->cn->peak_queued = q;
    if (q > CONN_HWM) {
        s->proxy_paused = true;
        uv_read_stop((uv_stream_t *)s->proxy);
    }
    return 0;
}

/* TLS with the proxy is up: the token, then the splice. May end the stream. */
static void stream_splice(struct cstream *s)
{
    struct connector *cn = s->cn;
    if (!cnet_alpn_ok(&s->tls)) {
        stream_fail(s, "error", "the proxy did not agree to ALPN " BRIDGE_ALPN);
        return;
    }
    int w = tlsio_write(&s->tls, s->token, sizeof(s->token));
    OPENSSL_cleanse(s->token, sizeof(s->token));
    if (w < 0) {
        stream_fail(s, "error", "out of memory");
        return;
    }
    s->state = S_SPLICE;
    uv_timer_stop(&s->timer);
    log_info("event=stream_open connector=%s stream=%s target=%s:%u tls=%s", cn->o->name, s->idhex,
             s->host, s->port, tlsio_version(&s->tls));
    if (uv_read_start((uv_stream_t *)s->target, cnet_alloc_cb, target_read_cb) != 0) {
        stream_end(s, "target_read_error");
        return;
    }
    (void)proxy_to_target(s); /* bytes that came with the handshake's last flight */
}

static void proxy_read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct cstream *s = h->data;
    if (s == NULL || nread == 0 || s->state == S_DRAIN)
        return;
    if (nread < 0) {
        if (s->state != S_SPLICE) {
            stream_fail(s, "error", "the proxy closed the data connection during TLS");
            return;
        }
        if (nread == UV_EOF)
            stream_drain(s, "proxy_closed", s->proxy);
        else
            stream_end(s, "proxy_read_error");
        return;
    }
    if (tlsio_feed(&s->tls, buf->base, (size_t)nread) < 0) {
        stream_end(s, "out_of_memory");
        return;
    }
    if (s->state == S_SPLICE) {
        (void)proxy_to_target(s);
        return;
    }
    enum tls_res r = tlsio_handshake(&s->tls);
    if (r == TLS_ERR) {
        char why[400];
        cnet_tls_failure(&s->tls, s->cn->o->validation_host, why, sizeof(why));
        stream_fail(s, "error", why);
        return;
    }
    if (proxy_flush(s) < 0 || r == TLS_WANT)
        return;
    stream_splice(s);
}

/* ---- opening ------------------------------------------------------------------- */

static void connect_timeout_cb(uv_timer_t *t)
{
    struct cstream *s = t->data;
    char msg[CONNECTOR_HOST_MAX + 120];
    if (s->state == S_TARGET)
        snprintf(msg, sizeof(msg), "timed out after %u s connecting to %s:%u",
                 s->cn->o->connect_timeout_s, s->host, s->port);
    else
        snprintf(msg, sizeof(msg), "timed out after %u s opening the data connection to the proxy",
                 s->cn->o->connect_timeout_s);
    stream_fail(s, s->state == S_TARGET ? "timeout" : "error", msg);
}

static void proxy_dial_cb(void *arg, uv_tcp_t *tcp, int status, const char *msg)
{
    struct cstream *s = arg;
    char err[400];
    s->dial = NULL;
    if (tcp == NULL) {
        snprintf(err, sizeof(err),
                 "the connector cannot reach the proxy for the data "
                 "connection: %s",
                 msg);
        stream_fail(s, status == UV_ETIMEDOUT ? "timeout" : "error", err);
        return;
    }
    s->proxy = tcp;
    tcp->data = s;
    s->state = S_TLS;
    if (cnet_tls_start(&s->tls, s->cn->ctx, s->cn->o->validation_host, s->id, err, sizeof(err)) <
            0 ||
        uv_read_start((uv_stream_t *)tcp, cnet_alloc_cb, proxy_read_cb) != 0) {
        stream_fail(s, "error", err);
        return;
    }
    (void)proxy_flush(s);
}

static void target_dial_cb(void *arg, uv_tcp_t *tcp, int status, const char *msg)
{
    struct cstream *s = arg;
    s->dial = NULL;
    if (tcp == NULL) {
        stream_fail(s, status == UV_ETIMEDOUT ? "timeout" : "unreachable", msg);
        return;
    }
    s->target = tcp;
    tcp->data = s;
    s->state = S_PROXY;
    s->dial =
        cdial_start(&s->cn->loop, s->cn->o->bridge_host, s->cn->o->bridge_port, proxy_dial_cb, s);
    if (s->dial == NULL)
        stream_fail(s, "error", "cannot start resolving the bridge address");
}

/* The OPEN's fields, checked; FAIL for what is refused. NULL if refused. */
static struct cstream *stream_new(struct connector *cn, const uint8_t *p, size_t len)
{
    char idhex[17] = "", token[2 * BRIDGE_TOKEN_LEN + 1] = "", target[CONNECTOR_HOST_MAX + 16] = "";
    char host[CONNECTOR_HOST_MAX], msg[CONNECTOR_HOST_MAX + 100];
    uint16_t port = 0;
    uint64_t id;
    if (bridge_payload_get(p, len, "stream", idhex, sizeof(idhex)) != 1 ||
        bridge_stream_parse(idhex, &id) < 0) {
        log_warn("event=open_malformed connector=%s reason=\"no valid stream id\"", cn->o->name);
        return NULL;
    }
    struct cstream *s = calloc(1, sizeof(*s));
    const char *code = "error";
    if (s == NULL) {
        snprintf(msg, sizeof(msg), "the connector is out of memory");
    } else if (bridge_payload_get(p, len, "token", token, sizeof(token)) != 1 ||
               bridge_token_parse(token, s->token) < 0 ||
               bridge_payload_get(p, len, "target", target, sizeof(target)) != 1 ||
               bridge_hostport_parse(target, host, sizeof(host), &port) < 0) {
        snprintf(msg, sizeof(msg), "malformed OPEN: token or target missing or invalid");
    } else if (!connector_allowed(cn->o->allow, cn->o->nallow, host, port)) {
        code = "not_allowed";
        snprintf(msg, sizeof(msg), "%s is not on this connector's --allow list", target);
    } else if (cn->stopping) {
        snprintf(msg, sizeof(msg), "the connector is shutting down");
    } else if (cn->nstreams >= cn->o->max_streams) {
        snprintf(msg, sizeof(msg),
                 "the connector has %zu streams open, its --max-streams limit: raise it or run "
                 "another connector for this bridge",
                 cn->nstreams);
    } else {
        OPENSSL_cleanse(token, sizeof(token));
        s->cn = cn;
        s->id = id;
        memcpy(s->idhex, idhex, sizeof(idhex));
        snprintf(s->host, sizeof(s->host), "%s", host);
        s->port = port;
        return s;
    }
    OPENSSL_cleanse(token, sizeof(token));
    if (s != NULL)
        OPENSSL_cleanse(s->token, sizeof(s->token));
    free(s);
    char q[600];
    log_warn("event=stream_refused connector=%s stream=%s target=\"%s\" code=%s message=\"%s\"",
             cn->o->name, idhex, log_escape(target, q, sizeof(q)), code, msg);
    send_fail(cn, idhex, code, msg);
    return NULL;
}

void cstream_open(struct connector *cn, const uint8_t *payload, size_t len)
{
    struct cstream *s = stream_new(cn, payload, len);
    if (s == NULL)
        return;
    uv_timer_init(&cn->loop, &s->timer);
    s->timer.data = s;
    s->next = cn->streams;
    if (cn->streams != NULL)
        cn->streams->prev = s;
    cn->streams = s;
    cn->nstreams++;
    cn->streams_total++;
    s->state = S_TARGET;
    s->started_ms = cnet_now_ms(&cn->loop);
    log_debug("event=stream_opening connector=%s stream=%s target=%s:%u", cn->o->name, s->idhex,
              s->host, s->port);
    uv_timer_start(&s->timer, connect_timeout_cb, cn->o->connect_timeout_s * 1000ull, 0);
    s->dial = cdial_start(&cn->loop, s->host, s->port, target_dial_cb, s);
    if (s->dial == NULL)
        stream_fail(s, "error", "cannot start resolving the target");
}

void cstream_close_all(struct connector *cn, const char *reason)
{
    struct cstream *s = cn->streams, *next;
    for (; s != NULL; s = next) {
        next = s->next;
        if (s->state == S_SPLICE || s->state == S_DRAIN)
            stream_end(s, reason);
        else
            stream_fail(s, "error", "the connector is shutting down");
    }
}
