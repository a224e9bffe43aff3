/*
 * conn.c - one client connection's lifecycle: creation and the refs that
 * keep it, joining the legs once both are ready, the single close path
 * (telling the client why, drain, linger, close), its timers, and the
 * audit lines (accepted, established, closed).
 *
 * The front leg's start-up is front.c's, the back leg's set-up dial.c's and
 * back.c's, the login login.c's, the data phase relay.c's, a cancel's
 * forward cancelfwd.c's.
 *
 * Owns struct conn and everything hanging off it. conn_free() runs only
 * when the last handle's close callback (or pending request) has released
 * the connection. Every callback returns at once when the connection is
 * closing; after any call that may end the connection, callers return.
 */
#include "conn.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admit.h"
#include "auth.h"
#include "bridgedial.h"
#include "cancelfwd.h"
#include "config.h"
#include "front.h"
#include "keymap.h"
#include "leg.h"
#include "log.h"
#include "metrics.h"
#include "pgassert.h"
#include "relay.h"
#include "dial.h"
#include "route.h"
#include "sessions.h"
#include "worker.h"

/* Connection ids are unique across workers, for the logs. */
static atomic_ullong next_conn_id;

bool conn_transition(struct conn *c, const char *machine, const char *from, const char *to,
                     bool legal, const char *why)
{
    if (legal) {
        log_debug("event=state conn=%llu machine=%s from=%s to=%s why=\"%s\"",
                  (unsigned long long)c->id, machine, from, to, why);
        return true;
    }
    /* A bug, not a peer's doing: this connection can no longer be trusted
     * to be in a state the code expects. End it (the client hears XX000)
     * rather than abort the process and every other session with it. */
    log_error("event=state_illegal conn=%llu machine=%s from=%s to=%s why=\"%s\" hint=\"a bug in "
              "pg-tls-proxy: please report this line\"",
              (unsigned long long)c->id, machine, from, to, why);
    conn_fail_front(c, "XX000", "internal",
                    "pg-tls-proxy: internal error (%s state %s -> %s); please report it", machine,
                    from, to);
    return false;
}

/* The route's name for the audit lines; "-" until it is decided. */
static const char *route_name(const struct conn *c)
{
    return c->route_decided && c->route != NULL ? c->route->name : "-";
}

/* event=accepted: written once the first packet shows this is not a
 * plaintext CancelRequest, or when the connection ends without one. */
void conn_log_accepted(struct conn *c)
{
    c->accept_logged = true;
    log_info("event=accepted conn=%llu front=%s%s%s%s%s route=\"%s\"", (unsigned long long)c->id,
             c->front_addr, c->lb_addr[0] ? " via=" : "", c->lb_addr,
             c->denied ? " denied=not_in_server_allow_from" : "",
             c->accept_note != NULL ? c->accept_note : "", route_name(c));
}

static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    uint64_t ms = uv_now(w->loop) - c->start_ms;

    if (front_holds_early_back(c)) /* its client never sent a StartupMessage */
        admit_early_end(&admit_early_legs, (long long)time(NULL), true);
    cancelfwd_closed(c);
    /* A plaintext CancelRequest is no session: it has no audit lines (a
     * flood of them would be a flood of lines); cancel.c counts them. */
    /* The audit line says "cancel" for every cancel; cancel_closed says how it went. */
    const char *outcome = c->outcome ? c->outcome : "closed";
    if (strncmp(outcome, "cancel_", 7) == 0)
        outcome = "cancel";
    /* Probes (probe.c) are no clients' sessions either: not counted. */
    if (c->counted && !c->quiet) {
        if (!c->accept_logged)
            conn_log_accepted(c);
        /* The audit line: everything about the session in one place. */
        SSL *ssl = leg_ssl(&c->front);
        const char *sni = ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
        char sq[300];
        /* A refused login: the server's own SQLSTATE and severity. */
        char login[64] = "";
        if (c->login_sqlstate[0] != '\0')
            snprintf(login, sizeof(login), " sqlstate=%s severity=\"%s\"", c->login_sqlstate,
                     c->login_severity);
        log_info("event=closed conn=%llu front=%s%s%s sni=\"%s\" user=\"%s\" database=\"%s\" "
                 "application_name=\"%s\" route=\"%s\" upstream=%s front_tls=%s front_cipher=%s "
                 "back_tls=%s back_cipher=%s bytes_from_client=%llu bytes_from_upstream=%llu "
                 "duration_ms=%llu outcome=%s%s reason=\"%s\"",
                 (unsigned long long)c->id, c->front_addr, c->lb_addr[0] ? " via=" : "", c->lb_addr,
                 sni != NULL ? log_escape(sni, sq, sizeof(sq)) : "", c->info.user, c->info.database,
                 c->info.application_name, route_name(c), c->back_addr,
                 c->front.tls_up ? leg_tls_version(&c->front) : "none",
                 c->front.tls_up ? leg_tls_cipher(&c->front) : "none",
                 c->back.tls_up ? leg_tls_version(&c->back) : "none",
                 c->back.tls_up ? leg_tls_cipher(&c->back) : "none",
                 (unsigned long long)c->front.bytes_in, (unsigned long long)c->back.bytes_in,
                 (unsigned long long)ms, outcome, login, c->reason != NULL ? c->reason : "");
    }
    dial_free(c);
    /* The bridge thread counts the streams a connector carries (new
     * sessions go to the one with the fewest): this one is done. */
    if (c->bridge_stream != 0)
        bridgedial_link->forget(c->bridge_stream);
    keymap_remove(c->key);
    login_free(c);
    route_unref(c->route);
    route_table_unref(c->table);
    leg_free(&c->front);
    leg_free(&c->back);
    free(c->startup);
    free(c->err_msg);
    free(c->reason);
    free(c->pp_src);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (w->conns == c)
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    if (c->counted) {
        admit_client_close();
        /* Sessions that reached the upstream: refusals would swamp the low buckets. */
        if (c->join_ms != 0)
            metrics_session_duration((double)ms);
        metrics_session_closed(c->mslot, metrics_outcome_of(c->outcome ? c->outcome : "closed"),
                               c->front.bytes_in - c->reported_from_client,
                               c->back.bytes_in - c->reported_from_upstream);
    }
    free(c);
    worker_conn_gone(w);
}

void conn_hold(struct conn *c)
{
    c->refs++;
}

void conn_release(struct conn *c)
{
    PGTP_ASSERT(c->refs > 0); /* a release without its hold: freed memory next */
    if (--c->refs == 0 && c->phase == PHASE_CLOSING)
        conn_free(c);
}

static void timer_closed_cb(uv_handle_t *h)
{
    conn_release(h->data);
}

void conn_close_leg(struct leg *l)
{
    leg_close(l); /* LEG_CLOSED releases c */
}

struct leg *conn_peer(struct leg *l)
{
    struct conn *c = l->conn;
    return l == &c->front ? &c->back : &c->front;
}

const char *conn_leg_name(const struct leg *l)
{
    return l == &l->conn->front ? "front" : "back";
}

/*
 * The one callback of both legs (leg.h): lifecycle events are handled
 * here, bytes and TLS progress go to the leg's machine (front.c, back.c),
 * which hands the data phase to relay.c.
 */
static void leg_event(struct leg *l, enum leg_event ev, const uint8_t *buf, size_t len)
{
    struct conn *c = l->conn;

    switch (ev) {
    case LEG_CLOSED:
        if (l == &c->back)
            dial_on_close(c); /* may try the next upstream address */
        conn_release(c);
        return;
    case LEG_SHUT:
        relay_on_shut(c);
        return;
    case LEG_DRAINED:
        relay_on_written(c, l);
        return;
    case LEG_WRITE_FAILED:
        conn_leg_lost(l, (const char *)buf);
        if (c->phase != PHASE_CLOSING && l == &c->front)
            conn_close(c); /* the client is gone; nothing more can be said */
        else
            relay_on_write_failed(c, l, (const char *)buf); /* draining: go on without it */
        return;
    default:
        break;
    }
    if (c->phase != PHASE_OPEN) {
        /* Lingering: the client's bytes are dropped (leg_read_discard);
         * its EOF ends it. */
        if ((ev == LEG_EOF || ev == LEG_ERROR) && c->phase == PHASE_LINGER)
            conn_close(c);
        return;
    }
    switch (ev) {
    case LEG_EOF:
        conn_leg_lost(l, "closed the connection");
        return;
    case LEG_ERROR:
        conn_leg_lost(l, (const char *)buf);
        return;
    default:
        break;
    }
    c->last_active = l->last_read; /* --idle-timeout */
    if (l == &c->front)
        front_on_event(c, ev, buf, len);
    else
        back_on_event(c, ev, buf, len);
}

/*
 * A leg's socket failed or reached EOF. Before relaying, a back failure is
 * one the client must hear about; anything else ends the connection.
 */
void conn_leg_lost(struct leg *l, const char *what)
{
    struct conn *c = l->conn;
    if (c->phase != PHASE_OPEN)
        return;
    if (l == &c->back && back_pending(c)) {
        back_lost(c, what);
        return;
    }
    /* The upstream went away during the client's login (a restart or a
     * crash between our TLS set-up and its ReadyForQuery): everything the
     * watch passed on was whole messages, so the client can still be told
     * why, unless the server has already said so itself. */
    if (l == &c->back && l->tp == &leg_bridge_transport) {
        bridgedial_lost(c, what);
        return;
    }
    if (l == &c->back && login_watching(c) && !c->back_error_seen) {
        conn_fail_front(c, "08006", "upstream_error",
                        "pg-tls-proxy: the upstream %s went away during the login "
                        "(%s) — is the database restarting? Connect again",
                        c->back_addr, what);
        return;
    }
    conn_end(c, strncmp(what, "closed", 6) == 0 ? "closed" : "error", "%s %s",
             l == &c->front ? "front" : "back", what);
}

/* The one way out: close every handle; memory goes in the last callback. */
void conn_close(struct conn *c)
{
    if (c->phase == PHASE_CLOSING)
        return;
    c->phase = PHASE_CLOSING;
    if (c->outcome == NULL)
        c->outcome = "closed";
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, timer_closed_cb);
    conn_close_leg(&c->front);
    conn_close_leg(&c->back);
}

static void set_reason(struct conn *c, const char *outcome, const char *fmt, va_list ap)
{
    if (c->outcome != NULL)
        return; /* the first cause is the one worth reporting */
    c->outcome = outcome;
    char raw[CONN_REASON_MAX], escaped[CONN_REASON_MAX];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    log_escape(raw, escaped, sizeof(escaped));
    c->reason = strdup(escaped); /* NULL (out of memory): logged as "" */
}

void conn_end(struct conn *c, const char *outcome, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_reason(c, outcome, fmt, ap);
    va_end(ap);
    if (c->phase != PHASE_OPEN)
        return;
    if (cancelfwd_midway(c)) {
        cancelfwd_park(c); /* the back leg's owner ends it (struct back_ops) */
        return;
    }
    c->phase = PHASE_DRAIN;
    if (back_dialing(c)) {
        /* Not connected yet: the upstream has seen no byte, so closing now
         * costs it nothing, and a shutdown queued on a libuv stream that
         * is still connecting never runs (the drain would wait its 5 s). */
        conn_close_leg(&c->back);
    }
    struct leg *legs[2] = {&c->front, &c->back};
    for (int i = 0; i < 2; i++) {
        leg_read_stop(legs[i]);
        if (legs[i]->tls_up && legs[i]->open) {
            if (leg_tls_close(legs[i]) < 0) {
                conn_close(c);
                return;
            }
        }
    }
    conn_arm_timer(c);
    relay_check_drained(c);
}

/*
 * Tell the client why, as a FATAL ErrorResponse, then end. Sent only at a
 * message boundary: before relaying, or during the start-up watch (which
 * forwards whole messages). Inside TLS once the front handshake is done;
 * in plaintext only on a plaintext session (a plaintext StartupMessage, or
 * sidecar mode) and never in reply to an SSLRequest (CVE-2024-10977:
 * clients must not trust unencrypted errors there).
 */
static void front_error_at(struct conn *c, const char *sqlstate, const char *outcome,
                           const char *hint, const char *msg, bool boundary)
{
    uint8_t pkt[2048];
    char q[1200];

    log_warn("event=error conn=%llu front=%s sqlstate=%s message=\"%s\"", (unsigned long long)c->id,
             c->front_addr, sqlstate, log_escape(msg, q, sizeof(q)));
    if (c->phase == PHASE_OPEN && c->front.open && boundary) {
        size_t n = pg_build_error(pkt, sizeof(pkt), "FATAL", sqlstate, msg, hint);
        if (n > 0 && (c->fs == FRONT_FIRST || c->front.plain)) {
            leg_send(&c->front, pkt, n);
        } else if (n > 0 && c->front.tls_up && front_past_handshake(c)) {
            if (leg_write_plain(&c->front, pkt, n) == 0)
                leg_flush(&c->front);
        }
    }
    conn_end(c, outcome, "%s: %s", sqlstate, msg);
}

static void front_error(struct conn *c, const char *sqlstate, const char *outcome, const char *hint,
                        const char *msg)
{
    front_error_at(c, sqlstate, outcome, hint, msg, !front_relaying(c) || login_watching(c));
}

void conn_fail_front_between(struct conn *c, const char *sqlstate, const char *outcome,
                             const char *msg, const char *hint)
{
    front_error_at(c, sqlstate, outcome, hint, msg, true);
}

void conn_fail_front_hint(struct conn *c, const char *sqlstate, const char *outcome,
                          const char *hint, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    front_error(c, sqlstate, outcome, hint, msg);
}

static void timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    uint64_t now = uv_now(c->w->loop);

    if (c->phase == PHASE_DRAIN || c->phase == PHASE_LINGER) {
        conn_close(c);
        return;
    }
    if (c->phase != PHASE_OPEN)
        return;
    if (back_setting_up(c) && now >= c->back_deadline) {
        back_timeout(c);
        if (c->phase != PHASE_OPEN)
            return;
    }
    if (relay_stall_timeout(c, now))
        return;
    if (c->kill_pending && now >= c->kill_deadline) {
        sessions_kill_timeout(c);
        return;
    }
    if (front_relaying(c) && c->buffers_held && now >= c->last_active + IDLE_RELEASE_MS)
        relay_release_idle(c);
    uint64_t idle_end = relay_idle_deadline(c);
    if (idle_end != UINT64_MAX && now >= idle_end) {
        log_info("event=idle_timeout conn=%llu front=%s idle_s=%u", (unsigned long long)c->id,
                 c->front_addr, c->w->rt->idle_timeout_ms / 1000);
        conn_end(c, "timeout", "idle for %u s (--idle-timeout)", c->w->rt->idle_timeout_ms / 1000);
        return;
    }
    /* A probe (no client) has no start-up deadline: UINT64_MAX. */
    if (!c->front_done && front_starting(c) && now >= c->front_deadline) {
        if (c->fs == FRONT_STARTUP)
            conn_fail_front(c, "08P01", "timeout",
                            "pg-tls-proxy: timed out after %u s waiting for the start-up packet",
                            c->w->rt->startup_timeout_ms / 1000);
        else
            conn_end(c, "timeout", "no start-up within %u ms (state %s)",
                     c->w->rt->startup_timeout_ms, front_state_name(c->fs));
        return;
    }
    conn_arm_timer(c);
}

/* Arm the timer for the nearest deadline that still applies. */
void conn_arm_timer(struct conn *c)
{
    uint64_t now = uv_now(c->w->loop), when = UINT64_MAX;

    if (c->phase == PHASE_CLOSING)
        return;
    if (c->phase == PHASE_DRAIN || c->phase == PHASE_LINGER) {
        if (!c->draining_armed) {
            c->draining_armed = true;
            uv_timer_start(&c->timer, timer_cb, DRAIN_TIMEOUT_MS, 0);
        }
        return;
    }
    if (!c->front_done && front_starting(c))
        when = c->front_deadline;
    if (back_setting_up(c) && c->back_deadline < when)
        when = c->back_deadline;
    uint64_t idle_end = relay_idle_deadline(c);
    if (idle_end < when)
        when = idle_end;
    if (front_relaying(c) && login_watching(c) && c->tracking && idle_end == UINT64_MAX &&
        now + c->w->rt->idle_timeout_ms < when) /* login: the client spoke last; look again */
        when = now + c->w->rt->idle_timeout_ms;
    if (front_relaying(c) && c->buffers_held && c->last_active + IDLE_RELEASE_MS < when)
        when = c->last_active + IDLE_RELEASE_MS;
    if (c->kill_pending && c->kill_deadline < when)
        when = c->kill_deadline;
    unsigned stall = c->w->rt->write_stall_ms;
    if (stall > 0 && c->front.stall_since != 0 && c->front.stall_since + stall < when)
        when = c->front.stall_since + stall;
    if (when == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, timer_cb, when > now ? when - now : 0, 0);
}

struct conn *conn_new(struct worker *w)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->w = w;
    c->id = atomic_fetch_add_explicit(&next_conn_id, 1, memory_order_relaxed) + 1;
    leg_init(&c->front, c, w, leg_event);
    leg_init(&c->back, c, w, leg_event);
    uv_timer_init(w->loop, &c->timer);
    c->timer.data = c;
    c->refs = 1; /* the timer */
    /* Decided now when there is only the default route; else by front.c
     * once the client has said where it goes (SNI, database, port). Until
     * then the route held is the default (or first) one. */
    c->table = route_table_ref(w->routes);
    c->route = route_ref(route_table_pick(c->table));
    c->route_decided = route_table_single(c->table);
    c->sni.t = c->table;
    c->start_ms = uv_now(w->loop);
    c->front_deadline =
        w->rt->startup_timeout_ms ? c->start_ms + w->rt->startup_timeout_ms : UINT64_MAX;
    snprintf(c->front_addr, sizeof(c->front_addr), "-");
    snprintf(c->back_addr, sizeof(c->back_addr), "-");
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    return c;
}

/*
 * Logged when the login is over (the upstream's ReadyForQuery, login.c),
 * not when the legs join: a wrong password or an unknown database is then
 * one event=closed outcome=login_failed line, never "established" first.
 * setup_ms runs from accept to the join, login_ms from the join to here.
 */
void conn_log_established(struct conn *c, bool verified)
{
    if (c->established_logged)
        return;
    c->established_logged = true;
    uint64_t now = uv_now(c->w->loop);
    log_info("event=established conn=%llu front=%s upstream=%s user=\"%s\" database=\"%s\" "
             "application_name=\"%s\" route=\"%s\" front_tls=%s front_cipher=%s back_tls=%s "
             "back_cipher=%s "
             "setup_ms=%llu login_ms=%llu auth=%s%s",
             (unsigned long long)c->id, c->front_addr, c->back_addr, c->info.user, c->info.database,
             c->info.application_name, route_name(c),
             c->front.plain ? "none" : leg_tls_version(&c->front),
             c->front.plain ? "none" : leg_tls_cipher(&c->front), leg_tls_version(&c->back),
             leg_tls_cipher(&c->back), (unsigned long long)(c->join_ms - c->start_ms),
             (unsigned long long)(now - c->join_ms),
             auth_mode_name(c->route != NULL ? c->route->auth_mode : AUTH_PASSTHROUGH),
             verified ? "" : " login=unverified");
}

void conn_join(struct conn *c)
{
    if (c->fs != FRONT_WAIT || c->phase != PHASE_OPEN)
        return;
    if (front_refuse(c))
        return;
    if (c->bs == BACK_FAILED) {
        conn_fail_front(c, c->err_state, "upstream_error", "%s", c->err_msg);
        return;
    }
    if (c->bs != BACK_READY)
        return;
    c->front.bytes_in += c->startup_len;
    /* In scram auth mode the StartupMessage waits for the client's proof
     * (auth.c); with any auth mode auth.c reads its user name first. */
    if (!auth_holds_startup(c) && relay_emit(c, &c->back, c->startup, c->startup_len) < 0)
        return;
    if (!auth_active(c)) {
        free(c->startup);
        c->startup = NULL;
        c->startup_len = 0;
    }
    dial_free(c);
    if (!front_set_state(c, FRONT_RELAY, "joined") || !back_set_state(c, BACK_RELAY, "joined") ||
        !login_start(c))
        return;
    c->tracking = c->w->rt->idle_timeout_ms > 0;
    /* With the admin endpoint (POST /sessions/ID/terminate: sessions.c) or
     * through a bridge (its loss: bridgedial.c), the session frames the
     * server's messages after the login, so that a FATAL can go in between
     * two of them. It costs a few ns per message (README, Performance). */
    c->framing = c->back.tp == &leg_bridge_transport ||
                 (c->w->rt->cfg != NULL && c->w->rt->cfg->admin_address != NULL);
    c->last_active = uv_now(c->w->loop);
    c->front.last_read = c->back.last_read = c->last_active;
    conn_arm_timer(c);
    c->join_ms = c->last_active;
    log_debug("event=login_started conn=%llu front=%s upstream=%s", (unsigned long long)c->id,
              c->front_addr, c->back_addr);
    /* Drain what OpenSSL already holds on either side, then read both. */
    if (!c->front.plain)
        relay_pump(c, &c->front);
    if (c->phase != PHASE_OPEN)
        return;
    relay_pump(c, &c->back);
    if (c->phase != PHASE_OPEN)
        return;
    if (leg_read_start(&c->front) < 0 || leg_read_start(&c->back) < 0)
        conn_close(c);
}

static void session_back_ready(struct conn *c)
{
    if (c->front_done) {
        /* The early leg's client went away: a clean close_notify now. */
        conn_end(c, "closed", "client done before its start-up packet");
        return;
    }
    conn_join(c);
}

static void session_back_failed(struct conn *c, const char *sqlstate, const char *label,
                                const char *msg)
{
    (void)label;
    if (c->front_done) {
        conn_end(c, "closed", "client done before its start-up packet");
        return;
    }
    free(c->err_msg);
    c->err_msg = strdup(msg);
    c->err_state = sqlstate;
    if (c->err_msg == NULL) {
        conn_close(c);
        return;
    }
    conn_arm_timer(c);
    conn_join(c);
}

const struct back_ops conn_session_back = {
    .ready = session_back_ready,
    .failed = session_back_failed,
};

/*
 * The proxy is stopping. now: close at once (second signal). Otherwise
 * (shutdown timeout): a client that can still be told at a message boundary
 * gets FATAL 57P01; a relaying session is ended with close_notify.
 */
void conn_shutdown(struct conn *c, bool now)
{
    if (now) {
        conn_end(c, "shutdown", "proxy stopped");
        conn_close(c);
        return;
    }
    bool can_tell = c->front.open && (!front_relaying(c) || login_watching(c)) &&
                    (c->front.tls_up || c->front.plain);
    if (can_tell && c->cancel == NULL)
        conn_fail_front(c, "57P01", "shutdown",
                        "pg-tls-proxy: terminating connection due to proxy shutdown");
    else
        conn_end(c, "shutdown", "proxy shutdown timeout");
}
