/*
 * test_proxyproto.c - unit tests for src/proxyproto.c: the PROXY protocol
 * header, v1 (text) and v2 (binary). Table-driven: each row is one Check
 * test (tcase_add_loop_test).
 *
 * Every valid header is also fed byte by byte (each strict prefix must ask
 * for more) and with bytes after it (the answer must not change). Every
 * invalid one names the prefix length at which it must first be refused:
 * shorter prefixes must ask for more, that one and all longer ones must be
 * refused, so "refused as soon as a byte proves it" is tested, not assumed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proxyproto.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* A string literal as (bytes, length), embedded NULs included. */
#define B(s) (const uint8_t *)(s), sizeof(s) - 1
/* Refused once the byte after this (literal) prefix has arrived. */
#define AT(prefix) sizeof(prefix)

/* v2 signature: \r\n\r\n\0\r\nQUIT\n */
#define SIG "\r\n\r\n\0\r\nQUIT\n"

#define PG_SSLREQUEST "\x00\x00\x00\x08\x04\xd2\x16\x2f"

/* What follows a header on a real connection, or junk: must not matter. */
static const struct {
    const uint8_t *in;
    size_t len;
} trailers[] = {
    {B(PG_SSLREQUEST)},
    {B("\x16\x03\x01\x02\x00")},
    {B("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")},
    {B("\r\n")},
    {B(SIG "\x21\x11\x00\x0c")},
    {B("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")},
};

/* Copy s into dst without its NUL. */
static void put(uint8_t *dst, const char *s)
{
    for (size_t i = 0; s[i] != '\0'; i++)
        dst[i] = (uint8_t)s[i];
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static void check_addr(const struct sockaddr_storage *ss, int family, const char *addr,
                       unsigned port)
{
    if (family == AF_INET) {
        struct sockaddr_in sin, want;
        memset(&want, 0, sizeof(want));
        memcpy(&sin, ss, sizeof(sin));
        ck_assert_int_eq(sin.sin_family, AF_INET);
        ck_assert_uint_eq(sin.sin_port, htons((uint16_t)port));
        ck_assert_int_eq(inet_pton(AF_INET, addr, &want.sin_addr), 1);
        ck_assert_mem_eq(&sin.sin_addr, &want.sin_addr, sizeof(want.sin_addr));
        ck_assert(all_zero((const uint8_t *)ss + sizeof(sin), sizeof(*ss) - sizeof(sin)));
    } else {
        struct sockaddr_in6 sin6, want;
        memset(&want, 0, sizeof(want));
        memcpy(&sin6, ss, sizeof(sin6));
        ck_assert_int_eq(sin6.sin6_family, AF_INET6);
        ck_assert_uint_eq(sin6.sin6_port, htons((uint16_t)port));
        ck_assert_uint_eq(sin6.sin6_flowinfo, 0);
        ck_assert_uint_eq(sin6.sin6_scope_id, 0);
        ck_assert_int_eq(inet_pton(AF_INET6, addr, &want.sin6_addr), 1);
        ck_assert_mem_eq(&sin6.sin6_addr, &want.sin6_addr, sizeof(want.sin6_addr));
        ck_assert(all_zero((const uint8_t *)ss + sizeof(sin6), sizeof(*ss) - sizeof(sin6)));
    }
}

/* Each strict prefix of a valid header: 0, *out zeroed, err empty. */
static void check_prefixes_need_more(const uint8_t *in, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        struct proxyproto pp;
        char err[128];
        memset(&pp, 0xa5, sizeof(pp));
        memset(err, 'x', sizeof(err));
        int r = proxyproto_parse(in, k, &pp, err, sizeof(err));
        ck_assert_msg(r == 0, "prefix of %zu bytes: %d (%s)", k, r, r < 0 ? err : "");
        ck_assert(all_zero(&pp, sizeof(pp)));
        ck_assert_str_eq(err, "");
    }
}

/* Parse in, then in + each trailer: same length, same result. */
static int parse_with_trailers(const uint8_t *in, size_t len, struct proxyproto *pp)
{
    char err[128];
    int r = proxyproto_parse(in, len, pp, err, sizeof(err));
    ck_assert_msg(r == (int)len, "whole header: %d (%s), want %zu", r, r < 0 ? err : "", len);
    ck_assert_str_eq(err, "");
    for (int t = 0; t < NELEM(trailers); t++) {
        uint8_t buf[PROXYPROTO_V2_MAX + 256];
        ck_assert_uint_le(len + trailers[t].len, sizeof(buf));
        memcpy(buf, in, len);
        memcpy(buf + len, trailers[t].in, trailers[t].len);
        struct proxyproto again;
        int r2 = proxyproto_parse(buf, len + trailers[t].len, &again, err, sizeof(err));
        ck_assert_msg(r2 == r, "with trailer %d: %d, want %d", t, r2, r);
        ck_assert_mem_eq(&again, pp, sizeof(again));
    }
    return r;
}

/* ---- valid headers -------------------------------------------------------- */

struct ok_case {
    const char *name;
    const uint8_t *in;
    size_t len;
    int version;
    int family; /* 0: has_addr must be 0 */
    const char *src, *dst;
    unsigned sport, dport;
};

static const struct ok_case ok_cases[] = {
    /* v1 */
    {"v1 TCP4", B("PROXY TCP4 192.0.2.1 198.51.100.2 56324 5432\r\n"), 1, AF_INET, "192.0.2.1",
     "198.51.100.2", 56324, 5432},
    {"v1 TCP4 extremes", B("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n"), 1, AF_INET, "0.0.0.0",
     "255.255.255.255", 0, 65535},
    {"v1 TCP6", B("PROXY TCP6 2001:db8::1 2001:db8::2 56324 5432\r\n"), 1, AF_INET6, "2001:db8::1",
     "2001:db8::2", 56324, 5432},
    {"v1 TCP6 upper case, full form", B("PROXY TCP6 2001:DB8:0:0:0:0:0:A 0:0:0:0:0:0:0:1 1 2\r\n"),
     1, AF_INET6, "2001:db8::a", "::1", 1, 2},
    {"v1 TCP6 mapped IPv4", B("PROXY TCP6 ::ffff:192.0.2.1 :: 0 1\r\n"), 1, AF_INET6,
     "::ffff:192.0.2.1", "::", 0, 1},
    {"v1 TCP6 longest text",
     B("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 1:2:3:4:5:6:7:8 65535 65535\r\n"),
     1, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "1:2:3:4:5:6:7:8", 65535, 65535},
    {"v1 UNKNOWN", B("PROXY UNKNOWN\r\n"), 1, 0, NULL, NULL, 0, 0},
    {"v1 UNKNOWN with addresses", B("PROXY UNKNOWN 192.0.2.1 198.51.100.2 56324 5432\r\n"), 1, 0,
     NULL, NULL, 0, 0},
    /* The spec: the receiver ignores whatever UNKNOWN is followed by. */
    {"v1 UNKNOWN then anything", B("PROXY UNKNOWNgarbage\x00\r\t\n\r\n"), 1, 0, NULL, NULL, 0, 0},
    {"v1 UNKNOWN longest (107)",
     B("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
       "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
     1, 0, NULL, NULL, 0, 0},

    /* v2 */
    {"v2 LOCAL", B(SIG "\x20\x00\x00\x00"), 2, 0, NULL, NULL, 0, 0},
    {"v2 LOCAL with an INET block",
     B(SIG "\x20\x11\x00\x0c"
           "\xc0\x00\x02\x01\xc6\x33\x64\x02"
           "\xdc\x04\x15\x38"),
     2, 0, NULL, NULL, 0, 0},
    /* The spec: for LOCAL the family byte is ignored. */
    {"v2 LOCAL, unknown family ignored",
     B(SIG "\x20\xff\x00\x02"
           "ab"),
     2, 0, NULL, NULL, 0, 0},
    {"v2 PROXY TCP4",
     B(SIG "\x21\x11\x00\x0c"
           "\xc0\x00\x02\x01\xc6\x33\x64\x02"
           "\xdc\x04\x15\x38"),
     2, AF_INET, "192.0.2.1", "198.51.100.2", 56324, 5432},
    {"v2 PROXY TCP4 + TLVs",
     B(SIG "\x21\x11\x00\x1a"
           "\xc0\x00\x02\x01\xc6\x33\x64\x02"
           "\xdc\x04\x15\x38"
           "\x04\x00\x02"
           "ab" /* NOOP */
           "\xea\x00\x06"
           "\x01vpce1"), /* AWS VPC endpoint */
     2, AF_INET, "192.0.2.1", "198.51.100.2", 56324, 5432},
    {"v2 PROXY TCP6",
     B(SIG "\x21\x21\x00\x24"
           "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
           "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
           "\xdc\x04\x15\x38"),
     2, AF_INET6, "2001:db8::1", "2001:db8::2", 56324, 5432},
    {"v2 PROXY TCP6 + TLV",
     B(SIG "\x21\x21\x00\x29"
           "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
           "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02"
           "\x00\x00\xff\xff"
           "\x04\x00\x02"
           "ab"),
     2, AF_INET6, "2001:db8::1", "2001:db8::2", 0, 65535},
    /* Accepted without addresses: the spec lets a receiver take these and
     * use the connection's own endpoints. */
    {"v2 PROXY UNSPEC", B(SIG "\x21\x00\x00\x00"), 2, 0, NULL, NULL, 0, 0},
    {"v2 PROXY INET over DGRAM",
     B(SIG "\x21\x12\x00\x0c"
           "\xc0\x00\x02\x01\xc6\x33\x64\x02"
           "\xdc\x04\x15\x38"),
     2, 0, NULL, NULL, 0, 0},
    {"v2 PROXY INET, transport UNSPEC",
     B(SIG "\x21\x10\x00\x0c"
           "\xc0\x00\x02\x01\xc6\x33\x64\x02"
           "\xdc\x04\x15\x38"),
     2, 0, NULL, NULL, 0, 0},
};

START_TEST(test_ok)
{
    const struct ok_case *tc = &ok_cases[_i];
    struct proxyproto pp;
    ck_assert_msg(tc->len > 0, "%s", tc->name);

    check_prefixes_need_more(tc->in, tc->len);
    parse_with_trailers(tc->in, tc->len, &pp);
    ck_assert_int_eq(pp.version, tc->version);
    if (tc->family == 0) {
        ck_assert_int_eq(pp.has_addr, 0);
        ck_assert(all_zero(&pp.src, sizeof(pp.src)));
        ck_assert(all_zero(&pp.dst, sizeof(pp.dst)));
    } else {
        ck_assert_int_eq(pp.has_addr, 1);
        check_addr(&pp.src, tc->family, tc->src, tc->sport);
        check_addr(&pp.dst, tc->family, tc->dst, tc->dport);
    }

    /* out and err are optional. */
    ck_assert_int_eq(proxyproto_parse(tc->in, tc->len, NULL, NULL, 0), (int)tc->len);
}
END_TEST

/* ---- invalid headers ------------------------------------------------------ */

struct bad_case {
    const char *name;
    const uint8_t *in;
    size_t len;
    size_t reject_at; /* the shortest prefix that is refused */
    const char *err;  /* a substring of the message */
};

#define V1_TCP4 "PROXY TCP4 1.2.3.4 5.6.7.8 "

static const struct bad_case bad_cases[] = {
    /* Not a header at all: refused on the first byte. */
    {"PostgreSQL SSLRequest", B(PG_SSLREQUEST), AT(""), "not a PROXY protocol header"},
    {"PostgreSQL StartupMessage", B("\x00\x00\x00\x17\x00\x03\x00\x00user\0alice\0\0"), AT(""),
     "not a PROXY"},
    {"TLS ClientHello", B("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"), AT(""), "not a PROXY"},
    {"HTTP", B("GET / HTTP/1.1\r\n"), AT(""), "not a PROXY"},
    {"lower-case proxy", B("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), AT(""), "not a PROXY"},
    {"P but not PROXY", B("POST / HTTP/1.1\r\n"), AT("P"), "not a PROXY"},
    {"v2 signature broken", B("\r\n\r\nX\r\nQUIT\n\x21\x00\x00\x00"), AT("\r\n\r\n"),
     "not a PROXY"},
    {"v2 signature, last byte wrong", B("\r\n\r\n\0\r\nQUIT\r\x21\x00\x00\x00"),
     AT("\r\n\r\n\0\r\nQUIT"), "not a PROXY"},

    /* v1 */
    {"v1 two spaces after PROXY", B("PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), AT("PROXY "),
     "protocol"},
    {"v1 protocol TCP5", B("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), AT("PROXY TCP"), "protocol"},
    {"v1 protocol lower case", B("PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), AT("PROXY "), "protocol"},
    {"v1 protocol UDP4", B("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), AT("PROXY U"), "protocol"},
    {"v1 UNKNOWN misspelt", B("PROXY UNKNOWM\r\n"), AT("PROXY UNKNOW"), "protocol"},
    {"v1 TCP4 without fields", B("PROXY TCP4\r\n"), AT("PROXY TCP4"), "protocol"},
    {"v1 two spaces between addresses", B("PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"),
     AT("PROXY TCP4 1.2.3.4 "), "destination address"},
    {"v1 space before CRLF", B(V1_TCP4 "1 2 \r\n"), AT(V1_TCP4 "1 2"), "destination port"},
    {"v1 five fields", B(V1_TCP4 "1 2 3\r\n"), AT(V1_TCP4 "1 2"), "destination port"},
    {"v1 too few fields", B(V1_TCP4 "1\r\n"), AT(V1_TCP4 "1"), "too few fields"},
    {"v1 LF without CR", B(V1_TCP4 "1 2\n"), AT(V1_TCP4 "1 2"), "destination port"},
    {"v1 CR CR LF", B(V1_TCP4 "1 2\r\r\n"), AT(V1_TCP4 "1 2\r"), "destination port"},
    {"v1 tab", B("PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n"), AT("PROXY TCP4 1.2.3.4"),
     "source address"},
    {"v1 octet 256", B("PROXY TCP4 192.0.2.256 5.6.7.8 1 2\r\n"), AT("PROXY TCP4 192.0.2.25"),
     "source address"},
    {"v1 octet with leading zero", B("PROXY TCP4 192.0.2.01 5.6.7.8 1 2\r\n"),
     AT("PROXY TCP4 192.0.2.0"), "source address"},
    {"v1 three octets", B("PROXY TCP4 192.0.2 5.6.7.8 1 2\r\n"), AT("PROXY TCP4 192.0.2"),
     "source address"},
    {"v1 five octets", B("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n"), AT("PROXY TCP4 1.2.3.4"),
     "source address"},
    {"v1 empty octet", B("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n"), AT("PROXY TCP4 1."),
     "source address"},
    {"v1 host name", B("PROXY TCP4 localhost 5.6.7.8 1 2\r\n"), AT("PROXY TCP4 "),
     "source address"},
    {"v1 IPv6 in TCP4", B("PROXY TCP4 ::1 ::1 1 2\r\n"), AT("PROXY TCP4 "), "source address"},
    {"v1 IPv4 in TCP6", B("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), AT("PROXY TCP6 1"), "source address"},
    {"v1 bad IPv4 destination", B("PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n"),
     AT("PROXY TCP4 1.2.3.4 5.6.7"), "destination address"},
    {"v1 IPv6 :::", B("PROXY TCP6 :::1 ::1 1 2\r\n"), AT("PROXY TCP6 ::"), "source address"},
    {"v1 IPv6 two gaps", B("PROXY TCP6 1::2::3 ::1 1 2\r\n"), AT("PROXY TCP6 1::2:"),
     "source address"},
    {"v1 IPv6 nine groups", B("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n"),
     AT("PROXY TCP6 1:2:3:4:5:6:7:8"), "source address"},
    {"v1 IPv6 gap for nothing", B("PROXY TCP6 1:2:3:4::5:6:7:8 ::1 1 2\r\n"),
     AT("PROXY TCP6 1:2:3:4::5:6:7"), "source address"},
    {"v1 IPv6 five hex digits", B("PROXY TCP6 12345::1 ::1 1 2\r\n"), AT("PROXY TCP6 1234"),
     "source address"},
    {"v1 IPv6 zone", B("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), AT("PROXY TCP6 fe80::1"),
     "source address"},
    {"v1 IPv6 lone trailing colon", B("PROXY TCP6 1:2:3:4:5:6:7: ::1 1 2\r\n"),
     AT("PROXY TCP6 1:2:3:4:5:6:7:"), "source address"},
    {"v1 IPv6 dotted quad too early", B("PROXY TCP6 1:2:3:4:5:1.2.3.4 ::1 1 2\r\n"),
     AT("PROXY TCP6 1:2:3:4:5:1"), "source address"},
    {"v1 port 65536", B(V1_TCP4 "65536 5432\r\n"), AT(V1_TCP4 "6553"), "source port"},
    {"v1 port 99999", B(V1_TCP4 "5432 99999\r\n"), AT(V1_TCP4 "5432 9999"), "destination port"},
    {"v1 port with +", B(V1_TCP4 "+5432 5432\r\n"), AT(V1_TCP4), "source port"},
    {"v1 port with -", B(V1_TCP4 "-1 5432\r\n"), AT(V1_TCP4), "source port"},
    {"v1 port with leading zero", B(V1_TCP4 "05432 5432\r\n"), AT(V1_TCP4 "0"), "source port"},
    {"v1 port 00", B(V1_TCP4 "1 00\r\n"), AT(V1_TCP4 "1 0"), "destination port"},
    {"v1 hex port", B(V1_TCP4 "0x10 5432\r\n"), AT(V1_TCP4 "0"), "source port"},
    {"v1 NUL in a field", B(V1_TCP4 "1\0 2\r\n"), AT(V1_TCP4 "1"), "source port"},

    /* v2 */
    {"v2 version 1", B(SIG "\x11\x11\x00\x0c"), AT(SIG), "version 1"},
    {"v2 version 3", B(SIG "\x31\x11\x00\x0c"), AT(SIG), "version 3"},
    {"v2 version 0", B(SIG "\x01\x11\x00\x0c"), AT(SIG), "version 0"},
    {"v2 command 2", B(SIG "\x22\x11\x00\x0c"), AT(SIG), "command 2"},
    {"v2 command 15", B(SIG "\x2f\x11\x00\x0c"), AT(SIG), "command 15"},
    {"v2 PROXY family 4", B(SIG "\x21\x41\x00\x0c"), AT(SIG "\x21"), "0x41"},
    {"v2 PROXY transport 3", B(SIG "\x21\x13\x00\x0c"), AT(SIG "\x21"), "0x13"},
    {"v2 INET block too short",
     B(SIG "\x21\x11\x00\x0b"
           "\xc0\x00\x02\x01\xc6\x33\x64\x02"
           "\xdc\x04\x15"),
     AT(SIG "\x21\x11\x00"), "too short for AF_INET (11 < 12"},
    {"v2 INET6 with an INET block",
     B(SIG "\x21\x21\x00\x0c"
           "\xc0\x00\x02\x01\xc6\x33\x64\x02"
           "\xdc\x04\x15\x38"),
     AT(SIG "\x21\x21\x00"), "too short for AF_INET6 (12 < 36"},
    {"v2 INET6 block one short", B(SIG "\x21\x21\x00\x23"), AT(SIG "\x21\x21\x00"),
     "too short for AF_INET6"},
    {"v2 UNIX block too short", B(SIG "\x21\x31\x00\x0c"), AT(SIG "\x21\x31\x00"),
     "too short for AF_UNIX"},
    {"v2 over-long", B(SIG "\x21\x11\x02\x01"), AT(SIG "\x21\x11\x02"), "longer than 528"},
    {"v2 LOCAL over-long", B(SIG "\x20\x00\xff\xff"), AT(SIG "\x20\x00\xff"), "longer than 528"},
};

START_TEST(test_bad)
{
    const struct bad_case *tc = &bad_cases[_i];
    ck_assert_msg(tc->reject_at >= 1 && tc->reject_at <= tc->len, "%s: bad row", tc->name);

    for (size_t k = 0; k <= tc->len; k++) {
        struct proxyproto pp;
        char err[128];
        memset(&pp, 0xa5, sizeof(pp));
        memset(err, 'x', sizeof(err));
        int r = proxyproto_parse(tc->in, k, &pp, err, sizeof(err));
        ck_assert(all_zero(&pp, sizeof(pp)));
        if (k < tc->reject_at) {
            ck_assert_msg(r == 0, "%s: prefix of %zu bytes gave %d (%s)", tc->name, k, r, err);
            ck_assert_str_eq(err, "");
        } else {
            ck_assert_msg(r == -1, "%s: prefix of %zu bytes gave %d", tc->name, k, r);
            ck_assert_msg(strstr(err, tc->err) != NULL, "%s: error \"%s\" lacks \"%s\"", tc->name,
                          err, tc->err);
        }
    }
    /* A NULL err is fine. */
    ck_assert_int_eq(proxyproto_parse(tc->in, tc->len, NULL, NULL, 0), -1);
}
END_TEST

/* ---- addresses against inet_pton ------------------------------------------ */

/* Whatever the C library accepts, the v1 parser accepts as the same address,
 * and the other way round. */
static const char *const v6_texts[] = {
    "::",
    "::1",
    "1::",
    "1:2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::",
    "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7::8",
    "1::2:3:4:5:6:7:8",
    "1::8",
    "0:0:0:0:0:0:0:0",
    "0000:00:0::",
    "FFFF::abcd",
    "::ffff:1.2.3.4",
    "::1.2.3.4",
    "1:2:3:4:5:6:1.2.3.4",
    "1:2:3:4:5::1.2.3.4",
    "1::1.2.3.4",
    "1:2:3:4:5:6::1.2.3.4",
    "1:2:3:4:5:1.2.3.4",
    "1:2:3:4:5:6:7:1.2.3.4",
    "::1.2.3",
    "::1.2.3.4.5",
    "::1.2.3.4:1",
    "::01.2.3.4",
    "::1.2.3.04",
    "::256.1.1.1",
    "::a.1.1.1",
    "::1a.1.1.1",
    "::.1.1.1",
    "12345::",
    "00000::",
    "g::",
    ":1::",
    "1:",
    ":1",
    ":",
    "1:::2",
    ":::",
    "1::2::3",
    "::1:",
    "1:2:3:4:5:6:7:8:",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "::1:2:3:4:5:6:7",
    "::1:2:3:4:5:6:7:8",
    "1.2.3.4",
};

static const char *const v4_texts[] = {
    "1.2.3.4",   "0.0.0.0",  "255.255.255.255", "256.1.1.1", "1.2.3",      "1.2.3.4.5",
    "01.2.3.4",  "1.2.3.00", "1..3.4",          ".1.2.3",    "1.2.3.",     "1.2.3.-4",
    "0x1.2.3.4", "1.2.3.4a", "10.0.0.1",        "0.0.0.255", "1.2.3.2550", "::1",
};

static void check_against_libc(int family, const char *text)
{
    char line[200];
    const char *other = family == AF_INET ? "1.2.3.4" : "::1";
    int n = snprintf(line, sizeof(line), "PROXY %s %s %s 1 2\r\n",
                     family == AF_INET ? "TCP4" : "TCP6", text, other);
    ck_assert(n > 0 && (size_t)n < sizeof(line));

    uint8_t want[16];
    bool valid = inet_pton(family, text, want) == 1;
    struct proxyproto pp;
    char err[128];
    int r = proxyproto_parse((const uint8_t *)line, (size_t)n, &pp, err, sizeof(err));
    ck_assert_msg(valid ? r == n : r == -1, "\"%s\": inet_pton says %s, parser %d (%s)", text,
                  valid ? "valid" : "invalid", r, err);
    if (!valid)
        return;
    check_prefixes_need_more((const uint8_t *)line, (size_t)n);
    if (family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, &pp.src, sizeof(sin));
        ck_assert_mem_eq(&sin.sin_addr, want, 4);
    } else {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, &pp.src, sizeof(sin6));
        ck_assert_mem_eq(&sin6.sin6_addr, want, 16);
    }
}

START_TEST(test_v6_text)
{
    check_against_libc(AF_INET6, v6_texts[_i]);
}
END_TEST

START_TEST(test_v4_text)
{
    check_against_libc(AF_INET, v4_texts[_i]);
}
END_TEST

/* ---- bounds ---------------------------------------------------------------- */

/* Feed a header that is refused for length: 0 up to limit - 1 bytes, -1
 * from limit on. */
static void check_refused_at(const uint8_t *in, size_t len, size_t limit, const char *msg)
{
    for (size_t k = 0; k <= len; k++) {
        char err[128];
        int r = proxyproto_parse(in, k, NULL, err, sizeof(err));
        if (k < limit) {
            ck_assert_msg(r == 0, "%zu bytes: %d (%s)", k, r, err);
        } else {
            ck_assert_msg(r == -1, "%zu bytes: %d", k, r);
            ck_assert_msg(strstr(err, msg) != NULL, "\"%s\" lacks \"%s\"", err, msg);
        }
    }
}

START_TEST(test_v1_length)
{
    /* 107 bytes with the CRLF: the longest allowed. */
    static const char longest[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
                                  "ffff:ffff:ffff:ffff:ffff:fff:1.2.3.4 65535 65535\r\n";
    ck_assert_uint_eq(strlen(longest), PROXYPROTO_V1_MAX);
    struct proxyproto pp;
    check_prefixes_need_more((const uint8_t *)longest, strlen(longest));
    ck_assert_int_eq(parse_with_trailers((const uint8_t *)longest, strlen(longest), &pp),
                     PROXYPROTO_V1_MAX);
    ck_assert_int_eq(pp.has_addr, 1);
    check_addr(&pp.dst, AF_INET6, "ffff:ffff:ffff:ffff:ffff:fff:1.2.3.4", 65535);

    /* One byte more, every field still valid: refused when byte 107 comes
     * without the line having ended. */
    static const char too_long[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
                                   "ffff:ffff:ffff:ffff:ffff:ffff:1.2.3.4 65535 65535\r\n";
    ck_assert_uint_eq(strlen(too_long), PROXYPROTO_V1_MAX + 1);
    check_refused_at((const uint8_t *)too_long, strlen(too_long), PROXYPROTO_V1_MAX,
                     "longer than 107");

    /* UNKNOWN: 107 with CRLF is fine; 107 bytes without a CRLF are not,
     * even if a CRLF follows. */
    uint8_t buf[PROXYPROTO_V1_MAX + 2];
    memset(buf, 'x', sizeof(buf));
    put(buf, "PROXY UNKNOWN ");
    put(buf + PROXYPROTO_V1_MAX - 2, "\r\n");
    check_prefixes_need_more(buf, PROXYPROTO_V1_MAX);
    ck_assert_int_eq(parse_with_trailers(buf, PROXYPROTO_V1_MAX, &pp), PROXYPROTO_V1_MAX);
    ck_assert_int_eq(pp.has_addr, 0);

    memset(buf, 'x', sizeof(buf));
    put(buf, "PROXY UNKNOWN ");
    put(buf + PROXYPROTO_V1_MAX - 1, "\r\n");
    check_refused_at(buf, sizeof(buf) - 1, PROXYPROTO_V1_MAX, "longer than 107");
    /* A CR as byte 107, its LF as byte 108. */
    check_refused_at(buf, sizeof(buf), PROXYPROTO_V1_MAX, "longer than 107");
}
END_TEST

START_TEST(test_v2_length)
{
    /* The largest header: PROXY TCP4 with 500 bytes of TLV. */
    uint8_t buf[PROXYPROTO_V2_MAX + 1];
    static const uint8_t head[] = SIG "\x21\x11\x02\x00"
                                      "\xc0\x00\x02\x01\xc6\x33\x64\x02"
                                      "\xdc\x04\x15\x38"
                                      "\x04\x01\xf1"; /* NOOP TLV, 497 bytes of value */
    memset(buf, 0x5a, sizeof(buf));
    memcpy(buf, head, sizeof(head) - 1);
    struct proxyproto pp;
    check_prefixes_need_more(buf, PROXYPROTO_V2_MAX);
    ck_assert_int_eq(parse_with_trailers(buf, PROXYPROTO_V2_MAX, &pp), PROXYPROTO_V2_MAX);
    ck_assert_int_eq(pp.has_addr, 1);
    check_addr(&pp.src, AF_INET, "192.0.2.1", 56324);

    /* One more byte of length: refused as soon as the length word is in. */
    buf[15] = 0x01;
    check_refused_at(buf, sizeof(buf), 16, "longer than 528");
}
END_TEST

START_TEST(test_v2_unix)
{
    /* PROXY over AF_UNIX: two 108-byte paths. Accepted, no TCP address. */
    uint8_t buf[16 + 216 + 8];
    static const uint8_t head[] = SIG "\x21\x31\x00\xd8";
    memset(buf, 0, sizeof(buf));
    memcpy(buf, head, sizeof(head) - 1);
    put(buf + 16, "/run/client.sock");
    struct proxyproto pp;
    check_prefixes_need_more(buf, 16 + 216);
    ck_assert_int_eq(parse_with_trailers(buf, 16 + 216, &pp), 16 + 216);
    ck_assert_int_eq(pp.version, 2);
    ck_assert_int_eq(pp.has_addr, 0);
    ck_assert(all_zero(&pp.src, sizeof(pp.src)));

    /* One byte short of the two paths. */
    buf[15] = 0xd7;
    check_refused_at(buf, sizeof(buf), 16, "too short for AF_UNIX (215 < 216");
}
END_TEST

START_TEST(test_null_args)
{
    struct proxyproto pp;
    char err[16];
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(proxyproto_parse(NULL, 0, &pp, err, sizeof(err)), 0);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(proxyproto_parse(NULL, 10, &pp, err, sizeof(err)), 0);
    ck_assert_int_eq(proxyproto_parse(NULL, 0, NULL, NULL, 0), 0);

    /* A short err buffer is truncated and terminated. */
    ck_assert_int_eq(proxyproto_parse(B(PG_SSLREQUEST), &pp, err, 5), -1);
    ck_assert_str_eq(err, "not ");
    /* errlen 0: err untouched. */
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(proxyproto_parse(B(PG_SSLREQUEST), &pp, err, 0), -1);
    ck_assert_int_eq(err[0], 'x');
}
END_TEST

Suite *proxyproto_suite(void)
{
    Suite *s = suite_create("proxyproto");

    TCase *tables = tcase_create("tables");
    tcase_add_loop_test(tables, test_ok, 0, NELEM(ok_cases));
    tcase_add_loop_test(tables, test_bad, 0, NELEM(bad_cases));
    suite_add_tcase(s, tables);

    TCase *text = tcase_create("address_text");
    tcase_add_loop_test(text, test_v6_text, 0, NELEM(v6_texts));
    tcase_add_loop_test(text, test_v4_text, 0, NELEM(v4_texts));
    suite_add_tcase(s, text);

    TCase *bounds = tcase_create("bounds");
    tcase_add_test(bounds, test_v1_length);
    tcase_add_test(bounds, test_v2_length);
    tcase_add_test(bounds, test_v2_unix);
    tcase_add_test(bounds, test_null_args);
    suite_add_tcase(s, bounds);

    return s;
}
