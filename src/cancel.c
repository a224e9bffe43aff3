/*
 * cancel.c - bounds on cancel requests: the per-address rate table, the
 * count of forwards in flight, outcome counters and the summary line.
 *
 * Owns the process-wide rate table (behind one mutex: a cancel is one short
 * table step) and the summary counters (atomics). Never logs a key, and
 * never logs per request: a flood of cancels is one line per
 * CANCEL_SUMMARY_MS, whatever its size.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "cancel.h"
#include "log.h"
#include "metrics.h"

static const char *const outcome_names[CANCEL_OUTCOMES] = {
    [CANCEL_FORWARDED] = "forwarded",
    [CANCEL_COALESCED] = "coalesced",
    [CANCEL_RATE_LIMITED] = "rate_limited",
    [CANCEL_UNKNOWN_KEY] = "unknown_key",
    [CANCEL_OVER_LIMIT] = "over_limit",
    [CANCEL_DENIED] = "denied",
    [CANCEL_FAILED] = "failed",
};

const char *cancel_outcome_name(enum cancel_outcome o)
{
    return (unsigned)o < CANCEL_OUTCOMES ? outcome_names[o] : "failed";
}

/* ---- the rate table (pure) ---- */

size_t cancel_addr_key(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa != NULL && sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 4;
    }
    if (sa != NULL && sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, sizeof(mapped)) == 0) { /* ::ffff:a.b.c.d is IPv4 */
            memcpy(out, a + 12, 4);
            return 4;
        }
        memcpy(out, a, 8);
        return 8;
    }
    return 0;
}

static size_t set_of(const uint8_t *addr, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ addr[i]) * 16777619u;
    h ^= (uint32_t)len;
    return (h * 2654435761u >> 16) % CANCEL_RL_SETS;
}

/* s's tokens (x 1000) at now_ms, refilled, at most the burst. */
static int32_t tokens_at(const struct cancel_rl_slot *s, uint64_t now_ms)
{
    int64_t m = s->milli;
    if (now_ms > s->seen_ms)
        m += (int64_t)((now_ms - s->seen_ms) < 3600000u ? now_ms - s->seen_ms : 3600000u) *
             CANCEL_RATE_PER_S;
    const int64_t full = (int64_t)CANCEL_RATE_BURST * 1000;
    return (int32_t)(m < full ? m : full);
}

/*
 * addr's slot, refilled to now_ms; if absent, a new one in place of the
 * slot of its set that knows least: an empty one, else the one with most
 * tokens (a full bucket is what a new address gets anyway), the stalest of
 * those. So a flood of new addresses evicts its own kind, and an address
 * that has spent its budget is the last to be forgotten.
 */
static struct cancel_rl_slot *slot_of(struct cancel_rl *t, const uint8_t *addr, size_t len,
                                      uint64_t now_ms)
{
    struct cancel_rl_slot *set = t->slot[set_of(addr, len)], *victim = NULL;
    for (size_t i = 0; i < CANCEL_RL_WAYS; i++) {
        struct cancel_rl_slot *s = &set[i];
        if (s->len == len && memcmp(s->addr, addr, len) == 0) {
            s->milli = tokens_at(s, now_ms);
            if (now_ms > s->seen_ms)
                s->seen_ms = now_ms;
            return s;
        }
        if (victim != NULL && victim->len == 0)
            continue;
        if (victim == NULL || s->len == 0 || tokens_at(s, now_ms) > tokens_at(victim, now_ms) ||
            (tokens_at(s, now_ms) == tokens_at(victim, now_ms) && s->seen_ms < victim->seen_ms))
            victim = s;
    }
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->addr, addr, len);
    victim->len = (uint8_t)len;
    victim->milli = CANCEL_RATE_BURST * 1000;
    victim->seen_ms = now_ms;
    return victim;
}

bool cancel_rl_take(struct cancel_rl *t, const uint8_t *addr, size_t len, uint64_t now_ms)
{
    struct cancel_rl_slot *s = slot_of(t, addr, len, now_ms);
    if (s->milli < 1000)
        return false;
    s->milli -= 1000;
    return true;
}

void cancel_rl_miss(struct cancel_rl *t, const uint8_t *addr, size_t len, uint64_t now_ms)
{
    struct cancel_rl_slot *s = slot_of(t, addr, len, now_ms);
    s->milli -= (CANCEL_MISS_COST - 1) * 1000;
    if (s->milli < -CANCEL_RATE_BURST * 1000)
        s->milli = -CANCEL_RATE_BURST * 1000;
}

void cancel_rl_refused(struct cancel_rl *t, const uint8_t *addr, size_t len)
{
    struct cancel_rl_slot *set = t->slot[set_of(addr, len)];
    for (size_t i = 0; i < CANCEL_RL_WAYS; i++)
        if (set[i].len == len && memcmp(set[i].addr, addr, len) == 0) {
            set[i].refused++;
            return;
        }
}

uint32_t cancel_rl_top(struct cancel_rl *t, char *out, size_t cap)
{
    const struct cancel_rl_slot *top = NULL;
    for (size_t i = 0; i < CANCEL_RL_SETS; i++)
        for (size_t j = 0; j < CANCEL_RL_WAYS; j++) {
            struct cancel_rl_slot *s = &t->slot[i][j];
            if (s->len != 0 && s->refused > 0 && (top == NULL || s->refused > top->refused))
                top = s;
        }
    uint32_t n = top != NULL ? top->refused : 0;
    char ip[INET6_ADDRSTRLEN] = "-";
    if (top != NULL && top->len == 4) {
        inet_ntop(AF_INET, top->addr, ip, sizeof(ip));
    } else if (top != NULL && top->len == 8) {
        uint8_t a6[16] = {0};
        memcpy(a6, top->addr, 8);
        inet_ntop(AF_INET6, a6, ip, sizeof(ip));
    }
    snprintf(out, cap, "%s%s", ip, top != NULL && top->len == 8 ? "/64" : "");
    for (size_t i = 0; i < CANCEL_RL_SETS; i++)
        for (size_t j = 0; j < CANCEL_RL_WAYS; j++)
            t->slot[i][j].refused = 0;
    return n;
}

/* ---- the process-wide instance ---- */

static struct cancel_rl table;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint slots_used;
static atomic_uint_least64_t counts[CANCEL_OUTCOMES]; /* since the last summary */
static atomic_uint_least64_t last_summary_ms;

uint64_t cancel_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

bool cancel_admit(const struct sockaddr *sa)
{
    uint8_t key[16];
    size_t len = cancel_addr_key(sa, key);
    pthread_mutex_lock(&table_lock);
    bool ok = cancel_rl_take(&table, key, len, cancel_now_ms());
    pthread_mutex_unlock(&table_lock);
    return ok;
}

void cancel_penalize(const struct sockaddr *sa)
{
    uint8_t key[16];
    size_t len = cancel_addr_key(sa, key);
    pthread_mutex_lock(&table_lock);
    cancel_rl_miss(&table, key, len, cancel_now_ms());
    pthread_mutex_unlock(&table_lock);
}

bool cancel_slot_take(void)
{
    if (atomic_fetch_add_explicit(&slots_used, 1, memory_order_relaxed) >= CANCEL_FORWARDS_MAX) {
        atomic_fetch_sub_explicit(&slots_used, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

void cancel_slot_put(void)
{
    atomic_fetch_sub_explicit(&slots_used, 1, memory_order_relaxed);
}

unsigned cancel_slots_used(void)
{
    return atomic_load_explicit(&slots_used, memory_order_relaxed);
}

void cancel_count(enum cancel_outcome o, const struct sockaddr *sa)
{
    if ((unsigned)o >= CANCEL_OUTCOMES)
        o = CANCEL_FAILED;
    metrics_cancel(o);
    atomic_fetch_add_explicit(&counts[o], 1, memory_order_relaxed);
    if (o == CANCEL_FORWARDED || o == CANCEL_FAILED)
        return;
    uint8_t key[16];
    size_t len = cancel_addr_key(sa, key);
    pthread_mutex_lock(&table_lock);
    cancel_rl_refused(&table, key, len);
    pthread_mutex_unlock(&table_lock);
}

void cancel_summary_tick(void)
{
    uint64_t now = cancel_now_ms(), last = atomic_load(&last_summary_ms);
    uint64_t dropped = 0;
    for (int o = CANCEL_COALESCED; o <= CANCEL_DENIED; o++)
        dropped += atomic_load_explicit(&counts[o], memory_order_relaxed);
    if (dropped == 0 || (last != 0 && now - last < CANCEL_SUMMARY_MS) ||
        !atomic_compare_exchange_strong(&last_summary_ms, &last, now))
        return;
    uint64_t n[CANCEL_OUTCOMES];
    for (int o = 0; o < CANCEL_OUTCOMES; o++)
        n[o] = atomic_exchange(&counts[o], 0);
    char top[INET6_ADDRSTRLEN + 4];
    pthread_mutex_lock(&table_lock);
    uint32_t top_n = cancel_rl_top(&table, top, sizeof(top));
    pthread_mutex_unlock(&table_lock);
    log_warn("event=cancel_summary forwarded=%llu failed=%llu coalesced=%llu rate_limited=%llu "
             "unknown_key=%llu over_limit=%llu denied=%llu top_source=%s top_source_dropped=%u "
             "in_flight=%u since_last_s=%llu",
             (unsigned long long)n[CANCEL_FORWARDED], (unsigned long long)n[CANCEL_FAILED],
             (unsigned long long)n[CANCEL_COALESCED], (unsigned long long)n[CANCEL_RATE_LIMITED],
             (unsigned long long)n[CANCEL_UNKNOWN_KEY], (unsigned long long)n[CANCEL_OVER_LIMIT],
             (unsigned long long)n[CANCEL_DENIED], top, top_n, cancel_slots_used(),
             (unsigned long long)(last != 0 ? (now - last) / 1000 : 0));
}
