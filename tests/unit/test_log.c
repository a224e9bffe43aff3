/*
 * test_log.c - log_to_json, the key=value -> JSON conversion behind
 * --log-format json: types (SQLSTATE always a string), IPv6 addresses with
 * their port, bytes that are not UTF-8, and truncation at every capacity
 * (checked by a strict validator of the JSON subset it writes).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "jsoncheck.h"
#include "log.h"
#include "suites.h"

static char out[16384];

static const char *conv(const char *in)
{
    size_t n = log_to_json(in, out, sizeof(out) - 1);
    out[n] = '\0';
    return out;
}

START_TEST(test_validator_itself)
{
    ck_assert(valid_json("{}", 2));
    ck_assert(valid_json("{\"a\":1,\"b\":\"x\"}", 15));
    ck_assert(!valid_json("{\"a\":08001}", 11));
    ck_assert(!valid_json("{\"a\":\"\xff\"}", 9));
    ck_assert(!valid_json("{\"a\":\"x}", 8));
    ck_assert(!valid_json("{\"a\":}", 6));
}
END_TEST

/* ---- types ------------------------------------------------------------------- */

START_TEST(test_sqlstate_is_a_string)
{
    /* Issue 11: "sqlstate":08001 was invalid JSON, and 53300 a number. */
    ck_assert_str_eq(conv("event=upstream_failed conn=7 sqlstate=08001 message=\"x\""),
                     "{\"event\":\"upstream_failed\",\"conn\":7,\"sqlstate\":\"08001\","
                     "\"message\":\"x\"}");
    ck_assert_str_eq(conv("sqlstate=53300"), "{\"sqlstate\":\"53300\"}");
    ck_assert_str_eq(conv("login_sqlstate=28000"), "{\"login_sqlstate\":\"28000\"}");
    ck_assert_str_eq(conv("sqlstate=\"28P01\""), "{\"sqlstate\":\"28P01\"}");
}
END_TEST

START_TEST(test_numbers)
{
    ck_assert_str_eq(conv("conn=12 bytes_from_client=0 duration_ms=1500"),
                     "{\"conn\":12,\"bytes_from_client\":0,\"duration_ms\":1500}");
    /* Not valid JSON numbers, or not exact in a double: strings. */
    ck_assert_str_eq(conv("a=0123 b=-1 c=1.5 d=1234567890123456 e=12ab"),
                     "{\"a\":\"0123\",\"b\":\"-1\",\"c\":\"1.5\",\"d\":\"1234567890123456\","
                     "\"e\":\"12ab\"}");
    /* Quoted digits stay strings: the writer of the line said so. */
    ck_assert_str_eq(conv("user=\"123\""), "{\"user\":\"123\"}");
}
END_TEST

START_TEST(test_ipv6_keeps_its_port)
{
    ck_assert_str_eq(conv("event=accepted conn=1 front=[::1]:5432 x=1"),
                     "{\"event\":\"accepted\",\"conn\":1,\"front\":\"[::1]:5432\",\"x\":1}");
    ck_assert_str_eq(conv("upstream=[2001:db8::1]:6432"), "{\"upstream\":\"[2001:db8::1]:6432\"}");
    /* A bracketed list: the brackets go, the spaces stay inside the value. */
    ck_assert_str_eq(conv("front_certificate=[subject=\"CN=a\" not_after=x] n=2"),
                     "{\"front_certificate\":\"subject=\\\"CN=a\\\" not_after=x\",\"n\":2}");
    ck_assert_str_eq(conv("l=[a [b] c] z=1"), "{\"l\":\"a [b] c\",\"z\":1}");
}
END_TEST

START_TEST(test_bytes_escaped)
{
    /* Not UTF-8 (an SNI may hold anything): \u00XX, the line stays UTF-8. */
    ck_assert_str_eq(conv("sni=\"\xff\xfe"
                          "a\""),
                     "{\"sni\":\"\\u00ff\\u00fea\"}");
    /* Valid UTF-8 passes as it is; a truncated sequence does not. */
    ck_assert_str_eq(conv("n=\"caf\xc3\xa9\""), "{\"n\":\"caf\xc3\xa9\"}");
    ck_assert_str_eq(conv("n=\"x\xc3\""), "{\"n\":\"x\\u00c3\"}");
    /* Overlong and surrogate forms are not UTF-8. */
    ck_assert_str_eq(conv("n=\"\xc0\xaf\""), "{\"n\":\"\\u00c0\\u00af\"}");
    ck_assert_str_eq(conv("n=\"\xed\xa0\x80\""), "{\"n\":\"\\u00ed\\u00a0\\u0080\"}");
    /* Control characters and DEL, bare or quoted. */
    ck_assert_str_eq(conv("n=\"a\x01\x7f\" m=b\tc"),
                     "{\"n\":\"a\\u0001\\u007f\",\"m\":\"b\\u0009c\"}");
    /* Quotes and backslashes, as log_escape wrote them. */
    ck_assert_str_eq(conv("n=\"a\\\"b\\\\c\""), "{\"n\":\"a\\\"b\\\\c\"}");
}
END_TEST

START_TEST(test_not_key_value)
{
    /* Words without '=' are dropped; the object stays valid. */
    ck_assert_str_eq(conv("hello world k=v"), "{\"k\":\"v\"}");
    ck_assert_str_eq(conv(""), "{}");
    ck_assert_str_eq(conv("k="), "{\"k\":\"\"}");
    ck_assert_str_eq(conv("k=\"unterminated"), "{\"k\":\"unterminated\"}");
}
END_TEST

START_TEST(test_every_capacity_valid)
{
    const char *lines[] = {
        "ts=2026-01-01T00:00:00.000Z level=info event=closed conn=123 front=[::1]:5432 "
        "sni=\"\xff\xfe\x01\" user=\"a\\\"b\" sqlstate=08001 bytes_from_client=4096 "
        "front_certificate=[subject=\"x\" n=1] reason=\"caf\xc3\xa9 \\\\ done\"",
        "k=\"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\" m=1",
    };
    char buf[1024];
    for (size_t l = 0; l < sizeof(lines) / sizeof(lines[0]); l++) {
        for (size_t cap = 3; cap < sizeof(buf); cap++) {
            memset(buf, 'X', sizeof(buf));
            size_t n = log_to_json(lines[l], buf, cap);
            ck_assert_uint_le(n, cap);
            ck_assert_msg(valid_json(buf, n), "line %zu cap %zu: %.*s", l, cap, (int)n, buf);
            ck_assert_int_eq(buf[cap], 'X'); /* nothing past cap */
        }
    }
}
END_TEST

/* log_gate: the first event passes; later ones in the same second are only
 * counted; the next that passes reports them all. */
START_TEST(test_gate_once_a_second)
{
    struct log_gate g = {0};
    unsigned seen = 99;
    ck_assert(log_gate_pass(&g, &seen));
    ck_assert_uint_eq(seen, 1);
    /* Same second (retried if the clock ticked over in between). */
    for (int tries = 0; tries < 3; tries++) {
        long long before = (long long)time(NULL);
        atomic_store(&g.at, before);
        atomic_store(&g.count, 0);
        bool a = log_gate_pass(&g, &seen), b = log_gate_pass(&g, &seen);
        if ((long long)time(NULL) != before)
            continue;
        ck_assert(!a && !b);
        ck_assert_uint_eq(atomic_load(&g.count), 2);
        break;
    }
    atomic_store(&g.at, (long long)time(NULL) - 1); /* a second later */
    seen = 0;
    ck_assert(log_gate_pass(&g, &seen));
    ck_assert_uint_eq(seen, 3); /* the two held back and this one */
    ck_assert_uint_eq(atomic_load(&g.count), 0);
}
END_TEST

Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, test_validator_itself);
    tcase_add_test(tc, test_sqlstate_is_a_string);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_ipv6_keeps_its_port);
    tcase_add_test(tc, test_bytes_escaped);
    tcase_add_test(tc, test_not_key_value);
    tcase_add_test(tc, test_every_capacity_valid);
    tcase_add_test(tc, test_gate_once_a_second);
    suite_add_tcase(s, tc);
    return s;
}
