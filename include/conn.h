/*
 * conn.h - one client connection: the state of its two legs, its phase,
 * and its single close path.
 *
 * A connection has two legs that start in parallel once the client has sent
 * an SSLRequest (at most 64 such early back legs at once, and none while
 * clients have been wasting them; then the back leg starts once the
 * StartupMessage is in):
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

#include "leg.h"
#include "pgproto.h"
#include "pgtrack.h"

#define IDLE_RELEASE_MS 1000 /* quiet this long: record buffers freed */
#define DRAIN_TIMEOUT_MS 5000 /* flush + linger, at most */

struct worker;

enum front_state { FRONT_FIRST, FRONT_TLS, FRONT_STARTUP, FRONT_WAIT, FRONT_RELAY };
enum back_state {
    BACK_IDLE,
    BACK_RESOLVE,
    BACK_CONNECT,
    BACK_SSLREQ,
    BACK_TLS,
    BACK_READY,
    BACK_RELAY,
    BACK_FAILED
};
enum conn_phase { PHASE_OPEN, PHASE_DRAIN, PHASE_LINGER, PHASE_CLOSING };

struct back_setup;   /* upstream.c: resolver and connect state, freed once up */
struct keymap_entry; /* keymap.c */

/*
 * Start-up watch: from the forwarded StartupMessage until the upstream's
 * ReadyForQuery, both directions are framed into whole messages so that
 * BackendKeyData (cancel keys), AuthenticationSASL and the client's SASL
 * mechanism can be seen. Bytes are forwarded one whole message at a time,
 * which is also what lets the proxy answer with an ErrorResponse at a
 * message boundary. Freed when the watch ends.
 */
#define WATCH_MAX ((size_t)64 * 1024) /* a bigger start-up message ends the watch */
struct watch {
    uint8_t *buf;
    size_t len;
};

struct conn {
    struct worker *w;
    struct conn *prev, *next;
    uint64_t id;
    enum front_state fs;
    enum back_state bs;
    enum conn_phase phase;
    struct leg front, back;
    uv_timer_t timer;
    unsigned refs; /* open handles + pending requests that hold c */
    unsigned shutdowns;
    uint64_t start_ms, front_deadline, back_deadline;
    uint64_t last_active;   /* last read on either leg (--idle-timeout) */
    uint64_t back_start_ms; /* back leg set-up began (metrics) */
    uint8_t *startup;       /* plaintext start-up bytes (packet + anything after it) */
    size_t startup_len;
    struct pg_startup_info info;
    struct back_setup *setup;
    char front_addr[64];
    char back_addr[64];
    char lb_addr[64]; /* the load balancer's address when PROXY protocol gave front_addr */
    /* a back failure waiting to be told to the client */
    const char *err_state;
    char *err_msg;
    const char *outcome;
    char reason[256];
    bool probe;        /* --check or a readiness probe: no front leg */
    bool health_probe; /* a quiet readiness probe (--admin-address) */
    bool buffers_held; /* OpenSSL record buffers may be allocated (relay.c) */
    bool draining_armed;
    bool direct_tls; /* front began with a TLS ClientHello (PG17 sslnegotiation=direct) */
    bool denied;     /* not in --server-allow-from: told so once the front can read it */
    bool too_many;   /* over --max-connections: likewise, with 53300 */
    bool counted;    /* counted in the --max-connections total */
    bool pp_done;    /* PROXY protocol header read */
    struct sockaddr_storage *pp_src; /* the client per that header, when it said */
    bool watching;                   /* start-up watch active (see struct watch) */
    bool sasl_offered;               /* upstream sent AuthenticationSASL */
    bool sasl_chosen;                /* client's SASLInitialResponse seen */
    bool back_error_seen;            /* the watch passed on an ErrorResponse from upstream */
    struct watch wf, wb;             /* front->back and back->front bytes not yet framed */
    struct keymap_entry *key;        /* our session's cancel key, while it lives */
    bool tracking;                   /* --idle-timeout: track (below) is fed */
    struct pgtrack track;            /* queries outstanding, after the watch */
    uint64_t idle_since;             /* last byte either way while track was idle */
    uint8_t *cancel_pkt;             /* the client's CancelRequest, to send upstream */
    size_t cancel_len;
    /* front.bytes_in / back.bytes_in already added to the byte metrics
     * (worker.c reports open sessions every second) */
    uint64_t reported_from_client, reported_from_upstream;
    /* the upstream refused the login: its ErrorResponse's SQLSTATE and
     * severity (watch.c), for the closed line and the metric */
    char login_sqlstate[6];
    char login_severity[16];
    uint64_t join_ms;        /* loop time the legs were joined (login_ms) */
    bool established_logged; /* event=established written (at the end of the watch) */
    bool login_ok;           /* the watch saw the upstream's ReadyForQuery */
    bool cancel_slot;        /* holds one of the CANCEL_FORWARDS_MAX (cancel.h) */
    bool cancel_marked;      /* its key is marked in flight in the keymap */
    bool plain_cancel;       /* a plaintext CancelRequest: no accepted/closed lines */
    bool accept_logged;      /* event=accepted written (at the first packet, or at the end) */
    const char *accept_note; /* " refused=..." on that line, as decided at accept */
    /* The client is done (gone, refused, or its cancel taken) while the back
     * leg is part-way through its TLS set-up: the back leg finishes it and
     * closes with close_notify, so the database never sees a handshake cut
     * off (conn_end). The front is no longer read. */
    bool front_done;
};

/* A new client's socket (non-blocking); conn_accept owns it, even on failure. */
void conn_accept(struct worker *w, int fd);
/* A connection with no leg open yet, in w's list, holding its timer. NULL
 * if out of memory. */
struct conn *conn_new(struct worker *w);
/* Close every handle now (idempotent); memory goes in the last close
 * callback. Ends the connection: return right after it. */
void conn_close(struct conn *c);
/* uv_close one leg's socket if open (its close callback releases c). */
void conn_close_leg(struct leg *l);
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
/* The back leg is verified and ready. May end the connection: return
 * right after it. */
void conn_back_ready(struct conn *c);
/* The back leg failed (sqlstate and msg for the client, kept until it can
 * be told). May end the connection: return right after it. */
void conn_back_failed(struct conn *c, const char *sqlstate, const char *msg);
/* Arm the timer for the nearest deadline that still applies. */
void conn_arm_timer(struct conn *c);
void conn_format_peer(uv_tcp_t *tcp, char *buf, size_t len);
void format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);
/* Bytes read from the client. May end the connection: return right after it. */
void front_on_data(struct conn *c, const uint8_t *buf, size_t len);
/* A handle or request holds c; conn_release frees c at the last release
 * once it is closing. */
void conn_hold(struct conn *c);
void conn_release(struct conn *c);
/* The proxy is stopping (now: second signal). Ends the connection. */
void conn_shutdown(struct conn *c, bool now);
/* event=established: the login succeeded (ReadyForQuery), or verified is
 * false when the start-up watch stopped before it could tell. Once. */
void conn_log_established(struct conn *c, bool verified);
/* How many descriptors are kept for refusing clients at an open-files
 * limit of limit; is descriptor number fd one of them (at the current
 * limit, stored in *limit)? */
unsigned long long conn_fd_reserve(unsigned long long limit);
bool conn_fd_nearly_out(int fd, unsigned long long *limit);
/* event=fd_limit, at most once a second: a client refused for it. */
void conn_fd_limit_log(int fd, unsigned long long limit);

#endif
