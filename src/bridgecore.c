/*
 * bridgecore.c - the bridge thread's event-loop side (issue 15): the
 * listener on --bridge-listen, the preamble of every connection, data
 * connections handed to the worker that waits for them, the registry of
 * connectors online per bridge id, the table of streams asked for, and the
 * once-a-tick timeouts.
 *
 * Owns: struct bstate's listeners, pending connections, registry entries
 * and streams. Runs only on the bridge thread (bridge.c's loop, or a unit
 * test's). Never: blocks, touches a worker's memory (results go through
 * b->deliver), logs a token or a secret.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authfile.h"
#include "bridgeint.h"
#include "log.h"
#include "netaddr.h"

/* ---- results ---- */

struct bridge_result *bresult_new(uint64_t stream, int fd, const char *connector, const char *label,
                                  const char *msg)
{
    struct bridge_result *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->stream = stream;
    r->fd = fd;
    snprintf(r->connector, sizeof(r->connector), "%s", connector != NULL ? connector : "");
    if (fd < 0) {
        memcpy(r->sqlstate, "08001", 6);
        snprintf(r->label, sizeof(r->label), "%s", label);
        snprintf(r->msg, sizeof(r->msg), "%s", msg);
    }
    return r;
}

/* ---- the table of streams ---- */

static struct bstream **bucket(struct bstate *b, uint64_t stream)
{
    /* Stream ids end in 48 random bits (bridgedial.c): their low bits spread well. */
    return &b->buckets[stream % BRIDGE_STREAM_BUCKETS];
}

struct bstream *bstream_find(struct bstate *b, uint64_t stream)
{
    for (struct bstream *s = *bucket(b, stream); s != NULL; s = s->hnext)
        if (s->stream == stream)
            return s;
    return NULL;
}

static struct bstream *bstream_add(struct bstate *b, struct bctl *c, struct worker *w,
                                   uint64_t stream, const char *target)
{
    struct bstream *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->stream = stream;
    s->ctl = c;
    s->w = w;
    s->deadline_ms = uv_now(b->loop) + b->timeout_ms;
    snprintf(s->target, sizeof(s->target), "%s", target);
    struct bstream **h = bucket(b, stream);
    s->hnext = *h;
    *h = s;
    s->cprev = c->tail;
    if (c->tail != NULL)
        c->tail->cnext = s;
    else
        c->streams = s;
    c->tail = s;
    c->nstreams++;
    c->npending++;
    b->nstreams++;
    return s;
}

void bstream_drop(struct bstate *b, struct bstream *s)
{
    struct bstream **h = bucket(b, s->stream);
    while (*h != s)
        h = &(*h)->hnext;
    *h = s->hnext;
    struct bctl *c = s->ctl;
    if (s->cprev != NULL)
        s->cprev->cnext = s->cnext;
    else
        c->streams = s->cnext;
    if (s->cnext != NULL)
        s->cnext->cprev = s->cprev;
    else
        c->tail = s->cprev;
    c->nstreams--;
    if (!s->carried)
        c->npending--;
    b->nstreams--;
    free(s);
}

static void deliver(struct bstate *b, struct worker *w, struct bridge_result *r)
{
    if (r != NULL)
        b->deliver(b->deliver_arg, w, r);
}

void bstream_fail(struct bstate *b, struct bstream *s, const char *label, const char *fmt, ...)
{
    char msg[512], q[600], conn[80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bctl_label(s->ctl, conn, sizeof(conn));
    log_warn("event=bridge_stream_failed bridge=%s connector=\"%s\" stream=%016" PRIx64
             " target=%s result=%s reason=\"%s\"",
             s->ctl->id, conn, s->stream, s->target, label, log_escape(msg, q, sizeof(q)));
    metrics_bridge_stream(s->ctl->id, label);
    deliver(b, s->w, bresult_new(s->stream, -1, conn, label, msg));
    bstream_drop(b, s);
}

void bstream_failed_by(struct bstate *b, struct bctl *c, uint64_t stream, const char *code,
                       const char *message)
{
    struct bstream *s = bstream_find(b, stream);
    if (s == NULL || s->ctl != c || s->carried)
        return; /* forgotten meanwhile, or not this connector's to fail */
    static const char *const codes[] = {"not_allowed", "unreachable", "timeout", "error"};
    const char *label = "error";
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(code, codes[i]) == 0)
            label = codes[i];
    if (strcmp(label, "not_allowed") == 0)
        bstream_fail(b, s, label,
                     "pg-tls-proxy: bridge \"%s\" connector \"%s\" could not reach %s: %s "
                     "(the target is not on the connector's --allow list: add %s to it and "
                     "restart the connector)",
                     c->id, c->name, s->target, message, s->target);
    else
        bstream_fail(b, s, label,
                     "pg-tls-proxy: bridge \"%s\" connector \"%s\" could not reach %s: %s", c->id,
                     c->name, s->target, message);
}

/* ---- the registry ---- */

struct bentry *breg_entry(struct bstate *b, const char *id, bool create)
{
    for (size_t i = 0; i < b->nentries; i++)
        if (strcmp(b->entries[i].id, id) == 0)
            return &b->entries[i];
    if (!create)
        return NULL;
    if (b->nentries == b->capentries) {
        size_t cap = b->capentries > 0 ? 2 * b->capentries : 16;
        struct bentry *v = realloc(b->entries, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        /* Entries hold no pointer into themselves: they may move. */
        b->entries = v;
        b->capentries = cap;
    }
    struct bentry *e = &b->entries[b->nentries++];
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", id);
    return e;
}

void breg_up(struct bstate *b, struct bctl *c)
{
    struct bentry *e = breg_entry(b, c->id, true);
    if (e == NULL)
        return;
    /* Appended: breg_pick prefers the longest online among equals. */
    struct bctl **p = &e->live;
    while (*p != NULL)
        p = &(*p)->enext;
    *p = c;
    c->enext = NULL;
    e->nlive++;
    e->last_seen = (int64_t)time(NULL);
    metrics_bridge_connectors(c->id, e->nlive);
}

void breg_down(struct bstate *b, struct bctl *c)
{
    struct bentry *e = breg_entry(b, c->id, false);
    if (e == NULL)
        return;
    for (struct bctl **p = &e->live; *p != NULL; p = &(*p)->enext) {
        if (*p == c) {
            *p = c->enext;
            e->nlive--;
            break;
        }
    }
    c->enext = NULL;
    e->last_seen = (int64_t)time(NULL);
    metrics_bridge_connectors(c->id, e->nlive);
}

struct bctl *breg_pick(struct bstate *b, const char *id)
{
    struct bentry *e = breg_entry(b, id, false);
    struct bctl *best = NULL;
    for (struct bctl *c = e != NULL ? e->live : NULL; c != NULL; c = c->enext)
        if (best == NULL || c->nstreams < best->nstreams ||
            (c->nstreams == best->nstreams && c->last_pick < best->last_pick))
            best = c; /* the fewest live streams; among equals, the longest unchosen */
    if (best != NULL)
        best->last_pick = ++b->picks;
    return best;
}

void breg_no_connector_msg(const struct bentry *e, const char *id, time_t now, char *buf,
                           size_t cap)
{
    char seen[96];
    if (e != NULL && e->last_seen > 0) {
        struct tm tm;
        time_t t = (time_t)e->last_seen;
        char ts[32];
        gmtime_r(&t, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(seen, sizeof(seen), "last seen %s, %lld s ago", ts,
                 (long long)(now > t ? now - t : 0));
    } else {
        snprintf(seen, sizeof(seen), "never seen since the proxy started");
    }
    snprintf(buf, cap,
             "pg-tls-proxy: bridge \"%s\" has no connector online (%s) — start pg-tls-proxy "
             "connector with --bridge-id %s in the database's network, or check its log",
             id, seen, id);
}

/* ---- what workers ask ---- */

void bcore_open(struct bstate *b, struct worker *w, uint64_t stream,
                const uint8_t token[BRIDGE_TOKEN_LEN], const char *id, const char *host,
                unsigned port)
{
    char target[300], msg[512];
    snprintf(target, sizeof(target), strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host, port);
    if (b->stopping) {
        deliver(b, w,
                bresult_new(stream, -1, NULL, "error",
                            "pg-tls-proxy: the proxy is shutting down: no new bridge stream"));
        return;
    }
    struct bctl *c = breg_pick(b, id);
    if (c == NULL && authfile_find(b->file, id) == NULL)
        snprintf(msg, sizeof(msg),
                 "pg-tls-proxy: bridge \"%s\" is not in the proxy's --bridges-file, so no "
                 "connector can log in for it — add its line (pg-tls-proxy bridge-secret %s "
                 "prints one) and reload the proxy",
                 id, id);
    else if (c == NULL)
        breg_no_connector_msg(breg_entry(b, id, false), id, time(NULL), msg, sizeof(msg));
    if (c == NULL) {
        log_warn("event=bridge_stream_failed bridge=%s stream=%016" PRIx64
                 " target=%s result=no_connector",
                 id, stream, target);
        metrics_bridge_stream(id, "no_connector");
        deliver(b, w, bresult_new(stream, -1, NULL, "no_connector", msg));
        return;
    }
    struct bstream *s =
        bstream_find(b, stream) == NULL ? bstream_add(b, c, w, stream, target) : NULL;
    if (s == NULL) {
        deliver(b, w,
                bresult_new(stream, -1, NULL, "error",
                            "pg-tls-proxy: cannot track the bridge stream (out of memory or a "
                            "stream id used twice)"));
        return;
    }
    log_debug("event=bridge_open bridge=%s connector=\"%s\" stream=%016" PRIx64 " target=%s", id,
              c->name, stream, target);
    if (bctl_send_open(c, stream, token, target) < 0 && bstream_find(b, stream) == s)
        bstream_fail(b, s, "error",
                     "pg-tls-proxy: bridge \"%s\" connector \"%s\" closed before "
                     "opening the stream",
                     id, c->name);
}

void bcore_forget(struct bstate *b, uint64_t stream)
{
    struct bstream *s = bstream_find(b, stream);
    if (s != NULL)
        bstream_drop(b, s);
}

/* ---- preambles and data connections ---- */

static void pending_closed_cb(uv_handle_t *h)
{
    free(h->data);
}

/* Unlink p and close its handle; fd stays open unless close_fd. */
static void pending_end(struct bpending *p, bool close_fd)
{
    struct bstate *b = p->b;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        b->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    b->npending--;
    /* uv_close stops the poll and takes fd out of epoll at once: the fd
     * may go to another handle (or thread) right away. */
    uv_close((uv_handle_t *)&p->poll, pending_closed_cb);
    if (close_fd)
        close(p->fd);
}

/* A data connection for stream: to its worker, or closed. */
static void data_connection(struct bpending *p, uint64_t stream)
{
    struct bstate *b = p->b;
    struct bstream *s = bstream_find(b, stream);
    if (s == NULL || s->carried) {
        log_warn("event=bridge_data_refused addr=%s stream=%016" PRIx64 " reason=\"%s\"", p->addr,
                 stream,
                 s == NULL ? "no session waits for this stream (unknown, expired or given up)"
                           : "this stream already has its data connection");
        pending_end(p, true);
        return;
    }
    int fd = p->fd;
    char conn[80];
    bctl_label(s->ctl, conn, sizeof(conn));
    struct bridge_result *r = bresult_new(stream, fd, conn, NULL, NULL);
    if (r == NULL) {
        pending_end(p, true);
        bstream_fail(b, s, "error", "pg-tls-proxy: out of memory");
        return;
    }
    pending_end(p, false);
    s->carried = true;
    s->ctl->npending--;
    log_debug("event=bridge_stream_opened bridge=%s connector=\"%s\" stream=%016" PRIx64
              " target=%s",
              s->ctl->id, conn, stream, s->target);
    metrics_bridge_stream(s->ctl->id, "opened");
    deliver(b, s->w, r);
    /* Remembered while carried, for bridge_down's list; bounded. */
    struct bctl *c = s->ctl;
    if (c->nstreams > BRIDGE_CARRIED_MAX && c->streams != NULL && c->streams->carried)
        bstream_drop(b, c->streams);
}

static void preamble_done(struct bpending *p)
{
    uint64_t stream = 0;
    if (bridge_preamble_decode(p->buf, p->got, &stream) < 0) {
        log_warn("event=bridge_refused addr=%s reason=\"not a bridge connector\"", p->addr);
        pending_end(p, true);
        return;
    }
    if (stream != 0) {
        data_connection(p, stream);
        return;
    }
    struct bstate *b = p->b;
    int fd = p->fd;
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", p->addr);
    pending_end(p, false);
    bctl_accept(b, fd, addr);
}

static void pending_poll_cb(uv_poll_t *h, int status, int events)
{
    struct bpending *p = h->data;
    (void)events;
    /* Exactly the preamble: what follows (TLS) is read by its next owner. */
    ssize_t n = status < 0 ? -1 : recv(p->fd, p->buf + p->got, sizeof(p->buf) - p->got, 0);
    if (n < 0 && status >= 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        log_info("event=bridge_refused addr=%s reason=\"%s before its preamble\"", p->addr,
                 n == 0 ? "closed" : "connection error");
        pending_end(p, true);
        return;
    }
    p->got += (size_t)n;
    uint64_t stream;
    if (bridge_preamble_decode(p->buf, p->got, &stream) != 0 || p->got == sizeof(p->buf))
        preamble_done(p);
}

static void accept_cb(void *arg, int fd)
{
    struct bstate *b = arg;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char addr[64] = "-";
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        netaddr_format((struct sockaddr *)&ss, addr, sizeof(addr));
    if (b->stopping || b->npending >= BRIDGE_PENDING_MAX) {
        log_warn("event=bridge_refused addr=%s reason=\"%s\"", addr,
                 b->stopping ? "shutting down" : "too many connections owe their preamble");
        close(fd);
        return;
    }
    struct bpending *p = calloc(1, sizeof(*p));
    if (p == NULL || uv_poll_init_socket(b->loop, &p->poll, fd) != 0) {
        free(p);
        close(fd);
        return;
    }
    p->b = b;
    p->fd = fd;
    p->poll.data = p;
    p->deadline_ms = uv_now(b->loop) + b->timeout_ms;
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    p->next = b->pending;
    if (b->pending != NULL)
        b->pending->prev = p;
    b->pending = p;
    b->npending++;
    uv_poll_start(&p->poll, UV_READABLE, pending_poll_cb);
}

/* ---- the tick: every timeout of the bridge thread ---- */

static void tick_cb(uv_timer_t *t)
{
    struct bstate *b = t->data;
    uint64_t now = uv_now(b->loop);
    for (struct bpending *p = b->pending, *next; p != NULL; p = next) {
        next = p->next;
        if (now >= p->deadline_ms) {
            log_warn("event=bridge_refused addr=%s reason=\"no preamble within %llu s\"", p->addr,
                     (unsigned long long)(b->timeout_ms + 999) / 1000);
            pending_end(p, true);
        }
    }
    for (size_t i = 0; i < BRIDGE_STREAM_BUCKETS; i++) {
        for (struct bstream *s = b->buckets[i], *next; s != NULL; s = next) {
            next = s->hnext;
            if (!s->carried && now >= s->deadline_ms)
                bstream_fail(b, s, "timeout",
                             "pg-tls-proxy: bridge \"%s\" connector \"%s\" opened no connection "
                             "to %s within %llu s: check the connector's log and its way to the "
                             "proxy's --bridge-listen address",
                             s->ctl->id, s->ctl->name, s->target,
                             (unsigned long long)(b->timeout_ms + 999) / 1000);
        }
    }
    bctl_tick(b, now);
}

/* ---- life ---- */

int bcore_init(struct bstate *b, uv_loop_t *loop, SSL_CTX *ctx, struct authfile *file,
               unsigned heartbeat_ms, unsigned timeout_ms, bridge_deliver_fn deliver_fn,
               void *deliver_arg, char *err, size_t errlen)
{
    memset(b, 0, sizeof(*b));
    b->loop = loop;
    b->deliver = deliver_fn;
    b->deliver_arg = deliver_arg;
    b->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : BRIDGE_HEARTBEAT_S * 1000u;
    b->timeout_ms = timeout_ms > 0 ? timeout_ms : BRIDGE_TIMEOUT_MS;
    /* Ticks fine enough for the heartbeat and the timeouts, at most a
     * second apart. */
    uint64_t finest = b->heartbeat_ms < b->timeout_ms ? b->heartbeat_ms : b->timeout_ms;
    b->tick_ms = finest / 4 < 1000 ? finest / 4 : 1000;
    if (b->tick_ms == 0)
        b->tick_ms = 1;
    if (uv_timer_init(loop, &b->tick) != 0) {
        snprintf(err, errlen, "cannot create the bridge timer");
        return -1;
    }
    b->tick.data = b;
    uv_timer_start(&b->tick, tick_cb, b->tick_ms, b->tick_ms);
    SSL_CTX_up_ref(ctx);
    b->ctx = ctx;
    b->file = file;
    for (size_t i = 0; i < authfile_count(file); i++)
        metrics_bridge_known(authfile_user_at(file, i, NULL));
    return 0;
}

/* A socket bound to ai, not shared (no SO_REUSEPORT): one bridge thread. */
static int bridge_socket(const struct addrinfo *ai)
{
    int one = 1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int bcore_listen(struct bstate *b, const char *hostport, char *bound, size_t boundlen, char *err,
                 size_t errlen)
{
    char host[256], ps[8], where[80];
    uint16_t port;
    struct addrinfo hints, *res = NULL;
    if (bridge_hostport_parse(hostport, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "--bridge-listen \"%s\" is not HOST:PORT", hostport);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(ps, sizeof(ps), "%u", port);
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "--bridge-listen \"%s\": %s", hostport, gai_strerror(g));
        return -1;
    }
    size_t off = 0;
    bound[0] = '\0';
    int rc = 0;
    for (struct addrinfo *ai = res; ai != NULL && b->nlisteners < BRIDGE_LISTENERS_MAX;
         ai = ai->ai_next) {
        netaddr_format(ai->ai_addr, where, sizeof(where));
        int fd = bridge_socket(ai);
        struct listener *l = &b->listeners[b->nlisteners];
        snprintf(l->name, sizeof(l->name), "listener=bridge");
        int r = fd < 0 ? fd : listener_open(b->loop, l, fd, accept_cb, b);
        if (fd >= 0)
            b->nlisteners++; /* its handles are closing even on failure */
        if (r < 0) {
            snprintf(err, errlen, "--bridge-listen: cannot listen on %s: %s", where,
                     uv_strerror(r));
            rc = -1;
            break;
        }
        if (off < boundlen)
            off += (size_t)snprintf(bound + off, boundlen - off, "%s%s", off ? "," : "", where);
    }
    freeaddrinfo(res);
    return rc;
}

void bcore_reload(struct bstate *b, struct authfile *file, SSL_CTX *ctx)
{
    for (struct bctl *c = b->ctls, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == BCTL_CLOSED || c->id[0] == '\0')
            continue;
        const char *why = bauth_reload_reason(b->file, file, c->id);
        if (why != NULL)
            bctl_close(c, why, why);
    }
    bauth_cache_prune(b, file);
    for (size_t i = 0; i < authfile_count(file); i++)
        metrics_bridge_known(authfile_user_at(file, i, NULL));
    authfile_free(b->file);
    b->file = file;
    if (ctx != NULL) {
        SSL_CTX_free(b->ctx);
        b->ctx = ctx; /* ours: the caller gave its reference */
    }
}

void bcore_stop(struct bstate *b, const char *reason)
{
    if (b->stopping)
        return;
    b->stopping = true;
    for (size_t i = 0; i < b->nlisteners; i++)
        listener_close(&b->listeners[i]);
    while (b->pending != NULL)
        pending_end(b->pending, true);
    for (struct bctl *c = b->ctls, *next; c != NULL; c = next) {
        next = c->next;
        bctl_close(c, reason, reason);
    }
    uv_close((uv_handle_t *)&b->tick, NULL);
}

void bcore_free(struct bstate *b)
{
    /* Every connector closed has taken its streams with it. */
    for (size_t i = 0; i < BRIDGE_STREAM_BUCKETS; i++)
        for (struct bstream *s = b->buckets[i], *next; s != NULL; s = next) {
            next = s->hnext;
            free(s);
        }
    free(b->entries);
    authfile_free(b->file);
    SSL_CTX_free(b->ctx);
    OPENSSL_cleanse(b->cache, sizeof(b->cache));
    memset(b, 0, sizeof(*b));
}
