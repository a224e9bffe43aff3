/*
 * relay.h - the data phase: the plaintext pump between the legs, and the
 * drain that ends a session.
 */
#ifndef PGTP_RELAY_H
#define PGTP_RELAY_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct leg;

/* Decrypt everything OpenSSL holds for `from` and pass it on. Must run
 * after every feed. May end the connection: return right after it. */
void relay_pump(struct conn *c, struct leg *from);
/* Bytes read from a plaintext leg (sidecar front). May end the
 * connection: return right after it. */
void relay_plain(struct conn *c, struct leg *from, const uint8_t *buf, size_t len);
/* Plaintext out to one leg (encrypted unless the leg is plaintext). 0, or
 * -1 when the connection is ending (the caller returns). */
int relay_emit(struct conn *c, struct leg *to, const void *buf, size_t len);
/* DRAIN: once nothing is queued, half-close every leg (then LINGER or
 * close). May close the connection: return right after it. */
void relay_check_drained(struct conn *c);
/* The session has been quiet: give OpenSSL's record buffers back. */
void relay_release_idle(struct conn *c);

#endif
