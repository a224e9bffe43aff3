/*
 * promcheck.h - a strict line-by-line checker of the Prometheus text
 * exposition format 0.0.4, shared by the metrics and admin suites (written
 * here, and itself tested on bad input in test_metrics.c).
 */
#ifndef PGTP_TEST_PROMCHECK_H
#define PGTP_TEST_PROMCHECK_H

#include <stdbool.h>
#include <stddef.h>

#define EX_MAXFAM 48
#define EX_MAXSERIES 8192

struct expo {
    char fams[EX_MAXFAM][128];
    int nfams;
    char series[EX_MAXSERIES][320];
    int nseries;
    /* the family being read */
    char cur[128], type[16];
    int state; /* 0 nothing yet, 1 HELP seen, 2 TYPE seen */
    /* histogram bookkeeping */
    double last_le, last_bucket, inf_count;
    bool inf_seen, sum_seen, count_seen;
};

/* 0 if text is a valid exposition, else -1 with the reason in why. */
int expo_check(struct expo *x, const char *text, char *why, size_t wl);
/* ck_assert that text is a valid exposition (uses one static struct expo). */
void expo_assert_valid(const char *text);

#endif
