/*
 * admin.c - the admin HTTP endpoint (--admin-address): GET or HEAD of
 * /metrics, /healthz, /readyz and /readyz/NAME (one route), and the
 * /sessions paths (adminsess.c), one request per connection, served on
 * the main thread's loop.
 *
 * Owns the admin listener and every admin connection (listed, so admin_stop
 * can close them all and the loop can end). Memory of a connection is freed
 * only in the close callback of its last handle. Everything is bounded: at
 * most ADMIN_HEAD_MAX bytes of request head, sent within ADMIN_HEAD_MS,
 * ADMIN_MAX_CONNS connections at once, and ADMIN_TIMEOUT_MS to send the
 * response. Probes must keep answering whatever idle clients do (a
 * Kubernetes liveness probe that fails restarts a healthy proxy): when the
 * table is full, the oldest connection that has not sent its request yet
 * makes room for the new one. Must never block the loop and never take the
 * process down: every failure closes one connection and is logged.
 * The request head is parsed by httpreq.c, the address by adminaddr.c,
 * /readyz answered by adminready.c.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "adminaddr.h"
#include "adminready.h"
#include "adminsess.h"
#include "httpreq.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"

#define ADMIN_HEAD_MAX 4096
#define ADMIN_HEAD_MS 2000     /* connect -> complete request head; probes take a few ms */
#define ADMIN_TIMEOUT_MS 10000 /* request head -> response written */
#define ADMIN_LINGER_MS 2000
#define ADMIN_MAX_CONNS 64

/* ---- connections ----------------------------------------------------------- */

enum ac_state {
    AC_READING, /* collecting the request head */
    AC_WAITING, /* /sessions: waiting for the workers' answer (req); input dropped */
    AC_WRITING, /* response queued; further input is read and dropped */
    AC_LINGER,  /* response sent, our side shut down; waiting for the client's EOF */
};

struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    enum ac_state state;
    bool closing, peer_eof;
    int open_handles; /* freed when the last close callback brings this to 0 */
    struct admin_conn *prev, *next;
    bool head_only;       /* a HEAD request: the body's length, not the body */
    struct sess_req *req; /* AC_WAITING: the request the workers answer */
    char *body;           /* the /metrics text or a JSON answer (malloc'd), else NULL */
    size_t body_len, len;
    char out[512];             /* response head, plus a small body */
    char head[ADMIN_HEAD_MAX]; /* request head; later a sink for dropped input */
};

static uv_loop_t *a_loop;
static struct listener a_listener;
static bool a_full_logged;
static unsigned a_ready_window;
static atomic_bool a_listening;
static struct admin_conn *a_conns; /* newest first */
static size_t a_nconns;            /* listed: until the last close callback */
static size_t a_live;              /* listed and not closing: what ADMIN_MAX_CONNS bounds */

void admin_set_listening(bool listening)
{
    atomic_store_explicit(&a_listening, listening, memory_order_relaxed);
}

static void conn_close_cb(uv_handle_t *h)
{
    struct admin_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a_conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    a_nconns--;
    free(c->body);
    free(c);
}

/* The one way a connection ends; idempotent. A pending write or shutdown
 * gets its callback (UV_ECANCELED) before the close callbacks, which free. */
static void conn_close(struct admin_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    a_live--;
    adminsess_detach(c->req); /* answered later: dropped then */
    c->req = NULL;
    uv_close((uv_handle_t *)&c->timer, conn_close_cb);
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void timeout_cb(uv_timer_t *t)
{
    struct admin_conn *c = t->data;
    if (c->state == AC_READING)
        log_debug("event=admin_timeout received=%zu", c->len);
    conn_close(c);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct admin_conn *c = req->handle->data;
    if (c->closing)
        return;
    if (status < 0 || c->peer_eof)
        conn_close(c);
    /* else the client's EOF (read_cb) or the timer closes */
}

static void write_cb(uv_write_t *req, int status)
{
    struct admin_conn *c = req->handle->data;
    if (c->closing)
        return;
    if (status < 0 || c->peer_eof) {
        conn_close(c);
        return;
    }
    /*
     * Lingering close: closing at once while request bytes are still
     * unread (a 431, a body) makes the kernel send RST, which can destroy
     * the response before the client reads it. So shut down our side and
     * drop input until the client's EOF, for a bounded time.
     */
    c->state = AC_LINGER;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
        conn_close(c);
        return;
    }
    if (uv_timer_get_due_in(&c->timer) > ADMIN_LINGER_MS)
        uv_timer_start(&c->timer, timeout_cb, ADMIN_LINGER_MS, 0);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* The whole /metrics text in c->body. Counters may grow between measuring
 * and rendering, so leave headroom and retry a few times. */
static int render_metrics(struct admin_conn *c)
{
    size_t need = metrics_render(NULL, 0);
    for (int tries = 0; tries < 4; tries++) {
        size_t cap = need + need / 16 + 256;
        char *b = malloc(cap);
        if (b == NULL)
            return -1;
        size_t n = metrics_render(b, cap);
        if (n < cap) {
            c->body = b;
            c->body_len = n;
            return 0;
        }
        free(b);
        need = n;
    }
    return -1;
}

static void send_reply(struct admin_conn *c, int status, const char *ctype, const char *extra,
                       const char *text);

/* adminsess.c's answer to a /sessions request (now, or from the workers). */
static void sessions_reply(void *owner, struct adminsess_reply *r)
{
    struct admin_conn *c = owner;
    c->req = NULL;
    c->body = r->body;
    c->body_len = r->len;
    send_reply(c, r->status, r->ctype, r->extra, r->text != NULL ? r->text : "");
}

/* A /sessions path: asked of the workers, or answered at once. */
static void sessions_request(struct admin_conn *c, const char *method, const char *path)
{
    struct sockaddr_storage peer;
    int plen = sizeof(peer);
    struct adminsess_reply r = {0};
    memset(&peer, 0, sizeof(peer));
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) < 0) {
        conn_close(c);
        return;
    }
    c->head_only = strcmp(method, "HEAD") == 0;
    c->req = adminsess_request(c, method, path, c->head, c->len, (struct sockaddr *)&peer, &r);
    if (c->req == NULL) {
        sessions_reply(c, &r);
        return;
    }
    c->state = AC_WAITING; /* sessions_reply, or the timer, ends the wait */
    uv_timer_start(&c->timer, timeout_cb, ADMIN_TIMEOUT_MS, 0);
}

/* Decide the response and queue it. parsed: httpreq_parse's result, where 0
 * means the head filled ADMIN_HEAD_MAX without ending. */
static void respond(struct admin_conn *c, int parsed, const char *method, char *path)
{
    int status;
    const char *text = "", *ctype = "text/plain; charset=utf-8", *extra = "";

    /* Scrapers and probes may add a query string; it selects nothing here. */
    char *query = parsed > 0 ? strchr(path, '?') : NULL;
    if (query != NULL)
        *query = '\0';
    if (parsed < 0) {
        status = 400;
        text = "bad request\n";
    } else if (parsed == 0) {
        status = 431;
        text = "request header fields too large\n";
    } else if (adminsess_path(path)) {
        sessions_request(c, method, path);
        return;
    } else if (strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0 &&
               strcmp(path, "/readyz") != 0 && strncmp(path, "/readyz/", 8) != 0) {
        status = 404;
        text = "not found\n";
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = 405;
        text = "method not allowed\n";
        extra = "Allow: GET, HEAD\r\n";
    } else {
        c->head_only = strcmp(method, "HEAD") == 0;
        if (strcmp(path, "/metrics") == 0) {
            if (render_metrics(c) == 0) {
                status = 200;
                ctype = "text/plain; version=0.0.4; charset=utf-8";
            } else {
                status = 500;
                text = "out of memory\n";
            }
        } else if (strcmp(path, "/healthz") == 0) {
            bool up = atomic_load_explicit(&a_listening, memory_order_relaxed);
            status = up ? 200 : 503;
            text = up ? "ok\n" : "not listening\n";
        } else {
            status = adminready_body(path[7] == '/' ? path + 8 : NULL, a_ready_window, &c->body,
                                     &c->body_len);
            if (status == 500)
                text = "out of memory\n";
        }
    }

    char mq[40], pq[80];
    log_debug("event=admin_request method=\"%s\" path=\"%s\" status=%d",
              parsed == 1 ? log_escape(method, mq, sizeof(mq)) : "",
              parsed == 1 ? log_escape(path, pq, sizeof(pq)) : "", status);
    send_reply(c, status, ctype, extra, text);
}

/* Queue the response: c->body if set, else text (a small static body). */
static void send_reply(struct admin_conn *c, int status, const char *ctype, const char *extra,
                       const char *text)
{
    bool head_only = c->head_only;
    size_t blen = c->body != NULL ? c->body_len : strlen(text);
    int n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n%s",
                     status, status_text(status), ctype, blen, extra,
                     c->body == NULL && !head_only ? text : "");
    /* out holds every fixed head and small body above; never truncated. */
    size_t olen = n > 0 && (size_t)n < sizeof(c->out) ? (size_t)n : 0;

    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    bufs[0] = uv_buf_init(c->out, (unsigned)olen);
    if (c->body != NULL && !head_only)
        bufs[nbufs++] = uv_buf_init(c->body, (unsigned)c->body_len);
    c->state = AC_WRITING;
    uv_timer_start(&c->timer, timeout_cb, ADMIN_TIMEOUT_MS, 0);
    c->wreq.data = c;
    if (olen == 0 || uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, nbufs, write_cb) < 0)
        conn_close(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct admin_conn *c = h->data;
    (void)suggested;
    /* While reading the head, append; afterwards input is dropped, so the
     * head buffer (no longer needed) serves as the sink. */
    if (c->state == AC_READING)
        *buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof(c->head) - c->len));
    else
        *buf = uv_buf_init(c->head, sizeof(c->head));
}

/* n more bytes of request head are in c->head: answer once it is whole. */
static void head_input(struct admin_conn *c, size_t n)
{
    c->len += n;
    char method[16], path[256];
    int r = httpreq_parse(c->head, c->len, method, sizeof(method), path, sizeof(path));
    if (r == 0 && c->len < sizeof(c->head))
        return;
    respond(c, r, method, path);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct admin_conn *c = s->data;
    (void)buf;
    if (c->closing || nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF && (c->state == AC_WRITING || c->state == AC_WAITING)) {
            c->peer_eof = true; /* finish the write, then close */
            uv_read_stop(s);
            return;
        }
        conn_close(c);
        return;
    }
    if (c->state == AC_READING)
        head_input(c, (size_t)nread);
}

/*
 * Take what c's client has sent already, without waiting for the loop to
 * get to it: a probe accepted in the same burst as many idle connections
 * has its request in by now. True if c no longer waits for its head
 * (answered, or closed).
 */
static bool read_now(struct admin_conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return false;
    while (!c->closing && c->state == AC_READING && c->len < sizeof(c->head)) {
        ssize_t n = recv(fd, c->head + c->len, sizeof(c->head) - c->len, MSG_DONTWAIT);
        if (n > 0)
            head_input(c, (size_t)n);
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else
            conn_close(c); /* EOF or error before a whole request */
    }
    return c->closing || c->state != AC_READING;
}

/*
 * The table is full: close one connection to make room for a new one. First
 * the oldest that has not sent a whole request head (an idle or slow client:
 * a real probe sends its request at once), then the oldest that has its
 * response and is only waiting for the client's EOF. False if every slot is
 * writing a response: the new connection is refused.
 */
static bool make_room(void)
{
    struct admin_conn *oldest = a_conns;
    while (oldest != NULL && oldest->next != NULL)
        oldest = oldest->next;
    /* Closing leaves c listed until its close callbacks: the walk is safe. */
    for (struct admin_conn *c = oldest; c != NULL; c = c->prev) {
        if (c->closing || c->state != AC_READING || read_now(c))
            continue;
        log_debug("event=admin_evicted received=%zu reason=\"no request yet, table full\"", c->len);
        conn_close(c);
        return true;
    }
    for (struct admin_conn *c = oldest; c != NULL; c = c->prev) {
        if (!c->closing && c->state == AC_LINGER) {
            conn_close(c);
            return true;
        }
    }
    return false;
}

static void admin_accept(void *arg, int fd)
{
    (void)arg;
    bool full = a_live >= ADMIN_MAX_CONNS;
    if (full && !make_room()) {
        if (!a_full_logged)
            log_warn("event=admin_busy max=%d reason=\"too many admin connections, all "
                     "answering\"",
                     ADMIN_MAX_CONNS);
        a_full_logged = true;
        close(fd);
        return;
    }
    if (full && !a_full_logged) {
        log_warn("event=admin_busy max=%d reason=\"too many admin connections: the oldest "
                 "that have not sent a request are closed to make room\"",
                 ADMIN_MAX_CONNS);
        a_full_logged = true;
    } else if (!full) {
        a_full_logged = false;
    }
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_warn("event=admin_accept_failed reason=\"out of memory\"");
        close(fd);
        return;
    }
    uv_tcp_init(a_loop, &c->tcp);
    uv_timer_init(a_loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = a_conns;
    if (a_conns != NULL)
        a_conns->prev = c;
    a_conns = c;
    a_nconns++;
    a_live++;

    int r = uv_tcp_open(&c->tcp, fd);
    if (r < 0) {
        log_warn("event=admin_accept_failed reason=\"%s\"", uv_strerror(r));
        close(fd); /* not the handle's yet */
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, timeout_cb, ADMIN_HEAD_MS, 0);
    r = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (r < 0)
        conn_close(c);
}

/* ---- start / stop ------------------------------------------------------------- */

int admin_check_address(const char *address, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    return adminaddr_parse(address != NULL ? address : "", &ss, err, errlen);
}

int admin_start(uv_loop_t *loop, const char *address, unsigned ready_window_s, char *err,
                size_t errlen)
{
    struct sockaddr_storage ss;
    char q[96];
    int one = 1;

    if (address == NULL)
        address = "";
    if (a_listener.open || a_listener.closing > 0) {
        snprintf(err, errlen, "--admin-address: the admin endpoint is already running");
        return -1;
    }
    if (adminaddr_parse(address, &ss, err, errlen) < 0)
        return -1;
    log_escape(address, q, sizeof(q));

    /* Bind by hand, so a bind error leaves no handle for the loop to close. */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "--admin-address \"%s\": socket: %s", q, strerror(errno));
        return -1;
    }
    socklen_t slen =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&ss, slen) < 0) {
        snprintf(err, errlen, "--admin-address \"%s\": cannot listen: %s", q, strerror(errno));
        close(fd);
        return -1;
    }
    char where[INET6_ADDRSTRLEN + 8] = "?";
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        adminaddr_text(&bound, where, sizeof(where));

    a_loop = loop;
    a_ready_window = ready_window_s;
    snprintf(a_listener.name, sizeof(a_listener.name), "listener=admin");
    int r = listener_open(loop, &a_listener, fd, admin_accept, NULL);
    if (r < 0) {
        /* listener_open closed fd; the loop must run once more for its handles. */
        snprintf(err, errlen, "--admin-address \"%s\": cannot listen: %s", q, uv_strerror(r));
        return -1;
    }
    log_info("event=admin_listening address=%s", where);
    return 0;
}

void admin_stop(void)
{
    listener_close(&a_listener);
    for (struct admin_conn *c = a_conns; c != NULL; c = c->next)
        conn_close(c);
    adminsess_stop(); /* after every connection has let go of its request */
}

int admin_sessions_start(struct worker *workers, unsigned nworkers, const char *token_file,
                         char *err, size_t errlen)
{
    return adminsess_start(a_loop, workers, nworkers, token_file, sessions_reply, err, errlen);
}
