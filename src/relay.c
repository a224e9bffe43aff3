/*
 * relay.c - the data phase: the plaintext pump between the two legs (with
 * the start-up watch and --idle-timeout tracking on the way), the record
 * buffers given back when a session is quiet, and the drain before close.
 *
 * Never frees a connection: it reports failures to conn.c (conn_end /
 * conn_close) and returns.
 */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "leg.h"
#include "log.h"
#include "login.h"
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

/* Plaintext out to one leg: encrypted, or as is on a plaintext front. */
int relay_emit(struct conn *c, struct leg *to, const void *buf, size_t len)
{
    char e[160];
    if (c->tracking && !login_watching(c))
        relay_track(c, to, buf, len);
    to->bytes_out += len;
    if (to->plain)
        return leg_send(to, buf, len);
    if (tlsio_write(&to->tls, buf, len) < 0) {
        conn_end(c, "error", "%s TLS write failed: %s", leg_name(to), tlsio_error(e, sizeof(e)));
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
    return relay_emit(c, leg_peer(from), buf, len);
}

/* After input: flush both legs, and stop reading `from` if a backlog is full. */
static void relay_after(struct conn *c, struct leg *from)
{
    struct leg *to = leg_peer(from);
    /* from may owe its peer TLS records of its own (alerts, key updates). */
    if (leg_flush(from) < 0 || leg_flush(to) < 0) {
        conn_end(c, "error", "write failed");
        conn_close(c);
        return;
    }
    leg_backpressure(from);
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
    if (!c->front.plain)
        tlsio_release(&c->front.tls);
    if (!c->back.plain)
        tlsio_release(&c->back.tls);
    c->buffers_held = false;
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
        enum tls_res r = tlsio_read(&from->tls, c->w->scratch, sizeof(c->w->scratch), &n);
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
            if (leg_flush(leg_peer(from)) < 0)
                conn_close(c);
            else
                conn_end(c, "closed", "%s sent close_notify", leg_name(from));
            return;
        }
        conn_end(c, "error", "%s TLS error: %s", leg_name(from), tlsio_error(e, sizeof(e)));
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

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct leg *l = req->data;
    struct conn *c = l->conn;
    (void)status;
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
        c->front.paused = false;
        if (leg_read_start(&c->front) == 0)
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
        struct leg *l = legs[i];
        if (!l->open || l->shut || uv_is_closing((uv_handle_t *)&l->tcp))
            continue;
        l->shut = true;
        l->shutdown_req.data = l;
        if (uv_shutdown(&l->shutdown_req, (uv_stream_t *)&l->tcp, shutdown_cb) == 0) {
            c->shutdowns++;
            conn_hold(c);
        }
    }
    if (c->shutdowns == 0)
        conn_close(c);
}
