/*
 * back.h - the upstream's leg: dial (dial.h), then the PostgreSQL TLS
 * negotiation (SSLRequest and 'S', or direct TLS with ALPN "postgresql"),
 * full verification, and the failure texts a user can act on.
 *
 *   IDLE --> DIAL --connected--> SSLREQ --'S'--> TLS --verified--> READY --join--> RELAY
 *                          \--(direct TLS)------> TLS
 *   any of DIAL, SSLREQ, TLS, READY --> FAILED
 */
#ifndef PGTP_BACK_H
#define PGTP_BACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "leg.h"

struct conn;

enum back_state {
    BACK_IDLE,   /* not started */
    BACK_DIAL,   /* resolving, connecting (dial.c) */
    BACK_SSLREQ, /* SSLRequest sent, waiting for 'S' */
    BACK_TLS,    /* TLS handshake and verification */
    BACK_READY,  /* verified; waiting for the join (or a cancel's send) */
    BACK_RELAY,  /* joined to the front: the login, then the data phase */
    BACK_FAILED, /* failed; the reason waits in the connection for the client */
    BACK_STATES
};

/*
 * What the back leg's owner hears, once: ready (verified TLS, reading
 * stopped, nothing sent yet) or failed (state FAILED, socket closing;
 * sqlstate and msg for the client, label for the metrics). Both may end
 * the connection: back.c returns right after calling them. The owner is a
 * session (conn.c), a cancel forward (cancelfwd.c) or a probe (probe.c).
 */
struct back_ops {
    void (*ready)(struct conn *c);
    void (*failed)(struct conn *c, const char *sqlstate, const char *label, const char *msg);
    bool probe_metrics; /* failures count as probe failures, not clients' handshakes */
};

/* Start the back leg of c for ops. May report before returning: may end
 * the connection, return right after it. */
void back_start(struct conn *c, const struct back_ops *ops);
/* Hand the leg to another owner (a cancel taking over an early leg). */
void back_set_owner(struct conn *c, const struct back_ops *ops);
/* What the upstream's leg reported (raw bytes, TLS ready or failed,
 * plaintext waiting; conn.c handles the rest). May end the connection:
 * return right after it. */
void back_on_event(struct conn *c, enum leg_event ev, const uint8_t *buf, size_t len);
/* The back socket failed or closed during the set-up (DIAL to READY):
 * the leg fails with 08001. May end the connection. */
void back_lost(struct conn *c, const char *what);
/* --client-connect-timeout ran out: the leg fails. May end the connection. */
void back_timeout(struct conn *c);
/* --check: the verified chain on stdout. */
void back_print_chain(struct conn *c);

/* The back machine. Every change goes through back_set_state, which logs
 * it at debug level and refuses an impossible one: then the connection is
 * ending (XX000) and it returns false; return right after it. */
bool back_set_state(struct conn *c, enum back_state to, const char *why);
/* Is from -> to a legal move? (The table, for the unit tests.) */
bool back_move_legal(enum back_state from, enum back_state to);
const char *back_state_name(enum back_state s);

/* Named predicates instead of comparisons on the enum's order. */
bool back_setting_up(const struct conn *c);  /* DIAL, SSLREQ or TLS: the connect deadline runs */
bool back_dialing(const struct conn *c);     /* DIAL: the upstream has seen no byte */
bool back_negotiating(const struct conn *c); /* SSLREQ or TLS: cutting it costs a log line */
bool back_pending(const struct conn *c); /* DIAL, SSLREQ, TLS or READY: not joined, not failed */

#endif
