/*
 * test_admin.c - unit tests for src/admin.c: admin_start's address
 * validation, and the endpoint (/metrics, /healthz, /readyz, errors, idle
 * eviction, stop) over real loopback sockets by a libuv client on the same
 * loop; /metrics is checked with the exposition checker of promcheck.h.
 * Every test that runs a loop ends with uv_loop_close() == 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "admin.h"
#include "metrics.h"
#include "promcheck.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ---- admin_start: address validation ------------------------------------------ */

static const struct {
    const char *addr, *err;
} bad_addrs[] = {
    {"", "--admin-address \"\": empty"},
    {"abc", "--admin-address \"abc\": port \"abc\" is not a number from 1 to 65535"},
    {"0", "port \"0\" is not a number"},
    {"65536", "port \"65536\""},
    {"123456", "port \"123456\""},
    {"-1", "port \"-1\""},
    {"1.2.3.4:", "port \"\" is not"},
    {"1.2.3.4:+80", "port \"+80\""},
    {"1.2.3.4: 80", "port \" 80\""},
    {"1.2.3.4:80x", "port \"80x\""},
    {":9187", "\":9187\": expected host:port, [ipv6]:port or a port"},
    {"::1:9187", "an IPv6 address goes in brackets"},
    {"::1", "an IPv6 address goes in brackets"},
    {"[::1]", "expected [ipv6]:port"},
    {"[::1]9187", "expected [ipv6]:port"},
    {"[::1:9187", "expected [ipv6]:port"},
    {"[]:9187", "not an IPv6 address in brackets"},
    {"[1.2.3.4]:9187", "\"1.2.3.4\" is not an IPv6 address"},
    {"[::1]:0", "port \"0\""},
    {"999.1.1.1:9187", "\"999.1.1.1\" is not a numeric IPv4 address"},
    {"1.2.3:9187", "\"1.2.3\" is not a numeric IPv4 address"},
    {"example.com:9187", "\"example.com\" is not a numeric IPv4 address"},
    {"a\"b:1", "\"a\\\"b:1\": \"a\\\"b\" is not a numeric"},
};

START_TEST(test_admin_bad_address)
{
    uv_loop_t loop;
    char err[256] = "";
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(admin_start(&loop, bad_addrs[_i].addr, 30, err, sizeof(err)), -1);
    ck_assert_msg(strncmp(err, "--admin-address \"", 17) == 0, "%s", err);
    ck_assert_msg(strstr(err, bad_addrs[_i].err) != NULL, "\"%s\": got \"%s\", want \"%s\"",
                  bad_addrs[_i].addr, err, bad_addrs[_i].err);
    /* Refused before any handle exists. */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- admin endpoint over loopback ---------------------------------------------- */

/* A port that was free a moment ago (bind to 0 and ask). */
static int free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    const char *req;
    size_t reqlen;
    bool half_close, written, done;
    size_t rlen;
    char resp[256 * 1024];
};

static void cl_close_cb(uv_handle_t *h)
{
    struct client *cl = h->data;
    cl->done = true;
}

static void cl_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client *cl = h->data;
    (void)suggested;
    *buf = uv_buf_init(cl->resp + cl->rlen, (unsigned)(sizeof(cl->resp) - 1 - cl->rlen));
}

static void cl_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *cl = s->data;
    (void)buf;
    if (nread > 0)
        cl->rlen += (size_t)nread;
    else if (nread < 0 && !uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, cl_close_cb);
}

static void cl_shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void cl_write_cb(uv_write_t *req, int status)
{
    struct client *cl = req->data;
    (void)status;
    cl->written = true;
}

static void cl_connect_cb(uv_connect_t *req, int status)
{
    struct client *cl = req->data;
    ck_assert_msg(status == 0, "connect: %s", uv_strerror(status));
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)cl->req, (unsigned)cl->reqlen);
    cl->wreq.data = cl;
    ck_assert_int_eq(uv_write(&cl->wreq, (uv_stream_t *)&cl->tcp, &b, 1, cl_write_cb), 0);
    /* FIN right behind the request, so the server sees both in one read. */
    if (cl->half_close)
        ck_assert_int_eq(uv_shutdown(&cl->sreq, (uv_stream_t *)&cl->tcp, cl_shutdown_cb), 0);
    ck_assert_int_eq(uv_read_start((uv_stream_t *)&cl->tcp, cl_alloc_cb, cl_read_cb), 0);
}

static void cl_start(uv_loop_t *loop, int port, struct client *cl, const char *req, size_t len)
{
    struct sockaddr_in sin;
    memset(cl, 0, sizeof(*cl));
    cl->req = req;
    cl->reqlen = len;
    uv_ip4_addr("127.0.0.1", port, &sin);
    ck_assert_int_eq(uv_tcp_init(loop, &cl->tcp), 0);
    cl->tcp.data = cl;
    cl->creq.data = cl;
    ck_assert_int_eq(
        uv_tcp_connect(&cl->creq, &cl->tcp, (const struct sockaddr *)&sin, cl_connect_cb), 0);
}

/* Send req, read the whole response (until the server closes). */
static void exchange(uv_loop_t *loop, int port, struct client *cl, const char *req, size_t len)
{
    cl_start(loop, port, cl, req, len);
    while (!cl->done)
        uv_run(loop, UV_RUN_ONCE);
    cl->resp[cl->rlen] = '\0';
}

static struct client g_cl; /* large */

/* Check status line and headers; return the body. */
static const char *check_response(const struct client *c, int status, bool head)
{
    char want[64];
    snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
    ck_assert_msg(strncmp(c->resp, want, strlen(want)) == 0, "want %s, got:\n%s", want, c->resp);
    const char *end = strstr(c->resp, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    const char *body = end + 4;
    ck_assert_ptr_nonnull(strstr(c->resp, "\r\nConnection: close\r\n"));
    const char *cl_hdr = strstr(c->resp, "\r\nContent-Length: ");
    ck_assert(cl_hdr != NULL && cl_hdr < end);
    size_t clen = strtoul(cl_hdr + 18, NULL, 10);
    size_t blen = c->rlen - (size_t)(body - c->resp);
    ck_assert_uint_eq(blen, head ? 0 : clen);
    if (head)
        ck_assert_uint_gt(clen, 0);
    return body;
}

static uv_loop_t g_loop;

static int start_admin(unsigned window)
{
    char err[256], addr[32];
    int port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ck_assert_int_eq(uv_loop_init(&g_loop), 0);
    ck_assert_msg(admin_start(&g_loop, addr, window, err, sizeof(err)) == 0, "%s", err);
    return port;
}

static void stop_admin(void)
{
    admin_stop();
    ck_assert_int_eq(uv_run(&g_loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&g_loop), 0);
}

#define REQ(s) s, sizeof(s) - 1

/*
 * /readyz with routes published (as main.c does at start and on reload):
 * ready only when every route is, one line per route; /readyz/NAME for one;
 * 404 naming the routes for a name that is not running.
 */
static void readyz_per_route(int port)
{
    unsigned good = metrics_route_slot("adm_good"), bad = metrics_route_slot("adm_bad");
    ck_assert_uint_ne(good, METRICS_ROUTE_NONE);
    ck_assert_uint_ne(bad, METRICS_ROUTE_NONE);
    ck_assert_uint_ne(good, bad);
    ck_assert_uint_eq(metrics_route_slot("adm_good"), good); /* the same slot again */
    metrics_upstream_connected(good, 2.0);
    metrics_upstream_failed(bad, "pg-tls-proxy: upstream 127.0.0.1:1 certificate\nname wrong");
    unsigned both[] = {good, bad};
    metrics_routes_current(both, 2);

    exchange(&g_loop, port, &g_cl, REQ("GET /readyz HTTP/1.1\r\n\r\n"));
    const char *b = check_response(&g_cl, 503, false);
    const char *want = "not ready: 1 of 2 route(s) without a verified upstream TLS handshake "
                       "in the last 30 s\nroute adm_good: ok, verified upstream TLS handshake ";
    ck_assert_msg(strncmp(b, want, strlen(want)) == 0, "%s", b);
    /* The failure, on one line, without the "pg-tls-proxy: " prefix. */
    ck_assert_msg(strstr(b, "\nroute adm_bad: not ready: no verified upstream TLS handshake in "
                            "the last 30 s; last failure 0 s ago: upstream 127.0.0.1:1 "
                            "certificate?name wrong\n") != NULL,
                  "%s", b);
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz/adm_good HTTP/1.1\r\n\r\n"));
    b = check_response(&g_cl, 200, false);
    ck_assert_msg(strncmp(b, "ready\nroute adm_good: ok, ", 26) == 0, "%s", b);
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz/adm_bad?x=1 HTTP/1.1\r\n\r\n"));
    b = check_response(&g_cl, 503, false);
    ck_assert_msg(strncmp(b, "not ready\nroute adm_bad: not ready: ", 36) == 0, "%s", b);
    exchange(&g_loop, port, &g_cl, REQ("HEAD /readyz/adm_bad HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 503, true);
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz/adm_gone HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 404, false),
                     "no route \"adm_gone\" in the running configuration; the routes are: "
                     "adm_good, adm_bad\n");
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz/a%20b HTTP/1.1\r\n\r\n"));
    ck_assert_ptr_nonnull(strstr(check_response(&g_cl, 404, false), "no route \"?\""));
    exchange(&g_loop, port, &g_cl, REQ("POST /readyz/adm_good HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 405, false);

    /* A reload that drops the bad route: ready again. */
    metrics_routes_current(&good, 1);
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz HTTP/1.1\r\n\r\n"));
    b = check_response(&g_cl, 200, false);
    ck_assert_msg(strncmp(b, "ready\nroute adm_good: ok", 24) == 0, "%s", b);
    ck_assert_ptr_null(strstr(b, "adm_bad"));
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz/adm_bad HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);
    metrics_routes_current(NULL, 0); /* as before, for the tests that follow */
}

START_TEST(test_admin_endpoints)
{
    int port = start_admin(30);
    const char *body;

    exchange(&g_loop, port, &g_cl, REQ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    body = check_response(&g_cl, 200, false);
    ck_assert_ptr_nonnull(
        strstr(g_cl.resp, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    expo_assert_valid(body);

    exchange(&g_loop, port, &g_cl, REQ("HEAD /metrics HTTP/1.0\r\n\r\n"));
    check_response(&g_cl, 200, true);

    admin_set_listening(true);
    exchange(&g_loop, port, &g_cl, REQ("GET /healthz HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 200, false), "ok\n");
    admin_set_listening(false);
    exchange(&g_loop, port, &g_cl, REQ("GET /healthz HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 503, false);
    exchange(&g_loop, port, &g_cl, REQ("HEAD /healthz HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 503, true);

    if (metrics_last_upstream_ok() == 0) {
        exchange(&g_loop, port, &g_cl, REQ("GET /readyz HTTP/1.1\r\n\r\n"));
        ck_assert_str_eq(check_response(&g_cl, 503, false),
                         "not ready: no upstream TLS handshake in the last 30 s\n");
    }
    metrics_upstream_connected(METRICS_ROUTE_NONE, 3.5);
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 200, false), "ready\n");
    readyz_per_route(port);

    exchange(&g_loop, port, &g_cl, REQ("POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"));
    check_response(&g_cl, 405, false);
    ck_assert_ptr_nonnull(strstr(g_cl.resp, "\r\nAllow: GET, HEAD\r\n"));
    exchange(&g_loop, port, &g_cl, REQ("get /metrics HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 405, false);

    exchange(&g_loop, port, &g_cl, REQ("GET /nope HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);
    /* A query string selects nothing: the path alone decides. */
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz?probe=kubelet HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 200, false), "ready\n");
    exchange(&g_loop, port, &g_cl, REQ("GET /nope?x=1 HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);
    exchange(&g_loop, port, &g_cl, REQ("GET /metrics/ HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);
    exchange(&g_loop, port, &g_cl, REQ("DELETE /x HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);

    exchange(&g_loop, port, &g_cl, REQ("GET /metrics HTTP/1.1\n\n"));
    check_response(&g_cl, 400, false);
    exchange(&g_loop, port, &g_cl, REQ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"));
    check_response(&g_cl, 400, false);
    exchange(&g_loop, port, &g_cl, REQ("GET /metrics HTTP/2.0\r\n\r\n"));
    check_response(&g_cl, 400, false);

    /* A head that has not ended within 4096 bytes: 431, and the response
     * arrives intact although the client is still sending (lingering close). */
    static char big[20000];
    int off = snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\n");
    while (off < 19000)
        off += snprintf(big + off, sizeof(big) - (size_t)off, "X-Pad: %060d\r\n", off);
    exchange(&g_loop, port, &g_cl, big, (size_t)off);
    check_response(&g_cl, 431, false);
    off += snprintf(big + off, sizeof(big) - (size_t)off, "\r\n");
    exchange(&g_loop, port, &g_cl, big, (size_t)off);
    check_response(&g_cl, 431, false);
    /* ... while 4095 bytes that end the head are fine. */
    off = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nX-Pad: ");
    memset(big + off, 'a', 4095 - 4 - (size_t)off);
    memcpy(big + 4095 - 4, "\r\n\r\n", 5);
    exchange(&g_loop, port, &g_cl, big, 4095);
    check_response(&g_cl, 503, false);

    /* A client that half-closes after its request (nc -N) gets the whole
     * response and the connection ends at once, not after the linger time. */
    uint64_t t0 = uv_hrtime();
    cl_start(&g_loop, port, &g_cl, REQ("GET /metrics HTTP/1.0\r\n\r\n"));
    g_cl.half_close = true;
    while (!g_cl.done)
        uv_run(&g_loop, UV_RUN_ONCE);
    g_cl.resp[g_cl.rlen] = '\0';
    expo_assert_valid(check_response(&g_cl, 200, false));
    ck_assert_uint_lt(uv_hrtime() - t0, 1000000000ull);

    /* A client that gives up half-way: closed without a response. */
    cl_start(&g_loop, port, &g_cl, REQ("GET /metr"));
    g_cl.half_close = true;
    while (!g_cl.done)
        uv_run(&g_loop, UV_RUN_ONCE);
    ck_assert_uint_eq(g_cl.rlen, 0);

    stop_admin();
}
END_TEST

static void tick_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* admin_stop closes connections that are mid-request, so the loop ends now
 * rather than after the 10 s timeout (the test would time out first). */
START_TEST(test_admin_stop_closes_idle)
{
    int port = start_admin(30);
    static struct client c1, c2;
    cl_start(&g_loop, port, &c1, REQ("GET /metr"));
    cl_start(&g_loop, port, &c2, REQ("G"));
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&g_loop, &t);
    t.data = &fired;
    uv_timer_start(&t, tick_cb, 200, 0);
    while (!fired)
        uv_run(&g_loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    ck_assert(c1.written && c2.written && !c1.done && !c2.done);

    uint64_t t0 = uv_hrtime();
    admin_stop();
    /* The server's close reaches the clients as EOF; they close. */
    ck_assert_int_eq(uv_run(&g_loop, UV_RUN_DEFAULT), 0);
    ck_assert(c1.done && c2.done);
    ck_assert_uint_eq(c1.rlen + c2.rlen, 0);
    ck_assert_uint_lt(uv_hrtime() - t0, 1000000000ull);
    ck_assert_int_eq(uv_loop_close(&g_loop), 0);
}
END_TEST

static void closed_cb(uv_handle_t *h)
{
    *(bool *)h->data = false;
}

/* Run the loop for ms milliseconds. */
static void run_for(uint64_t ms)
{
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&g_loop, &t);
    t.data = &fired;
    uv_timer_start(&t, tick_cb, ms, 0);
    while (!fired)
        uv_run(&g_loop, UV_RUN_ONCE);
    t.data = &fired;
    uv_close((uv_handle_t *)&t, closed_cb);
    while (fired) /* t lives on this stack: until its close callback */
        uv_run(&g_loop, UV_RUN_ONCE);
}

/* A full table of clients that never finish their request does not starve
 * a probe (issue 11): the oldest of them makes room, the others stay. */
START_TEST(test_admin_full_evicts_oldest_idle)
{
    enum { N = 64 };
    int port = start_admin(30);
    struct client *idle = calloc(N, sizeof(*idle));
    ck_assert_ptr_nonnull(idle);
    cl_start(&g_loop, port, &idle[0], REQ("GET /heal"));
    run_for(50);
    for (int i = 1; i < N; i++)
        cl_start(&g_loop, port, &idle[i], REQ("G"));
    /* Until all 64 are connected and written (a loaded machine takes its
     * time), well inside the endpoint's 2 s head deadline. */
    for (int waited = 0, all = 0; !all && waited < 1500; waited += 50) {
        run_for(50);
        all = 1;
        for (int i = 0; i < N; i++)
            all = all && idle[i].written;
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(idle[i].written && !idle[i].done, "idle client %d", i);

    admin_set_listening(true);
    exchange(&g_loop, port, &g_cl, REQ("GET /healthz HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 200, false), "ok\n");
    run_for(50);
    ck_assert(idle[0].done && idle[0].rlen == 0); /* evicted, unanswered */
    for (int i = 1; i < N; i++)
        ck_assert_msg(!idle[i].done, "idle client %d closed too", i);

    admin_stop();
    ck_assert_int_eq(uv_run(&g_loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&g_loop), 0);
    free(idle);
}
END_TEST

START_TEST(test_admin_start_errors)
{
    char err[256], addr[32];
    int port = start_admin(30);

    /* Only one admin endpoint. */
    ck_assert_int_eq(admin_start(&g_loop, "127.0.0.1:1", 30, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "--admin-address: the admin endpoint is already running");

    /* Address in use: the error names the option and the reason. */
    uv_loop_t l2;
    ck_assert_int_eq(uv_loop_init(&l2), 0);
    admin_stop();
    ck_assert_int_eq(uv_run(&g_loop, UV_RUN_DEFAULT), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", port, &sin);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ck_assert_int_eq(admin_start(&l2, addr, 30, err, sizeof(err)), -1);
    char want[128];
    snprintf(want, sizeof(want), "--admin-address \"%s\": cannot listen: Address already in use",
             addr);
    ck_assert_str_eq(err, want);
    close(fd);
    ck_assert_int_eq(uv_loop_close(&l2), 0);

    /* And it starts again after a stop, on another loop. */
    ck_assert_int_eq(uv_loop_close(&g_loop), 0);
    port = start_admin(30);
    exchange(&g_loop, port, &g_cl, REQ("GET /healthz HTTP/1.1\r\n\r\n"));
    ck_assert_int_eq(strncmp(g_cl.resp, "HTTP/1.1 ", 9), 0);
    stop_admin();
}
END_TEST

Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *a = tcase_create("admin");
    tcase_set_timeout(a, 10);
    tcase_add_loop_test(a, test_admin_bad_address, 0, NELEM(bad_addrs));
    tcase_add_test(a, test_admin_endpoints);
    tcase_add_test(a, test_admin_stop_closes_idle);
    tcase_add_test(a, test_admin_full_evicts_oldest_idle);
    tcase_add_test(a, test_admin_start_errors);
    suite_add_tcase(s, a);
    return s;
}
