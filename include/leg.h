/*
 * leg.h - one side of a session: a transport (TCP, or a stream through a
 * bridge connector: struct leg_transport) and the TLS over it, with its
 * write queue.
 *
 * A leg knows nothing of sessions or of the PostgreSQL protocol: it
 * reports to its owner through one callback (leg_event_cb) and the owner
 * decides. It drives its TLS handshake itself once started, and hands out
 * plaintext on request. What a session does with backpressure, drains and
 * stalls is relay.c's policy, built on the counts a leg keeps.
 */
#ifndef PGTP_LEG_H
#define PGTP_LEG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "tlsio.h"

struct chunk;
struct conn;
struct leg;
struct worker;

enum leg_event {
    /* bytes read before TLS (or on a leg without it): buf, len */
    LEG_RAW,
    /* handshake done, its last flight queued (the owner flushes); the owner
     * decides whether it accepts the peer */
    LEG_TLS_READY,
    /* the handshake failed, its alert queued; leg_tls_error(), leg_ssl() say why */
    LEG_TLS_FAILED,
    /* ciphertext fed after the handshake: call leg_read_plain until TLS_WANT */
    LEG_DATA,
    /* the peer closed its side; reading has stopped */
    LEG_EOF,
    /* reading (or restarting it) failed: buf is a NUL-terminated description */
    LEG_ERROR,
    /* a write failed: buf is a NUL-terminated description */
    LEG_WRITE_FAILED,
    /* a write completed and the queue was flushed: the backlog went down */
    LEG_DRAINED,
    /* the half-close asked for with leg_shutdown is done (or failed) */
    LEG_SHUT,
    /* the transport is closed: the last event; the owner may free the leg */
    LEG_CLOSED,
};

/*
 * How a leg reports to its owner. Called from the event loop (never from
 * inside a leg_* call the owner made, except leg_tls_step, which reports
 * LEG_TLS_READY, LEG_TLS_FAILED or LEG_ERROR). May end the connection: the
 * leg touches nothing after it returns and returns itself. The leg's
 * memory must stay valid until LEG_CLOSED has been reported.
 */
typedef void (*leg_event_cb)(struct leg *l, enum leg_event ev, const uint8_t *buf, size_t len);

/*
 * A transport: what moves bytes for a leg. Completions come back through
 * leg_transport_read / _written / _shut / _closed (below). TCP is
 * leg_tcp_transport (leg_tcp.c); a bridge stream is leg_bridge_transport
 * (leg_bridge.c).
 */
struct leg_transport {
    const char *name;
    int (*read_start)(struct leg *l); /* 0 or a negative libuv error */
    void (*read_stop)(struct leg *l);
    /* Write what the transport takes at once, without queueing: bytes
     * taken (0..len) or a negative error other than "try again". */
    int (*try_write)(struct leg *l, const uint8_t *p, size_t len);
    /* Queue a chunk; leg_transport_written later. 0 or a negative error. */
    int (*write)(struct leg *l, struct chunk *ch);
    size_t (*write_queue)(const struct leg *l); /* bytes it still holds */
    int (*shutdown)(struct leg *l);             /* FIN after the queue; leg_transport_shut later */
    void (*close)(struct leg *l);               /* leg_transport_closed later */
    bool (*closing)(const struct leg *l);
    /* Optional (NULL: nothing): give idle buffers of the transport's own
     * back (leg_tls_release calls it). */
    void (*release)(struct leg *l);
};

extern const struct leg_transport leg_tcp_transport;
/* A stream through a bridge connector (leg_bridge.c): TCP, and an outer
 * TLS (this proxy the server) around the leg's own TLS with the database. */
extern const struct leg_transport leg_bridge_transport;

enum leg_tls { LEG_TLS_NONE, LEG_TLS_HANDSHAKE, LEG_TLS_UP, LEG_TLS_BROKEN };

struct leg {
    uv_tcp_t tcp; /* leg_tcp_transport's handle (and the bridge transport's) */
    uv_shutdown_t shutdown_req;
    const struct leg_transport *tp;
    void *tp_data; /* the transport's own state (the bridge's; NULL for TCP), freed at close */
    leg_event_cb on_event;
    struct conn *conn; /* the owner; the leg never looks inside */
    struct worker *w;  /* loop, read buffer, chunk caches */
    struct tlsio tls;
    enum leg_tls tls_state;
    size_t queued;        /* capacity of the chunks handed to the transport, not yet written */
    uint64_t stall_since; /* backlog over RELAY_HIGH_WATER without progress since; 0: not */
    size_t stall_wq;      /* the transport's write queue then (partial progress shows there) */
    uint64_t bytes_in;    /* plaintext received from this leg's peer */
    uint64_t bytes_out;   /* plaintext sent to this leg's peer */
    uint64_t sent;        /* bytes of any kind handed to the transport ('S', TLS, errors) */
    uint64_t last_read;   /* loop time of the last read */
    bool open;            /* transport initialised: leg_close must run */
    bool reading;
    bool paused;  /* reading stopped by backpressure (relay.c) */
    bool discard; /* read and drop everything; report only EOF and errors (linger) */
    bool eof;
    bool shut;   /* leg_shutdown issued */
    bool tls_up; /* the owner accepted the peer's TLS */
    bool plain;  /* a front leg without TLS (--server-allow-plaintext-from) */
};

/* A closed leg of owner c on w, reporting to cb. */
void leg_init(struct leg *l, struct conn *c, struct worker *w, leg_event_cb cb);
/* Open l on a new TCP handle of its worker's loop (l->tcp is then the
 * transport's, ready for uv_tcp_open / uv_tcp_connect). */
void leg_tcp_open(struct leg *l);

/* How the set-up of a bridge leg ended (leg_bridge_start's callback). */
enum leg_bridge_setup {
    LEG_BRIDGE_UP,         /* outer TLS up, the stream's token presented: use the leg */
    LEG_BRIDGE_TLS_FAILED, /* the outer handshake failed (why: OpenSSL's reason) */
    LEG_BRIDGE_BAD_TOKEN,  /* the connection did not present the stream's token */
    LEG_BRIDGE_LOST,       /* EOF or an error before that (why says which) */
};
/* Called once, from the event loop, unless leg_bridge_detach came first or
 * the leg closed. May end the connection. */
typedef void (*leg_bridge_setup_cb)(void *arg, enum leg_bridge_setup res, const char *why);
/*
 * Open l over a bridge data connection: a TCP handle on the worker's loop
 * plus the transport's state. 0, or -1 when out of memory (l not opened).
 * Once opened, l must be closed (leg_close) like any other.
 */
int leg_bridge_open(struct leg *l);
/*
 * Take descriptor fd (connected, non-blocking) and run the set-up in the
 * event loop: extra (bytes already read after the preamble) first, the
 * outer TLS handshake as server with ctx, then exactly BRIDGE_TOKEN_LEN
 * bytes compared with token (CRYPTO_memcmp; both wiped after). cb(arg, ...)
 * reports once; reading then stays stopped until leg_read_start. 0, or -1
 * with err filled (fd not taken: the caller closes it, and the leg).
 */
int leg_bridge_start(struct leg *l, int fd, SSL_CTX *ctx, const uint8_t *extra, size_t extra_len,
                     const uint8_t *token, leg_bridge_setup_cb cb, void *arg, char *err,
                     size_t errlen);
/* The set-up's owner is gone: cb is never called. Idempotent, any time. */
void leg_bridge_detach(struct leg *l);
/* Close the transport if open; LEG_CLOSED follows. Idempotent. */
void leg_close(struct leg *l);
/* Free the TLS state (after LEG_CLOSED). */
void leg_free(struct leg *l);

/* 0 or a negative libuv error. */
int leg_read_start(struct leg *l);
void leg_read_stop(struct leg *l);
/* Keep reading, drop what comes: only LEG_EOF / LEG_ERROR are reported. */
int leg_read_discard(struct leg *l);
/* Raw bytes (before TLS, or on a plaintext leg). 0 or a negative libuv
 * error; a failed write is reported later with LEG_WRITE_FAILED. */
int leg_send(struct leg *l, const void *buf, size_t len);
/* Send the TLS output queue (when nothing is in flight). 0 or < 0. */
int leg_flush(struct leg *l);
/* Half-close once the queue is written; LEG_SHUT follows. 0 if issued. */
int leg_shutdown(struct leg *l);
/* Open and not closing: what is queued on it may still go. */
bool leg_writable(const struct leg *l);
/* Anything still to go out on l? (A closing or closed leg's queue never
 * will: its writes in flight are cancelled.) */
bool leg_unsent(const struct leg *l);
/* What l holds to send: chunk capacity in flight + its output queue. */
size_t leg_backlog(const struct leg *l);
/* Bytes the transport still holds (partial writes show there). */
size_t leg_write_queue(const struct leg *l);

/* ---- TLS over the leg ---- */
/* Make l's TLS object (accept: server side) with ctx; reads stay raw
 * until leg_tls_begin. 0, or -1 with err filled. */
int leg_tls_init(struct leg *l, SSL_CTX *ctx, bool accept, char *err, size_t errlen);
/* From now on reads feed the handshake (the bytes before, such as the
 * upstream's 'S', were the owner's). */
void leg_tls_begin(struct leg *l);
/* Bytes read before TLS started that belong to it (a ClientHello behind
 * the first packet). 0 or -1. */
int leg_tls_feed(struct leg *l, const void *buf, size_t len);
/* Drive the handshake with what was fed: reports LEG_TLS_READY or
 * LEG_TLS_FAILED when it ends (or LEG_ERROR if its output cannot be
 * written). May end the connection: return right after it. */
void leg_tls_step(struct leg *l);
/* Plaintext out of the TLS (*n on TLS_OK). */
enum tls_res leg_read_plain(struct leg *l, void *buf, size_t cap, size_t *n);
/* Plaintext to the peer: encrypted, or sent as is on a plaintext leg.
 * Queued; leg_flush sends. 0 or -1 (TLS: see leg_tls_error). */
int leg_write_plain(struct leg *l, const void *buf, size_t len);
/* close_notify, then flush. 0 or < 0. */
int leg_tls_close(struct leg *l);
/* Give OpenSSL's record buffers back while idle (no-op without TLS). */
void leg_tls_release(struct leg *l);
SSL *leg_ssl(const struct leg *l);
const char *leg_tls_version(const struct leg *l);
const char *leg_tls_cipher(const struct leg *l);
/* This thread's last TLS error as text ("" if none); clears the queue. */
const char *leg_tls_error(char *buf, size_t len);

/* ---- for transports: their completions ---- */
void leg_transport_read(struct leg *l, ssize_t nread, const uint8_t *buf);
void leg_transport_written(struct chunk *ch, int status);
void leg_transport_shut(struct leg *l, int status);
void leg_transport_closed(struct leg *l);
/* The read buffer transports read into (one per worker). */
void leg_transport_buffer(struct leg *l, uv_buf_t *buf);

/* Free the worker's cached chunks (worker_destroy, --check). */
void leg_chunk_cache_free(struct worker *w);

#endif
