/*
 * pgassert.h - an always-on assertion for invariants (as libuv's
 * assert()s in stream.c): a broken invariant means the connection's
 * memory can no longer be trusted, so the process stops with a log line
 * naming the place, in release builds too. Use it for what can only be
 * false through a bug in this program, never for what a peer can cause.
 */
#ifndef PGTP_PGASSERT_H
#define PGTP_PGASSERT_H

/* Logs event=assert_failed (file, line, expression) and aborts. */
void pgassert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#define PGTP_ASSERT(expr)                                                                          \
    do {                                                                                           \
        if (__builtin_expect(!(expr), 0))                                                          \
            pgassert_fail(#expr, __FILE__, __LINE__);                                              \
    } while (0)

#endif
