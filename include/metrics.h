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
    OUT_COUNT
};

/* "closed", "error", ... (the label value); OUT_ERROR for unknown names. */
enum metric_outcome metrics_outcome_of(const char *name);
const char *metrics_outcome_name(enum metric_outcome o);

void metrics_session_opened(void);
void metrics_session_closed(enum metric_outcome o, uint64_t bytes_from_client,
                            uint64_t bytes_from_upstream);
/* Bytes relayed since the last report (open sessions report every second,
 * worker.c; a closing session reports the rest via metrics_session_closed). */
void metrics_bytes_relayed(uint64_t bytes_from_client, uint64_t bytes_from_upstream);
/* A login failed: the upstream refused it (its ErrorResponse before
 * ReadyForQuery; reason "upstream") or the proxy's own authentication did
 * (auth.c's reasons). sqlstate: "other" if not a valid SQLSTATE; reason:
 * [a-z_]+, else "other". */
void metrics_login_failed(const char *sqlstate, const char *reason);
/* A readiness probe's upstream handshake failed (not a client's: not a
 * handshake failure). */
void metrics_probe_failed(void);
/* leg: 0 front, 1 back; reason: a short label such as "verify", "name",
 * "refused_tls", "timeout", "unreachable", "alert", "protocol". */
void metrics_handshake_failed(int leg, const char *reason);
/* Back leg set-up (resolve -> verified TLS) took ms; also marks "an upstream
 * handshake succeeded now" for /readyz. */
void metrics_upstream_connected(double ms);
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
/* Unix seconds of the last upstream handshake success, 0 if never. */
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

#endif
