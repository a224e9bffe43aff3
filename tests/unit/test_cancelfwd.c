/*
 * test_cancelfwd.c - unit tests for src/cancelfwd.c: the client is given
 * the proxy's cancel key, not the server's; a CancelRequest inside TLS
 * with that key reaches the upstream over verified TLS with the server's
 * pid/key (SFX_UP_PID/SFX_UP_KEY), and the session goes on; one with a key
 * no session has, or with the server's own pid/key, is not forwarded (no
 * CancelRequest reaches the upstream, outcome unknown_key) and the session
 * is untouched.
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
    ck_assert_uint_eq(a->keylen, 4);
    ck_assert(a->pid != SFX_UP_PID || memcmp(a->key, SFX_UP_KEY, 4) != 0);
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

/* ---- a CancelRequest with a key no session has: not forwarded ---- */

/* A cancel for a's session with a wrong key: nothing reaches the
 * upstream, the session is untouched. server_key: the server's own
 * pid/key (what a client that bypassed the proxy's key would send);
 * otherwise the proxy's key with one bit off. */
static void cancel_not_forwarded(const char *user, bool server_key)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){0});
    struct sfx_client *a = sc_client_started(f, user);
    ck_assert_int_eq(sfx_client_login(a), 'Z');
    uint32_t pid = a->pid;
    uint8_t wrong[4];
    memcpy(wrong, a->key, 4);
    wrong[3] ^= 0x40; /* one bit off */
    if (server_key) {
        pid = SFX_UP_PID;
        memcpy(wrong, SFX_UP_KEY, 4);
    }
    struct sfx_client *k = sfx_client_connect(f);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(sfx_client_tls(k), 0);
    ck_assert_int_eq(sfx_client_cancel(k, pid, wrong, 4), 0);
    ck_assert_int_ge(sfx_client_wait_eof(k, WAIT_MS), 0); /* answered with nothing */
    sfx_client_close(k, true);
    ck_assert(sfx_wait_nconns(f, 1, WAIT_MS));
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=cancel", "unknown_key"));
    ck_assert_uint_eq(sfx_log_count(f, "event=cancel_forward "), 0);

    ck_assert_int_eq(sfx_client_query(a, "select 6"), 'Z'); /* the session is untouched */
    sfx_client_close(a, true);
    ck_assert_int_ge(sfx_client_wait_eof(a, WAIT_MS), 0);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    /* an early back leg of the cancel's connection may have been made: it carried nothing */
    for (int i = 0; i < atomic_load(&f->nups); i++) {
        struct sfx_up *u = sfx_up_join(f, i);
        ck_assert_ptr_nonnull(u);
        ck_assert(!u->got_cancel);
    }
    sfx_client_free(a);
    sfx_client_free(k);
    SFX_END(f);
}

START_TEST(test_cancel_unknown_key)
{
    cancel_not_forwarded("jack", false);
}
END_TEST

/* The server's real pid/key, sent to the proxy, cancels nothing: only the
 * proxy's keys are looked up. */
START_TEST(test_cancel_server_key)
{
    cancel_not_forwarded("kate", true);
}
END_TEST

Suite *cancelfwd_suite(void)
{
    Suite *s = suite_create("cancelfwd");
    TCase *tc = sc_tcase("cancelfwd");
    tcase_add_test(tc, test_cancel_in_tls);
    tcase_add_test(tc, test_cancel_unknown_key);
    tcase_add_test(tc, test_cancel_server_key);
    suite_add_tcase(s, tc);
    return s;
}
