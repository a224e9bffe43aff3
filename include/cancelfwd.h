/*
 * cancelfwd.h - a client's CancelRequest, decided (cancel.h, keymap.h)
 * and forwarded on the client's own connection, and the upstream set-up a
 * finished client leaves behind: finished, then closed with close_notify,
 * so that the database never logs a handshake cut off.
 */
#ifndef PGTP_CANCELFWD_H
#define PGTP_CANCELFWD_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

/* The first len bytes of c->startup are a CancelRequest: decide, then
 * forward (on the early back leg if there is one, which then reports to
 * the cancel, not to the session) or end. May end the
 * connection: return right after it. */
void cancelfwd_request(struct conn *c, size_t len);
/* The first len bytes of c->startup are a PeerCancelRequest (peermsg.h),
 * received inside TLS: verified, then handled as a cancel sent here (or
 * passed on to the key's instance). May end the connection. */
void cancelfwd_peer_request(struct conn *c, size_t len);
/* c is being freed: give back its slot and key mark, log cancel_closed,
 * wipe the packet. */
void cancelfwd_closed(struct conn *c);
/* Is the back leg part-way through its set-up with the upstream, such that
 * closing it now would cut a TLS handshake off? */
bool cancelfwd_midway(const struct conn *c);
/* The client is done but the back leg is midway: stop reading the client
 * and let the back leg finish (bounded), then close. */
void cancelfwd_park(struct conn *c);

#endif
