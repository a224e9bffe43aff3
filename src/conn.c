/*
 * conn.c - one client connection: accept, the front leg's start-up
 * (SSLRequest, TLS, StartupMessage), joining the legs, and the single close
 * path.
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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cancel.h"
#include "keymap.h"
#include "log.h"
#include "metrics.h"
#include "proxyproto.h"
#include "sniwarn.h"
#include "tlsctx.h"
#include "leg.h"
#include "relay.h"
#include "upstream.h"
#include "watch.h"
#include "worker.h"

/* Connection ids are unique across workers, for the logs. */
static atomic_ullong next_conn_id;
/* Client connections open now, all workers (--max-connections). */
static atomic_uint active_clients;
/*
 * Upstream legs opened early, before the client's StartupMessage, so that
 * the two handshakes overlap. Each costs the database a backend process and
 * a TLS handshake on behalf of a client that has proved nothing but an
 * SSLRequest (tests/integration/abuse.sh): 1,000 clients sending half a
 * ClientHello held that many upstream connections for the whole handshake
 * timeout, and 10,000 sending an SSLRequest and then junk made PostgreSQL
 * fork 400 backends a second; either starved real clients of the database.
 * So at most EARLY_BACK_MAX are open at once (all workers), and once more
 * than EARLY_WASTE_MAX of them were wasted within about two seconds (their
 * client went away before its StartupMessage) no more are started early.
 * Real clients reach their StartupMessage, so a burst of them keeps the
 * overlap; past either bound a client's upstream leg waits for its
 * StartupMessage, which costs it the upstream's set-up time, nothing more.
 */
#define EARLY_BACK_MAX 64u
#define EARLY_WASTE_MAX 32u
static atomic_uint early_backs;
static atomic_llong waste_second; /* time() of the current one-second window */
static atomic_uint waste_now;     /* early legs wasted in that window */
static atomic_uint waste_before;  /* ... and in the window before it */

/* Roll the waste window forward to now. */
static void waste_roll(void)
{
    long long now = (long long)time(NULL), then = atomic_load(&waste_second);
    if (now == then || !atomic_compare_exchange_strong(&waste_second, &then, now))
        return;
    unsigned last = atomic_exchange(&waste_now, 0);
    atomic_store(&waste_before, now == then + 1 ? last : 0);
}

/*
 * Descriptors can run out before anything else (a low ulimit -n). At the
 * very limit no client can be accepted (listener.c pauses: clients wait in
 * the listen queue), and a client's upstream leg could not be opened anyway.
 * So once the table is nearly full, a new client is still accepted but
 * refused with 53300 after its handshake, never connected upstream: it is
 * told why, and the reserve keeps room for those refusals. An upstream leg
 * may not take a reserved descriptor either (upstream.c), or sessions
 * would fill the table and leave nothing to refuse with. Descriptors are
 * allocated lowest first: an accepted fd of N means at least N+1 are open.
 */
#define FD_RESERVE_MIN 8
#define FD_RESERVE_MAX 1024
static atomic_llong fd_warned_at; /* time() of the last fd_limit line */
static atomic_uint fd_refused;    /* refused since then */

unsigned long long conn_fd_reserve(unsigned long long limit)
{
    unsigned long long reserve = limit / 16;
    if (reserve < FD_RESERVE_MIN)
        reserve = FD_RESERVE_MIN;
    if (reserve > FD_RESERVE_MAX)
        reserve = FD_RESERVE_MAX;
    return reserve;
}

bool conn_fd_nearly_out(int fd, unsigned long long *limit)
{
    struct rlimit rl;
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return false;
    *limit = (unsigned long long)rl.rlim_cur;
    return (unsigned long long)fd + conn_fd_reserve(*limit) >= *limit;
}

/* One line a second at most, however many clients are refused. */
void conn_fd_limit_log(int fd, unsigned long long limit)
{
    atomic_fetch_add_explicit(&fd_refused, 1, memory_order_relaxed);
    long long now = (long long)time(NULL), last = atomic_load(&fd_warned_at);
    if (now == last || !atomic_compare_exchange_strong(&fd_warned_at, &last, now))
        return;
    unsigned n = atomic_exchange(&fd_refused, 0);
    log_warn("event=fd_limit open_fds=%d limit=%llu refused=%u reason=\"out of file descriptors: "
             "new clients are refused with 53300\" hint=\"raise the open-files limit (ulimit -n, "
             "systemd LimitNOFILE=) or lower --max-connections\"",
             fd + 1, limit, n);
}

/*
 * A client accepted nearly out of descriptors is refused only if they are
 * still nearly out when its StartupMessage arrives: others may have closed
 * meanwhile (the lowest free descriptor, which dup returns, says so).
 */
static void fd_recheck(struct conn *c)
{
    int fd = -1;
    unsigned long long limit = 0;
    if (!c->too_many || c->err_msg == NULL || uv_fileno((uv_handle_t *)&c->front.tcp, &fd) != 0)
        return;
    int probe = dup(fd);
    if (probe < 0)
        return;
    bool still = conn_fd_nearly_out(probe, &limit);
    close(probe);
    if (still)
        return;
    log_debug("event=fd_limit_cleared conn=%llu", (unsigned long long)c->id);
    free(c->err_msg);
    c->err_msg = NULL;
    c->too_many = false;
}

/* Does c hold one of the early_backs? (Cancel and probe connections have
 * no client start-up; a sidecar session starts its leg after it.) */
static bool holds_early_back(const struct conn *c)
{
    return !c->probe && c->cancel_pkt == NULL && c->fs < FRONT_WAIT && c->bs != BACK_IDLE;
}

/* Open the upstream leg now if an early slot is free; else it waits for
 * the StartupMessage (front_startup). */
static void back_start_early(struct conn *c)
{
    waste_roll();
    unsigned wasted = atomic_load(&waste_now) + atomic_load(&waste_before);
    if (wasted > EARLY_WASTE_MAX) {
        log_debug(
            "event=upstream_deferred conn=%llu reason=\"%u early upstream legs wasted in 2 s\"",
            (unsigned long long)c->id, wasted);
        return;
    }
    if (atomic_fetch_add_explicit(&early_backs, 1, memory_order_relaxed) >= EARLY_BACK_MAX) {
        atomic_fetch_sub_explicit(&early_backs, 1, memory_order_relaxed);
        log_debug("event=upstream_deferred conn=%llu reason=\"%u early upstream legs open\"",
                  (unsigned long long)c->id, EARLY_BACK_MAX);
        return;
    }
    back_start(c); /* leaves bs != BACK_IDLE, even when it fails */
}

/* event=accepted: written once the first packet shows this is not a
 * plaintext CancelRequest, or when the connection ends without one. */
static void log_accepted(struct conn *c)
{
    c->accept_logged = true;
    log_info("event=accepted conn=%llu front=%s%s%s%s%s", (unsigned long long)c->id, c->front_addr,
             c->lb_addr[0] ? " via=" : "", c->lb_addr,
             c->denied ? " denied=not_in_server_allow_from" : "",
             c->accept_note != NULL ? c->accept_note : "");
}

/* The forward of c's cancel is over: its key may be forwarded again (at
 * once if it was not sent, after CANCEL_COALESCE_MS if it was). */
static void cancel_key_end(struct conn *c, bool sent)
{
    uint32_t pid;
    uint8_t key[PG_CANCEL_KEY_MAX];
    size_t keylen;
    c->cancel_marked = false;
    if (c->cancel_pkt != NULL &&
        pg_parse_cancel(c->cancel_pkt, c->cancel_len, &pid, key, &keylen) == 0)
        keymap_cancel_end(pid, key, keylen, cancel_now_ms(), sent);
    OPENSSL_cleanse(key, sizeof(key));
}

static void conn_free(struct conn *c)
{
    struct worker *w = c->w;
    uint64_t ms = uv_now(w->loop) - c->start_ms;

    if (holds_early_back(c)) { /* its client never sent a StartupMessage */
        atomic_fetch_sub_explicit(&early_backs, 1, memory_order_relaxed);
        waste_roll();
        atomic_fetch_add_explicit(&waste_now, 1, memory_order_relaxed);
    }

    if (c->cancel_marked)
        cancel_key_end(c, false);
    if (c->cancel_slot)
        cancel_slot_put();
    if (c->cancel_pkt != NULL)
        log_info("event=cancel_closed conn=%llu upstream=%s outcome=%s reason=\"%s\"",
                 (unsigned long long)c->id, c->back_addr, c->outcome ? c->outcome : "closed",
                 c->reason);
    /* A plaintext CancelRequest is no session: it has no audit lines (a
     * flood of them would be a flood of lines); cancel.c counts them. */
    /* The audit line says "cancel" for every cancel; cancel_closed says how it went. */
    const char *outcome = c->outcome ? c->outcome : "closed";
    if (strncmp(outcome, "cancel_", 7) == 0)
        outcome = "cancel";
    if (!c->probe && !c->plain_cancel) {
        if (!c->accept_logged)
            log_accepted(c);
        /* The audit line: everything about the session in one place. */
        const char *sni = c->front.tls.ssl != NULL
                              ? SSL_get_servername(c->front.tls.ssl, TLSEXT_NAMETYPE_host_name)
                              : NULL;
        char sq[300];
        /* A refused login: the server's own SQLSTATE and severity. */
        char login[64] = "";
        if (c->login_sqlstate[0] != '\0')
            snprintf(login, sizeof(login), " sqlstate=%s severity=\"%s\"", c->login_sqlstate,
                     c->login_severity);
        log_info("event=closed conn=%llu front=%s%s%s sni=\"%s\" user=\"%s\" database=\"%s\" "
                 "application_name=\"%s\" upstream=%s front_tls=%s front_cipher=%s "
                 "back_tls=%s back_cipher=%s bytes_from_client=%llu bytes_from_upstream=%llu "
                 "duration_ms=%llu outcome=%s%s reason=\"%s\"",
                 (unsigned long long)c->id, c->front_addr, c->lb_addr[0] ? " via=" : "", c->lb_addr,
                 sni != NULL ? log_escape(sni, sq, sizeof(sq)) : "", c->info.user, c->info.database,
                 c->info.application_name, c->back_addr,
                 c->front.tls_up ? tlsio_version(&c->front.tls) : "none",
                 c->front.tls_up ? tlsio_cipher(&c->front.tls) : "none",
                 c->back.tls_up ? tlsio_version(&c->back.tls) : "none",
                 c->back.tls_up ? tlsio_cipher(&c->back.tls) : "none",
                 (unsigned long long)c->front.bytes_in, (unsigned long long)c->back.bytes_in,
                 (unsigned long long)ms, outcome, login, c->reason);
    }
    back_setup_free(c);
    keymap_remove(c->key);
    watch_free(c);
    if (c->cancel_pkt != NULL)
        OPENSSL_cleanse(c->cancel_pkt, c->cancel_len);
    free(c->cancel_pkt);
    tlsio_free(&c->front.tls);
    tlsio_free(&c->back.tls);
    free(c->startup);
    free(c->err_msg);
    free(c->pp_src);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (w->conns == c)
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->nconns--;
    if (c->counted) {
        atomic_fetch_sub_explicit(&active_clients, 1, memory_order_relaxed);
        metrics_session_closed(metrics_outcome_of(c->outcome ? c->outcome : "closed"),
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
    if (--c->refs == 0 && c->phase == PHASE_CLOSING)
        conn_free(c);
}

static void timer_closed_cb(uv_handle_t *h)
{
    conn_release(h->data);
}

static void leg_closed_cb(uv_handle_t *h)
{
    struct leg *l = h->data;
    struct conn *c = l->conn;
    l->open = false;
    l->reading = false;
    if (l == &c->back)
        back_on_close(c); /* may try the next upstream address */
    conn_release(c);
}

void conn_close_leg(struct leg *l)
{
    if (l->open && !uv_is_closing((uv_handle_t *)&l->tcp)) {
        l->tcp.data = l;
        uv_close((uv_handle_t *)&l->tcp, leg_closed_cb);
    }
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
    if (l == &c->back && c->bs > BACK_IDLE && c->bs < BACK_RELAY && c->bs != BACK_FAILED) {
        char msg[512];
        snprintf(msg, sizeof(msg),
                 "pg-tls-proxy: upstream %s closed the connection during TLS set-up (%s) — %s",
                 c->back_addr, what,
                 c->w->rt->cfg->back_direct_tls
                     ? "--client-direct-tls needs PostgreSQL 17 or newer upstream; remove it "
                       "for older servers"
                     : "see the database server's log");
        conn_back_failed(c, "08001", msg);
        return;
    }
    /* The upstream went away during the client's login (a restart or a
     * crash between our TLS set-up and its ReadyForQuery): everything the
     * watch passed on was whole messages, so the client can still be told
     * why, unless the server has already said so itself. */
    if (l == &c->back && c->watching && !c->back_error_seen) {
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
    char raw[sizeof(c->reason)];
    vsnprintf(raw, sizeof(raw), fmt, ap);
    log_escape(raw, c->reason, sizeof(c->reason));
}

/*
 * Is the back leg part-way through its set-up with the upstream, such that
 * closing it now would cut a TLS handshake off? (From the SSLRequest on;
 * before, the upstream has seen no byte and logs nothing.) A leg that will
 * carry a cancel is waited for from the start.
 */
static bool back_midway(const struct conn *c)
{
    if (c->probe || c->phase != PHASE_OPEN)
        return false;
    if (c->bs == BACK_SSLREQ || c->bs == BACK_TLS)
        return true;
    return c->cancel_pkt != NULL && (c->bs == BACK_RESOLVE || c->bs == BACK_CONNECT);
}

/* Without --client-connect-timeout, a back leg kept for a client that is
 * done still ends: DRAIN_TIMEOUT_MS at most. */
static void back_deadline_cap(struct conn *c)
{
    uint64_t cap = uv_now(c->w->loop) + DRAIN_TIMEOUT_MS;
    if (c->w->rt->connect_timeout_ms == 0 && c->back_deadline > cap) {
        c->back_deadline = cap;
        conn_arm_timer(c);
    }
}

/*
 * The client is done but the back leg is midway: stop reading the client
 * and let the back leg finish (bounded by --client-connect-timeout, or
 * DRAIN_TIMEOUT_MS without one). Whatever is queued for the client still
 * goes out; its close comes with the back leg's.
 */
static void front_park(struct conn *c)
{
    if (c->front_done)
        return;
    c->front_done = true;
    leg_read_stop(&c->front);
    back_deadline_cap(c);
    log_debug("event=upstream_finish conn=%llu upstream=%s reason=\"client done during the "
              "upstream TLS set-up: finishing it, then close_notify\"",
              (unsigned long long)c->id, c->back_addr);
    conn_arm_timer(c);
}

/* Flush what is queued, send close_notify and FIN, then close. */
void conn_end(struct conn *c, const char *outcome, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_reason(c, outcome, fmt, ap);
    va_end(ap);
    if (c->phase != PHASE_OPEN)
        return;
    if (back_midway(c)) {
        front_park(c); /* conn_back_ready / conn_back_failed end it */
        return;
    }
    c->phase = PHASE_DRAIN;
    if (c->bs == BACK_RESOLVE || c->bs == BACK_CONNECT) {
        /* Not connected yet: the upstream has seen no byte, so closing now
         * costs it nothing, and a shutdown queued on a libuv stream that
         * is still connecting never runs (the drain would wait its 5 s). */
        conn_close_leg(&c->back);
    }
    struct leg *legs[2] = {&c->front, &c->back};
    for (int i = 0; i < 2; i++) {
        leg_read_stop(legs[i]);
        if (legs[i]->tls_up && legs[i]->open) {
            tlsio_shutdown(&legs[i]->tls);
            if (leg_flush(legs[i]) < 0) {
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
static void front_error(struct conn *c, const char *sqlstate, const char *outcome, const char *hint,
                        const char *msg)
{
    uint8_t pkt[2048];
    char q[1200];

    log_warn("event=error conn=%llu front=%s sqlstate=%s message=\"%s\"", (unsigned long long)c->id,
             c->front_addr, sqlstate, log_escape(msg, q, sizeof(q)));
    bool boundary = c->fs < FRONT_RELAY || c->watching;
    if (c->phase == PHASE_OPEN && c->front.open && boundary) {
        size_t n = pg_build_error(pkt, sizeof(pkt), "FATAL", sqlstate, msg, hint);
        if (n > 0 && (c->fs == FRONT_FIRST || c->front.plain)) {
            leg_send(&c->front, pkt, n);
        } else if (n > 0 && c->front.tls_up && c->fs >= FRONT_STARTUP) {
            if (tlsio_write(&c->front.tls, pkt, n) == 0)
                leg_flush(&c->front);
        }
    }
    conn_end(c, outcome, "%s: %s", sqlstate, msg);
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

/*
 * --write-stall-timeout: the client's backlog has stayed over the
 * high-water mark with nothing written for that long: it stopped reading
 * (a client that sends KeyUpdate requests, or queries with many NOTICEs,
 * and never reads). Holding its backlog forever is the attack, so the
 * session ends at once, without waiting to flush what will never be read.
 * True if it ended.
 */
static bool stall_timeout(struct conn *c, uint64_t now)
{
    unsigned ms = c->w->rt->write_stall_ms;
    struct leg *l = &c->front;
    if (ms == 0 || l->stall_since == 0 || now < l->stall_since + ms || !leg_stalled(l))
        return false;
    log_warn("event=write_stall conn=%llu front=%s backlog_bytes=%zu stalled_s=%u "
             "reason=\"client stopped reading: nothing it was sent has been read for %u s\" "
             "hint=\"a client must read what it is sent; raise --write-stall-timeout (0: off) "
             "for clients that pause longer\"",
             (unsigned long long)c->id, c->front_addr, leg_backlog(l), ms / 1000, ms / 1000);
    conn_end(c, "timeout", "client stopped reading for %u s (--write-stall-timeout)", ms / 1000);
    conn_close(c); /* its backlog would never be read: free it now */
    return true;
}

/*
 * --idle-timeout: when this session will have been idle for it, or
 * UINT64_MAX while it is not idle. Idle comes from the protocol (pgtrack:
 * every query answered by ReadyForQuery, nothing after the last Sync): a
 * query that runs for minutes, NOTICEs or not, is never idle. During the
 * login (the start-up watch) the upstream must have spoken last.
 */
static uint64_t idle_deadline(const struct conn *c)
{
    unsigned ms = c->w->rt->idle_timeout_ms;
    if (c->fs != FRONT_RELAY || ms == 0 || !c->tracking)
        return UINT64_MAX;
    if (c->watching)
        return c->back.last_read >= c->front.last_read ? c->last_active + ms : UINT64_MAX;
    return pgtrack_idle(&c->track) ? c->idle_since + ms : UINT64_MAX;
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
    if (c->bs > BACK_IDLE && c->bs < BACK_READY && now >= c->back_deadline) {
        back_timeout(c);
        if (c->phase != PHASE_OPEN)
            return;
    }
    if (stall_timeout(c, now))
        return;
    if (c->fs == FRONT_RELAY && c->buffers_held && now >= c->last_active + IDLE_RELEASE_MS)
        relay_release_idle(c);
    uint64_t idle_end = idle_deadline(c);
    if (idle_end != UINT64_MAX && now >= idle_end) {
        log_info("event=idle_timeout conn=%llu front=%s idle_s=%u", (unsigned long long)c->id,
                 c->front_addr, c->w->rt->idle_timeout_ms / 1000);
        conn_end(c, "timeout", "idle for %u s (--idle-timeout)", c->w->rt->idle_timeout_ms / 1000);
        return;
    }
    if (!c->probe && !c->front_done && c->fs < FRONT_WAIT && now >= c->front_deadline) {
        if (c->fs == FRONT_STARTUP)
            conn_fail_front(c, "08P01", "timeout",
                            "pg-tls-proxy: timed out after %u s waiting for the start-up packet",
                            c->w->rt->startup_timeout_ms / 1000);
        else
            conn_end(c, "timeout", "no start-up within %u ms (state %d)",
                     c->w->rt->startup_timeout_ms, (int)c->fs);
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
    if (!c->probe && !c->front_done && c->fs < FRONT_WAIT)
        when = c->front_deadline;
    if (c->bs > BACK_IDLE && c->bs < BACK_READY && c->back_deadline < when)
        when = c->back_deadline;
    uint64_t idle_end = idle_deadline(c);
    if (idle_end < when)
        when = idle_end;
    if (c->fs == FRONT_RELAY && c->watching && c->tracking && idle_end == UINT64_MAX &&
        now + c->w->rt->idle_timeout_ms < when) /* login: the client spoke last; look again */
        when = now + c->w->rt->idle_timeout_ms;
    if (c->fs == FRONT_RELAY && c->buffers_held && c->last_active + IDLE_RELEASE_MS < when)
        when = c->last_active + IDLE_RELEASE_MS;
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
    leg_init(c, &c->front);
    leg_init(c, &c->back);
    uv_timer_init(w->loop, &c->timer);
    c->timer.data = c;
    c->refs = 1; /* the timer */
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

void format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(buf, len, "%s:%d", ip, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

static void format_peer(uv_tcp_t *tcp, char *buf, size_t len, int peer)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    int r = peer ? uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sl)
                 : uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &sl);
    if (r == 0 && ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
        snprintf(buf, len, "%s:%d", ip, port);
    } else if (r == 0 && ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
        snprintf(buf, len, "[%s]:%d", ip, port);
    } else {
        snprintf(buf, len, "?");
    }
}

void conn_format_peer(uv_tcp_t *tcp, char *buf, size_t len)
{
    format_peer(tcp, buf, len, 1);
}

/* "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "[::1]": the client's address alone. */
static const char *front_ip(const struct conn *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s", c->front_addr);
    char *colon = strrchr(buf, ':');
    if (colon != NULL && colon != buf)
        *colon = '\0';
    return buf;
}

/* Is the client's address in list? */
static bool front_in(struct conn *c, const struct cidr_list *list)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (c->pp_src != NULL)
        return cidr_list_match(list, (const struct sockaddr *)c->pp_src);
    if (uv_tcp_getpeername(&c->front.tcp, (struct sockaddr *)&ss, &sl) != 0)
        return false;
    return cidr_list_match(list, (const struct sockaddr *)&ss);
}

/*
 * --server-proxy-protocol: the first bytes are a PROXY v1/v2 header from
 * the load balancer. Its source address becomes the client's, for the logs
 * and the allow-lists. Returns true when the header is done and c->startup
 * holds only the client's own bytes; false if more is needed or the
 * connection was refused (then it is ending).
 */
static bool front_proxy_header(struct conn *c)
{
    struct proxyproto pp;
    char err[160];
    int n = proxyproto_parse(c->startup, c->startup_len, &pp, err, sizeof(err));
    if (n == 0)
        return false;
    if (n < 0) {
        /* No ErrorResponse: the client may be waiting for an answer to its
         * SSLRequest, which must never be one (CVE-2024-10977). */
        log_warn("event=refused conn=%llu front=%s reason=\"PROXY protocol header missing or "
                 "invalid: %s\" hint=\"is the load balancer set to send PROXY protocol "
                 "headers? (--server-proxy-protocol is on)\"",
                 (unsigned long long)c->id, c->front_addr, err);
        conn_end(c, "refused", "PROXY protocol header missing or invalid: %s", err);
        return false;
    }
    c->pp_done = true;
    if (pp.has_addr && (c->pp_src = malloc(sizeof(*c->pp_src))) != NULL) {
        memcpy(c->pp_src, &pp.src, sizeof(pp.src));
        snprintf(c->lb_addr, sizeof(c->lb_addr), "%s", c->front_addr);
        format_sockaddr((const struct sockaddr *)&pp.src, c->front_addr, sizeof(c->front_addr));
    }
    memmove(c->startup, c->startup + n, c->startup_len - (size_t)n);
    c->startup_len -= (size_t)n;
    c->denied = c->w->rt->allow_from.n > 0 && !front_in(c, &c->w->rt->allow_from);
    log_info("event=proxy_protocol conn=%llu front=%s via=%s version=%d%s",
             (unsigned long long)c->id, c->front_addr, c->lb_addr[0] ? c->lb_addr : "-", pp.version,
             c->denied ? " denied=not_in_server_allow_from" : "");
    return true;
}

void conn_accept(struct worker *w, int sock)
{
    struct conn *c = conn_new(w);
    if (c == NULL) {
        close(sock);
        log_error("event=accept_failed reason=\"out of memory\"");
        return;
    }
    uv_tcp_init(w->loop, &c->front.tcp);
    c->front.open = true;
    conn_hold(c);
    if (uv_tcp_open(&c->front.tcp, sock) != 0) {
        close(sock); /* not the handle's yet */
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->front.tcp, 1);
    unsigned ka = w->rt->cfg->keepalive_s;
    uv_tcp_keepalive(&c->front.tcp, ka > 0, ka);
    c->counted = true;
    metrics_session_opened();
    unsigned open = atomic_fetch_add_explicit(&active_clients, 1, memory_order_relaxed) + 1;
    c->too_many = open > w->rt->cfg->max_connections;
    int fd = -1;
    unsigned long long limit = 0;
    if (!c->too_many && uv_fileno((uv_handle_t *)&c->front.tcp, &fd) == 0 &&
        conn_fd_nearly_out(fd, &limit)) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "pg-tls-proxy: too many connections: the proxy is nearly out of file "
                 "descriptors (%d open, limit %llu) — raise its open-files limit (ulimit -n / "
                 "LimitNOFILE) or lower the load",
                 fd + 1, limit);
        c->err_msg = strdup(msg); /* told by refuse() */
        c->too_many = true;
        conn_fd_limit_log(fd, limit);
    }
    conn_format_peer(&c->front.tcp, c->front_addr, sizeof(c->front_addr));
    /* Told once the client can read it: after its TLS handshake. */
    /* Behind a PROXY-protocol load balancer, the client's address is in
     * the header: decided there. */
    c->denied =
        !w->rt->cfg->proxy_protocol && w->rt->allow_from.n > 0 && !front_in(c, &w->rt->allow_from);
    /* Logged with the first packet (log_accepted): a plaintext cancel has none. */
    c->accept_note = c->err_msg != NULL ? " refused=fd_limit"
                     : c->too_many      ? " refused=max_connections"
                                        : "";
    conn_arm_timer(c);
    if (leg_read_start(&c->front) < 0)
        conn_close(c);
}

/*
 * Logged when the login is over (the upstream's ReadyForQuery, watch.c),
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
             "application_name=\"%s\" front_tls=%s front_cipher=%s back_tls=%s back_cipher=%s "
             "setup_ms=%llu login_ms=%llu%s",
             (unsigned long long)c->id, c->front_addr, c->back_addr, c->info.user, c->info.database,
             c->info.application_name, c->front.plain ? "none" : tlsio_version(&c->front.tls),
             c->front.plain ? "none" : tlsio_cipher(&c->front.tls), tlsio_version(&c->back.tls),
             tlsio_cipher(&c->back.tls), (unsigned long long)(c->join_ms - c->start_ms),
             (unsigned long long)(now - c->join_ms), verified ? "" : " login=unverified");
}

/*
 * A client we will not serve (--max-connections, --server-allow-from) is
 * told why once it can read it: after its TLS handshake and StartupMessage,
 * or in reply to a plaintext StartupMessage. True if it was refused.
 */
static bool refuse(struct conn *c)
{
    char ip[64];
    if (c->too_many && c->err_msg != NULL) { /* nearly out of descriptors */
        conn_fail_front(c, "53300", "too_many", "%s", c->err_msg);
        return true;
    }
    if (c->too_many) {
        conn_fail_front(c, "53300", "too_many",
                        "pg-tls-proxy: sorry, too many clients already (--max-connections %u)",
                        c->w->rt->cfg->max_connections);
        return true;
    }
    if (c->denied) {
        conn_fail_front(c, "28000", "denied",
                        "pg-tls-proxy: connections from %s are not allowed (--server-allow-from)",
                        front_ip(c, ip, sizeof(ip)));
        return true;
    }
    return false;
}

/* Both legs ready: forward the StartupMessage (and anything after it). */
static void maybe_join(struct conn *c)
{
    if (c->fs != FRONT_WAIT || c->phase != PHASE_OPEN)
        return;
    if (refuse(c))
        return;
    if (c->bs == BACK_FAILED) {
        conn_fail_front(c, c->err_state, "upstream_error", "%s", c->err_msg);
        return;
    }
    if (c->bs != BACK_READY)
        return;
    c->front.bytes_in += c->startup_len;
    if (relay_emit(c, &c->back, c->startup, c->startup_len) < 0)
        return;
    free(c->startup);
    c->startup = NULL;
    c->startup_len = 0;
    back_setup_free(c);
    c->fs = FRONT_RELAY;
    c->bs = BACK_RELAY;
    c->watching = true;
    c->tracking = c->w->rt->idle_timeout_ms > 0;
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

void conn_back_ready(struct conn *c)
{
    if (c->probe) {
        c->w->probe_status = 0;
        conn_end(c, "closed", "check done");
        return;
    }
    if (c->cancel_pkt != NULL) {
        /* The upstream answers a cancel with nothing and closes. */
        if (tlsio_write(&c->back.tls, c->cancel_pkt, c->cancel_len) < 0 ||
            leg_flush(&c->back) < 0) {
            cancel_count(CANCEL_FAILED, NULL);
            conn_end(c, "error", "could not send the cancel request");
            return;
        }
        cancel_key_end(c, true);
        cancel_count(CANCEL_FORWARDED, NULL);
        conn_end(c, "cancel_forwarded", "cancel request forwarded over verified TLS");
        return;
    }
    if (c->front_done) {
        /* The early leg's client went away: a clean close_notify now. */
        conn_end(c, "closed", "client done before its start-up packet");
        return;
    }
    maybe_join(c);
}

void conn_back_failed(struct conn *c, const char *sqlstate, const char *msg)
{
    char q[1200];
    log_warn("event=upstream_failed conn=%llu front=%s upstream=%s sqlstate=%s message=\"%s\"",
             (unsigned long long)c->id, c->front_addr, c->back_addr, sqlstate,
             log_escape(msg, q, sizeof(q)));
    c->bs = BACK_FAILED;
    back_setup_free(c);
    leg_read_stop(&c->back);
    conn_close_leg(&c->back);
    if (c->probe && !c->health_probe) {
        log_report("check failed: ", "check_failed", "%s",
                   strncmp(msg, "pg-tls-proxy: ", 14) == 0 ? msg + 14 : msg);
        c->w->probe_status = 1;
        conn_close(c);
        return;
    }
    if (c->health_probe) {
        conn_close(c);
        return;
    }
    if (c->cancel_pkt != NULL) {
        cancel_count(CANCEL_FAILED, NULL);
        conn_end(c, "cancel_failed", "%s", msg);
        return;
    }
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
    maybe_join(c);
}

/* The client's address (from the PROXY header when there was one). */
static const struct sockaddr *front_sockaddr(struct conn *c, struct sockaddr_storage *ss)
{
    int sl = sizeof(*ss);
    if (c->pp_src != NULL)
        return (const struct sockaddr *)c->pp_src;
    if (uv_tcp_getpeername(&c->front.tcp, (struct sockaddr *)ss, &sl) != 0)
        return NULL;
    return (const struct sockaddr *)ss;
}

/*
 * May this cancel go upstream? In order: the client's address must be
 * allowed and within its rate (cancel.h), the key must be a live session's
 * with no forward of it in flight or just done (keymap.h), and fewer than
 * CANCEL_FORWARDS_MAX forwards may be in flight. On CANCEL_FORWARDED the
 * key is marked in flight and a slot is held: the caller owns both.
 */
static enum cancel_outcome cancel_decide(struct conn *c, const struct sockaddr *sa,
                                         const uint8_t *pkt, size_t len, uint32_t *pid)
{
    uint8_t key[PG_CANCEL_KEY_MAX];
    size_t keylen;
    enum cancel_outcome o = CANCEL_FORWARDED;

    *pid = 0;
    if (c->denied)
        return CANCEL_DENIED;
    if (!cancel_admit(sa))
        return CANCEL_RATE_LIMITED;
    if (pg_parse_cancel(pkt, len, pid, key, &keylen) != 0) {
        cancel_penalize(sa);
        return CANCEL_UNKNOWN_KEY;
    }
    switch (keymap_cancel_begin(*pid, key, keylen, cancel_now_ms(), CANCEL_COALESCE_MS)) {
    case KEYMAP_UNKNOWN:
        cancel_penalize(sa);
        o = CANCEL_UNKNOWN_KEY;
        break;
    case KEYMAP_COALESCED:
        o = CANCEL_COALESCED;
        break;
    case KEYMAP_FORWARD:
    default:
        if (!cancel_slot_take()) {
            keymap_cancel_end(*pid, key, keylen, 0, false);
            o = CANCEL_OVER_LIMIT;
        }
        break;
    }
    OPENSSL_cleanse(key, sizeof(key));
    return o;
}

/*
 * The client's CancelRequest is in c->startup (plaintext, or inside TLS as
 * libpq 17 and postgres.js send it). The client gets no answer, as from
 * PostgreSQL; a refused cancel is counted (cancel.c logs a summary), never
 * logged one by one. An admitted one goes upstream on this connection: on
 * the back leg opened early at its SSLRequest if there is one (no second
 * upstream connection), else on one opened now, over verified TLS.
 */
static void front_cancel(struct conn *c, size_t len)
{
    struct sockaddr_storage ss;
    const struct sockaddr *sa = front_sockaddr(c, &ss);
    uint32_t pid = 0;
    uint8_t *pkt = malloc(len);
    enum cancel_outcome o = CANCEL_FAILED;

    if (pkt != NULL) {
        memcpy(pkt, c->startup, len);
        o = cancel_decide(c, sa, pkt, len, &pid);
    } else {
        log_error("event=cancel_dropped conn=%llu front=%s reason=\"out of memory\"",
                  (unsigned long long)c->id, c->front_addr);
    }
    OPENSSL_cleanse(c->startup, c->startup_len);
    c->startup_len = 0;
    if (o != CANCEL_FORWARDED) {
        cancel_count(o, sa); /* a forwarded one is counted once sent */
        if (pkt != NULL)
            OPENSSL_cleanse(pkt, len);
        free(pkt);
        conn_end(c, "cancel", "cancel request not forwarded: %s", cancel_outcome_name(o));
        return;
    }
    if (holds_early_back(c)) /* it will carry a cancel: not a wasted early leg */
        atomic_fetch_sub_explicit(&early_backs, 1, memory_order_relaxed);
    c->cancel_pkt = pkt;
    c->cancel_len = len;
    c->cancel_slot = c->cancel_marked = true;
    bool early = c->bs != BACK_IDLE;
    log_info("event=cancel_forward conn=%llu front=%s pid=%u leg=%s", (unsigned long long)c->id,
             c->front_addr, pid, early ? "early" : "new");
    front_park(c);
    switch (c->bs) {
    case BACK_IDLE:
        back_start(c);
        if (c->phase == PHASE_OPEN)
            back_deadline_cap(c);
        break;
    case BACK_READY:
        conn_back_ready(c);
        break;
    case BACK_FAILED:
        cancel_count(CANCEL_FAILED, NULL);
        conn_end(c, "cancel_failed", "the upstream leg had failed: %s",
                 c->err_msg != NULL ? c->err_msg : "unknown");
        break;
    default:
        break; /* midway: conn_back_ready sends it */
    }
}

/* Start the front TLS handshake; pending holds bytes already received,
 * more (m bytes) those of the same read that did not fit in c->startup. */
static bool front_tls_begin(struct conn *c, const uint8_t *pending, size_t n, const uint8_t *more,
                            size_t m)
{
    char err[200];
    if (tlsio_init(&c->front.tls, c->w->front_ctx, true, err, sizeof(err)) < 0) {
        conn_end(c, "error", "%s", err);
        return false;
    }
    if (tlsio_feed(&c->front.tls, pending, n) < 0 || tlsio_feed(&c->front.tls, more, m) < 0) {
        conn_close(c);
        return false;
    }
    c->fs = FRONT_TLS;
    /* In parallel with the front handshake, unless the client must first
     * prove who it is (mTLS): then unauthenticated clients cost the
     * database nothing. */
    if (!c->denied && !c->too_many && c->w->rt->cfg->front_client_ca_path == NULL)
        back_start_early(c);
    return c->phase == PHASE_OPEN;
}

static void front_tls_step(struct conn *c);

/* Bytes pipelined behind a plaintext StartupMessage that did not fit in
 * c->startup: kept after it, to be forwarded with it (maybe_join). */
static bool startup_append(struct conn *c, const uint8_t *more, size_t m)
{
    uint8_t *b = realloc(c->startup, c->startup_len + m);
    if (b == NULL) {
        conn_close(c);
        return false;
    }
    memcpy(b + c->startup_len, more, m);
    c->startup = b;
    c->startup_len += m;
    return true;
}

/* FRONT_FIRST: the first plaintext packet. */
static void front_first(struct conn *c, const uint8_t *buf, size_t len)
{
    struct pg_first p;
    char err[200];

    if (c->startup == NULL && (c->startup = malloc(PG_STARTUP_MAX)) == NULL) {
        conn_close(c);
        return;
    }
    /* The first packet is decided within PG_STARTUP_MAX bytes (pgproto.c),
     * so that much is kept; the rest of this read (a ClientHello can be
     * larger: post-quantum key shares) goes to TLS, or after the packet. */
    size_t take = len < PG_STARTUP_MAX - c->startup_len ? len : PG_STARTUP_MAX - c->startup_len;
    const uint8_t *more = buf + take;
    size_t m = len - take;
    memcpy(c->startup + c->startup_len, buf, take);
    c->startup_len += take;
    if (c->w->rt->cfg->proxy_protocol && !c->pp_done &&
        (!front_proxy_header(c) || c->startup_len == 0))
        return;

    enum pg_first_kind kind = pg_parse_first(c->startup, c->startup_len, &p, err, sizeof(err));
    if (kind == PG_FIRST_CANCEL && !c->accept_logged)
        c->plain_cancel = true;
    else if (kind != PG_FIRST_INCOMPLETE && !c->accept_logged)
        log_accepted(c);
    switch (kind) {
    case PG_FIRST_INCOMPLETE:
        return;
    case PG_FIRST_SSLREQUEST: {
        size_t extra = c->startup_len - p.len;
        if (extra > 0 && c->startup[p.len] != PG_TLS_HANDSHAKE_BYTE) {
            /* CVE-2021-23214: these bytes were not encrypted; they may be a
             * man-in-the-middle's. Refuse before saying 'S'. Only a TLS
             * ClientHello may follow, and it goes to the handshake. */
            log_warn("event=refused conn=%llu front=%s reason=\"%zu bytes after SSLRequest "
                     "before TLS (possible injection, CVE-2021-23214)\"",
                     (unsigned long long)c->id, c->front_addr, extra);
            conn_end(c, "refused", "bytes pipelined after SSLRequest");
            return;
        }
        if (leg_send(&c->front, "S", 1) < 0) {
            conn_close(c);
            return;
        }
        c->startup_len = 0;
        if (front_tls_begin(c, c->startup + p.len, extra, more, m) && extra + m > 0)
            front_tls_step(c);
        return;
    }
    case PG_FIRST_DIRECT_TLS: {
        /* PostgreSQL 17 sslnegotiation=direct: a ClientHello, no SSLRequest. */
        size_t n = c->startup_len;
        c->direct_tls = true;
        c->startup_len = 0;
        if (front_tls_begin(c, c->startup, n, more, m))
            front_tls_step(c);
        return;
    }
    case PG_FIRST_GSSENCREQUEST:
        if (c->startup_len > p.len) {
            conn_end(c, "refused", "bytes pipelined after GSSENCRequest");
            return;
        }
        /* No GSSAPI encryption here; the client may follow with SSLRequest. */
        c->startup_len = 0;
        if (leg_send(&c->front, "N", 1) < 0)
            conn_close(c);
        return;
    case PG_FIRST_STARTUP:
        c->info = p.startup;
        if (m > 0 && !startup_append(c, more, m))
            return;
        fd_recheck(c);
        if (refuse(c))
            return;
        if (c->w->rt->allow_plain.n > 0 && front_in(c, &c->w->rt->allow_plain)) {
            /* Sidecar mode: plaintext to us, verify-full upstream. */
            c->front.plain = true;
            c->fs = FRONT_WAIT;
            leg_read_stop(&c->front);
            back_start(c);
            return;
        }
        conn_fail_front(c, "28000", "refused",
                        "pg-tls-proxy: TLS is required; connect with sslmode=verify-full");
        return;
    case PG_FIRST_CANCEL:
        front_cancel(c, p.len);
        return;
    case PG_FIRST_INVALID:
    default:
        conn_fail_front(c, "08P01", "protocol_error", "pg-tls-proxy: invalid start-up packet: %s",
                        err);
        return;
    }
}

/* FRONT_STARTUP: read the StartupMessage inside TLS. */
static void front_startup(struct conn *c)
{
    struct pg_first p;
    char err[200], e[160];

    if (c->startup == NULL && (c->startup = malloc(PG_STARTUP_MAX)) == NULL) {
        conn_close(c);
        return;
    }
    for (;;) {
        size_t n = 0;
        enum tls_res r = TLS_WANT;
        if (c->startup_len < PG_STARTUP_MAX)
            r = tlsio_read(&c->front.tls, c->startup + c->startup_len,
                           PG_STARTUP_MAX - c->startup_len, &n);
        if (r == TLS_OK) {
            c->startup_len += n;
        } else if (r == TLS_EOF) {
            conn_end(c, "closed", "client closed TLS before the start-up packet");
            return;
        } else if (r == TLS_ERR) {
            conn_end(c, "error", "front TLS error: %s", tlsio_error(e, sizeof(e)));
            return;
        }
        switch (pg_parse_first(c->startup, c->startup_len, &p, err, sizeof(err))) {
        case PG_FIRST_INCOMPLETE:
            if (r == TLS_OK && c->startup_len < PG_STARTUP_MAX)
                continue;
            if (leg_flush(&c->front) < 0) {
                conn_close(c);
                return;
            }
            /* Records OpenSSL owes the client (KeyUpdate replies) count
             * too: a client that asks for them and never reads is not
             * read from either. */
            leg_backpressure(&c->front);
            return;
        case PG_FIRST_STARTUP:
            c->info = p.startup;
            if (holds_early_back(c))
                atomic_fetch_sub_explicit(&early_backs, 1, memory_order_relaxed);
            c->fs = FRONT_WAIT;
            fd_recheck(c);
            /* Hold further client bytes until the back leg is ready. */
            leg_read_stop(&c->front);
            tlsio_release(&c->front.tls);
            conn_arm_timer(c);
            leg_flush(&c->front);
            if (c->bs == BACK_IDLE && !c->denied && !c->too_many) {
                back_start(c); /* no early slot was free */
                if (c->phase != PHASE_OPEN)
                    return;
            }
            maybe_join(c);
            return;
        case PG_FIRST_CANCEL:
            front_cancel(c, p.len);
            return;
        case PG_FIRST_SSLREQUEST:
        case PG_FIRST_GSSENCREQUEST:
            conn_fail_front(c, "08P01", "protocol_error",
                            "pg-tls-proxy: SSLRequest or GSSENCRequest inside TLS");
            return;
        default:
            conn_fail_front(c, "08P01", "protocol_error",
                            "pg-tls-proxy: invalid start-up packet: %s", err);
            return;
        }
    }
}

/* Drive the front handshake with what has been fed, then the start-up. */
static void front_tls_step(struct conn *c)
{
    char e[200];

    if (c->fs == FRONT_TLS) {
        enum tls_res r = tlsio_handshake(&c->front.tls);
        if (r == TLS_WANT) {
            if (leg_flush(&c->front) < 0)
                conn_close(c);
            return;
        }
        if (r != TLS_OK) {
            tlsio_error(e, sizeof(e));
            long vr = SSL_get_verify_result(c->front.tls.ssl);
            bool mtls = c->w->rt->cfg->front_client_ca_path != NULL;
            const char *hint = "the client did not complete a TLS handshake";
            if (mtls && vr != X509_V_OK) {
                /* mTLS: say what was wrong with the client's certificate. */
                snprintf(e, sizeof(e), "client certificate: %s", X509_verify_cert_error_string(vr));
                hint = "the client's certificate must be signed by --server-client-ca-path";
            } else if (strstr(e, "peer did not return a certificate") != NULL) {
                hint = "mTLS is on (--server-client-ca-path): connect with sslcert and sslkey";
            } else if (strstr(e, "certificate") != NULL || strstr(e, "unknown ca") != NULL) {
                hint = "does the client trust the CA that signed --server-certificate-path?";
            } else if (strstr(e, "application protocol") != NULL) {
                hint = "the client offered ALPN without \"postgresql\"";
            } else if (strstr(e, "version") != NULL || strstr(e, "protocol") != NULL) {
                hint = "the client sent something other than a TLS ClientHello, or a TLS "
                       "version older than --server-min-tls-version";
            }
            metrics_handshake_failed(0, mtls && vr != X509_V_OK             ? "client_certificate"
                                        : strstr(e, "application protocol") ? "alpn"
                                                                            : "handshake");
            log_warn("event=front_handshake_failed conn=%llu front=%s reason=\"%s\" hint=\"%s\"",
                     (unsigned long long)c->id, c->front_addr, e, hint);
            leg_flush(&c->front); /* the alert */
            conn_end(c, "front_tls_failed", "front TLS handshake failed: %s", e);
            return;
        }
        c->front.tls_up = true;
        c->fs = FRONT_STARTUP;
        sniwarn_check(c->front.tls.ssl, (unsigned long long)c->id, c->front_addr);
        if (c->w->rt->cfg->front_client_ca_path != NULL && !c->denied && !c->too_many &&
            c->bs == BACK_IDLE) {
            back_start_early(c); /* the client's certificate is verified */
            if (c->phase != PHASE_OPEN)
                return;
        }
        log_debug("event=front_tls_up conn=%llu tls=%s cipher=%s direct=%d",
                  (unsigned long long)c->id, tlsio_version(&c->front.tls),
                  tlsio_cipher(&c->front.tls), (int)c->direct_tls);
        if (c->direct_tls && !tlsctx_alpn_postgresql(c->front.tls.ssl)) {
            /* As PostgreSQL 17: direct TLS is only for clients that say
             * "postgresql" in ALPN, so that other protocols can't be
             * confused for ours. */
            conn_fail_front(c, "08P01", "protocol_error",
                            "pg-tls-proxy: direct TLS connection without ALPN \"postgresql\"; "
                            "use sslnegotiation=direct with libpq 17 or newer, or "
                            "sslnegotiation=postgres");
            return;
        }
    }
    if (c->fs == FRONT_STARTUP)
        front_startup(c);
}

void front_on_data(struct conn *c, const uint8_t *buf, size_t len)
{
    if (c->fs == FRONT_FIRST) {
        front_first(c, buf, len);
        return;
    }
    if (c->front.plain) {
        if (c->fs == FRONT_RELAY)
            relay_plain(c, &c->front, buf, len);
        return;
    }
    if (tlsio_feed(&c->front.tls, buf, len) < 0) {
        conn_close(c);
        return;
    }
    if (c->fs == FRONT_RELAY)
        relay_pump(c, &c->front);
    else
        front_tls_step(c);
}

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
    bool can_tell = c->front.open && (c->fs < FRONT_RELAY || c->watching) &&
                    (c->front.tls_up || c->front.plain);
    if (can_tell && c->cancel_pkt == NULL && !c->probe)
        conn_fail_front(c, "57P01", "shutdown",
                        "pg-tls-proxy: terminating connection due to proxy shutdown");
    else
        conn_end(c, "shutdown", "proxy shutdown timeout");
}
