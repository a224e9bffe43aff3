/*
 * connector_int.h - what the connector's files share (connector.h is the
 * outside's view): the connector's state, streams, and the network helpers
 * of connector_net.c. One event loop, one thread: nothing here locks.
 */
#ifndef PGTP_CONNECTOR_INT_H
#define PGTP_CONNECTOR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "bridgeproto.h"
#include "connector.h"
#include "tlsio.h"

#define CONN_HWM                                                                                   \
    ((size_t)256 * 1024)             /* stop reading a side above this much queued for the other   \
                                      */
#define CONN_LWM ((size_t)64 * 1024) /* and resume below this */
#define CONN_READ_BUF 65536
#define CONN_KEEPALIVE_S 60 /* TCP keepalive idle time on every connection */

/* ---- connector_net.c ---- */

/*
 * Resolve host and connect to each of its addresses in turn. cb is called
 * once (never before cdial_start returns): with a connected TCP handle
 * (heap; the callee owns it: close it with cnet_close), or with tcp NULL,
 * a libuv status and a message such as "connection refused (127.0.0.1:5432)".
 * The dial frees itself after cb; cdial_cancel before that means cb is
 * never called.
 */
struct cdial;
typedef void (*cdial_cb)(void *arg, uv_tcp_t *tcp, int status, const char *msg);
struct cdial *cdial_start(uv_loop_t *loop, const char *host, uint16_t port, cdial_cb cb, void *arg);
void cdial_cancel(struct cdial *d);

/* Detach a heap TCP handle from its owner and close it (freed in its close
 * callback; pending write callbacks see data NULL). NULL is fine. */
void cnet_close(uv_tcp_t *tcp);
/* Write p[0..n) to tcp: what the socket takes now at once, the rest copied
 * into a request whose callback is cb (which must call cnet_write_done).
 * 0, or a negative libuv error. */
int cnet_write(uv_tcp_t *tcp, const void *p, size_t n, uv_write_cb cb);
void cnet_write_done(uv_write_t *req);
/* Move the ciphertext waiting in t to tcp as cnet_write does. */
int cnet_flush_tls(uv_tcp_t *tcp, struct tlsio *t, uv_write_cb cb);
/* Bytes waiting to be sent on tcp (libuv's queue), plus t's if given. */
size_t cnet_queued(const uv_tcp_t *tcp, const struct tlsio *t);
/* A static buffer for every read callback (one thread, read callbacks do
 * not nest). */
void cnet_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* The client context for the proxy: TLS 1.2+, verify peer (ca_path or the
 * system's roots), ALPN BRIDGE_ALPN. NULL with err filled. */
SSL_CTX *cnet_tls_ctx(const char *ca_path, char *err, size_t errlen);
/* A client TLS session on t whose peer must be name (DNS name or IP; SNI
 * when a DNS name), with the preamble of stream queued before it. */
int cnet_tls_start(struct tlsio *t, SSL_CTX *ctx, const char *name, uint64_t stream, char *err,
                   size_t errlen);
/* After TLS_ERR in the handshake: why, with the name checked if the
 * certificate was refused. */
void cnet_tls_failure(const struct tlsio *t, const char *name, char *buf, size_t len);
/* After TLS_OK: did the proxy agree to BRIDGE_ALPN? */
bool cnet_alpn_ok(const struct tlsio *t);
uint64_t cnet_now_ms(uv_loop_t *loop);

/* ---- connector_stream.c ---- */

struct cstream;

/* ---- connector.c: the state every file sees ---- */

enum ctl_state {
    CTL_WAIT,    /* backoff before the next attempt (or stopped) */
    CTL_DIALING, /* resolve + TCP connect to the bridge address */
    CTL_TLS,     /* preamble sent, TLS handshake */
    CTL_HELLO,   /* HELLO sent, waiting for WELCOME */
    CTL_UP,      /* WELCOME received */
    CTL_CLOSING  /* BYE sent on shutdown; the socket is being shut down */
};

struct connector {
    uv_loop_t loop;
    const struct connector_opts *o;
    SSL_CTX *ctx;
    bool with_signals, stopping;
    unsigned stop_requests;
    uv_signal_t sigterm, sigint;
    uv_async_t stop_async;
    uv_mutex_t stop_mu; /* connector_stop (any thread) vs closing stop_async */
    bool async_closed;
    uv_timer_t ctl_timer; /* connect deadline, then the backoff wait */
    uv_timer_t hb_timer;
    uv_timer_t shutdown_timer;

    /* the control connection */
    enum ctl_state state;
    struct cdial *dial;
    uv_tcp_t *tcp;
    struct tlsio tls;
    uint8_t in[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    size_t inlen;
    uint64_t last_read_ms, up_since_ms;
    unsigned proxy_heartbeat_s;
    uint64_t backoff_base_ms;
    char down_reason[256]; /* why the tunnel is not up, for /healthz */

    /* streams, newest first */
    struct cstream *streams;
    size_t nstreams;
    uint64_t streams_total, reconnects;
    size_t peak_queued; /* the most ever waiting for one side of a stream (tests check it) */

    struct chealth *health;
};

/* connector.c: start the control connection and its heartbeats; on
 * stopping, BYE and an orderly close (or drop a connection not yet up). */
void connector_ctl_begin(struct connector *cn);
void connector_ctl_stop(struct connector *cn);
/* connector_main.c: stopping and nothing left open: close the loop's own
 * handles so that it ends. */
void connector_maybe_finish(struct connector *cn);
/* Send a frame on the control connection when it is up (else dropped and
 * logged at debug). */
void connector_send_frame(struct connector *cn, const uint8_t *frame, size_t len);
/* The last stream has ended: during shutdown, the loop may end. */
void connector_stream_gone(struct connector *cn);

/* OPEN from the proxy: payload checked here (may send FAIL). */
void cstream_open(struct connector *cn, const uint8_t *payload, size_t len);
/* Close every stream now (shutdown timeout, second signal). */
void cstream_close_all(struct connector *cn, const char *reason);

/* ---- connector_health.c ---- */
struct chealth;
struct chealth *chealth_start(struct connector *cn, const char *address, char *err, size_t errlen);
void chealth_stop(struct chealth *h);

#endif
