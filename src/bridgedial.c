/*
 * bridgedial.c - the worker's side of a bridge stream: ask the bridge
 * thread for a stream (bridge_open), wait for its answer on this worker's
 * thread (bridge_dial_result), then set the back leg up over the data
 * connection (leg_bridge.c: the outer TLS, the token) and report to
 * dial.c's owner as a TCP dial would.
 *
 * Owns struct bridgedial (held by dial.c's struct dial) and the worker's
 * list of streams waiting for an answer. Stream ids are the worker's
 * number in the top 16 bits and 48 random bits below: unique without a
 * lock, and not guessable by someone who can reach the bridge listener and
 * would race a connector's data connection (the token would refuse them,
 * but the session would be lost). The token is random, wiped once handed to the leg, and
 * never logged. A session that gives up first forgets its stream, so a data
 * connection that still comes for it is closed by whoever holds it.
 */
#include "bridgedial.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "admit.h"
#include "bridge.h"
#include "conn.h"
#include "leg.h"
#include "log.h"
#include "route.h"
#include "worker.h"

static const struct bridgedial_link bridge_thread_link = {bridge_open, bridge_forget,
                                                          bridge_ssl_ctx};
const struct bridgedial_link *bridgedial_link = &bridge_thread_link;

enum bd_state {
    BD_WAIT,  /* bridge_open sent; in the worker's waiting list */
    BD_SETUP, /* data connection here: outer TLS, token */
    BD_DONE,  /* connected or failed: reported */
};

struct bridgedial {
    struct conn *c;
    struct bridgedial *prev, *next; /* the worker's waiting list (BD_WAIT) */
    enum bd_state state;
    dial_connected_cb connected;
    dial_failed_cb failed;
    uint64_t stream;
    char sid[17]; /* the stream id in hex, for the logs */
    uint8_t token[BRIDGE_TOKEN_LEN];
    char connector[64];
    char doing[BRIDGE_ID_MAX + 48];
};

/* ---- the worker's waiting list ---- */

static void wait_link(struct worker *w, struct bridgedial *b)
{
    b->prev = NULL;
    b->next = w->bridge_waiting;
    if (b->next != NULL)
        b->next->prev = b;
    w->bridge_waiting = b;
}

static void wait_unlink(struct worker *w, struct bridgedial *b)
{
    if (b->prev != NULL)
        b->prev->next = b->next;
    else if (w->bridge_waiting == b)
        w->bridge_waiting = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    b->prev = b->next = NULL;
}

/* Only streams being set up wait: a short list. */
static struct bridgedial *wait_find(struct worker *w, uint64_t stream)
{
    for (struct bridgedial *b = w->bridge_waiting; b != NULL; b = b->next)
        if (b->stream == stream)
            return b;
    return NULL;
}

/* ---- reporting ---- */

/* The dial failed. May end the connection: b is freed (dial_free). */
static void fail(struct bridgedial *b, const char *sqlstate, const char *label, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));
static void fail(struct bridgedial *b, const char *sqlstate, const char *label, const char *fmt,
                 ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    b->state = BD_DONE;
    b->failed(b->c, sqlstate, label, msg);
}

/* How the outer TLS and the token went. May end the connection. */
static void setup_cb(void *arg, enum leg_bridge_setup res, const char *why)
{
    struct bridgedial *b = arg;
    struct conn *c = b->c;
    const struct route *rt = c->route;

    if (c->phase != PHASE_OPEN || b->state != BD_SETUP)
        return;
    switch (res) {
    case LEG_BRIDGE_UP:
        b->state = BD_DONE;
        c->bridge_stream = b->stream; /* forgotten when the session ends (conn.c) */
        log_debug("event=bridge_stream conn=%llu stream=%s bridge=%s connector=\"%s\" target=%s:%u",
                  (unsigned long long)c->id, b->sid, rt->bridge, b->connector, rt->host, rt->port);
        b->connected(c);
        return;
    case LEG_BRIDGE_TLS_FAILED:
        fail(b, "08001", "tls",
             "pg-tls-proxy: the TLS handshake with bridge \"%s\" connector %s failed: %s — does "
             "the connector trust the proxy's bridge certificate? See the connector's log",
             rt->bridge, b->connector, why);
        return;
    case LEG_BRIDGE_BAD_TOKEN:
        fail(b, "08001", "error",
             "pg-tls-proxy: the bridge connection did not present this stream's token (bridge "
             "\"%s\", connector %s); connection refused",
             rt->bridge, b->connector);
        return;
    case LEG_BRIDGE_LOST:
    default:
        fail(b, "08001", "closed",
             "pg-tls-proxy: the bridge \"%s\" connection from connector %s for upstream %s:%u "
             "ended before it was ready (%s) — see the connector's log",
             rt->bridge, b->connector, rt->host, rt->port, why);
        return;
    }
}

void bridgedial_start(struct conn *c, struct bridgedial **slot, dial_connected_cb connected,
                      dial_failed_cb failed)
{
    struct worker *w = c->w;
    const struct route *rt = c->route;
    struct bridgedial *b = calloc(1, sizeof(*b));

    if (b == NULL) {
        failed(c, "XX000", "internal", "pg-tls-proxy: out of memory");
        return;
    }
    *slot = b;
    b->c = c;
    b->connected = connected;
    b->failed = failed;
    b->state = BD_WAIT;
    uint8_t rnd[6] = {0};
    int rnd_ok = RAND_bytes(rnd, sizeof(rnd));
    b->stream = (uint64_t)(w->index + 1) << 48;
    for (size_t i = 0; i < sizeof(rnd); i++)
        b->stream |= (uint64_t)rnd[i] << (8 * i);
    snprintf(b->sid, sizeof(b->sid), "%016" PRIx64, b->stream);
    snprintf(b->connector, sizeof(b->connector), "-");
    if (rnd_ok != 1 || RAND_bytes(b->token, sizeof(b->token)) != 1) {
        fail(b, "XX000", "internal", "pg-tls-proxy: no random bytes for a bridge stream token");
        return;
    }
    wait_link(w, b);
    /* Failures before a data connection name the bridge too. */
    snprintf(c->back_addr, sizeof(c->back_addr), "bridge:%.56s", rt->bridge);
    log_debug("event=bridge_stream_requested conn=%llu stream=%s bridge=%s target=%s:%u",
              (unsigned long long)c->id, b->sid, rt->bridge, rt->host, rt->port);
    bridgedial_link->open(w, b->stream, b->token, rt->bridge, rt->host, rt->port);
}

const char *bridgedial_doing(const struct bridgedial *b)
{
    struct bridgedial *m = (struct bridgedial *)b;
    if (b == NULL)
        return NULL;
    switch (b->state) {
    case BD_WAIT:
        snprintf(m->doing, sizeof(m->doing), "waiting for bridge \"%s\" to open a stream",
                 b->c->route->bridge);
        return m->doing;
    case BD_SETUP:
        return "in the bridge TLS handshake";
    case BD_DONE:
    default:
        return NULL;
    }
}

void bridgedial_free(struct bridgedial *b)
{
    if (b == NULL)
        return;
    if (b->state == BD_WAIT) {
        wait_unlink(b->c->w, b);
        bridgedial_link->forget(b->stream); /* a data connection still coming is closed */
    } else if (b->state == BD_SETUP) {
        leg_bridge_detach(&b->c->back);
    }
    OPENSSL_cleanse(b, sizeof(*b));
    free(b);
}

void bridge_result_free(struct bridge_result *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->extra);
    free(r);
}

/* The data connection r->fd is ours: open the leg over it and start the
 * set-up. Takes r. May end the connection. */
static void take_connection(struct bridgedial *b, struct bridge_result *r)
{
    struct conn *c = b->c;
    const struct route *rt = c->route;
    unsigned long long limit = 0;
    char err[256];

    if (admit_fd_nearly_out(r->fd, &limit)) {
        int fdno = r->fd;
        bridge_result_free(r);
        admit_fd_limit_log(fdno, limit);
        fail(b, "53300", "fd_exhausted",
             "pg-tls-proxy: too many connections: the proxy is nearly out of file descriptors "
             "(%d open, limit %llu) — raise its open-files limit (ulimit -n / LimitNOFILE) or "
             "lower the load",
             fdno + 1, limit);
        return;
    }
    SSL_CTX *ctx = bridgedial_link->ssl_ctx();
    if (ctx == NULL || leg_bridge_open(&c->back) < 0) {
        SSL_CTX_free(ctx);
        bridge_result_free(r);
        fail(b, "XX000", "internal", "pg-tls-proxy: %s",
             ctx == NULL ? "bridge mode has no TLS context (is --bridge-listen set?)"
                         : "out of memory");
        return;
    }
    conn_hold(c); /* the leg's transport: released at LEG_CLOSED */
    /* 64 bytes: long names are cut (the bridge_stream line has them whole) */
    snprintf(c->back_addr, sizeof(c->back_addr), "bridge:%.32s/%.23s", rt->bridge, b->connector);
    b->state = BD_SETUP;
    int rc = leg_bridge_start(&c->back, r->fd, ctx, r->extra, r->extra_len, b->token, setup_cb, b,
                              err, sizeof(err));
    SSL_CTX_free(ctx); /* the leg's SSL holds its own reference */
    OPENSSL_cleanse(b->token, sizeof(b->token));
    if (rc == 0) {
        r->fd = -1; /* the leg's now */
        uv_tcp_nodelay(&c->back.tcp, 1);
        unsigned ka = rt->keepalive_s;
        uv_tcp_keepalive(&c->back.tcp, ka > 0, ka);
    }
    bridge_result_free(r);
    if (rc < 0)
        fail(b, "XX000", "internal", "pg-tls-proxy: bridge \"%s\": %s", rt->bridge, err);
}

void bridge_dial_result(struct worker *w, struct bridge_result *r)
{
    struct bridgedial *b = wait_find(w, r->stream);
    if (b == NULL) {
        /* The session gave up first (bridge_forget may not have reached
         * the bridge thread in time): nobody will use the connection. */
        log_debug("event=bridge_stream_unclaimed stream=%016" PRIx64 " connector=\"%s\"", r->stream,
                  r->connector);
        bridge_result_free(r);
        return;
    }
    wait_unlink(w, b);
    b->state = BD_DONE;
    struct conn *c = b->c;
    snprintf(b->connector, sizeof(b->connector), "%.63s", r->connector[0] ? r->connector : "-");
    if (c->phase != PHASE_OPEN) {
        bridge_result_free(r); /* ending: the dial is freed with the connection */
        return;
    }
    if (r->fd >= 0) {
        take_connection(b, r);
        return;
    }
    /* The bridge thread's words for the client (no connector online, the
     * connector's FAIL, no data connection in time). */
    char sqlstate[6], label[24], msg[512];
    snprintf(sqlstate, sizeof(sqlstate), "%.5s", r->sqlstate[0] ? r->sqlstate : "08001");
    snprintf(label, sizeof(label), "%.23s", r->label[0] ? r->label : "error");
    snprintf(msg, sizeof(msg), "%.511s", r->msg);
    bridge_result_free(r);
    fail(b, sqlstate, label, "%s",
         msg[0] ? msg : "pg-tls-proxy: the bridge could not open a stream to the upstream");
}

void bridgedial_lost(struct conn *c, const char *what)
{
    const char *slash = strchr(c->back_addr, '/');
    const char *connector = slash != NULL ? slash + 1 : "-";
    const char *bridge = c->route->bridge != NULL ? c->route->bridge : "-";
    char msg[512];

    log_warn("event=bridge_stream_lost conn=%llu front=%s bridge=%s connector=\"%s\" "
             "reason=\"%s\"",
             (unsigned long long)c->id, c->front_addr, bridge, connector, what);
    /* Between two of the server's messages (the login watch forwards whole
     * ones; after it, c->frames says), a FATAL is what the server itself
     * would send on its way out: the client reads why, not a bare EOF. */
    bool between = login_watching(c) ? !c->back_error_seen
                                     : c->framing && !c->frames.failed &&
                                           c->frames.server.have == 0 && c->frames.server.skip == 0;
    if (between) {
        snprintf(msg, sizeof(msg),
                 "pg-tls-proxy: the bridge \"%s\" connection to the database was lost (%s; "
                 "connector %s gone?) — connect again",
                 bridge, what, connector);
        conn_fail_front_between(c, "08006", "upstream_error", msg, NULL);
        return;
    }
    conn_end(c, strncmp(what, "closed", 6) == 0 ? "closed" : "error",
             "the bridge \"%s\" connection to the database was lost (%s; connector %s gone?)",
             bridge, what, connector);
}
