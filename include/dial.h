/*
 * dial.h - reaching the upstream: resolve its name, try every address in
 * turn, never take a descriptor kept in reserve for refusing clients
 * (admit.h). A route with a bridge (--client-bridge) is dialed through it
 * instead (bridgedial.h): same callbacks, the leg then over
 * leg_bridge_transport.
 */
#ifndef PGTP_DIAL_H
#define PGTP_DIAL_H

struct conn;

/*
 * How a dial ends, reported once, to the callbacks given to dial_start.
 * connected: c->back.tcp is connected (and open); c->back_addr names the
 * address. failed: every address failed, or none was found (sqlstate,
 * label for the metrics, msg for the client). Both may end the
 * connection: the dialer returns right after calling them.
 */
typedef void (*dial_connected_cb)(struct conn *c);
typedef void (*dial_failed_cb)(struct conn *c, const char *sqlstate, const char *label,
                               const char *msg);

/* Start reaching c->route's upstream on c->back. May call failed before
 * returning: may end the connection, return right after it. */
void dial_start(struct conn *c, dial_connected_cb connected, dial_failed_cb failed);
/* The back socket has closed (conn.c's close callback): while connecting,
 * the next address is tried. May end the connection. */
void dial_on_close(struct conn *c);
/* What the dial is doing, for a timeout's message ("resolving its name",
 * "connecting", "waiting for bridge "ID" to open a stream"); NULL once
 * connected or when there is no dial. */
const char *dial_doing(const struct conn *c);
/* Let go of the dial (resolver and connect requests finish on their own
 * and free it). Idempotent. */
void dial_free(struct conn *c);

#endif
