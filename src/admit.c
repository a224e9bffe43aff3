/*
 * admit.c - admission policy (admit.h says why each bound exists).
 *
 * Owns the process-wide counters: clients open, early upstream legs and
 * the waste window, descriptor-limit warnings. Never touches a connection.
 */
#include "admit.h"

#include <sys/resource.h>

#include "log.h"

struct admit_early admit_early_legs;
static atomic_uint active_clients;
static struct log_gate fd_gate; /* fd_limit lines */

/* Roll the waste window forward to now. */
static void waste_roll(struct admit_early *a, long long now)
{
    long long then = atomic_load(&a->second);
    if (now == then || !atomic_compare_exchange_strong(&a->second, &then, now))
        return;
    unsigned last = atomic_exchange(&a->wasted_now, 0);
    atomic_store(&a->wasted_prior, now == then + 1 ? last : 0);
}

enum admit_early_verdict admit_early_take(struct admit_early *a, long long now, unsigned *n)
{
    waste_roll(a, now);
    unsigned wasted = atomic_load(&a->wasted_now) + atomic_load(&a->wasted_prior);
    if (wasted > ADMIT_WASTE_MAX) {
        *n = wasted;
        return ADMIT_EARLY_WASTED;
    }
    if (atomic_fetch_add_explicit(&a->open, 1, memory_order_relaxed) >= ADMIT_EARLY_MAX) {
        atomic_fetch_sub_explicit(&a->open, 1, memory_order_relaxed);
        *n = ADMIT_EARLY_MAX;
        return ADMIT_EARLY_FULL;
    }
    return ADMIT_EARLY_OK;
}

void admit_early_end(struct admit_early *a, long long now, bool wasted)
{
    atomic_fetch_sub_explicit(&a->open, 1, memory_order_relaxed);
    if (!wasted)
        return;
    waste_roll(a, now);
    atomic_fetch_add_explicit(&a->wasted_now, 1, memory_order_relaxed);
}

unsigned admit_client_open(void)
{
    return atomic_fetch_add_explicit(&active_clients, 1, memory_order_relaxed) + 1;
}

void admit_client_close(void)
{
    atomic_fetch_sub_explicit(&active_clients, 1, memory_order_relaxed);
}

unsigned long long admit_fd_reserve(unsigned long long limit)
{
    unsigned long long reserve = limit / 16;
    if (reserve < ADMIT_FD_RESERVE_MIN)
        reserve = ADMIT_FD_RESERVE_MIN;
    if (reserve > ADMIT_FD_RESERVE_MAX)
        reserve = ADMIT_FD_RESERVE_MAX;
    return reserve;
}

bool admit_fd_nearly_out(int fd, unsigned long long *limit)
{
    struct rlimit rl;
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return false;
    *limit = (unsigned long long)rl.rlim_cur;
    return (unsigned long long)fd + admit_fd_reserve(*limit) >= *limit;
}

/* One line a second at most, however many clients are refused. */
void admit_fd_limit_log(int fd, unsigned long long limit)
{
    unsigned n = 0; /* refused since the last line, this one included */
    if (!log_gate_pass(&fd_gate, &n))
        return;
    log_warn("event=fd_limit open_fds=%d limit=%llu refused=%u reason=\"out of file descriptors: "
             "new clients are refused with 53300\" hint=\"raise the open-files limit (ulimit -n, "
             "systemd LimitNOFILE=) or lower --max-connections\"",
             fd + 1, limit, n);
}
