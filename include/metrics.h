/*
 * metrics.h - process-wide counters and gauges, updated from any worker
 * with relaxed atomics, rendered as Prometheus text for the admin endpoint.
 */
#ifndef PGTP_METRICS_H
#define PGTP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cancel.h"

/* Session outcomes, as logged in event=closed outcome=... */
enum metric_outcome {
    OUT_CLOSED = 0, /* normal end */
    OUT_ERROR,      /* socket or TLS error */
    OUT_REFUSED,    /* TLS required, pipelined bytes, ... */
    OUT_TIMEOUT,    /* start-up or idle timeout */
    OUT_UPSTREAM,   /* upstream unreachable / unverifiable */
    OUT_PROTOCOL,   /* protocol violation */
    OUT_DENIED,     /* not in --server-allow-from */
    OUT_CHANNEL_BINDING,
    OUT_CANCEL,       /* a cancel request's own connection */
    OUT_FRONT_TLS,    /* front handshake failed */
    OUT_TOO_MANY,     /* --max-connections */
    OUT_SHUTDOWN,     /* ended by proxy shutdown */
    OUT_LOGIN_FAILED, /* the upstream refused the login (ErrorResponse before ReadyForQuery) */
    OUT_TERMINATED,   /* ended by the admin endpoint (POST /sessions/ID/terminate) */
    OUT_COUNT
};

/* "closed", "error", ... (the label value); OUT_ERROR for unknown names. */
enum metric_outcome metrics_outcome_of(const char *name);
const char *metrics_outcome_name(enum metric_outcome o);

/*
 * Routes (the route="NAME" label). A route name gets a slot the first time
 * it is seen (metrics_route_slot, when a route is built) and keeps it for
 * the life of the process, so its counters never go backwards across
 * reloads; a removed route's series stay. Slot METRICS_ROUTE_NONE is
 * route="-": a session whose route was not decided yet (its front
 * handshake failed, it sent no StartupMessage, no route took it). At most
 * METRICS_ROUTE_SLOTS - 1 names get a slot of their own; later ones are
 * counted under "-" (logged once) so the exposition stays bounded.
 */
#define METRICS_ROUTE_NONE 0u
#define METRICS_ROUTE_SLOTS 256
#define METRICS_ROUTE_NAME_MAX 64 /* including the NUL (conffile.h: 63) */
/* The slot of a route name, registered if new. Any thread. NULL, "" and
 * "-" are METRICS_ROUTE_NONE. */
unsigned metrics_route_slot(const char *name);
/* The routes of the running configuration, in its order (start, reload):
 * /readyz answers for these. Replaces the previous list. */
void metrics_routes_current(const unsigned *slots, size_t n);
/* What /readyz reports about the i-th current route. False past the end. */
struct metrics_route_state {
    char name[METRICS_ROUTE_NAME_MAX];
    int64_t last_ok;      /* unix s of its last verified upstream handshake; 0 never */
    int64_t last_failure; /* unix s of its last failed upstream set-up; 0 never */
    char failure[256];    /* what that failure said (one line, no "pg-tls-proxy: ") */
};
bool metrics_route_state_at(size_t i, struct metrics_route_state *st);
/* The same for a current route by name; false if no current route has it. */
bool metrics_route_state_of(const char *name, struct metrics_route_state *st);
/* Unix seconds of the route's last verified upstream handshake, 0 if never. */
int64_t metrics_route_last_ok(unsigned slot);

/* A client session was accepted; its route is slot (METRICS_ROUTE_NONE
 * until decided). The active-sessions gauge counts it there. */
void metrics_session_opened(unsigned route);
/* Its route is decided: the gauge moves it from one slot to the other. */
void metrics_session_routed(unsigned from, unsigned to);
/* It ended with outcome o, counted under route (the slot of its decided
 * route, else METRICS_ROUTE_NONE), where it was counted as active. */
void metrics_session_closed(unsigned route, enum metric_outcome o, uint64_t bytes_from_client,
                            uint64_t bytes_from_upstream);
/* Bytes relayed since the last report (open sessions report every second,
 * worker.c; a closing session reports the rest via metrics_session_closed). */
void metrics_bytes_relayed(uint64_t bytes_from_client, uint64_t bytes_from_upstream);
/* A login failed: the upstream refused it (its ErrorResponse before
 * ReadyForQuery; reason "upstream") or the proxy's own authentication did
 * (auth.c's reasons). sqlstate: "other" if not a valid SQLSTATE; reason:
 * [a-z_]+, else "other". */
void metrics_login_failed(const char *sqlstate, const char *reason, unsigned route);
/* A readiness probe's upstream handshake failed (not a client's: not a
 * handshake failure). */
void metrics_probe_failed(unsigned route);
/* leg: 0 front, 1 back; reason: a short label such as "verify", "name",
 * "refused_tls", "timeout", "unreachable", "alert", "protocol"; route: the
 * route's slot (METRICS_ROUTE_NONE when not known, front leg). */
void metrics_handshake_failed(int leg, const char *reason, unsigned route);
/* Back leg set-up (resolve -> verified TLS) of route took ms; also marks
 * "an upstream handshake of this route succeeded now" for /readyz. */
void metrics_upstream_connected(unsigned route, double ms);
/* Back leg set-up of route failed (a client's or a probe's): /readyz shows
 * msg (sanitised to one printable line) while the route is not ready. */
void metrics_upstream_failed(unsigned route, const char *msg);
/* Timing histograms (metrics_hist.c), all routes together; ms from the
 * worker's loop clock. A client session whose legs were joined ended after
 * ms (accept to close). */
void metrics_session_duration(double ms);
/* A client's TLS handshake completed ms after the proxy answered its
 * SSLRequest (or read its direct-TLS ClientHello). */
void metrics_front_handshake(double ms);
/* An upstream TLS handshake (a client's or a probe's) completed and was
 * verified ms after it began (TLS alone: not the resolve or TCP connect). */
void metrics_back_handshake(double ms);
/* The --max-connections cap in force, as a gauge (start-up). */
void metrics_set_max_connections(unsigned n);
/* One cancel request and what became of it (result label: cancel_outcome_name). */
void metrics_cancel(enum cancel_outcome o);
void metrics_reload(bool ok);
/* A listener stopped accepting for a moment (out of descriptors, listener.c). */
void metrics_accept_paused(void);
/* Certificate expiry gauges (unix seconds), replaced on every (re)load. */
void metrics_set_cert_expiry(const char *which, const char *subject, int64_t not_after);
void metrics_clear_cert_expiry(void);
/* A front handshake whose SNI the certificate does not cover (sniwarn.c). */
void metrics_sni_mismatch(void);

int64_t metrics_active_sessions(void);
/* Unix seconds of the last upstream handshake success (any route), 0 if never. */
int64_t metrics_last_upstream_ok(void);

/* Unit tests: render these process_* values instead of reading them (so
 * that two renders are byte-identical); NULL reads them again. */
struct process_stats;
void metrics_freeze_process_stats(const struct process_stats *ps);

/*
 * Prometheus text exposition format (version 0.0.4): HELP and TYPE lines,
 * pg_tls_proxy_* names, label values escaped. Returns the length written
 * (output NUL-terminated), or the length needed if it does not fit in cap.
 */
size_t metrics_render(char *buf, size_t cap);
struct prom_out;
/* The timing histograms and the cap gauge (metrics_hist.c). */
void metrics_render_timings(struct prom_out *o);
/* Bridge mode's series (metrics_bridge.c; their updates are in bridgeint.h). */
void metrics_render_bridges(struct prom_out *o);

#endif
