/*
 * test_fdreserve.c - unit tests for the descriptor reserve of src/conn.c:
 * conn_fd_reserve() keeps limit/16 descriptors (at least 8, at most 1,024)
 * for telling clients 53300, and conn_fd_nearly_out() says whether a
 * descriptor number is one of them at the process's current soft limit.
 * The edge cases lower the soft RLIMIT_NOFILE and put it back; they stay
 * at or below 1,000, which valgrind (whose limits are its own) also allows.
 */
#include <stdbool.h>
#include <sys/resource.h>

#include "suites.h"
#include "conn.h"

START_TEST(reserve_sizes)
{
    static const unsigned long long cases[][2] = {
        {0, 8},     {64, 8},     {100, 8},      {128, 8},      {144, 9},      {1000, 62},
        {1024, 64}, {4096, 256}, {16384, 1024}, {16400, 1024}, {20000, 1024}, {1048576, 1024},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(conn_fd_reserve(cases[i][0]) == cases[i][1],
                      "limit %llu: reserve %llu, want %llu", cases[i][0],
                      conn_fd_reserve(cases[i][0]), cases[i][1]);
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
    bool below = conn_fd_nearly_out(first_reserved - 1, &limit);
    ck_assert_uint_eq(limit, (unsigned long long)soft);
    bool at = conn_fd_nearly_out(first_reserved, &limit);
    bool last = conn_fd_nearly_out((int)soft - 1, &limit);
    bool none = conn_fd_nearly_out(-1, &limit);

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

Suite *fdreserve_suite(void)
{
    Suite *s = suite_create("fdreserve");
    TCase *tc = tcase_create("reserve");
    tcase_add_test(tc, reserve_sizes);
    tcase_add_test(tc, reserve_edge);
    suite_add_tcase(s, tc);
    return s;
}
