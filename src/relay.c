/*
 * relay.c - the data phase: the plaintext pump between the two legs (with
 * the login and --idle-timeout tracking on the way), backpressure and the
 * write-stall clock, the record buffers given back when a session is
 * quiet, and the drain before close.
 *
 * Backpressure: a leg stops reading while its peer's backlog, or its own
 * (TLS records OpenSSL owes its peer: KeyUpdate replies), is above
 * RELAY_HIGH_WATER, and resumes once both are at RELAY_LOW_WATER or below,
 * so a slow reader bounds what we hold for it. A client whose backlog
 * stays above the mark with no write progress for --write-stall-timeout is
 * ended (conn.c's timer). Never frees a connection: it reports failures to
 * conn.c (conn_end / conn_close) and returns.
 */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "leg.h"
#include "log.h"
#include "pgassert.h"
#include "login.h"
#include "sessions.h"
#include "worker.h"

/*
 * --idle-timeout only: follow message boundaries after the start-up watch
 * (pgtrack.c). The idle clock restarts on every byte that leaves the
 * session with nothing outstanding; a stream that cannot be framed is
 * never called idle.
 */
static void relay_track(struct conn *c, struct leg *to, const void *buf, size_t len)
{
    bool was = pgtrack_idle(&c->track);
    int r =
        to == &c->back ? pgtrack_client(&c->track, buf, len) : pgtrack_server(&c->track, buf, len);
    if (r < 0) {
        c->tracking = false;
        log_debug("event=idle_tracking_off conn=%llu reason=\"unframeable %s message\"",
                  (unsigned long long)c->id, to == &c->back ? "client" : "server");
        return;
    }
    if (pgtrack_idle(&c->track)) {
        c->idle_since = uv_now(c->w->loop);
        if (!was)
            conn_arm_timer(c);
    }
}

static int emit(struct conn *c, struct leg *to, const void *buf, size_t len);

/* Plaintext out to one leg: encrypted, or as is on a plaintext front. */
int relay_emit(struct conn *c, struct leg *to, const void *buf, size_t len)
{
    /* A terminate waits for the end of the server's message under way. */
    if (c->kill_pending && to == &c->front) {
        size_t n = sessions_kill_split(c, buf, len);
        if (n != SIZE_MAX) {
            if (n > 0 && emit(c, to, buf, n) < 0)
                return -1;
            sessions_kill_now(c);
            return -1; /* the rest is never sent */
        }
    }
    return emit(c, to, buf, len);
}

static int emit(struct conn *c, struct leg *to, const void *buf, size_t len)
{
    char e[160];
    if (c->tracking && !login_watching(c))
        relay_track(c, to, buf, len);
    /* Framing (conn.h): both ways, so that the server's stream says where a
     * FATAL may go and the client's where a Terminate may (sessions.c).
     * Unframeable: frames.failed says so. */
    if (c->framing && !login_watching(c))
        (void)(to == &c->front ? pgtrack_server(&c->frames, buf, len)
                               : pgtrack_client(&c->frames, buf, len));
    to->bytes_out += len;
    if (to->plain)
        return leg_send(to, buf, len);
    if (leg_write_plain(to, buf, len) < 0) {
        conn_end(c, "error", "%s TLS write failed: %s", conn_leg_name(to),
                 leg_tls_error(e, sizeof(e)));
        return -1;
    }
    return 0;
}

/* Plaintext that arrived from one leg, on its way to the other. */
static int relay_input(struct conn *c, struct leg *from, const uint8_t *buf, size_t len)
{
    from->bytes_in += len;
    if (login_watching(c)) {
        int r = login_input(c, from, buf, len);
        if (!login_watching(c) && c->tracking && c->idle_since == 0) {
            c->idle_since = uv_now(c->w->loop); /* start-up done: ReadyForQuery */
            conn_arm_timer(c);
        }
        return r;
    }
    return relay_emit(c, conn_peer(from), buf, len);
}

/* After input: flush both legs, and stop reading `from` if a backlog is full. */
static void relay_after(struct conn *c, struct leg *from)
{
    struct leg *to = conn_peer(from);
    /* from may owe its peer TLS records of its own (alerts, key updates). */
    if (leg_flush(from) < 0 || leg_flush(to) < 0) {
        conn_end(c, "error", "write failed");
        conn_close(c);
        return;
    }
    relay_backpressure(from);
    /* Record buffers are kept while the session is busy and given back
     * once it has been quiet for IDLE_RELEASE_MS (conn.c's timer). */
    if (!c->buffers_held) {
        c->buffers_held = true;
        conn_arm_timer(c);
    }
}

/* The session has been quiet: give OpenSSL's record buffers back. */
void relay_release_idle(struct conn *c)
{
    leg_tls_release(&c->front);
    leg_tls_release(&c->back);
    c->buffers_held = false;
    worker_buffers_released(c->w);
}

/*
 * Decrypt everything OpenSSL has for `from` and pass it on. Must run after
 * every feed: plaintext already inside OpenSSL produces no socket event.
 * May end the connection.
 */
void relay_pump(struct conn *c, struct leg *from)
{
    char e[160];

    for (;;) {
        size_t n = 0;
        enum tls_res r = leg_read_plain(from, c->w->scratch, sizeof(c->w->scratch), &n);
        if (r == TLS_OK) {
            if (relay_input(c, from, c->w->scratch, n) < 0 || c->phase != PHASE_OPEN)
                return;
            continue;
        }
        if (r == TLS_WANT)
            break;
        if (r == TLS_EOF) {
            from->eof = true;
            leg_flush(from);
            if (leg_flush(conn_peer(from)) < 0)
                conn_close(c);
            else
                conn_end(c, "closed", "%s sent close_notify", conn_leg_name(from));
            return;
        }
        conn_end(c, "error", "%s TLS error: %s", conn_leg_name(from), leg_tls_error(e, sizeof(e)));
        return;
    }
    relay_after(c, from);
}

/* Bytes read from a plaintext leg (sidecar front). */
void relay_plain(struct conn *c, struct leg *from, const uint8_t *buf, size_t len)
{
    if (relay_input(c, from, buf, len) < 0 || c->phase != PHASE_OPEN)
        return;
    relay_after(c, from);
}

void relay_on_shut(struct conn *c)
{
    PGTP_ASSERT(c->shutdowns > 0);
    c->shutdowns--;
    conn_release(c);
    if (c->phase != PHASE_DRAIN || c->shutdowns > 0)
        return;
    /* FIN sent on every leg. Wait for the client's EOF so that it reads our
     * last bytes (an ErrorResponse) instead of a reset; to a client that was
     * never sent a byte (silent, timed out) there is nothing to lose, and
     * waiting held its descriptor 5 s more (issue 11). */
    if (c->front.open && !c->front.eof && c->front.sent > 0) {
        c->phase = PHASE_LINGER;
        if (leg_read_discard(&c->front) == 0)
            return;
    }
    conn_close(c);
}

/* DRAIN: once nothing is queued, half-close every leg. */
void relay_check_drained(struct conn *c)
{
    if (c->phase != PHASE_DRAIN || leg_unsent(&c->front) || leg_unsent(&c->back) ||
        c->shutdowns > 0)
        return;
    struct leg *legs[2] = {&c->front, &c->back};
    for (int i = 0; i < 2; i++) {
        if (leg_shutdown(legs[i]) == 0) {
            c->shutdowns++;
            conn_hold(c);
        }
    }
    if (c->shutdowns == 0)
        conn_close(c);
}

/*
 * DRAIN: a write of l failed: its peer reset the connection, e.g. a
 * connector killed while our writes were on their way (its kernel answers
 * data that comes after its FIN with a reset; the write of the close_notify
 * conn_end queued then fails). No LEG_DRAINED follows a failed write, and
 * nothing more can leave l, so waiting for it held the client's FIN (and
 * its descriptor) until DRAIN_TIMEOUT_MS. Close l (its writes still in
 * flight are cancelled and no longer count as unsent) and go on draining
 * the other leg: the client still reads what it was told, then its EOF.
 */
void relay_on_write_failed(struct conn *c, struct leg *l, const char *what)
{
    if (c->phase != PHASE_DRAIN)
        return;
    log_debug("event=drain_write_failed conn=%llu leg=%s reason=\"%s\"", (unsigned long long)c->id,
              conn_leg_name(l), what);
    conn_close_leg(l);
    relay_check_drained(c);
}

/* ---- backpressure and the stall clock ---- */

/*
 * --write-stall-timeout: the client's backlog has stayed over the
 * high-water mark with nothing written for that long: it stopped reading
 * (a client that sends KeyUpdate requests, or queries with many NOTICEs,
 * and never reads). Holding its backlog forever is the attack, so the
 * session ends at once, without waiting to flush what will never be read.
 * True if it ended.
 */
bool relay_stall_timeout(struct conn *c, uint64_t now)
{
    unsigned ms = c->w->rt->write_stall_ms;
    struct leg *l = &c->front;
    if (ms == 0 || l->stall_since == 0 || now < l->stall_since + ms || !relay_stalled(l))
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
uint64_t relay_idle_deadline(const struct conn *c)
{
    unsigned ms = c->w->rt->idle_timeout_ms;
    if (!front_relaying(c) || ms == 0 || !c->tracking)
        return UINT64_MAX;
    if (login_watching(c))
        return c->back.last_read >= c->front.last_read ? c->last_active + ms : UINT64_MAX;
    return pgtrack_idle(&c->track) ? c->idle_since + ms : UINT64_MAX;
}

/* Should l stop reading: is its peer's backlog, or its own, too big? */
static bool over(struct leg *l)
{
    return leg_backlog(conn_peer(l)) > RELAY_HIGH_WATER || leg_backlog(l) > RELAY_HIGH_WATER;
}

/* May l read again: both backlogs at the low-water mark or below? */
static bool drained(struct leg *l)
{
    return leg_backlog(conn_peer(l)) <= RELAY_LOW_WATER && leg_backlog(l) <= RELAY_LOW_WATER;
}

/*
 * Start (or restart, after progress) the front leg's stall clock if its
 * backlog is above the high-water mark; stop it otherwise. conn.c's timer
 * ends the session once the clock has run --write-stall-timeout. Only the
 * client is suspected: an upstream may rightly stop reading for minutes (a
 * COPY FROM waiting for a lock), and backpressure bounds what it costs.
 */
static void stall_check(struct leg *l, bool progress)
{
    struct conn *c = l->conn;
    if (l != &c->front || leg_backlog(l) <= RELAY_HIGH_WATER) {
        l->stall_since = 0;
        return;
    }
    if (l->stall_since != 0 && !progress)
        return;
    bool arm = l->stall_since == 0;
    l->stall_since = uv_now(c->w->loop);
    l->stall_wq = leg_write_queue(l);
    if (arm && c->w->rt->write_stall_ms > 0)
        conn_arm_timer(c);
}

bool relay_stalled(struct leg *l)
{
    size_t wq = leg_write_queue(l);
    if (leg_backlog(l) <= RELAY_HIGH_WATER) {
        l->stall_since = 0;
        return false;
    }
    if (wq < l->stall_wq) { /* part of a chunk went: slow, not stopped */
        l->stall_since = uv_now(l->conn->w->loop);
        l->stall_wq = wq;
        return false;
    }
    return true;
}

void relay_backpressure(struct leg *l)
{
    if (!l->paused && over(l)) { /* resumed by relay_on_written */
        l->paused = true;
        leg_read_stop(l);
    }
    stall_check(l, false);
    stall_check(conn_peer(l), false);
}

static void resume_if_drained(struct leg *l)
{
    if (l->paused && drained(l)) {
        l->paused = false;
        if (leg_read_start(l) < 0)
            conn_close(l->conn);
    }
}

void relay_on_written(struct conn *c, struct leg *l)
{
    if (c->phase == PHASE_DRAIN) {
        relay_check_drained(c);
        return;
    }
    stall_check(l, true);
    resume_if_drained(conn_peer(l));
    if (c->phase == PHASE_OPEN)
        resume_if_drained(l);
}
