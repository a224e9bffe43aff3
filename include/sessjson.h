/*
 * sessjson.h - the admin endpoint's /sessions answers as JSON. Pure: no
 * I/O, no threads; unit tests drive it with plain structs.
 */
#ifndef PGTP_SESSJSON_H
#define PGTP_SESSJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "sessions.h"

/* A /sessions body stops growing at this size: "truncated": true. */
#define SESS_BODY_MAX ((size_t)8 * 1024 * 1024)

/* A growing buffer; ok turns false on out of memory. */
struct jbuf {
    char *b;
    size_t len, cap;
    bool ok;
};

/* s as a JSON string, quotes included: '"', '\\' and control characters
 * escaped (\u00XX), valid UTF-8 kept, an invalid byte as \ufffd. */
void sessjson_string(struct jbuf *j, const char *s);
/* A NUL-terminated copy of the text in j->b (j->len bytes). */
void sessjson_raw(struct jbuf *j, const char *s);

/*
 * The body of GET /sessions (all: true) or GET /sessions/ID (the one item)
 * from what the workers answered, sorted by id. At most max bytes of
 * sessions: those that do not fit are left out and "truncated" is true.
 * NULL on out of memory; else a malloc'd body and its length.
 */
char *sessjson_render(const struct sess_req *req, bool all, size_t max, size_t *len);

#endif
