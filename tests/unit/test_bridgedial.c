/*
 * test_bridgedial.c - unit tests for src/bridgedial.c (and the bridge
 * branch of dial.c, worker_bridge_post, conn.c's bridge loss): sessions of
 * the in-process fixture (session_fixture.h) whose route dials through a
 * bridge. The bridge thread is not here: this file's dbl_open,
 * dbl_forget and dbl_ssl_ctx, put in as bridgedial_link, are doubles of it that
 * capture what the worker asks; the test plays the bridge thread
 * (worker_bridge_post) and the connector (a thread that runs the outer TLS
 * as client, sends the token and carries the bytes to the fake upstream).
 *
 * Covered: a login and a query through the bridge (stream id layout,
 * target, back_addr in the logs); a failure result reaches the client as
 * FATAL with its own words; a wrong token is refused; the connector killed
 * during the login (also before the StartupMessage reached it: the proxy's
 * writes then fail, and the drain must not wait for them) and between two
 * messages of the data phase (FATAL 08006 naming the bridge,
 * event=bridge_stream_lost), and in the middle of
 * a server message (the session just ends); the session gone first
 * (bridge_forget, a late descriptor closed); the connect timeout while
 * waiting for a stream; a cancel through the bridge; an answer after the
 * worker stopped. (The client's parser shows '"' as '?'.)
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "bridgedial.h"
#include "conn.h"
#include "session_cases.h"
#include "netpair.h"
#include "suites.h"

/* ---- test doubles of bridge.c: what the worker asks is captured ---- */

#define CAP_MAX 4

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int opens, forgets;
    uint64_t stream[CAP_MAX];
    uint8_t token[CAP_MAX][BRIDGE_TOKEN_LEN];
    char bridge[BRIDGE_ID_MAX + 1];
    char host[64];
    unsigned port;
    uint64_t forgot[CAP_MAX];
} cap;

/* Put in bridgedial.c's link to the bridge thread (bridgedial_link). */
static void dbl_open(struct worker *w, uint64_t stream, const uint8_t token[BRIDGE_TOKEN_LEN],
                     const char *bridge_id, const char *host, unsigned port)
{
    (void)w;
    pthread_mutex_lock(&cap_lock);
    if (cap.opens < CAP_MAX) {
        cap.stream[cap.opens] = stream;
        memcpy(cap.token[cap.opens], token, BRIDGE_TOKEN_LEN);
    }
    cap.opens++;
    snprintf(cap.bridge, sizeof(cap.bridge), "%s", bridge_id);
    snprintf(cap.host, sizeof(cap.host), "%s", host);
    cap.port = port;
    pthread_mutex_unlock(&cap_lock);
}

static void dbl_forget(uint64_t stream)
{
    pthread_mutex_lock(&cap_lock);
    if (cap.forgets < CAP_MAX)
        cap.forgot[cap.forgets] = stream;
    cap.forgets++;
    pthread_mutex_unlock(&cap_lock);
}

/* The fixture's front context (its certificate for "localhost"). */
static SSL_CTX *dbl_ssl_ctx(void)
{
    SSL_CTX_up_ref(fx.ctx.front);
    return fx.ctx.front;
}

static int cap_get(int *forgets)
{
    pthread_mutex_lock(&cap_lock);
    int n = cap.opens;
    if (forgets != NULL)
        *forgets = cap.forgets;
    pthread_mutex_unlock(&cap_lock);
    return n;
}

static void wait_opens(int n)
{
    for (int i = 0; i < WAIT_MS / 10 && cap_get(NULL) < n; i++)
        usleep(10 * 1000);
    ck_assert_msg(cap_get(NULL) >= n, "bridge_open was not called %d time(s)", n);
}

static const struct bridgedial_link dbl_link = {dbl_open, dbl_forget, dbl_ssl_ctx};

static void start(const struct sfx_opts *o)
{
    memset(&cap, 0, sizeof(cap));
    bridgedial_link = &dbl_link;
    sfx_start(&fx, o);
}

/* ---- the test's bridge thread and connector ---- */

static void post(uint64_t stream, int fd, const char *sqlstate, const char *label, const char *msg)
{
    struct bridge_result *r = calloc(1, sizeof(*r));
    ck_assert_ptr_nonnull(r);
    r->stream = stream;
    r->fd = fd;
    snprintf(r->connector, sizeof(r->connector), "test#1");
    snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", sqlstate);
    snprintf(r->label, sizeof(r->label), "%s", label);
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
    worker_bridge_post(fx.w, r);
}

struct connector {
    int sfd; /* its end of the data connection */
    uint8_t token[BRIDGE_TOKEN_LEN];
    uv_thread_t thread;
    bool tls_ok;
};

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Outer TLS as client, the token, then bytes both ways between the data
 * connection and the fake upstream until either ends. */
static void connector_thread(void *arg)
{
    struct connector *k = arg;
    uint8_t buf[16384];
    int ufd = -1;
    SSL *ssl = SSL_new(fx.cli_ctx);
    sfx_socket_timeouts(k->sfd);
    SSL_set_fd(ssl, k->sfd);
    if (SSL_connect(ssl) != 1)
        goto out;
    k->tls_ok = true;
    if (SSL_write(ssl, k->token, BRIDGE_TOKEN_LEN) != BRIDGE_TOKEN_LEN)
        goto out;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(fx.up_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ufd < 0 || connect(ufd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    for (;;) {
        struct pollfd p[2] = {{.fd = k->sfd, .events = POLLIN}, {.fd = ufd, .events = POLLIN}};
        if (SSL_pending(ssl) == 0 && poll(p, 2, SFX_IO_TIMEOUT_MS) <= 0)
            break;
        if (SSL_pending(ssl) > 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int n = SSL_read(ssl, buf, sizeof(buf));
            if (n <= 0 || send_all(ufd, buf, (size_t)n) < 0)
                break;
        }
        if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(ufd, buf, sizeof(buf), 0);
            if (n <= 0 || SSL_write(ssl, buf, (int)n) != (int)n)
                break;
        }
    }
out:
    SSL_free(ssl);
    if (ufd >= 0)
        close(ufd);
}

/* A connector for stream i's token (or a wrong one), its data connection
 * handed to the worker. */
static void connector_start(struct connector *k, int i, bool wrong_token)
{
    int fds[2];
    netpair_tcp(fds, SOCK_CLOEXEC | SOCK_NONBLOCK);
    memset(k, 0, sizeof(*k));
    k->sfd = fds[0];
    pthread_mutex_lock(&cap_lock);
    memcpy(k->token, cap.token[i], BRIDGE_TOKEN_LEN);
    uint64_t stream = cap.stream[i];
    pthread_mutex_unlock(&cap_lock);
    if (wrong_token)
        k->token[0] ^= 0x5a;
    ck_assert_int_eq(uv_thread_create(&k->thread, connector_thread, k), 0);
    post(stream, fds[1], "", "", "");
}

static void connector_join(struct connector *k)
{
    uv_thread_join(&k->thread);
    close(k->sfd);
}

/* ---- tests ---- */

static const char *const through_bridge[] = {"event=bridge_stream_requested",
                                             "bridge=db1",
                                             "event=bridge_stream ",
                                             "connector=\"test#1\"",
                                             "event=back_tls_up",
                                             "upstream=bridge:db1/test#1",
                                             "event=established",
                                             "upstream=bridge:db1/test#1",
                                             "event=closed",
                                             "upstream=bridge:db1/test#1",
                                             NULL};

START_TEST(test_login_and_query_through_bridge)
{
    start(&(struct sfx_opts){.bridge = "db1"});
    struct sfx_client *c = sc_client_started(&fx, "alice");
    wait_opens(1);
    ck_assert_str_eq(cap.bridge, "db1");
    ck_assert_str_eq(cap.host, "127.0.0.1");
    ck_assert_uint_eq(cap.port, fx.up_port);
    ck_assert_uint_eq(cap.stream[0] >> 48, 1); /* worker 0, plus one */
    ck_assert_uint_ne(cap.stream[0] & 0xffffffffffffull, 0);
    struct connector k;
    connector_start(&k, 0, false);
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    ck_assert_int_eq(sfx_client_query(c, "select 1"), 'Z');
    ck_assert_str_eq(c->tag, "select 1");
    sfx_client_close(c, true);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    connector_join(&k);
    ck_assert(k.tls_ok);
    struct sfx_up *u = sfx_up_join(&fx, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->got_startup);
    ck_assert_str_eq(u->user, "alice");
    sc_check_seq(&fx, sfx_log_conn(&fx, 0, WAIT_MS), through_bridge, "bridge");
    /* The session has ended: its stream is forgotten, so the bridge thread
     * counts it no more against the connector that carried it. */
    int forgets = 0;
    for (int i = 0; i < WAIT_MS / 10 && (cap_get(&forgets), forgets) < 1; i++)
        usleep(10 * 1000);
    ck_assert_int_eq(forgets, 1);
    ck_assert_uint_eq(cap.forgot[0], cap.stream[0]);
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

/* The bridge thread's failure (no connector online) is the client's FATAL. */
START_TEST(test_failure_result_reaches_client)
{
    start(&(struct sfx_opts){.bridge = "db1"});
    struct sfx_client *c = sc_client_started(&fx, "bob");
    wait_opens(1);
    post(cap.stream[0], -1, "08001", "no_connector",
         "pg-tls-proxy: no connector of bridge \"db1\" is online — start one");
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "08001");
    ck_assert_str_eq(c->severity, "FATAL");
    ck_assert_msg(strstr(c->message, "no connector of bridge ?db1?") != NULL, "%s", c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    ck_assert_int_eq(atomic_load(&fx.nups), 0);
    ck_assert(sfx_log_wait(&fx, WAIT_MS, "event=upstream_failed", "upstream=bridge:db1 ",
                           "no connector"));
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

START_TEST(test_wrong_token_refused)
{
    start(&(struct sfx_opts){.bridge = "db1"});
    struct sfx_client *c = sc_client_started(&fx, "carol");
    wait_opens(1);
    struct connector k;
    connector_start(&k, 0, true);
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "08001");
    ck_assert_msg(strstr(c->message, "did not present this stream's token") != NULL, "%s",
                  c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    connector_join(&k);
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

/* The upstream reads the StartupMessage and waits: the login is under way. */
static void up_login_stalls(struct sfx_up *u)
{
    if (sfx_up_tls(u) == 0 && sfx_up_first_packet(u) == 0)
        sfx_up_wait_eof(u);
}

/* The connector killed during the login: FATAL 08006 naming the bridge. */
START_TEST(test_connector_killed_during_login)
{
    start(&(struct sfx_opts){.bridge = "db1", .up = {up_login_stalls}});
    struct sfx_client *c = sc_client_started(&fx, "dan");
    wait_opens(1);
    struct connector k;
    connector_start(&k, 0, false);
    ck_assert(sfx_log_wait(&fx, WAIT_MS, "event=login_started"));
    shutdown(k.sfd, SHUT_RDWR); /* as a killed connector: FIN, no close_notify */
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "08006");
    ck_assert_msg(strstr(c->message, "bridge ?db1? connection to the database was lost") != NULL,
                  "%s", c->message);
    /* The proxy's EOF follows at once: never the drain's timeout (which
     * is as long as WAIT_MS, so waiting for it made this test flaky). */
    long ms = sfx_client_wait_eof(c, WAIT_MS);
    ck_assert_msg(ms >= 0 && ms < DRAIN_TIMEOUT_MS / 2, "the proxy's EOF took %ld ms", ms);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    connector_join(&k);
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

/* The connector's descriptor the log hook shuts down; -1: none. */
static atomic_int kill_fd = -1;

/* On the worker's thread, right after the legs have joined and before the
 * client's StartupMessage has gone to the connector (conn_join logs, then
 * flushes): the connector dies first, so that write meets a half-closed
 * socket and draws a reset. */
static void kill_at_login_started(const char *line, size_t len)
{
    (void)len;
    int fd = atomic_load(&kill_fd);
    if (fd >= 0 && strstr(line, "event=login_started") != NULL) {
        atomic_store(&kill_fd, -1);
        shutdown(fd, SHUT_RDWR);
    }
}

/*
 * The same, but the connector dies before the StartupMessage has gone (the
 * race test_connector_killed_during_login runs into under load): the
 * proxy's writes to it fail (its kernel answers them with a reset) while
 * the session drains. The drain must not wait for a leg that can never
 * flush: the client's EOF comes at once, not after DRAIN_TIMEOUT_MS.
 */
START_TEST(test_connector_killed_before_startup_sent)
{
    start(&(struct sfx_opts){.bridge = "db1", .log_hook = kill_at_login_started});
    struct sfx_client *c = sc_client_started(&fx, "dora");
    wait_opens(1);
    struct connector k;
    connector_start(&k, 0, false);
    atomic_store(&kill_fd, k.sfd);
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "08006");
    ck_assert_msg(strstr(c->message, "bridge ?db1? connection to the database was lost") != NULL,
                  "%s", c->message);
    long ms = sfx_client_wait_eof(c, WAIT_MS);
    ck_assert_msg(ms >= 0 && ms < DRAIN_TIMEOUT_MS / 2, "the proxy's EOF took %ld ms", ms);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    ck_assert(sfx_log_wait(&fx, WAIT_MS, "event=closed", "outcome=upstream_error"));
    connector_join(&k);
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

/* Killed in the data phase, between two of the server's messages: the
 * client still reads FATAL 08006 naming the bridge (what a server that
 * goes away sends), the log says it was the bridge. */
START_TEST(test_connector_killed_mid_session)
{
    start(&(struct sfx_opts){.bridge = "db1"});
    struct sfx_client *c = sc_client_started(&fx, "erin");
    wait_opens(1);
    struct connector k;
    connector_start(&k, 0, false);
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    ck_assert_int_eq(sfx_client_query(c, "select 1"), 'Z');
    shutdown(k.sfd, SHUT_RDWR);
    ck_assert_int_eq(sfx_client_login(c), 'E'); /* reads on until the ErrorResponse */
    ck_assert_str_eq(c->sqlstate, "08006");
    ck_assert_str_eq(c->severity, "FATAL");
    ck_assert_msg(strstr(c->message, "bridge ?db1? connection to the database was lost") != NULL,
                  "%s", c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    ck_assert(sfx_log_wait(&fx, WAIT_MS, "event=bridge_stream_lost", "bridge=db1",
                           "connector=\"test#1\""));
    sfx_client_close(c, false); /* the proxy lingers until the client's EOF */
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    ck_assert(sfx_log_wait(&fx, WAIT_MS, "event=closed", "outcome=upstream_error",
                           "connection to the database was lost"));
    connector_join(&k);
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

/* The server is in the middle of a message (a RowDescription cut short):
 * an ErrorResponse there would be read as its rest, so the session just
 * ends. */
static void up_half_message(struct sfx_up *u)
{
    uint8_t buf[512];
    static const uint8_t part[] = {'T', 0, 0, 0, 100, 0, 1, 'x'};
    if (sfx_up_tls(u) < 0 || sfx_up_first_packet(u) < 0 || sfx_up_login_ok(u) < 0)
        return;
    if (SSL_read(u->ssl, buf, sizeof(buf)) <= 0) /* the query */
        return;
    SSL_write(u->ssl, part, sizeof(part));
    sfx_up_wait_eof(u);
}

START_TEST(test_connector_killed_mid_message)
{
    start(&(struct sfx_opts){.bridge = "db1", .up = {up_half_message}});
    struct sfx_client *c = sc_client_started(&fx, "finn");
    wait_opens(1);
    struct connector k;
    connector_start(&k, 0, false);
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    static const uint8_t q[] = {'Q', 0, 0, 0, 13, 's', 'e', 'l', 'e', 'c', 't', ' ', '1', 0};
    ck_assert_int_eq(SSL_write(c->ssl, q, sizeof(q)), (int)sizeof(q));
    uint8_t got[64];
    ck_assert_int_eq(SSL_read(c->ssl, got, sizeof(got)), 8); /* the half message, relayed */
    ck_assert_int_eq(got[0], 'T');
    shutdown(k.sfd, SHUT_RDWR);
    ck_assert(sfx_log_wait(&fx, WAIT_MS, "event=bridge_stream_lost", "bridge=db1"));
    sfx_client_close(c, false);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    ck_assert(sfx_log_wait(&fx, WAIT_MS, "event=closed", "connection to the database was lost"));
    ck_assert_uint_eq(sfx_log_count(&fx, "sqlstate=08006"), 0);
    connector_join(&k);
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

/* The session gives up first (the client left; the front is not read
 * while the session waits for its upstream, so the connect timeout ends
 * it): its stream is forgotten, and a data connection that still comes is
 * closed. */
START_TEST(test_session_gone_first)
{
    start(&(struct sfx_opts){.bridge = "db1", .connect_timeout_ms = 300});
    struct sfx_client *c = sc_client_started(&fx, "fay");
    wait_opens(1);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    int forgets = 0;
    cap_get(&forgets);
    ck_assert_int_eq(forgets, 1);
    ck_assert_uint_eq(cap.forgot[0], cap.stream[0]);
    int fds[2];
    netpair_tcp(fds, SOCK_CLOEXEC | SOCK_NONBLOCK);
    sfx_socket_timeouts(fds[0]);
    post(cap.stream[0], fds[1], "", "", "");
    char b;
    ck_assert_int_eq(recv(fds[0], &b, 1, 0), 0); /* closed by the worker */
    ck_assert(sfx_log_wait(&fx, WAIT_MS, "event=bridge_stream_unclaimed"));
    close(fds[0]);
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

/* No answer within --client-connect-timeout. */
START_TEST(test_timeout_waiting_for_stream)
{
    start(&(struct sfx_opts){.bridge = "db1", .connect_timeout_ms = 300});
    struct sfx_client *c = sc_client_started(&fx, "gus");
    wait_opens(1);
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "08001");
    ck_assert_msg(strstr(c->message, "waiting for bridge ?db1? to open a stream") != NULL, "%s",
                  c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    int forgets = 0;
    cap_get(&forgets);
    ck_assert_int_eq(forgets, 1);
    sfx_client_free(c);
    SFX_END(&fx);
}
END_TEST

/* A CancelRequest for a session through the bridge travels through it too
 * (cancelfwd.c's back leg dials the same route): a second stream. */
START_TEST(test_cancel_through_bridge)
{
    start(&(struct sfx_opts){.bridge = "db1"});
    struct sfx_client *a = sc_client_started(&fx, "hal");
    wait_opens(1);
    struct connector ka, kb;
    connector_start(&ka, 0, false);
    ck_assert_int_eq(sfx_client_login(a), 'Z');
    struct sfx_client *k = sfx_client_connect(&fx);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(sfx_client_tls(k), 0);
    ck_assert_int_eq(sfx_client_cancel(k, a->pid, a->key, a->keylen), 0);
    wait_opens(2);
    ck_assert_uint_ne(cap.stream[1], cap.stream[0]);
    connector_start(&kb, 1, false);
    ck_assert_int_ge(sfx_client_wait_eof(k, WAIT_MS), 0);
    sfx_client_close(k, true);
    struct sfx_up *u = sfx_up_join(&fx, 1);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->got_cancel);
    ck_assert_uint_eq(u->cancel_pid, SFX_UP_PID);
    ck_assert_mem_eq(u->cancel_key, SFX_UP_KEY, 4);
    ck_assert_int_eq(sfx_client_query(a, "select 2"), 'Z'); /* the session goes on */
    sfx_client_close(a, true);
    ck_assert_int_ge(sfx_client_wait_eof(a, WAIT_MS), 0);
    ck_assert(sfx_wait_nconns(&fx, 0, WAIT_MS));
    connector_join(&ka);
    connector_join(&kb);
    sfx_client_free(a);
    sfx_client_free(k);
    SFX_END(&fx);
}
END_TEST

/* A worker that has stopped takes no more answers: a late one is freed by
 * the poster at once, its descriptor closed. */
START_TEST(test_post_after_worker_stopped)
{
    start(&(struct sfx_opts){.bridge = "db1"});
    worker_command(fx.w, WORKER_DRAIN);
    for (int i = 0; i < WAIT_MS / 10 && !atomic_load(&fx.w->finished); i++)
        usleep(10 * 1000);
    ck_assert(atomic_load(&fx.w->finished));
    int fds[2];
    netpair_tcp(fds, SOCK_CLOEXEC | SOCK_NONBLOCK);
    sfx_socket_timeouts(fds[0]);
    post(0x0001000000000042ull, fds[1], "", "", "");
    char b;
    ck_assert_int_eq(recv(fds[0], &b, 1, 0), 0);
    close(fds[0]);
    SFX_END(&fx);
}
END_TEST

Suite *bridgedial_suite(void)
{
    Suite *s = suite_create("bridgedial");
    TCase *tc = sc_tcase("bridgedial");
    tcase_add_test(tc, test_login_and_query_through_bridge);
    tcase_add_test(tc, test_failure_result_reaches_client);
    tcase_add_test(tc, test_wrong_token_refused);
    tcase_add_test(tc, test_connector_killed_during_login);
    tcase_add_test(tc, test_connector_killed_before_startup_sent);
    tcase_add_test(tc, test_connector_killed_mid_session);
    tcase_add_test(tc, test_connector_killed_mid_message);
    tcase_add_test(tc, test_session_gone_first);
    tcase_add_test(tc, test_timeout_waiting_for_stream);
    tcase_add_test(tc, test_cancel_through_bridge);
    tcase_add_test(tc, test_post_after_worker_stopped);
    suite_add_tcase(s, tc);
    return s;
}
