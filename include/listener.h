/*
 * listener.h - listening sockets of a worker.
 */
#ifndef PGTP_LISTENER_H
#define PGTP_LISTENER_H

#include <stddef.h>

#include "proxy.h"

/*
 * Bind and listen on host:port (host NULL: all IPv4 and IPv6 addresses).
 * A host name is resolved once, here, and every address is bound. Fills
 * bound with "addr:port ..." for the start-up log. Returns 0 or -1 with err.
 */
int listener_start(struct worker *w, const char *host, unsigned port, char *bound, size_t boundlen,
                   char *err, size_t errlen);

#endif
