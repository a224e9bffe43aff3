/*
 * listener.h - listening sockets: one per address per worker.
 */
#ifndef PGTP_LISTENER_H
#define PGTP_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include <netdb.h>

#include "proxy.h"

/*
 * Resolve the listen address once (host NULL: all IPv4 and IPv6 addresses)
 * and check that nobody listens there yet: SO_REUSEPORT, which lets our
 * workers share a port, would otherwise let us share it with a stranger.
 * Returns 0 or -1 with err filled. Free *res with freeaddrinfo.
 */
int listener_resolve(const char *host, unsigned port, struct addrinfo **res, char *err,
                     size_t errlen);

/*
 * Open, bind (SO_REUSEPORT) and listen on every address of res in w's loop.
 * An IPv6 address that cannot be bound is skipped when all_addrs (no
 * --server-host given) so that IPv4-only machines work. Fills bound with
 * "addr:port,..." Returns 0 or -1 with err filled.
 */
int listener_start(struct worker *w, const struct addrinfo *res, bool all_addrs, char *bound,
                   size_t boundlen, char *err, size_t errlen);

#endif
