/*
 * pgclient.c - a libpq client for the integration tests.
 *
 * What a real application sees through the proxy: connection errors as
 * libpq reports them, query results, COPY in both directions and many
 * sessions at once. libpq is used here, in the tests, and nowhere else.
 * Passwords come from the environment or a passfile, never from argv, and
 * are never printed. Connection errors go to stdout prefixed with "error: "
 * so the tests can match on them.
 *
 *   pgclient query CONNINFO SQL               print the rows, tab-separated
 *   pgclient info CONNINFO                    front-leg TLS and pg_stat_ssl.ssl
 *   pgclient copy-in CONNINFO SQL FILE        run COPY ... FROM STDIN with FILE
 *   pgclient copy-out CONNINFO SQL FILE       run COPY ... TO STDOUT into FILE
 *   pgclient concurrent CONNINFO N Q          N sessions open at once, Q queries each
 *   pgclient hold CONNINFO SECONDS            one session, a query every 100 ms
 *   pgclient hold-until CONNINFO FILE SECONDS the same until FILE exists (fails after SECONDS);
 *                                             prints "connected" first
 *   pgclient stall CONNINFO SQL SECONDS       send SQL, read nothing for SECONDS
 *   pgclient cancel CONNINFO DELAY_MS         cancel a pg_sleep(30) after DELAY_MS
 *   pgclient pids CONNINFO                    the BackendKeyData pid libpq was given
 *                                             (PQbackendPID) and the server's pg_backend_pid()
 *   pgclient sessions CONNINFO N SECONDS      N sessions, each a query every 100 ms until
 *                                             it fails or SECONDS pass; SQLSTATEs counted
 *   pgclient wait-gone CONNINFO APPNAME SECONDS
 *                                             poll pg_stat_activity every 10 ms until no
 *                                             session has APPNAME; print the wall-clock ms
 *   pgclient pause-copy-out CONNINFO SQL SECONDS
 *                                             start COPY ... TO STDOUT, read nothing for
 *                                             SECONDS, then read it all; count bytes, lines
 *   pgclient pinned CONNINFO N STOPFILE SECONDS
 *                                             N sessions, each a query every 100 ms until
 *                                             STOPFILE exists, each checking that its server
 *                                             (its port) never changes; sessions per port
 *
 * Exit status: 0 success, 1 connection failed, 2 usage, 3 query failed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define EXIT_CONNECT 1
#define EXIT_USAGE 2
#define EXIT_QUERY 3
#define COPY_CHUNK (64 * 1024)

/* Print a libpq message on one line (libpq's own messages end in '\n'). */
static int query_expect(PGconn *conn, const char *sql, const char *want, char *state,
                        size_t state_cap, char *msg, size_t msg_cap);

static void print_oneline(FILE *out, const char *prefix, const char *msg)
{
    fputs(prefix, out);
    for (const char *c = msg; *c != '\0'; c++) {
        if (*c == '\n' && c[1] == '\0')
            break;
        fputc(*c == '\n' ? ' ' : *c, out);
    }
    fputc('\n', out);
}

static PGconn *connect_or_report(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (conn == NULL) {
        printf("error: out of memory\n");
        exit(EXIT_CONNECT);
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        print_oneline(stdout, "error: ", PQerrorMessage(conn));
        PQfinish(conn);
        exit(EXIT_CONNECT);
    }
    return conn;
}

static void report_result_error(const PGresult *res, PGconn *conn)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    printf("query-error: sqlstate=%s ", state != NULL ? state : "-");
    print_oneline(stdout, "", res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn));
}

/*
 * Every result is looked at, not only the last one PQexec would keep: when
 * the server ends a session, its FATAL (with SQLSTATE) comes in one result
 * and libpq's "connection closed" in the next.
 */
static int cmd_query(const char *conninfo, const char *sql)
{
    PGconn *conn = connect_or_report(conninfo);
    int rc = 0;
    if (PQsendQuery(conn, sql) != 1) {
        print_oneline(stdout, "query-error: sqlstate=- ", PQerrorMessage(conn));
        rc = EXIT_QUERY;
    }
    PGresult *res;
    while (rc == 0 && (res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK) {
            for (int r = 0; r < PQntuples(res); r++) {
                for (int c = 0; c < PQnfields(res); c++)
                    printf("%s%s", c > 0 ? "\t" : "", PQgetvalue(res, r, c));
                putchar('\n');
            }
        } else if (st != PGRES_COMMAND_OK) {
            report_result_error(res, conn);
            rc = EXIT_QUERY;
        }
        PQclear(res);
        if (PQstatus(conn) == CONNECTION_BAD)
            break;
    }
    /* After an error, drain what is left so that every error is printed. */
    while (rc != 0 && PQstatus(conn) != CONNECTION_BAD && (res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) == PGRES_FATAL_ERROR)
            report_result_error(res, conn);
        PQclear(res);
    }
    PQfinish(conn);
    return rc;
}

/* The front leg as libpq sees it, and the back leg as the server sees it. */
static int cmd_info(const char *conninfo)
{
    PGconn *conn = connect_or_report(conninfo);
    const char *proto = PQsslAttribute(conn, "protocol");
    PGresult *res = PQexec(conn, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    int rc = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        printf("front_ssl=%d front_protocol=%s backend_ssl=%s\n", PQsslInUse(conn),
               proto != NULL ? proto : "none", PQgetvalue(res, 0, 0));
    } else {
        report_result_error(res, conn);
        rc = EXIT_QUERY;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static int finish_copy(PGconn *conn, const char *what, unsigned long long bytes)
{
    int rc = 0;
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            report_result_error(res, conn);
            rc = EXIT_QUERY;
        } else {
            printf("%s bytes=%llu rows=%s\n", what, bytes, PQcmdTuples(res));
        }
        PQclear(res);
    }
    return rc;
}

static int cmd_copy_in(const char *conninfo, const char *sql, const char *path)
{
    FILE *in = fopen(path, "rb");
    if (in == NULL) {
        fprintf(stderr, "pgclient: %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    PGconn *conn = connect_or_report(conninfo);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        report_result_error(res, conn);
        PQclear(res);
        PQfinish(conn);
        fclose(in);
        return EXIT_QUERY;
    }
    PQclear(res);
    char *buf = malloc(COPY_CHUNK);
    unsigned long long total = 0;
    int ok = buf != NULL;
    size_t n;
    while (ok && (n = fread(buf, 1, COPY_CHUNK, in)) > 0) {
        ok = PQputCopyData(conn, buf, (int)n) == 1;
        total += n;
    }
    const char *why = !ok ? "PQputCopyData failed" : ferror(in) ? "read error" : NULL;
    free(buf);
    fclose(in);
    if (PQputCopyEnd(conn, why) != 1)
        print_oneline(stdout, "query-error: PQputCopyEnd: ", PQerrorMessage(conn));
    int rc = finish_copy(conn, "copy-in", total);
    PQfinish(conn);
    return why != NULL ? EXIT_QUERY : rc;
}

static int cmd_copy_out(const char *conninfo, const char *sql, const char *path)
{
    FILE *out = fopen(path, "wb");
    if (out == NULL) {
        fprintf(stderr, "pgclient: %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    PGconn *conn = connect_or_report(conninfo);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        report_result_error(res, conn);
        PQclear(res);
        PQfinish(conn);
        fclose(out);
        return EXIT_QUERY;
    }
    PQclear(res);
    unsigned long long total = 0;
    int n, rc = 0;
    char *row = NULL;
    while ((n = PQgetCopyData(conn, &row, 0)) > 0) {
        if (fwrite(row, 1, (size_t)n, out) != (size_t)n)
            rc = EXIT_QUERY;
        total += (unsigned long long)n;
        PQfreemem(row);
    }
    if (n == -2)
        print_oneline(stdout, "query-error: PQgetCopyData: ", PQerrorMessage(conn));
    if (fclose(out) != 0)
        rc = EXIT_QUERY;
    int frc = finish_copy(conn, "copy-out", total);
    PQfinish(conn);
    return rc != 0 || n == -2 ? EXIT_QUERY : frc;
}

/* ---- many sessions at once ---- */

struct worker {
    pthread_t tid;
    int index;
    int queries;
    const char *conninfo;
    pthread_barrier_t *barrier;
    int ok;
    char err[256];
};

static void worker_fail(struct worker *w, const char *what, const char *msg)
{
    snprintf(w->err, sizeof w->err, "%s: %s", what, msg);
    char *nl;
    while ((nl = strchr(w->err, '\n')) != NULL)
        *nl = ' ';
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    PGconn *conn = PQconnectdb(w->conninfo);
    int connected = conn != NULL && PQstatus(conn) == CONNECTION_OK;
    if (!connected)
        worker_fail(w, "connect", conn != NULL ? PQerrorMessage(conn) : "out of memory");
    /* Every session is open at this point: the proxy really holds N at once. */
    pthread_barrier_wait(w->barrier);
    int good = connected;
    for (int q = 0; good && q < w->queries; q++) {
        char sql[64], want[32];
        long v = (long)w->index * 1000 + q;
        snprintf(sql, sizeof sql, "SELECT %ld", v);
        snprintf(want, sizeof want, "%ld", v);
        PGresult *res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
            strcmp(PQgetvalue(res, 0, 0), want) != 0) {
            worker_fail(w, "query", PQresultErrorMessage(res));
            good = 0;
        }
        PQclear(res);
    }
    PQfinish(conn);
    w->ok = good;
    return NULL;
}

static int parse_count(const char *s, int lo, int hi)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "pgclient: %s is not a number in %d..%d\n", s, lo, hi);
        exit(EXIT_USAGE);
    }
    return (int)v;
}

static int cmd_concurrent(const char *conninfo, const char *nstr, const char *qstr)
{
    int n = parse_count(nstr, 1, 2000), queries = parse_count(qstr, 0, 100000);
    struct worker *w = calloc((size_t)n, sizeof *w);
    pthread_barrier_t barrier;
    pthread_attr_t attr;
    if (w == NULL || pthread_barrier_init(&barrier, NULL, (unsigned)n) != 0 ||
        pthread_attr_init(&attr) != 0) {
        fprintf(stderr, "pgclient: cannot set up %d workers\n", n);
        return EXIT_USAGE;
    }
    pthread_attr_setstacksize(&attr, 512 * 1024);
    for (int i = 0; i < n; i++) {
        w[i] = (struct worker){
            .index = i, .queries = queries, .conninfo = conninfo, .barrier = &barrier};
        if (pthread_create(&w[i].tid, &attr, worker_main, &w[i]) != 0) {
            /* The barrier counts on n threads: without them all, give up. */
            fprintf(stderr, "pgclient: pthread_create failed at %d\n", i);
            exit(EXIT_USAGE);
        }
    }
    int ok = 0, printed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].tid, NULL);
        if (w[i].ok) {
            ok++;
        } else if (printed++ < 5) {
            printf("worker %d: %s\n", i, w[i].err);
        }
    }
    printf("sessions=%d ok=%d failed=%d\n", n, ok, n - ok);
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&barrier);
    free(w);
    return ok == n ? 0 : EXIT_QUERY;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One long session that keeps querying: it must be unharmed by abuse of
 * other connections to the same proxy. */
static int cmd_hold(const char *conninfo, const char *secstr)
{
    int seconds = parse_count(secstr, 1, 3600);
    PGconn *conn = connect_or_report(conninfo);
    double end = now_sec() + seconds;
    long n = 0;
    int rc = 0;
    while (now_sec() < end) {
        char sql[64], want[32];
        snprintf(sql, sizeof sql, "SELECT %ld", n);
        snprintf(want, sizeof want, "%ld", n);
        PGresult *res = PQexec(conn, sql);
        int good = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                   strcmp(PQgetvalue(res, 0, 0), want) == 0;
        if (!good)
            report_result_error(res, conn);
        PQclear(res);
        if (!good) {
            rc = EXIT_QUERY;
            break;
        }
        n++;
        usleep(100 * 1000);
    }
    printf("hold queries=%ld %s\n", n, rc == 0 ? "ok" : "failed");
    PQfinish(conn);
    return rc;
}

/* hold, until the test creates STOPFILE: the session spans exactly the
 * fault it watches. Fails if STOPFILE has not appeared after SECONDS. */
static int cmd_hold_until(const char *conninfo, const char *stopfile, const char *secstr)
{
    int seconds = parse_count(secstr, 1, 3600);
    PGconn *conn = connect_or_report(conninfo);
    double end = now_sec() + seconds;
    long n = 0;
    int rc = 0, stopped = 0;
    printf("connected\n"); /* the test starts its fault now */
    while (!(stopped = access(stopfile, F_OK) == 0) && now_sec() < end) {
        char sql[64], want[32], state[8] = "", msg[200] = "";
        snprintf(sql, sizeof sql, "SELECT %ld", n);
        snprintf(want, sizeof want, "%ld", n);
        if (!query_expect(conn, sql, want, state, sizeof state, msg, sizeof msg)) {
            printf("query-error: sqlstate=%s %s\n", state, msg);
            rc = EXIT_QUERY;
            break;
        }
        n++;
        usleep(100 * 1000);
    }
    if (rc == 0 && !stopped) {
        printf("stop file never appeared\n");
        rc = EXIT_QUERY;
    }
    printf("hold queries=%ld %s\n", n, rc == 0 ? "ok" : "failed");
    PQfinish(conn);
    return rc;
}

/*
 * Send SQL and then read nothing for SECONDS: the result piles up in front
 * of a client that has stopped reading, and the proxy must stop reading
 * the upstream rather than buffer it all (backpressure). Then close.
 */
static int cmd_stall(const char *conninfo, const char *sql, const char *secstr)
{
    int seconds = parse_count(secstr, 1, 3600);
    PGconn *conn = connect_or_report(conninfo);
    if (PQsendQuery(conn, sql) != 1) {
        print_oneline(stdout, "query-error: ", PQerrorMessage(conn));
        PQfinish(conn);
        return EXIT_QUERY;
    }
    printf("stalling for %d s\n", seconds);
    sleep((unsigned)seconds);
    PQfinish(conn);
    printf("stall done\n");
    return 0;
}

/*
 * Start SELECT pg_sleep(30), then cancel it the way psql's Ctrl-C does:
 * PQcancel opens a new connection and sends a plaintext CancelRequest
 * with the key from BackendKeyData. Prints the SQLSTATE the query ended
 * with (57014 when the cancel arrived), how long the query ran (after=)
 * and how long it took from PQcancel to the end of the query
 * (cancel_to_end=).
 */
static int cmd_cancel(const char *conninfo, const char *delaystr)
{
    int delay_ms = parse_count(delaystr, 0, 60000);
    PGconn *conn = connect_or_report(conninfo);
    double t0 = now_sec();
    if (PQsendQuery(conn, "SELECT pg_sleep(30)") != 1) {
        print_oneline(stdout, "query-error: ", PQerrorMessage(conn));
        PQfinish(conn);
        return EXIT_QUERY;
    }
    usleep((useconds_t)delay_ms * 1000);
    PGcancel *cancel = PQgetCancel(conn);
    char errbuf[256] = "";
    double t_cancel = now_sec();
    int sent = cancel != NULL && PQcancel(cancel, errbuf, sizeof errbuf) == 1;
    PQfreeCancel(cancel);
    if (!sent)
        printf("cancel-send-failed: %s\n", errbuf);
    const char *state = NULL;
    PGresult *res;
    char statebuf[8] = "none";
    while ((res = PQgetResult(conn)) != NULL) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state != NULL)
            snprintf(statebuf, sizeof statebuf, "%s", state);
        PQclear(res);
    }
    double t_end = now_sec();
    printf("cancel sent=%d sqlstate=%s after=%.1f cancel_to_end=%.2f\n", sent, statebuf, t_end - t0,
           t_end - t_cancel);
    PQfinish(conn);
    return sent && strcmp(statebuf, "57014") == 0 ? 0 : EXIT_QUERY;
}

/* ---- faults: many sessions through a server restart ---- */

struct watcher {
    pthread_t tid;
    const char *conninfo;
    pthread_barrier_t *barrier;
    int seconds;
    int connected;
    long queries;
    char state[8]; /* first SQLSTATE seen, "-" for an error without one */
    char msg[200];
    char notice[200]; /* last notice or warning before the end (57P02 comes as one) */
};

static void copy_oneline(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
    for (char *c = dst; *c != '\0'; c++)
        if (*c == '\n' || *c == '\t')
            *c = ' ';
}

static void watcher_notice(void *arg, const PGresult *res)
{
    struct watcher *w = arg;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    char buf[200];
    snprintf(buf, sizeof buf, "%s %s", state != NULL ? state : "-", msg != NULL ? msg : "");
    copy_oneline(w->notice, sizeof w->notice, buf);
}

/*
 * One query with every result looked at: the first SQLSTATE of an error
 * goes to state/msg. Returns 1 if the query returned exactly `want`.
 */
static int query_expect(PGconn *conn, const char *sql, const char *want, char *state,
                        size_t state_cap, char *msg, size_t msg_cap)
{
    int good = 0, failed = 0;
    if (PQsendQuery(conn, sql) != 1) {
        snprintf(state, state_cap, "-");
        copy_oneline(msg, msg_cap, PQerrorMessage(conn));
        return 0;
    }
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
            strcmp(PQgetvalue(res, 0, 0), want) == 0) {
            good = 1;
        } else if (!failed) {
            const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            snprintf(state, state_cap, "%s", s != NULL ? s : "-");
            copy_oneline(msg, msg_cap, PQresultErrorMessage(res));
            failed = 1;
        }
        PQclear(res);
        if (PQstatus(conn) == CONNECTION_BAD)
            break;
    }
    if (!failed && PQstatus(conn) == CONNECTION_BAD) {
        snprintf(state, state_cap, "-");
        copy_oneline(msg, msg_cap, PQerrorMessage(conn));
        failed = 1;
    }
    return good && !failed;
}

static void *watcher_main(void *arg)
{
    struct watcher *w = arg;
    PGconn *conn = PQconnectdb(w->conninfo);
    w->connected = conn != NULL && PQstatus(conn) == CONNECTION_OK;
    if (!w->connected) {
        snprintf(w->state, sizeof w->state, "connect");
        copy_oneline(w->msg, sizeof w->msg, conn != NULL ? PQerrorMessage(conn) : "out of memory");
    } else {
        PQsetNoticeReceiver(conn, watcher_notice, w);
    }
    pthread_barrier_wait(w->barrier);
    double end = now_sec() + w->seconds;
    while (w->connected && now_sec() < end) {
        char sql[32], want[32];
        snprintf(sql, sizeof sql, "SELECT %ld", w->queries);
        snprintf(want, sizeof want, "%ld", w->queries);
        if (!query_expect(conn, sql, want, w->state, sizeof w->state, w->msg, sizeof w->msg))
            break;
        w->queries++;
        usleep(100 * 1000);
    }
    PQfinish(conn);
    return NULL;
}

/*
 * N sessions open at once ("open=N" is printed when all are), each running
 * a query every 100 ms until one fails or SECONDS pass. Then one line per
 * outcome: "sqlstate=S count=C message=..." (S "-" when libpq saw no
 * SQLSTATE, "none" for sessions that never failed), and a summary line.
 */
static int cmd_sessions(const char *conninfo, const char *nstr, const char *secstr)
{
    int n = parse_count(nstr, 1, 2000), seconds = parse_count(secstr, 1, 3600);
    struct watcher *w = calloc((size_t)n, sizeof *w);
    pthread_barrier_t barrier;
    pthread_attr_t attr;
    if (w == NULL || pthread_barrier_init(&barrier, NULL, (unsigned)n + 1) != 0 ||
        pthread_attr_init(&attr) != 0) {
        fprintf(stderr, "pgclient: cannot set up %d sessions\n", n);
        return EXIT_USAGE;
    }
    pthread_attr_setstacksize(&attr, 512 * 1024);
    for (int i = 0; i < n; i++) {
        w[i] = (struct watcher){.conninfo = conninfo, .barrier = &barrier, .seconds = seconds};
        snprintf(w[i].state, sizeof w[i].state, "none");
        if (pthread_create(&w[i].tid, &attr, watcher_main, &w[i]) != 0) {
            fprintf(stderr, "pgclient: pthread_create failed at %d\n", i);
            exit(EXIT_USAGE);
        }
    }
    pthread_barrier_wait(&barrier);
    int opened = 0;
    for (int i = 0; i < n; i++)
        opened += w[i].connected;
    printf("open=%d\n", opened);
    for (int i = 0; i < n; i++)
        pthread_join(w[i].tid, NULL);
    /* Group by SQLSTATE, in order of first appearance. */
    int errors = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(w[i].state, "none") != 0)
            errors++;
        int first = 1;
        for (int j = 0; j < i && first; j++)
            first = strcmp(w[j].state, w[i].state) != 0;
        if (!first)
            continue;
        int count = 0;
        for (int j = i; j < n; j++)
            count += strcmp(w[j].state, w[i].state) == 0;
        printf("sqlstate=%s count=%d message=%s notice=%s\n", w[i].state, count, w[i].msg,
               w[i].notice);
    }
    printf("sessions=%d opened=%d errors=%d\n", n, opened, errors);
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&barrier);
    free(w);
    return 0;
}

/* ---- sessions pinned to their server (reloads under load) ---- */

struct pinned {
    pthread_t tid;
    const char *conninfo, *stopfile;
    pthread_barrier_t *barrier;
    int seconds;
    int connected, stopped;
    long queries;
    char port[16]; /* the server's port, read once at the start */
    char state[8];
    char msg[200];
};

/*
 * One session: learns its server's port, then until the stop file appears
 * runs "SELECT 'n:' || current_setting('port')" every 100 ms and requires
 * exactly "n:PORT": a wrong number, a lost session or another server (the
 * session moved to a reloaded route's new upstream) all fail it.
 */
static void *pinned_main(void *arg)
{
    struct pinned *w = arg;
    PGconn *conn = PQconnectdb(w->conninfo);
    w->connected = conn != NULL && PQstatus(conn) == CONNECTION_OK;
    if (w->connected) {
        PGresult *res = PQexec(conn, "SELECT current_setting('port')");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            snprintf(w->port, sizeof w->port, "%s", PQgetvalue(res, 0, 0));
        else
            w->connected = 0;
        PQclear(res);
    }
    if (!w->connected) {
        snprintf(w->state, sizeof w->state, "connect");
        copy_oneline(w->msg, sizeof w->msg, conn != NULL ? PQerrorMessage(conn) : "out of memory");
    }
    pthread_barrier_wait(w->barrier);
    double end = now_sec() + w->seconds;
    while (w->connected && !(w->stopped = access(w->stopfile, F_OK) == 0)) {
        char sql[80], want[48];
        if (now_sec() >= end) {
            snprintf(w->state, sizeof w->state, "time");
            snprintf(w->msg, sizeof w->msg, "stop file never appeared");
            break;
        }
        snprintf(sql, sizeof sql, "SELECT '%ld:' || current_setting('port')", w->queries);
        snprintf(want, sizeof want, "%ld:%s", w->queries, w->port);
        if (!query_expect(conn, sql, want, w->state, sizeof w->state, w->msg, sizeof w->msg)) {
            if (w->state[0] == '\0')
                snprintf(w->state, sizeof w->state, "result");
            break;
        }
        w->queries++;
        usleep(100 * 1000);
    }
    PQfinish(conn);
    return NULL;
}

/* "open=K" once all have tried; at the end "port=P sessions=K" per server,
 * up to 5 failures, and "sessions=N opened=K ok=K errors=E queries=Q
 * min_queries=M". Exit 0 only if every session was opened and stopped
 * cleanly by the stop file. */
static int cmd_pinned(const char *conninfo, const char *nstr, const char *stopfile,
                      const char *secstr)
{
    int n = parse_count(nstr, 1, 2000), seconds = parse_count(secstr, 1, 3600);
    struct pinned *w = calloc((size_t)n, sizeof *w);
    pthread_barrier_t barrier;
    pthread_attr_t attr;
    if (w == NULL || pthread_barrier_init(&barrier, NULL, (unsigned)n + 1) != 0 ||
        pthread_attr_init(&attr) != 0) {
        fprintf(stderr, "pgclient: cannot set up %d sessions\n", n);
        return EXIT_USAGE;
    }
    pthread_attr_setstacksize(&attr, 512 * 1024);
    for (int i = 0; i < n; i++) {
        w[i] = (struct pinned){
            .conninfo = conninfo, .stopfile = stopfile, .barrier = &barrier, .seconds = seconds};
        if (pthread_create(&w[i].tid, &attr, pinned_main, &w[i]) != 0) {
            fprintf(stderr, "pgclient: pthread_create failed at %d\n", i);
            exit(EXIT_USAGE);
        }
    }
    pthread_barrier_wait(&barrier);
    int opened = 0;
    for (int i = 0; i < n; i++)
        opened += w[i].connected;
    printf("open=%d\n", opened);
    for (int i = 0; i < n; i++)
        pthread_join(w[i].tid, NULL);
    int ok = 0, printed = 0;
    long total = 0, least = -1;
    for (int i = 0; i < n; i++) {
        total += w[i].queries;
        if (least < 0 || w[i].queries < least)
            least = w[i].queries;
        if (w[i].connected && w[i].stopped && w[i].state[0] == '\0')
            ok++;
        else if (printed++ < 5)
            printf("session %d: sqlstate=%s queries=%ld message=%s\n", i,
                   w[i].state[0] != '\0' ? w[i].state : "-", w[i].queries, w[i].msg);
        int first = w[i].port[0] != '\0';
        for (int j = 0; j < i && first; j++)
            first = strcmp(w[j].port, w[i].port) != 0;
        if (!first)
            continue;
        int count = 0;
        for (int j = i; j < n; j++)
            count += strcmp(w[j].port, w[i].port) == 0;
        printf("port=%s sessions=%d\n", w[i].port, count);
    }
    printf("sessions=%d opened=%d ok=%d errors=%d queries=%ld min_queries=%ld\n", n, opened, ok,
           n - ok, total, least);
    pthread_attr_destroy(&attr);
    pthread_barrier_destroy(&barrier);
    free(w);
    return ok == n ? 0 : EXIT_QUERY;
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * One session that polls pg_stat_activity every 10 ms until no session
 * has application_name APPNAME; prints "gone at_ms=<wall-clock ms>" (the
 * test compares it with when it killed a client), or "still count=N"
 * after SECONDS. "polling" is printed once the first poll has run.
 */
static int cmd_wait_gone(const char *conninfo, const char *appname, const char *secstr)
{
    int seconds = parse_count(secstr, 1, 3600);
    PGconn *conn = connect_or_report(conninfo);
    const char *params[1] = {appname};
    double end = now_sec() + seconds;
    int printed = 0, rc = EXIT_QUERY;
    long count = -1;
    while (now_sec() < end) {
        PGresult *res =
            PQexecParams(conn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                         1, NULL, params, NULL, NULL, 0);
        long long at = wall_ms();
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
            report_result_error(res, conn);
            PQclear(res);
            break;
        }
        count = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        if (!printed) {
            printf("polling count=%ld\n", count);
            printed = 1;
        } else if (count == 0) {
            printf("gone at_ms=%lld\n", at);
            rc = 0;
            break;
        }
        usleep(10 * 1000);
    }
    if (rc != 0)
        printf("still count=%ld\n", count);
    PQfinish(conn);
    return rc;
}

/*
 * COPY ... TO STDOUT from a client that stops reading: the result piles up
 * against the proxy, which must stop reading the upstream (backpressure)
 * instead of buffering it. After SECONDS the client reads everything and
 * prints what arrived: "pause-copy-out bytes=B lines=L" and the server's
 * row count ("copy-out bytes=B rows=R").
 */
static int cmd_pause_copy_out(const char *conninfo, const char *sql, const char *secstr)
{
    int seconds = parse_count(secstr, 0, 3600);
    PGconn *conn = connect_or_report(conninfo);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        report_result_error(res, conn);
        PQclear(res);
        PQfinish(conn);
        return EXIT_QUERY;
    }
    PQclear(res);
    printf("paused for %d s\n", seconds);
    sleep((unsigned)seconds);
    printf("resumed\n");
    unsigned long long total = 0, lines = 0;
    int n;
    char *row = NULL;
    while ((n = PQgetCopyData(conn, &row, 0)) > 0) {
        total += (unsigned long long)n;
        for (const char *p = row; (p = memchr(p, '\n', (size_t)(row + n - p))) != NULL; p++)
            lines++;
        PQfreemem(row);
    }
    if (n == -2)
        print_oneline(stdout, "query-error: PQgetCopyData: ", PQerrorMessage(conn));
    printf("pause-copy-out bytes=%llu lines=%llu\n", total, lines);
    int rc = finish_copy(conn, "copy-out", total);
    PQfinish(conn);
    return n == -2 ? EXIT_QUERY : rc;
}

/*
 * The pid libpq keeps from BackendKeyData (what its cancels carry) and the
 * one the server runs the session in. Through pg-tls-proxy they differ:
 * the client is given the proxy's cancel key, never the server's.
 */
static int cmd_pids(const char *conninfo)
{
    PGconn *conn = connect_or_report(conninfo);
    PGresult *res = PQexec(conn, "SELECT pg_backend_pid()");
    int rc = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        printf("client_pid=%d server_pid=%s\n", PQbackendPID(conn), PQgetvalue(res, 0, 0));
    } else {
        print_oneline(stdout, "query-error: ", PQresultErrorMessage(res));
        rc = EXIT_QUERY;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

static void usage(void)
{
    fputs("usage: pgclient query CONNINFO SQL\n"
          "       pgclient info CONNINFO\n"
          "       pgclient copy-in CONNINFO SQL FILE\n"
          "       pgclient copy-out CONNINFO SQL FILE\n"
          "       pgclient concurrent CONNINFO SESSIONS QUERIES\n"
          "       pgclient hold CONNINFO SECONDS\n"
          "       pgclient hold-until CONNINFO STOPFILE SECONDS\n"
          "       pgclient stall CONNINFO SQL SECONDS\n"
          "       pgclient cancel CONNINFO DELAY_MS\n"
          "       pgclient pids CONNINFO\n"
          "       pgclient sessions CONNINFO SESSIONS SECONDS\n"
          "       pgclient wait-gone CONNINFO APPNAME SECONDS\n"
          "       pgclient pause-copy-out CONNINFO SQL SECONDS\n"
          "       pgclient pinned CONNINFO SESSIONS STOPFILE SECONDS\n",
          stderr);
    exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3)
        usage();
    const char *cmd = argv[1], *conninfo = argv[2];
    if (strcmp(cmd, "query") == 0 && argc == 4)
        return cmd_query(conninfo, argv[3]);
    if (strcmp(cmd, "info") == 0 && argc == 3)
        return cmd_info(conninfo);
    if (strcmp(cmd, "copy-in") == 0 && argc == 5)
        return cmd_copy_in(conninfo, argv[3], argv[4]);
    if (strcmp(cmd, "copy-out") == 0 && argc == 5)
        return cmd_copy_out(conninfo, argv[3], argv[4]);
    if (strcmp(cmd, "concurrent") == 0 && argc == 5)
        return cmd_concurrent(conninfo, argv[3], argv[4]);
    if (strcmp(cmd, "hold") == 0 && argc == 4)
        return cmd_hold(conninfo, argv[3]);
    if (strcmp(cmd, "hold-until") == 0 && argc == 5)
        return cmd_hold_until(conninfo, argv[3], argv[4]);
    if (strcmp(cmd, "stall") == 0 && argc == 5)
        return cmd_stall(conninfo, argv[3], argv[4]);
    if (strcmp(cmd, "cancel") == 0 && argc == 4)
        return cmd_cancel(conninfo, argv[3]);
    if (strcmp(cmd, "pids") == 0 && argc == 3)
        return cmd_pids(conninfo);
    if (strcmp(cmd, "sessions") == 0 && argc == 5)
        return cmd_sessions(conninfo, argv[3], argv[4]);
    if (strcmp(cmd, "wait-gone") == 0 && argc == 5)
        return cmd_wait_gone(conninfo, argv[3], argv[4]);
    if (strcmp(cmd, "pause-copy-out") == 0 && argc == 5)
        return cmd_pause_copy_out(conninfo, argv[3], argv[4]);
    if (strcmp(cmd, "pinned") == 0 && argc == 6)
        return cmd_pinned(conninfo, argv[3], argv[4], argv[5]);
    usage();
}
