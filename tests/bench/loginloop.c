/*
 * loginloop: logins per second when every login is a different role.
 *
 *   loginloop SECONDS CLIENTS CONNINFO PREFIX FIRST COUNT
 *
 * CLIENTS threads each connect (libpq, CONNINFO plus user=PREFIX<n>), run
 * "select 1", check the answer and disconnect, again and again until SECONDS
 * have passed. Login number i (counted across threads, from 0) uses role
 * PREFIX<FIRST + i mod COUNT>, so up to COUNT logins in a row name roles the
 * proxy has never seen: what scripts/bench.sh needs to measure
 * pg-tls-proxy --auth-mode password when its cache of derived keys (keyed on
 * the user among others) cannot help, which pgbench, with one user per run,
 * cannot do. COUNT 0: every login is role PREFIX itself, so that the other
 * rows of the same table are driven by the same client code. Passwords come
 * from libpq's usual sources (PGPASSFILE).
 *
 * Prints one line of key=value: logins (completed), failed, wrapped (1 when
 * more than COUNT logins were attempted, so some role was used twice),
 * seconds, lps, latency_ms (mean per login, per client) and next (the FIRST
 * for a following run that must not reuse these roles). The first failure's
 * message goes to stderr. Exit 0 if at least one login completed, else 1.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c17 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct shared {
    const char *conninfo;
    const char *prefix;
    long first;
    long count;
    double deadline;
    atomic_long next;   /* login number handed out next */
    atomic_long ok;     /* completed logins */
    atomic_long failed; /* failed logins */
    pthread_mutex_t lock;
    char first_error[512]; /* under lock */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note_error(struct shared *sh, const char *msg)
{
    pthread_mutex_lock(&sh->lock);
    if (sh->first_error[0] == '\0')
        snprintf(sh->first_error, sizeof sh->first_error, "%s", msg);
    pthread_mutex_unlock(&sh->lock);
}

/* One login: connect as role PREFIX<n>, select 1, disconnect. 0 on success. */
static int login_once(struct shared *sh, long n)
{
    char info[4096];
    int len = sh->count == 0
                  ? snprintf(info, sizeof info, "%s user=%s", sh->conninfo, sh->prefix)
                  : snprintf(info, sizeof info, "%s user=%s%ld", sh->conninfo, sh->prefix, n);
    if (len < 0 || (size_t)len >= sizeof info) {
        note_error(sh, "conninfo too long");
        return -1;
    }
    PGconn *conn = PQconnectdb(info);
    int rc = -1;
    if (PQstatus(conn) != CONNECTION_OK) {
        note_error(sh, PQerrorMessage(conn));
    } else {
        PGresult *res = PQexec(conn, "select 1");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            strcmp(PQgetvalue(res, 0, 0), "1") == 0)
            rc = 0;
        else
            note_error(sh, PQerrorMessage(conn));
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}

static void *client_main(void *arg)
{
    struct shared *sh = arg;
    while (now_s() < sh->deadline) {
        long i = atomic_fetch_add(&sh->next, 1);
        if (login_once(sh, sh->count == 0 ? 0 : sh->first + i % sh->count) == 0)
            atomic_fetch_add(&sh->ok, 1);
        else
            atomic_fetch_add(&sh->failed, 1);
    }
    return NULL;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    long seconds = 0;
    long clients = 0;
    struct shared sh = {0};
    if (argc != 7 || parse_long(argv[1], 1, 86400, &seconds) != 0 ||
        parse_long(argv[2], 1, 256, &clients) != 0 ||
        parse_long(argv[5], 0, 100000000, &sh.first) != 0 ||
        parse_long(argv[6], 0, 100000000, &sh.count) != 0) {
        fprintf(stderr, "usage: %s SECONDS CLIENTS CONNINFO PREFIX FIRST COUNT\n", argv[0]);
        return 1;
    }
    sh.conninfo = argv[3];
    sh.prefix = argv[4];
    pthread_mutex_init(&sh.lock, NULL);
    pthread_t tid[256];
    double start = now_s();
    sh.deadline = start + (double)seconds;
    long started = 0;
    for (; started < clients; started++)
        if (pthread_create(&tid[started], NULL, client_main, &sh) != 0)
            break;
    for (long i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    double elapsed = now_s() - start;
    long ok = atomic_load(&sh.ok);
    long failed = atomic_load(&sh.failed);
    long attempted = atomic_load(&sh.next);
    if (sh.first_error[0] != '\0')
        fprintf(stderr, "loginloop: first failure: %s", sh.first_error);
    printf("logins=%ld failed=%ld wrapped=%d seconds=%.2f lps=%.1f latency_ms=%.2f next=%ld\n", ok,
           failed, sh.count > 0 && attempted > sh.count, elapsed, (double)ok / elapsed,
           ok > 0 ? elapsed * 1e3 * (double)started / (double)ok : 0.0,
           sh.first + (attempted < sh.count || sh.count == 0 ? attempted : sh.count));
    pthread_mutex_destroy(&sh.lock);
    return ok > 0 && started == clients ? 0 : 1;
}
