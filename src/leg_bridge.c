/*
 * leg_bridge.c - the bridge transport of a leg (struct leg_transport): a
 * data connection from a connector (bridge.h), TCP with an outer TLS in
 * which this proxy is the server, carrying the leg's own TLS with the
 * database inside it.
 *
 * First the set-up (leg_bridge_start): the outer handshake, then the
 * stream's token, reported once to the dialer (bridgedial.c). From then on
 * it only moves bytes: ciphertext read from TCP is decrypted and handed to
 * leg.c as if TCP had read it; chunks to write are encrypted into write
 * buffers of its own, and leg.c hears of a chunk when its ciphertext has
 * gone, so the leg's backlog and backpressure work as over TCP.
 *
 * Owns the outer tlsio, a zero timer and the write buffers. Plaintext left
 * inside the outer TLS while the leg does not read is delivered from the
 * timer once it reads again, never from inside read_start (the leg's
 * owner may not expect a read there). Never looks at the bytes it carries.
 * Its state (l->tp_data) is freed when both handles have closed, before
 * LEG_CLOSED is reported.
 */
#include "leg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bridgeproto.h"
#include "worker.h"

enum bt_phase { BT_HANDSHAKE, BT_TOKEN, BT_UP };

struct bt {
    struct leg *l;
    struct tlsio outer;
    uv_timer_t kick; /* the set-up's first step; plaintext held while not reading */
    enum bt_phase phase;
    unsigned handles; /* tcp + kick, until their close callbacks */
    int start_err;    /* uv_read_start failed in leg_bridge_start: told from the timer */
    bool want;        /* the leg reads (read_start .. read_stop) */
    bool tcp_reading;
    bool tcp_eof; /* TCP EOF read: told once the plaintext before it has been */
    leg_bridge_setup_cb cb;
    void *arg;
    size_t got_len;
    uint8_t expect[BRIDGE_TOKEN_LEN];
    uint8_t got[BRIDGE_TOKEN_LEN];
};

/* Ciphertext on its way: one uv_write. */
struct bwrite {
    uv_write_t req;
    struct chunk *ch; /* the leg's chunk it carries; NULL: the outer TLS's own records */
    size_t len;
    uint8_t data[];
};

static struct bt *bt_of(const struct leg *l)
{
    return l->tp_data;
}

static bool bt_closing(const struct bt *b)
{
    return uv_is_closing((const uv_handle_t *)&b->l->tcp) != 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct bt *b = h->data;
    (void)suggested;
    leg_transport_buffer(b->l, buf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static int start_tcp(struct bt *b)
{
    if (b->tcp_reading || b->tcp_eof)
        return 0;
    int r = uv_read_start((uv_stream_t *)&b->l->tcp, alloc_cb, read_cb);
    if (r == 0)
        b->tcp_reading = true;
    return r;
}

static void stop_tcp(struct bt *b)
{
    if (b->tcp_reading)
        uv_read_stop((uv_stream_t *)&b->l->tcp);
    b->tcp_reading = false;
}

static void write_cb(uv_write_t *req, int status)
{
    struct bwrite *bw = req->data;
    struct chunk *ch = bw->ch;
    free(bw);
    /* A failed write of our own records shows on the next read or write. */
    if (ch != NULL)
        leg_transport_written(ch, status);
}

/* Write everything the outer TLS has queued, carrying ch (NULL: only its
 * own records). 0 or a negative libuv error (then ch was not taken). */
static int send_outer(struct bt *b, struct chunk *ch)
{
    size_t n = tlsio_pending(&b->outer);
    if (n == 0)
        return ch == NULL ? 0 : UV_EPROTO;
    struct bwrite *bw = malloc(sizeof(*bw) + n);
    if (bw == NULL)
        return UV_ENOMEM;
    bw->ch = ch;
    bw->len = tlsio_take(&b->outer, bw->data, n);
    bw->req.data = bw;
    uv_buf_t buf = uv_buf_init((char *)bw->data, (unsigned)bw->len);
    int r = uv_write(&bw->req, (uv_stream_t *)&b->l->tcp, &buf, 1, write_cb);
    if (r < 0)
        free(bw);
    return r;
}

/* ---- set-up: the outer handshake and the stream's token ---- */

/* Report the set-up's end (once). May end the connection. */
static void setup_end(struct bt *b, enum leg_bridge_setup res, const char *why)
{
    OPENSSL_cleanse(b->expect, sizeof(b->expect));
    OPENSSL_cleanse(b->got, sizeof(b->got));
    stop_tcp(b); /* until the leg reads */
    if (res == LEG_BRIDGE_UP)
        b->phase = BT_UP;
    leg_bridge_setup_cb cb = b->cb;
    b->cb = NULL;
    if (cb != NULL)
        cb(b->arg, res, why);
}

/* Read the token from what the outer TLS holds. May end the connection. */
static void token_step(struct bt *b)
{
    char e[160], why[256];
    while (b->got_len < BRIDGE_TOKEN_LEN) {
        size_t n = 0;
        enum tls_res r =
            tlsio_read(&b->outer, b->got + b->got_len, BRIDGE_TOKEN_LEN - b->got_len, &n);
        if (r == TLS_OK) {
            b->got_len += n;
            continue;
        }
        if (send_outer(b, NULL) < 0) {
            setup_end(b, LEG_BRIDGE_LOST, "write failed");
            return;
        }
        if (r == TLS_WANT && !b->tcp_eof)
            return;
        if (r == TLS_ERR)
            snprintf(why, sizeof(why), "TLS error before the stream's token: %s",
                     tlsio_error(e, sizeof(e)));
        else
            snprintf(why, sizeof(why), "closed before presenting the stream's token");
        setup_end(b, LEG_BRIDGE_LOST, why);
        return;
    }
    /* The token proves the connection answers our OPEN: compared in
     * constant time, like any secret. */
    bool ok = CRYPTO_memcmp(b->got, b->expect, BRIDGE_TOKEN_LEN) == 0;
    if (send_outer(b, NULL) < 0) {
        setup_end(b, LEG_BRIDGE_LOST, "write failed");
        return;
    }
    setup_end(b, ok ? LEG_BRIDGE_UP : LEG_BRIDGE_BAD_TOKEN,
              ok ? "" : "the bridge connection did not present this stream's token");
}

/* Drive the set-up with what has been fed. May end the connection. */
static void setup_step(struct bt *b)
{
    char e[160], why[256];
    if (b->start_err != 0) {
        snprintf(why, sizeof(why), "cannot read: %s", uv_strerror(b->start_err));
        setup_end(b, LEG_BRIDGE_LOST, why);
        return;
    }
    if (b->phase == BT_HANDSHAKE) {
        enum tls_res r = tlsio_handshake(&b->outer);
        if (r != TLS_OK && r != TLS_WANT) {
            snprintf(why, sizeof(why), "%s", tlsio_error(e, sizeof(e)));
            send_outer(b, NULL); /* our alert, so the connector logs why */
            setup_end(b, LEG_BRIDGE_TLS_FAILED, why[0] ? why : "unknown error");
            return;
        }
        if (send_outer(b, NULL) < 0) {
            setup_end(b, LEG_BRIDGE_LOST, "write failed");
            return;
        }
        if (r == TLS_WANT) {
            if (b->tcp_eof)
                setup_end(b, LEG_BRIDGE_LOST, "closed during the TLS handshake");
            return;
        }
        b->phase = BT_TOKEN;
    }
    token_step(b);
}

/* ---- the data phase ---- */

/*
 * Plaintext inside the outer TLS to the leg while it reads, then the EOF
 * read behind it. May end the connection: every read handed to leg.c may,
 * so the loop looks again before the next.
 */
static void deliver(struct bt *b)
{
    struct leg *l = b->l;
    while (b->want && !bt_closing(b)) {
        uv_buf_t buf;
        size_t n = 0;
        /* The worker's read buffer is free again: its ciphertext has been fed. */
        leg_transport_buffer(l, &buf);
        enum tls_res r = tlsio_read(&b->outer, buf.base, buf.len, &n);
        if (r == TLS_OK) {
            leg_transport_read(l, (ssize_t)n, (const uint8_t *)buf.base);
            continue;
        }
        int w = send_outer(b, NULL); /* what reading made (a KeyUpdate's answer) */
        /* The end: the connector's close_notify, or its FIN behind the
         * last whole record (a connector killed sends no close_notify). */
        bool end = r == TLS_EOF || (r == TLS_WANT && b->tcp_eof);
        if (w < 0)
            leg_transport_read(l, w, NULL);
        else if (end)
            leg_transport_read(l, UV_EOF, NULL);
        else if (r == TLS_ERR)
            leg_transport_read(l, UV_EPROTO, NULL);
        return;
    }
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct bt *b = s->data;
    char why[160];

    if (nread == 0)
        return;
    if (nread < 0) {
        stop_tcp(b);
        if (nread == UV_EOF)
            b->tcp_eof = true;
        if (b->phase != BT_UP && nread == UV_EOF) {
            setup_step(b); /* says how far the set-up got */
        } else if (b->phase != BT_UP) {
            snprintf(why, sizeof(why), "%s", uv_strerror((int)nread));
            setup_end(b, LEG_BRIDGE_LOST, why);
        } else if (nread == UV_EOF) {
            deliver(b);
        } else {
            leg_transport_read(b->l, nread, NULL);
        }
        return;
    }
    if (tlsio_feed(&b->outer, buf->base, (size_t)nread) < 0) {
        stop_tcp(b);
        if (b->phase != BT_UP)
            setup_end(b, LEG_BRIDGE_LOST, "out of memory");
        else
            leg_transport_read(b->l, UV_ENOMEM, NULL);
        return;
    }
    if (b->phase != BT_UP)
        setup_step(b);
    else
        deliver(b);
}

static void kick_cb(uv_timer_t *t)
{
    struct bt *b = t->data;
    if (b->phase != BT_UP)
        setup_step(b);
    else
        deliver(b);
}

/* Is there plaintext (or an EOF) the leg has not been told of? */
static bool held(const struct bt *b)
{
    return b->outer.rx.len > 0 || SSL_has_pending(b->outer.ssl) || b->tcp_eof;
}

static int bt_read_start(struct leg *l)
{
    struct bt *b = bt_of(l);
    if (b == NULL || b->phase != BT_UP)
        return UV_ENOTCONN;
    int r = start_tcp(b);
    if (r < 0)
        return r;
    b->want = true;
    if (held(b))
        uv_timer_start(&b->kick, kick_cb, 0, 0);
    return 0;
}

static void bt_read_stop(struct leg *l)
{
    struct bt *b = bt_of(l);
    if (b == NULL || b->phase != BT_UP)
        return;
    b->want = false;
    stop_tcp(b); /* what comes meanwhile waits in the kernel: backpressure */
    uv_timer_stop(&b->kick);
}

static int bt_try_write(struct leg *l, const uint8_t *p, size_t len)
{
    (void)l;
    (void)p;
    (void)len;
    return 0; /* nothing taken: every write goes through a chunk */
}

static int bt_write(struct leg *l, struct chunk *ch)
{
    struct bt *b = bt_of(l);
    if (b == NULL || b->phase != BT_UP)
        return UV_ENOTCONN;
    if (tlsio_write(&b->outer, ch->data, ch->len) < 0)
        return UV_EPROTO;
    return send_outer(b, ch);
}

static size_t bt_write_queue(const struct leg *l)
{
    const struct bt *b = bt_of(l);
    size_t tx = b != NULL ? tlsio_pending(&b->outer) : 0;
    return uv_stream_get_write_queue_size((const uv_stream_t *)&l->tcp) + tx;
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct bt *b = req->data;
    leg_transport_shut(b->l, status);
}

static int bt_shutdown(struct leg *l)
{
    struct bt *b = bt_of(l);
    if (b == NULL)
        return UV_ENOTCONN;
    if (b->phase == BT_UP) {
        /* The connector ends the database's side on our close_notify. */
        tlsio_shutdown(&b->outer);
        int r = send_outer(b, NULL);
        if (r < 0)
            return r;
    }
    l->shutdown_req.data = b;
    return uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp, shutdown_cb);
}

static void close_cb(uv_handle_t *h)
{
    struct bt *b = h->data;
    if (--b->handles > 0)
        return;
    struct leg *l = b->l;
    tlsio_free(&b->outer);
    OPENSSL_cleanse(b, sizeof(*b));
    free(b);
    l->tp_data = NULL;
    leg_transport_closed(l);
}

static void bt_close(struct leg *l)
{
    struct bt *b = bt_of(l);
    b->cb = NULL; /* no set-up report once closing */
    b->want = false;
    uv_close((uv_handle_t *)&l->tcp, close_cb);
    uv_close((uv_handle_t *)&b->kick, close_cb);
}

static bool bt_is_closing(const struct leg *l)
{
    return uv_is_closing((const uv_handle_t *)&l->tcp) != 0;
}

static void bt_release(struct leg *l)
{
    struct bt *b = bt_of(l);
    if (b != NULL && b->phase == BT_UP)
        tlsio_release(&b->outer);
}

const struct leg_transport leg_bridge_transport = {
    .name = "bridge",
    .read_start = bt_read_start,
    .read_stop = bt_read_stop,
    .try_write = bt_try_write,
    .write = bt_write,
    .write_queue = bt_write_queue,
    .shutdown = bt_shutdown,
    .close = bt_close,
    .closing = bt_is_closing,
    .release = bt_release,
};

int leg_bridge_open(struct leg *l)
{
    struct bt *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -1;
    b->l = l;
    uv_tcp_init(l->w->loop, &l->tcp);
    uv_timer_init(l->w->loop, &b->kick);
    l->tcp.data = b;
    b->kick.data = b;
    b->handles = 2;
    l->tp = &leg_bridge_transport;
    l->tp_data = b;
    l->open = true;
    return 0;
}

int leg_bridge_start(struct leg *l, int fd, SSL_CTX *ctx, const uint8_t *extra, size_t extra_len,
                     const uint8_t *token, leg_bridge_setup_cb cb, void *arg, char *err,
                     size_t errlen)
{
    struct bt *b = bt_of(l);
    if (b == NULL || b->outer.ssl != NULL) {
        snprintf(err, errlen, "the bridge leg is not open");
        return -1;
    }
    if (tlsio_init(&b->outer, ctx, true, err, errlen) < 0)
        return -1;
    if (tlsio_feed(&b->outer, extra, extra_len) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* The descriptor is taken last: any failure before leaves it the caller's. */
    int r = uv_tcp_open(&l->tcp, fd);
    if (r != 0) {
        snprintf(err, errlen, "cannot use the bridge connection: %s", uv_strerror(r));
        return -1;
    }
    memcpy(b->expect, token, BRIDGE_TOKEN_LEN);
    b->cb = cb;
    b->arg = arg;
    b->start_err = start_tcp(b);
    /* The first step (the ClientHello may be in extra) runs from the loop:
     * the set-up never reports before leg_bridge_start has returned. */
    uv_timer_start(&b->kick, kick_cb, 0, 0);
    return 0;
}

void leg_bridge_detach(struct leg *l)
{
    if (l->tp == &leg_bridge_transport && l->tp_data != NULL)
        bt_of(l)->cb = NULL;
}
