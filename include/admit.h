/*
 * admit.h - admission policy: the connection cap, the descriptor reserve,
 * and the budget of upstream legs opened early (before a client's
 * StartupMessage). Pure policy: no sockets, no connections; the clock is
 * passed in where one is needed, so the unit tests drive it.
 *
 * Upstream legs are opened early, at the client's SSLRequest, so that the
 * two handshakes overlap. Each costs the database a backend process and a
 * TLS handshake on behalf of a client that has proved nothing but an
 * SSLRequest (tests/integration/abuse.sh): 1,000 clients sending half a
 * ClientHello held that many upstream connections for the whole handshake
 * timeout, and 10,000 sending an SSLRequest and then junk made PostgreSQL
 * fork 400 backends a second; either starved real clients of the database.
 * So at most ADMIT_EARLY_MAX are open at once (all workers), and once more
 * than ADMIT_WASTE_MAX of them were wasted within about two seconds (their
 * client went away before its StartupMessage) no more are started early.
 * Real clients reach their StartupMessage, so a burst of them keeps the
 * overlap; past either bound a client's upstream leg waits for its
 * StartupMessage, which costs it the upstream's set-up time, nothing more.
 *
 * Descriptors can run out before anything else (a low ulimit -n). At the
 * very limit no client can be accepted (listener.c pauses: clients wait in
 * the listen queue), and a client's upstream leg could not be opened anyway.
 * So once the table is nearly full, a new client is still accepted but
 * refused with 53300 after its handshake, never connected upstream: it is
 * told why, and the reserve keeps room for those refusals. An upstream leg
 * may not take a reserved descriptor either (dial.c), or sessions would
 * fill the table and leave nothing to refuse with. Descriptors are
 * allocated lowest first: an accepted fd of N means at least N+1 are open.
 */
#ifndef PGTP_ADMIT_H
#define PGTP_ADMIT_H

#include <stdatomic.h>
#include <stdbool.h>

#define ADMIT_EARLY_MAX 64u
#define ADMIT_WASTE_MAX 32u
#define ADMIT_FD_RESERVE_MIN 8
#define ADMIT_FD_RESERVE_MAX 1024

/* The early-leg budget; all-zero is a fresh one. Thread-safe. */
struct admit_early {
    atomic_uint open;         /* early legs open now */
    atomic_llong second;      /* the current one-second window (seconds) */
    atomic_uint wasted_now;   /* early legs wasted in that window */
    atomic_uint wasted_prior; /* ... and in the window before it */
};

enum admit_early_verdict {
    ADMIT_EARLY_OK,     /* one is taken: admit_early_end() when it ends */
    ADMIT_EARLY_WASTED, /* too many wasted lately (*n: how many) */
    ADMIT_EARLY_FULL,   /* ADMIT_EARLY_MAX are open (*n: that) */
};

/* May one more upstream leg open early, at time now (seconds)? */
enum admit_early_verdict admit_early_take(struct admit_early *a, long long now, unsigned *n);
/* An early leg stops being early: its client sent its StartupMessage or a
 * cancel (wasted false), or went away before either (wasted true). */
void admit_early_end(struct admit_early *a, long long now, bool wasted);
/* The process-wide budget. */
extern struct admit_early admit_early_legs;

/* Client connections open now, all workers: the count after this one. */
unsigned admit_client_open(void);
void admit_client_close(void);

/* How many descriptors are kept for refusing clients at an open-files
 * limit of limit; is descriptor number fd one of them (at the current
 * limit, stored in *limit)? */
unsigned long long admit_fd_reserve(unsigned long long limit);
bool admit_fd_nearly_out(int fd, unsigned long long *limit);
/* event=fd_limit, at most once a second: a client refused for it. */
void admit_fd_limit_log(int fd, unsigned long long limit);

#endif
