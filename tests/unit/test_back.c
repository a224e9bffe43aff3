/*
 * test_back.c - unit tests for src/back.c: the upstream leg's set-up after the
 * connect (SSLRequest, 'S'/'N', TLS) and its failure texts: the upstream
 * refuses TLS, or closes in the middle of the handshake; the client reads
 * FATAL 08001 naming the cause and nothing of its own reaches the upstream.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "session_cases.h"
#include "suites.h"

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

START_TEST(test_upstream_refuses_tls)
{
    sc_back_failure(&(struct sfx_opts){.up = {up_refuse_tls}}, "refused TLS", true);
}
END_TEST

START_TEST(test_upstream_closes_midhandshake)
{
    sc_back_failure(&(struct sfx_opts){.up = {up_close_midhandshake}},
                    "closed the connection during TLS set-up", false);
}
END_TEST

Suite *back_suite(void)
{
    Suite *s = suite_create("back");
    TCase *tc = sc_tcase("back");
    tcase_add_test(tc, test_upstream_refuses_tls);
    tcase_add_test(tc, test_upstream_closes_midhandshake);
    suite_add_tcase(s, tc);
    return s;
}
