/*
 * sessions.h - the open sessions as the admin endpoint sees them (GET
 * /sessions) and ending one (POST /sessions/ID/terminate): a request the
 * main thread hands every worker, each worker's answer copied into it as
 * plain structs, on the worker's own thread (conn fields are the worker's).
 */
#ifndef PGTP_SESSIONS_H
#define PGTP_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Sessions listed at most (the --max-connections default): beyond it,
 * "truncated": true and "count" still says how many are open. */
#define SESS_LIST_MAX 10000
/* How long a terminate waits for the server's message under way to end
 * before the session is closed without the FATAL. */
#define SESS_KILL_WAIT_MS 2000

/* One session, as copied by its worker. Strings are NUL-terminated. */
struct sess_info {
    uint64_t id;
    unsigned worker;
    char client[64]; /* the client's address (PROXY protocol's source when given) */
    char lb[64];     /* the load balancer's address, when PROXY protocol gave client */
    char route[64];
    char user[64], database[64], application_name[64];
    char front_tls[16], front_cipher[64], back_tls[16];
    uint64_t from_client, from_upstream; /* plaintext bytes */
    uint64_t age_ms, idle_ms;            /* since accept, since the last byte read */
    const char *state;                   /* a static string */
    uint64_t bridge_stream;              /* 0: not through a bridge */
    char bridge[64];
};

enum sess_op { SESS_LIST, SESS_ONE, SESS_KILL };

struct worker;
struct sess_req;

/* One worker's place in a request (the queue of that worker). */
struct sess_job {
    struct sess_req *req;
    struct sess_job *next;
};

/*
 * A request to every worker. The main thread makes it (sessions_req_new),
 * posts it (sessions_post) and must not touch what the workers fill until
 * done(req) has been called, on the thread of the last worker to answer;
 * done hands it back to the main thread (adminsess.c), which frees it.
 */
struct sess_req {
    enum sess_op op;
    uint64_t id;     /* SESS_ONE, SESS_KILL */
    char peer[64];   /* the admin client, for the log line of a terminate */
    uv_mutex_t lock; /* guards everything below it, while workers answer */
    unsigned pending;
    struct sess_info *items;
    size_t n, cap;
    size_t open;   /* sessions open across the workers (listed or not) */
    bool found;    /* SESS_ONE, SESS_KILL: a worker had the session */
    bool oom;      /* a worker could not grow items */
    bool draining; /* a worker was draining */
    void (*done)(struct sess_req *req);
    void *owner;            /* main thread only: who waits for the answer */
    struct sess_req *next;  /* main thread's queue of answered requests */
    struct sess_job jobs[]; /* one per worker */
};

/* A request for nworkers workers; NULL if out of memory. */
struct sess_req *sessions_req_new(enum sess_op op, uint64_t id, unsigned nworkers,
                                  void (*done)(struct sess_req *));
void sessions_req_free(struct sess_req *req);
/* Main thread: ask each of the n workers (done is called once all have
 * answered; a worker that has stopped answers at once, with nothing). */
void sessions_post(struct worker *workers, unsigned n, struct sess_req *req);

/* worker.c: the WORKER_SESSIONS command: answer every queued request. */
void sessions_worker_run(struct worker *w);
/* worker.c: the worker stops: answer what is queued, and later posts at once. */
void sessions_worker_close(struct worker *w);

struct conn;
/* relay.c: a terminate waits for a boundary in what the server sends: of
 * buf[0..len), the bytes to relay before the FATAL, or SIZE_MAX to relay
 * it all and wait on. */
size_t sessions_kill_split(struct conn *c, const uint8_t *buf, size_t len);
/* relay.c: the boundary is reached (everything before it relayed): the
 * FATAL and the end. Ends the connection: return right after it. */
void sessions_kill_now(struct conn *c);
/* conn.c's timer: the wait for a boundary ran out. Ends the connection. */
void sessions_kill_timeout(struct conn *c);

#endif
