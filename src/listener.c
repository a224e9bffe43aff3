/*
 * listener.c - binding the listen addresses and accepting connections.
 *
 * Owns the worker's listening handles. Never exits on an accept error: a
 * full descriptor table (EMFILE) or a client that reset before accept is
 * logged and the loop goes on.
 */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listener.h"
#include "log.h"

static void connection_cb(uv_stream_t *server, int status)
{
    struct worker *w = server->data;
    if (status < 0) {
        log_warn("event=accept_failed reason=\"%s\"", uv_strerror(status));
        return;
    }
    conn_accept(w, server);
}

static int bind_one(struct worker *w, const struct sockaddr *sa, char *err, size_t errlen)
{
    uv_tcp_t *t = &w->listeners[w->nlisteners];
    int r;

    uv_tcp_init(w->loop, t);
    t->data = w;
    /* "::" would also take IPv4 unless we say otherwise; we bind both. */
    r = uv_tcp_bind(t, sa, sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)t, 511, connection_cb);
    if (r < 0) {
        char ip[INET6_ADDRSTRLEN] = "?";
        if (sa->sa_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)sa, ip, sizeof(ip));
        else
            uv_ip6_name((const struct sockaddr_in6 *)sa, ip, sizeof(ip));
        snprintf(err, errlen, "cannot listen on %s port %d: %s", ip,
                 ntohs(((const struct sockaddr_in *)sa)->sin_port), uv_strerror(r));
        uv_close((uv_handle_t *)t, NULL);
        return r;
    }
    w->nlisteners++;
    return 0;
}

int listener_start(struct worker *w, const char *host, unsigned port, char *bound, size_t boundlen,
                   char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    size_t off = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", port);
    int g = getaddrinfo(host, portstr, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "--server-host \"%s\": %s", host ? host : "", gai_strerror(g));
        return -1;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    w->listeners = n > 0 ? calloc(n, sizeof(*w->listeners)) : NULL;
    if (w->listeners == NULL) {
        freeaddrinfo(res);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    bound[0] = '\0';
    int ipv6_missing = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        char e[256];
        if (bind_one(w, ai->ai_addr, e, sizeof(e)) < 0) {
            /* With no host given, a machine without IPv6 still serves IPv4. */
            if (host == NULL && ai->ai_family == AF_INET6) {
                ipv6_missing = 1;
                continue;
            }
            snprintf(err, errlen, "%s", e);
            freeaddrinfo(res);
            return -1;
        }
        char ip[INET6_ADDRSTRLEN] = "?";
        if (ai->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, ip, sizeof(ip));
        else
            uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, ip, sizeof(ip));
        if (off < boundlen)
            off += (size_t)snprintf(bound + off, boundlen - off, "%s%s%s%s:%u", off ? "," : "",
                                    ai->ai_family == AF_INET6 ? "[" : "", ip,
                                    ai->ai_family == AF_INET6 ? "]" : "", port);
    }
    freeaddrinfo(res);
    if (w->nlisteners == 0) {
        snprintf(err, errlen, "no address to listen on");
        return -1;
    }
    if (ipv6_missing)
        log_warn("event=listen_ipv6_unavailable reason=\"IPv6 not available; IPv4 only\"");
    return 0;
}
