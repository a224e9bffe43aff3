/*
 * test_login.c - unit tests for src/login.c: the upstream refuses the login (its
 * own ErrorResponse reaches the client whole, outcome=login_failed, no
 * event=established), and the cancel key of a session that logs in.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "session_cases.h"
#include "suites.h"

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
    struct sfx_client *c = sc_client_started(f, "carol");
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "28P01"); /* the server's own error, passed on whole */
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    sc_check_seq(f, id, loginfail_login, "login");
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=login_failed", "sqlstate=28P01"));
    ck_assert_uint_eq(sfx_log_count(f, "event=established"), 0);
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

Suite *login_suite(void)
{
    Suite *s = suite_create("login");
    TCase *tc = sc_tcase("login");
    tcase_add_test(tc, test_login_failed);
    suite_add_tcase(s, tc);
    return s;
}
