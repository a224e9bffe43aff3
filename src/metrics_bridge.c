/*
 * metrics_bridge.c - bridge mode's series (issue 15):
 *   pg_tls_proxy_bridge_connectors{bridge}        connectors online (gauge)
 *   pg_tls_proxy_bridge_streams_total{bridge,result}  streams asked for
 * Labels come from the bridges file only (metrics_bridge_known, at most
 * METRICS_BRIDGE_SLOTS ids for the life of the process), so that nothing a
 * connector or a client sends can grow the exposition. Updated by the
 * bridge thread, rendered by the admin thread: values are relaxed atomics,
 * the table of ids grows under a mutex and is read up to a published count.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bridgeint.h"
#include "log.h"
#include "metrics.h"
#include "promtext.h"

#define METRICS_BRIDGE_SLOTS 256

static const char *const results[] = {"opened",      "no_connector", "not_allowed",
                                      "unreachable", "timeout",      "error"};
#define NRESULTS (sizeof(results) / sizeof(results[0]))

static struct {
    char id[BRIDGE_ID_MAX + 1];
    atomic_uint_least64_t connectors;
    atomic_uint_least64_t streams[NRESULTS];
} tab[METRICS_BRIDGE_SLOTS];
static atomic_size_t used;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool full_logged;

static int find(const char *id)
{
    size_t n = atomic_load_explicit(&used, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (strcmp(tab[i].id, id) == 0)
            return (int)i;
    return -1;
}

void metrics_bridge_known(const char *id)
{
    if (id == NULL || !bridge_id_valid(id) || find(id) >= 0)
        return;
    pthread_mutex_lock(&lock);
    size_t n = atomic_load_explicit(&used, memory_order_relaxed);
    if (find(id) < 0) {
        if (n < METRICS_BRIDGE_SLOTS) {
            snprintf(tab[n].id, sizeof(tab[n].id), "%s", id);
            atomic_store_explicit(&used, n + 1, memory_order_release);
        } else if (!full_logged) {
            full_logged = true;
            log_warn("event=metrics_bridges_full bridge=%s limit=%d reason=\"bridge ids beyond "
                     "the limit get no series\"",
                     id, METRICS_BRIDGE_SLOTS);
        }
    }
    pthread_mutex_unlock(&lock);
}

void metrics_bridge_connectors(const char *id, unsigned n)
{
    int i = find(id);
    if (i >= 0)
        atomic_store_explicit(&tab[i].connectors, n, memory_order_relaxed);
}

void metrics_bridge_stream(const char *id, const char *result)
{
    int i = find(id);
    for (size_t r = 0; i >= 0 && r < NRESULTS; r++)
        if (strcmp(result, results[r]) == 0)
            atomic_fetch_add_explicit(&tab[i].streams[r], 1, memory_order_relaxed);
}

void metrics_render_bridges(struct prom_out *o)
{
    size_t n = atomic_load_explicit(&used, memory_order_acquire);
    if (n == 0)
        return; /* bridge mode off: no empty families */
    prom_family(o, "pg_tls_proxy_bridge_connectors", "gauge",
                "Connectors online, by bridge id (ids of --bridges-file).");
    for (size_t i = 0; i < n; i++) {
        prom_puts(o, "pg_tls_proxy_bridge_connectors{bridge=\"");
        prom_label_value(o, tab[i].id);
        prom_putf(o, "\"} %" PRIuLEAST64 "\n",
                  atomic_load_explicit(&tab[i].connectors, memory_order_relaxed));
    }
    prom_family(o, "pg_tls_proxy_bridge_streams_total", "counter",
                "Streams the proxy asked connectors for, by bridge id and result (opened, or "
                "why not: no_connector, not_allowed, unreachable, timeout, error).");
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < NRESULTS; r++) {
            prom_puts(o, "pg_tls_proxy_bridge_streams_total{bridge=\"");
            prom_label_value(o, tab[i].id);
            prom_putf(o, "\",result=\"%s\"} %" PRIuLEAST64 "\n", results[r],
                      atomic_load_explicit(&tab[i].streams[r], memory_order_relaxed));
        }
}
