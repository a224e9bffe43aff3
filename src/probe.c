/*
 * probe.c - upstream handshakes of the proxy's own (probe.h): a connection
 * with only a back leg, whose owner (struct back_ops) ends it as soon as
 * the leg is verified or has failed. Each probe goes to one route: --check
 * walks every route in turn; the readiness probe is started per route.
 *
 * Owns nothing beyond the connection it starts (and --check's progress,
 * which lives once per process); never sends a byte beyond the TLS
 * handshake (then close_notify), so the database sees no login.
 */
#include "probe.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "back.h"
#include "conn.h"
#include "log.h"
#include "route.h"
#include "worker.h"

/* --check: which route is being checked, and which have failed. The
 * checks run one after the other so that each route's block of output
 * stays together. */
static struct {
    size_t next;       /* index in the worker's route table of the next route */
    size_t nfailed;    /* routes that failed so far */
    char failed[1024]; /* their names, ", "-separated (truncated past 1 KB) */
} chk;

static void check_next(struct worker *w);

/* With only the default route the output is what it always was; with
 * several, every line of a route's block is prefixed by its name. */
static bool check_many(const struct worker *w)
{
    return !route_table_single(w->routes);
}

static void check_ready(struct conn *c)
{
    struct worker *w = c->w;
    back_print_chain(c);
    if (check_many(w)) {
        printf("route %s: ok\n", c->route->name);
        fflush(stdout);
    }
    conn_end(c, "closed", "check done");
    check_next(w);
}

static void check_failed(struct conn *c, const char *sqlstate, const char *label, const char *msg)
{
    (void)sqlstate;
    (void)label;
    struct worker *w = c->w;
    const char *m = strncmp(msg, "pg-tls-proxy: ", 14) == 0 ? msg + 14 : msg;
    if (check_many(w)) {
        /* On stdout with its block, and on stderr (or as a JSON log line)
         * for whoever reads only errors. */
        printf("route %s: FAILED: %s\n", c->route->name, m);
        fflush(stdout);
        log_report("check failed: ", "check_failed", "route %s: %s", c->route->name, m);
        size_t n = strlen(chk.failed);
        snprintf(chk.failed + n, sizeof(chk.failed) - n, "%s%s", chk.nfailed > 0 ? ", " : "",
                 c->route->name);
    } else {
        log_report("check failed: ", "check_failed", "%s", m);
    }
    chk.nfailed++;
    conn_close(c);
    check_next(w);
}

static const struct back_ops check_back = {
    .ready = check_ready,
    .failed = check_failed,
};

static void health_ready(struct conn *c)
{
    conn_end(c, "closed", "check done");
}

static void health_failed(struct conn *c, const char *sqlstate, const char *label, const char *msg)
{
    (void)sqlstate;
    (void)label;
    (void)msg;
    conn_close(c);
}

static const struct back_ops health_back = {
    .ready = health_ready,
    .failed = health_failed,
    .probe_metrics = true,
};

/* A connection of w's to route r only. False if it could not be made. */
static bool probe_start(struct worker *w, struct route *r, const struct back_ops *ops)
{
    struct conn *c = conn_new(w);
    if (c == NULL)
        return false;
    if (c->route != r) { /* conn_new holds the table's default (or first) route */
        route_unref(c->route);
        c->route = route_ref(r);
    }
    c->route_decided = true;
    c->front_deadline = UINT64_MAX; /* no client, no start-up to wait for */
    back_start(c, ops);
    return true;
}

/* The next route's check, or the verdict once every route has had one. */
static void check_next(struct worker *w)
{
    while (chk.next < w->routes->n) {
        struct route *r = w->routes->all[chk.next++];
        if (check_many(w)) {
            printf("route %s: upstream %s:%u, verify name \"%s\"%s\n", r->name, r->host, r->port,
                   r->verify_name, r->direct_tls ? ", direct TLS" : "");
            fflush(stdout);
        }
        if (r->bridge != NULL) {
            /* Its connectors dial in only once the proxy runs: nothing to
             * reach yet. Said, not counted as a failure. */
            printf("route %s: upstream %s:%u through bridge \"%s\": not checked (its connectors "
                   "dial in once the proxy runs; /readyz probes it then)\n",
                   r->name, r->host, r->port, r->bridge);
            fflush(stdout);
            continue;
        }
        if (probe_start(w, r, &check_back))
            return;
        printf("route %s: FAILED: out of memory\n", r->name);
        chk.nfailed++;
    }
    w->probe_status = chk.nfailed > 0 ? 1 : 0;
    if (check_many(w) && chk.nfailed > 0)
        printf("check failed: %zu of %zu routes: %s\n", chk.nfailed, w->routes->n, chk.failed);
    fflush(stdout);
}

void probe_check_start(struct worker *w)
{
    memset(&chk, 0, sizeof(chk));
    w->probe_status = 1;
    check_next(w);
}

void probe_health_start(struct worker *w, struct route *r)
{
    /* One probe per route at a time: a probe of an upstream that does not
     * answer lasts up to its connect timeout, longer than the interval. */
    for (const struct conn *c = w->conns; c != NULL; c = c->next)
        if (c->back_ops == &health_back && c->route == r && c->phase == PHASE_OPEN)
            return;
    probe_start(w, r, &health_back);
}
