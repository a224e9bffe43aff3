/*
 * test_adminsess.c - unit tests for the admin endpoint's /sessions paths:
 * JSON escaping and rendering (sessjson.c), the path and method routing
 * (adminsess_route), who may ask (adminauth_decide with loopback and other
 * addresses, IPv4 and IPv6, with and without a token), the token file
 * (adminauth_load), the Authorization header (httpreq_header), where a
 * FATAL may go in the server's stream (pgtrack_server_boundary), and the
 * workers' request queue (sessions_post, sessions_worker_run/close).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adminauth.h"
#include "adminsess.h"
#include "httpreq.h"
#include "pgtrack.h"
#include "sessions.h"
#include "sessjson.h"
#include "suites.h"
#include "worker.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ---- JSON ---- */

static const struct {
    const char *in, *want;
} esc_cases[] = {
    {"app", "\"app\""},
    {"", "\"\""},
    {"a\"b\\c", "\"a\\\"b\\\\c\""},
    {"line\nfeed\ttab\r", "\"line\\u000afeed\\u0009tab\\u000d\""},
    {"\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\""},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x98\""},
    {"bad\xff", "\"bad\\ufffd\""},                       /* never valid */
    {"cut\xc3", "\"cut\\ufffd\""},                       /* truncated sequence */
    {"over\xc0\xaf", "\"over\\ufffd\\ufffd\""},          /* overlong '/' */
    {"sur\xed\xa0\x80", "\"sur\\ufffd\\ufffd\\ufffd\""}, /* a UTF-16 surrogate */
    {"</script>", "\"</script>\""},
};

START_TEST(test_json_escape)
{
    struct jbuf j = {.ok = true};
    sessjson_string(&j, esc_cases[_i].in);
    ck_assert(j.ok);
    ck_assert_str_eq(j.b, esc_cases[_i].want);
    free(j.b);
}
END_TEST

static struct sess_req *req_with(enum sess_op op, size_t n)
{
    struct sess_req *req = sessions_req_new(op, 0, 1, NULL);
    ck_assert_ptr_nonnull(req);
    req->items = calloc(n, sizeof(*req->items));
    req->n = req->cap = req->open = n;
    return req;
}

static void fill(struct sess_info *s, uint64_t id, const char *user)
{
    s->id = id;
    s->worker = 1;
    snprintf(s->client, sizeof(s->client), "127.0.0.1:5000");
    snprintf(s->route, sizeof(s->route), "default");
    snprintf(s->user, sizeof(s->user), "%s", user);
    snprintf(s->database, sizeof(s->database), "app");
    snprintf(s->front_tls, sizeof(s->front_tls), "TLSv1.3");
    snprintf(s->front_cipher, sizeof(s->front_cipher), "TLS_AES_256_GCM_SHA384");
    s->from_client = 10;
    s->from_upstream = 20;
    s->age_ms = 2500;
    s->idle_ms = 999;
    s->state = "idle";
}

START_TEST(test_json_render_list)
{
    struct sess_req *req = req_with(SESS_LIST, 2);
    fill(&req->items[0], 9, "b\"ob");
    fill(&req->items[1], 3, "al\x01");
    req->items[1].bridge_stream = 7;
    snprintf(req->items[1].bridge, sizeof(req->items[1].bridge), "dc1");
    snprintf(req->items[1].lb, sizeof(req->items[1].lb), "10.0.0.9:1234");
    req->open = 3; /* one open session was not copied (over SESS_LIST_MAX) */
    size_t len = 0;
    char *b = sessjson_render(req, true, SESS_BODY_MAX, &len);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(len, strlen(b));
    const char *item3 =
        "{\"id\":3,\"worker\":1,\"client\":\"127.0.0.1:5000\",\"load_balancer\":\"10.0.0.9:1234\","
        "\"route\":\"default\",\"user\":\"al\\u0001\",\"database\":\"app\",\"application_name\":"
        "\"\",\"front_tls_version\":\"TLSv1.3\",\"front_tls_cipher\":\"TLS_AES_256_GCM_SHA384\","
        "\"back_tls_version\":null,\"bytes_from_client\":10,\"bytes_from_upstream\":20,"
        "\"age_s\":2,\"idle_s\":0,\"state\":\"idle\",\"bridge\":\"dc1\",\"bridge_stream\":7}";
    char want[2048];
    snprintf(want, sizeof(want), "{\"sessions\":[%s,{\"id\":9,", item3);
    ck_assert_msg(strncmp(b, want, strlen(want)) == 0, "got %s", b); /* sorted by id */
    ck_assert_ptr_nonnull(strstr(b, "\"user\":\"b\\\"ob\""));
    ck_assert_ptr_nonnull(strstr(b, "\"load_balancer\":null,"));
    ck_assert_ptr_nonnull(
        strstr(b, "],\"count\":3,\"listed\":2,\"truncated\":true,\"draining\":false}\n"));
    free(b);
    sessions_req_free(req);
}
END_TEST

START_TEST(test_json_render_bounded)
{
    struct sess_req *req = req_with(SESS_LIST, 3);
    for (int i = 0; i < 3; i++)
        fill(&req->items[i], (uint64_t)i + 1, "u");
    size_t len = 0;
    /* Room for about one item: the others are left out, and it says so. */
    char *b = sessjson_render(req, true, 450, &len);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(strstr(b, "\"count\":3,\"listed\":1,\"truncated\":true"));
    ck_assert_ptr_null(strstr(b, "\"id\":2"));
    free(b);
    b = sessjson_render(req, true, SESS_BODY_MAX, &len);
    ck_assert_ptr_nonnull(strstr(b, "\"count\":3,\"listed\":3,\"truncated\":false"));
    free(b);
    /* One session: the object itself. */
    b = sessjson_render(req, false, SESS_BODY_MAX, &len);
    ck_assert_msg(strncmp(b, "{\"id\":1,", 8) == 0 && b[len - 2] == '}' && b[len - 1] == '\n',
                  "got %s", b);
    free(b);
    sessions_req_free(req);
}
END_TEST

START_TEST(test_json_render_empty)
{
    /* No session anywhere: no items array at all (qsort must not see NULL). */
    struct sess_req *req = sessions_req_new(SESS_LIST, 0, 1, NULL);
    size_t len = 0;
    char *b = sessjson_render(req, true, SESS_BODY_MAX, &len);
    ck_assert_str_eq(b, "{\"sessions\":[],\"count\":0,\"listed\":0,\"truncated\":false,"
                        "\"draining\":false}\n");
    free(b);
    sessions_req_free(req);
}
END_TEST

/* ---- routing ---- */

static const struct {
    const char *method, *path;
    int want;
    enum sess_op op;
    uint64_t id;
    const char *allow;
} route_cases[] = {
    {"GET", "/sessions", 0, SESS_LIST, 0, NULL},
    {"HEAD", "/sessions", 0, SESS_LIST, 0, NULL},
    {"POST", "/sessions", 405, SESS_LIST, 0, "GET, HEAD"},
    {"DELETE", "/sessions", 405, SESS_LIST, 0, "GET, HEAD"},
    {"GET", "/sessions/42", 0, SESS_ONE, 42, NULL},
    {"DELETE", "/sessions/42", 405, SESS_ONE, 42, "GET, HEAD"},
    {"POST", "/sessions/42/terminate", 0, SESS_KILL, 42, NULL},
    {"GET", "/sessions/42/terminate", 405, SESS_KILL, 42, "POST"},
    {"HEAD", "/sessions/42/terminate", 405, SESS_KILL, 42, "POST"},
    {"GET", "/sessions/18446744073709551615", 0, SESS_ONE, UINT64_MAX, NULL},
    {"GET", "/sessions/18446744073709551616", 404, SESS_LIST, 0, NULL}, /* overflows */
    {"GET", "/sessions/0", 404, SESS_LIST, 0, NULL},
    {"GET", "/sessions/042", 404, SESS_LIST, 0, NULL},
    {"GET", "/sessions/-1", 404, SESS_LIST, 0, NULL},
    {"GET", "/sessions/+1", 404, SESS_LIST, 0, NULL},
    {"GET", "/sessions/1x", 404, SESS_LIST, 0, NULL},
    {"GET", "/sessions/", 404, SESS_LIST, 0, NULL},
    {"GET", "/sessions//terminate", 404, SESS_LIST, 0, NULL},
    {"POST", "/sessions/1/terminate/", 404, SESS_LIST, 0, NULL},
    {"POST", "/sessions/1/kill", 404, SESS_LIST, 0, NULL},
    {"GET", "/sessionsx", 404, SESS_LIST, 0, NULL},
};

START_TEST(test_route)
{
    enum sess_op op = SESS_LIST;
    uint64_t id = 99;
    const char *allow = NULL;
    int r = adminsess_route(route_cases[_i].method, route_cases[_i].path, &op, &id, &allow);
    ck_assert_msg(r == route_cases[_i].want, "%s %s: %d", route_cases[_i].method,
                  route_cases[_i].path, r);
    if (r != 404) {
        ck_assert_int_eq(op, route_cases[_i].op);
        ck_assert(id == route_cases[_i].id);
    }
    if (r == 405)
        ck_assert_str_eq(allow, route_cases[_i].allow);
}
END_TEST

START_TEST(test_paths)
{
    ck_assert(adminsess_path("/sessions"));
    ck_assert(adminsess_path("/sessions/1/terminate"));
    ck_assert(!adminsess_path("/sessionsx"));
    ck_assert(!adminsess_path("/metrics"));
    ck_assert(!adminsess_path("/session"));
}
END_TEST

/* ---- who may ask ---- */

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    }
    return ss;
}

static const struct {
    const char *ip;
    bool loopback;
} peer_cases[] = {
    {"127.0.0.1", true},        {"127.255.0.9", true}, {"::1", true},
    {"::ffff:127.0.0.1", true}, {"10.0.0.1", false},   {"192.168.1.20", false},
    {"128.0.0.1", false},       {"0.0.0.0", false},    {"::ffff:10.0.0.1", false},
    {"2001:db8::1", false},     {"::", false},         {"::2", false},
};

START_TEST(test_decide_no_token)
{
    struct sockaddr_storage ss = addr(peer_cases[_i].ip);
    struct admin_token none = {.set = false};
    int want = peer_cases[_i].loopback ? 200 : 403;
    ck_assert_int_eq(adminauth_is_loopback((struct sockaddr *)&ss), peer_cases[_i].loopback);
    ck_assert_int_eq(adminauth_decide((struct sockaddr *)&ss, &none, NULL), want);
    /* A header changes nothing without a configured token. */
    ck_assert_int_eq(adminauth_decide((struct sockaddr *)&ss, &none, "Bearer x"), want);
    ck_assert_int_eq(adminauth_decide((struct sockaddr *)&ss, NULL, NULL), want);
}
END_TEST

static char tmpdir[64];

static void write_file(const char *name, const char *content, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
}

static void setup_tmp(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/pgtp-adminsess-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

#define TOKEN "0123456789abcdef0123456789abcdef"

START_TEST(test_decide_token)
{
    char path[256], err[512];
    struct admin_token t = {.set = false};
    write_file("token", TOKEN "\n", path, sizeof(path));
    ck_assert_int_eq(adminauth_load(path, &t, err, sizeof(err)), 0);
    ck_assert(t.set);
    const char *ips[] = {"127.0.0.1", "::1", "10.0.0.1", "2001:db8::1"};
    for (int i = 0; i < NELEM(ips); i++) {
        struct sockaddr_storage ss = addr(ips[i]);
        const struct sockaddr *sa = (struct sockaddr *)&ss;
        /* Loopback too: a configured token is asked of every peer. */
        ck_assert_int_eq(adminauth_decide(sa, &t, NULL), 401);
        ck_assert_int_eq(adminauth_decide(sa, &t, "Bearer " TOKEN), 200);
        ck_assert_int_eq(adminauth_decide(sa, &t, "bearer   " TOKEN), 200);
        ck_assert_int_eq(adminauth_decide(sa, &t, "Bearer " TOKEN "x"), 401);
        ck_assert_int_eq(adminauth_decide(sa, &t, "Bearer 0123456789abcdef0123456789abcdeF"), 401);
        ck_assert_int_eq(adminauth_decide(sa, &t, "Bearer "), 401);
        ck_assert_int_eq(adminauth_decide(sa, &t, TOKEN), 401);
        ck_assert_int_eq(adminauth_decide(sa, &t, "Basic " TOKEN), 401);
    }
    ck_assert_int_eq(adminauth_decide(NULL, &t, "Bearer " TOKEN), 200);
    ck_assert_int_eq(adminauth_decide(NULL, NULL, NULL), 403);
}
END_TEST

START_TEST(test_token_file)
{
    char path[256], err[512];
    struct admin_token t = {.set = false}, before;
    write_file("ok16", "0123456789abcdef", path, sizeof(path)); /* exactly 16, no newline */
    ck_assert_int_eq(adminauth_load(path, &t, err, sizeof(err)), 0);
    before = t;
    struct {
        const char *name, *content, *want;
    } bad[] = {
        {"short", "0123456789abcde\n", "15 bytes, shorter than 16"},
        {"empty", "\n\n", "0 bytes"},
        {"space", "0123456789 abcdef0123\n", "visible ASCII"},
        {"two-lines", "0123456789abcdef\n0123456789abcdef\n", "visible ASCII"},
        {"ctl", "0123456789abcdef\x01xyz\n", "visible ASCII"},
    };
    for (int i = 0; i < NELEM(bad); i++) {
        write_file(bad[i].name, bad[i].content, path, sizeof(path));
        ck_assert_int_eq(adminauth_load(path, &t, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "%s: %s", bad[i].name, err);
        ck_assert_msg(strstr(err, "0123456789") == NULL, "the token leaked: %s", err);
        /* A failed load keeps the token in use (a reload of a bad file). */
        ck_assert(t.set && memcmp(t.digest, before.digest, sizeof(t.digest)) == 0);
    }
    char big[ADMIN_TOKEN_MAX + 8];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file("big", big, path, sizeof(path));
    ck_assert_int_eq(adminauth_load(path, &t, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "longer than 1024"));
    big[ADMIN_TOKEN_MAX] = '\0'; /* exactly the most */
    write_file("max", big, path, sizeof(path));
    ck_assert_int_eq(adminauth_load(path, &t, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/none", tmpdir);
    ck_assert_int_eq(adminauth_load(path, &t, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "cannot read"));
}
END_TEST

/* ---- the Authorization header ---- */

START_TEST(test_header)
{
    char v[64];
    const char *h = "GET /sessions HTTP/1.1\r\nHost: x\r\nauthorization:   Bearer abc \t\r\n"
                    "X-A: 1\r\n\r\nAuthorization: body\r\n";
    ck_assert_int_eq(httpreq_header(h, strlen(h), "Authorization", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "Bearer abc");
    ck_assert_int_eq(httpreq_header(h, strlen(h), "x-a", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "1");
    ck_assert_int_eq(httpreq_header(h, strlen(h), "X-None", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "");
    const char *twice =
        "GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n";
    ck_assert_int_eq(httpreq_header(twice, strlen(twice), "authorization", v, sizeof(v)), -1);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(httpreq_header(h, strlen(h), "Authorization", v, 8), -1); /* too long */
    const char *empty = "GET / HTTP/1.1\r\nAuthorization:\r\n\r\n";
    ck_assert_int_eq(httpreq_header(empty, strlen(empty), "Authorization", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "");
}
END_TEST

/* ---- where a FATAL may go ---- */

START_TEST(test_boundary)
{
    struct pgtrack t = {0};
    /* 'Z' len 5 'I', then 'D' len 10 (6 body bytes). */
    const uint8_t z[] = {'Z', 0, 0, 0, 5, 'I'};
    const uint8_t d[] = {'D', 0, 0, 0, 10, 1, 2, 3, 4, 5, 6};
    ck_assert_uint_eq(pgtrack_server_boundary(&t, d, sizeof(d)), 0); /* at one already */
    ck_assert_int_eq(pgtrack_server(&t, z, sizeof(z)), 0);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, d, sizeof(d)), 0);
    /* Part-way through the body: its end. */
    ck_assert_int_eq(pgtrack_server(&t, d, 7), 0);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, d + 7, 4), 4);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, d + 7, 3), SIZE_MAX);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, d + 7, 10), 4);
    ck_assert_int_eq(pgtrack_server(&t, d + 7, 4), 0);
    /* Part-way through a header: complete it, then the body. */
    ck_assert_int_eq(pgtrack_server(&t, d, 2), 0);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, d + 2, 9), 9);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, d + 2, 2), SIZE_MAX);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, d + 2, 8), SIZE_MAX);
    ck_assert_int_eq(pgtrack_server(&t, d + 2, 9), 0);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, z, 0), 0);
    /* A length below 4 cannot be framed: never a place for a FATAL. */
    const uint8_t badlen[] = {0, 0, 3};
    ck_assert_int_eq(pgtrack_server(&t, (const uint8_t *)"E\0", 2), 0);
    ck_assert_uint_eq(pgtrack_server_boundary(&t, badlen, 3), SIZE_MAX);
    struct pgtrack failed = {.failed = true};
    ck_assert_uint_eq(pgtrack_server_boundary(&failed, z, sizeof(z)), SIZE_MAX);
}
END_TEST

/* ---- the workers' queue ---- */

static int done_calls;
static void count_done(struct sess_req *req)
{
    (void)req;
    done_calls++;
}

static void ctl_cb(uv_async_t *a)
{
    sessions_worker_run(a->data);
}

START_TEST(test_queue)
{
    static struct worker w[2];
    uv_loop_t loop;
    memset(w, 0, sizeof(w));
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    for (int i = 0; i < 2; i++) {
        w[i].loop = &loop;
        w[i].index = (unsigned)i;
        w[i].sess_tail = &w[i].sess_jobs;
        ck_assert_int_eq(uv_mutex_init(&w[i].sess_lock), 0);
        ck_assert_int_eq(uv_async_init(&loop, &w[i].ctl, ctl_cb), 0);
        w[i].ctl.data = &w[i];
    }
    /* Both running: each answers on its loop; done once, after the last. */
    done_calls = 0;
    struct sess_req *req = sessions_req_new(SESS_LIST, 0, 2, count_done);
    sessions_post(w, 2, req);
    ck_assert_int_eq(done_calls, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(done_calls, 1);
    ck_assert_uint_eq(req->open, 0);
    sessions_req_free(req);
    /* One queued, then the worker stops: close answers it. */
    done_calls = 0;
    req = sessions_req_new(SESS_KILL, 5, 2, count_done);
    sessions_post(w, 2, req);
    sessions_worker_close(&w[0]);
    sessions_worker_close(&w[1]);
    ck_assert_int_eq(done_calls, 1);
    ck_assert(!req->found);
    sessions_req_free(req);
    /* Stopped workers answer a post at once. */
    done_calls = 0;
    req = sessions_req_new(SESS_ONE, 5, 2, count_done);
    sessions_post(w, 2, req);
    ck_assert_int_eq(done_calls, 1);
    sessions_req_free(req);
    for (int i = 0; i < 2; i++) {
        uv_close((uv_handle_t *)&w[i].ctl, NULL);
        uv_mutex_destroy(&w[i].sess_lock);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

Suite *adminsess_suite(void)
{
    Suite *s = suite_create("adminsess");
    TCase *tc = tcase_create("json");
    tcase_add_loop_test(tc, test_json_escape, 0, NELEM(esc_cases));
    tcase_add_test(tc, test_json_render_list);
    tcase_add_test(tc, test_json_render_bounded);
    tcase_add_test(tc, test_json_render_empty);
    suite_add_tcase(s, tc);
    tc = tcase_create("route");
    tcase_add_loop_test(tc, test_route, 0, NELEM(route_cases));
    tcase_add_test(tc, test_paths);
    tcase_add_test(tc, test_header);
    tcase_add_test(tc, test_boundary);
    suite_add_tcase(s, tc);
    tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, setup_tmp, teardown_tmp);
    tcase_add_loop_test(tc, test_decide_no_token, 0, NELEM(peer_cases));
    tcase_add_test(tc, test_decide_token);
    tcase_add_test(tc, test_token_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("queue");
    tcase_add_test(tc, test_queue);
    suite_add_tcase(s, tc);
    return s;
}
