/*
 * dial.c - reaching the upstream: resolve, then connect to every address
 * in turn until one answers; or, for a route with a bridge, ask the bridge
 * for a stream (bridgedial.c). An upstream given as an address literal is
 * parsed on the loop; only a name goes to the resolver (libuv's thread
 * pool), on every connection, so that DNS changes (a fail-over) are seen.
 *
 * Owns struct dial (the resolver and connect requests and the errors seen
 * so far), which lives until the owner lets go (dial_free) and the last
 * pending request has called back. The leg's socket is made here, not by
 * uv_tcp_connect, so that its number can be checked against the
 * descriptor reserve. Reports once, through the callbacks of dial_start.
 */
#include "dial.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "bridgedial.h"
#include "conn.h"
#include "netaddr.h"
#include "pgassert.h"
#include "route.h"
#include "worker.h"

enum dial_state { DIAL_RESOLVE, DIAL_CONNECT, DIAL_BRIDGE, DIAL_CONNECTED, DIAL_FAILED };

struct dial {
    struct conn *c;
    enum dial_state state;
    dial_connected_cb connected;
    dial_failed_cb failed;
    uv_getaddrinfo_t gai;
    uv_connect_t connect_req;
    struct addrinfo *addrs, *cur;
    struct bridgedial *bridge; /* DIAL_BRIDGE: the stream through the route's bridge */
    bool gai_pending, connect_pending;
    bool detached; /* the conn let go; the last callback frees */
    size_t errs_len;
    char errs[400]; /* one entry per address tried */
};

static void dial_destroy(struct dial *d)
{
    bridgedial_free(d->bridge);
    if (d->addrs != NULL)
        uv_freeaddrinfo(d->addrs);
    free(d);
}

void dial_free(struct conn *c)
{
    struct dial *d = c->dial;
    if (d == NULL)
        return;
    c->dial = NULL;
    if (d->gai_pending)
        uv_cancel((uv_req_t *)&d->gai);
    if (d->gai_pending || d->connect_pending) {
        d->detached = true;
        return;
    }
    dial_destroy(d);
}

const char *dial_doing(const struct conn *c)
{
    if (c->dial == NULL)
        return NULL;
    switch (c->dial->state) {
    case DIAL_RESOLVE:
        return "resolving its name";
    case DIAL_CONNECT:
        return "connecting";
    case DIAL_BRIDGE:
        return bridgedial_doing(c->dial->bridge);
    case DIAL_CONNECTED:
    case DIAL_FAILED:
    default:
        return NULL;
    }
}

static void dial_fail(struct dial *d, const char *sqlstate, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void dial_fail(struct dial *d, const char *sqlstate, const char *label, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d->state = DIAL_FAILED;
    d->failed(d->c, sqlstate, label, msg);
}

static void note_error(struct dial *d, const char *what, const char *addr)
{
    if (d->errs_len >= sizeof(d->errs))
        return;
    int n = snprintf(d->errs + d->errs_len, sizeof(d->errs) - d->errs_len, "%s%s (%s)",
                     d->errs_len ? "; " : "", what, addr);
    if (n > 0)
        d->errs_len += (size_t)n;
}

static void connect_cb(uv_connect_t *req, int status);

/*
 * A socket for the leg, checked against the descriptor reserve
 * (admit_fd_nearly_out). Returns 0, a libuv error, or 1 (with *fdno and
 * *limit set) when only reserved ones are left.
 */
static int leg_socket(struct conn *c, int family, int *fdno, unsigned long long *limit)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    if (admit_fd_nearly_out(fd, limit)) {
        *fdno = fd;
        close(fd);
        admit_fd_limit_log(fd, *limit);
        return 1;
    }
    int r = uv_tcp_open(&c->back.tcp, fd);
    if (r != 0)
        close(fd);
    return r;
}

/* Try the next resolved address, or report that none worked. */
static void try_connect(struct dial *d)
{
    struct conn *c = d->c;
    const struct route *rt = c->route;

    while (d->cur != NULL) {
        struct addrinfo *ai = d->cur;
        d->cur = ai->ai_next;
        netaddr_format(ai->ai_addr, c->back_addr, sizeof(c->back_addr));
        leg_tcp_open(&c->back);
        conn_hold(c); /* the leg's transport: released at LEG_CLOSED */
        d->connect_req.data = d;
        d->state = DIAL_CONNECT;
        int fdno = -1;
        unsigned long long limit = 0;
        int r = leg_socket(c, ai->ai_family, &fdno, &limit);
        if (r == 0)
            r = uv_tcp_connect(&d->connect_req, &c->back.tcp, ai->ai_addr, connect_cb);
        if (r == 0) {
            d->connect_pending = true;
            return;
        }
        if (r == 1 || r == UV_EMFILE || r == UV_ENFILE) {
            /* Our limit, not the upstream's fault: say so, with 53300. */
            conn_close_leg(&c->back);
            d->cur = NULL;
            if (r == 1)
                dial_fail(d, "53300", "fd_exhausted",
                          "pg-tls-proxy: too many connections: the proxy is nearly out of file "
                          "descriptors (%d open, limit %llu) — raise its open-files limit (ulimit "
                          "-n / LimitNOFILE) or lower the load",
                          fdno + 1, limit);
            else
                dial_fail(d, "53300", "fd_exhausted",
                          "pg-tls-proxy: too many connections: the proxy is out of file "
                          "descriptors (%s) — raise its open-files limit (ulimit -n / "
                          "LimitNOFILE) or lower the load",
                          uv_strerror(r));
            return;
        }
        note_error(d, uv_strerror(r), c->back_addr);
        conn_close_leg(&c->back); /* dial_on_close() continues with the next */
        return;
    }
    dial_fail(d, "08001", "unreachable",
              "pg-tls-proxy: upstream %s:%u is unreachable: %s — is the database running, and "
              "are --client-connection-host-or-ip and --client-connection-port right?",
              rt->host, rt->port, d->errs_len ? d->errs : "no address");
}

void dial_on_close(struct conn *c)
{
    if (c->phase == PHASE_OPEN && c->dial != NULL && c->dial->state == DIAL_CONNECT)
        try_connect(c->dial);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct dial *d = req->data;
    struct conn *c = d->c;

    d->gai_pending = false;
    if (d->detached || c->phase != PHASE_OPEN) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        if (d->detached && !d->connect_pending)
            dial_destroy(d);
        conn_release(c);
        return;
    }
    PGTP_ASSERT(d->state == DIAL_RESOLVE);
    if (status < 0) {
        dial_fail(d, "08001", "dns",
                  "pg-tls-proxy: could not resolve upstream host \"%s\": %s — check "
                  "--client-connection-host-or-ip and this host's DNS",
                  c->route->host, uv_strerror(status));
    } else {
        d->addrs = d->cur = res;
        try_connect(d);
    }
    conn_release(c);
}

/*
 * The addresses of an upstream given as an IPv4 or IPv6 literal, or NULL
 * for a name. AI_NUMERICHOST never consults the resolver, so this cannot
 * block the loop, and it spares every connection a trip through libuv's
 * thread pool (a thread wake-up, the lookup, an async wake-up of this
 * loop): issue 17's profile of connect-per-transaction.
 */
static struct addrinfo *numeric_addrs(const char *host, const char *port,
                                      const struct addrinfo *hints)
{
    struct addrinfo numeric = *hints, *res = NULL;
    numeric.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo(host, port, &numeric, &res) != 0)
        return NULL;
    return res;
}

void dial_start(struct conn *c, dial_connected_cb connected, dial_failed_cb failed)
{
    const struct route *rt = c->route;
    struct dial *d = calloc(1, sizeof(*d));
    char port[8];

    PGTP_ASSERT(c->dial == NULL);
    if (d == NULL) {
        failed(c, "XX000", "internal", "pg-tls-proxy: out of memory");
        return;
    }
    d->c = c;
    d->connected = connected;
    d->failed = failed;
    d->state = DIAL_RESOLVE;
    c->dial = d;
    if (rt->bridge != NULL) {
        /* No name to resolve here: the connector, inside the private
         * network, connects to the route's host:port. */
        d->state = DIAL_BRIDGE;
        bridgedial_start(c, &d->bridge, connected, failed);
        return;
    }

    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", rt->port);
    struct addrinfo *literal = numeric_addrs(rt->host, port, &hints);
    if (literal != NULL) {
        d->addrs = d->cur = literal; /* freed by uv_freeaddrinfo: freeaddrinfo */
        try_connect(d);
        return;
    }
    d->gai.data = d;
    int r = uv_getaddrinfo(c->w->loop, &d->gai, gai_cb, rt->host, port, &hints);
    if (r < 0) {
        dial_fail(d, "08001", "dns", "pg-tls-proxy: could not resolve upstream host \"%s\": %s",
                  rt->host, uv_strerror(r));
        return;
    }
    d->gai_pending = true;
    conn_hold(c);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct dial *d = req->data;
    struct conn *c = d->c;

    d->connect_pending = false;
    if (d->detached) {
        if (!d->gai_pending)
            dial_destroy(d);
        return;
    }
    if (c->phase != PHASE_OPEN || status == UV_ECANCELED)
        return;
    if (status < 0) {
        note_error(d, uv_strerror(status), c->back_addr);
        conn_close_leg(&c->back); /* dial_on_close() tries the next address */
        return;
    }
    uv_tcp_nodelay(&c->back.tcp, 1);
    unsigned ka = c->route->keepalive_s;
    uv_tcp_keepalive(&c->back.tcp, ka > 0, ka);
    d->state = DIAL_CONNECTED;
    d->connected(c);
}
