/*
 * connector_health.c - the connector's --health-address: GET or HEAD of
 * /healthz and /readyz (200 "ok" while the tunnel is up: WELCOME received
 * and heartbeats answered; else 503 and the reason on one line) and
 * /metrics (a few Prometheus gauges and counters), one request per
 * connection, on the connector's loop. The request head is parsed by
 * httpreq.c, the address by adminaddr.c.
 *
 * Owns the listener and every connection (listed so that chealth_stop can
 * close them all); a connection is freed in its last close callback.
 * Bounded: HEALTH_HEAD_MAX bytes of request head, HEALTH_TIMEOUT_MS per
 * connection, HEALTH_MAX_CONNS at once (more are closed at once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adminaddr.h"
#include "connector_int.h"
#include "httpreq.h"
#include "log.h"

#define HEALTH_HEAD_MAX 2048
#define HEALTH_TIMEOUT_MS 5000
#define HEALTH_MAX_CONNS 32

struct hconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    struct chealth *h;
    struct hconn *prev, *next;
    int handles;
    bool closing, answered;
    size_t len;
    char head[HEALTH_HEAD_MAX];
    char out[1024];
};

struct chealth {
    struct connector *cn;
    uv_tcp_t listener;
    struct hconn *conns;
    size_t nconns;
    bool stopping;
};

static void listener_close_cb(uv_handle_t *hd)
{
    free(hd->data); /* the struct chealth */
}

static void hconn_close_cb(uv_handle_t *hd)
{
    struct hconn *c = hd->data;
    if (--c->handles > 0)
        return;
    struct chealth *h = c->h;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    h->nconns--;
    free(c);
    if (h->stopping && h->nconns == 0 && uv_is_closing((uv_handle_t *)&h->listener) == 0)
        uv_close((uv_handle_t *)&h->listener, listener_close_cb);
}

static void hconn_close(struct hconn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->timer, hconn_close_cb);
    uv_close((uv_handle_t *)&c->tcp, hconn_close_cb);
}

static void hconn_timeout_cb(uv_timer_t *t)
{
    hconn_close(t->data);
}

static void hconn_write_cb(uv_write_t *req, int status)
{
    (void)status;
    hconn_close(req->data);
}

/* The body for path, and its status. */
static int answer(struct connector *cn, const char *path, char *body, size_t cap)
{
    bool up = cn->state == CTL_UP;
    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
        if (up)
            snprintf(body, cap, "ok\n");
        else
            snprintf(body, cap, "tunnel down: %.400s\n",
                     cn->down_reason[0] != '\0' ? cn->down_reason : "connecting");
        return up ? 200 : 503;
    }
    if (strcmp(path, "/metrics") == 0) {
        snprintf(body, cap,
                 "# TYPE pgtp_connector_tunnel_up gauge\npgtp_connector_tunnel_up %d\n"
                 "# TYPE pgtp_connector_streams_open gauge\npgtp_connector_streams_open %zu\n"
                 "# TYPE pgtp_connector_streams_total counter\npgtp_connector_streams_total %llu\n"
                 "# TYPE pgtp_connector_tunnel_attempts_total counter\n"
                 "pgtp_connector_tunnel_attempts_total %llu\n",
                 up ? 1 : 0, cn->nstreams, (unsigned long long)cn->streams_total,
                 (unsigned long long)cn->reconnects);
        return 200;
    }
    snprintf(body, cap, "not found: try /healthz, /readyz or /metrics\n");
    return 404;
}

static void respond(struct hconn *c, int status, bool head_only, const char *body)
{
    const char *text = status == 200   ? "OK"
                       : status == 404 ? "Not Found"
                       : status == 405 ? "Method Not Allowed"
                       : status == 400 ? "Bad Request"
                                       : "Service Unavailable";
    int n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     status, text, strlen(body), head_only ? "" : body);
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_buf_t b = uv_buf_init(c->out, n > 0 && (size_t)n < sizeof(c->out) ? (unsigned)n : 0);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, hconn_write_cb) != 0)
        hconn_close(c);
}

static void hconn_alloc_cb(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    struct hconn *c = hd->data;
    (void)suggested;
    *buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof(c->head) - c->len));
}

static void hconn_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hconn *c = s->data;
    char method[16], path[128], body[700];
    (void)buf;
    if (c->closing || c->answered || nread == 0)
        return;
    if (nread < 0) {
        hconn_close(c);
        return;
    }
    c->len += (size_t)nread;
    int r = httpreq_parse(c->head, c->len, method, sizeof(method), path, sizeof(path));
    if (r == 0 && c->len < sizeof(c->head))
        return;
    if (r <= 0) {
        respond(c, 400, false, "bad request\n");
        return;
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond(c, 405, false, "only GET and HEAD\n");
        return;
    }
    int status = answer(c->h->cn, path, body, sizeof(body));
    respond(c, status, head, body);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct chealth *h = server->data;
    if (status < 0 || h->stopping)
        return;
    struct hconn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->h = h;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = h->conns;
    if (h->conns != NULL)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || h->nconns > HEALTH_MAX_CONNS ||
        uv_read_start((uv_stream_t *)&c->tcp, hconn_alloc_cb, hconn_read_cb) != 0) {
        hconn_close(c);
        return;
    }
    uv_timer_start(&c->timer, hconn_timeout_cb, HEALTH_TIMEOUT_MS, 0);
}

struct chealth *chealth_start(struct connector *cn, const char *address, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    char e[256], where[80];
    if (adminaddr_parse(address, &ss, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "--health-address: %s", e);
        return NULL;
    }
    struct chealth *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->cn = cn;
    uv_tcp_init(&cn->loop, &h->listener);
    h->listener.data = h;
    int r = uv_tcp_bind(&h->listener, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&h->listener, 64, on_connection);
    adminaddr_text(&ss, where, sizeof(where));
    if (r != 0) {
        snprintf(err, errlen, "--health-address %s: cannot listen: %s", where, uv_strerror(r));
        uv_close((uv_handle_t *)&h->listener, listener_close_cb);
        return NULL;
    }
    log_info("event=health_listening connector=%s address=%s paths=/healthz,/readyz,/metrics",
             cn->o->name, where);
    return h;
}

void chealth_stop(struct chealth *h)
{
    if (h == NULL)
        return;
    h->stopping = true;
    for (struct hconn *c = h->conns; c != NULL; c = c->next)
        hconn_close(c);
    if (h->nconns == 0)
        uv_close((uv_handle_t *)&h->listener, listener_close_cb);
}
