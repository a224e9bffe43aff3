/*
 * test_httpreq.c - unit tests for src/httpreq.c: httpreq_parse on a table
 * of request heads (complete, incomplete, malformed: bare LF, folding,
 * bad tokens, TLS and HTTP/2 bytes), on every prefix of a good head, on
 * input without a NUL, and on heads or tokens too big for the caller.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

struct req_case {
    const char *in;
    int want;
    const char *method, *path;
};

static const struct req_case req_cases[] = {
    /* complete */
    {"GET /metrics HTTP/1.1\r\nHost: localhost:9187\r\nUser-Agent: curl/7.88.1\r\n"
     "Accept: */*\r\n\r\n",
     1, "GET", "/metrics"},
    {"HEAD /healthz HTTP/1.0\r\n\r\n", 1, "HEAD", "/healthz"},
    {"GET /readyz HTTP/1.1\r\nX-Empty:\r\nX-Tab:\tv\t\r\nX-Utf8: \xc3\xa9\r\n\r\n", 1, "GET",
     "/readyz"},
    {"get /metrics?x=1 HTTP/1.9\r\n\r\n", 1, "get", "/metrics?x=1"},
    {"OPTIONS * HTTP/1.1\r\n\r\n", 1, "OPTIONS", "*"},
    {"GET http://h/metrics HTTP/1.1\r\n\r\n", 1, "GET", "http://h/metrics"},
    {"GET / HTTP/1.1\r\n\r\nbytes after the head are not looked at \x01", 1, "GET", "/"},
    {"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 1, "POST", "/metrics"},
    /* incomplete but valid so far */
    {"", 0, NULL, NULL},
    {"G", 0, NULL, NULL},
    {"GET", 0, NULL, NULL},
    {"GET ", 0, NULL, NULL},
    {"GET /metrics", 0, NULL, NULL},
    {"GET /metrics HTTP/1.", 0, NULL, NULL},
    {"GET /metrics HTTP/1.1", 0, NULL, NULL},
    {"GET /metrics HTTP/1.1\r", 0, NULL, NULL},
    {"GET /metrics HTTP/1.1\r\n", 0, NULL, NULL},
    {"GET /metrics HTTP/1.1\r\nHost", 0, NULL, NULL},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n", 0, NULL, NULL},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r", 0, NULL, NULL},
    /* bare LF */
    {"GET /metrics HTTP/1.1\n\n", -1, NULL, NULL},
    {"GET /metrics HTTP/1.1\r\n\n", -1, NULL, NULL},
    {"GET /metrics HTTP/1.1\r\nHost: x\n\r\n", -1, NULL, NULL},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n\rX", -1, NULL, NULL},
    {"GET /metrics HTTP/1.1\rX", -1, NULL, NULL},
    /* malformed request line */
    {"\r\nGET / HTTP/1.1\r\n\r\n", -1, NULL, NULL},
    {" GET / HTTP/1.1\r\n\r\n", -1, NULL, NULL},
    {"GET  / HTTP/1.1\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.1 \r\n\r\n", -1, NULL, NULL},
    {"GET /a b HTTP/1.1\r\n\r\n", -1, NULL, NULL},
    {"GET /\x7f HTTP/1.1\r\n\r\n", -1, NULL, NULL},
    {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", -1, NULL, NULL},
    {"GET /\r\n\r\n", -1, NULL, NULL}, /* HTTP/0.9 */
    {"GET / HTTP/2.0\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.x\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.10\r\n\r\n", -1, NULL, NULL},
    {"GET / http/1.1\r\n\r\n", -1, NULL, NULL},
    {"GE(T / HTTP/1.1\r\n\r\n", -1, NULL, NULL},
    {"G\x01", -1, NULL, NULL}, /* refused before the line ends */
    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", -1, NULL, NULL}, /* a TLS ClientHello */
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -1, NULL, NULL},
    /* malformed headers */
    {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.1\r\n: x\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.1\r\nA: b\r\n\tfolded\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", -1, NULL, NULL},
    {"GET / HTTP/1.1\r\nA(b: c\r\n\r\n", -1, NULL, NULL},
};

START_TEST(test_httpreq_table)
{
    const struct req_case *tc = &req_cases[_i];
    char method[16] = "", path[256] = "";
    int r = httpreq_parse(tc->in, strlen(tc->in), method, sizeof(method), path, sizeof(path));
    ck_assert_msg(r == tc->want, "\"%s\": %d, want %d", tc->in, r, tc->want);
    if (r == 1) {
        ck_assert_str_eq(method, tc->method);
        ck_assert_str_eq(path, tc->path);
    }
}
END_TEST

/* Every proper prefix of a complete head is incomplete, not malformed. */
START_TEST(test_httpreq_every_prefix)
{
    for (int k = 0; k < NELEM(req_cases); k++) {
        if (req_cases[k].want != 1)
            continue;
        const char *in = req_cases[k].in;
        size_t end = (size_t)(strstr(in, "\r\n\r\n") - in) + 4;
        char m[16], p[256];
        for (size_t n = 0; n < end; n++)
            ck_assert_msg(httpreq_parse(in, n, m, sizeof(m), p, sizeof(p)) == 0,
                          "prefix %zu of \"%s\"", n, in);
        ck_assert_int_eq(httpreq_parse(in, end, m, sizeof(m), p, sizeof(p)), 1);
    }
}
END_TEST

START_TEST(test_httpreq_not_nul_terminated)
{
    /* The parser reads only len bytes: a buffer with no NUL at all. */
    static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
    char buf[32];
    memset(buf, 'Z', sizeof(buf));
    for (size_t i = 0; i < sizeof(req) - 1; i++)
        buf[i] = req[i];
    char m[8], p[16];
    ck_assert_int_eq(httpreq_parse(buf, 25, m, sizeof(m), p, sizeof(p)), 1);
    ck_assert_str_eq(p, "/metrics");
    ck_assert_int_eq(httpreq_parse(buf, 24, m, sizeof(m), p, sizeof(p)), 0);
}
END_TEST

START_TEST(test_httpreq_oversized)
{
    char buf[600], m[16], p[256];

    /* A path that fits with its NUL, and one byte more. */
    int n = snprintf(buf, sizeof(buf), "GET /%0254d HTTP/1.1\r\n\r\n", 0);
    ck_assert_int_eq(httpreq_parse(buf, (size_t)n, m, sizeof(m), p, sizeof(p)), 1);
    ck_assert_uint_eq(strlen(p), 255);
    n = snprintf(buf, sizeof(buf), "GET /%0255d HTTP/1.1\r\n\r\n", 0);
    ck_assert_int_eq(httpreq_parse(buf, (size_t)n, m, sizeof(m), p, sizeof(p)), -1);
    /* ... refused as soon as the path is too long, before the line ends */
    ck_assert_int_eq(httpreq_parse(buf, 300, m, sizeof(m), p, sizeof(p)), -1);

    /* Methods: 15 characters fit in 16 bytes, 16 do not. */
    n = snprintf(buf, sizeof(buf), "ABCDEFGHIJKLMNO / HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(httpreq_parse(buf, (size_t)n, m, sizeof(m), p, sizeof(p)), 1);
    ck_assert_str_eq(m, "ABCDEFGHIJKLMNO");
    n = snprintf(buf, sizeof(buf), "ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n");
    ck_assert_int_eq(httpreq_parse(buf, (size_t)n, m, sizeof(m), p, sizeof(p)), -1);
    ck_assert_int_eq(httpreq_parse(buf, 16, m, sizeof(m), p, sizeof(p)), -1);

    /* No room at all. */
    ck_assert_int_eq(httpreq_parse("GET / HTTP/1.1\r\n\r\n", 18, m, 0, p, sizeof(p)), -1);
    ck_assert_int_eq(httpreq_parse("GET / HTTP/1.1\r\n\r\n", 18, m, sizeof(m), p, 1), -1);
    ck_assert_int_eq(httpreq_parse("GET / HTTP/1.1\r\n\r\n", 18, m, sizeof(m), p, 2), 1);

    /* Long headers are the caller's limit (ADMIN_HEAD_MAX), not the parser's. */
    static char big[8192];
    int off = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\n");
    while (off < 8000)
        off += snprintf(big + off, sizeof(big) - (size_t)off, "X-Pad: %060d\r\n", off);
    ck_assert_int_eq(httpreq_parse(big, (size_t)off, m, sizeof(m), p, sizeof(p)), 0);
    off += snprintf(big + off, sizeof(big) - (size_t)off, "\r\n");
    ck_assert_int_eq(httpreq_parse(big, (size_t)off, m, sizeof(m), p, sizeof(p)), 1);
}
END_TEST

Suite *httpreq_suite(void)
{
    Suite *s = suite_create("httpreq");
    TCase *h = tcase_create("httpreq");
    tcase_add_loop_test(h, test_httpreq_table, 0, NELEM(req_cases));
    tcase_add_test(h, test_httpreq_every_prefix);
    tcase_add_test(h, test_httpreq_not_nul_terminated);
    tcase_add_test(h, test_httpreq_oversized);
    suite_add_tcase(s, h);
    return s;
}
