/*
 * cancel.h - what bounds cancel requests: a per-client-address rate limit,
 * a process-wide bound on forwards in flight, the count of each outcome and
 * the one summary line per interval that replaces a log line per attempt.
 *
 * A CancelRequest costs the proxy one upstream TLS connection when it is
 * forwarded, and carries nothing but a key that anyone may guess: unbounded,
 * 3,000 cancels opened 1,507 upstream connections and key guessing ran at
 * 14,800 attempts a second, each a warn line (issue 11). The keymap
 * coalesces repeats of one key (keymap.h); this module bounds the rest.
 *
 * The rate table is a pure structure (time passed in), unit-tested; the
 * process-wide instance behind cancel_admit() and friends is thread-safe.
 */
#ifndef PGTP_CANCEL_H
#define PGTP_CANCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* What became of one cancel request (also the metric's result label). */
enum cancel_outcome {
    CANCEL_FORWARDED = 0, /* sent upstream over verified TLS */
    CANCEL_COALESCED,     /* its key has a forward in flight, or had one < 1 s ago */
    CANCEL_RATE_LIMITED,  /* its address spent its budget */
    CANCEL_UNKNOWN_KEY,   /* no live session has this key (or the packet is malformed) */
    CANCEL_OVER_LIMIT,    /* CANCEL_FORWARDS_MAX forwards already in flight */
    CANCEL_DENIED,        /* not in --server-allow-from */
    CANCEL_FAILED,        /* admitted, but the upstream could not be reached */
    CANCEL_OUTCOMES
};

const char *cancel_outcome_name(enum cancel_outcome o);

/*
 * Per-address budget: a token bucket of CANCEL_RATE_BURST requests that
 * refills at CANCEL_RATE_PER_S a second. Every request takes one token; a
 * request whose key is unknown takes CANCEL_MISS_COST in all, so a guesser
 * gets CANCEL_RATE_PER_S / CANCEL_MISS_COST attempts a second once its burst
 * is spent, while a client that cancels its own queries keeps the full rate.
 * IPv6 addresses count by /64 (one host holds a whole /64).
 */
#define CANCEL_RATE_PER_S 5
#define CANCEL_RATE_BURST 20
#define CANCEL_MISS_COST 4
/* A fixed table: 4096 slots in sets of 8; a new address evicts the least
 * recently seen one of its set, so memory is the same whatever the number
 * of addresses. */
#define CANCEL_RL_WAYS 8
#define CANCEL_RL_SETS 512
/* Forwards in flight at once, all workers: each holds an upstream connection. */
#define CANCEL_FORWARDS_MAX 16
/* A key forwarded this recently is not forwarded again (keymap.c). */
#define CANCEL_COALESCE_MS 1000
/* At most one event=cancel_summary line per this many ms. */
#define CANCEL_SUMMARY_MS 10000

struct cancel_rl_slot {
    uint8_t addr[16];
    uint8_t len;      /* 0: empty */
    int32_t milli;    /* tokens x 1000 (may go below 0 after a miss) */
    uint64_t seen_ms; /* last refill */
    uint32_t refused; /* requests dropped for this address since the last summary */
};

struct cancel_rl {
    struct cancel_rl_slot slot[CANCEL_RL_SETS][CANCEL_RL_WAYS];
};

/* The table's key for an address: 4 bytes (IPv4), 8 (IPv6 /64), 0 if other. */
size_t cancel_addr_key(const struct sockaddr *sa, uint8_t out[16]);
/* Take one token for addr at now_ms; false (nothing taken) if it has none. */
bool cancel_rl_take(struct cancel_rl *t, const uint8_t *addr, size_t len, uint64_t now_ms);
/* Charge addr the extra cost of a miss. */
void cancel_rl_miss(struct cancel_rl *t, const uint8_t *addr, size_t len, uint64_t now_ms);
/* Count one dropped request against addr (for top_source). */
void cancel_rl_refused(struct cancel_rl *t, const uint8_t *addr, size_t len);
/* The address with most refusals since the last call (written to out, "-" if
 * none), and its count; resets every address's count. */
uint32_t cancel_rl_top(struct cancel_rl *t, char *out, size_t cap);

/* ---- the process-wide instance ---- */

/* Monotonic milliseconds, the same clock on every worker. */
uint64_t cancel_now_ms(void);
/* Rate limit for the client at sa (NULL or unknown family: one shared bucket). */
bool cancel_admit(const struct sockaddr *sa);
void cancel_penalize(const struct sockaddr *sa);
/* A slot among CANCEL_FORWARDS_MAX; cancel_slot_put() when its connection is gone. */
bool cancel_slot_take(void);
void cancel_slot_put(void);
unsigned cancel_slots_used(void);
/* Count an outcome (metrics, and the summary; drops are held against sa). */
void cancel_count(enum cancel_outcome o, const struct sockaddr *sa);
/* Log event=cancel_summary if anything was dropped and the last line is at
 * least CANCEL_SUMMARY_MS old. Call it every second or so. */
void cancel_summary_tick(void);

#endif
