/*
 * leg.c - one leg: the write path (recycled chunks, the TLS output queue),
 * the read path (the worker's buffer, TLS fed and the handshake driven),
 * and the events that report both to the leg's owner.
 *
 * Owns the chunk free lists and every write. Knows no session and no
 * protocol: what the bytes mean, and what a failure costs, is for the
 * owner's callback (conn.c). Never frees the leg: memory belongs to the
 * owner, which may free it once LEG_CLOSED has been reported. While writes
 * are in flight, new output waits in the TLS queue and leaves in one piece
 * when they complete: a thousand small messages cost their bytes, not a
 * chunk each. A leg's backlog counts what it costs: the capacity of its
 * chunks in flight, not their payload, plus its TLS output queue.
 */
#include "leg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgassert.h"
#include "worker.h"

static void emit(struct leg *l, enum leg_event ev, const uint8_t *buf, size_t len)
{
    l->on_event(l, ev, buf, len);
}

static void emit_text(struct leg *l, enum leg_event ev, const char *text)
{
    l->on_event(l, ev, (const uint8_t *)text, strlen(text));
}

void leg_init(struct leg *l, struct conn *c, struct worker *w, leg_event_cb cb)
{
    memset(l, 0, sizeof(*l));
    l->conn = c;
    l->w = w;
    l->on_event = cb;
    l->tp = &leg_tcp_transport;
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

bool leg_writable(const struct leg *l)
{
    return l->open && !l->tp->closing(l);
}

size_t leg_backlog(const struct leg *l)
{
    return l->queued + tlsio_pending(&l->tls);
}

size_t leg_write_queue(const struct leg *l)
{
    return l->open ? l->tp->write_queue(l) : 0;
}

bool leg_unsent(const struct leg *l)
{
    /* A closing leg's writes in flight are cancelled: they would never
     * report LEG_DRAINED, so a drain that counted them would wait them out. */
    return leg_writable(l) && (l->queued > 0 || tlsio_pending(&l->tls) > 0);
}

void leg_transport_written(struct chunk *ch, int status)
{
    struct leg *l = ch->leg;

    PGTP_ASSERT(l->queued >= ch->cap);
    l->queued -= ch->cap;
    chunk_put(l->w, ch);
    if (!leg_writable(l))
        return; /* closing: the owner is no longer interested */
    if (status < 0) {
        char what[128];
        snprintf(what, sizeof(what), "write failed: %s", uv_strerror(status));
        emit_text(l, LEG_WRITE_FAILED, what);
        return;
    }
    /* The last write in flight is done: what gathered meanwhile goes now. */
    if (l->queued == 0 && leg_flush(l) < 0) {
        emit_text(l, LEG_WRITE_FAILED, "write failed");
        return;
    }
    emit(l, LEG_DRAINED, NULL, 0);
}

/* Queue one chunk on l. Returns 0 or a negative libuv error (chunk freed). */
static int chunk_write(struct leg *l, struct chunk *ch)
{
    ch->leg = l;
    int r = l->tp->write(l, ch);
    if (r < 0) {
        chunk_put(l->w, ch);
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
        struct chunk *ch = chunk_get(l->w, len);
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
 * Send len bytes on l. With nothing in flight the transport gets them at
 * once (for TCP uv_try_write: no request, no callback, and no epoll_ctl
 * round trip that a completed uv_write costs on the next loop iteration);
 * whatever it does not take, and every write behind a queued one, is
 * queued in chunks. An error other than EAGAIN is left to the queued write
 * to report, like any other write failure.
 */
static int leg_write(struct leg *l, const uint8_t *p, size_t len)
{
    if (l->queued == 0 && len > 0) {
        int n = l->tp->try_write(l, p, len);
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
 * straight from the queue to the transport, and what it does not take is
 * copied into chunks. While writes are in flight, new output stays in the
 * queue (it grows; it counts in the backlog) and the completion sends it
 * all, so many small records share chunks instead of each taking one.
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

int leg_shutdown(struct leg *l)
{
    if (!leg_writable(l) || l->shut)
        return -1;
    l->shut = true;
    return l->tp->shutdown(l);
}

void leg_transport_shut(struct leg *l, int status)
{
    (void)status; /* failed or not, the leg is done with writing */
    emit(l, LEG_SHUT, NULL, 0);
}

void leg_close(struct leg *l)
{
    if (l->open && !l->tp->closing(l))
        l->tp->close(l);
}

void leg_transport_closed(struct leg *l)
{
    l->open = false;
    l->reading = false;
    emit(l, LEG_CLOSED, NULL, 0);
}

void leg_free(struct leg *l)
{
    tlsio_free(&l->tls);
}

void leg_transport_buffer(struct leg *l, uv_buf_t *buf)
{
    /* One buffer per worker: a read is consumed before the next. */
    buf->base = (char *)l->w->readbuf;
    buf->len = READ_BUF_SIZE;
}

void leg_transport_read(struct leg *l, ssize_t nread, const uint8_t *buf)
{
    if (nread == 0)
        return;
    if (nread < 0) {
        char what[128];
        bool eof = nread == UV_EOF;
        leg_read_stop(l);
        l->eof = true;
        if (eof) {
            emit(l, LEG_EOF, NULL, 0);
            return;
        }
        snprintf(what, sizeof(what), "read failed: %s", uv_strerror((int)nread));
        emit_text(l, LEG_ERROR, what);
        return;
    }
    l->last_read = uv_now(l->w->loop);
    if (l->discard)
        return;
    if (l->tls_state == LEG_TLS_NONE) {
        emit(l, LEG_RAW, buf, (size_t)nread);
        return;
    }
    if (tlsio_feed(&l->tls, buf, (size_t)nread) < 0) {
        emit_text(l, LEG_ERROR, "out of memory");
        return;
    }
    if (l->tls_state == LEG_TLS_HANDSHAKE)
        leg_tls_step(l);
    else
        emit(l, LEG_DATA, NULL, 0);
}

int leg_read_start(struct leg *l)
{
    if (l->reading || l->paused || l->eof || !l->open)
        return 0;
    int r = l->tp->read_start(l);
    if (r == 0)
        l->reading = true;
    return r;
}

void leg_read_stop(struct leg *l)
{
    if (l->reading && l->open)
        l->tp->read_stop(l);
    l->reading = false;
}

int leg_read_discard(struct leg *l)
{
    l->discard = true;
    l->paused = false;
    return leg_read_start(l);
}

/* ---- TLS ---- */

int leg_tls_init(struct leg *l, SSL_CTX *ctx, bool accept, char *err, size_t errlen)
{
    PGTP_ASSERT(l->tls_state == LEG_TLS_NONE && l->tls.ssl == NULL);
    return tlsio_init(&l->tls, ctx, accept, err, errlen);
}

void leg_tls_begin(struct leg *l)
{
    PGTP_ASSERT(l->tls_state == LEG_TLS_NONE && l->tls.ssl != NULL);
    l->tls_state = LEG_TLS_HANDSHAKE;
}

int leg_tls_feed(struct leg *l, const void *buf, size_t len)
{
    return tlsio_feed(&l->tls, buf, len);
}

void leg_tls_step(struct leg *l)
{
    PGTP_ASSERT(l->tls_state == LEG_TLS_HANDSHAKE);
    enum tls_res r = tlsio_handshake(&l->tls);
    if (r == TLS_WANT) {
        if (leg_flush(l) < 0)
            emit_text(l, LEG_ERROR, "write failed");
        return;
    }
    if (r != TLS_OK) {
        l->tls_state = LEG_TLS_BROKEN;
        emit(l, LEG_TLS_FAILED, NULL, 0);
        return;
    }
    l->tls_state = LEG_TLS_UP;
    emit(l, LEG_TLS_READY, NULL, 0);
}

enum tls_res leg_read_plain(struct leg *l, void *buf, size_t cap, size_t *n)
{
    return tlsio_read(&l->tls, buf, cap, n);
}

int leg_write_plain(struct leg *l, const void *buf, size_t len)
{
    if (l->plain)
        return leg_send(l, buf, len) < 0 ? -1 : 0;
    return tlsio_write(&l->tls, buf, len);
}

int leg_tls_close(struct leg *l)
{
    tlsio_shutdown(&l->tls);
    return leg_flush(l);
}

void leg_tls_release(struct leg *l)
{
    if (!l->plain)
        tlsio_release(&l->tls);
    if (l->open && l->tp->release != NULL)
        l->tp->release(l); /* a bridge leg's outer TLS */
}

SSL *leg_ssl(const struct leg *l)
{
    return l->tls.ssl;
}

const char *leg_tls_version(const struct leg *l)
{
    return tlsio_version(&l->tls);
}

const char *leg_tls_cipher(const struct leg *l)
{
    return tlsio_cipher(&l->tls);
}

const char *leg_tls_error(char *buf, size_t len)
{
    return tlsio_error(buf, len);
}
