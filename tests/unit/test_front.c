/*
 * test_front.c - unit tests for src/front.c: the start-up timeout of a silent
 * client (closed without linger), and the first packet.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "session_cases.h"
#include "suites.h"

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
    sc_check_seq(f, id, silent_front, "front");
    ck_assert_uint_eq(sfx_log_count(f, "event=error"), 0);
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

Suite *front_suite(void)
{
    Suite *s = suite_create("front");
    TCase *tc = sc_tcase("front");
    tcase_add_test(tc, test_silent_client_no_linger);
    suite_add_tcase(s, tc);
    return s;
}
