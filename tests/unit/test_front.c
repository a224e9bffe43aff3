/*
 * test_front.c - unit tests for src/front.c: the start-up timeout of a silent
 * client (closed without linger), and the first packet: a GSSENCRequest
 * is answered 'N' and the client may go on with an SSLRequest; a
 * plaintext StartupMessage gets FATAL 28000 (TLS is required) in
 * plaintext; bytes pipelined behind an SSLRequest before the TLS
 * handshake (CVE-2021-23214) end the connection without an 'S'.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include "pgproto.h"

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

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- GSSENCRequest: 'N', then the client's SSLRequest goes on as usual ---- */

START_TEST(test_gssenc_then_ssl)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){0});
    struct sfx_client *c = sfx_client_connect(f);
    ck_assert_ptr_nonnull(c);
    uint8_t req[8];
    put32be(req, 8);
    put32be(req + 4, PG_GSSENCREQUEST_CODE);
    ck_assert_int_eq(sfx_client_send_raw(c, req, sizeof(req)), 0);
    uint8_t reply = 0;
    ck_assert_int_eq(recv(c->fd, &reply, 1, MSG_WAITALL), 1);
    ck_assert_int_eq(reply, 'N');
    ck_assert_int_eq(sfx_client_tls(c), 0);
    ck_assert_int_eq(sfx_client_startup(c, "hana", "db"), 0);
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    ck_assert_int_eq(sfx_client_query(c, "select 5"), 'Z');
    sfx_client_close(c, true);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "user=\"hana\"", "outcome=closed"));
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* ---- a plaintext StartupMessage: FATAL 28000 in plaintext, nothing upstream ---- */

START_TEST(test_plaintext_startup_refused)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){0});
    struct sfx_client *c = sfx_client_connect(f);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(sfx_client_startup(c, "ivan", "db"), 0); /* no TLS: c->ssl is NULL */
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "28000");
    ck_assert_str_eq(c->severity, "FATAL");
    ck_assert_msg(strstr(c->message, "TLS is required") != NULL, "message: %s", c->message);
    ck_assert_msg(strstr(c->message, "sslmode=verify-full") != NULL, "message: %s", c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, false);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=refused"));
    ck_assert_uint_eq(sfx_log_count(f, "event=login_started"), 0);
    /* an early back leg may have been dialled; it never carried a StartupMessage */
    for (int i = 0; i < atomic_load(&f->nups); i++) {
        struct sfx_up *u = sfx_up_join(f, i);
        ck_assert_ptr_nonnull(u);
        ck_assert(!u->got_startup);
    }
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* ---- bytes behind the SSLRequest before TLS: refused before any 'S' ---- */

START_TEST(test_bytes_after_sslrequest_refused)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){0});
    struct sfx_client *c = sfx_client_connect(f);
    ck_assert_ptr_nonnull(c);
    uint8_t req[8 + 11];
    put32be(req, 8);
    put32be(req + 4, PG_SSLREQUEST_CODE);
    memcpy(req + 8, "Q\0\0\0\x0bselect", 11); /* a would-be injected query */
    ck_assert_int_eq(sfx_client_send_raw(c, req, sizeof(req)), 0);
    /* no 'S', no plaintext error: only the end of the connection */
    uint8_t b;
    ck_assert_int_le(recv(c->fd, &b, 1, 0), 0);
    sfx_client_close(c, false);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=refused", "CVE-2021-23214"));
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", "outcome=refused"));
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

Suite *front_suite(void)
{
    Suite *s = suite_create("front");
    TCase *tc = sc_tcase("front");
    tcase_add_test(tc, test_silent_client_no_linger);
    tcase_add_test(tc, test_gssenc_then_ssl);
    tcase_add_test(tc, test_plaintext_startup_refused);
    tcase_add_test(tc, test_bytes_after_sslrequest_refused);
    suite_add_tcase(s, tc);
    return s;
}
