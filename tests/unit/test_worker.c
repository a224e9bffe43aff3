/*
 * test_worker.c - unit tests for src/worker.c: WORKER_DRAIN closes the
 * listener and lets sessions run; WORKER_FORCE ends them (57P01 to a
 * session in its login, a clean close to a relaying one).
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "session_cases.h"
#include "suites.h"

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
    struct sfx_client *a = sc_client_started(f, "erin");
    ck_assert_int_eq(sfx_client_login(a), 'Z');
    unsigned long long ida = sfx_log_conn(f, 0, WAIT_MS);
    struct sfx_client *b = sc_client_started(f, "frank");
    unsigned long long idb = sfx_log_conn(f, 1, WAIT_MS);
    const char *const login_started[] = {"event=login_started", NULL};
    sc_check_seq(f, idb, login_started, "login");

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
    sc_check_seq(f, ida, drain_relaying, "relaying session");
    sc_check_seq(f, idb, drain_login, "session in its login");
    sfx_client_free(a);
    sfx_client_free(b);
    SFX_END(f);
}
END_TEST

Suite *worker_suite(void)
{
    Suite *s = suite_create("worker");
    TCase *tc = sc_tcase("worker");
    tcase_add_test(tc, test_worker_drain_then_force);
    suite_add_tcase(s, tc);
    return s;
}
