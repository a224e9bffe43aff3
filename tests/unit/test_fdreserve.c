/*
 * test_fdreserve.c - unit tests for the descriptor reserve of src/conn.c:
 * conn_fd_nearly_out() keeps limit/16 descriptors (at least 8, at most
 * 1,024) for telling clients 53300, so the first reserved descriptor
 * number is limit - reserve. Each case lowers the soft RLIMIT_NOFILE and
 * puts it back.
 */
#include <stdbool.h>
#include <sys/resource.h>

#include "proxy.h"
#include "suites.h"

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

START_TEST(reserve_min_8)
{
    check_edge(64, 56); /* 64/16 = 4, raised to 8 */
    check_edge(100, 92);
}
END_TEST

START_TEST(reserve_sixteenth)
{
    check_edge(1000, 938);  /* 62 */
    check_edge(4096, 3840); /* 256 */
}
END_TEST

START_TEST(reserve_max_1024)
{
    check_edge(16384, 15360); /* exactly 1,024 */
    check_edge(20000, 18976); /* capped: the load test's budget */
}
END_TEST

Suite *fdreserve_suite(void)
{
    Suite *s = suite_create("fdreserve");
    TCase *tc = tcase_create("edge");
    tcase_add_test(tc, reserve_min_8);
    tcase_add_test(tc, reserve_sixteenth);
    tcase_add_test(tc, reserve_max_1024);
    suite_add_tcase(s, tc);
    return s;
}
