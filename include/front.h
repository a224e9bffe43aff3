/*
 * front.h - the client's leg from accept to its StartupMessage.
 *
 *   FIRST --SSLRequest/'S' or ClientHello--> TLS --handshake--> STARTUP
 *         --StartupMessage--> WAIT (conn.c joins the legs) --> RELAY
 *   FIRST --plaintext StartupMessage (sidecar)--> WAIT
 */
#ifndef PGTP_FRONT_H
#define PGTP_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "leg.h"

struct conn;
struct worker;

enum front_state {
    FRONT_FIRST,   /* the first packet (after a PROXY header, if any) */
    FRONT_TLS,     /* the TLS handshake */
    FRONT_STARTUP, /* the StartupMessage, inside TLS */
    FRONT_WAIT,    /* the StartupMessage is in: waiting for the back leg */
    FRONT_RELAY,   /* joined: the login, then the data phase */
    FRONT_STATES
};

/* Every change goes through front_set_state: logged at debug level, an
 * impossible one refused (the connection ends with XX000, false returned:
 * return right after it). */
bool front_set_state(struct conn *c, enum front_state to, const char *why);
bool front_move_legal(enum front_state from, enum front_state to);
const char *front_state_name(enum front_state s);
/* Named predicates instead of comparisons on the enum's order. */
bool front_starting(const struct conn *c); /* FIRST, TLS, STARTUP: the start-up deadline runs */
bool front_relaying(const struct conn *c); /* RELAY */
bool front_past_handshake(const struct conn *c); /* STARTUP, WAIT or RELAY */

/* A new client's socket (non-blocking): front_accept owns it, even on
 * failure (the listener's accept callback). */
void front_accept(struct worker *w, int fd);
/* What the client's leg reported (raw bytes, TLS ready or failed,
 * plaintext waiting; conn.c handles the rest). May end the connection:
 * return right after it. */
void front_on_event(struct conn *c, enum leg_event ev, const uint8_t *buf, size_t len);
/* A client we will not serve (--max-connections, the descriptor reserve,
 * --server-allow-from) is told why. True if it was refused: then the
 * connection is ending, return right after it. */
bool front_refuse(struct conn *c);
/* Does c hold one of admit.c's early upstream legs? */
bool front_holds_early_back(const struct conn *c);
/* The client's address (from the PROXY header when there was one), in
 * *ss or c's own storage; NULL if unknown. */
const struct sockaddr *front_sockaddr(struct conn *c, struct sockaddr_storage *ss);

#endif
