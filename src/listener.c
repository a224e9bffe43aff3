/*
 * listener.c - binding the listen addresses and accepting connections.
 *
 * Every worker has its own listening socket per address, all bound with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers and
 * a connection never crosses threads. Owns the listening sockets (the
 * workers' and the admin endpoint's) and their accept loops.
 *
 * The accept loop is ours, not uv_listen's: out of descriptors, libuv's
 * accept path closes a spare descriptor to accept and drop the client, and
 * when another thread takes that descriptor first it retries forever inside
 * one callback (150-195% CPU, timers and SIGTERM dead: issue 11). Here a
 * readable listener gets at most ACCEPT_BATCH accepts per callback, and
 * EMFILE/ENFILE pause it for ACCEPT_PAUSE_MS: clients wait in the kernel's
 * listen queue and are served once descriptors are free, while the loop
 * keeps running timers and commands. Never exits on an accept error.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "front.h"
#include "netaddr.h"
#include "worker.h"

#define ACCEPT_BATCH 64     /* accepts per callback, then timers and commands run */
#define ACCEPT_PAUSE_MS 200 /* out of descriptors: stop accepting this long */

static struct log_gate accept_gate; /* accept_failed lines, any listener */

/* One line a second at most for the whole process, with a count. */
static void accept_failed_log(const struct listener *l, int err)
{
    unsigned n = 0;
    if (!log_gate_pass(&accept_gate, &n))
        return;
    n--; /* the failures not logged since the last line */
    if (err == EMFILE || err == ENFILE)
        log_warn("event=accept_failed %s reason=\"%s\" suppressed=%u hint=\"out of file "
                 "descriptors: clients wait in the listen queue until some are free; raise the "
                 "open-files limit (ulimit -n, systemd LimitNOFILE=) or lower --max-connections\"",
                 l->name, uv_strerror(-err), n);
    else
        log_warn("event=accept_failed %s reason=\"%s\" suppressed=%u", l->name, uv_strerror(-err),
                 n);
}

static void poll_cb(uv_poll_t *p, int status, int events);

static void pause_cb(uv_timer_t *t)
{
    struct listener *l = t->data;
    if (l->fd >= 0 && uv_poll_start(&l->poll, UV_READABLE, poll_cb) < 0)
        uv_timer_start(&l->pause, pause_cb, ACCEPT_PAUSE_MS, 0);
}

/* Stop polling for a while: retrying at once would find the same error. */
static void accept_pause(struct listener *l, int err)
{
    accept_failed_log(l, err);
    metrics_accept_paused();
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->pause, pause_cb, ACCEPT_PAUSE_MS, 0);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct listener *l = p->data;
    (void)events;
    if (status < 0) {
        accept_pause(l, -status);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && l->fd >= 0; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            l->on_accept(l->arg, fd); /* owns fd now; may not close l */
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            return; /* the queue is empty */
        /* That client is gone, or (accept(2), Linux) a network error on
         * its connection: the next one may be fine. */
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
        case ETIMEDOUT:
            continue;
        default: /* EMFILE, ENFILE, ENOBUFS, ENOMEM, ...: it would fail again */
            accept_pause(l, errno);
            return;
        }
    }
}

static void handle_closed_cb(uv_handle_t *h)
{
    struct listener *l = h->data;
    l->closing--;
}

int listener_open(uv_loop_t *loop, struct listener *l, int fd, listener_accept_fn cb, void *arg)
{
    l->fd = -1;
    l->on_accept = cb;
    l->arg = arg;
    uv_timer_init(loop, &l->pause);
    l->pause.data = l;
    int r = uv_poll_init_socket(loop, &l->poll, fd);
    if (r < 0) {
        l->closing = 1;
        uv_close((uv_handle_t *)&l->pause, handle_closed_cb);
        close(fd);
        return r;
    }
    l->poll.data = l;
    l->open = true;
    l->fd = fd;
    if (listen(fd, LISTEN_BACKLOG) < 0)
        r = -errno;
    else
        r = uv_poll_start(&l->poll, UV_READABLE, poll_cb);
    if (r < 0)
        listener_close(l);
    return r;
}

void listener_close(struct listener *l)
{
    if (!l->open)
        return;
    l->open = false;
    l->closing = 2;
    uv_close((uv_handle_t *)&l->poll, handle_closed_cb);
    uv_close((uv_handle_t *)&l->pause, handle_closed_cb);
    /* Safe right after uv_close (libuv's uv_poll documentation); clients
     * still in the listen queue get a reset. */
    close(l->fd);
    l->fd = -1;
}

static void free_cb(uv_handle_t *h)
{
    free(h);
}

/*
 * libuv keeps one spare descriptor per loop (its EMFILE trick's, unused
 * here), opened at the loop's first TCP handle. Have it opened now, as
 * uv_listen did, so that the process's descriptor count does not move at
 * each worker's first client (tests and dashboards compare it to a
 * baseline).
 */
static void open_spare(uv_loop_t *loop)
{
    uv_tcp_t *t = malloc(sizeof(*t));
    if (t == NULL || uv_tcp_init(loop, t) != 0) {
        free(t);
        return;
    }
    uv_close((uv_handle_t *)t, free_cb);
}

static void worker_accept(void *arg, int fd)
{
    front_accept(arg, fd);
}

/* A bound socket; reuseport says whether it may share the port. -errno on failure. */
static int bound_socket(const struct addrinfo *ai, bool reuseport)
{
    int one = 1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int listener_resolve(const char *host, unsigned port, struct addrinfo **res, char *err,
                     size_t errlen)
{
    struct addrinfo hints;
    char portstr[8], where[80];

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", port);
    int g = getaddrinfo(host, portstr, &hints, res);
    if (g != 0) {
        snprintf(err, errlen, "--server-host \"%s\": %s", host ? host : "", gai_strerror(g));
        return -1;
    }
    for (const struct addrinfo *ai = *res; ai != NULL; ai = ai->ai_next) {
        /* Without SO_REUSEPORT a bind fails if anyone holds the port. */
        int fd = bound_socket(ai, false);
        if (fd == -EADDRINUSE) {
            netaddr_format(ai->ai_addr, where, sizeof(where));
            snprintf(err, errlen, "cannot listen on %s: address already in use", where);
            freeaddrinfo(*res);
            *res = NULL;
            return -1;
        }
        if (fd >= 0)
            close(fd);
    }
    return 0;
}

int listener_start_many(struct worker *w, const struct addrinfo *const *res, size_t nres,
                        bool all_addrs, char *bound, size_t boundlen, char *err, size_t errlen)
{
    size_t n = 0, off = 0;
    char where[80];

    /* One array for every port: a listener's handles may not move. */
    for (size_t k = 0; k < nres; k++)
        for (const struct addrinfo *ai = res[k]; ai != NULL; ai = ai->ai_next)
            n++;
    w->listeners = n > 0 ? calloc(n, sizeof(*w->listeners)) : NULL;
    if (w->listeners == NULL) {
        snprintf(err, errlen, "no address to listen on");
        return -1;
    }
    bound[0] = '\0';
    for (size_t k = 0; k < nres; k++) {
        for (const struct addrinfo *ai = res[k]; ai != NULL; ai = ai->ai_next) {
            netaddr_format(ai->ai_addr, where, sizeof(where));
            int fd = bound_socket(ai, true);
            if (fd < 0 && all_addrs && ai->ai_family == AF_INET6)
                continue; /* an IPv4-only machine still serves IPv4 */
            if (fd < 0) {
                snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(-fd));
                return -1;
            }
            struct listener *l = &w->listeners[w->nlisteners];
            snprintf(l->name, sizeof(l->name), "worker=%u", w->index);
            int r = listener_open(w->loop, l, fd, worker_accept, w);
            w->nlisteners++; /* its handles are closed (uv_close) even on failure */
            if (r < 0) {
                snprintf(err, errlen, "cannot listen on %s: %s", where, uv_strerror(r));
                return -1;
            }
            if (off < boundlen)
                off += (size_t)snprintf(bound + off, boundlen - off, "%s%s", off ? "," : "", where);
        }
    }
    if (w->nlisteners == 0) {
        snprintf(err, errlen, "no address to listen on");
        return -1;
    }
    open_spare(w->loop);
    return 0;
}

int listener_start(struct worker *w, const struct addrinfo *res, bool all_addrs, char *bound,
                   size_t boundlen, char *err, size_t errlen)
{
    return listener_start_many(w, &res, 1, all_addrs, bound, boundlen, err, errlen);
}

void listener_stop(struct worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        listener_close(&w->listeners[i]);
}
