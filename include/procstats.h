/*
 * procstats.h - what the process costs the machine: descriptors, memory,
 * CPU, start time (Prometheus process_* metrics, SIGUSR1's status line).
 */
#ifndef PGTP_PROCSTATS_H
#define PGTP_PROCSTATS_H

#include <stdint.h>

struct process_stats {
    int64_t open_fds;      /* entries of /proc/self/fd; -1 if unknown */
    int64_t max_fds;       /* RLIMIT_NOFILE soft limit; -1 if unlimited or unknown */
    int64_t rss_bytes;     /* resident set size; -1 if unknown */
    int64_t virtual_bytes; /* virtual memory size; -1 if unknown */
    double cpu_seconds;    /* user + system CPU time of every thread */
    int64_t start_time;    /* unix seconds the process started */
};

/* Fill ps; reads /proc (Linux) and getrusage/getrlimit. Never fails: what
 * cannot be read is -1 (start_time falls back to the first call's time). */
void process_stats_read(struct process_stats *ps);

#endif
