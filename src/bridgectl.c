/*
 * bridgectl.c - one connector's control connection (stream id 0) on the
 * bridge thread: TLS as server with the bridge certificate, HELLO checked
 * within BRIDGE_TIMEOUT_MS (bridgeauth.c), WELCOME and the registry,
 * heartbeats both ways, OPEN out and FAIL in, BYE and REJECT.
 *
 * Owns: struct bctl (its handle, TLS session, frame buffer), freed once
 * its handle is closed and no KDF job holds it. Never: logs the secret of
 * a HELLO (its bytes are wiped from the frame buffer once read), keeps a
 * frame longer than BRIDGE_FRAME_MAX, or writes after BCTL_CLOSED.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bridgeint.h"
#include "log.h"

/* ---- writing ---- */

struct bwrite {
    uv_write_t req;
    struct bctl *c;
    uint8_t data[];
};

static void write_cb(uv_write_t *req, int status)
{
    struct bwrite *w = (struct bwrite *)req;
    struct bctl *c = w->c;
    free(w);
    if (status < 0 && status != UV_ECANCELED && c->state != BCTL_CLOSED)
        bctl_close(c, uv_strerror(status), NULL); /* may close c */
}

/* Push the ciphertext TLS has queued. May close c. */
static void flush(struct bctl *c)
{
    const unsigned char *p;
    size_t n = tlsio_peek(&c->tls, &p);
    if (n == 0 || c->state == BCTL_CLOSED)
        return;
    /* A connector that sends (PINGs) but reads nothing would make us
     * queue its answers without end. */
    if (c->tcp.write_queue_size > BRIDGE_CTL_QUEUE_MAX) {
        bctl_close(c, "the connector reads nothing: its write queue is full", NULL);
        return;
    }
    struct bwrite *w = malloc(sizeof(*w) + n);
    if (w == NULL) {
        bctl_close(c, "out of memory", NULL);
        return;
    }
    memcpy(w->data, p, n);
    tlsio_consume(&c->tls, n);
    w->c = c;
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)n);
    int r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
    if (r < 0) {
        free(w);
        bctl_close(c, uv_strerror(r), NULL);
    }
}

/* Finish f and encrypt it (not yet flushed). 0 or -1. */
static int send_frame(struct bctl *c, struct bridge_frame *f)
{
    int n = bridge_frame_end(f);
    return n < 0 ? -1 : tlsio_write(&c->tls, f->buf, (size_t)n);
}

static int send_reason(struct bctl *c, uint8_t type, const char *reason)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), type);
    bridge_frame_add(&f, "reason", reason);
    return send_frame(c, &f);
}

int bctl_send_open(struct bctl *c, uint64_t stream, const uint8_t token[BRIDGE_TOKEN_LEN],
                   const char *target)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    char sid[17], tok[2 * BRIDGE_TOKEN_LEN + 1];
    struct bridge_frame f;
    bridge_stream_format(stream, sid);
    bridge_token_format(token, tok);
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_OPEN);
    bridge_frame_add(&f, "stream", sid);
    bridge_frame_add(&f, "token", tok);
    bridge_frame_add(&f, "target", target);
    int rc = send_frame(c, &f);
    OPENSSL_cleanse(tok, sizeof(tok));
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc < 0) {
        bctl_close(c, "cannot encrypt a frame", NULL);
        return -1;
    }
    flush(c);
    return c->state == BCTL_CLOSED ? -1 : 0;
}

/* ---- closing ---- */

void bctl_label(const struct bctl *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s#%u", c->name[0] != '\0' ? c->name : "-", c->number);
}

void bctl_unref(struct bctl *c)
{
    if (--c->refs > 0)
        return;
    tlsio_free(&c->tls);
    OPENSSL_cleanse(c->rx, sizeof(c->rx));
    free(c);
}

static void closed_cb(uv_handle_t *h)
{
    bctl_unref(h->data);
}

/* A live connector leaves: the registry, its streams, the log. */
static void went_down(struct bctl *c, const char *reason)
{
    struct bstate *b = c->b;
    char q[600], conn[80];
    unsigned carried = c->nstreams - c->npending, pending = c->npending;
    breg_down(b, c);
    bctl_label(c, conn, sizeof(conn));
    char qr[600];
    log_warn("event=bridge_down bridge=%s connector=\"%s\" addr=%s reason=\"%s\" "
             "streams_carried=%u streams_pending=%u online_s=%lld",
             c->id, log_escape(conn, q, sizeof(q)), c->addr, log_escape(reason, qr, sizeof(qr)),
             carried, pending, (long long)(time(NULL) - c->since));
    while (c->streams != NULL) {
        struct bstream *s = c->streams;
        if (s->carried)
            bstream_drop(b, s); /* its data connection lives on its own */
        else
            bstream_fail(b, s, "error",
                         "pg-tls-proxy: bridge \"%s\" connector \"%s\" closed before opening the "
                         "stream (%s)",
                         c->id, c->name, reason);
    }
}

void bctl_close(struct bctl *c, const char *reason, const char *bye)
{
    if (c->state == BCTL_CLOSED)
        return;
    struct bstate *b = c->b;
    enum bctl_state was = c->state;
    bauth_cancel(c);
    if (bye != NULL && was != BCTL_TLS)
        (void)send_reason(c, BRIDGE_BYE, bye);
    c->state = BCTL_CLOSED;
    if (was == BCTL_LIVE)
        went_down(c, reason);
    else if (log_min_level <= LOG_DEBUG) {
        char q[600];
        log_debug("event=bridge_control_closed addr=%s reason=\"%s\"", c->addr,
                  log_escape(reason, q, sizeof(q)));
    }
    /* Best effort, at once: a close_notify and what is queued, then the
     * handle. A connector that reads nothing does not hold us up. (No
     * session yet when the connection could not even be set up.) */
    const unsigned char *p = NULL;
    size_t n = 0;
    if (c->tls.ssl != NULL) {
        tlsio_shutdown(&c->tls);
        n = tlsio_peek(&c->tls, &p);
    }
    if (n > 0) {
        uv_buf_t buf = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        b->ctls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    uv_close((uv_handle_t *)&c->tcp, closed_cb);
}

/* REJECT with reason (logged as event=bridge_rejected) and close. */
static void reject(struct bctl *c, const char *reason)
{
    char q1[200], q2[600];
    log_warn("event=bridge_rejected bridge=%s connector=\"%s\" addr=%s reason=\"%s\"",
             c->id[0] != '\0' ? c->id : "-", log_escape(c->name, q1, sizeof(q1)), c->addr,
             log_escape(reason, q2, sizeof(q2)));
    (void)send_reason(c, BRIDGE_REJECT, reason);
    bctl_close(c, reason, NULL);
}

/* ---- reading ---- */

/* src into dst[0..cap), cut if longer (names and reasons from the wire). */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* HELLO: version, id, name; the secret goes to bridgeauth.c. */
static void on_hello(struct bctl *c, const uint8_t *p, size_t n)
{
    char v[16], secret[BRIDGE_VALUE_MAX + 1], name[BRIDGE_VALUE_MAX + 1];
    char id[BRIDGE_VALUE_MAX + 1], text[256];
    if (bridge_payload_get(p, n, "name", name, sizeof(name)) == 1)
        copy_cut(c->name, sizeof(c->name), name);
    int hv = bridge_payload_get(p, n, "v", v, sizeof(v));
    int hi = bridge_payload_get(p, n, "id", id, sizeof(id));
    if (hi == 1 && bridge_id_valid(id))
        copy_cut(c->id, sizeof(c->id), id);
    if (hv != 1 || strcmp(v, "1") != 0) {
        snprintf(text, sizeof(text),
                 "protocol version %s is not this proxy's (%d): use a connector of the "
                 "proxy's release",
                 hv == 1 ? v : "missing", BRIDGE_VERSION);
        reject(c, text);
        return;
    }
    int hs = bridge_payload_get(p, n, "secret", secret, sizeof(secret));
    if (hi != 1 || c->id[0] == '\0' || hs != 1) {
        bauth_reject_text(hi == 1 ? id : "-", text, sizeof(text));
        OPENSSL_cleanse(secret, sizeof(secret));
        reject(c, text);
        return;
    }
    c->state = BCTL_AUTH;
    bauth_check(c, secret); /* may call bctl_auth_done, and close c */
    OPENSSL_cleanse(secret, sizeof(secret));
}

static void on_live_frame(struct bctl *c, uint8_t type, const uint8_t *p, size_t n)
{
    char stream[32], code[32], msg[BRIDGE_VALUE_MAX + 1], reason[600];
    uint64_t sid;
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    switch (type) {
    case BRIDGE_PING: /* the same payload back */
        memcpy(buf + BRIDGE_FRAME_HDR, p, n);
        buf[0] = BRIDGE_PONG;
        buf[1] = (uint8_t)(n >> 24);
        buf[2] = (uint8_t)(n >> 16);
        buf[3] = (uint8_t)(n >> 8);
        buf[4] = (uint8_t)n;
        if (tlsio_write(&c->tls, buf, BRIDGE_FRAME_HDR + n) < 0)
            bctl_close(c, "cannot encrypt a frame", NULL);
        return;
    case BRIDGE_PONG:
        return; /* reading it was the point */
    case BRIDGE_FAIL:
        if (bridge_payload_get(p, n, "stream", stream, sizeof(stream)) != 1 ||
            bridge_stream_parse(stream, &sid) < 0) {
            bctl_close(c, "protocol error: FAIL without a valid stream", NULL);
            return;
        }
        if (bridge_payload_get(p, n, "code", code, sizeof(code)) != 1)
            snprintf(code, sizeof(code), "error");
        if (bridge_payload_get(p, n, "message", msg, sizeof(msg)) != 1)
            snprintf(msg, sizeof(msg), "no reason given");
        bstream_failed_by(c->b, c, sid, code, msg);
        return;
    case BRIDGE_BYE:
        if (bridge_payload_get(p, n, "reason", msg, sizeof(msg)) != 1)
            snprintf(msg, sizeof(msg), "none given");
        snprintf(reason, sizeof(reason), "the connector said goodbye: %.500s", msg);
        bctl_close(c, reason, NULL);
        return;
    default:
        snprintf(reason, sizeof(reason), "protocol error: a '%c' frame from a connector", type);
        bctl_close(c, reason, NULL);
        return;
    }
}

/* Every whole frame in c->rx. Stops while HELLO is being checked (the
 * rest waits in rx). May close c. */
static void frames(struct bctl *c)
{
    c->in_frames = true;
    while (c->state == BCTL_HELLO || c->state == BCTL_LIVE) {
        uint8_t type;
        const uint8_t *payload;
        size_t plen, used;
        int r = bridge_frame_decode(c->rx, c->rxlen, &type, &payload, &plen, &used);
        if (r == 0)
            break;
        if (r < 0) {
            bctl_close(c, "protocol error: a malformed frame", NULL);
            break;
        }
        if (c->state == BCTL_HELLO && type != BRIDGE_HELLO) {
            reject(c, "protocol error: the first frame must be HELLO");
            break;
        }
        if (type == BRIDGE_HELLO && c->state == BCTL_HELLO)
            on_hello(c, payload, plen);
        else
            on_live_frame(c, type, payload, plen);
        /* Wiped: a HELLO's secret must not linger in the buffer. */
        OPENSSL_cleanse(c->rx, used);
        memmove(c->rx, c->rx + used, c->rxlen - used);
        c->rxlen -= used;
    }
    c->in_frames = false;
}

static void handshake_failed(struct bctl *c)
{
    char e[200], text[300];
    snprintf(text, sizeof(text), "TLS handshake failed: %s", tlsio_error(e, sizeof(e)));
    log_warn("event=bridge_rejected bridge=- addr=%s reason=\"%s\"", c->addr, text);
    bctl_close(c, text, NULL); /* sends the alert, best effort */
}

/* Decrypt what was fed and act on it. May close c. */
static void process(struct bctl *c)
{
    if (c->state == BCTL_TLS) {
        enum tls_res r = tlsio_handshake(&c->tls);
        if (r == TLS_WANT) {
            flush(c);
            return;
        }
        if (r != TLS_OK) {
            handshake_failed(c);
            return;
        }
        c->state = BCTL_HELLO;
    }
    while ((c->state == BCTL_HELLO || c->state == BCTL_LIVE) && c->rxlen < sizeof(c->rx)) {
        size_t n = 0;
        enum tls_res r = tlsio_read(&c->tls, c->rx + c->rxlen, sizeof(c->rx) - c->rxlen, &n);
        if (r == TLS_WANT)
            break;
        if (r != TLS_OK) {
            char e[200], text[300];
            snprintf(text, sizeof(text), "%s",
                     r == TLS_EOF ? "the connector closed the connection"
                                  : tlsio_error(e, sizeof(e)));
            bctl_close(c, text, NULL);
            return;
        }
        c->rxlen += n;
        frames(c);
    }
    if (c->state != BCTL_CLOSED) {
        tlsio_release(&c->tls);
        flush(c);
    }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct bctl *c = h->data;
    (void)hint;
    /* One buffer for the thread: each read is fed to TLS at once. */
    *buf = uv_buf_init((char *)c->b->readbuf, sizeof(c->b->readbuf));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct bctl *c = s->data;
    if (c->state == BCTL_CLOSED || nread == 0)
        return;
    if (nread < 0) {
        bctl_close(
            c, nread == UV_EOF ? "the connector closed the connection" : uv_strerror((int)nread),
            NULL);
        return;
    }
    c->last_read_ms = uv_now(c->b->loop);
    /* While its HELLO is checked nothing is decrypted: bound what waits. */
    if (c->state == BCTL_AUTH && c->tls.rx.len + (size_t)nread > BRIDGE_CTL_QUEUE_MAX) {
        bctl_close(c, "too much data before WELCOME", NULL);
        return;
    }
    if (tlsio_feed(&c->tls, buf->base, (size_t)nread) < 0) {
        bctl_close(c, "out of memory", NULL);
        return;
    }
    process(c);
}

/* ---- life ---- */

static int bridge_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x0d" BRIDGE_ALPN;
    unsigned char *sel = NULL;
    (void)ssl;
    (void)arg;
    /* A client that offers ALPN must offer ours: it speaks something else. */
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

void bctl_setup_ctx(SSL_CTX *ctx)
{
    SSL_CTX_set_alpn_select_cb(ctx, bridge_alpn_cb, NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

void bctl_accept(struct bstate *b, int fd, const char *addr)
{
    char err[200];
    struct bctl *c = calloc(1, sizeof(*c));
    if (c == NULL || uv_tcp_init(b->loop, &c->tcp) != 0) {
        free(c);
        close(fd);
        return;
    }
    c->b = b;
    c->tcp.data = c;
    c->refs = 1;
    c->state = BCTL_TLS;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->opened_ms = c->last_read_ms = uv_now(b->loop);
    c->next = b->ctls;
    if (b->ctls != NULL)
        b->ctls->prev = c;
    b->ctls = c;
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        close(fd);
        bctl_close(c, "cannot use the connection", NULL);
        return;
    }
    if (tlsio_init(&c->tls, b->ctx, true, err, sizeof(err)) < 0) {
        log_error("event=bridge_control_failed addr=%s reason=\"%s\"", addr, err);
        bctl_close(c, err, NULL);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

void bctl_auth_done(struct bctl *c, bool ok, const char *why)
{
    if (c->state != BCTL_AUTH)
        return;
    if (!ok) {
        reject(c, why);
        return;
    }
    struct bstate *b = c->b;
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    unsigned hb = (unsigned)((b->heartbeat_ms + 999) / 1000);
    c->number = ++b->numbers;
    c->since = (int64_t)time(NULL);
    c->last_ping_ms = uv_now(b->loop);
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_WELCOME);
    bridge_frame_addf(&f, "heartbeat", "%u", hb);
    bridge_frame_addf(&f, "connector", "%u", c->number);
    if (send_frame(c, &f) < 0) {
        bctl_close(c, "cannot encrypt a frame", NULL);
        return;
    }
    c->state = BCTL_LIVE;
    breg_up(b, c);
    struct bentry *e = breg_entry(b, c->id, false);
    char q[200];
    log_info("event=bridge_up bridge=%s connector=\"%s\" number=%u addr=%s tls=%s/%s "
             "connectors_online=%u",
             c->id, log_escape(c->name, q, sizeof(q)), c->number, c->addr, tlsio_version(&c->tls),
             tlsio_cipher(&c->tls), e != NULL ? e->nlive : 1);
    /* Inside frames() (a cached secret): its loop goes on with the rest.
     * Otherwise what came while HELLO was checked is read now. */
    if (!c->in_frames)
        process(c);
    else
        flush(c);
}

void bctl_tick(struct bstate *b, uint64_t now)
{
    uint64_t dead = BRIDGE_DEAD_AFTER * b->heartbeat_ms;
    for (struct bctl *c = b->ctls, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == BCTL_TLS || c->state == BCTL_HELLO) {
            if (now - c->opened_ms >= b->timeout_ms) {
                log_warn("event=bridge_rejected bridge=- addr=%s reason=\"no HELLO within %llu s\"",
                         c->addr, (unsigned long long)(b->timeout_ms + 999) / 1000);
                bctl_close(c, "no HELLO in time", NULL);
            }
            continue;
        }
        if (c->state != BCTL_LIVE)
            continue;
        if (now - c->last_read_ms >= dead) {
            char why[64];
            snprintf(why, sizeof(why), "no heartbeat for %llu s",
                     (unsigned long long)((dead + 999) / 1000));
            bctl_close(c, why, NULL);
            continue;
        }
        if (now - c->last_ping_ms >= b->heartbeat_ms) {
            uint8_t buf[64];
            struct bridge_frame f;
            c->last_ping_ms = now;
            bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_PING);
            bridge_frame_addf(&f, "t", "%llu", (unsigned long long)now);
            if (send_frame(c, &f) < 0)
                bctl_close(c, "cannot encrypt a frame", NULL);
            else
                flush(c);
        }
    }
}
