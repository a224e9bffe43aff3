/*
 * metrics_hist.c - the timing histograms (session duration, front and back
 * TLS handshake) and the connection-cap gauge, rendered after the upstream
 * connect histogram by metrics.c.
 *
 * Histograms have no route label: every label value multiplies a
 * histogram's series by its bucket count (17 here), and per-route session
 * counts are already in pg_tls_proxy_sessions_total. An observation is a
 * bucket search over a dozen constants and two relaxed atomic adds: no
 * lock, no allocation, safe from any worker thread. Owns the histograms'
 * counts; never logs.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>

#include "metrics.h"
#include "promtext.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define HIST_MAX 16 /* most buckets a histogram here has, +Inf excluded */

/* Upper bounds in microseconds and as their le="..." text (seconds). */
struct buckets {
    const uint64_t *us;
    const char *const *le;
    size_t n;
};

/* Handshakes: the same bounds as pg_tls_proxy_upstream_connect_seconds, so
 * their quantiles compare bucket for bucket. */
static const uint64_t hs_us[] = {1000,   2500,   5000,    10000,   25000,   50000,   100000,
                                 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const hs_le[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};
_Static_assert(NELEM(hs_us) == NELEM(hs_le), "handshake bucket tables differ");

/* Sessions: from a connect-per-transaction client's tenth of a second to a
 * pool's week-long connection. */
#define S_US(s) ((uint64_t)(s)*1000000u)
static const uint64_t dur_us[] = {100000,      500000,      S_US(1),      S_US(5),
                                  S_US(15),    S_US(60),    S_US(300),    S_US(900),
                                  S_US(1800),  S_US(3600),  S_US(10800),  S_US(21600),
                                  S_US(43200), S_US(86400), S_US(259200), S_US(604800)};
static const char *const dur_le[] = {"0.1",   "0.5",   "1",      "5",     "15",    "60",
                                     "300",   "900",   "1800",   "3600",  "10800", "21600",
                                     "43200", "86400", "259200", "604800"};
_Static_assert(NELEM(dur_us) == NELEM(dur_le), "duration bucket tables differ");
_Static_assert(NELEM(dur_us) <= HIST_MAX && NELEM(hs_us) <= HIST_MAX, "HIST_MAX too small");

struct hist {
    const char *name, *help;
    struct buckets b;
    /* Per bucket, not cumulative; the last slot used is above the largest
     * bound. _count is their sum at render time, so the +Inf bucket and
     * _count of one scrape always agree. */
    atomic_uint_least64_t counts[HIST_MAX + 1];
    atomic_uint_least64_t sum_us;
};

static struct hist session_duration = {
    .name = "pg_tls_proxy_session_duration_seconds",
    .help = "Client sessions that reached the upstream, from accept to close, when they end.",
    .b = {dur_us, dur_le, NELEM(dur_us)},
};
static struct hist front_handshake = {
    .name = "pg_tls_proxy_front_handshake_seconds",
    .help = "Client TLS handshakes that completed, from the proxy's answer to SSLRequest (or a "
            "direct ClientHello) to the handshake done.",
    .b = {hs_us, hs_le, NELEM(hs_us)},
};
static struct hist back_handshake = {
    .name = "pg_tls_proxy_back_handshake_seconds",
    .help = "Upstream TLS handshakes that completed and verified, from the first ClientHello "
            "byte to the verified session (TLS alone: no resolve, no TCP connect).",
    .b = {hs_us, hs_le, NELEM(hs_us)},
};

static atomic_uint_least64_t max_connections;

static void observe(struct hist *h, double ms)
{
    uint64_t us = 0;
    /* NaN, negative and absurd values (a clock step) clamp to 0 instead of
     * overflowing the conversion (undefined behaviour); 1e12 ms is 31 years. */
    if (ms > 0 && ms < 1e12)
        us = (uint64_t)(ms * 1000.0 + 0.5);
    size_t i = 0;
    while (i < h->b.n && us > h->b.us[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void metrics_session_duration(double ms)
{
    observe(&session_duration, ms);
}

void metrics_front_handshake(double ms)
{
    observe(&front_handshake, ms);
}

void metrics_back_handshake(double ms)
{
    observe(&back_handshake, ms);
}

void metrics_set_max_connections(unsigned n)
{
    atomic_store_explicit(&max_connections, n, memory_order_relaxed);
}

static void render_hist(struct prom_out *o, struct hist *h)
{
    prom_family(o, h->name, "histogram", h->help);
    uint64_t cum = 0;
    for (size_t i = 0; i < h->b.n; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        prom_putf(o, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", h->name, h->b.le[i], cum);
    }
    cum += atomic_load_explicit(&h->counts[h->b.n], memory_order_relaxed);
    prom_putf(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", h->name, cum);
    /* Microseconds as exact decimal seconds: no float formatting surprises. */
    uint64_t sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
    prom_putf(o, "%s_sum %" PRIu64 ".%06" PRIu64 "\n", h->name, sum / 1000000, sum % 1000000);
    prom_putf(o, "%s_count %" PRIu64 "\n", h->name, cum);
}

void metrics_render_timings(struct prom_out *o)
{
    render_hist(o, &session_duration);
    render_hist(o, &front_handshake);
    render_hist(o, &back_handshake);
    prom_family(o, "pg_tls_proxy_max_connections", "gauge",
                "The --max-connections cap: client connections open at once, counted from "
                "accept (0 while the proxy is not serving).");
    prom_putf(o, "pg_tls_proxy_max_connections %" PRIuLEAST64 "\n",
              atomic_load_explicit(&max_connections, memory_order_relaxed));
}
