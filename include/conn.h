/*
 * conn.h - one client connection: the state of its two legs, its phase,
 * and its single close path.
 *
 * A connection has two legs that start in parallel once the client has sent
 * an SSLRequest (at most 64 such early back legs at once, and none while
 * clients have been wasting them; then the back leg starts once the
 * StartupMessage is in). With several routes (--config), the upstream is
 * known only once the client's SNI (after the handshake) or StartupMessage
 * names it: the back leg starts then (route.h):
 *
 *   front: FIRST --SSLRequest/'S'--> TLS --handshake--> STARTUP --packet--> WAIT --+
 *   back:  IDLE --> RESOLVE --> CONNECT --> SSLREQ --'S'--> TLS --verified--> READY -+
 *                                                                                  |
 *          both WAIT and READY: StartupMessage forwarded, both legs RELAY <--------+
 *
 * Any leg may fail; a back failure is kept until the front can be told
 * (its TLS is up and the StartupMessage is in), then sent as a FATAL
 * ErrorResponse. Ending a connection goes OPEN -> DRAIN (flush, close_notify,
 * FIN) -> LINGER (read and discard until the client's EOF) -> CLOSING
 * (uv_close on every handle); memory is freed only when the last close
 * callback has run (refs == 0). A connection that ends while its back leg
 * is part-way through the upstream's TLS handshake stays OPEN, with the
 * front no longer read, until that handshake is done (then close_notify)
 * or has failed: a handshake cut off costs the database a log line
 * ("could not accept SSL connection: EOF detected"). A CancelRequest
 * travels on the client's own connection: on its early back leg if it has
 * one, else on a back leg opened for it.
 *
 * Contract of every function marked "may end the connection": after it
 * returns, the connection may be draining or closing (c->phase says), and
 * the caller must not touch its legs except to return.
 */
#ifndef PGTP_CONN_H
#define PGTP_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "back.h"
#include "front.h"
#include "leg.h"
#include "login.h"
#include "pgproto.h"
#include "pgtrack.h"
#include "route.h"

#define IDLE_RELEASE_MS 1000  /* quiet this long: record buffers freed */
#define DRAIN_TIMEOUT_MS 5000 /* flush + linger, at most */
#define CONN_REASON_MAX 256   /* the closed line's reason, with its NUL */

struct worker;

enum conn_phase { PHASE_OPEN, PHASE_DRAIN, PHASE_LINGER, PHASE_CLOSING };

struct back_ops;     /* back.h: who hears how the back leg's set-up went */
struct cancelfwd;    /* cancelfwd.c: a CancelRequest on its way upstream */
struct dial;         /* dial.c: resolver and connect state, freed once up */
struct keymap_entry; /* keymap.c */
struct auth;         /* auth.c */

struct conn {
    struct worker *w;
    struct conn *prev, *next;
    uint64_t id;
    enum front_state fs; /* front.h: change it with front_set_state */
    enum back_state bs;  /* back.h: back_set_state */
    enum login_state ls; /* login.h: login_set_state */
    enum conn_phase phase;
    struct leg front, back;
    uv_timer_t timer;
    unsigned refs; /* open handles + pending requests that hold c */
    unsigned shutdowns;
    struct route *route;       /* where the back leg goes (a reference) */
    struct route_table *table; /* the worker's routes at accept (a reference) */
    struct route_sni sni;      /* the route the client's SNI named (front TLS) */
    bool route_decided;        /* route is the session's (front.c front_route) */
    unsigned mslot;      /* the route the metrics count it under: its route's, "-" until decided */
    uint16_t local_port; /* the port the client connected to (route listen-port) */
    const struct back_ops *back_ops; /* the back leg's owner: session, cancel or probe */
    struct dial *dial;
    uint64_t bridge_stream;   /* the bridge stream carrying the back leg; 0: none */
    struct cancelfwd *cancel; /* the client's CancelRequest, when it sent one */
    uint64_t start_ms, front_deadline, back_deadline;
    uint64_t last_active;   /* last read on either leg (--idle-timeout) */
    uint64_t back_start_ms; /* back leg set-up began (metrics) */
    uint8_t *startup;       /* plaintext start-up bytes (packet + anything after it) */
    size_t startup_len;
    struct pg_startup_info info;
    char front_addr[64];
    char back_addr[64];
    char lb_addr[64]; /* the load balancer's address when PROXY protocol gave front_addr */
    /* a back failure waiting to be told to the client */
    const char *err_state;
    char *err_msg;
    const char *outcome;
    /* why it ended, escaped for the logs (at most CONN_REASON_MAX - 1
     * bytes): allocated when the first cause is set, NULL until then (a
     * live session does not carry 256 bytes for its closed line) */
    char *reason;
    bool buffers_held; /* OpenSSL record buffers may be allocated (relay.c) */
    bool draining_armed;
    bool direct_tls; /* front began with a TLS ClientHello (PG17 sslnegotiation=direct) */
    bool denied;     /* not in --server-allow-from: told so once the front can read it */
    bool too_many;   /* over --max-connections: likewise, with 53300 */
    bool counted;    /* an accepted client, counted in the --max-connections total */
    bool early_back; /* holds one of admit.c's early upstream legs */
    bool pp_done;    /* PROXY protocol header read */
    struct sockaddr_storage *pp_src; /* the client per that header, when it said */
    bool back_error_seen;            /* the login passed on an ErrorResponse from upstream */
    struct login_buf wf, wb;         /* front->back and back->front bytes not yet framed */
    struct auth *auth;               /* auth.c: the proxy's own login (password, scram modes) */
    struct keymap_entry *key;        /* our session's cancel key, while it lives */
    bool tracking;                   /* --idle-timeout: track (below) is fed */
    struct pgtrack track;            /* queries outstanding, after the login */
    /* A session through a bridge frames what the server sends after the
     * login (relay.c), so that losing the bridge can still be told to the
     * client as FATAL 08006 between two of its messages (conn.c). */
    bool framing;
    struct pgtrack frames;
    uint64_t idle_since; /* last byte either way while track was idle */
    /* front.bytes_in / back.bytes_in already added to the byte metrics
     * (worker.c reports open sessions every second) */
    uint64_t reported_from_client, reported_from_upstream;
    /* loop times each leg's TLS handshake began (the handshake histograms) */
    uint64_t front_tls_ms, back_tls_ms;
    /* the upstream refused the login: its ErrorResponse's SQLSTATE and
     * severity (login.c), for the closed line and the metric */
    char login_sqlstate[6];
    char login_severity[16];
    uint64_t join_ms;        /* loop time the legs were joined (login_ms) */
    bool established_logged; /* event=established written (at the end of the login) */
    bool quiet;              /* a plaintext CancelRequest: no accepted/closed lines */
    bool accept_logged;      /* event=accepted written (at the first packet, or at the end) */
    const char *accept_note; /* " refused=..." on that line, as decided at accept */
    /* The client is done (gone, refused, or its cancel taken) while the back
     * leg is part-way through its TLS set-up: the back leg finishes it and
     * closes with close_notify, so the database never sees a handshake cut
     * off (conn_end). The front is no longer read. */
    bool front_done;
    /* POST /sessions/ID/terminate came while the server was part-way
     * through a message: the FATAL waits for its end, until kill_deadline
     * (sessions.c). */
    bool kill_pending;
    uint64_t kill_deadline;
};

/* A connection with no leg open yet, in w's list, holding its timer and a
 * reference to the worker's current route. NULL if out of memory. */
struct conn *conn_new(struct worker *w);
/* The session's back_ops: a ready back leg is joined to the front, a
 * failed one's reason kept until the client can be told. */
extern const struct back_ops conn_session_back;
/* Both legs may be ready: forward the StartupMessage and start the login.
 * May end the connection: return right after it. */
void conn_join(struct conn *c);
/* A state machine's move from -> to (machine: "front", "back", "login"):
 * logged at debug level (event=state). An illegal one is logged at error
 * and ends the connection with XX000: false, return right after it. */
bool conn_transition(struct conn *c, const char *machine, const char *from, const char *to,
                     bool legal, const char *why);
/* event=accepted (once). */
void conn_log_accepted(struct conn *c);
/* Close every handle now (idempotent); memory goes in the last close
 * callback. Ends the connection: return right after it. */
void conn_close(struct conn *c);
/* Close one leg's transport if open (LEG_CLOSED releases c). */
void conn_close_leg(struct leg *l);
/* The other leg of l's connection, and "front" or "back" for the logs. */
struct leg *conn_peer(struct leg *l);
const char *conn_leg_name(const struct leg *l);
/* A leg's socket failed or reached EOF (what: for the log). May end the
 * connection: return right after it. */
void conn_leg_lost(struct leg *l, const char *what);
/* Flush what is queued, close_notify and FIN, then close; the first
 * outcome and reason given are the ones logged. May end the connection
 * (always, unless the back leg must first finish its TLS set-up): return
 * right after it. */
void conn_end(struct conn *c, const char *outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* conn_fail_front_hint without a hint. */
#define conn_fail_front(c, sqlstate, outcome, ...)                                                 \
    conn_fail_front_hint((c), (sqlstate), (outcome), NULL, __VA_ARGS__)
/* Tell the client why as a FATAL ErrorResponse (when it can be told at a
 * message boundary), then conn_end. Ends the connection: return right
 * after it. */
void conn_fail_front_hint(struct conn *c, const char *sqlstate, const char *outcome,
                          const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* conn_fail_front, from a caller that knows the client is between two of
 * the server's messages (even while relaying: relay.c's framing). Ends the
 * connection: return right after it. */
void conn_fail_front_between(struct conn *c, const char *sqlstate, const char *outcome,
                             const char *msg, const char *hint);
/* Arm the timer for the nearest deadline that still applies. */
void conn_arm_timer(struct conn *c);
/* A handle or request holds c; conn_release frees c at the last release
 * once it is closing. */
void conn_hold(struct conn *c);
void conn_release(struct conn *c);
/* The proxy is stopping (now: second signal). Ends the connection. */
void conn_shutdown(struct conn *c, bool now);
/* event=established: the login succeeded (ReadyForQuery), or verified is
 * false when the start-up watch stopped before it could tell. Once. */
void conn_log_established(struct conn *c, bool verified);
#endif
