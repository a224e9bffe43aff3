/*
 * bridgeint.h - the bridge thread's insides (issue 15), shared by its
 * files and the unit tests; other modules use bridge.h only.
 *
 *   bridge.c      the thread, the queue from other threads, start/stop/reload
 *   bridgecore.c  listener, preambles, data connections, the registry of
 *                 connectors and the table of streams, OPEN, timeouts
 *   bridgectl.c   one control connection: TLS, frames, heartbeats
 *   bridgeauth.c  the bridges file, HELLO's secret (PBKDF2 off the loop,
 *                 a cache of verified secrets), what a reload disconnects
 *
 * Everything in struct bstate belongs to the bridge thread: no lock, no
 * atomic. Other threads reach it only through bridge.c's queue.
 */
#ifndef PGTP_BRIDGEINT_H
#define PGTP_BRIDGEINT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "bridge.h"
#include "listener.h"
#include "scram.h"
#include "tlsio.h"

/* accept -> the 16-byte preamble; preamble -> HELLO (TLS included); OPEN
 * sent -> its data connection: each at most this long. */
#define BRIDGE_TIMEOUT_MS 10000u
#define BRIDGE_KDF_RUNNING 2     /* HELLO checks on the threadpool at once */
#define BRIDGE_KDF_QUEUED 16     /* more waiting; beyond: REJECT busy */
#define BRIDGE_PENDING_MAX 1024  /* connections still owing their preamble */
#define BRIDGE_CARRIED_MAX 10000 /* streams remembered per connector */
#define BRIDGE_STREAM_BUCKETS 256
#define BRIDGE_LISTENERS_MAX 4                 /* addresses --bridge-listen resolves to */
#define BRIDGE_NAME_MAX 63                     /* a connector's name, as logged */
#define BRIDGE_CACHE_MAX 1024                  /* verified secrets remembered */
#define BRIDGE_CTL_QUEUE_MAX ((size_t)1 << 20) /* bytes queued either way on a control conn */

struct authfile;
struct bstate;
struct bstream;

/* A control connection's life: TLS handshake, waiting for HELLO, its
 * secret being checked, serving, closed (waiting for its handle). */
enum bctl_state { BCTL_TLS, BCTL_HELLO, BCTL_AUTH, BCTL_LIVE, BCTL_CLOSED };

struct bctl {
    struct bstate *b;
    struct bctl *prev, *next; /* b->ctls: every control connection */
    struct bctl *enext;       /* the next connector online of its bridge */
    struct bctl *qnext;       /* b's queue of HELLOs waiting for a KDF slot */
    uv_tcp_t tcp;
    struct tlsio tls;
    enum bctl_state state;
    unsigned refs; /* the handle, a KDF job: freed at 0 */
    unsigned number;
    char id[BRIDGE_ID_MAX + 1];
    char name[BRIDGE_NAME_MAX + 1];
    char addr[64];
    int64_t since; /* unix s of its WELCOME */
    uint64_t opened_ms, last_read_ms, last_ping_ms;
    unsigned nstreams;       /* pending and carried */
    unsigned npending;       /* OPENed, no data connection yet */
    uint64_t last_pick;      /* breg_pick's count when it last chose this one */
    struct bstream *streams; /* its streams, oldest first */
    struct bstream *tail;    /* the newest */
    struct bkdf *kdf;        /* its HELLO's check, queued or running */
    bool in_frames;          /* frames() is on the stack */
    uint8_t rx[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    size_t rxlen;
};

/* A stream the proxy asked a connector for (OPEN). Pending until its data
 * connection comes, then carried until bridge_forget or its connector goes. */
struct bstream {
    uint64_t stream;
    struct bstream *hnext;         /* hash chain */
    struct bstream *cprev, *cnext; /* its connector's list */
    struct bctl *ctl;
    struct worker *w;
    bool carried;
    uint64_t deadline_ms;
    char target[300]; /* host:port, for the messages */
};

/* A bridge id seen online since the start. */
struct bentry {
    char id[BRIDGE_ID_MAX + 1];
    struct bctl *live; /* its connectors online (enext) */
    unsigned nlive;
    int64_t last_seen; /* unix s: when one was last online; 0 never */
};

/* A connection that has not sent its preamble yet. */
struct bpending {
    struct bstate *b;
    struct bpending *prev, *next;
    uv_poll_t poll;
    int fd;
    uint8_t buf[BRIDGE_PREAMBLE_LEN];
    size_t got;
    uint64_t deadline_ms;
    char addr[64];
};

/* A verified secret: its id's verifier and SHA-256(secret), so that a
 * connector coming back costs no PBKDF2. */
struct bcache {
    char id[BRIDGE_ID_MAX + 1];
    struct scram_secret verifier;
    uint8_t hash[32];
};

typedef void (*bridge_deliver_fn)(void *arg, struct worker *w, struct bridge_result *r);

struct bstate {
    uv_loop_t *loop;
    SSL_CTX *ctx;          /* the bridge certificate (a reference) */
    struct authfile *file; /* the bridges file in use */
    bridge_deliver_fn deliver;
    void *deliver_arg;
    uint64_t heartbeat_ms;
    uint64_t timeout_ms; /* BRIDGE_TIMEOUT_MS, shorter in tests */
    struct listener listeners[BRIDGE_LISTENERS_MAX];
    size_t nlisteners;
    uv_timer_t tick; /* timeouts and heartbeats, every tick_ms */
    uint64_t tick_ms;
    struct bpending *pending;
    size_t npending;
    struct bctl *ctls;
    unsigned numbers; /* the last connector number given */
    uint64_t picks;   /* breg_pick's choices so far */
    struct bentry *entries;
    size_t nentries, capentries;
    struct bstream *buckets[BRIDGE_STREAM_BUCKETS];
    size_t nstreams;
    unsigned kdf_running, kdf_queued;
    struct bctl *kdf_head, *kdf_tail;
    struct bcache cache[BRIDGE_CACHE_MAX];
    size_t ncache;
    bool stopping;
    uint8_t readbuf[16384];
};

/* ---- bridgecore.c ---- */

/* b on loop with the file and ctx (references taken: SSL_CTX_up_ref; the
 * file is b's from now), results to deliver. 0 or -1 with err. */
int bcore_init(struct bstate *b, uv_loop_t *loop, SSL_CTX *ctx, struct authfile *file,
               unsigned heartbeat_ms, unsigned timeout_ms, bridge_deliver_fn deliver,
               void *deliver_arg, char *err, size_t errlen);
/* Listen on host:port (every address it resolves to). 0 or -1 with err. */
int bcore_listen(struct bstate *b, const char *hostport, char *bound, size_t boundlen, char *err,
                 size_t errlen);
/* Drain: stop listening, BYE to every connector with reason, close every
 * connection; the loop then ends once the KDF jobs are back. */
void bcore_stop(struct bstate *b, const char *reason);
/* After the loop has ended: free what is left. */
void bcore_free(struct bstate *b);
/* A worker's request (bridge_open) on the bridge thread. */
void bcore_open(struct bstate *b, struct worker *w, uint64_t stream,
                const uint8_t token[BRIDGE_TOKEN_LEN], const char *id, const char *host,
                unsigned port);
void bcore_forget(struct bstate *b, uint64_t stream);
/* A reload's file and context (NULL: keep the context): connectors whose
 * bridge went or whose verifier changed are told BYE and closed. Takes file. */
void bcore_reload(struct bstate *b, struct authfile *file, SSL_CTX *ctx);

/* The registry. */
struct bentry *breg_entry(struct bstate *b, const char *id, bool create);
void breg_up(struct bstate *b, struct bctl *c);
void breg_down(struct bstate *b, struct bctl *c);
/* The connector online of bridge id with the fewest open streams (the
 * longest online among equals), or NULL. */
struct bctl *breg_pick(struct bstate *b, const char *id);
/* FATAL text for a session when bridge id has no connector online. */
void breg_no_connector_msg(const struct bentry *e, const char *id, time_t now, char *buf,
                           size_t cap);

/* The table of streams. */
struct bstream *bstream_find(struct bstate *b, uint64_t stream);
/* Fail pending stream s with label (and count it), then drop it. */
void bstream_fail(struct bstate *b, struct bstream *s, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void bstream_drop(struct bstate *b, struct bstream *s);
/* A connector's FAIL for one of its pending streams. */
void bstream_failed_by(struct bstate *b, struct bctl *c, uint64_t stream, const char *code,
                       const char *message);

/* A result for a worker (fd -1: a failure with sqlstate 08001). NULL if
 * out of memory. */
struct bridge_result *bresult_new(uint64_t stream, int fd, const char *connector, const char *label,
                                  const char *msg);

/* ---- bridgectl.c ---- */

/* The bridge listener's TLS policy on ctx: ALPN BRIDGE_ALPN, TLS 1.2+. */
void bctl_setup_ctx(SSL_CTX *ctx);
/* A control connection on fd (its preamble read): TLS as server. May
 * close fd (out of memory). */
void bctl_accept(struct bstate *b, int fd, const char *addr);
/*
 * End c: with bye, a BYE reason=bye is sent first (best effort). A live
 * connector leaves the registry (event=bridge_down reason=...), its pending
 * streams fail. Idempotent; c is freed once its handle and any KDF job are
 * back.
 */
void bctl_close(struct bctl *c, const char *reason, const char *bye);
/* OPEN stream to target. 0, or -1 (the connection was closed). */
int bctl_send_open(struct bctl *c, uint64_t stream, const uint8_t token[BRIDGE_TOKEN_LEN],
                   const char *target);
/* Heartbeats and the HELLO deadline of every control connection. */
void bctl_tick(struct bstate *b, uint64_t now_ms);
/* HELLO checked (bridgeauth.c): ok, or the reason for REJECT. */
void bctl_auth_done(struct bctl *c, bool ok, const char *reject);
/* Drop a reference (a KDF job's); frees c at the last. */
void bctl_unref(struct bctl *c);
/* "name#number", for results and logs. */
void bctl_label(const struct bctl *c, char *buf, size_t cap);

/* ---- bridgeauth.c ---- */

/* Load and check a bridges file (every id valid). NULL with err. */
struct authfile *bauth_load(const char *path, char *err, size_t errlen);
/* Check secret for c's id: at once from the cache (bctl_auth_done before
 * returning), else on the threadpool. The secret is copied and wiped. */
void bauth_check(struct bctl *c, const char *secret);
/* c is closing: its HELLO leaves the KDF queue (a running job ends alone). */
void bauth_cancel(struct bctl *c);
/* Why a connector of id must go when newf replaces oldf: NULL (stays),
 * "bridge removed" or "bridge secret changed". */
const char *bauth_reload_reason(const struct authfile *oldf, const struct authfile *newf,
                                const char *id);
/* Forget cached secrets whose verifier is not newf's any more. */
void bauth_cache_prune(struct bstate *b, const struct authfile *newf);
/* The REJECT text of a wrong secret and of an unknown id alike. */
void bauth_reject_text(const char *id, char *buf, size_t cap);

/* ---- metrics (metrics_bridge.c) ---- */
/* Bridge ids of the file get a series (bounded); others are not counted. */
void metrics_bridge_known(const char *id);
void metrics_bridge_connectors(const char *id, unsigned n);
/* result: opened, no_connector, not_allowed, unreachable, timeout, error. */
void metrics_bridge_stream(const char *id, const char *result);

/* ---- tests ---- */
/* Results go to fn instead of worker_bridge_post; heartbeat_ms overrides
 * BRIDGE_HEARTBEAT_S and timeout_ms BRIDGE_TIMEOUT_MS (0: the defaults).
 * Call before bridge_start. */
void bridge_test_hooks(bridge_deliver_fn fn, void *arg, unsigned heartbeat_ms, unsigned timeout_ms);
/* Every PBKDF2 job waits for gate (locked by the test) before it runs;
 * NULL: none. Set before bridge_start. */
void bauth_test_gate(uv_mutex_t *gate);

#endif
