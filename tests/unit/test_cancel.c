/*
 * test_cancel.c - unit tests for the bounds on cancel requests: the
 * per-address token bucket of src/cancel.c (rate, burst, the cost of a
 * miss, IPv6 by /64, eviction in a fixed table). The keymap's coalescing
 * is in test_keymap.c.
 * Time is passed in, so every case is exact.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cancel.h"
#include "suites.h"

static struct cancel_rl *fresh(void)
{
    struct cancel_rl *t = calloc(1, sizeof(*t));
    ck_assert_ptr_nonnull(t);
    return t;
}

static const uint8_t A[4] = {192, 0, 2, 1}, B[4] = {192, 0, 2, 2};

/* How many requests addr gets at now_ms before it is refused. */
static int drain(struct cancel_rl *t, const uint8_t *addr, uint64_t now_ms)
{
    int n = 0;
    while (cancel_rl_take(t, addr, 4, now_ms) && n < 1000)
        n++;
    return n;
}

START_TEST(burst_then_rate)
{
    struct cancel_rl *t = fresh();
    ck_assert_int_eq(drain(t, A, 1000), CANCEL_RATE_BURST);
    /* Nothing more at the same instant; one more every 1000 / rate ms. */
    ck_assert(!cancel_rl_take(t, A, 4, 1000));
    ck_assert(!cancel_rl_take(t, A, 4, 1000 + 1000 / CANCEL_RATE_PER_S - 1));
    ck_assert(cancel_rl_take(t, A, 4, 1000 + 1000 / CANCEL_RATE_PER_S));
    /* A second's worth after a second, never more than the burst. */
    ck_assert_int_eq(drain(t, A, 2000 + 1000 / CANCEL_RATE_PER_S), CANCEL_RATE_PER_S);
    ck_assert_int_eq(drain(t, A, 1000000), CANCEL_RATE_BURST);
    /* Another address has its own bucket. */
    ck_assert_int_eq(drain(t, B, 1000), CANCEL_RATE_BURST);
    free(t);
}
END_TEST

START_TEST(misses_cost_more)
{
    struct cancel_rl *t = fresh();
    /* A guesser: every attempt a miss. Over 10 s it gets its burst's worth
     * of misses and then rate / miss-cost a second. */
    int guesses = 0;
    for (uint64_t ms = 0; ms < 10000; ms++)
        while (cancel_rl_take(t, A, 4, ms)) {
            cancel_rl_miss(t, A, 4, ms);
            guesses++;
        }
    int want = CANCEL_RATE_BURST / CANCEL_MISS_COST + 10 * CANCEL_RATE_PER_S / CANCEL_MISS_COST;
    ck_assert_msg(guesses >= want - 1 && guesses <= want + 1, "%d guesses in 10 s, want ~%d",
                  guesses, want);
    free(t);
}
END_TEST

START_TEST(addr_keys)
{
    uint8_t k[16];
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &v4.sin_addr);
    ck_assert_uint_eq(cancel_addr_key((struct sockaddr *)&v4, k), 4);
    ck_assert_mem_eq(k, "\x7f\x00\x00\x02", 4);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6}, b = a;
    inet_pton(AF_INET6, "2001:db8:1:2::1", &a.sin6_addr);
    inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &b.sin6_addr);
    uint8_t kb[16];
    ck_assert_uint_eq(cancel_addr_key((struct sockaddr *)&a, k), 8);
    ck_assert_uint_eq(cancel_addr_key((struct sockaddr *)&b, kb), 8);
    ck_assert_mem_eq(k, kb, 8); /* one /64, one bucket */
    inet_pton(AF_INET6, "::ffff:127.0.0.2", &a.sin6_addr);
    ck_assert_uint_eq(cancel_addr_key((struct sockaddr *)&a, k), 4);
    ck_assert_mem_eq(k, "\x7f\x00\x00\x02", 4);
    ck_assert_uint_eq(cancel_addr_key(NULL, k), 0);
}
END_TEST

START_TEST(bounded_table)
{
    /* 100,000 new addresses through the fixed table, one per ms: each gets
     * its burst, and an address that has spent its budget is not forgotten
     * (the new ones evict their own kind). */
    struct cancel_rl *t = fresh();
    drain(t, A, 0);
    cancel_rl_miss(t, A, 4, 0);
    for (uint32_t i = 0; i < 100000; i++) {
        uint8_t a[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        ck_assert(cancel_rl_take(t, a, 4, i / 1000));
        ck_assert(cancel_rl_take(t, a, 4, i / 1000));
    }
    /* 100 s later A has refilled, but only as time refills it: had it been
     * forgotten it would have a fresh burst at once, at time 0. */
    int left = 0;
    for (size_t i = 0; i < CANCEL_RL_SETS; i++)
        for (size_t j = 0; j < CANCEL_RL_WAYS; j++)
            if (t->slot[i][j].len == 4 && memcmp(t->slot[i][j].addr, A, 4) == 0)
                left = t->slot[i][j].milli;
    ck_assert_int_lt(left, 0);
    free(t);
}
END_TEST

START_TEST(top_source)
{
    struct cancel_rl *t = fresh();
    char out[64];
    ck_assert_uint_eq(cancel_rl_top(t, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "-");
    cancel_rl_take(t, A, 4, 0);
    cancel_rl_take(t, B, 4, 0);
    for (int i = 0; i < 5; i++)
        cancel_rl_refused(t, A, 4);
    cancel_rl_refused(t, B, 4);
    ck_assert_uint_eq(cancel_rl_top(t, out, sizeof(out)), 5);
    ck_assert_str_eq(out, "192.0.2.1");
    ck_assert_uint_eq(cancel_rl_top(t, out, sizeof(out)), 0); /* reset */
    free(t);
}
END_TEST

Suite *cancel_suite(void)
{
    Suite *s = suite_create("cancel");
    TCase *tc = tcase_create("cancel");
    tcase_add_test(tc, burst_then_rate);
    tcase_add_test(tc, misses_cost_more);
    tcase_add_test(tc, addr_keys);
    tcase_add_test(tc, bounded_table);
    tcase_add_test(tc, top_source);
    suite_add_tcase(s, tc);
    return s;
}
