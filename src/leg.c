/*
 * leg.c - one leg's socket: reads into the worker's buffer, writes from
 * recycled chunks, backpressure and the stall clock.
 *
 * Owns the chunk free list and every uv_write. Never frees a connection:
 * it reports failures to conn.c (conn_leg_lost / conn_close) and returns.
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
#include "leg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "relay.h"
#include "back.h"
#include "front.h"
#include "worker.h"

const char *leg_name(const struct leg *l)
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

void leg_chunk_cache_free(struct worker *w)
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
bool leg_writable(const struct leg *l)
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

/* Anything still to go out on l? (A closed leg's queue never will.) */
bool leg_unsent(const struct leg *l)
{
    return l->queued > 0 || (leg_writable(l) && tlsio_pending(&l->tls) > 0);
}
