/*
 * framing_cost.c - the CPU cost of framing a session's server stream
 * (pgtrack_server), which every session pays after its login when the
 * admin endpoint is on (POST /sessions/ID/terminate places its FATAL
 * between two messages) or when it goes through a bridge.
 *
 *   framing_cost [ITERATIONS]     (scripts/bench.sh builds and runs it)
 *
 * Prints one line: ns per select-only reply (RowDescription, DataRow,
 * CommandComplete, ReadyForQuery: 82 bytes, as pgbench -S gets), and ns per
 * byte and s per GB for 64 KB reads of 210-byte DataRows (a COPY of narrow
 * rows: the most messages per byte a bulk transfer has).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgtrack.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t msg(uint8_t *p, char type, size_t body)
{
    uint32_t l = (uint32_t)body + 4;
    p[0] = (uint8_t)type;
    p[1] = (uint8_t)(l >> 24);
    p[2] = (uint8_t)(l >> 16);
    p[3] = (uint8_t)(l >> 8);
    p[4] = (uint8_t)l;
    memset(p + 5, 'x', body);
    return body + 5;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000000;
    uint8_t reply[128];
    size_t n = 0;
    n += msg(reply + n, 'T', 33);
    n += msg(reply + n, 'D', 15);
    n += msg(reply + n, 'C', 13);
    n += msg(reply + n, 'Z', 1);
    struct pgtrack t = {0};
    double t0 = now();
    for (long i = 0; i < iters; i++)
        (void)pgtrack_server(&t, reply, n);
    double per_reply = (now() - t0) / (double)iters * 1e9;

    size_t cap = 65536 + 256, m = 0;
    uint8_t *big = malloc(cap);
    if (big == NULL)
        return 1;
    while (m < 65536)
        m += msg(big + m, 'd', 205);
    struct pgtrack u = {0};
    long reads = iters / 100 > 0 ? iters / 100 : 1;
    t0 = now();
    for (long i = 0; i < reads; i++)
        (void)pgtrack_server(&u, big, m);
    double per_byte = (now() - t0) / ((double)reads * (double)m) * 1e9;
    free(big);
    if (t.failed || u.failed)
        return 1;
    printf("framing ns_per_select_reply=%.1f ns_per_byte_narrow_rows=%.3f s_per_gb=%.3f\n",
           per_reply, per_byte, per_byte);
    return 0;
}
