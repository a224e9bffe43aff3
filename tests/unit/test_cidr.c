/*
 * test_cidr.c - unit tests for src/cidr.c: parsing allow-lists (every error
 * message, exactly) and matching IPv4, IPv6 and IPv4-mapped IPv6 peers.
 * Table-driven: each row is one Check test (tcase_add_loop_test).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cidr.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* Fill ss with addr (IPv4 or IPv6 text); the port is irrelevant. */
static const struct sockaddr *make_sa(const char *addr, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    memset(&sin, 0, sizeof(sin));
    memset(&sin6, 0, sizeof(sin6));
    if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(5432);
        memcpy(ss, &sin, sizeof(sin));
    } else {
        ck_assert_msg(inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1, "bad test address %s", addr);
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(5432);
        memcpy(ss, &sin6, sizeof(sin6));
    }
    return (const struct sockaddr *)ss;
}

/* ---- parsing ------------------------------------------------------------ */

struct parse_ok_case {
    const char *in;
    size_t n;
    /* first item */
    int family;
    unsigned bits;
    const char *addr; /* as inet_ntop prints it */
};

static const struct parse_ok_case parse_ok_cases[] = {
    {"10.0.0.0/8", 1, AF_INET, 8, "10.0.0.0"},
    {"127.0.0.1", 1, AF_INET, 32, "127.0.0.1"},
    {"127.0.0.1/32", 1, AF_INET, 32, "127.0.0.1"},
    {"0.0.0.0/0", 1, AF_INET, 0, "0.0.0.0"},
    {"192.168.0.0/23", 1, AF_INET, 23, "192.168.0.0"},
    {"::1", 1, AF_INET6, 128, "::1"},
    {"::/0", 1, AF_INET6, 0, "::"},
    {"2001:db8::/32", 1, AF_INET6, 32, "2001:db8::"},
    {"2001:DB8::/32", 1, AF_INET6, 32, "2001:db8::"},
    {"2001:db8::1/128", 1, AF_INET6, 128, "2001:db8::1"},
    {"::ffff:0:0/96", 1, AF_INET6, 96, "::ffff:0.0.0.0"},
    {"::ffff:10.0.0.0/104", 1, AF_INET6, 104, "::ffff:10.0.0.0"},
    {"10.0.0.0/08", 1, AF_INET, 8, "10.0.0.0"},
    {"10.0.0.0/8, ::1, 127.0.0.1/32", 3, AF_INET, 8, "10.0.0.0"},
    {" 10.0.0.0/8 ,\t192.168.0.0/16 ", 2, AF_INET, 8, "10.0.0.0"},
    {"10.0.0.0/8,10.0.0.0/8", 2, AF_INET, 8, "10.0.0.0"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 1, AF_INET6, 128,
     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
};

START_TEST(test_parse_ok)
{
    const struct parse_ok_case *tc = &parse_ok_cases[_i];
    struct cidr_list l;
    char err[256];
    memset(err, 'x', sizeof(err));
    ck_assert_msg(cidr_list_parse(tc->in, &l, err, sizeof(err)) == 0, "\"%s\": %s", tc->in, err);
    ck_assert_str_eq(err, "");
    ck_assert_uint_eq(l.n, tc->n);
    ck_assert_ptr_nonnull(l.v);
    ck_assert_int_eq(l.v[0].family, tc->family);
    ck_assert_uint_eq(l.v[0].bits, tc->bits);
    char text[INET6_ADDRSTRLEN];
    ck_assert_ptr_nonnull(inet_ntop(tc->family, l.v[0].addr, text, sizeof(text)));
    ck_assert_str_eq(text, tc->addr);
    cidr_list_free(&l);
    ck_assert_ptr_null(l.v);
    ck_assert_uint_eq(l.n, 0);
    cidr_list_free(&l); /* twice is harmless */
}
END_TEST

START_TEST(test_parse_list_items)
{
    struct cidr_list l;
    ck_assert_int_eq(cidr_list_parse("10.0.0.0/8, ::1, 127.0.0.1/32", &l, NULL, 0), 0);
    ck_assert_uint_eq(l.n, 3);
    ck_assert_int_eq(l.v[1].family, AF_INET6);
    ck_assert_uint_eq(l.v[1].bits, 128);
    ck_assert_int_eq(l.v[2].family, AF_INET);
    ck_assert_uint_eq(l.v[2].bits, 32);
    static const uint8_t lo[4] = {127, 0, 0, 1};
    ck_assert_mem_eq(l.v[2].addr, lo, 4);
    cidr_list_free(&l);
}
END_TEST

struct parse_bad_case {
    const char *in;
    const char *err; /* the whole message */
};

static const struct parse_bad_case parse_bad_cases[] = {
    {"10.0.0.1/8", "\"10.0.0.1/8\": host bits set (did you mean 10.0.0.0/8?)"},
    {"192.168.1.0/23", "\"192.168.1.0/23\": host bits set (did you mean 192.168.0.0/23?)"},
    {"0.0.0.1/0", "\"0.0.0.1/0\": host bits set (did you mean 0.0.0.0/0?)"},
    {"2001:db8::1/32", "\"2001:db8::1/32\": host bits set (did you mean 2001:db8::/32?)"},
    {"::1/127", "\"::1/127\": host bits set (did you mean ::/127?)"},
    {"10.0.0.0/33", "\"10.0.0.0/33\": prefix length must be 0..32"},
    {"::/129", "\"::/129\": prefix length must be 0..128"},
    {"10.0.0.0/", "\"10.0.0.0/\": prefix length must be 0..32"},
    {"10.0.0.0/-1", "\"10.0.0.0/-1\": prefix length must be 0..32"},
    {"10.0.0.0/+8", "\"10.0.0.0/+8\": prefix length must be 0..32"},
    {"10.0.0.0/8/8", "\"10.0.0.0/8/8\": prefix length must be 0..32"},
    {"10.0.0.0/ 8", "\"10.0.0.0/ 8\": prefix length must be 0..32"},
    {"10.0.0.0/0x8", "\"10.0.0.0/0x8\": prefix length must be 0..32"},
    {"10.0.0.0/4294967304", "\"10.0.0.0/4294967304\": prefix length must be 0..32"},
    {"::/99999999999999999999999", "\"::/99999999999999999999999\": prefix length must be 0..128"},
    {"abc", "\"abc\": not an IPv4 or IPv6 address"},
    {"10.0.0", "\"10.0.0\": not an IPv4 or IPv6 address"},
    {"256.0.0.1", "\"256.0.0.1\": not an IPv4 or IPv6 address"},
    {"10.0.0.0.0/8", "\"10.0.0.0.0/8\": not an IPv4 or IPv6 address"},
    {"10.0.0.0 /8", "\"10.0.0.0 /8\": not an IPv4 or IPv6 address"},
    {"/8", "\"/8\": not an IPv4 or IPv6 address"},
    {"fe80::1%eth0", "\"fe80::1%eth0\": not an IPv4 or IPv6 address"},
    {"[::1]", "\"[::1]\": not an IPv4 or IPv6 address"},
    {"localhost", "\"localhost\": not an IPv4 or IPv6 address"},
    {"1:2:3:4:5:6:7:8:9", "\"1:2:3:4:5:6:7:8:9\": not an IPv4 or IPv6 address"},
    {"10.0.0.0/8, abc", "\"abc\": not an IPv4 or IPv6 address"},
    {"abc, 10.0.0.1/8", "\"abc\": not an IPv4 or IPv6 address"},
    {"::1, 10.0.0.1/8", "\"10.0.0.1/8\": host bits set (did you mean 10.0.0.0/8?)"},
    {"a,,b", "empty item in \"a,,b\""},
    {"10.0.0.0/8,", "empty item in \"10.0.0.0/8,\""},
    {",::1", "empty item in \",::1\""},
    {"::1, ,::2", "empty item in \"::1, ,::2\""},
    {"", "empty item in \"\""},
    {" \t ", "empty item in \" \t \""},
    {"0000000000000000000000000000000000000000000000000000001.2.3.4",
     "\"0000000000000000000000000000000000000000000000000000001.2.3.4\": not an IPv4 or IPv6 "
     "address"},
};

START_TEST(test_parse_bad)
{
    const struct parse_bad_case *tc = &parse_bad_cases[_i];
    struct cidr_list l = {.v = (struct cidr *)&l, .n = 42}; /* stale values get cleared */
    char err[256];
    memset(err, 'x', sizeof(err));
    ck_assert_msg(cidr_list_parse(tc->in, &l, err, sizeof(err)) == -1, "\"%s\" accepted", tc->in);
    ck_assert_str_eq(err, tc->err);
    ck_assert_ptr_null(l.v);
    ck_assert_uint_eq(l.n, 0);
    cidr_list_free(&l);
}
END_TEST

START_TEST(test_parse_err_buffer)
{
    struct cidr_list l;
    char err[16];

    /* Truncated and terminated; errlen 0 leaves err alone; NULL err is fine. */
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(cidr_list_parse("10.0.0.1/8", &l, err, 10), -1);
    ck_assert_str_eq(err, "\"10.0.0.1");
    ck_assert_int_eq(err[10], 'x');
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(cidr_list_parse("abc", &l, err, 0), -1);
    ck_assert_int_eq(err[0], 'x');
    ck_assert_int_eq(cidr_list_parse("abc", &l, NULL, 0), -1);
    ck_assert_int_eq(cidr_list_parse(NULL, &l, err, sizeof(err)), -1);
    ck_assert_ptr_null(l.v);
    ck_assert_int_eq(cidr_list_parse("::1", NULL, err, sizeof(err)), -1);

    /* A very long item is quoted, not overrun. */
    char big[1024], msg[512];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(cidr_list_parse(big, &l, msg, sizeof(msg)), -1);
    ck_assert_ptr_nonnull(strstr(msg, "not an IPv4 or IPv6 address"));
    ck_assert_uint_lt(strlen(msg), sizeof(msg) - 1);
}
END_TEST

/* ---- matching ----------------------------------------------------------- */

struct match_case {
    const char *list;
    const char *addr;
    bool want;
};

static const struct match_case match_cases[] = {
    {"10.0.0.0/8", "10.1.2.3", true},
    {"10.0.0.0/8", "10.0.0.0", true},
    {"10.0.0.0/8", "10.255.255.255", true},
    {"10.0.0.0/8", "9.255.255.255", false},
    {"10.0.0.0/8", "11.0.0.0", false},
    {"10.0.0.0/8", "::ffff:10.1.2.3", true},
    {"10.0.0.0/8", "::ffff:11.0.0.1", false},
    {"10.0.0.0/8", "::10.1.2.3", false},        /* IPv4-compatible, not mapped */
    {"10.0.0.0/8", "64:ff9b::10.1.2.3", false}, /* NAT64, not mapped */
    {"10.0.0.0/8", "::1", false},
    {"192.168.0.0/23", "192.168.1.200", true},
    {"192.168.0.0/23", "192.168.2.0", false},
    {"192.168.0.0/23", "::ffff:192.168.1.1", true},
    {"1.2.3.4/31", "1.2.3.5", true},
    {"1.2.3.4/31", "1.2.3.6", false},
    {"127.0.0.1", "127.0.0.1", true},
    {"127.0.0.1", "127.0.0.2", false},
    {"127.0.0.1", "::ffff:127.0.0.1", true},
    {"127.0.0.1", "::1", false},
    {"0.0.0.0/0", "1.2.3.4", true},
    {"0.0.0.0/0", "255.255.255.255", true},
    {"0.0.0.0/0", "::ffff:1.2.3.4", true},
    {"0.0.0.0/0", "::1", false},
    {"0.0.0.0/0", "2001:db8::1", false},
    {"::/0", "::1", true},
    {"::/0", "2001:db8::1", true},
    {"::/0", "::ffff:1.2.3.4", true},
    {"::/0", "1.2.3.4", false}, /* a plain IPv4 peer matches IPv4 prefixes only */
    {"::1", "::1", true},
    {"::1", "::2", false},
    {"::1", "127.0.0.1", false},
    {"2001:db8::/32", "2001:db8:ffff::1", true},
    {"2001:db8::/32", "2001:db9::1", false},
    {"2001:db8:8000::/33", "2001:db8:8000::1", true},
    {"2001:db8:8000::/33", "2001:db8:7fff::1", false},
    {"2001:db8::1/128", "2001:db8::1", true},
    {"2001:db8::1/128", "2001:db8::2", false},
    {"::ffff:0:0/96", "::ffff:1.2.3.4", true},
    {"::ffff:0:0/96", "1.2.3.4", false},
    {"::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true},
    {"::ffff:10.0.0.0/104", "::ffff:11.9.9.9", false},
    {"10.0.0.0/8, ::1", "::1", true},
    {"10.0.0.0/8, ::1", "10.0.0.1", true},
    {"10.0.0.0/8, ::1", "172.16.0.1", false},
    {"172.16.0.0/12, 192.168.0.0/16, fd00::/8", "fdab::1", true},
    {"172.16.0.0/12, 192.168.0.0/16, fd00::/8", "172.31.255.255", true},
    {"172.16.0.0/12, 192.168.0.0/16, fd00::/8", "172.32.0.0", false},
};

START_TEST(test_match)
{
    const struct match_case *tc = &match_cases[_i];
    struct cidr_list l;
    char err[128];
    ck_assert_msg(cidr_list_parse(tc->list, &l, err, sizeof(err)) == 0, "%s: %s", tc->list, err);
    struct sockaddr_storage ss;
    bool got = cidr_list_match(&l, make_sa(tc->addr, &ss));
    ck_assert_msg(got == tc->want, "%s in \"%s\": got %d, want %d", tc->addr, tc->list, got,
                  tc->want);
    cidr_list_free(&l);
}
END_TEST

/* For every prefix length: the prefix of an address matches the address and
 * the last address inside, and not the first address past its end. */
START_TEST(test_match_every_length_v4)
{
    for (unsigned bits = 0; bits <= 32; bits++) {
        uint32_t base = 0xc0a80101u; /* 192.168.1.1 */
        uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
        uint32_t net = base & mask;
        char list[64];
        struct in_addr in = {.s_addr = htonl(net)};
        char text[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in, text, sizeof(text));
        snprintf(list, sizeof(list), "%s/%u", text, bits);

        struct cidr_list l;
        ck_assert_int_eq(cidr_list_parse(list, &l, NULL, 0), 0);
        struct sockaddr_storage ss;
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_addr.s_addr = htonl(base);
        memcpy(&ss, &sin, sizeof(sin));
        ck_assert_msg(cidr_list_match(&l, (struct sockaddr *)&ss), "%s", list);
        sin.sin_addr.s_addr = htonl(net | ~mask);
        memcpy(&ss, &sin, sizeof(sin));
        ck_assert_msg(cidr_list_match(&l, (struct sockaddr *)&ss), "%s: last", list);
        if (bits > 0) {
            sin.sin_addr.s_addr = htonl(net ^ (1u << (32 - bits))); /* flip the last prefix bit */
            memcpy(&ss, &sin, sizeof(sin));
            ck_assert_msg(!cidr_list_match(&l, (struct sockaddr *)&ss), "%s: outside", list);
        }
        cidr_list_free(&l);
    }
}
END_TEST

START_TEST(test_match_every_length_v6)
{
    static const uint8_t base[16] = {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78,
                                     0x9a, 0xbc, 0xde, 0xf0, 0xff, 0xff, 0xff, 0xff};
    for (unsigned bits = 0; bits <= 128; bits++) {
        uint8_t net[16];
        for (unsigned i = 0; i < 16; i++) {
            unsigned keep = bits >= 8 * (i + 1) ? 8 : (bits > 8 * i ? bits - 8 * i : 0);
            net[i] = (uint8_t)(base[i] & (0xffu << (8 - keep)));
        }
        char text[INET6_ADDRSTRLEN], list[80];
        inet_ntop(AF_INET6, net, text, sizeof(text));
        snprintf(list, sizeof(list), "%s/%u", text, bits);

        struct cidr_list l;
        char err[128];
        ck_assert_msg(cidr_list_parse(list, &l, err, sizeof(err)) == 0, "%s: %s", list, err);
        struct sockaddr_storage ss;
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
        memcpy(&sin6.sin6_addr, base, 16);
        memcpy(&ss, &sin6, sizeof(sin6));
        ck_assert_msg(cidr_list_match(&l, (struct sockaddr *)&ss), "%s", list);
        if (bits > 0) {
            uint8_t out[16];
            memcpy(out, net, 16);
            unsigned b = bits - 1; /* the last prefix bit */
            out[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
            memcpy(&sin6.sin6_addr, out, 16);
            memcpy(&ss, &sin6, sizeof(sin6));
            ck_assert_msg(!cidr_list_match(&l, (struct sockaddr *)&ss), "%s: outside", list);
        }
        cidr_list_free(&l);
    }
}
END_TEST

START_TEST(test_match_edge)
{
    struct cidr_list l;
    struct sockaddr_storage ss;
    ck_assert_int_eq(cidr_list_parse("0.0.0.0/0, ::/0", &l, NULL, 0), 0);

    /* Not an IP peer, no peer, no list: no match. */
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, &un, sizeof(un));
    ck_assert(!cidr_list_match(&l, (struct sockaddr *)&ss));
    ck_assert(!cidr_list_match(&l, NULL));
    ck_assert(!cidr_list_match(NULL, make_sa("1.2.3.4", &ss)));
    ck_assert(cidr_list_match(&l, make_sa("1.2.3.4", &ss)));
    cidr_list_free(&l);

    /* A freed (or zeroed) list matches nothing. */
    ck_assert(!cidr_list_match(&l, make_sa("1.2.3.4", &ss)));
    struct cidr_list empty = {0};
    ck_assert(!cidr_list_match(&empty, make_sa("::1", &ss)));
    cidr_list_free(NULL);
}
END_TEST

Suite *cidr_suite(void)
{
    Suite *s = suite_create("cidr");

    TCase *parse = tcase_create("parse");
    tcase_add_loop_test(parse, test_parse_ok, 0, NELEM(parse_ok_cases));
    tcase_add_test(parse, test_parse_list_items);
    tcase_add_loop_test(parse, test_parse_bad, 0, NELEM(parse_bad_cases));
    tcase_add_test(parse, test_parse_err_buffer);
    suite_add_tcase(s, parse);

    TCase *match = tcase_create("match");
    tcase_add_loop_test(match, test_match, 0, NELEM(match_cases));
    tcase_add_test(match, test_match_every_length_v4);
    tcase_add_test(match, test_match_every_length_v6);
    tcase_add_test(match, test_match_edge);
    suite_add_tcase(s, match);

    return s;
}
