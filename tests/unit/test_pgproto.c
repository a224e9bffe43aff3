/*
 * test_pgproto.c - unit tests for the first-packet parser and the message
 * builders of src/pgproto.c (the later messages are test_pgmsg.c's).
 * Table-driven:
 * each table row is one Check test (tcase_add_loop_test), so a failure names
 * the row.
 *
 * Every row that expects a complete packet also checks that each proper
 * prefix of it is INCOMPLETE and that trailing (pipelined) bytes do not
 * change the answer; every INVALID row checks that more bytes keep it
 * INVALID. Those are the "decisions are final" rules the caller relies on.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pgproto.h"
#include "suites.h"

#define RAW(s) (const uint8_t *)(s), sizeof(s) - 1
#define STR(s) (s), sizeof(s) - 1

#define PROTO(maj, min) (((uint32_t)(maj) << 16) | (uint32_t)(min))

static const char *kind_name(enum pg_first_kind k)
{
    switch (k) {
    case PG_FIRST_INCOMPLETE:
        return "INCOMPLETE";
    case PG_FIRST_SSLREQUEST:
        return "SSLREQUEST";
    case PG_FIRST_GSSENCREQUEST:
        return "GSSENCREQUEST";
    case PG_FIRST_CANCEL:
        return "CANCEL";
    case PG_FIRST_STARTUP:
        return "STARTUP";
    case PG_FIRST_DIRECT_TLS:
        return "DIRECT_TLS";
    case PG_FIRST_PEER_CANCEL:
        return "PEER_CANCEL";
    case PG_FIRST_INVALID:
        return "INVALID";
    }
    return "?";
}

static bool is_complete_kind(enum pg_first_kind k)
{
    return k == PG_FIRST_SSLREQUEST || k == PG_FIRST_GSSENCREQUEST || k == PG_FIRST_CANCEL ||
           k == PG_FIRST_STARTUP;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/*
 * The checks shared by every table: parse buf[0..n), compare with the
 * expectation, then probe prefixes and suffixes. buf must have room for
 * n + 16 bytes (the suffix probe writes there).
 */
static void check_first(const char *name, uint8_t *buf, size_t n, enum pg_first_kind kind,
                        size_t len, const char *errpart)
{
    struct pg_first out;
    char err[256];

    memset(err, 'x', sizeof(err));
    enum pg_first_kind got = pg_parse_first(buf, n, &out, err, sizeof(err));
    ck_assert_msg(got == kind, "%s: got %s, want %s (err \"%s\")", name, kind_name(got),
                  kind_name(kind), err);
    ck_assert_msg(out.kind == got, "%s: out.kind differs from the return value", name);
    ck_assert_msg(memchr(err, 0, sizeof(err)) != NULL, "%s: err not NUL-terminated", name);
    if (kind == PG_FIRST_INVALID) {
        ck_assert_msg(err[0] != '\0', "%s: INVALID without a reason", name);
        if (errpart != NULL)
            ck_assert_msg(strstr(err, errpart) != NULL, "%s: err \"%s\" lacks \"%s\"", name, err,
                          errpart);
    } else {
        ck_assert_msg(err[0] == '\0', "%s: err \"%s\" set on success", name, err);
    }
    if (is_complete_kind(kind) || kind == PG_FIRST_DIRECT_TLS)
        ck_assert_msg(out.len == len, "%s: len %zu, want %zu", name, out.len, len);
    if (kind != PG_FIRST_STARTUP) {
        ck_assert_uint_eq(out.startup.nparams, 0);
        ck_assert_str_eq(out.startup.user, "");
    }

    if (is_complete_kind(kind)) {
        /* Every proper prefix of a good packet only asks for more bytes. */
        for (size_t cut = 0; cut < len; cut++) {
            struct pg_first p;
            enum pg_first_kind k = pg_parse_first(buf, cut, &p, NULL, 0);
            ck_assert_msg(k == PG_FIRST_INCOMPLETE, "%s: prefix %zu gave %s", name, cut,
                          kind_name(k));
        }
    }
    if (is_complete_kind(kind) || kind == PG_FIRST_INVALID || kind == PG_FIRST_DIRECT_TLS) {
        /* Pipelined bytes after the decision change nothing. */
        static const uint8_t junk[16] = "\0\x16junk\xff\xff\0\0\0\x08\x04\xd2\x16\x2f";
        memcpy(buf + n, junk, sizeof(junk));
        struct pg_first more;
        enum pg_first_kind k = pg_parse_first(buf, n + sizeof(junk), &more, NULL, 0);
        ck_assert_msg(k == kind, "%s: trailing bytes turned %s into %s", name, kind_name(kind),
                      kind_name(k));
        if (kind != PG_FIRST_INVALID) {
            ck_assert_uint_eq(more.len, out.len);
            ck_assert_uint_eq(more.code, out.code);
            ck_assert_int_eq(memcmp(&more.startup, &out.startup, sizeof(out.startup)), 0);
        }
    }
}

/* ---- raw byte strings --------------------------------------------------- */

struct raw_case {
    const char *name;
    const uint8_t *bytes;
    size_t n;
    enum pg_first_kind kind;
    size_t len;
    const char *err;
};

static const struct raw_case raw_cases[] = {
    {"empty", RAW(""), PG_FIRST_INCOMPLETE, 0, NULL},
    {"one zero byte", RAW("\0"), PG_FIRST_INCOMPLETE, 0, NULL},
    {"three bytes", RAW("\0\0\0"), PG_FIRST_INCOMPLETE, 0, NULL},
    {"length word only", RAW("\0\0\0\x08"), PG_FIRST_INCOMPLETE, 0, NULL},
    {"sslrequest 7 of 8 bytes", RAW("\0\0\0\x08\x04\xd2\x16"), PG_FIRST_INCOMPLETE, 0, NULL},
    {"direct tls, 1 byte", RAW("\x16"), PG_FIRST_DIRECT_TLS, 0, NULL},
    {"direct tls, clienthello start", RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
     PG_FIRST_DIRECT_TLS, 0, NULL},
    {"sslrequest", RAW("\0\0\0\x08\x04\xd2\x16\x2f"), PG_FIRST_SSLREQUEST, 8, NULL},
    {"gssencrequest", RAW("\0\0\0\x08\x04\xd2\x16\x30"), PG_FIRST_GSSENCREQUEST, 8, NULL},
    {"sslrequest length 9, 8 bytes there", RAW("\0\0\0\x09\x04\xd2\x16\x2f"), PG_FIRST_INVALID, 0,
     "SSLRequest has length 9"},
    {"sslrequest length 12", RAW("\0\0\0\x0c\x04\xd2\x16\x2f\0\0\0\0"), PG_FIRST_INVALID, 0,
     "SSLRequest has length 12"},
    {"gssencrequest length 16", RAW("\0\0\0\x10\x04\xd2\x16\x30"), PG_FIRST_INVALID, 0,
     "GSSENCRequest has length 16"},
    {"length 0", RAW("\0\0\0\0"), PG_FIRST_INVALID, 0, "invalid length of startup packet: 0"},
    {"length 7", RAW("\0\0\0\x07\0\3\0"), PG_FIRST_INVALID, 0,
     "invalid length of startup packet: 7"},
    {"length 10001 rejected after 4 bytes", RAW("\0\0\x27\x11"), PG_FIRST_INVALID, 0,
     "invalid length of startup packet: 10001"},
    {"length 10000 is fine so far", RAW("\0\0\x27\x10\0\3\0\0user\0"), PG_FIRST_INCOMPLETE, 0,
     NULL},
    {"length 0xffffffff", RAW("\xff\xff\xff\xff"), PG_FIRST_INVALID, 0,
     "invalid length of startup packet: 4294967295"},
    {"length 0x80000000", RAW("\x80\0\0\0\0\3\0\0"), PG_FIRST_INVALID, 0, "invalid length"},
    {"http request", RAW("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), PG_FIRST_INVALID, 0,
     "invalid length"},
    {"tls alert byte 0x15", RAW("\x15\x03\x03\x00\x02\x02\x28"), PG_FIRST_INVALID, 0,
     "invalid length"},
    {"garbage ff", RAW("\xff"), PG_FIRST_INCOMPLETE, 0, NULL},
    {"request code 1234.5681", RAW("\0\0\0\x08\x04\xd2\x16\x31"), PG_FIRST_INVALID, 0,
     "unsupported request code 80877105"},
    {"request code 1234.0", RAW("\0\0\0\x08\x04\xd2\0\0"), PG_FIRST_INVALID, 0,
     "unsupported request code 80871424"},
    {"protocol 2.0", RAW("\0\0\0\x09\0\2\0\0\0"), PG_FIRST_INVALID, 0,
     "unsupported frontend protocol 2.0: pg-tls-proxy speaks protocol 3"},
    {"protocol 4.0", RAW("\0\0\0\x09\0\4\0\0\0"), PG_FIRST_INVALID, 0,
     "unsupported frontend protocol 4.0"},
    {"protocol 0.0", RAW("\0\0\0\x09\0\0\0\0\0"), PG_FIRST_INVALID, 0,
     "unsupported frontend protocol 0.0"},
    {"protocol 65535.65535", RAW("\0\0\0\x09\xff\xff\xff\xff\0"), PG_FIRST_INVALID, 0,
     "unsupported frontend protocol 65535.65535"},
    {"protocol 2.0 known bad before complete", RAW("\0\0\x01\0\0\2\0\0"), PG_FIRST_INVALID, 0,
     "unsupported frontend protocol 2.0"},
    {"cancel length 8", RAW("\0\0\0\x08\x04\xd2\x16\x2e"), PG_FIRST_INVALID, 0,
     "CancelRequest has length 8"},
    {"cancel 12 of 16 bytes", RAW("\0\0\0\x10\x04\xd2\x16\x2e\0\0\x30\x39"), PG_FIRST_INCOMPLETE, 0,
     NULL},
    {"cancel protocol 3.0", RAW("\0\0\0\x10\x04\xd2\x16\x2e\0\0\x30\x39\xde\xad\xbe\xef"),
     PG_FIRST_CANCEL, 16, NULL},
    {"startup length 8, no terminator", RAW("\0\0\0\x08\0\3\0\0"), PG_FIRST_INVALID, 0,
     "startup packet parameter list is not terminated"},
    {"startup, terminator only", RAW("\0\0\0\x09\0\3\0\0\0"), PG_FIRST_STARTUP, 9, NULL},
    {"startup 3.0 user postgres", RAW("\0\0\0\x17\0\3\0\0user\0postgres\0\0"), PG_FIRST_STARTUP, 23,
     NULL},
    {"startup length 10000 bytes after terminator", RAW("\0\0\x27\x10\0\3\0\0user\0a\0\0"),
     PG_FIRST_INVALID, 0, "data after the parameter list terminator (9984 bytes)"},
};

START_TEST(test_raw)
{
    const struct raw_case *tc = &raw_cases[_i];
    uint8_t buf[128];
    ck_assert_uint_le(tc->n + 16, sizeof(buf));
    memcpy(buf, tc->bytes, tc->n);
    check_first(tc->name, buf, tc->n, tc->kind, tc->len, tc->err);
}
END_TEST

/* ---- StartupMessages built from a parameter blob ------------------------ */

struct startup_case {
    const char *name;
    uint32_t proto;
    const char *params; /* the bytes after the protocol word */
    size_t plen;
    int len_adj; /* added to the correct length word */
    enum pg_first_kind kind;
    const char *err;
    const char *user, *database, *appname;
    unsigned nparams;
};

static const struct startup_case startup_cases[] = {
    {"3.0 user and database", PROTO(3, 0), STR("user\0alice\0database\0shop\0\0"), 0,
     PG_FIRST_STARTUP, NULL, "alice", "shop", "", 2},
    {"3.2 user and database", PROTO(3, 2), STR("user\0alice\0database\0shop\0\0"), 0,
     PG_FIRST_STARTUP, NULL, "alice", "shop", "", 2},
    {"3.99 minor passes through", PROTO(3, 99), STR("user\0alice\0\0"), 0, PG_FIRST_STARTUP, NULL,
     "alice", "", "", 1},
    {"3.65535 minor passes through", PROTO(3, 65535), STR("user\0alice\0\0"), 0, PG_FIRST_STARTUP,
     NULL, "alice", "", "", 1},
    {"application_name", PROTO(3, 0), STR("user\0u\0application_name\0psql\0\0"), 0,
     PG_FIRST_STARTUP, NULL, "u", "", "psql", 2},
    {"unknown parameters", PROTO(3, 0),
     STR("user\0bob\0options\0-c geqo=off\0client_encoding\0UTF8\0DateStyle\0ISO\0\0"), 0,
     PG_FIRST_STARTUP, NULL, "bob", "", "", 4},
    {"_pq_ protocol options", PROTO(3, 2),
     STR("user\0bob\0_pq_.command_compression\0on\0_pq_.x\0\0\0"), 0, PG_FIRST_STARTUP, NULL, "bob",
     "", "", 3},
    {"replication", PROTO(3, 0), STR("user\0r\0replication\0database\0\0"), 0, PG_FIRST_STARTUP,
     NULL, "r", "", "", 2},
    {"empty values", PROTO(3, 0), STR("user\0\0database\0\0\0"), 0, PG_FIRST_STARTUP, NULL, "", "",
     "", 2},
    {"repeated user, last wins", PROTO(3, 0), STR("user\0a\0user\0b\0\0"), 0, PG_FIRST_STARTUP,
     NULL, "b", "", "", 2},
    {"names are case-sensitive", PROTO(3, 0), STR("USER\0a\0Database\0b\0\0"), 0, PG_FIRST_STARTUP,
     NULL, "", "", "", 2},
    {"prefix of a known name", PROTO(3, 0), STR("use\0a\0users\0b\0\0"), 0, PG_FIRST_STARTUP, NULL,
     "", "", "", 2},
    {"no terminator", PROTO(3, 0), STR("user\0alice\0"), 0, PG_FIRST_INVALID,
     "startup packet parameter list is not terminated", NULL, NULL, NULL, 0},
    {"truncated value", PROTO(3, 0), STR("user\0alice"), 0, PG_FIRST_INVALID,
     "startup packet value of parameter \"user\" is not terminated", NULL, NULL, NULL, 0},
    {"name without value", PROTO(3, 0), STR("user\0"), 0, PG_FIRST_INVALID,
     "startup packet parameter \"user\" has no value", NULL, NULL, NULL, 0},
    {"name not terminated", PROTO(3, 0), STR("user"), 0, PG_FIRST_INVALID,
     "startup packet parameter name at offset 8 is not terminated", NULL, NULL, NULL, 0},
    {"second name not terminated", PROTO(3, 0), STR("user\0a\0data"), 0, PG_FIRST_INVALID,
     "name at offset 15 is not terminated", NULL, NULL, NULL, 0},
    {"bytes after terminator", PROTO(3, 0), STR("user\0a\0\0junk"), 0, PG_FIRST_INVALID,
     "data after the parameter list terminator (4 bytes)", NULL, NULL, NULL, 0},
    {"double terminator", PROTO(3, 0), STR("user\0a\0\0\0"), 0, PG_FIRST_INVALID,
     "data after the parameter list terminator (1 bytes)", NULL, NULL, NULL, 0},
    {"empty name first", PROTO(3, 0), STR("\0alice\0\0"), 0, PG_FIRST_INVALID,
     "data after the parameter list terminator (7 bytes)", NULL, NULL, NULL, 0},
    /* Length word claims more than is there, and the terminator we do see
     * is then not the last byte: known bad without waiting. */
    {"length word 5 too long", PROTO(3, 0), STR("user\0a\0\0"), 5, PG_FIRST_INVALID,
     "data after the parameter list terminator (5 bytes)", NULL, NULL, NULL, 0},
    /* Length word shorter than the parameters: the packet ends inside a value. */
    {"length word 3 too short", PROTO(3, 0), STR("user\0alice\0\0"), -3, PG_FIRST_INVALID,
     "value of parameter \"user\" is not terminated", NULL, NULL, NULL, 0},
    {"length word 1 too short", PROTO(3, 0), STR("user\0alice\0\0"), -1, PG_FIRST_INVALID,
     "parameter list is not terminated", NULL, NULL, NULL, 0},
    {"length word 2 too short", PROTO(3, 0), STR("user\0alice\0\0"), -2, PG_FIRST_INVALID,
     "value of parameter \"user\" is not terminated", NULL, NULL, NULL, 0},
    {"bad name sanitised in err", PROTO(3, 0), STR("us\"er\n\0"), 0, PG_FIRST_INVALID,
     "parameter \"us?er?\" has no value", NULL, NULL, NULL, 0},
};

START_TEST(test_startup)
{
    const struct startup_case *tc = &startup_cases[_i];
    uint8_t buf[256];
    size_t n = 8 + tc->plen;
    ck_assert_uint_le(n + 16, sizeof(buf));
    put_be32(buf, (uint32_t)((long)n + tc->len_adj));
    put_be32(buf + 4, tc->proto);
    memcpy(buf + 8, tc->params, tc->plen);
    check_first(tc->name, buf, n, tc->kind, n, tc->err);

    if (tc->kind == PG_FIRST_STARTUP) {
        struct pg_first out;
        pg_parse_first(buf, n, &out, NULL, 0);
        ck_assert_uint_eq(out.code, tc->proto);
        ck_assert_uint_eq(out.startup.proto, tc->proto);
        ck_assert_str_eq(out.startup.user, tc->user);
        ck_assert_str_eq(out.startup.database, tc->database);
        ck_assert_str_eq(out.startup.application_name, tc->appname);
        ck_assert_uint_eq(out.startup.nparams, tc->nparams);
    }
}
END_TEST

/* ---- CancelRequest key lengths ------------------------------------------ */

struct cancel_case {
    size_t keylen;
    enum pg_first_kind kind;
};

static const struct cancel_case cancel_cases[] = {
    {0, PG_FIRST_INVALID},  {3, PG_FIRST_INVALID},   {4, PG_FIRST_CANCEL},
    {8, PG_FIRST_CANCEL},   {32, PG_FIRST_CANCEL},   {255, PG_FIRST_CANCEL},
    {256, PG_FIRST_CANCEL}, {257, PG_FIRST_INVALID}, {1000, PG_FIRST_INVALID},
};

START_TEST(test_cancel)
{
    const struct cancel_case *tc = &cancel_cases[_i];
    uint8_t buf[12 + 1000 + 16];
    size_t n = 12 + tc->keylen;
    char name[64];

    put_be32(buf, (uint32_t)n);
    put_be32(buf + 4, PG_CANCELREQUEST_CODE);
    put_be32(buf + 8, 4242); /* backend pid */
    for (size_t i = 0; i < tc->keylen; i++)
        buf[12 + i] = (uint8_t)(i * 37 + 1);
    snprintf(name, sizeof(name), "cancel, %zu-byte key", tc->keylen);
    check_first(name, buf, n, tc->kind, n, "CancelRequest has length");
    if (tc->kind == PG_FIRST_CANCEL) {
        struct pg_first out;
        pg_parse_first(buf, n, &out, NULL, 0);
        ck_assert_uint_eq(out.code, PG_CANCELREQUEST_CODE);
    }
}
END_TEST

/* ---- single tests ------------------------------------------------------- */

/* A realistic libpq 3.2 start-up, cut at every offset. */
START_TEST(test_startup_every_truncation)
{
    static const char params[] = "user\0alice\0database\0shop\0application_name\0psql\0"
                                 "client_encoding\0UTF8\0_pq_.test\0x\0";
    uint8_t buf[256];
    size_t n = 8 + sizeof(params); /* sizeof counts the final NUL: the terminator */
    put_be32(buf, (uint32_t)n);
    put_be32(buf + 4, PROTO(3, 2));
    memcpy(buf + 8, params, sizeof(params));

    for (size_t cut = 0; cut < n; cut++) {
        struct pg_first out;
        char err[64];
        enum pg_first_kind k = pg_parse_first(buf, cut, &out, err, sizeof(err));
        ck_assert_msg(k == PG_FIRST_INCOMPLETE, "cut at %zu of %zu: %s (%s)", cut, n, kind_name(k),
                      err);
        ck_assert_str_eq(err, "");
        if (cut >= 4)
            ck_assert_uint_eq(out.len, n); /* how much the caller waits for */
    }
    struct pg_first out;
    ck_assert_int_eq(pg_parse_first(buf, n, &out, NULL, 0), PG_FIRST_STARTUP);
    ck_assert_uint_eq(out.len, n);
    ck_assert_uint_eq(out.startup.nparams, 5);
    ck_assert_str_eq(out.startup.user, "alice");
    ck_assert_str_eq(out.startup.database, "shop");
    ck_assert_str_eq(out.startup.application_name, "psql");
}
END_TEST

/* The caller must see that bytes follow an SSLRequest (CVE-2021-23214): the
 * parser reports len 8 and leaves the rest alone. */
START_TEST(test_sslrequest_pipelined)
{
    static const uint8_t pkt[] = "\0\0\0\x08\x04\xd2\x16\x2f"
                                 "\0\0\0\x17\0\3\0\0user\0postgres\0\0";
    struct pg_first out;
    ck_assert_int_eq(pg_parse_first(pkt, sizeof(pkt) - 1, &out, NULL, 0), PG_FIRST_SSLREQUEST);
    ck_assert_uint_eq(out.len, 8);
    ck_assert_uint_eq(out.code, PG_SSLREQUEST_CODE);
    ck_assert_uint_gt(sizeof(pkt) - 1, out.len);

    /* ... and the remainder is a packet of its own. */
    ck_assert_int_eq(pg_parse_first(pkt + out.len, sizeof(pkt) - 1 - out.len, &out, NULL, 0),
                     PG_FIRST_STARTUP);
    ck_assert_str_eq(out.startup.user, "postgres");

    static const uint8_t tls[] = "\0\0\0\x08\x04\xd2\x16\x2f\x16\x03\x01";
    ck_assert_int_eq(pg_parse_first(tls, sizeof(tls) - 1, &out, NULL, 0), PG_FIRST_SSLREQUEST);
    ck_assert_uint_eq(out.len, 8);
}
END_TEST

START_TEST(test_sanitise)
{
    static const char params[] = "user\0a\"b\\c\x01\x7f\xc3\xa9 d~\0"
                                 "database\0x\nlevel=fatal msg=\"owned\"\0"
                                 "application_name\0"
                                 "0123456789012345678901234567890123456789012345678901234567890123"
                                 "456789\0";
    uint8_t buf[256];
    size_t n = 8 + sizeof(params);
    put_be32(buf, (uint32_t)n);
    put_be32(buf + 4, PROTO(3, 0));
    memcpy(buf + 8, params, sizeof(params));

    struct pg_first out;
    ck_assert_int_eq(pg_parse_first(buf, n, &out, NULL, 0), PG_FIRST_STARTUP);
    ck_assert_str_eq(out.startup.user, "a?b?c???? d~");
    ck_assert_str_eq(out.startup.database, "x?level=fatal msg=?owned?");
    ck_assert_uint_eq(strlen(out.startup.application_name), PG_LOGVAL_MAX - 1);
    ck_assert_int_eq(memcmp(out.startup.application_name,
                            "012345678901234567890123456789012345678901234567890123456789012",
                            PG_LOGVAL_MAX - 1),
                     0);
    ck_assert_uint_eq(out.startup.nparams, 3);

    /* The packet itself is not touched: what is forwarded is what came in. */
    ck_assert_int_eq(memcmp(buf + 8, params, sizeof(params)), 0);
}
END_TEST

/* Truncation at and around PG_LOGVAL_MAX - 1, for each recorded parameter. */
START_TEST(test_sanitise_lengths)
{
    static const char *const names[] = {"user", "database", "application_name"};
    for (size_t which = 0; which < 3; which++) {
        for (size_t vlen = 0; vlen <= PG_LOGVAL_MAX + 2; vlen++) {
            uint8_t buf[256];
            size_t nlen = strlen(names[which]);
            size_t n = 8 + nlen + 1 + vlen + 1 + 1;
            put_be32(buf, (uint32_t)n);
            put_be32(buf + 4, PROTO(3, 0));
            memcpy(buf + 8, names[which], nlen + 1);
            memset(buf + 8 + nlen + 1, 'v', vlen);
            buf[8 + nlen + 1 + vlen] = 0;
            buf[8 + nlen + 1 + vlen + 1] = 0;

            struct pg_first out;
            ck_assert_int_eq(pg_parse_first(buf, n, &out, NULL, 0), PG_FIRST_STARTUP);
            const char *got = which == 0   ? out.startup.user
                              : which == 1 ? out.startup.database
                                           : out.startup.application_name;
            size_t want = vlen < PG_LOGVAL_MAX - 1 ? vlen : PG_LOGVAL_MAX - 1;
            ck_assert_msg(strlen(got) == want, "%s, %zu bytes: logged %zu, want %zu", names[which],
                          vlen, strlen(got), want);
            ck_assert_uint_eq(out.startup.nparams, 1);
        }
    }
}
END_TEST

START_TEST(test_err_buffer)
{
    static const uint8_t bad[] = "\0\0\0\x08\0\2\0\0";
    static const uint8_t good[] = "\0\0\0\x08\x04\xd2\x16\x2f";
    struct pg_first out;
    char err[16];

    /* err may be NULL, and so may out. */
    ck_assert_int_eq(pg_parse_first(bad, 8, &out, NULL, 0), PG_FIRST_INVALID);
    ck_assert_int_eq(pg_parse_first(bad, 8, NULL, NULL, 0), PG_FIRST_INVALID);
    ck_assert_int_eq(pg_parse_first(good, 8, NULL, err, sizeof(err)), PG_FIRST_SSLREQUEST);

    /* Truncated, NUL-terminated, never past errlen. */
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(pg_parse_first(bad, 8, &out, err, 10), PG_FIRST_INVALID);
    ck_assert_str_eq(err, "unsupport");
    ck_assert_int_eq(err[10], 'x');

    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(pg_parse_first(bad, 8, &out, err, 1), PG_FIRST_INVALID);
    ck_assert_int_eq(err[0], '\0');
    ck_assert_int_eq(err[1], 'x');

    /* errlen 0: err not touched at all. */
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(pg_parse_first(bad, 8, &out, err, 0), PG_FIRST_INVALID);
    ck_assert_int_eq(err[0], 'x');

    /* A success clears a stale message. */
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(pg_parse_first(good, 8, &out, err, sizeof(err)), PG_FIRST_SSLREQUEST);
    ck_assert_str_eq(err, "");

    /* buf NULL with len 0 is just "nothing yet". */
    ck_assert_int_eq(pg_parse_first(NULL, 0, &out, err, sizeof(err)), PG_FIRST_INCOMPLETE);
}
END_TEST

/* ---- builders ----------------------------------------------------------- */

START_TEST(test_build_sslrequest)
{
    static const uint8_t want[8] = {0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f};
    uint8_t got[8];
    memset(got, 0xaa, sizeof(got));
    pg_build_sslrequest(got);
    ck_assert_mem_eq(got, want, sizeof(want));

    struct pg_first out;
    ck_assert_int_eq(pg_parse_first(got, sizeof(got), &out, NULL, 0), PG_FIRST_SSLREQUEST);
}
END_TEST

START_TEST(test_build_error_golden)
{
    static const uint8_t want[] = "E\x00\x00\x00\x1f"
                                  "SFATAL\0"
                                  "VFATAL\0"
                                  "C08P01\0"
                                  "Mbad\0"
                                  "\0";
    uint8_t got[64];
    memset(got, 0xaa, sizeof(got));
    size_t n = pg_build_error(got, sizeof(got), "FATAL", "08P01", "bad", NULL);
    ck_assert_uint_eq(n, sizeof(want) - 1);
    ck_assert_uint_eq(n, 32);
    ck_assert_mem_eq(got, want, n);
    ck_assert_uint_eq(got[n], 0xaa);

    /* An empty hint is no hint. */
    memset(got, 0xaa, sizeof(got));
    n = pg_build_error(got, sizeof(got), "FATAL", "08P01", "bad", "");
    ck_assert_uint_eq(n, 32);
    ck_assert_mem_eq(got, want, n);
}
END_TEST

START_TEST(test_build_error_hint_golden)
{
    static const uint8_t want[] = "E\x00\x00\x00\x3d"
                                  "SFATAL\0"
                                  "VFATAL\0"
                                  "C28000\0"
                                  "MTLS required\0"
                                  "Huse sslmode=require\0"
                                  "\0";
    uint8_t got[128];
    size_t n =
        pg_build_error(got, sizeof(got), "FATAL", "28000", "TLS required", "use sslmode=require");
    ck_assert_uint_eq(n, sizeof(want) - 1);
    ck_assert_uint_eq(n, 62);
    ck_assert_mem_eq(got, want, n);

    /* An empty message is allowed. */
    static const uint8_t want_empty[] = "E\x00\x00\x00\x1c"
                                        "SERROR\0"
                                        "VERROR\0"
                                        "CXX000\0"
                                        "M\0"
                                        "\0";
    n = pg_build_error(got, sizeof(got), "ERROR", "XX000", "", NULL);
    ck_assert_uint_eq(n, sizeof(want_empty) - 1);
    ck_assert_mem_eq(got, want_empty, n);
}
END_TEST

START_TEST(test_build_error_cap)
{
    uint8_t got[64];

    /* Exactly enough room works; one byte less returns 0 and writes nothing. */
    ck_assert_uint_eq(pg_build_error(got, 32, "FATAL", "08P01", "bad", NULL), 32);
    memset(got, 0xaa, sizeof(got));
    ck_assert_uint_eq(pg_build_error(got, 31, "FATAL", "08P01", "bad", NULL), 0);
    for (size_t i = 0; i < sizeof(got); i++)
        ck_assert_uint_eq(got[i], 0xaa);
    ck_assert_uint_eq(pg_build_error(got, 0, "FATAL", "08P01", "bad", NULL), 0);
    ck_assert_uint_eq(
        pg_build_error(got, 61, "FATAL", "28000", "TLS required", "use sslmode=require"), 0);
    ck_assert_uint_eq(pg_build_error(NULL, 64, "FATAL", "08P01", "bad", NULL), 0);
}
END_TEST

static const char *const bad_sqlstates[] = {
    "08p01", "0800", "080011", "", "08 01", "08P0\n", "-8P01", "08P0!",
};

START_TEST(test_build_error_bad_args)
{
    uint8_t got[64];
    memset(got, 0xaa, sizeof(got));
    ck_assert_uint_eq(pg_build_error(got, sizeof(got), "FATAL", bad_sqlstates[_i], "m", NULL), 0);
    ck_assert_uint_eq(got[0], 0xaa);
}
END_TEST

START_TEST(test_build_error_null_args)
{
    uint8_t got[64];
    ck_assert_uint_eq(pg_build_error(got, sizeof(got), "FATAL", NULL, "m", NULL), 0);
    ck_assert_uint_eq(pg_build_error(got, sizeof(got), NULL, "08P01", "m", NULL), 0);
    ck_assert_uint_eq(pg_build_error(got, sizeof(got), "FATAL", "08P01", NULL, NULL), 0);
    /* Every documented SQLSTATE the proxy sends is accepted. */
    static const char *const ok[] = {"08P01", "28000", "53300", "57P01",
                                     "57P03", "08006", "08001", "XX000"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_uint_gt(pg_build_error(got, sizeof(got), "FATAL", ok[i], "m", NULL), 0);
}
END_TEST

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

Suite *pgproto_suite(void)
{
    Suite *s = suite_create("pgproto");

    TCase *parse = tcase_create("parse_first");
    tcase_add_loop_test(parse, test_raw, 0, NELEM(raw_cases));
    tcase_add_loop_test(parse, test_startup, 0, NELEM(startup_cases));
    tcase_add_loop_test(parse, test_cancel, 0, NELEM(cancel_cases));
    tcase_add_test(parse, test_startup_every_truncation);
    tcase_add_test(parse, test_sslrequest_pipelined);
    tcase_add_test(parse, test_sanitise);
    tcase_add_test(parse, test_sanitise_lengths);
    tcase_add_test(parse, test_err_buffer);
    suite_add_tcase(s, parse);

    TCase *build = tcase_create("build");
    tcase_add_test(build, test_build_sslrequest);
    tcase_add_test(build, test_build_error_golden);
    tcase_add_test(build, test_build_error_hint_golden);
    tcase_add_test(build, test_build_error_cap);
    tcase_add_loop_test(build, test_build_error_bad_args, 0, NELEM(bad_sqlstates));
    tcase_add_test(build, test_build_error_null_args);
    suite_add_tcase(s, build);

    return s;
}
