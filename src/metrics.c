/*
 * metrics.c - process-wide counters, gauges and one histogram, rendered in
 * the Prometheus text exposition format 0.0.4 (written by promtext.c).
 *
 * Session, handshake, login and probe series carry a route label: each
 * route name gets a slot (route_tab, bounded) the first time a route of
 * that name is built, and keeps it; the slot also holds what /readyz
 * reports about the route (its last verified handshake, its last failure).
 *
 * Updated from every worker thread: plain counters are C11 atomics with
 * relaxed ordering (no counter orders any other memory access; a scrape may
 * see one counter a moment ahead of another, which Prometheus tolerates).
 * Two small tables need a mutex: handshake-failure series are inserted under
 * one (and then counted with atomics, lock-free), certificate gauges are
 * replaced under another. Owns every byte of metric state; must never block a
 * worker for longer than one table insertion, and never allocates on the
 * counting paths.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "log.h"
#include "metrics.h"
#include "procstats.h"
#include "promtext.h"

#ifndef PGTP_VERSION
#define PGTP_VERSION "unknown"
#endif

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- outcomes ---------------------------------------------------------- */

/* The label values are the outcome= words conn.c logs on event=closed. */
static const char *const outcome_names[OUT_COUNT] = {
    [OUT_CLOSED] = "closed",
    [OUT_ERROR] = "error",
    [OUT_REFUSED] = "refused",
    [OUT_TIMEOUT] = "timeout",
    [OUT_UPSTREAM] = "upstream_error",
    [OUT_PROTOCOL] = "protocol_error",
    [OUT_DENIED] = "denied",
    [OUT_CHANNEL_BINDING] = "channel_binding",
    [OUT_CANCEL] = "cancel",
    [OUT_FRONT_TLS] = "front_tls_failed",
    [OUT_TOO_MANY] = "too_many",
    [OUT_SHUTDOWN] = "shutdown",
    [OUT_LOGIN_FAILED] = "login_failed",
    [OUT_TERMINATED] = "terminated",
};

enum metric_outcome metrics_outcome_of(const char *name)
{
    if (name == NULL)
        return OUT_ERROR;
    for (int i = 0; i < OUT_COUNT; i++)
        if (strcmp(name, outcome_names[i]) == 0)
            return (enum metric_outcome)i;
    /* A cancel request's connection logs how it went; it is one outcome here. */
    if (strcmp(name, "cancel_forwarded") == 0 || strcmp(name, "cancel_failed") == 0)
        return OUT_CANCEL;
    /* A client no route takes (route.c) is refused like one that must use TLS. */
    if (strcmp(name, "no_route") == 0)
        return OUT_REFUSED;
    return OUT_ERROR;
}

const char *metrics_outcome_name(enum metric_outcome o)
{
    return (unsigned)o < OUT_COUNT ? outcome_names[o] : outcome_names[OUT_ERROR];
}

/* ---- routes -------------------------------------------------------------- */

/* Per route: its session counters and gauge, and what /readyz needs. Slots
 * [0, route_used) are published (release store of route_used) with their
 * name set; a name never changes once published, so counting and rendering
 * read them without the lock. */
struct route_slot {
    char name[METRICS_ROUTE_NAME_MAX];
    atomic_uint_least64_t sessions[OUT_COUNT];
    atomic_int_least64_t active;
    atomic_uint_least64_t probe_failures;
    atomic_int_least64_t last_ok, last_failure;
};
static struct route_slot route_tab[METRICS_ROUTE_SLOTS] = {[METRICS_ROUTE_NONE] = {.name = "-"}};
static atomic_size_t route_used = 1;
/* Guards inserting slots, the current list and the failure texts. */
static pthread_mutex_t route_lock = PTHREAD_MUTEX_INITIALIZER;
static char route_failure[METRICS_ROUTE_SLOTS][256];
static unsigned route_current[METRICS_ROUTE_SLOTS];
static size_t route_ncurrent;
static bool route_full_logged;

#define ADD(var, n) atomic_fetch_add_explicit(&(var), (n), memory_order_relaxed)
#define LOAD(var) atomic_load_explicit(&(var), memory_order_relaxed)
#define STORE(var, v) atomic_store_explicit(&(var), (v), memory_order_relaxed)

/* Any slot number becomes a published one ("-" if out of range). */
static struct route_slot *rslot(unsigned route)
{
    size_t n = atomic_load_explicit(&route_used, memory_order_acquire);
    return &route_tab[route < n ? route : METRICS_ROUTE_NONE];
}

static unsigned route_find(const char *name, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (strcmp(route_tab[i].name, name) == 0)
            return (unsigned)i;
    return METRICS_ROUTE_NONE;
}

unsigned metrics_route_slot(const char *name)
{
    if (name == NULL || name[0] == '\0' || strcmp(name, "-") == 0 ||
        strlen(name) >= METRICS_ROUTE_NAME_MAX)
        return METRICS_ROUTE_NONE;
    unsigned s = route_find(name, atomic_load_explicit(&route_used, memory_order_acquire));
    if (s != METRICS_ROUTE_NONE)
        return s;
    pthread_mutex_lock(&route_lock);
    size_t n = atomic_load_explicit(&route_used, memory_order_relaxed);
    s = route_find(name, n); /* another thread may have added it */
    if (s == METRICS_ROUTE_NONE && n < METRICS_ROUTE_SLOTS) {
        snprintf(route_tab[n].name, sizeof(route_tab[n].name), "%s", name);
        s = (unsigned)n;
        atomic_store_explicit(&route_used, n + 1, memory_order_release);
    } else if (s == METRICS_ROUTE_NONE && !route_full_logged) {
        route_full_logged = true;
        log_warn("event=metrics_routes_full max=%d route=\"%s\" reason=\"more route names since "
                 "start than the metrics keep series for: later ones are counted under route -\" "
                 "hint=\"restart the proxy to give every current route its own series\"",
                 METRICS_ROUTE_SLOTS - 1, name);
    }
    pthread_mutex_unlock(&route_lock);
    return s;
}

void metrics_routes_current(const unsigned *slots, size_t n)
{
    pthread_mutex_lock(&route_lock);
    route_ncurrent = 0;
    for (size_t i = 0; i < n && route_ncurrent < METRICS_ROUTE_SLOTS; i++)
        route_current[route_ncurrent++] = slots[i];
    pthread_mutex_unlock(&route_lock);
}

static void route_state(unsigned slot, struct metrics_route_state *st)
{
    const struct route_slot *r = rslot(slot);
    _Static_assert(sizeof(st->name) == sizeof(r->name), "route name sizes differ");
    _Static_assert(sizeof(st->failure) == sizeof(route_failure[0]), "failure sizes differ");
    memcpy(st->name, r->name, sizeof(st->name)); /* NUL-terminated, same size */
    st->last_ok = LOAD(r->last_ok);
    st->last_failure = LOAD(r->last_failure);
    memcpy(st->failure, route_failure[r - route_tab], sizeof(st->failure));
}

bool metrics_route_state_at(size_t i, struct metrics_route_state *st)
{
    pthread_mutex_lock(&route_lock);
    bool ok = i < route_ncurrent;
    if (ok)
        route_state(route_current[i], st);
    pthread_mutex_unlock(&route_lock);
    return ok;
}

bool metrics_route_state_of(const char *name, struct metrics_route_state *st)
{
    bool ok = false;
    pthread_mutex_lock(&route_lock);
    for (size_t i = 0; i < route_ncurrent && !ok; i++) {
        if (strcmp(rslot(route_current[i])->name, name) == 0) {
            route_state(route_current[i], st);
            ok = true;
        }
    }
    pthread_mutex_unlock(&route_lock);
    return ok;
}

int64_t metrics_route_last_ok(unsigned slot)
{
    return LOAD(rslot(slot)->last_ok);
}

void metrics_upstream_failed(unsigned route, const char *msg)
{
    struct route_slot *r = rslot(route);
    STORE(r->last_failure, (int64_t)time(NULL));
    if (msg == NULL)
        msg = "";
    if (strncmp(msg, "pg-tls-proxy: ", 14) == 0)
        msg += 14;
    pthread_mutex_lock(&route_lock);
    char *out = route_failure[r - route_tab];
    size_t i = 0;
    /* One line of printable text: the body of /readyz is line per route. */
    for (; msg[i] != '\0' && i + 1 < sizeof(route_failure[0]); i++)
        out[i] = msg[i] >= 0x20 && msg[i] <= 0x7e ? msg[i] : '?';
    out[i] = '\0';
    pthread_mutex_unlock(&route_lock);
}

/* ---- plain counters ----------------------------------------------------- */

static atomic_uint_least64_t bytes_from_client, bytes_from_upstream;
static atomic_uint_least64_t cancels[CANCEL_OUTCOMES];
static atomic_uint_least64_t reloads_ok, reloads_failed;
static atomic_uint_least64_t accept_pauses;
static atomic_int_least64_t last_upstream_ok;

void metrics_session_opened(unsigned route)
{
    ADD(rslot(route)->active, 1);
}

void metrics_session_routed(unsigned from, unsigned to)
{
    if (from == to)
        return;
    ADD(rslot(from)->active, -1);
    ADD(rslot(to)->active, 1);
}

void metrics_session_closed(unsigned route, enum metric_outcome o, uint64_t from_client,
                            uint64_t from_upstream)
{
    if ((unsigned)o >= OUT_COUNT)
        o = OUT_ERROR;
    struct route_slot *r = rslot(route);
    ADD(r->active, -1);
    ADD(r->sessions[o], 1);
    metrics_bytes_relayed(from_client, from_upstream);
}

void metrics_bytes_relayed(uint64_t from_client, uint64_t from_upstream)
{
    if (from_client > 0)
        ADD(bytes_from_client, from_client);
    if (from_upstream > 0)
        ADD(bytes_from_upstream, from_upstream);
}

void metrics_cancel(enum cancel_outcome o)
{
    if ((unsigned)o >= CANCEL_OUTCOMES)
        o = CANCEL_FAILED;
    ADD(cancels[o], 1);
}

void metrics_reload(bool ok)
{
    if (ok)
        ADD(reloads_ok, 1);
    else
        ADD(reloads_failed, 1);
}

void metrics_accept_paused(void)
{
    ADD(accept_pauses, 1);
}

int64_t metrics_active_sessions(void)
{
    int64_t sum = 0;
    size_t n = atomic_load_explicit(&route_used, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        sum += LOAD(route_tab[i].active);
    return sum;
}

int64_t metrics_last_upstream_ok(void)
{
    return LOAD(last_upstream_ok);
}

/* ---- upstream connect latency histogram --------------------------------- */

/* Upper bounds in microseconds, and as the le="..." text (seconds). */
static const uint64_t bucket_us[] = {1000,   2500,   5000,    10000,   25000,   50000,   100000,
                                     250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const bucket_le[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                        "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};
_Static_assert(NELEM(bucket_us) == NELEM(bucket_le), "bucket tables differ");

/* Per-bucket (not cumulative) counts; the last slot is above the largest
 * bound. _count is derived from these at render time, so the +Inf bucket and
 * _count of one scrape always agree. */
static atomic_uint_least64_t hist_counts[NELEM(bucket_us) + 1];
static atomic_uint_least64_t hist_sum_us;

void metrics_upstream_connected(unsigned route, double ms)
{
    uint64_t us = 0;
    /* NaN, negative and absurd values (a clock step) clamp instead of
     * overflowing the conversion, which would be undefined behaviour. */
    if (ms > 0 && ms < 1e12)
        us = (uint64_t)(ms * 1000.0 + 0.5);
    size_t i = 0;
    while (i < NELEM(bucket_us) && us > bucket_us[i])
        i++;
    ADD(hist_counts[i], 1);
    ADD(hist_sum_us, us);
    int64_t now = (int64_t)time(NULL);
    STORE(last_upstream_ok, now);
    STORE(rslot(route)->last_ok, now);
}

/* ---- handshake failures: a small open set of (leg, reason, route) series -- */

/* A few reasons per leg times a few routes; past it, "other" of route "-". */
#define HS_SLOTS 512
#define HS_REASON_MAX 32 /* including the NUL */

struct hs_slot {
    int leg; /* 0 front, 1 back */
    char reason[HS_REASON_MAX];
    unsigned route;
    atomic_uint_least64_t count;
};

/* Slots [0, hs_used) are immutable once published (release store of
 * hs_used), so readers scan them without the lock. Slots 0 and 1 are the
 * "other" series (route "-") that take whatever does not fit. */
static struct hs_slot hs_table[HS_SLOTS] = {
    {.leg = 0, .reason = "other"},
    {.leg = 1, .reason = "other"},
};
static atomic_size_t hs_used = 2;
static pthread_mutex_t hs_lock = PTHREAD_MUTEX_INITIALIZER;

static struct hs_slot *hs_find(int leg, const char *reason, unsigned route, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hs_table[i].leg == leg && hs_table[i].route == route &&
            strcmp(hs_table[i].reason, reason) == 0)
            return &hs_table[i];
    return NULL;
}

/* A reason becomes a label value: short, printable ASCII, not empty. */
static bool reason_ok(const char *reason)
{
    size_t n = 0;
    for (; reason[n] != '\0'; n++)
        if (n + 1 >= HS_REASON_MAX || reason[n] < 0x21 || reason[n] > 0x7e)
            return false;
    return n > 0;
}

void metrics_handshake_failed(int leg, const char *reason, unsigned route)
{
    leg = leg == 0 ? 0 : 1;
    if (reason == NULL || !reason_ok(reason))
        reason = "other";
    route = (unsigned)(rslot(route) - route_tab);
    struct hs_slot *s =
        hs_find(leg, reason, route, atomic_load_explicit(&hs_used, memory_order_acquire));
    if (s == NULL) {
        pthread_mutex_lock(&hs_lock);
        size_t n = atomic_load_explicit(&hs_used, memory_order_relaxed);
        s = hs_find(leg, reason, route, n); /* another thread may have added it */
        if (s == NULL && n < HS_SLOTS) {
            s = &hs_table[n];
            s->leg = leg;
            s->route = route;
            snprintf(s->reason, sizeof(s->reason), "%s", reason);
            atomic_store_explicit(&hs_used, n + 1, memory_order_release);
        } else if (s == NULL) {
            s = &hs_table[leg]; /* table full: "other" of this leg */
        }
        pthread_mutex_unlock(&hs_lock);
    }
    ADD(s->count, 1);
}

void metrics_probe_failed(unsigned route)
{
    ADD(rslot(route)->probe_failures, 1);
}

/* ---- login failures: a small open set of SQLSTATE series ------------------ */

#define LF_SLOTS 512

/* Slots [0, lf_used) are immutable once published, as for hs_table; slot 0
 * ("other", route "-") takes malformed codes and whatever does not fit. */
struct lf_slot {
    char sqlstate[6];
    char reason[24];
    unsigned route;
    atomic_uint_least64_t count;
};
static struct lf_slot lf_table[LF_SLOTS] = {{.sqlstate = "other", .reason = "other"}};
static atomic_size_t lf_used = 1;
static pthread_mutex_t lf_lock = PTHREAD_MUTEX_INITIALIZER;

static struct lf_slot *lf_find(const char *code, const char *reason, unsigned route, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lf_table[i].route == route && strcmp(lf_table[i].sqlstate, code) == 0 &&
            strcmp(lf_table[i].reason, reason) == 0)
            return &lf_table[i];
    return NULL;
}

/* A reason is a short word the code chose: [a-z_], at most 23 characters. */
static bool lf_reason_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n >= 23 || !((s[n] >= 'a' && s[n] <= 'z') || s[n] == '_'))
            return false;
    return n > 0;
}

/* Five characters from [0-9A-Z], as every SQLSTATE is. */
static bool sqlstate_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (n >= 5 || !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'Z')))
            return false;
    return n == 5;
}

void metrics_login_failed(const char *sqlstate, const char *reason, unsigned route)
{
    if (sqlstate == NULL || !sqlstate_ok(sqlstate))
        sqlstate = "other";
    if (reason == NULL || !lf_reason_ok(reason))
        reason = "other";
    route = (unsigned)(rslot(route) - route_tab);
    struct lf_slot *s =
        lf_find(sqlstate, reason, route, atomic_load_explicit(&lf_used, memory_order_acquire));
    if (s == NULL) {
        pthread_mutex_lock(&lf_lock);
        size_t n = atomic_load_explicit(&lf_used, memory_order_relaxed);
        s = lf_find(sqlstate, reason, route, n);
        if (s == NULL && n < LF_SLOTS) {
            s = &lf_table[n];
            s->route = route;
            snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", sqlstate);
            snprintf(s->reason, sizeof(s->reason), "%s", reason);
            atomic_store_explicit(&lf_used, n + 1, memory_order_release);
        } else if (s == NULL) {
            s = &lf_table[0];
        }
        pthread_mutex_unlock(&lf_lock);
    }
    ADD(s->count, 1);
}

/* ---- certificate expiry gauges ------------------------------------------ */

struct cert_gauge {
    char *which, *subject;
    int64_t not_after;
};

/* A CA bundle may hold a few hundred roots; past this, a bundle is not worth
 * a series per certificate (and the scrape stays bounded). */
#define CERT_MAX 1024

static struct cert_gauge *certs;
static size_t ncerts, certs_cap;
static bool certs_overflow_logged;
static pthread_mutex_t cert_lock = PTHREAD_MUTEX_INITIALIZER;

void metrics_set_cert_expiry(const char *which, const char *subject, int64_t not_after)
{
    if (which == NULL)
        return;
    if (subject == NULL)
        subject = "";
    pthread_mutex_lock(&cert_lock);
    for (size_t i = 0; i < ncerts; i++) {
        if (strcmp(certs[i].which, which) == 0 && strcmp(certs[i].subject, subject) == 0) {
            certs[i].not_after = not_after; /* same series: one sample, not two */
            goto out;
        }
    }
    if (ncerts == CERT_MAX) {
        if (!certs_overflow_logged)
            log_warn("event=metrics_cert_gauges_full max=%d", CERT_MAX);
        certs_overflow_logged = true;
        goto out;
    }
    if (ncerts == certs_cap) {
        size_t cap = certs_cap ? certs_cap * 2 : 8;
        struct cert_gauge *nc = realloc(certs, cap * sizeof(*nc));
        if (nc == NULL)
            goto out;
        certs = nc;
        certs_cap = cap;
    }
    char *w = strdup(which), *s = strdup(subject);
    if (w == NULL || s == NULL) {
        free(w);
        free(s);
        goto out;
    }
    certs[ncerts++] = (struct cert_gauge){.which = w, .subject = s, .not_after = not_after};
out:
    pthread_mutex_unlock(&cert_lock);
}

void metrics_clear_cert_expiry(void)
{
    pthread_mutex_lock(&cert_lock);
    for (size_t i = 0; i < ncerts; i++) {
        free(certs[i].which);
        free(certs[i].subject);
    }
    free(certs);
    certs = NULL;
    ncerts = certs_cap = 0;
    certs_overflow_logged = false;
    pthread_mutex_unlock(&cert_lock);
}

/* ---- front certificate names ---------------------------------------------- */

static atomic_uint_least64_t sni_mismatches;

void metrics_sni_mismatch(void)
{
    ADD(sni_mismatches, 1);
}

/* ---- rendering ---------------------------------------------------------- */

static void render_sessions(struct prom_out *o)
{
    size_t nr = atomic_load_explicit(&route_used, memory_order_acquire);
    prom_family(o, "pg_tls_proxy_sessions_total", "counter",
                "Client sessions ended, by outcome and route (\"-\": ended before a route was "
                "decided).");
    for (size_t r = 0; r < nr; r++) {
        for (int i = 0; i < OUT_COUNT; i++) {
            prom_putf(o, "pg_tls_proxy_sessions_total{outcome=\"%s\",route=\"", outcome_names[i]);
            prom_label_value(o, route_tab[r].name);
            prom_putf(o, "\"} %" PRIuLEAST64 "\n", LOAD(route_tab[r].sessions[i]));
        }
    }

    prom_family(o, "pg_tls_proxy_active_sessions", "gauge",
                "Client sessions open now, by route (\"-\": route not decided yet).");
    for (size_t r = 0; r < nr; r++) {
        prom_puts(o, "pg_tls_proxy_active_sessions{route=\"");
        prom_label_value(o, route_tab[r].name);
        prom_putf(o, "\"} %" PRIdLEAST64 "\n", LOAD(route_tab[r].active));
    }

    prom_family(o, "pg_tls_proxy_bytes_total", "counter",
                "Plaintext bytes relayed, by direction (open sessions' bytes are added every "
                "second).");
    prom_putf(o, "pg_tls_proxy_bytes_total{direction=\"from_client\"} %" PRIuLEAST64 "\n",
              LOAD(bytes_from_client));
    prom_putf(o, "pg_tls_proxy_bytes_total{direction=\"from_upstream\"} %" PRIuLEAST64 "\n",
              LOAD(bytes_from_upstream));
}

static void render_handshakes(struct prom_out *o)
{
    prom_family(o, "pg_tls_proxy_handshake_failures_total", "counter",
                "TLS handshakes that failed, by leg, reason and route (front leg: \"-\" "
                "while the client has named no route).");
    size_t n = atomic_load_explicit(&hs_used, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        prom_putf(o, "pg_tls_proxy_handshake_failures_total{leg=\"%s\",reason=\"",
                  hs_table[i].leg == 0 ? "front" : "back");
        prom_label_value(o, hs_table[i].reason);
        prom_puts(o, "\",route=\"");
        prom_label_value(o, rslot(hs_table[i].route)->name);
        prom_putf(o, "\"} %" PRIuLEAST64 "\n", LOAD(hs_table[i].count));
    }
}

static void render_upstream(struct prom_out *o)
{
    const char *name = "pg_tls_proxy_upstream_connect_seconds";
    prom_family(o, name, "histogram",
                "Time from starting to connect upstream to a verified TLS session.");
    uint64_t cum = 0;
    for (size_t i = 0; i < NELEM(bucket_us); i++) {
        cum += LOAD(hist_counts[i]);
        prom_putf(o, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, bucket_le[i], cum);
    }
    cum += LOAD(hist_counts[NELEM(bucket_us)]);
    prom_putf(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
    /* Microseconds as exact decimal seconds: no float formatting surprises. */
    uint64_t sum = LOAD(hist_sum_us);
    prom_putf(o, "%s_sum %" PRIu64 ".%06" PRIu64 "\n", name, sum / 1000000, sum % 1000000);
    prom_putf(o, "%s_count %" PRIu64 "\n", name, cum);

    prom_family(o, "pg_tls_proxy_upstream_last_success_timestamp_seconds", "gauge",
                "Unix time of the last verified upstream TLS handshake, by route (0: never).");
    size_t nr = atomic_load_explicit(&route_used, memory_order_acquire);
    /* "-" only when a route had no slot of its own (metrics_routes_full). */
    for (size_t r = LOAD(route_tab[0].last_ok) != 0 ? 0 : 1; r < nr; r++) {
        prom_puts(o, "pg_tls_proxy_upstream_last_success_timestamp_seconds{route=\"");
        prom_label_value(o, route_tab[r].name);
        prom_putf(o, "\"} %" PRIdLEAST64 "\n", LOAD(route_tab[r].last_ok));
    }
}

static void render_events(struct prom_out *o)
{
    prom_family(o, "pg_tls_proxy_cancel_requests_total", "counter",
                "Cancel requests, by what became of them (forwarded, or why not).");
    for (int i = 0; i < CANCEL_OUTCOMES; i++)
        prom_putf(o, "pg_tls_proxy_cancel_requests_total{result=\"%s\"} %" PRIuLEAST64 "\n",
                  cancel_outcome_name((enum cancel_outcome)i), LOAD(cancels[i]));

    prom_family(o, "pg_tls_proxy_reloads_total", "counter", "Configuration reloads, by result.");
    prom_putf(o, "pg_tls_proxy_reloads_total{result=\"success\"} %" PRIuLEAST64 "\n",
              LOAD(reloads_ok));
    prom_putf(o, "pg_tls_proxy_reloads_total{result=\"failure\"} %" PRIuLEAST64 "\n",
              LOAD(reloads_failed));

    prom_family(o, "pg_tls_proxy_accept_pauses_total", "counter",
                "Times a listener stopped accepting for 200 ms, out of file descriptors.");
    prom_putf(o, "pg_tls_proxy_accept_pauses_total %" PRIuLEAST64 "\n", LOAD(accept_pauses));
}

/* The same certificates as seconds left (negative once expired): what an
 * alert compares with a threshold, without the query doing the arithmetic. */
static void render_cert_remaining(struct prom_out *o)
{
    int64_t now = (int64_t)time(NULL);
    prom_family(o, "pg_tls_proxy_certificate_expiry_seconds", "gauge",
                "Seconds until a loaded certificate expires (negative once expired).");
    pthread_mutex_lock(&cert_lock);
    for (size_t i = 0; i < ncerts; i++) {
        prom_puts(o, "pg_tls_proxy_certificate_expiry_seconds{which=\"");
        prom_label_value(o, certs[i].which);
        prom_puts(o, "\",subject=\"");
        prom_label_value(o, certs[i].subject);
        prom_putf(o, "\"} %" PRId64 "\n", certs[i].not_after - now);
    }
    pthread_mutex_unlock(&cert_lock);
    prom_family(o, "pg_tls_proxy_front_sni_mismatch_total", "counter",
                "Front handshakes whose SNI is not among the certificate's names.");
    prom_putf(o, "pg_tls_proxy_front_sni_mismatch_total %" PRIuLEAST64 "\n", LOAD(sni_mismatches));
}

static void render_certs(struct prom_out *o)
{
    prom_family(o, "pg_tls_proxy_certificate_expiry_timestamp_seconds", "gauge",
                "Unix time at which a loaded certificate expires (notAfter).");
    pthread_mutex_lock(&cert_lock);
    for (size_t i = 0; i < ncerts; i++) {
        prom_puts(o, "pg_tls_proxy_certificate_expiry_timestamp_seconds{which=\"");
        prom_label_value(o, certs[i].which);
        prom_puts(o, "\",subject=\"");
        prom_label_value(o, certs[i].subject);
        prom_putf(o, "\"} %" PRId64 "\n", certs[i].not_after);
    }
    pthread_mutex_unlock(&cert_lock);
    render_cert_remaining(o);
}

static void render_build(struct prom_out *o)
{
    prom_family(o, "pg_tls_proxy_build_info", "gauge",
                "Always 1; the labels say which build and libraries are running.");
    prom_puts(o, "pg_tls_proxy_build_info{version=\"");
    prom_label_value(o, PGTP_VERSION);
    prom_puts(o, "\",openssl=\"");
    prom_label_value(o, OpenSSL_version(OPENSSL_VERSION));
    prom_puts(o, "\",libuv=\"");
    prom_label_value(o, uv_version_string());
    prom_puts(o, "\"} 1\n");
}

static void render_logins(struct prom_out *o)
{
    prom_family(
        o, "pg_tls_proxy_login_failures_total", "counter",
        "Failed logins, by SQLSTATE and reason: upstream (the server refused: an "
        "ErrorResponse before ReadyForQuery), or the proxy's own check in --auth-mode "
        "password/scram (password, unknown_user, verifier_mismatch, method, server_signature, "
        "channel_binding, protocol, plaintext).");
    size_t n = atomic_load_explicit(&lf_used, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        prom_putf(o, "pg_tls_proxy_login_failures_total{sqlstate=\"%s\",reason=\"%s\",route=\"",
                  lf_table[i].sqlstate, lf_table[i].reason);
        prom_label_value(o, rslot(lf_table[i].route)->name);
        prom_putf(o, "\"} %" PRIuLEAST64 "\n", LOAD(lf_table[i].count));
    }

    prom_family(o, "pg_tls_proxy_readiness_probe_failures_total", "counter",
                "The proxy's own upstream probes (for /readyz) that failed, by route; not in "
                "pg_tls_proxy_handshake_failures_total.");
    size_t nr = atomic_load_explicit(&route_used, memory_order_acquire);
    for (size_t r = LOAD(route_tab[0].probe_failures) != 0 ? 0 : 1; r < nr; r++) {
        prom_puts(o, "pg_tls_proxy_readiness_probe_failures_total{route=\"");
        prom_label_value(o, route_tab[r].name);
        prom_putf(o, "\"} %" PRIuLEAST64 "\n", LOAD(route_tab[r].probe_failures));
    }
}

static struct process_stats frozen_ps;
static bool frozen;

void metrics_freeze_process_stats(const struct process_stats *ps)
{
    frozen = ps != NULL;
    if (ps != NULL)
        frozen_ps = *ps;
}

/* The process_* metrics every Prometheus client library exports. */
static void render_process(struct prom_out *o)
{
    struct process_stats ps;
    if (frozen)
        ps = frozen_ps;
    else
        process_stats_read(&ps);
    prom_family(o, "process_cpu_seconds_total", "counter",
                "Total user and system CPU time spent in seconds.");
    prom_putf(o, "process_cpu_seconds_total %.3f\n", ps.cpu_seconds);
    if (ps.open_fds >= 0) {
        prom_family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
        prom_putf(o, "process_open_fds %" PRId64 "\n", ps.open_fds);
    }
    if (ps.max_fds >= 0) {
        prom_family(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        prom_putf(o, "process_max_fds %" PRId64 "\n", ps.max_fds);
    }
    if (ps.rss_bytes >= 0) {
        prom_family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        prom_putf(o, "process_resident_memory_bytes %" PRId64 "\n", ps.rss_bytes);
        prom_family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        prom_putf(o, "process_virtual_memory_bytes %" PRId64 "\n", ps.virtual_bytes);
    }
    prom_family(o, "process_start_time_seconds", "gauge",
                "Start time of the process since unix epoch in seconds.");
    prom_putf(o, "process_start_time_seconds %" PRId64 "\n", ps.start_time);
}

size_t metrics_render(char *buf, size_t cap)
{
    struct prom_out o = {.buf = buf, .cap = cap, .len = 0};
    render_sessions(&o);
    render_handshakes(&o);
    render_logins(&o);
    render_upstream(&o);
    metrics_render_timings(&o); /* metrics_hist.c */
    render_events(&o);
    metrics_render_bridges(&o); /* metrics_bridge.c */
    render_certs(&o);
    render_build(&o);
    render_process(&o);
    /* Like snprintf: NUL-terminated whenever cap > 0, truncated if short. */
    if (cap > 0)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}
