/*
 * leg_tcp.c - the TCP transport of a leg (struct leg_transport): a libuv
 * TCP handle inside the leg. Only moves bytes; everything it learns goes
 * back through leg.c's completions.
 */
#include "leg.h"

#include "worker.h"

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    leg_transport_buffer(h->data, buf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    leg_transport_read(s->data, nread, (const uint8_t *)buf->base);
}

static int tcp_read_start(struct leg *l)
{
    l->tcp.data = l;
    return uv_read_start((uv_stream_t *)&l->tcp, alloc_cb, read_cb);
}

static void tcp_read_stop(struct leg *l)
{
    uv_read_stop((uv_stream_t *)&l->tcp);
}

static int tcp_try_write(struct leg *l, const uint8_t *p, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
    return n == UV_EAGAIN ? 0 : n;
}

static void write_cb(uv_write_t *req, int status)
{
    leg_transport_written(req->data, status);
}

static int tcp_write(struct leg *l, struct chunk *ch)
{
    uv_buf_t b = uv_buf_init((char *)ch->data, (unsigned)ch->len);
    ch->req.data = ch;
    return uv_write(&ch->req, (uv_stream_t *)&l->tcp, &b, 1, write_cb);
}

static size_t tcp_write_queue(const struct leg *l)
{
    return uv_stream_get_write_queue_size((const uv_stream_t *)&l->tcp);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    leg_transport_shut(req->data, status);
}

static int tcp_shutdown(struct leg *l)
{
    l->shutdown_req.data = l;
    return uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp, shutdown_cb);
}

static void close_cb(uv_handle_t *h)
{
    leg_transport_closed(h->data);
}

static void tcp_close(struct leg *l)
{
    l->tcp.data = l;
    uv_close((uv_handle_t *)&l->tcp, close_cb);
}

static bool tcp_closing(const struct leg *l)
{
    return uv_is_closing((const uv_handle_t *)&l->tcp) != 0;
}

const struct leg_transport leg_tcp_transport = {
    .name = "tcp",
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .try_write = tcp_try_write,
    .write = tcp_write,
    .write_queue = tcp_write_queue,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .closing = tcp_closing,
};

void leg_tcp_open(struct leg *l)
{
    uv_tcp_init(l->w->loop, &l->tcp);
    l->tcp.data = l;
    l->tp = &leg_tcp_transport;
    l->open = true;
}
