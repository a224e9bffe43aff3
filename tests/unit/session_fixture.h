/*
 * session_fixture.h - an in-process session harness: a real worker (worker_init,
 * listener_start, its loop on its own thread as in production), clients and
 * a scripted fake upstream over loopback TCP, TLS on both legs with a private
 * CA made in memory (EC P-256; the PEM files live in a mkdtemp directory
 * only while tlsctx_build reads them).
 *
 * Threads: the worker's loop runs on its thread; the test thread is the
 * client (blocking sockets, every read bounded by SFX_IO_TIMEOUT_MS); each
 * connection the fake upstream accepts runs its script on a thread of its
 * own. Observations: what the client and the upstream saw, the worker's
 * connection count (read on the loop's thread, sfx_nconns) and the log
 * (log_set_sink: every line at debug level is kept, sfx_log_*).
 *
 * Every test ends with SFX_END(f): the worker drains and stops, every thread
 * is joined, everything is freed, and uv_loop_close() must return 0.
 */
#ifndef PGTP_SESSION_FIXTURE_H
#define PGTP_SESSION_FIXTURE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "pgproto.h"
#include "route.h"
#include "worker.h"
#include "tlsctx.h"

#define SFX_MAX_UP 4           /* upstream connections one test may make */
#define SFX_IO_TIMEOUT_MS 8000 /* any single blocking read (valgrind is slow) */
#define SFX_UP_PID 4242u       /* the fake upstream's BackendKeyData */
#define SFX_UP_KEY "\x0b\xad\xf0\x0d"

struct sfx;

/* One connection the fake upstream accepted, and what it saw on it. */
struct sfx_up {
    struct sfx *f;
    int index; /* 0: the first connection the proxy made */
    int fd;
    SSL *ssl;
    uv_thread_t thread;
    atomic_bool started;
    bool joined;
    /* set by the script helpers; read by the test after sfx_up_join */
    bool got_sslrequest, tls_up, got_startup, got_cancel, got_terminate;
    bool close_notify; /* the proxy's TLS close_notify arrived */
    bool fin;          /* then (or instead) the TCP FIN */
    char user[64];     /* from the StartupMessage */
    unsigned queries;  /* 'Q' messages echoed */
    uint32_t cancel_pid;
    uint8_t cancel_key[8];
    size_t cancel_keylen;
};

/* A script for one upstream connection: runs on its own thread. */
typedef void (*sfx_up_script)(struct sfx_up *u);

/* Timeouts in sfx_opts are multiplied by this: 5 under valgrind (found in
 * LD_PRELOAD), else SFX_TIME_SCALE from the environment, else 1. A TLS
 * handshake under memcheck on a busy machine can take longer than a
 * 300 ms start-up timeout. */
unsigned sfx_time_scale(void);

struct sfx_opts {
    unsigned startup_timeout_ms; /* --server-handshake-timeout; 0: 3000 (times the scale) */
    unsigned connect_timeout_ms; /* --client-connect-timeout; 0: 3000 (times the scale) */
    bool no_upstream;      /* nobody listens on the upstream's port: connections are refused */
    const char *auth_mode; /* --auth-mode (password, scram); NULL: passthrough */
    const char *auth_file; /* scram: the auth file's text, written to a temporary file */
    const char *bridge; /* --client-bridge: the default route dials through this bridge id */
    /* script of the upstream's i-th connection; NULL: sfx_up_login_echo */
    sfx_up_script up[SFX_MAX_UP];
    /* Called with every log line on the thread that logs it (the worker's,
     * before the line is kept): a test acts at an exact point of the
     * worker's work, e.g. to make a race with a peer happen every time. */
    void (*log_hook)(const char *line, size_t len);
};

struct sfx {
    char dir[64];
    char ca_path[128], cert_path[128], key_path[128];
    char auth_path[64]; /* --auth-file, only until the routes have read it */
    X509 *ca;
    EVP_PKEY *leaf_key;
    X509 *leaf;
    struct config cfg;
    struct runtime rt;
    struct tls_contexts ctx;
    struct route_table *routes; /* as main.c builds it, timeouts in ms */
    struct worker *w;
    uint16_t port; /* the proxy's listener on 127.0.0.1 */
    /* sfx_call: run a function on the worker's loop thread */
    uv_async_t call;
    uv_sem_t call_done;
    void (*call_fn)(struct sfx *f, void *arg);
    void *call_arg;
    bool call_open;
    bool running;                           /* worker thread started */
    bool started;                           /* sfx_start ran and sfx_stop has not */
    bool worker_made, sem_made, up_running; /* how far sfx_start got */
    /* the fake upstream */
    int up_fd;
    uint16_t up_port;
    uv_thread_t up_thread;
    atomic_bool up_stop;
    atomic_int nups;
    SSL_CTX *up_ctx;
    struct sfx_up ups[SFX_MAX_UP];
    sfx_up_script scripts[SFX_MAX_UP];
    void (*log_hook)(const char *line, size_t len); /* sfx_opts.log_hook */
    /* the test's clients */
    SSL_CTX *cli_ctx;
    /* the captured log */
    uv_mutex_t log_lock;
    uv_cond_t log_cond;
    char *log;
    size_t log_len, log_cap;
    enum log_level saved_level;
    bool stop_killed; /* the worker did not drain by itself: WORKER_KILL was needed */
};

/* Build everything and start the worker. ck_asserts on failure. */
void sfx_start(struct sfx *f, const struct sfx_opts *o);
/* Drain and stop the worker (WORKER_KILL if it has not stopped within 3 s:
 * stop_killed), join every thread, free everything. Returns what
 * uv_loop_close() returned for the worker's loop. */
int sfx_stop(struct sfx *f);
#define SFX_END(f)                                                                                 \
    do {                                                                                           \
        ck_assert_int_eq(sfx_stop(f), 0);                                                          \
        ck_assert_msg(!(f)->stop_killed, "sessions were still open at the end of the test");       \
    } while (0)

/* Run fn(f, arg) on the worker's loop thread and wait for it. */
void sfx_call(struct sfx *f, void (*fn)(struct sfx *f, void *arg), void *arg);
/* The worker's open connections (w->nconns, read on its thread). */
size_t sfx_nconns(struct sfx *f);
/* Poll sfx_nconns until it is n; false after timeout_ms. */
bool sfx_wait_nconns(struct sfx *f, size_t n, unsigned timeout_ms);

/* ---- the log ---- */
/* Wait for a line containing every one of the substrings (NULL-ended);
 * false after timeout_ms. sfx_log_wait(f, ms, "event=closed", "outcome=x"). */
bool sfx_log_wait_all(struct sfx *f, unsigned timeout_ms, const char *const *needles);
#define sfx_log_wait(f, ms, ...)                                                                   \
    sfx_log_wait_all((f), (ms), (const char *const[]){__VA_ARGS__, NULL})
/* Lines containing needle so far. */
unsigned sfx_log_count(struct sfx *f, const char *needle);
/* The id of the nth (from 0) connection logged with event=accepted, waiting
 * for it up to timeout_ms; 0 if none. */
unsigned long long sfx_log_conn(struct sfx *f, unsigned nth, unsigned timeout_ms);
/*
 * The lines of connection id, in order, must contain the entries of seq
 * (NULL-ended) in that order (other lines may come between; one line may
 * match several entries: "event=closed", "outcome=timeout"). Waits up to
 * timeout_ms for the last ones. Returns NULL, or the first entry not found
 * (for ck_assert_msg). Tests keep seq in one table per test: the expected
 * transitions, easy to rewrite when the log lines change.
 */
const char *sfx_log_seq(struct sfx *f, unsigned long long id, const char *const *seq,
                        unsigned timeout_ms);
/* Print the captured log to stderr (on a failure, to see why). */
void sfx_log_dump(struct sfx *f);

/* ---- the client (the test thread) ---- */
struct sfx_client {
    struct sfx *f;
    int fd;
    SSL *ssl;
    bool close_notify, eof;
    /* from the replies */
    char sqlstate[6];
    char severity[16];
    char message[160];
    uint32_t pid;
    uint8_t key[PG_CANCEL_KEY_MAX];
    size_t keylen;
    char tag[64]; /* the last CommandComplete */
};

/* TCP connection to the proxy; NULL on failure. */
struct sfx_client *sfx_client_connect(struct sfx *f);
void sfx_client_free(struct sfx_client *c);
/* Send raw bytes (before TLS). 0 or -1. */
int sfx_client_send_raw(struct sfx_client *c, const void *buf, size_t len);
/* SSLRequest, 'S', handshake verifying the proxy's certificate for
 * "localhost" with the fixture's CA. 0 or -1. */
int sfx_client_tls(struct sfx_client *c);
/* StartupMessage 3.0 for user/database (inside TLS). 0 or -1. */
int sfx_client_startup(struct sfx_client *c, const char *user, const char *database);
/* Read replies until ReadyForQuery ('Z' returned) or an ErrorResponse ('E'
 * returned, fields in c->sqlstate/severity/message); BackendKeyData is
 * kept in c->pid/key. 0: the connection ended first; -1: error or timeout. */
int sfx_client_login(struct sfx_client *c);
/* 'Q' sql, then replies until 'Z' (c->tag: the CommandComplete) or 'E'.
 * Same returns as sfx_client_login. */
int sfx_client_query(struct sfx_client *c, const char *sql);
/* Read one message: its type, 0 at EOF, -1 on error or timeout. */
int sfx_client_read_msg(struct sfx_client *c, uint8_t *buf, size_t cap, size_t *len);
/* CancelRequest for pid/key inside TLS (after sfx_client_tls). 0 or -1. */
int sfx_client_cancel(struct sfx_client *c, uint32_t pid, const uint8_t *key, size_t keylen);
/* Wait for the proxy's EOF (consuming whatever comes first): milliseconds
 * it took, or -1 after timeout_ms. Sets c->close_notify when TLS said so. */
long sfx_client_wait_eof(struct sfx_client *c, unsigned timeout_ms);
/* True if nothing (no byte, no EOF) arrives within ms. */
bool sfx_client_quiet(struct sfx_client *c, unsigned ms);
/* close_notify (when notify and TLS is up), then FIN. The socket stays open to read. */
void sfx_client_close(struct sfx_client *c, bool notify);

/* ---- the fake upstream's building blocks, for scripts ---- */
/* Read the SSLRequest and answer reply ('S' or 'N'). 0 or -1. */
int sfx_up_sslrequest(struct sfx_up *u, char reply);
/* sfx_up_sslrequest(u, 'S') and the server handshake. 0 or -1. */
int sfx_up_tls(struct sfx_up *u);
/* Read the StartupMessage (or a CancelRequest: got_cancel, cancel_*) inside TLS. 0 or -1. */
int sfx_up_first_packet(struct sfx_up *u);
/* AuthenticationOk, ParameterStatus, BackendKeyData (SFX_UP_PID/KEY), ReadyForQuery. */
int sfx_up_login_ok(struct sfx_up *u);
/* A FATAL ErrorResponse with sqlstate and message. */
int sfx_up_error(struct sfx_up *u, const char *sqlstate, const char *msg);
/* Answer each 'Q' with CommandComplete (its text as the tag) + ReadyForQuery
 * until 'X' or EOF; then read to the EOF (close_notify, fin). */
void sfx_up_serve(struct sfx_up *u);
/* The same, but return once n queries have been answered (n > 0). */
void sfx_up_serve_n(struct sfx_up *u, unsigned n);
/* Read and discard until EOF (close_notify, fin). */
void sfx_up_wait_eof(struct sfx_up *u);
/* close_notify (when notify) and FIN. */
void sfx_up_close(struct sfx_up *u, bool notify);
/* Read up to n bytes (before or during TLS: raw), then close the socket at once. */
void sfx_up_drop(struct sfx_up *u, size_t n);
/* The default script: sfx_up_tls, sfx_up_first_packet, sfx_up_login_ok, sfx_up_serve. */
void sfx_up_login_echo(struct sfx_up *u);
/* TCP_NODELAY and SFX_IO_TIMEOUT_MS send/receive timeouts on a blocking socket. */
int sfx_socket_timeouts(int fd);

/* Wait (up to SFX_IO_TIMEOUT_MS) for the upstream's connection i to have
 * been made and its script to end; NULL if it never came. */
struct sfx_up *sfx_up_join(struct sfx *f, int i);

#endif
