/*
 * worker.h - one event loop on its own thread: its listeners, its sessions,
 * its chunk caches, and the commands the main thread sends it.
 */
#ifndef PGTP_WORKER_H
#define PGTP_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cidr.h"
#include "config.h"

#define CHUNK_SIZE ((size_t)64 * 1024)    /* one uv_write; > a TLS record + overhead */
#define READ_BUF_SIZE ((size_t)64 * 1024) /* per worker, not per connection */
#define CHUNK_SMALL ((size_t)4 * 1024)    /* most writes: a query, a row, a reply */
#define CHUNK_CACHE_SMALL 256             /* free chunks kept per worker, per class */
#define CHUNK_CACHE_LARGE 16

/* What every worker reads and nobody writes once the workers run. */
struct runtime {
    const struct config *cfg;
    unsigned startup_timeout_ms;  /* accept -> StartupMessage read inside TLS; 0 = none */
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

struct bridge_result;
struct bridgedial;
struct sess_job;
struct conn;
struct listener;
struct route_table;

/* Commands the main thread sends a worker (bits, coalesced by uv_async). */
#define WORKER_RELOAD 1u    /* take the route table offered by worker_offer_routes */
#define WORKER_DRAIN 2u     /* stop accepting; let sessions finish */
#define WORKER_FORCE 4u     /* shutdown timeout: end sessions (57P01 where possible) */
#define WORKER_KILL 8u      /* second signal: close everything now */
#define WORKER_SESSIONS 16u /* answer the admin endpoint's queued requests (sessions.h) */

struct worker {
    uv_loop_t *loop;
    uv_loop_t loop_storage;
    uv_thread_t thread;
    uv_async_t ctl;              /* main -> worker commands */
    atomic_uint ctl_cmds;        /* WORKER_* bits not yet handled */
    uv_mutex_t offer_lock;       /* guards offered */
    struct route_table *offered; /* a reload's new table, not yet taken */
    /* bridge mode: the bridge thread's answers (worker_bridge_post, bridge.h) */
    uv_async_t bridge_async;
    uv_mutex_t bridge_lock;               /* guards the four below */
    struct bridge_result *bridge_results; /* posted, not yet taken (oldest first) */
    struct bridge_result **bridge_tail;   /* where the next one goes */
    bool bridge_closed;                   /* bridge_async closed: a post is freed */
    struct bridgedial *bridge_waiting;    /* bridgedial.c: streams waiting for an answer */
    uv_async_t *done;                     /* the main thread's: "a worker has finished" */
    /* the admin endpoint's /sessions requests (sessions.c) */
    uv_mutex_t sess_lock;       /* guards the three below */
    struct sess_job *sess_jobs; /* posted, not yet answered */
    struct sess_job **sess_tail;
    bool sess_closed; /* the worker has stopped: a post is answered at once */
    unsigned index;
    const struct runtime *rt;
    struct route_table *routes; /* this worker's reference; swapped on reload */
    struct conn *conns;         /* every live connection, for shutdown */
    size_t nconns;
    bool draining;
    bool probing; /* probe_timer initialised (worker 0 with --admin-address) */
    uv_timer_t probe_timer;
    uv_timer_t trim_timer;   /* malloc_trim after a wave of closes */
    uv_timer_t bytes_timer;  /* open sessions' bytes to the metrics, every second */
    uv_timer_t cancel_timer; /* worker 0: event=cancel_summary, once a second at most */
    size_t trim_peak;        /* most connections since the last trim */
    size_t idle_released;    /* sessions that gave back their buffers since then */
    atomic_bool finished;    /* written by the worker, read by the main thread */
    struct chunk_cache small, large;
    struct listener *listeners; /* listener.h */
    size_t nlisteners;
    int probe_status; /* --check: 0 ok, 1 failed */
    uint8_t readbuf[READ_BUF_SIZE];
    uint8_t scratch[CHUNK_SIZE]; /* plaintext between SSL_read and SSL_write */
};

/* Set w up (its loop, timers, command handle) with a reference to the
 * route table; done is signalled when it has finished. 0 or -1. */
int worker_init(struct worker *w, unsigned index, const struct runtime *rt,
                struct route_table *routes, uv_async_t *done);
/* Any thread: queue WORKER_* commands for w. */
void worker_command(struct worker *w, unsigned cmds);
/* Any thread: offer w a new route table (a reload; a reference is taken).
 * The worker swaps it in on its own thread; sessions keep their route. */
void worker_offer_routes(struct worker *w, struct route_table *routes);
/* conn.c: a connection of w was freed. */
void worker_conn_gone(struct worker *w);
/* A session went quiet and gave its record buffers back (relay.c). */
void worker_buffers_released(struct worker *w);
void worker_thread(void *arg);
/* --admin-address: worker 0 probes the upstream when it has been quiet. */
void worker_start_probe(struct worker *w);
/* After the thread has been joined: closes the loop and frees the worker's
 * references. Returns uv_loop_close's result (0, or UV_EBUSY when a handle
 * or request was left open: logged as event=loop_close_failed). */
int worker_destroy(struct worker *w);

#endif
