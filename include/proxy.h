/*
 * proxy.h - the per-connection state machine shared by conn.c (front leg and
 * lifecycle), upstream.c (back leg set-up) and relay.c (byte pump).
 *
 * A connection has two legs that start in parallel once the client has sent
 * an SSLRequest (at most 64 such early back legs at once, and none while
 * clients have been wasting them; then the back leg starts once the
 * StartupMessage is in, conn.c):
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
 */
#ifndef PGTP_PROXY_H
#define PGTP_PROXY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "cidr.h"
#include "config.h"
#include "pgproto.h"
#include "pgtrack.h"
#include "tlsio.h"

#define CHUNK_SIZE ((size_t)64 * 1024)        /* one uv_write; > a TLS record + overhead */
#define READ_BUF_SIZE ((size_t)64 * 1024)     /* per worker, not per connection */
#define RELAY_HIGH_WATER ((size_t)256 * 1024) /* a leg backlog above this: stop reading */
#define RELAY_LOW_WATER ((size_t)64 * 1024)   /* resume at or below this */
#define IDLE_RELEASE_MS 1000                  /* quiet this long: record buffers freed */
#define DRAIN_TIMEOUT_MS 5000                 /* flush + linger, at most */
#define CHUNK_SMALL ((size_t)4 * 1024)        /* most writes: a query, a row, a reply */
#define CHUNK_CACHE_SMALL 256                 /* free chunks kept per worker, per class */
#define CHUNK_CACHE_LARGE 16

struct runtime {
    const struct config *cfg;
    unsigned startup_timeout_ms;  /* accept -> StartupMessage read inside TLS; 0 = none */
    unsigned connect_timeout_ms;  /* back leg: resolve -> verified TLS; 0 = none */
    unsigned idle_timeout_ms;     /* relaying with no byte either way; 0 = off */
    unsigned write_stall_ms;      /* a leg over the high-water mark without progress; 0 = off */
    struct cidr_list allow_from;  /* empty: everyone */
    struct cidr_list allow_plain; /* empty: nobody */
};

struct leg;

/* A write buffer: one uv_write, recycled through the worker's free list of
 * its size class (CHUNK_SMALL or CHUNK_SIZE bytes of data). */
struct chunk {
    uv_write_t req;
    struct chunk *next;
    struct leg *leg;
    size_t len, cap;
    uint8_t data[];
};

struct chunk_cache {
    struct chunk *head;
    size_t n, max;
};

struct conn;
struct listener;

/* Commands the main thread sends a worker (bits, coalesced by uv_async). */
#define WORKER_RELOAD 1u /* take the contexts offered by worker_offer_contexts */
#define WORKER_DRAIN 2u  /* stop accepting; let sessions finish */
#define WORKER_FORCE 4u  /* shutdown timeout: end sessions (57P01 where possible) */
#define WORKER_KILL 8u   /* second signal: close everything now */

struct worker {
    uv_loop_t *loop;
    uv_loop_t loop_storage;
    uv_thread_t thread;
    uv_async_t ctl;         /* main -> worker commands */
    atomic_uint ctl_cmds;   /* WORKER_* bits not yet handled */
    uv_mutex_t offer_lock;  /* guards offered_* */
    SSL_CTX *offered_front; /* new contexts from a reload, not yet taken */
    SSL_CTX *offered_back;
    uv_async_t *done; /* the main thread's: "a worker has finished" */
    unsigned index;
    const struct runtime *rt;
    SSL_CTX *front_ctx; /* this worker's references; swapped on reload */
    SSL_CTX *back_ctx;
    struct conn *conns; /* every live connection, for shutdown */
    size_t nconns;
    bool draining;
    bool probing; /* probe_timer initialised (worker 0 with --admin-address) */
    uv_timer_t probe_timer;
    uv_timer_t trim_timer;   /* malloc_trim after a wave of closes */
    uv_timer_t bytes_timer;  /* open sessions' bytes to the metrics, every second */
    uv_timer_t cancel_timer; /* worker 0: event=cancel_summary, once a second at most */
    size_t trim_peak;        /* most connections since the last trim */
    atomic_bool finished;    /* written by the worker, read by the main thread */
    struct chunk_cache small, large;
    struct listener *listeners; /* listener.h */
    size_t nlisteners;
    int probe_status; /* --check: 0 ok, 1 failed */
    uint8_t readbuf[READ_BUF_SIZE];
    uint8_t scratch[CHUNK_SIZE]; /* plaintext between SSL_read and SSL_write */
};

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

/* conn.c */
/* A new client's socket (non-blocking); conn_accept owns it, even on failure. */
void conn_accept(struct worker *w, int fd);
struct conn *conn_new(struct worker *w);
void conn_close(struct conn *c);
void conn_close_leg(struct leg *l);
void conn_leg_lost(struct leg *l, const char *what);
void conn_end(struct conn *c, const char *outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* conn_fail_front_hint without a hint. */
#define conn_fail_front(c, sqlstate, outcome, ...)                                                 \
    conn_fail_front_hint((c), (sqlstate), (outcome), NULL, __VA_ARGS__)
void conn_fail_front_hint(struct conn *c, const char *sqlstate, const char *outcome,
                          const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void conn_back_ready(struct conn *c);
void conn_back_failed(struct conn *c, const char *sqlstate, const char *msg);
void conn_arm_timer(struct conn *c);
void conn_format_peer(uv_tcp_t *tcp, char *buf, size_t len);
void format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);
void front_on_data(struct conn *c, const uint8_t *buf, size_t len);
void conn_hold(struct conn *c);
void conn_release(struct conn *c);
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

/* worker.c */
int worker_init(struct worker *w, unsigned index, const struct runtime *rt, SSL_CTX *front,
                SSL_CTX *back, uv_async_t *done);
void worker_command(struct worker *w, unsigned cmds);
void worker_offer_contexts(struct worker *w, SSL_CTX *front, SSL_CTX *back);
void worker_conn_gone(struct worker *w);
void worker_thread(void *arg);
void worker_start_probe(struct worker *w);
/* After the thread has been joined: closes the loop and frees the worker's
 * references. Returns uv_loop_close's result (0, or UV_EBUSY when a handle
 * or request was left open: logged as event=loop_close_failed). */
int worker_destroy(struct worker *w);

/* upstream.c */
void back_start(struct conn *c);
void back_on_data(struct conn *c, const uint8_t *buf, size_t len);
void back_on_close(struct conn *c);
void back_setup_free(struct conn *c);
void back_timeout(struct conn *c);

/* relay.c */
void leg_init(struct conn *c, struct leg *l);
int leg_read_start(struct leg *l);
void leg_read_stop(struct leg *l);
int leg_send(struct leg *l, const void *buf, size_t len); /* raw bytes */
int leg_flush(struct leg *l);                             /* TLS output */
/* What l holds to send: chunk capacity in flight + its output queue. */
size_t leg_backlog(const struct leg *l);
/* After output was queued on l or its peer: stop reading l while a
 * backlog is over RELAY_HIGH_WATER, and run the stall clocks. */
void leg_backpressure(struct leg *l);
void leg_stall_check(struct leg *l, bool progress);
bool leg_stalled(struct leg *l);
void relay_pump(struct conn *c, struct leg *from);
void relay_plain(struct conn *c, struct leg *from, const uint8_t *buf, size_t len);
int relay_emit(struct conn *c, struct leg *to, const void *buf, size_t len);
void watch_free(struct conn *c);

/* watch.c */
int watch_input(struct conn *c, struct leg *from, const uint8_t *buf, size_t len);
void relay_check_drained(struct conn *c);
void relay_release_idle(struct conn *c);
struct leg *leg_peer(struct leg *l);
void chunk_cache_free(struct worker *w);

#endif
