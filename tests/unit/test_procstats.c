/*
 * test_procstats.c - unit tests for src/procstats.c against what this very
 * process can check by other means: descriptors it opens and closes, its
 * RLIMIT_NOFILE, memory it touches, CPU it burns, and when it started.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "procstats.h"
#include "suites.h"

START_TEST(test_descriptors)
{
    struct process_stats a, b;
    process_stats_read(&a);
    ck_assert_int_ge(a.open_fds, 3); /* stdin, stdout, stderr at least */
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fds[i], 0);
    }
    process_stats_read(&b);
    ck_assert_int_eq(b.open_fds, a.open_fds + 5);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    process_stats_read(&b);
    ck_assert_int_eq(b.open_fds, a.open_fds);

    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur == RLIM_INFINITY)
        ck_assert_int_eq(b.max_fds, -1);
    else
        ck_assert_int_eq(b.max_fds, (int64_t)rl.rlim_cur);
}
END_TEST

START_TEST(test_memory_and_cpu)
{
    struct process_stats a, b;
    process_stats_read(&a);
    ck_assert_int_gt(a.rss_bytes, 0);
    ck_assert_int_ge(a.virtual_bytes, a.rss_bytes);
    /* Touch 32 MB: resident memory grows by most of it. */
    size_t n = 32u << 20;
    char *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    memset(p, 1, n);
    /* Burn some CPU, so the counter moves by more than its resolution. */
    volatile unsigned long x = 0;
    clock_t start = clock();
    while (clock() - start < CLOCKS_PER_SEC / 20)
        x += (unsigned long)p[x % n];
    process_stats_read(&b);
    ck_assert_int_ge(b.rss_bytes, a.rss_bytes + (int64_t)(n / 2));
    ck_assert(b.cpu_seconds >= a.cpu_seconds + 0.02);
    free(p);
}
END_TEST

START_TEST(test_start_time)
{
    struct process_stats a, b;
    process_stats_read(&a);
    time_t now = time(NULL);
    ck_assert_int_le(a.start_time, (int64_t)now);
    ck_assert_int_gt(a.start_time, (int64_t)now - 3600); /* this test binary started lately */
    process_stats_read(&b);
    ck_assert_int_eq(a.start_time, b.start_time); /* stable from read to read */
}
END_TEST

Suite *procstats_suite(void)
{
    Suite *s = suite_create("procstats");
    TCase *t = tcase_create("procstats");
    tcase_add_test(t, test_descriptors);
    tcase_add_test(t, test_memory_and_cpu);
    tcase_add_test(t, test_start_time);
    suite_add_tcase(s, t);
    return s;
}
