/*
 * session: whole sessions through a real worker, in process
 * (session_fixture.h): a TLS client on the test thread, a scripted fake
 * upstream, the worker's loop on its own thread. Each test asserts what the
 * client and the upstream saw, the worker's connection count and the
 * transitions in the log, and ends with SFX_END: the worker drains and
 * stops and uv_loop_close() returns 0.
 *
 * The expected log lines of each test are kept in tables (one per machine:
 * front, back, login): the transitions ("event=state conn=N machine=front
 * from=X to=Y", logged at debug level by front_set_state, back_set_state
 * and login_set_state) among the events around them.
 */
#include <string.h>

#include <sys/socket.h>

#include "conn.h"
#include "front.h"
#include "session_fixture.h"
#include "suites.h"

#define WAIT_MS 5000 /* generous: valgrind runs these too */

/* One fixture for the test that runs; the checked teardown stops it if the
 * test could not (a failed assertion, with CK_FORK=no), so that the next
 * test does not run beside a worker that still logs into it. */
static struct sfx fx;

static void teardown(void)
{
    if (fx.started)
        sfx_stop(&fx);
}

static void check_seq(struct sfx *f, unsigned long long id, const char *const *seq,
                      const char *what)
{
    const char *missing = sfx_log_seq(f, id, seq, WAIT_MS);
    if (missing != NULL)
        sfx_log_dump(f);
    ck_assert_msg(missing == NULL, "%s: conn=%llu: no \"%s\" in order in the log", what, id,
                  missing);
}

/* A client with TLS up and its StartupMessage sent. */
static struct sfx_client *client_started(struct sfx *f, const char *user)
{
    struct sfx_client *c = sfx_client_connect(f);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(sfx_client_tls(c), 0);
    ck_assert_int_eq(sfx_client_startup(c, user, "db"), 0);
    return c;
}

/* ---- a whole session, closed by the client ---- */

static const char *const full_front[] = {"event=accepted",
                                         "machine=front from=first to=tls",
                                         "machine=front from=tls to=startup",
                                         "event=front_tls_up",
                                         "machine=front from=startup to=wait",
                                         "machine=front from=wait to=relay",
                                         "event=login_started",
                                         "event=established",
                                         "event=closed",
                                         NULL};
static const char *const full_back[] = {"machine=back from=idle to=dial",
                                        "machine=back from=dial to=sslreq",
                                        "machine=back from=sslreq to=tls",
                                        "machine=back from=tls to=ready",
                                        "event=back_tls_up",
                                        "machine=back from=ready to=relay",
                                        "event=login_started",
                                        "event=closed",
                                        NULL};
static const char *const full_login[] = {
    "machine=login from=none to=startup",  "event=login_started", "event=backend_key",
    "machine=login from=startup to=ready", "event=established",   NULL};

START_TEST(test_full_session)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){0});
    struct sfx_client *c = client_started(f, "alice");
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    ck_assert_uint_eq(c->pid, SFX_UP_PID);
    ck_assert_uint_eq(c->keylen, 4);
    ck_assert_mem_eq(c->key, SFX_UP_KEY, 4);
    ck_assert_int_eq(sfx_client_query(c, "select 1"), 'Z');
    ck_assert_str_eq(c->tag, "select 1");
    ck_assert_uint_eq(sfx_nconns(f), 1);

    /* drain: the client's close_notify + FIN reach the upstream as ours */
    sfx_client_close(c, true);
    struct sfx_up *u = sfx_up_join(f, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert_str_eq(u->user, "alice");
    ck_assert_uint_eq(u->queries, 1);
    ck_assert(u->close_notify);
    ck_assert(u->fin);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    ck_assert(c->close_notify);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));

    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    ck_assert_uint_ne(id, 0);
    check_seq(f, id, full_front, "front");
    check_seq(f, id, full_back, "back");
    check_seq(f, id, full_login, "login");
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "user=\"alice\"", "outcome=closed",
                           "front_tls=TLSv1.3", "back_tls=TLSv1.3"));
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* ---- the upstream ends the session ---- */

static void up_close_after_query(struct sfx_up *u)
{
    if (sfx_up_tls(u) != 0 || sfx_up_first_packet(u) != 0 || sfx_up_login_ok(u) != 0)
        return;
    /* one query answered, then a server-side close (a restart, pg_terminate_backend) */
    sfx_up_serve_n(u, 1);
    sfx_up_close(u, true);
    sfx_up_wait_eof(u);
}

static const char *const upclose_front[] = {"event=accepted", "event=established", "event=closed",
                                            NULL};

START_TEST(test_upstream_closes)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.up = {up_close_after_query}});
    struct sfx_client *c = client_started(f, "bob");
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    ck_assert_int_eq(sfx_client_query(c, "select 2"), 'Z');
    /* the upstream's close reaches the client as close_notify + FIN */
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    ck_assert(c->close_notify);
    sfx_client_close(c, false);
    struct sfx_up *u = sfx_up_join(f, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->fin);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    check_seq(f, id, upclose_front, "front");
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=closed", "reason=\"back"));
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* ---- the upstream refuses the login ---- */

static void up_login_refused(struct sfx_up *u)
{
    if (sfx_up_tls(u) != 0 || sfx_up_first_packet(u) != 0)
        return;
    sfx_up_error(u, "28P01", "password authentication failed for user \"carol\"");
    sfx_up_close(u, true);
    sfx_up_wait_eof(u);
}

static const char *const loginfail_login[] = {"machine=login from=none to=startup",
                                              "event=login_started", "event=login_refused",
                                              "event=closed", NULL};

START_TEST(test_login_failed)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.up = {up_login_refused}});
    struct sfx_client *c = client_started(f, "carol");
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "28P01"); /* the server's own error, passed on whole */
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    check_seq(f, id, loginfail_login, "login");
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=login_failed", "sqlstate=28P01"));
    ck_assert_uint_eq(sfx_log_count(f, "event=established"), 0);
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* ---- the back leg fails before the login: FATAL 08001 to the client ---- */

static void up_refuse_tls(struct sfx_up *u)
{
    if (sfx_up_sslrequest(u, 'N') == 0)
        sfx_up_wait_eof(u);
}

static void up_close_midhandshake(struct sfx_up *u)
{
    if (sfx_up_sslrequest(u, 'S') != 0)
        return;
    /* the start of the proxy's ClientHello, then the connection drops */
    sfx_up_drop(u, 16);
}

static const char *const backfail_back[] = {"machine=back from=idle to=dial",
                                            "event=upstream_failed",
                                            "sqlstate=08001",
                                            "machine=back",
                                            "to=failed",
                                            "event=closed",
                                            NULL};
static const char *const backfail_front[] = {"event=accepted", "event=front_tls_up", "event=error",
                                             "event=closed", NULL};

/* up_eof: the script reads to the end, so the proxy's FIN must reach it */
static void back_failure(const struct sfx_opts *o, const char *words, bool up_eof)
{
    struct sfx *f = &fx;
    sfx_start(f, o);
    struct sfx_client *c = client_started(f, "dave");
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "08001");
    ck_assert_str_eq(c->severity, "FATAL");
    ck_assert_msg(strstr(c->message, words) != NULL, "message: %s", c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    if (!o->no_upstream) {
        struct sfx_up *u = sfx_up_join(f, 0);
        ck_assert_ptr_nonnull(u);
        ck_assert(u->got_sslrequest);
        ck_assert(!u->got_startup); /* nothing of the client's reached it */
        ck_assert(u->fin || !up_eof);
    }
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    check_seq(f, id, backfail_back, "back");
    check_seq(f, id, backfail_front, "front");
    ck_assert_uint_eq(sfx_log_count(f, "event=login_started"), 0);
    sfx_client_free(c);
    SFX_END(f);
}

START_TEST(test_upstream_refuses_tls)
{
    back_failure(&(struct sfx_opts){.up = {up_refuse_tls}}, "refused TLS", true);
}
END_TEST

START_TEST(test_upstream_closes_midhandshake)
{
    back_failure(&(struct sfx_opts){.up = {up_close_midhandshake}},
                 "closed the connection during TLS set-up", false);
}
END_TEST

/* CONNECT fails: nobody listens on the upstream's port */
START_TEST(test_upstream_unreachable)
{
    back_failure(&(struct sfx_opts){.no_upstream = true}, "is unreachable", false);
    ck_assert_int_eq(atomic_load(&fx.nups), 0);
}
END_TEST

/* SSLREQ times out: the upstream accepts and never answers */
static void up_silent(struct sfx_up *u)
{
    uint8_t req[8];
    if (recv(u->fd, req, sizeof(req), MSG_WAITALL) == (ssize_t)sizeof(req))
        u->got_sslrequest = true;
    sfx_up_wait_eof(u);
}

START_TEST(test_upstream_silent_connect_timeout)
{
    back_failure(&(struct sfx_opts){.connect_timeout_ms = 300, .up = {up_silent}},
                 "waiting for its answer to SSLRequest", true);
}
END_TEST

/* ---- the start-up timeout, then linger until the client's EOF ---- */

static const char *const timeout_front[] = {"event=accepted",
                                            "machine=front from=first to=tls",
                                            "machine=front from=tls to=startup",
                                            "event=front_tls_up",
                                            "event=error",
                                            "sqlstate=08P01",
                                            "event=closed",
                                            NULL};

START_TEST(test_startup_timeout_linger)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.startup_timeout_ms = 300});
    struct sfx_client *c = sfx_client_connect(f);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(sfx_client_tls(c), 0);
    /* no StartupMessage: the proxy says why, inside TLS */
    ck_assert_int_eq(sfx_client_login(c), 'E');
    uint64_t t0 = uv_hrtime(); /* the drain (and its DRAIN_TIMEOUT_MS timer) began before */
    ck_assert_str_eq(c->sqlstate, "08P01");
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0); /* close_notify + FIN */
    ck_assert(c->close_notify);

    /* linger: the proxy keeps its socket (reading) until the client's EOF,
     * so the FATAL is read rather than lost to a reset */
    ck_assert(!sfx_log_wait(f, 300, "event=closed"));
    ck_assert_uint_eq(sfx_nconns(f), 1);
    sfx_client_close(c, true);
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=timeout"));
    /* closed at our EOF, not by the drain timer (which fires 5 s after the FATAL) */
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_uint_lt(ms, 4900);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));

    /* the early back leg was up: it ends with close_notify, no StartupMessage sent */
    struct sfx_up *u = sfx_up_join(f, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->tls_up);
    ck_assert(!u->got_startup);
    ck_assert(u->close_notify);
    ck_assert(u->fin);
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    check_seq(f, id, timeout_front, "front");
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* ---- a silent client: nothing was written to it, so no linger ---- */

static const char *const silent_front[] = {"event=accepted", "event=closed", "outcome=timeout",
                                           NULL};

START_TEST(test_silent_client_no_linger)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.startup_timeout_ms = 300});
    uint64_t t0 = uv_hrtime();
    struct sfx_client *c = sfx_client_connect(f);
    ck_assert_ptr_nonnull(c);
    /* the proxy closes at the handshake timeout without waiting for us */
    unsigned timeout = f->rt.startup_timeout_ms;
    ck_assert_int_ge(sfx_client_wait_eof(c, timeout + WAIT_MS), 0);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    ck_assert_uint_ge(ms, timeout - 50);
    ck_assert_uint_lt(ms, timeout + 3700);     /* a linger would last DRAIN_TIMEOUT_MS (5 s) more */
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS)); /* while our socket is still open */
    ck_assert_int_eq(atomic_load(&f->nups), 0); /* no upstream leg for a silent client */
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    check_seq(f, id, silent_front, "front");
    ck_assert_uint_eq(sfx_log_count(f, "event=error"), 0);
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* ---- worker shutdown: WORKER_DRAIN lets sessions run, WORKER_FORCE ends them ---- */

static void up_stall_login(struct sfx_up *u)
{
    if (sfx_up_tls(u) == 0 && sfx_up_first_packet(u) == 0)
        sfx_up_wait_eof(u); /* never answers the StartupMessage */
}

static const char *const drain_relaying[] = {"event=established", "event=closed",
                                             "outcome=shutdown", NULL};
static const char *const drain_login[] = {"machine=login from=none to=startup",
                                          "event=login_started",
                                          "event=error",
                                          "sqlstate=57P01",
                                          "event=closed",
                                          NULL};

START_TEST(test_worker_drain_then_force)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.up = {sfx_up_login_echo, up_stall_login}});
    struct sfx_client *a = client_started(f, "erin");
    ck_assert_int_eq(sfx_client_login(a), 'Z');
    unsigned long long ida = sfx_log_conn(f, 0, WAIT_MS);
    struct sfx_client *b = client_started(f, "frank");
    unsigned long long idb = sfx_log_conn(f, 1, WAIT_MS);
    const char *const login_started[] = {"event=login_started", NULL};
    check_seq(f, idb, login_started, "login");

    worker_command(f->w, WORKER_DRAIN);
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=worker_draining", "open_connections=2"));
    ck_assert_ptr_null(sfx_client_connect(f));              /* the listener is closed */
    ck_assert_int_eq(sfx_client_query(a, "select 3"), 'Z'); /* sessions go on */
    ck_assert_str_eq(a->tag, "select 3");
    ck_assert_uint_eq(sfx_nconns(f), 2);

    worker_command(f->w, WORKER_FORCE);
    /* in its login: told why; relaying: closed cleanly, no stray message */
    ck_assert_int_eq(sfx_client_login(b), 'E');
    ck_assert_str_eq(b->sqlstate, "57P01");
    size_t len;
    uint8_t buf[512];
    ck_assert_int_eq(sfx_client_read_msg(a, buf, sizeof(buf), &len), 0);
    ck_assert(a->close_notify);
    sfx_client_close(a, true);
    sfx_client_close(b, true);
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=worker_stopped"));
    for (int i = 0; i < 2; i++) {
        struct sfx_up *u = sfx_up_join(f, i);
        ck_assert_ptr_nonnull(u);
        ck_assert(u->close_notify);
        ck_assert(u->fin);
    }
    check_seq(f, ida, drain_relaying, "relaying session");
    check_seq(f, idb, drain_login, "session in its login");
    sfx_client_free(a);
    sfx_client_free(b);
    SFX_END(f);
}
END_TEST

/* ---- a CancelRequest inside TLS reaches the upstream over verified TLS ---- */

static const char *const cancel_front[] = {"event=accepted",
                                           "machine=front from=first to=tls",
                                           "machine=front from=tls to=startup",
                                           "event=front_tls_up",
                                           "event=cancel_forward",
                                           "event=cancel_closed",
                                           "outcome=cancel_forwarded",
                                           NULL};

START_TEST(test_cancel_in_tls)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){0});
    struct sfx_client *a = client_started(f, "gina");
    ck_assert_int_eq(sfx_client_login(a), 'Z');
    struct sfx_client *k = sfx_client_connect(f);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(sfx_client_tls(k), 0);
    ck_assert_int_eq(sfx_client_cancel(k, a->pid, a->key, a->keylen), 0);
    ck_assert_int_ge(sfx_client_wait_eof(k, WAIT_MS), 0); /* answered with nothing */
    sfx_client_close(k, true);

    struct sfx_up *u = sfx_up_join(f, 1);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->tls_up);
    ck_assert(u->got_cancel);
    ck_assert(!u->got_startup);
    ck_assert_uint_eq(u->cancel_pid, SFX_UP_PID);
    ck_assert_uint_eq(u->cancel_keylen, 4);
    ck_assert_mem_eq(u->cancel_key, SFX_UP_KEY, 4);
    ck_assert(u->close_notify);
    unsigned long long idk = sfx_log_conn(f, 1, WAIT_MS);
    check_seq(f, idk, cancel_front, "cancel");
    ck_assert(sfx_wait_nconns(f, 1, WAIT_MS));

    ck_assert_int_eq(sfx_client_query(a, "select 4"), 'Z'); /* the session is untouched */
    sfx_client_close(a, true);
    ck_assert_int_ge(sfx_client_wait_eof(a, WAIT_MS), 0);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    sfx_client_free(a);
    sfx_client_free(k);
    SFX_END(f);
}
END_TEST

/* ---- an impossible transition is refused: XX000, the session ends ---- */

static bool illegal_moved;

/* On the loop's thread: the front leg skips from STARTUP to RELAY, as a
 * bug would. */
static void illegal_move(struct sfx *f, void *arg)
{
    (void)arg;
    struct conn *c = f->w->conns;
    illegal_moved = c != NULL && front_set_state(c, FRONT_RELAY, "test: no StartupMessage");
}

START_TEST(test_illegal_transition)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){0});
    struct sfx_client *c = sfx_client_connect(f);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(sfx_client_tls(c), 0);
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=front_tls_up"));
    illegal_moved = true;
    sfx_call(f, illegal_move, NULL);
    ck_assert(!illegal_moved);
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "XX000");
    ck_assert(
        sfx_log_wait(f, WAIT_MS, "event=state_illegal", "machine=front from=startup to=relay"));
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=internal"));
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

Suite *session_suite(void)
{
    Suite *s = suite_create("session");
    TCase *tc = tcase_create("session");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60); /* valgrind; each test takes well under a second */
    tcase_add_test(tc, test_full_session);
    tcase_add_test(tc, test_upstream_closes);
    tcase_add_test(tc, test_login_failed);
    tcase_add_test(tc, test_upstream_refuses_tls);
    tcase_add_test(tc, test_upstream_closes_midhandshake);
    tcase_add_test(tc, test_upstream_unreachable);
    tcase_add_test(tc, test_upstream_silent_connect_timeout);
    tcase_add_test(tc, test_startup_timeout_linger);
    tcase_add_test(tc, test_silent_client_no_linger);
    tcase_add_test(tc, test_worker_drain_then_force);
    tcase_add_test(tc, test_cancel_in_tls);
    tcase_add_test(tc, test_illegal_transition);
    suite_add_tcase(s, tc);
    return s;
}
