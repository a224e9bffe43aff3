/*
 * test_leg_tcp.c - unit tests for src/leg_tcp.c, the TCP transport of a
 * leg, on a loop of the test's own: two legs over a real loopback TCP
 * connection. Bytes sent by one arrive as LEG_RAW at the other (a
 * payload larger than one read buffer, so several reads and a queued
 * write); leg_shutdown reaches the peer as LEG_EOF and is reported as
 * LEG_SHUT; a write after the peer reset is LEG_WRITE_FAILED or LEG_ERROR;
 * leg_close reports LEG_CLOSED last, and uv_loop_close() returns 0.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "leg.h"
#include "netpair.h"
#include "suites.h"
#include "worker.h"

#define BIG ((size_t)3 * READ_BUF_SIZE + 123)

struct tleg {
    struct leg leg; /* first: the callback gets &leg */
    unsigned char *in;
    size_t in_len;
    bool eof, shut, closed, failed, drained;
    int nev_after_closed;
};

static struct worker *w;

static void on_event(struct leg *l, enum leg_event ev, const uint8_t *buf, size_t len)
{
    struct tleg *t = (struct tleg *)l;
    if (t->closed)
        t->nev_after_closed++;
    switch (ev) {
    case LEG_RAW:
        ck_assert_uint_le(t->in_len + len, BIG);
        memcpy(t->in + t->in_len, buf, len);
        t->in_len += len;
        break;
    case LEG_EOF:
        t->eof = true;
        break;
    case LEG_SHUT:
        t->shut = true;
        break;
    case LEG_DRAINED:
        t->drained = true;
        break;
    case LEG_ERROR:
    case LEG_WRITE_FAILED:
        t->failed = true;
        break;
    case LEG_CLOSED:
        t->closed = true;
        break;
    default:
        break;
    }
}

/* A connected pair of non-blocking loopback TCP descriptors. */
static struct tleg *tleg_new(int fd)
{
    struct tleg *t = calloc(1, sizeof(*t));
    ck_assert_ptr_nonnull(t);
    t->in = malloc(BIG);
    ck_assert_ptr_nonnull(t->in);
    leg_init(&t->leg, NULL, w, on_event);
    leg_tcp_open(&t->leg);
    ck_assert(t->leg.open);
    ck_assert_ptr_eq(t->leg.tp, &leg_tcp_transport);
    ck_assert_int_eq(uv_tcp_open(&t->leg.tcp, fd), 0);
    return t;
}

static void tleg_free(struct tleg *t)
{
    ck_assert(t->closed);
    ck_assert_int_eq(t->nev_after_closed, 0);
    leg_free(&t->leg);
    free(t->in);
    free(t);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN); /* as main.c: a write to a reset peer is an error, not a signal */
    w = calloc(1, sizeof(*w));
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(uv_loop_init(&w->loop_storage), 0);
    w->loop = &w->loop_storage;
}

static void teardown(void)
{
    leg_chunk_cache_free(w);
    ck_assert_int_eq(uv_loop_close(w->loop), 0);
    free(w);
}

/* Run the loop until done(a, b) or 2000 turns of up to a few ms each. */
static void run_until(struct tleg *a, struct tleg *b, bool (*done)(struct tleg *, struct tleg *))
{
    for (int i = 0; i < 2000 && !done(a, b); i++)
        uv_run(w->loop, UV_RUN_ONCE);
    ck_assert(done(a, b));
}

static bool got_all_and_eof(struct tleg *a, struct tleg *b)
{
    (void)a;
    return b->in_len == BIG && b->eof;
}

static bool both_closed(struct tleg *a, struct tleg *b)
{
    return a->closed && b->closed;
}

START_TEST(test_bytes_then_shutdown)
{
    int fds[2];
    netpair_tcp(fds, SOCK_CLOEXEC);
    struct tleg *a = tleg_new(fds[0]), *b = tleg_new(fds[1]);
    ck_assert_int_eq(leg_read_start(&a->leg), 0);
    ck_assert_int_eq(leg_read_start(&b->leg), 0);
    unsigned char *out = malloc(BIG);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < BIG; i++)
        out[i] = (unsigned char)(i * 31 + 7);
    ck_assert_int_eq(leg_send(&a->leg, out, BIG), 0);
    ck_assert_int_eq(leg_shutdown(&a->leg), 0);
    run_until(a, b, got_all_and_eof);
    ck_assert_mem_eq(b->in, out, BIG);
    ck_assert(a->shut);
    ck_assert(!b->failed);
    ck_assert_uint_eq(a->leg.sent, BIG);
    ck_assert_uint_eq(leg_backlog(&a->leg), 0);
    leg_close(&a->leg);
    leg_close(&b->leg);
    leg_close(&b->leg); /* idempotent */
    run_until(a, b, both_closed);
    ck_assert_int_eq(uv_run(w->loop, UV_RUN_DEFAULT), 0);
    free(out);
    tleg_free(a);
    tleg_free(b);
}
END_TEST

static bool a_failed(struct tleg *a, struct tleg *b)
{
    (void)b;
    return a->failed || a->eof;
}

/* The peer resets (SO_LINGER 0): the leg learns it from a write or a read. */
START_TEST(test_peer_reset)
{
    int fds[2];
    netpair_tcp(fds, SOCK_CLOEXEC);
    struct tleg *a = tleg_new(fds[0]);
    ck_assert_int_eq(leg_read_start(&a->leg), 0);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    ck_assert_int_eq(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fds[1]);
    static const char msg[] = "after the reset";
    for (int i = 0; i < 50 && !a->failed; i++) {
        if (leg_send(&a->leg, msg, sizeof(msg)) < 0)
            a->failed = true; /* refused at once: also a clear answer */
        uv_run(w->loop, UV_RUN_NOWAIT);
    }
    run_until(a, NULL, a_failed);
    ck_assert(a->failed);
    leg_close(&a->leg);
    ck_assert_int_eq(uv_run(w->loop, UV_RUN_DEFAULT), 0);
    tleg_free(a);
}
END_TEST

Suite *leg_tcp_suite(void)
{
    Suite *s = suite_create("leg_tcp");
    TCase *tc = tcase_create("leg_tcp");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_bytes_then_shutdown);
    tcase_add_test(tc, test_peer_reset);
    suite_add_tcase(s, tc);
    return s;
}
