/*
 * relay.h - the data phase: the plaintext pump between the legs, and the
 * drain that ends a session.
 */
#ifndef PGTP_RELAY_H
#define PGTP_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct leg;

#define RELAY_HIGH_WATER ((size_t)256 * 1024) /* a leg backlog above this: stop reading */
#define RELAY_LOW_WATER ((size_t)64 * 1024)   /* resume at or below this */

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
/* LEG_DRAINED: a write of l completed; resume reading, run the stall
 * clock, or go on draining. May end the connection. */
void relay_on_written(struct conn *c, struct leg *l);
/* LEG_WRITE_FAILED on the back leg while draining: that leg is closed and
 * the drain goes on without it. May close the connection. */
void relay_on_write_failed(struct conn *c, struct leg *l, const char *what);
/* LEG_SHUT: one leg's FIN is out; once all are, LINGER or close. May end
 * the connection. */
void relay_on_shut(struct conn *c);
/* After output was queued on l or its peer: stop reading l while a
 * backlog is over RELAY_HIGH_WATER, and run the stall clocks. */
void relay_backpressure(struct leg *l);
/* The stall clock of l has run out: true if l did not move at all since
 * it started (then the session must end), else the clock restarts. */
bool relay_stalled(struct leg *l);
/* --write-stall-timeout: the client's backlog has stayed over the mark
 * with nothing written for that long: the session is ended and closed
 * (true; return right after it). */
bool relay_stall_timeout(struct conn *c, uint64_t now);
/* --idle-timeout: when this session will have been idle for it, or
 * UINT64_MAX while it is not idle. */
uint64_t relay_idle_deadline(const struct conn *c);
/* The session has been quiet: give OpenSSL's record buffers back. */
void relay_release_idle(struct conn *c);

#endif
