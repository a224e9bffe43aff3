/*
 * test_relay.c - unit tests for src/relay.c: a whole session (login, a query
 * echoed, the client's close_notify + FIN reaching the upstream as ours)
 * and the upstream ending the session (its close reaches the client);
 * backpressure: an upstream that sends 4 MB to a client that does not
 * read gets its leg paused with the proxy's backlog toward the client held
 * near RELAY_HIGH_WATER, and every row arrives once the client reads.
 * Through the in-process session fixture (session_fixture.h,
 * session_cases.h); every test ends with SFX_END (uv_loop_close() == 0).
 */
#include <string.h>

#include <sys/socket.h>
#include <stdatomic.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "keymap.h"
#include "leg.h"
#include "relay.h"
#include "worker.h"

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
    /* the client is given the proxy's cancel key, never the server's */
    ck_assert_uint_eq(c->keylen, 4);
    ck_assert(c->pid != SFX_UP_PID || memcmp(c->key, SFX_UP_KEY, 4) != 0);
    ck_assert(keymap_contains(c->pid, c->key, c->keylen));
    ck_assert(!keymap_contains(SFX_UP_PID, (const uint8_t *)SFX_UP_KEY, 4));
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

/* ---- backpressure: a client that does not read ---- */

#define BP_ROWS 512
#define BP_ROW ((size_t)8192) /* 4 MB in all */

static void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static atomic_bool flood_go; /* the test has shrunk the kernel buffers */

static void up_flood(struct sfx_up *u)
{
    if (sfx_up_tls(u) != 0 || sfx_up_first_packet(u) != 0 || sfx_up_login_ok(u) != 0)
        return;
    for (int i = 0; i < 1000 && !atomic_load(&flood_go); i++)
        usleep(5000);
    static uint8_t row[1 + 4 + 2 + 4 + BP_ROW];
    row[0] = 'D';
    put32be(row + 1, (uint32_t)(sizeof(row) - 1));
    row[5] = 0;
    row[6] = 1; /* one column */
    put32be(row + 7, (uint32_t)BP_ROW);
    memset(row + 11, 'x', BP_ROW);
    for (int i = 0; i < BP_ROWS; i++)
        if (SSL_write(u->ssl, row, (int)sizeof(row)) <= 0)
            return; /* the proxy never read on: the test fails on the count */
    static const uint8_t done[] = {'C', 0,   0,   0, 13,  'S', 'E', 'L', 'E', 'C',
                                   'T', ' ', '1', 0, 'Z', 0,   0,   0,   5,   'I'};
    if (SSL_write(u->ssl, done, (int)sizeof(done)) <= 0)
        return;
    sfx_up_serve(u);
}

/* On the loop's thread: small kernel buffers on the proxy's client socket,
 * so that its own backlog (not loopback's megabytes of autotuned socket
 * buffers) takes the flood. */
static void shrink_front(struct sfx *f, void *arg)
{
    (void)arg;
    struct conn *c = f->w->conns;
    uv_os_fd_t fd;
    int small = 32 * 1024;
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(uv_fileno((uv_handle_t *)&c->front.tcp, &fd), 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
}

struct bp_state {
    bool paused;
    size_t front_backlog;
};

static void read_bp(struct sfx *f, void *arg)
{
    struct bp_state *st = arg;
    struct conn *c = f->w->conns;
    st->paused = c != NULL && c->back.paused;
    st->front_backlog = c != NULL ? leg_backlog(&c->front) : 0;
}

START_TEST(test_backpressure)
{
    struct sfx *f = &fx;
    atomic_store(&flood_go, false);
    sfx_start(f, &(struct sfx_opts){.up = {up_flood}});
    struct sfx_client *c = sc_client_started(f, "lena");
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    int small = 32 * 1024;
    ck_assert_int_eq(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    sfx_call(f, shrink_front, NULL);
    atomic_store(&flood_go, true);
    /* the client reads nothing: the proxy must stop reading the upstream */
    struct bp_state st = {0};
    for (int i = 0; i < 500 && !st.paused; i++) {
        usleep(10000);
        sfx_call(f, read_bp, &st);
    }
    ck_assert_msg(st.paused, "the back leg was never paused (front backlog %zu)", st.front_backlog);
    /* held near the high-water mark (one read and its TLS records over it), not 4 MB */
    ck_assert_uint_gt(st.front_backlog, RELAY_HIGH_WATER);
    ck_assert_uint_lt(st.front_backlog, RELAY_HIGH_WATER + 256 * 1024);

    /* now the client reads: every row arrives, then the upstream's ReadyForQuery */
    static uint8_t buf[BP_ROW + 64];
    size_t len;
    int rows = 0, t;
    while ((t = sfx_client_read_msg(c, buf, sizeof(buf), &len)) == 'D') {
        ck_assert_uint_eq(len, 1 + 4 + 2 + 4 + BP_ROW);
        rows++;
    }
    ck_assert_int_eq(rows, BP_ROWS);
    ck_assert_int_eq(t, 'C');
    ck_assert_int_eq(sfx_client_read_msg(c, buf, sizeof(buf), &len), 'Z');
    sfx_call(f, read_bp, &st);
    ck_assert(!st.paused); /* resumed once drained */
    ck_assert_int_eq(sfx_client_query(c, "select 7"), 'Z');
    sfx_client_close(c, true);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
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
    tcase_add_test(tc, test_backpressure);
    suite_add_tcase(s, tc);
    return s;
}
