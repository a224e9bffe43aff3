/*
 * pgtrack.c - protocol-level idleness of a relayed session (--idle-timeout).
 *
 * Which leg spoke last says nothing about a query that is still running
 * (a NOTICE came, then nothing for minutes) or one sent in the same loop
 * iteration as the last result. The protocol does: each simple Query
 * ('Q'), Sync ('S') and FunctionCall ('F') from the client is answered by
 * exactly one ReadyForQuery ('Z'); extended-protocol messages (Parse,
 * Bind, Execute, Flush...) run until their Sync. COPY data ('d', 'c', 'f')
 * belongs to the query that started the COPY.
 *
 * Each direction is framed with a 5-byte header (type, length) and its
 * body skipped, across reads. Owns nothing; must never buffer a body,
 * allocate, or trust a length beyond PGTRACK_MAX_LEN (then it gives up and
 * the session is never called idle: the conservative answer).
 */
#include "pgtrack.h"

#include <string.h>

/* Feed one direction; on_msg(t, type) for each whole header. */
static int frame(struct pgtrack *t, struct pgtrack_dir *d, const uint8_t *buf, size_t len,
                 void (*on_msg)(struct pgtrack *, uint8_t))
{
    if (t->failed)
        return -1;
    while (len > 0) {
        if (d->skip > 0) {
            size_t n = len < d->skip ? len : d->skip;
            d->skip -= (uint32_t)n;
            buf += n;
            len -= n;
            continue;
        }
        if (d->have == 0 && len >= sizeof(d->hdr)) {
            /* A whole header in buf (the usual case): no byte-by-byte copy.
             * Every session frames the server's stream (relay.c), so this
             * loop is on the data path of every DataRow. */
            uint32_t mlen =
                (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
            if (mlen < 4 || mlen > PGTRACK_MAX_LEN) {
                t->failed = true;
                return -1;
            }
            uint8_t type = buf[0];
            buf += sizeof(d->hdr);
            len -= sizeof(d->hdr);
            d->skip = mlen - 4;
            on_msg(t, type);
            continue;
        }
        d->hdr[d->have++] = *buf++;
        len--;
        if (d->have < sizeof(d->hdr))
            continue;
        uint32_t mlen = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
                        (uint32_t)d->hdr[3] << 8 | d->hdr[4];
        d->have = 0;
        if (mlen < 4 || mlen > PGTRACK_MAX_LEN) {
            t->failed = true;
            return -1;
        }
        d->skip = mlen - 4;
        on_msg(t, d->hdr[0]);
    }
    return t->failed ? -1 : 0;
}

static void client_msg(struct pgtrack *t, uint8_t type)
{
    switch (type) {
    case 'S':
        t->unsynced = false;
        /* fall through */
    case 'Q':
    case 'F':
        if (t->pending == UINT32_MAX)
            t->failed = true; /* cannot count further: never idle */
        else
            t->pending++;
        break;
    case 'd': /* CopyData, CopyDone, CopyFail: inside a query already counted */
    case 'c':
    case 'f':
    case 'X': /* Terminate */
        break;
    default: /* Parse, Bind, Execute, Describe, Close, Flush, anything else */
        t->unsynced = true;
        break;
    }
}

static void server_msg(struct pgtrack *t, uint8_t type)
{
    if (type == 'Z' && t->pending > 0)
        t->pending--;
}

int pgtrack_client(struct pgtrack *t, const uint8_t *buf, size_t len)
{
    return frame(t, &t->client, buf, len, client_msg);
}

int pgtrack_server(struct pgtrack *t, const uint8_t *buf, size_t len)
{
    return frame(t, &t->server, buf, len, server_msg);
}

bool pgtrack_idle(const struct pgtrack *t)
{
    return !t->failed && t->pending == 0 && !t->unsynced;
}

size_t pgtrack_server_boundary(const struct pgtrack *t, const uint8_t *buf, size_t len)
{
    const struct pgtrack_dir *d = &t->server;
    if (t->failed)
        return SIZE_MAX;
    if (d->have == 0)
        return d->skip == 0 ? 0 : (len >= d->skip ? d->skip : SIZE_MAX);
    /* Part of a header: complete it from buf, then its body. */
    size_t need = sizeof(d->hdr) - d->have;
    if (len < need)
        return SIZE_MAX;
    uint8_t h[5];
    memcpy(h, d->hdr, d->have);
    memcpy(h + d->have, buf, need);
    uint32_t mlen = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
    if (mlen < 4 || mlen > PGTRACK_MAX_LEN || len - need < mlen - 4)
        return SIZE_MAX;
    return need + (mlen - 4);
}
