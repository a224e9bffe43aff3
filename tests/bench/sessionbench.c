/*
 * sessionbench: what one session costs, for scripts/bench-bridge.sh.
 *
 *   sessionbench latency CONNINFO N
 *       N sessions one after another, each connect + "select 1" +
 *       disconnect, timed one by one (wall clock, monotonic). Prints
 *       "sessions=N failed=F median_ms=M p95_ms=P min_ms=A max_ms=B".
 *   sessionbench idle CONNINFO N STOPFILE SECONDS
 *       N sessions opened one after another (each checked with
 *       "select 1") and then left idle: prints "open=K" once all are up,
 *       then waits until STOPFILE exists (at most SECONDS) and closes them.
 *
 * libpq only; passwords come from libpq's own sources (PGPASSFILE). The
 * first failure's message goes to stderr. Exit 0 if every session worked.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep under -std=c17 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long parse_long(const char *s, long min, long max)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "sessionbench: %s is not a number in %ld..%ld\n", s, min, max);
        exit(2);
    }
    return v;
}

/* Connect and run "select 1"; NULL (first error reported once) on failure. */
static PGconn *open_checked(const char *conninfo, int *reported)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) == CONNECTION_OK) {
        PGresult *res = PQexec(conn, "select 1");
        int ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
        PQclear(res);
        if (ok)
            return conn;
    }
    if (!*reported) {
        fprintf(stderr, "sessionbench: first failure: %s", PQerrorMessage(conn));
        *reported = 1;
    }
    PQfinish(conn);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_latency(const char *conninfo, long n)
{
    double *ms = calloc((size_t)n, sizeof *ms);
    long ok = 0;
    int reported = 0;
    if (ms == NULL)
        return 2;
    for (long i = 0; i < n; i++) {
        double t0 = now_ms();
        PGconn *conn = open_checked(conninfo, &reported);
        if (conn == NULL)
            continue;
        PQfinish(conn);
        ms[ok++] = now_ms() - t0;
    }
    if (ok > 0) {
        qsort(ms, (size_t)ok, sizeof *ms, cmp_double);
        long p95 = (ok * 95 + 99) / 100 - 1; /* nearest rank */
        printf("sessions=%ld failed=%ld median_ms=%.2f p95_ms=%.2f min_ms=%.2f max_ms=%.2f\n", n,
               n - ok, ok % 2 ? ms[ok / 2] : (ms[ok / 2 - 1] + ms[ok / 2]) / 2, ms[p95], ms[0],
               ms[ok - 1]);
    } else {
        printf("sessions=%ld failed=%ld\n", n, n);
    }
    free(ms);
    return ok == n ? 0 : 1;
}

static int cmd_idle(const char *conninfo, long n, const char *stopfile, long seconds)
{
    PGconn **conns = calloc((size_t)n, sizeof *conns);
    long open = 0;
    int reported = 0;
    if (conns == NULL)
        return 2;
    for (long i = 0; i < n; i++) {
        conns[i] = open_checked(conninfo, &reported);
        open += conns[i] != NULL;
    }
    printf("open=%ld\n", open);
    fflush(stdout);
    double deadline = now_ms() + (double)seconds * 1e3;
    const struct timespec tick = {0, 50 * 1000 * 1000};
    while (access(stopfile, F_OK) != 0 && now_ms() < deadline)
        nanosleep(&tick, NULL);
    for (long i = 0; i < n; i++)
        if (conns[i] != NULL)
            PQfinish(conns[i]);
    free(conns);
    return open == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "latency") == 0)
        return cmd_latency(argv[2], parse_long(argv[3], 1, 1000000));
    if (argc == 6 && strcmp(argv[1], "idle") == 0)
        return cmd_idle(argv[2], parse_long(argv[3], 1, 100000), argv[4],
                        parse_long(argv[5], 1, 86400));
    fprintf(stderr,
            "usage: %s latency CONNINFO N\n"
            "       %s idle CONNINFO N STOPFILE SECONDS\n",
            argv[0], argv[0]);
    return 2;
}
