/*
 * test_login.c - unit tests for src/login.c: the upstream refuses the login (its
 * own ErrorResponse reaches the client whole, outcome=login_failed, no
 * event=established), and a client choosing SCRAM-SHA-256-PLUS (channel
 * binding cannot pass through a TLS-terminating proxy): FATAL 28000 naming
 * it, with nothing of its SASLInitialResponse sent upstream.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>

#include <openssl/ssl.h>

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

/* ---- SCRAM-SHA-256-PLUS chosen by the client: refused by the proxy ---- */

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static const char sasl_mechs[] = "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0"; /* and the final NUL */
static size_t up_bytes_after_sasl;

static void up_offer_plus(struct sfx_up *u)
{
    if (sfx_up_tls(u) != 0 || sfx_up_first_packet(u) != 0)
        return;
    uint8_t m[64];
    size_t body = 4 + sizeof(sasl_mechs); /* sizeof: the two names and the closing NUL */
    m[0] = 'R';
    put32be(m + 1, (uint32_t)(4 + body));
    put32be(m + 5, 10); /* AuthenticationSASL */
    memcpy(m + 9, sasl_mechs, sizeof(sasl_mechs));
    if (SSL_write(u->ssl, m, (int)(1 + 4 + body)) <= 0)
        return;
    /* whatever comes now would be the client's SASLInitialResponse */
    uint8_t buf[512];
    int n;
    while ((n = SSL_read(u->ssl, buf, sizeof(buf))) > 0)
        up_bytes_after_sasl += (size_t)n;
    u->close_notify = SSL_get_shutdown(u->ssl) & SSL_RECEIVED_SHUTDOWN;
}

static const char *const plus_login[] = {"machine=login from=none to=startup",
                                         "machine=login from=startup to=sasl",
                                         "machine=login from=sasl to=sasl_chosen",
                                         "event=closed",
                                         "outcome=channel_binding",
                                         NULL};

START_TEST(test_sasl_plus_refused)
{
    struct sfx *f = &fx;
    up_bytes_after_sasl = 0;
    sfx_start(f, &(struct sfx_opts){.up = {up_offer_plus}});
    struct sfx_client *c = sc_client_started(f, "kim");
    uint8_t buf[512];
    size_t len;
    ck_assert_int_eq(sfx_client_read_msg(c, buf, sizeof(buf), &len), 'R');
    ck_assert_uint_ge(len, 9);
    ck_assert_mem_eq(buf + 9, "SCRAM-SHA-256-PLUS", 18); /* a TLS front is offered -PLUS as is */

    static const char mech[] = "SCRAM-SHA-256-PLUS";
    static const char first[] = "p=tls-server-end-point,,n=,r=unitnonce";
    uint8_t p[128];
    size_t o = 5;
    memcpy(p + o, mech, sizeof(mech));
    o += sizeof(mech);
    put32be(p + o, (uint32_t)(sizeof(first) - 1));
    o += 4;
    memcpy(p + o, first, sizeof(first) - 1);
    o += sizeof(first) - 1;
    p[0] = 'p';
    put32be(p + 1, (uint32_t)(o - 1));
    ck_assert_int_eq(SSL_write(c->ssl, p, (int)o), (int)o);

    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "28000");
    ck_assert_str_eq(c->severity, "FATAL");
    ck_assert_msg(strstr(c->message, "channel binding (SCRAM-SHA-256-PLUS)") != NULL, "message: %s",
                  c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    struct sfx_up *u = sfx_up_join(f, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert_uint_eq(up_bytes_after_sasl, 0); /* nothing of the 'p' went upstream */
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    sc_check_seq(f, id, plus_login, "login");
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
    tcase_add_test(tc, test_sasl_plus_refused);
    suite_add_tcase(s, tc);
    return s;
}
