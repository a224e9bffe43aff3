/*
 * test_relay.c - unit tests for src/relay.c: a whole session (login, a query
 * echoed, the client's close_notify + FIN reaching the upstream as ours)
 * and the upstream ending the session (its close reaches the client).
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "session_cases.h"
#include "suites.h"

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
    struct sfx_client *c = sc_client_started(f, "alice");
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
    sc_check_seq(f, id, full_front, "front");
    sc_check_seq(f, id, full_back, "back");
    sc_check_seq(f, id, full_login, "login");
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
    struct sfx_client *c = sc_client_started(f, "bob");
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
    sc_check_seq(f, id, upclose_front, "front");
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=closed", "reason=\"back"));
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

Suite *relay_suite(void)
{
    Suite *s = suite_create("relay");
    TCase *tc = sc_tcase("relay");
    tcase_add_test(tc, test_full_session);
    tcase_add_test(tc, test_upstream_closes);
    suite_add_tcase(s, tc);
    return s;
}
