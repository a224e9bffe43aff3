/*
 * pgtrack.h - is a relayed session idle? Message boundaries in both
 * directions, a few bytes of state each, no buffering (--idle-timeout).
 *
 * Pure: no allocation, no I/O; fed the plaintext each way as it passes.
 */
#ifndef PGTP_PGTRACK_H
#define PGTP_PGTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Larger than any message PostgreSQL sends or accepts (1 GB). */
#define PGTRACK_MAX_LEN 0x40000000u

/* One direction's framing: the header being read, or the body to skip. */
struct pgtrack_dir {
    uint8_t hdr[5];
    uint8_t have;  /* header bytes collected */
    uint32_t skip; /* body bytes still to pass */
};

struct pgtrack {
    struct pgtrack_dir client, server;
    uint32_t pending; /* ReadyForQuery messages the server still owes */
    bool unsynced;    /* extended-protocol messages not yet followed by Sync */
    bool failed;      /* the stream could not be framed: never idle */
};

/* Bytes from the client / from the server, in order. 0, or -1 once the
 * stream cannot be framed (then t->failed stays set). */
int pgtrack_client(struct pgtrack *t, const uint8_t *buf, size_t len);
int pgtrack_server(struct pgtrack *t, const uint8_t *buf, size_t len);

/* How many of buf[0..len)'s bytes, the next of the server's stream, end
 * the message under way: 0 at a boundary already, SIZE_MAX if buf does
 * not reach the end of it (or the stream cannot be framed). Reads t, does
 * not feed it (sessions.c: a FATAL goes in between two messages). */
size_t pgtrack_server_boundary(const struct pgtrack *t, const uint8_t *buf, size_t len);

/* Nothing outstanding: every query, Sync and function call answered by a
 * ReadyForQuery, no message after the last Sync, framing intact. */
bool pgtrack_idle(const struct pgtrack *t);

#endif
