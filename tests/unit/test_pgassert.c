/*
 * test_pgassert.c - unit tests for src/pgassert.c: a true PGTP_ASSERT does
 * nothing; a false one logs event=assert_failed naming the expression, the
 * file and the line, and aborts (SIGABRT), in release builds too. The
 * aborting test needs Check's fork mode; under CK_FORK=no it is skipped
 * with a note on stderr (it would take the test runner down with it).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgassert.h"
#include "suites.h"

static char seen[512];

static void sink(void *arg, enum log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)len;
    if (level == LOG_ERROR)
        snprintf(seen, sizeof(seen), "%s", line);
}

START_TEST(test_assert_true_is_silent)
{
    int x = 3;
    seen[0] = '\0';
    log_set_sink(sink, NULL);
    PGTP_ASSERT(x == 3);
    PGTP_ASSERT(x > 0 && x < 4);
    log_set_sink(NULL, NULL);
    ck_assert_str_eq(seen, "");
}
END_TEST

static bool fork_mode(void)
{
    const char *f = getenv("CK_FORK");
    return f == NULL || strcmp(f, "no") != 0;
}

/* Runs in a child of Check's: it must die of SIGABRT (tcase_add_test_raise_signal),
 * having logged the line first, which the sink checks before the abort. */
static void abort_sink(void *arg, enum log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)len;
    if (level != LOG_ERROR || strstr(line, "event=assert_failed") == NULL ||
        strstr(line, "file=tests/unit/test_pgassert.c") == NULL ||
        strstr(line, "expression=\"one == 2\"") == NULL || strstr(line, "line=") == NULL ||
        strstr(line, "hint=") == NULL)
        _Exit(3); /* the wrong line: not a SIGABRT, so the test fails */
}

START_TEST(test_assert_false_logs_and_aborts)
{
    int one = 1;
    log_set_sink(abort_sink, NULL);
    PGTP_ASSERT(one == 2);
    log_set_sink(NULL, NULL);
    _Exit(4); /* not reached: an assertion that does not abort fails the test */
}
END_TEST

Suite *pgassert_suite(void)
{
    Suite *s = suite_create("pgassert");
    TCase *tc = tcase_create("pgassert");
    tcase_add_test(tc, test_assert_true_is_silent);
    if (fork_mode())
        tcase_add_test_raise_signal(tc, test_assert_false_logs_and_aborts, SIGABRT);
    else
        fprintf(stderr, "pgassert: CK_FORK=no: the test that a failing PGTP_ASSERT aborts "
                        "is not run here (it would abort the runner); the fork run has it\n");
    suite_add_tcase(s, tc);
    return s;
}
