/*
 * test_conn.c - unit tests for src/conn.c: the start-up timeout's FATAL, then
 * the linger until the client's EOF (not the drain timer); an illegal
 * state transition ends that connection with XX000, never the process.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "conn.h"
#include "front.h"
#include "session_cases.h"
#include "suites.h"

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
    sc_check_seq(f, id, timeout_front, "front");
    sfx_client_free(c);
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

Suite *conn_suite(void)
{
    Suite *s = suite_create("conn");
    TCase *tc = sc_tcase("conn");
    tcase_add_test(tc, test_startup_timeout_linger);
    tcase_add_test(tc, test_illegal_transition);
    suite_add_tcase(s, tc);
    return s;
}
