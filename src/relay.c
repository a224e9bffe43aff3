/*
 * relay.c - moving bytes: reads into the worker's buffer, writes from
 * recycled chunks, the plaintext pump between the two TLS legs, and
 * backpressure.
 *
 * Owns the chunk free list and every uv_write. Never frees a connection:
 * it reports failures to conn.c (conn_end / conn_close) and returns.
 * Backpressure counts a leg's backlog: everything held to send on it, by
 * what it costs (the capacity of its chunks in flight, not their payload,
 * plus its TLS output queue). A leg stops reading while its peer's backlog,
 * or its own (TLS records OpenSSL owes its peer: KeyUpdate replies), is
 * above RELAY_HIGH_WATER, and resumes once both are at RELAY_LOW_WATER or
 * below, so a slow reader bounds what we hold for it. While writes are in
 * flight, new output waits in the TLS queue and leaves in one piece when
 * they complete: a thousand small messages cost their bytes, not a chunk
 * each. A client whose backlog stays above the mark with no write progress
 * for --write-stall-timeout is ended (conn.c's timer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proxy.h"

static const char *leg_name(const struct leg *l)
{
    return l == &l->conn->front ? "front" : "back";
}

struct leg *leg_peer(struct leg *l)
{
    struct conn *c = l->conn;
    return l == &c->front ? &c->back : &c->front;
}

void leg_init(struct conn *c, struct leg *l)
{
    memset(l, 0, sizeof(*l));
    l->conn = c;
}

/* A chunk able to hold `want` bytes, or the large class if want is bigger. */
static struct chunk *chunk_get(struct worker *w, size_t want)
{
    bool small = want <= CHUNK_SMALL;
    struct chunk_cache *cc = small ? &w->small : &w->large;
    struct chunk *ch = cc->head;
    if (ch != NULL) {
        cc->head = ch->next;
        cc->n--;
        return ch;
    }
    size_t cap = small ? CHUNK_SMALL : CHUNK_SIZE;
    ch = malloc(sizeof(*ch) + cap);
    if (ch != NULL)
        ch->cap = cap;
    return ch;
}

static void chunk_put(struct worker *w, struct chunk *ch)
{
    struct chunk_cache *cc = ch->cap == CHUNK_SMALL ? &w->small : &w->large;
    size_t max = ch->cap == CHUNK_SMALL ? CHUNK_CACHE_SMALL : CHUNK_CACHE_LARGE;
    if (cc->n >= max) {
        free(ch);
        return;
    }
    ch->next = cc->head;
    cc->head = ch;
    cc->n++;
}

void chunk_cache_free(struct worker *w)
{
    struct chunk_cache *caches[2] = {&w->small, &w->large};
    for (int i = 0; i < 2; i++) {
        while (caches[i]->head != NULL) {
            struct chunk *ch = caches[i]->head;
            caches[i]->head = ch->next;
            free(ch);
        }
        caches[i]->n = 0;
    }
}

/* Open and not closing: what is queued on it may still go. */
static bool leg_writable(const struct leg *l)
{
    return l->open && !uv_is_closing((const uv_handle_t *)&l->tcp);
}

size_t leg_backlog(const struct leg *l)
{
    return l->queued + tlsio_pending(&l->tls);
}

/* Should l stop reading: is its peer's backlog, or its own, too big? */
static bool leg_over(struct leg *l)
{
    return leg_backlog(leg_peer(l)) > RELAY_HIGH_WATER || leg_backlog(l) > RELAY_HIGH_WATER;
}

/* May l read again: both backlogs at the low-water mark or below? */
static bool leg_drained(struct leg *l)
{
    return leg_backlog(leg_peer(l)) <= RELAY_LOW_WATER && leg_backlog(l) <= RELAY_LOW_WATER;
}

static size_t leg_write_queue(struct leg *l)
{
    return l->open ? uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp) : 0;
}

/*
 * Start (or restart, after progress) the front leg's stall clock if its
 * backlog is above the high-water mark; stop it otherwise. conn.c's timer
 * ends the session once the clock has run --write-stall-timeout. Only the
 * client is suspected: an upstream may rightly stop reading for minutes (a
 * COPY FROM waiting for a lock), and backpressure bounds what it costs.
 */
void leg_stall_check(struct leg *l, bool progress)
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

/* The stall clock of l has run out: true if l did not move at all since
 * it started (then the session must end), else the clock restarts. */
bool leg_stalled(struct leg *l)
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

/* Stop reading l while a backlog is over the mark (resumed by write_cb). */
static void leg_pause_if_over(struct leg *l)
{
    if (!l->paused && leg_over(l)) {
        l->paused = true;
        leg_read_stop(l);
    }
}

void leg_backpressure(struct leg *l)
{
    leg_pause_if_over(l);
    leg_stall_check(l, false);
    leg_stall_check(leg_peer(l), false);
}

static void leg_resume_if_drained(struct leg *l)
{
    if (l->paused && leg_drained(l)) {
        l->paused = false;
        if (leg_read_start(l) < 0)
            conn_close(l->conn);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    struct chunk *ch = req->data;
    struct leg *l = ch->leg;
    struct conn *c = l->conn;

    l->queued -= ch->cap;
    chunk_put(c->w, ch);
    if (c->phase == PHASE_CLOSING)
        return;
    if (status < 0) {
        char what[128];
        snprintf(what, sizeof(what), "write failed: %s", uv_strerror(status));
        conn_leg_lost(l, what);
        if (c->phase != PHASE_CLOSING && l == &c->front)
            conn_close(c); /* the client is gone; nothing more can be said */
        return;
    }
    /* The last write in flight is done: what gathered meanwhile goes now. */
    if (l->queued == 0 && leg_flush(l) < 0) {
        conn_close(c);
        return;
    }
    if (c->phase == PHASE_DRAIN) {
        relay_check_drained(c);
        return;
    }
    leg_stall_check(l, true);
    leg_resume_if_drained(leg_peer(l));
    if (c->phase == PHASE_OPEN)
        leg_resume_if_drained(l);
}

/* Queue one chunk on l. Returns 0 or a negative libuv error (chunk freed). */
static int chunk_write(struct leg *l, struct chunk *ch)
{
    uv_buf_t b = uv_buf_init((char *)ch->data, (unsigned)ch->len);
    ch->leg = l;
    ch->req.data = ch;
    int r = uv_write(&ch->req, (uv_stream_t *)&l->tcp, &b, 1, write_cb);
    if (r < 0) {
        chunk_put(l->conn->w, ch);
        return r;
    }
    l->queued += ch->cap; /* what it costs, not what it carries */
    l->sent += ch->len;
    return 0;
}

/* Queue len bytes on l in chunks (copied: buf may be reused at once). */
static int leg_queue(struct leg *l, const uint8_t *p, size_t len)
{
    while (len > 0) {
        struct chunk *ch = chunk_get(l->conn->w, len);
        if (ch == NULL)
            return UV_ENOMEM;
        ch->len = len < ch->cap ? len : ch->cap;
        memcpy(ch->data, p, ch->len);
        int r = chunk_write(l, ch);
        if (r < 0)
            return r;
        p += ch->len;
        len -= ch->len;
    }
    return 0;
}

/*
 * Send len bytes on l. With nothing in flight the socket gets them at once
 * (uv_try_write: no request, no callback, and no epoll_ctl round trip that a
 * completed uv_write costs on the next loop iteration); whatever it does not
 * take, and every write behind a queued one, is queued in chunks. An error
 * other than EAGAIN is left to uv_write to report, through write_cb, like
 * any other write failure.
 */
static int leg_write(struct leg *l, const uint8_t *p, size_t len)
{
    if (l->queued == 0 && len > 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
        if (n > 0) {
            l->sent += (size_t)n;
            p += n;
            len -= (size_t)n;
        }
    }
    return leg_queue(l, p, len);
}

/* Raw bytes (before TLS, or on a plaintext leg). Behind TLS output still
 * in the queue they join it, to keep their order; otherwise they take
 * chunks (counted at their capacity, so a plaintext leg's backlog is
 * bounded all the same). */
int leg_send(struct leg *l, const void *buf, size_t len)
{
    if (tlsio_pending(&l->tls) > 0) {
        if (tlsio_queue_raw(&l->tls, buf, len) < 0)
            return UV_ENOMEM;
        return leg_flush(l);
    }
    return leg_write(l, buf, len);
}

/*
 * Send what is in l's output queue. Only when nothing is in flight: then
 * straight from the queue to the socket, and what the socket does not take
 * is copied into chunks. While writes are in flight, new output stays in
 * the queue (it grows; it counts in the backlog) and write_cb sends it all
 * once they complete, so many small records share chunks instead of each
 * taking one.
 */
int leg_flush(struct leg *l)
{
    if (!leg_writable(l) || l->queued > 0 || tlsio_pending(&l->tls) == 0)
        return 0;
    const unsigned char *p = NULL;
    size_t n = tlsio_peek(&l->tls, &p);
    int r = leg_write(l, p, n);
    tlsio_consume(&l->tls, n);
    return r;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    /* One buffer per worker: read_cb consumes it before the next read. */
    struct leg *l = h->data;
    (void)suggested;
    buf->base = (char *)l->conn->w->readbuf;
    buf->len = READ_BUF_SIZE;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct leg *l = s->data;
    struct conn *c = l->conn;

    if (nread == 0)
        return;
    if (c->phase != PHASE_OPEN) {
        /* Lingering: discard what the client still sends; its EOF ends it. */
        if (nread < 0 && c->phase == PHASE_LINGER)
            conn_close(c);
        return;
    }
    if (nread < 0) {
        char what[128];
        l->eof = nread == UV_EOF;
        leg_read_stop(l);
        if (l->eof)
            snprintf(what, sizeof(what), "closed the connection");
        else
            snprintf(what, sizeof(what), "read failed: %s", uv_strerror((int)nread));
        l->eof = true;
        conn_leg_lost(l, what);
        return;
    }
    c->last_active = uv_now(c->w->loop); /* --idle-timeout */
    l->last_read = c->last_active;
    if (l == &c->front)
        front_on_data(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        back_on_data(c, (const uint8_t *)buf->base, (size_t)nread);
}

int leg_read_start(struct leg *l)
{
    if (l->reading || l->paused || l->eof || !l->open)
        return 0;
    l->tcp.data = l;
    int r = uv_read_start((uv_stream_t *)&l->tcp, alloc_cb, read_cb);
    if (r == 0)
        l->reading = true;
    return r;
}

void leg_read_stop(struct leg *l)
{
    if (l->reading && l->open)
        uv_read_stop((uv_stream_t *)&l->tcp);
    l->reading = false;
}

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
    if (c->tracking && !c->watching)
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
    if (c->watching) {
        int r = watch_input(c, from, buf, len);
        if (!c->watching && c->tracking && c->idle_since == 0) {
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

/* Anything still to go out on l? (A closed leg's queue never will.) */
static bool leg_unsent(const struct leg *l)
{
    return l->queued > 0 || (leg_writable(l) && tlsio_pending(&l->tls) > 0);
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
