/*
 * test_cancelfwd.c - unit tests for src/cancelfwd.c: a CancelRequest inside
 * TLS reaches the upstream over verified TLS with the session's key, and
 * the session goes on.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "session_cases.h"
#include "suites.h"

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
    struct sfx_client *a = sc_client_started(f, "gina");
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
    sc_check_seq(f, idk, cancel_front, "cancel");
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

Suite *cancelfwd_suite(void)
{
    Suite *s = suite_create("cancelfwd");
    TCase *tc = sc_tcase("cancelfwd");
    tcase_add_test(tc, test_cancel_in_tls);
    suite_add_tcase(s, tc);
    return s;
}
