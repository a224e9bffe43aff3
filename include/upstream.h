/*
 * upstream.h - opening the back leg: resolve, connect, SSLRequest or
 * direct TLS, verification.
 */
#ifndef PGTP_UPSTREAM_H
#define PGTP_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

struct conn;

/* Start the back leg. Reports through conn_back_ready / conn_back_failed,
 * perhaps before returning: may end the connection, return right after it. */
void back_start(struct conn *c);
/* Bytes read from the upstream. May end the connection: return right after it. */
void back_on_data(struct conn *c, const uint8_t *buf, size_t len);
/* The back socket has closed (next address, if connecting). May end the
 * connection. */
void back_on_close(struct conn *c);
/* Free the set-up state (resolver, connect request) once it is no longer
 * needed; pending requests finish on their own. */
void back_setup_free(struct conn *c);
/* --client-connect-timeout ran out. Ends the back leg (conn_back_failed):
 * may end the connection, return right after it. */
void back_timeout(struct conn *c);

#endif
