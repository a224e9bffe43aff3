/*
 * bridgedial.h - dialing a route's upstream through its bridge (issue 15,
 * bridge.h): dial.c's branch for a route with --client-bridge. Instead of
 * resolve and connect: a stream id and a random token, bridge_open, then on
 * the data connection the bridge thread hands over (bridge_dial_result) the
 * outer TLS as server and the token (leg_bridge.c). Reports through dial.h's
 * callbacks, like a TCP dial: connected (c->back open over
 * leg_bridge_transport, c->back_addr "bridge:ID/connector") or failed.
 */
#ifndef PGTP_BRIDGEDIAL_H
#define PGTP_BRIDGEDIAL_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "bridgeproto.h"
#include "dial.h"

struct bridgedial;
struct worker;

/* What the dialer asks of the bridge thread: bridge.c's bridge_open,
 * bridge_forget and bridge_ssl_ctx (bridge.h). The unit tests put a double
 * of that thread in its place. */
struct bridgedial_link {
    void (*open)(struct worker *w, uint64_t stream, const uint8_t token[BRIDGE_TOKEN_LEN],
                 const char *bridge_id, const char *host, unsigned port);
    void (*forget)(uint64_t stream);
    SSL_CTX *(*ssl_ctx)(void);
};
extern const struct bridgedial_link *bridgedial_link;

/* Ask c->route's bridge for a stream to the route's host:port. *slot is
 * set before anything can fail (dial_free frees it from there). May call
 * failed before returning: may end the connection, return right after. */
void bridgedial_start(struct conn *c, struct bridgedial **slot, dial_connected_cb connected,
                      dial_failed_cb failed);
/* "waiting for bridge "ID" to open a stream", "in the bridge TLS handshake",
 * or NULL once connected or failed. */
const char *bridgedial_doing(const struct bridgedial *b);
/* Let go: a stream still waited for is forgotten (bridge_forget), a set-up
 * under way no longer reports. NULL is fine. */
void bridgedial_free(struct bridgedial *b);

/* c's data connection through the bridge ended after the set-up (the
 * connector killed, its network gone): FATAL 08006 naming the bridge when
 * the client is between two of the server's messages, else the session
 * just ends; event=bridge_stream_lost either way. May end the connection. */
void bridgedial_lost(struct conn *c, const char *what);

#endif
