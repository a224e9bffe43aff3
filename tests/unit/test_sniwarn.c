/*
 * test_sniwarn.c - unit tests for src/sniwarn.c's rate limit
 * (sni_limiter_allow takes the time, so every case is exact): one line per
 * name per SNI_PER_NAME_S, SNI_LINES_PER_MIN lines a minute overall, the
 * count of lines not logged told on the next one, long names, the slots
 * reused when more names come than SNI_SLOTS, and a clock that goes back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sniwarn.h"
#include "suites.h"

START_TEST(test_sni_limiter)
{
    struct sni_limiter *l = calloc(1, sizeof(*l));
    ck_assert_ptr_nonnull(l);
    uint64_t sup = 99;
    const int64_t t = 1800000000;
    ck_assert(sni_limiter_allow(l, "a.example", t, &sup));
    ck_assert_uint_eq(sup, 0);
    ck_assert(!sni_limiter_allow(l, "a.example", t + 1, &sup));
    ck_assert(!sni_limiter_allow(l, "a.example", t + 59, &sup));
    ck_assert(sni_limiter_allow(l, "a.example", t + 60, &sup));
    ck_assert_uint_eq(sup, 2); /* the two not logged */
    /* All names together: SNI_LINES_PER_MIN lines a minute. */
    int allowed = 0;
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "n%d.example", i);
        allowed += sni_limiter_allow(l, name, t + 61, &sup);
    }
    ck_assert_int_eq(allowed, SNI_LINES_PER_MIN - 1); /* a.example took one at t + 60 */
    ck_assert(sni_limiter_allow(l, "z.example", t + 121, &sup));
    ck_assert_uint_eq(sup, 100 - (SNI_LINES_PER_MIN - 1)); /* told on the next line */
    /* A name longer than the slot: matched on its first SNI_NAME_MAX - 1 bytes. */
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert(sni_limiter_allow(l, longname, t + 122, &sup));
    ck_assert(!sni_limiter_allow(l, longname, t + 123, &sup));
    free(l);
}
END_TEST

/* More names than slots: the oldest slot is reused, so a name seen long
 * ago is logged again rather than suppressed forever. */
START_TEST(test_sni_limiter_slots_reused)
{
    struct sni_limiter *l = calloc(1, sizeof(*l));
    ck_assert_ptr_nonnull(l);
    uint64_t sup = 0;
    const int64_t t = 1800000000;
    char name[32];
    /* SNI_SLOTS + 1 names, each in a minute of its own (under the global cap) */
    for (int i = 0; i <= SNI_SLOTS; i++) {
        snprintf(name, sizeof(name), "s%d.example", i);
        ck_assert(sni_limiter_allow(l, name, t + (int64_t)i * 60, &sup));
    }
    /* s0 was evicted by the last one: logged again at once... */
    ck_assert(sni_limiter_allow(l, "s0.example", t + (int64_t)SNI_SLOTS * 60 + 1, &sup));
    /* ...and then limited as usual */
    ck_assert(!sni_limiter_allow(l, "s0.example", t + (int64_t)SNI_SLOTS * 60 + 2, &sup));
    free(l);
}
END_TEST

/* The global cap resets at the next minute, and a clock stepped back
 * starts a new window rather than silencing the warning. */
START_TEST(test_sni_limiter_window)
{
    struct sni_limiter *l = calloc(1, sizeof(*l));
    ck_assert_ptr_nonnull(l);
    uint64_t sup = 0;
    const int64_t t = 1800000000;
    char name[32];
    int allowed = 0;
    for (int i = 0; i < SNI_LINES_PER_MIN + 5; i++) {
        snprintf(name, sizeof(name), "w%d.example", i);
        allowed += sni_limiter_allow(l, name, t, &sup);
    }
    ck_assert_int_eq(allowed, SNI_LINES_PER_MIN);
    ck_assert(!sni_limiter_allow(l, "late.example", t + 59, &sup));
    ck_assert(sni_limiter_allow(l, "late.example", t + 60, &sup));
    ck_assert_uint_eq(sup, 5 + 1); /* the five over the cap, and late's own */
    /* the clock steps back an hour */
    ck_assert(sni_limiter_allow(l, "back.example", t - 3600, &sup));
    ck_assert_uint_eq(sup, 0);
    free(l);
}
END_TEST

Suite *sniwarn_suite(void)
{
    Suite *s = suite_create("sniwarn");
    TCase *t = tcase_create("limiter");
    tcase_add_test(t, test_sni_limiter);
    tcase_add_test(t, test_sni_limiter_slots_reused);
    tcase_add_test(t, test_sni_limiter_window);
    suite_add_tcase(s, t);
    return s;
}
