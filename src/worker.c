/*
 * worker.c - one event loop on its own thread: its listeners, its sessions,
 * and the commands the main thread sends it (reload, drain, force, kill).
 *
 * Owns the worker's reference to the route table (route.h: the TLS
 * contexts and the upstream): a reload offers a new table under a lock and
 * the worker swaps it in on its own thread, so the hot path (a session
 * taking its route, SSL_new) takes no lock. Sessions keep the route they
 * were made with. Never frees a connection itself: it asks conn.c to end
 * them.
 */
#include "worker.h"

#include <stdlib.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "bridge.h"
#include "listener.h"
#include "cancel.h"
#include "log.h"
#include "metrics.h"
#include "conn.h"
#include "leg.h"
#include "probe.h"
#include "route.h"
#include "sessions.h"
#include "tlsio.h"

static void worker_finish(struct worker *w)
{
    if (w->finished)
        return;
    if (w->probing)
        uv_close((uv_handle_t *)&w->probe_timer, NULL);
    uv_close((uv_handle_t *)&w->trim_timer, NULL);
    uv_close((uv_handle_t *)&w->bytes_timer, NULL);
    if (w->index == 0)
        uv_close((uv_handle_t *)&w->cancel_timer, NULL);
    w->finished = true;
    log_info("event=worker_stopped worker=%u", w->index);
    sessions_worker_close(w); /* before ctl closes: no wake-up reaches it after */
    uv_close((uv_handle_t *)&w->ctl, NULL);
    uv_mutex_lock(&w->bridge_lock);
    w->bridge_closed = true; /* later posts are freed (worker_destroy frees the queue) */
    uv_mutex_unlock(&w->bridge_lock);
    uv_close((uv_handle_t *)&w->bridge_async, NULL);
    if (w->done != NULL)
        uv_async_send(w->done);
}

static void take_offer(struct worker *w)
{
    uv_mutex_lock(&w->offer_lock);
    struct route_table *t = w->offered;
    w->offered = NULL;
    uv_mutex_unlock(&w->offer_lock);
    if (t == NULL)
        return;
    route_table_unref(w->routes);
    w->routes = t;
    log_debug("event=worker_reloaded worker=%u", w->index);
}

static void end_all(struct worker *w, bool now)
{
    struct conn *c = w->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        conn_shutdown(c, now);
        c = next;
    }
}

static void ctl_cb(uv_async_t *a)
{
    struct worker *w = a->data;
    unsigned cmds = atomic_exchange(&w->ctl_cmds, 0);

    if (w->finished)
        return;
    if (cmds & WORKER_RELOAD)
        take_offer(w);
    if (cmds & WORKER_SESSIONS)
        sessions_worker_run(w);
    if ((cmds & (WORKER_DRAIN | WORKER_FORCE | WORKER_KILL)) && !w->draining) {
        w->draining = true;
        listener_stop(w);
        log_info("event=worker_draining worker=%u open_connections=%zu", w->index, w->nconns);
    }
    if (cmds & WORKER_KILL)
        end_all(w, true);
    else if (cmds & WORKER_FORCE)
        end_all(w, false);
    if (w->draining && w->nconns == 0)
        worker_finish(w);
}

/*
 * --admin-address: /readyz reports whether an upstream handshake succeeded
 * recently. With no traffic, worker 0 makes one itself when the last
 * success is getting old, so an idle proxy in front of a healthy database
 * stays ready (and one in front of a dead one does not).
 */
static void probe_cb(uv_timer_t *t)
{
    struct worker *w = t->data;
    unsigned window = w->rt->cfg->admin_ready_window_s;
    if (w->draining)
        return;
    /* Each route on its own: one busy route must not hide a dead one. */
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < w->routes->n; i++) {
        struct route *r = w->routes->all[i];
        if (now - metrics_route_last_ok(r->mslot) >= (int64_t)(window / 2))
            probe_health_start(w, r);
    }
}

void worker_start_probe(struct worker *w)
{
    unsigned window = w->rt->cfg->admin_ready_window_s;
    uint64_t every = window >= 6 ? (uint64_t)window / 3 * 1000 : 1000;
    uv_timer_init(w->loop, &w->probe_timer);
    w->probe_timer.data = w;
    uv_timer_start(&w->probe_timer, probe_cb, 0, every);
    w->probing = true;
}

/*
 * Byte counters that move while sessions are open: a 50 MB COPY used to show
 * in pg_tls_proxy_bytes_total only once it ended. The relay counts bytes in
 * plain per-leg fields (no atomics per read); once a second each worker
 * adds what its sessions relayed since the last report, two atomic adds per
 * worker. The closing session reports its remainder (conn.c).
 */
#define BYTES_REPORT_MS 1000

static void bytes_cb(uv_timer_t *t)
{
    struct worker *w = t->data;
    uint64_t fc = 0, fu = 0;
    for (struct conn *c = w->conns; c != NULL; c = c->next) {
        if (!c->counted)
            continue;
        fc += c->front.bytes_in - c->reported_from_client;
        fu += c->back.bytes_in - c->reported_from_upstream;
        c->reported_from_client = c->front.bytes_in;
        c->reported_from_upstream = c->back.bytes_in;
    }
    metrics_bytes_relayed(fc, fu);
    tlsio_mem_tick(uv_now(w->loop)); /* the kept TLS buffers, once unused for a second */
}

/* ---- bridge mode: answers from the bridge thread ---- */

void worker_bridge_post(struct worker *w, struct bridge_result *r)
{
    r->next = NULL;
    uv_mutex_lock(&w->bridge_lock);
    bool closed = w->bridge_closed;
    if (!closed) {
        *w->bridge_tail = r;
        w->bridge_tail = &r->next;
    }
    uv_mutex_unlock(&w->bridge_lock);
    if (closed) {
        bridge_result_free(r); /* the worker has stopped: nobody waits */
        return;
    }
    uv_async_send(&w->bridge_async); /* coalesced: the callback takes them all */
}

/* Take every queued result (the lock held). */
static struct bridge_result *bridge_take(struct worker *w)
{
    uv_mutex_lock(&w->bridge_lock);
    struct bridge_result *r = w->bridge_results;
    w->bridge_results = NULL;
    w->bridge_tail = &w->bridge_results;
    uv_mutex_unlock(&w->bridge_lock);
    return r;
}

static void bridge_async_cb(uv_async_t *a)
{
    struct worker *w = a->data;
    struct bridge_result *r = bridge_take(w);
    while (r != NULL) {
        struct bridge_result *next = r->next;
        r->next = NULL;
        bridge_dial_result(w, r);
        r = next;
    }
}

static void cancel_tick_cb(uv_timer_t *t)
{
    (void)t;
    cancel_summary_tick();
}

int worker_init(struct worker *w, unsigned index, const struct runtime *rt,
                struct route_table *routes, uv_async_t *done)
{
    w->index = index;
    w->rt = rt;
    w->done = done;
    w->loop = &w->loop_storage;
    if (uv_loop_init(w->loop) != 0)
        return -1;
    if (uv_mutex_init(&w->offer_lock) != 0 || uv_async_init(w->loop, &w->ctl, ctl_cb) != 0)
        return -1;
    w->ctl.data = w;
    w->bridge_tail = &w->bridge_results;
    if (uv_mutex_init(&w->bridge_lock) != 0 ||
        uv_async_init(w->loop, &w->bridge_async, bridge_async_cb) != 0)
        return -1;
    w->bridge_async.data = w;
    w->sess_tail = &w->sess_jobs;
    if (uv_mutex_init(&w->sess_lock) != 0)
        return -1;
    uv_timer_init(w->loop, &w->trim_timer);
    w->trim_timer.data = w;
    uv_timer_init(w->loop, &w->bytes_timer);
    w->bytes_timer.data = w;
    uv_timer_start(&w->bytes_timer, bytes_cb, BYTES_REPORT_MS, BYTES_REPORT_MS);
    if (index == 0) { /* one worker writes the process-wide cancel summary */
        uv_timer_init(w->loop, &w->cancel_timer);
        uv_timer_start(&w->cancel_timer, cancel_tick_cb, 1000, 1000);
        uv_unref((uv_handle_t *)&w->cancel_timer);
    }
    atomic_init(&w->ctl_cmds, 0);
    w->routes = route_table_ref(routes);
    return 0;
}

void worker_command(struct worker *w, unsigned cmds)
{
    atomic_fetch_or(&w->ctl_cmds, cmds);
    uv_async_send(&w->ctl);
}

void worker_offer_routes(struct worker *w, struct route_table *routes)
{
    route_table_ref(routes);
    uv_mutex_lock(&w->offer_lock);
    struct route_table *old = w->offered;
    w->offered = routes;
    uv_mutex_unlock(&w->offer_lock);
    route_table_unref(old); /* an offer not yet taken is replaced */
    worker_command(w, WORKER_RELOAD);
}

/*
 * Memory back to the system after a wave of sessions. glibc keeps what
 * freed sessions used in its arenas: a proxy that had held 10,000 sessions
 * kept about 440 MB of RSS with none left. Once this worker's sessions have
 * fallen to half of their peak since the last trim, and the peak was large
 * enough to matter, trim after the closes have settled (a one-shot timer:
 * a burst of closes costs one malloc_trim, and busy steady states none).
 * The same after a wave of sessions going quiet: each gives back ~64 KB of
 * handshake and record buffers (relay_release_idle) that sit between live
 * allocations, so glibc cannot return them and 1,000 idle sessions held
 * ~69 KB of RSS each where ~41 KB were in use (issue 17).
 */
#define TRIM_MIN_PEAK 256
#define TRIM_DELAY_MS 2000

static void trim_cb(uv_timer_t *t)
{
    struct worker *w = t->data;
#ifdef __GLIBC__
    size_t before = w->trim_peak;
    uint64_t t0 = uv_hrtime();
    tlsio_mem_trim();
    int released = malloc_trim(0);
    log_debug("event=memory_trimmed worker=%u peak_connections=%zu open_connections=%zu "
              "went_idle=%zu released=%s trim_us=%llu",
              w->index, before, w->nconns, w->idle_released, released ? "yes" : "no",
              (unsigned long long)((uv_hrtime() - t0) / 1000));
#endif
    w->trim_peak = w->nconns;
    w->idle_released = 0;
}

static void trim_soon(struct worker *w)
{
    if (!w->finished && !uv_is_active((uv_handle_t *)&w->trim_timer))
        uv_timer_start(&w->trim_timer, trim_cb, TRIM_DELAY_MS, 0);
}

void worker_buffers_released(struct worker *w)
{
    if (++w->idle_released >= TRIM_MIN_PEAK)
        trim_soon(w);
}

static void trim_check(struct worker *w)
{
    /* Before this close there were nconns + 1: the largest such count
     * since the last trim is the peak reached in between. */
    if (w->nconns + 1 > w->trim_peak)
        w->trim_peak = w->nconns + 1;
    if (w->trim_peak >= TRIM_MIN_PEAK && w->nconns <= w->trim_peak / 2)
        trim_soon(w);
}

/* A connection was freed: a draining worker with none left is done. */
void worker_conn_gone(struct worker *w)
{
    if (w->draining && w->nconns == 0) {
        worker_finish(w);
        return;
    }
    trim_check(w);
}

void worker_thread(void *arg)
{
    struct worker *w = arg;
    uv_run(w->loop, UV_RUN_DEFAULT);
}

/* After the thread has been joined. */
int worker_destroy(struct worker *w)
{
    int closed = uv_loop_close(w->loop);
    if (closed != 0)
        log_error("event=loop_close_failed worker=%u", w->index);
    leg_chunk_cache_free(w);
    for (struct bridge_result *r = bridge_take(w), *next; r != NULL; r = next) {
        next = r->next;
        bridge_result_free(r); /* answers that came too late: their descriptors closed */
    }
    uv_mutex_destroy(&w->bridge_lock);
    uv_mutex_destroy(&w->sess_lock); /* sessions_worker_close answered every job */
    free(w->listeners);
    route_table_unref(w->routes);
    route_table_unref(w->offered);
    w->routes = w->offered = NULL;
    uv_mutex_destroy(&w->offer_lock);
    return closed;
}
