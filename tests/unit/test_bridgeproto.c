/*
 * test_bridgeproto.c - unit tests for src/bridgeproto.c, the bridge
 * protocol's codecs (issue 15): the preamble byte by byte and a knock that
 * is not one, frames built and decoded back (partial input, unknown type,
 * the size limit), payload lookups and every malformation they refuse,
 * values a frame must not carry, stream ids and tokens in hex, bridge ids
 * and host:port forms.
 */
#include <string.h>

#include "bridgeproto.h"
#include "suites.h"

START_TEST(test_preamble)
{
    uint8_t p[BRIDGE_PREAMBLE_LEN];
    bridge_preamble_encode(0x0102030405060708ull, p);
    const uint8_t want[] = {'P', 'G', 'T', 'P', 'B', 'R', 'G', '1', 1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert_mem_eq(p, want, sizeof(want));
    uint64_t s = 0;
    for (size_t n = 0; n < BRIDGE_PREAMBLE_LEN; n++)
        ck_assert_int_eq(bridge_preamble_decode(p, n, &s), 0);
    ck_assert_int_eq(bridge_preamble_decode(p, sizeof(p), &s), 1);
    ck_assert_uint_eq(s, 0x0102030405060708ull);
    /* A PostgreSQL SSLRequest, an HTTP request, a ClientHello: refused at
     * their first differing byte. */
    const uint8_t ssl[8] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
    ck_assert_int_eq(bridge_preamble_decode(ssl, 1, &s), -1);
    ck_assert_int_eq(bridge_preamble_decode((const uint8_t *)"GET / HTTP/1.1", 14, &s), -1);
    ck_assert_int_eq(bridge_preamble_decode((const uint8_t *)"PGTPBRG2xxxxxxxx", 16, &s), -1);
    ck_assert_int_eq(bridge_preamble_decode((const uint8_t *)"PGT", 3, &s), 0);
}
END_TEST

START_TEST(test_frame_round_trip)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_OPEN);
    bridge_frame_add(&f, "stream", "00010000000000ff");
    bridge_frame_addf(&f, "target", "%s:%u", "db.internal", 5432u);
    int n = bridge_frame_end(&f);
    ck_assert_int_gt(n, 0);
    const char text[] = "stream=00010000000000ff\ntarget=db.internal:5432\n";
    ck_assert_int_eq(n, BRIDGE_FRAME_HDR + (int)strlen(text));
    ck_assert_int_eq(buf[0], 'O');
    ck_assert_int_eq(buf[4], (int)strlen(text));
    ck_assert_mem_eq(buf + BRIDGE_FRAME_HDR, text, strlen(text));

    uint8_t type = 0;
    const uint8_t *pl = NULL;
    size_t plen = 0, used = 0;
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(bridge_frame_decode(buf, (size_t)k, &type, &pl, &plen, &used), 0);
    ck_assert_int_eq(bridge_frame_decode(buf, (size_t)n, &type, &pl, &plen, &used), 1);
    ck_assert_int_eq(type, BRIDGE_OPEN);
    ck_assert_uint_eq(used, (size_t)n);
    char v[64];
    ck_assert_int_eq(bridge_payload_get(pl, plen, "target", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "db.internal:5432");
    ck_assert_int_eq(bridge_payload_get(pl, plen, "stream", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "00010000000000ff");
    ck_assert_int_eq(bridge_payload_get(pl, plen, "token", v, sizeof(v)), 0);
    ck_assert_int_eq(bridge_payload_get(pl, plen, "target", v, 5), -1); /* does not fit */

    /* An empty frame (PONG) and an unknown type. */
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_PONG);
    ck_assert_int_eq(bridge_frame_end(&f), BRIDGE_FRAME_HDR);
    ck_assert_int_eq(bridge_frame_decode(buf, BRIDGE_FRAME_HDR, &type, &pl, &plen, &used), 1);
    ck_assert_uint_eq(plen, 0);
    buf[0] = 'Z';
    ck_assert_int_eq(bridge_frame_decode(buf, 1, &type, &pl, &plen, &used), -1);
    /* Over the size limit: refused from the header alone. */
    const uint8_t big[BRIDGE_FRAME_HDR] = {'P', 0, 0, 0x10, 0x01};
    ck_assert_int_eq(bridge_frame_decode(big, sizeof(big), &type, &pl, &plen, &used), -1);
    const uint8_t huge[BRIDGE_FRAME_HDR] = {'P', 0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(bridge_frame_decode(huge, sizeof(huge), &type, &pl, &plen, &used), -1);
}
END_TEST

START_TEST(test_frame_refuses)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    const char *bad_values[] = {"a\nsecret=x", "a\rb", "nul\x01", "del\x7f"};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(*bad_values); i++) {
        bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_HELLO);
        bridge_frame_add(&f, "name", bad_values[i]);
        ck_assert_int_eq(bridge_frame_end(&f), -1);
    }
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_HELLO);
    bridge_frame_add(&f, "Bad-Key", "x");
    ck_assert_int_eq(bridge_frame_end(&f), -1);
    /* A value over BRIDGE_VALUE_MAX, and more fields than a frame holds. */
    static char longv[BRIDGE_VALUE_MAX + 2];
    memset(longv, 'v', sizeof(longv) - 1);
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_HELLO);
    bridge_frame_add(&f, "name", longv);
    ck_assert_int_eq(bridge_frame_end(&f), -1);
    longv[BRIDGE_VALUE_MAX] = '\0';
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_HELLO);
    for (int i = 0; i < 5; i++)
        bridge_frame_add(&f, "name", longv);
    ck_assert_int_eq(bridge_frame_end(&f), -1);
    /* A small buffer. */
    uint8_t small[12];
    bridge_frame_begin(&f, small, sizeof(small), BRIDGE_HELLO);
    bridge_frame_add(&f, "name", "long enough");
    ck_assert_int_eq(bridge_frame_end(&f), -1);
    /* UTF-8 is fine. */
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_HELLO);
    bridge_frame_add(&f, "name", "caf\xc3\xa9");
    ck_assert_int_gt(bridge_frame_end(&f), 0);
}
END_TEST

static int get(const char *payload, const char *key, char *out, size_t cap)
{
    return bridge_payload_get((const uint8_t *)payload, strlen(payload), key, out, cap);
}

START_TEST(test_payload_malformed)
{
    char v[32];
    ck_assert_int_eq(get("", "a", v, sizeof(v)), 0);
    ck_assert_int_eq(get("a=1", "a", v, sizeof(v)), -1); /* no final newline */
    ck_assert_int_eq(get("a=1\nnoequals\n", "a", v, sizeof(v)), -1);
    ck_assert_int_eq(get("=1\n", "a", v, sizeof(v)), -1);     /* empty key */
    ck_assert_int_eq(get("A=1\n", "a", v, sizeof(v)), -1);    /* key characters */
    ck_assert_int_eq(get("a=1\tx\n", "a", v, sizeof(v)), -1); /* control character */
    ck_assert_int_eq(get("a=\n", "a", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(get("a=x=y\nb=2\n", "a", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "x=y");
    ck_assert_int_eq(get("a=1\na=2\n", "a", v, sizeof(v)), 1); /* the first counts */
    ck_assert_str_eq(v, "1");
    ck_assert_int_eq(get("ab=1\n", "a", v, sizeof(v)), 0);
    ck_assert_int_eq(get("a=1\nb=2\n", "b", v, sizeof(v)), 1);
    ck_assert_str_eq(v, "2");
    const uint8_t nul[] = {'a', '=', 'x', 0, 'y', '\n'};
    ck_assert_int_eq(bridge_payload_get(nul, sizeof(nul), "a", v, sizeof(v)), -1);
}
END_TEST

START_TEST(test_ids_and_tokens)
{
    char s[17];
    bridge_stream_format(0x00020000000000abull, s);
    ck_assert_str_eq(s, "00020000000000ab");
    uint64_t id = 0;
    ck_assert_int_eq(bridge_stream_parse("00020000000000AB", &id), 0);
    ck_assert_uint_eq(id, 0x00020000000000abull);
    ck_assert_int_eq(bridge_stream_parse("0002000000000ab", &id), -1);
    ck_assert_int_eq(bridge_stream_parse("00020000000000ag", &id), -1);

    uint8_t tok[BRIDGE_TOKEN_LEN], back[BRIDGE_TOKEN_LEN];
    for (int i = 0; i < BRIDGE_TOKEN_LEN; i++)
        tok[i] = (uint8_t)(i * 7 + 3);
    char t[2 * BRIDGE_TOKEN_LEN + 1];
    bridge_token_format(tok, t);
    ck_assert_uint_eq(strlen(t), 64);
    ck_assert_int_eq(bridge_token_parse(t, back), 0);
    ck_assert_mem_eq(tok, back, sizeof(tok));
    t[10] = 'x';
    ck_assert_int_eq(bridge_token_parse(t, back), -1);
    ck_assert_int_eq(bridge_token_parse("00", back), -1);

    ck_assert(bridge_id_valid("prod-vpc_1.eu"));
    ck_assert(!bridge_id_valid(""));
    ck_assert(!bridge_id_valid("a b"));
    ck_assert(!bridge_id_valid("a/b"));
    ck_assert(!bridge_id_valid("\"x\""));
    char longid[BRIDGE_ID_MAX + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    ck_assert(!bridge_id_valid(longid));
    longid[BRIDGE_ID_MAX] = '\0';
    ck_assert(bridge_id_valid(longid));
}
END_TEST

START_TEST(test_hostport)
{
    char h[64];
    uint16_t port = 0;
    ck_assert_int_eq(bridge_hostport_parse("db.internal:5432", h, sizeof(h), &port), 0);
    ck_assert_str_eq(h, "db.internal");
    ck_assert_uint_eq(port, 5432);
    ck_assert_int_eq(bridge_hostport_parse("[::1]:6432", h, sizeof(h), &port), 0);
    ck_assert_str_eq(h, "::1");
    ck_assert_uint_eq(port, 6432);
    ck_assert_int_eq(bridge_hostport_parse("10.0.0.5:65535", h, sizeof(h), &port), 0);
    const char *bad[] = {"db",        "db:",      ":5432",    "db:0",      "db:65536",
                         "db:54a",    "::1:5432", "[::1]",    "[::1]5432", "d b:1",
                         "db:123456", "a,b:1",    "db:+5432", "[]:5432"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        ck_assert_msg(bridge_hostport_parse(bad[i], h, sizeof(h), &port) == -1, "%s", bad[i]);
    char tiny[4];
    ck_assert_int_eq(bridge_hostport_parse("abcd:1", tiny, sizeof(tiny), &port), -1);
    ck_assert_int_eq(bridge_hostport_parse("abc:1", tiny, sizeof(tiny), &port), 0);
}
END_TEST

Suite *bridgeproto_suite(void)
{
    Suite *s = suite_create("bridgeproto");
    TCase *tc = tcase_create("bridgeproto");
    tcase_add_test(tc, test_preamble);
    tcase_add_test(tc, test_frame_round_trip);
    tcase_add_test(tc, test_frame_refuses);
    tcase_add_test(tc, test_payload_malformed);
    tcase_add_test(tc, test_ids_and_tokens);
    tcase_add_test(tc, test_hostport);
    suite_add_tcase(s, tc);
    return s;
}
