/*
 * listener.c - binding the listen addresses and accepting connections.
 *
 * Every worker has its own listening socket per address, all bound with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers and
 * a connection never crosses threads. Owns the workers' listening handles.
 * Never exits on an accept error: a full descriptor table (EMFILE) or a
 * client that reset before accept is logged and the loop goes on.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"

static void connection_cb(uv_stream_t *server, int status)
{
    struct worker *w = server->data;
    if (status < 0) {
        /* Out of descriptors, libuv calls this for every connection it
         * could not accept: one line a second per worker, with a count. */
        static _Thread_local time_t last;
        static _Thread_local unsigned suppressed;
        time_t now = time(NULL);
        if (now == last) {
            suppressed++;
            return;
        }
        last = now;
        if (status == UV_EMFILE || status == UV_ENFILE)
            log_warn("event=accept_failed worker=%u reason=\"%s\" suppressed=%u hint=\"out of "
                     "file descriptors: clients wait in the listen queue or are closed unanswered; "
                     "raise the open-files limit (ulimit -n, systemd LimitNOFILE=) or lower "
                     "--max-connections\"",
                     w->index, uv_strerror(status), suppressed);
        else
            log_warn("event=accept_failed worker=%u reason=\"%s\" suppressed=%u", w->index,
                     uv_strerror(status), suppressed);
        suppressed = 0;
        return;
    }
    conn_accept(w, server);
}

static void addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof(ip));
        snprintf(buf, len, "%s:%d", ip, ntohs(((const struct sockaddr_in *)sa)->sin_port));
    } else {
        uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%d", ip, ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    }
}

/* A bound socket; reuseport says whether it may share the port. -errno on failure. */
static int bound_socket(const struct addrinfo *ai, bool reuseport)
{
    int one = 1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
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
            addr_str(ai->ai_addr, where, sizeof(where));
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

int listener_start(struct worker *w, const struct addrinfo *res, bool all_addrs, char *bound,
                   size_t boundlen, char *err, size_t errlen)
{
    size_t n = 0, off = 0;
    char where[80];

    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    w->listeners = n > 0 ? calloc(n, sizeof(*w->listeners)) : NULL;
    if (w->listeners == NULL) {
        snprintf(err, errlen, "no address to listen on");
        return -1;
    }
    bound[0] = '\0';
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        addr_str(ai->ai_addr, where, sizeof(where));
        int fd = bound_socket(ai, true);
        if (fd < 0 && all_addrs && ai->ai_family == AF_INET6)
            continue; /* an IPv4-only machine still serves IPv4 */
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(-fd));
            return -1;
        }
        uv_tcp_t *t = &w->listeners[w->nlisteners];
        uv_tcp_init(w->loop, t);
        t->data = w;
        int r = uv_tcp_open(t, fd);
        if (r == 0)
            r = uv_listen((uv_stream_t *)t, 511, connection_cb);
        w->nlisteners++; /* closed by worker_shutdown even on failure */
        if (r < 0) {
            snprintf(err, errlen, "cannot listen on %s: %s", where, uv_strerror(r));
            return -1;
        }
        if (off < boundlen)
            off += (size_t)snprintf(bound + off, boundlen - off, "%s%s", off ? "," : "", where);
    }
    if (w->nlisteners == 0) {
        snprintf(err, errlen, "no address to listen on");
        return -1;
    }
    return 0;
}
