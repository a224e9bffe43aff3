/*
 * watch.h - the start-up watch, from the forwarded StartupMessage to the
 * upstream's ReadyForQuery.
 */
#ifndef PGTP_WATCH_H
#define PGTP_WATCH_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct leg;

/* Plaintext from one leg while watching: framed, looked at, passed on.
 * 0, or -1 when the connection is ending (the caller returns). */
int watch_input(struct conn *c, struct leg *from, const uint8_t *buf, size_t len);
/* Free the watch buffers (idempotent). */
void watch_free(struct conn *c);

#endif
