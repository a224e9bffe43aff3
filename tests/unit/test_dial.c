/*
 * test_dial.c - unit tests for src/dial.c: the upstream cannot be reached
 * (nobody listens: FATAL 08001 "is unreachable", no upstream connection),
 * and --client-connect-timeout when the upstream accepts and stays silent.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "session_cases.h"
#include "suites.h"

/* CONNECT fails: nobody listens on the upstream's port */
START_TEST(test_upstream_unreachable)
{
    sc_back_failure(&(struct sfx_opts){.no_upstream = true}, "is unreachable", false);
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
    sc_back_failure(&(struct sfx_opts){.connect_timeout_ms = 300, .up = {up_silent}},
                    "waiting for its answer to SSLRequest", true);
}
END_TEST

Suite *dial_suite(void)
{
    Suite *s = suite_create("dial");
    TCase *tc = sc_tcase("dial");
    tcase_add_test(tc, test_upstream_unreachable);
    tcase_add_test(tc, test_upstream_silent_connect_timeout);
    suite_add_tcase(s, tc);
    return s;
}
