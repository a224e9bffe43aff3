/*
 * leg.h - one side of a session: a TCP socket, its TLS state and what is
 * queued to be written on it, with backpressure and the stall clock.
 *
 * A connection has two legs, front (the client) and back (the upstream).
 * A leg never frees its connection: failures are reported to conn.c
 * (conn_leg_lost / conn_close), which decides.
 */
#ifndef PGTP_LEG_H
#define PGTP_LEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tlsio.h"

struct conn;
struct worker;

#define RELAY_HIGH_WATER ((size_t)256 * 1024) /* a leg backlog above this: stop reading */
#define RELAY_LOW_WATER ((size_t)64 * 1024)   /* resume at or below this */

struct leg {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    struct conn *conn;
    struct tlsio tls;
    size_t queued;        /* capacity of the chunks handed to uv_write, not yet written */
    uint64_t stall_since; /* backlog over RELAY_HIGH_WATER without progress since; 0: not */
    size_t stall_wq;      /* libuv's write queue size then (partial progress shows there) */
    uint64_t bytes_in;    /* plaintext received from this leg's peer */
    uint64_t bytes_out;   /* plaintext sent to this leg's peer */
    uint64_t sent;        /* bytes of any kind handed to the socket ('S', TLS, errors) */
    uint64_t last_read;   /* loop time of the last read (--idle-timeout) */
    bool open;            /* tcp handle initialised: needs uv_close */
    bool reading;
    bool paused; /* reading stopped by backpressure */
    bool eof;
    bool shut; /* uv_shutdown issued */
    bool tls_up;
    bool plain; /* front leg without TLS (--server-allow-plaintext-from) */
};

void leg_init(struct conn *c, struct leg *l);
/* The other leg of l's connection. */
struct leg *leg_peer(struct leg *l);
/* "front" or "back", for the logs. */
const char *leg_name(const struct leg *l);
/* 0 or a negative libuv error (the caller ends the connection). */
int leg_read_start(struct leg *l);
void leg_read_stop(struct leg *l);
/* Raw bytes (before TLS, or on a plaintext leg). 0 or a negative libuv
 * error; a failed write is reported later through conn_leg_lost. */
int leg_send(struct leg *l, const void *buf, size_t len);
/* Send the TLS output queue (when nothing is in flight). 0 or < 0. */
int leg_flush(struct leg *l);
/* Open and not closing: what is queued on it may still go. */
bool leg_writable(const struct leg *l);
/* Anything still to go out on l? (A closed leg's queue never will.) */
bool leg_unsent(const struct leg *l);
/* What l holds to send: chunk capacity in flight + its output queue. */
size_t leg_backlog(const struct leg *l);
/* After output was queued on l or its peer: stop reading l while a
 * backlog is over RELAY_HIGH_WATER, and run the stall clocks. */
void leg_backpressure(struct leg *l);
void leg_stall_check(struct leg *l, bool progress);
/* The stall clock of l has run out: true if l did not move at all since
 * it started (then the session must end), else the clock restarts. */
bool leg_stalled(struct leg *l);
/* Free the worker's cached chunks (worker_destroy, --check). */
void leg_chunk_cache_free(struct worker *w);

#endif
