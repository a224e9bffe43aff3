/*
 * test_admit.c - unit tests for the admission policy of src/admit.c: the
 * budget of early upstream legs and its waste window, and the descriptor
 * reserve:
 * admit_fd_reserve() keeps limit/16 descriptors (at least 8, at most 1,024)
 * for telling clients 53300, and admit_fd_nearly_out() says whether a
 * descriptor number is one of them at the process's current soft limit.
 * The edge cases lower the soft RLIMIT_NOFILE and put it back; they stay
 * at or below 1,000, which valgrind (whose limits are its own) also allows.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/resource.h>

#include "suites.h"
#include "admit.h"

START_TEST(reserve_sizes)
{
    static const unsigned long long cases[][2] = {
        {0, 8},     {64, 8},     {100, 8},      {128, 8},      {144, 9},      {1000, 62},
        {1024, 64}, {4096, 256}, {16384, 1024}, {16400, 1024}, {20000, 1024}, {1048576, 1024},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(admit_fd_reserve(cases[i][0]) == cases[i][1],
                      "limit %llu: reserve %llu, want %llu", cases[i][0],
                      admit_fd_reserve(cases[i][0]), cases[i][1]);
}
END_TEST

/* Sets the soft limit to soft (the hard one stays) and checks the edge:
 * the last descriptor number sessions may use, and the first reserved. */
static void check_edge(rlim_t soft, int first_reserved)
{
    struct rlimit old, rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_msg(old.rlim_max == RLIM_INFINITY || old.rlim_max >= soft,
                  "the hard open-files limit (%llu) is below %llu: raise ulimit -Hn",
                  (unsigned long long)old.rlim_max, (unsigned long long)soft);
    rl = old;
    rl.rlim_cur = soft;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);

    unsigned long long limit = 0;
    bool below = admit_fd_nearly_out(first_reserved - 1, &limit);
    ck_assert_uint_eq(limit, (unsigned long long)soft);
    bool at = admit_fd_nearly_out(first_reserved, &limit);
    bool last = admit_fd_nearly_out((int)soft - 1, &limit);
    bool none = admit_fd_nearly_out(-1, &limit);

    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_msg(!below, "fd %d of %llu is not reserved", first_reserved - 1,
                  (unsigned long long)soft);
    ck_assert_msg(at, "fd %d of %llu is reserved", first_reserved, (unsigned long long)soft);
    ck_assert(last);
    ck_assert(!none);
}

START_TEST(reserve_edge)
{
    check_edge(64, 56);    /* 64/16 = 4, raised to 8: the abuse test's limit */
    check_edge(1000, 938); /* 62 */
}
END_TEST

/* ADMIT_EARLY_MAX legs at once, then FULL until one ends. */
START_TEST(early_budget)
{
    static struct admit_early a; /* all-zero: fresh */
    unsigned n = 0;
    memset(&a, 0, sizeof(a));
    for (unsigned i = 0; i < ADMIT_EARLY_MAX; i++)
        ck_assert_int_eq(admit_early_take(&a, 100, &n), ADMIT_EARLY_OK);
    ck_assert_int_eq(admit_early_take(&a, 100, &n), ADMIT_EARLY_FULL);
    ck_assert_uint_eq(n, ADMIT_EARLY_MAX);
    admit_early_end(&a, 100, false); /* on to its login: not wasted */
    ck_assert_int_eq(admit_early_take(&a, 100, &n), ADMIT_EARLY_OK);
    ck_assert_int_eq(admit_early_take(&a, 100, &n), ADMIT_EARLY_FULL);
}
END_TEST

/* More than ADMIT_WASTE_MAX wasted within this second and the last one:
 * no early legs; two quiet seconds later, early legs again. */
START_TEST(early_waste_window)
{
    static struct admit_early a;
    unsigned n = 0;
    memset(&a, 0, sizeof(a));
    for (unsigned i = 0; i < ADMIT_WASTE_MAX; i++) {
        ck_assert_int_eq(admit_early_take(&a, 200, &n), ADMIT_EARLY_OK);
        admit_early_end(&a, 200, true);
    }
    /* exactly the bound: still allowed */
    ck_assert_int_eq(admit_early_take(&a, 200, &n), ADMIT_EARLY_OK);
    admit_early_end(&a, 201, true); /* the 33rd, in the next second */
    ck_assert_int_eq(admit_early_take(&a, 201, &n), ADMIT_EARLY_WASTED);
    ck_assert_uint_eq(n, ADMIT_WASTE_MAX + 1);
    /* 202: second 200's waste has left the window, 201's one remains */
    ck_assert_int_eq(admit_early_take(&a, 202, &n), ADMIT_EARLY_OK);
    admit_early_end(&a, 202, false);
    /* a gap of more than a second forgets everything */
    for (unsigned i = 0; i < ADMIT_WASTE_MAX + 1; i++) {
        ck_assert_int_eq(admit_early_take(&a, 300, &n), ADMIT_EARLY_OK);
        admit_early_end(&a, 300, true);
    }
    ck_assert_int_eq(admit_early_take(&a, 300, &n), ADMIT_EARLY_WASTED);
    ck_assert_int_eq(admit_early_take(&a, 305, &n), ADMIT_EARLY_OK);
}
END_TEST

START_TEST(client_count)
{
    unsigned first = admit_client_open();
    ck_assert_uint_eq(admit_client_open(), first + 1);
    admit_client_close();
    admit_client_close();
    ck_assert_uint_eq(admit_client_open(), first);
    admit_client_close();
}
END_TEST

Suite *admit_suite(void)
{
    Suite *s = suite_create("admit");
    TCase *tc = tcase_create("reserve");
    tcase_add_test(tc, reserve_sizes);
    tcase_add_test(tc, reserve_edge);
    suite_add_tcase(s, tc);
    tc = tcase_create("early");
    tcase_add_test(tc, early_budget);
    tcase_add_test(tc, early_waste_window);
    tcase_add_test(tc, client_count);
    suite_add_tcase(s, tc);
    return s;
}
