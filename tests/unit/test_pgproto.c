/*
 * test_pgproto.c - unit tests for the first-packet parser, the message
 * builders and the readers of later messages (framing, BackendKeyData,
 * CancelRequest, Authentication, SASL) in src/pgproto.c. Table-driven:
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

/* ---- messages after the StartupMessage ---------------------------------- */

/* Frame body as one message of the given type into out; returns its size. */
static size_t frame(uint8_t type, const void *body, size_t blen, uint8_t *out)
{
    out[0] = type;
    put_be32(out + 1, (uint32_t)(blen + 4));
    if (blen > 0)
        memcpy(out + 5, body, blen);
    return 5 + blen;
}

struct header_case {
    const char *name;
    const uint8_t *bytes;
    size_t n;
    size_t max_total;
    int want;
    uint8_t type;
    size_t total;
};

static const struct header_case header_cases[] = {
    {"empty", RAW(""), 8192, 0, 0, 0},
    {"type byte only", RAW("Z"), 8192, 0, 0, 0},
    {"4 of 5 header bytes", RAW("Z\0\0\0"), 8192, 0, 0, 0},
    {"short header, length already bad", RAW("Z\0\0\0"), 1, 0, 0, 0},
    {"ReadyForQuery complete", RAW("Z\0\0\0\x05I"), 8192, 1, 'Z', 6},
    {"ReadyForQuery plus next message", RAW("Z\0\0\0\x05IZ\0\0\0\x05I"), 8192, 1, 'Z', 6},
    {"header only, body to come", RAW("D\0\0\0\x64"), 8192, 1, 'D', 101},
    {"empty body (length 4)", RAW("c\0\0\0\x04"), 8192, 1, 'c', 5},
    {"length 0", RAW("Z\0\0\0\0"), 8192, -1, 0, 0},
    {"length 3", RAW("Z\0\0\0\x03"), 8192, -1, 0, 0},
    {"length 0x80000000", RAW("D\x80\0\0\0"), 8192, -1, 0, 0},
    {"length 0xffffffff", RAW("D\xff\xff\xff\xff"), 8192, -1, 0, 0},
    {"total equals max_total", RAW("D\0\0\0\x63"), 100, 1, 'D', 100},
    {"total one over max_total", RAW("D\0\0\0\x64"), 100, -1, 0, 0},
    {"smallest message, max_total 5", RAW("c\0\0\0\x04"), 5, 1, 'c', 5},
    {"smallest message, max_total 4", RAW("c\0\0\0\x04"), 4, -1, 0, 0},
    {"max_total 0", RAW("c\0\0\0\x04"), 0, -1, 0, 0},
    {"length 0xffffffff, unbounded", RAW("D\xff\xff\xff\xff"), SIZE_MAX, 1, 'D',
     (size_t)0xffffffffu + 1},
    {"type byte is not checked", RAW("\0\0\0\0\x04"), 8192, 1, 0, 5},
};

START_TEST(test_msg_header)
{
    const struct header_case *tc = &header_cases[_i];
    uint8_t type = 0xaa;
    size_t total = 12345;
    int got = pg_msg_header(tc->bytes, tc->n, tc->max_total, &type, &total);
    ck_assert_msg(got == tc->want, "%s: got %d, want %d", tc->name, got, tc->want);
    if (got == 1) {
        ck_assert_uint_eq(type, tc->type);
        ck_assert_uint_eq(total, tc->total);
    } else {
        /* Outputs are only written on success. */
        ck_assert_uint_eq(type, 0xaa);
        ck_assert_uint_eq(total, 12345);
    }
}
END_TEST

/* Frame a realistic run of backend messages, fed at every split point. */
START_TEST(test_msg_header_stream)
{
    static const uint8_t stream[] = "R\0\0\0\x08\0\0\0\0"                     /* AuthenticationOk */
                                    "S\0\0\0\x15TimeZone\0Etc/UTC\0"          /* ParameterStatus */
                                    "K\0\0\0\x0c\0\0\x30\x39\xde\xad\xbe\xef" /* BackendKeyData */
                                    "Z\0\0\0\x05I";                           /* ReadyForQuery */
    static const uint8_t types[] = {'R', 'S', 'K', 'Z'};
    static const size_t totals[] = {9, 22, 13, 6};
    size_t n = sizeof(stream) - 1;

    for (size_t have = 0; have <= n; have++) {
        size_t pos = 0, count = 0;
        for (;;) {
            uint8_t type;
            size_t total;
            int r = pg_msg_header(stream + pos, have - pos, 8192, &type, &total);
            ck_assert_int_ge(r, 0);
            if (r == 0 || total > have - pos)
                break;
            ck_assert_uint_lt(count, 4);
            ck_assert_uint_eq(type, types[count]);
            ck_assert_uint_eq(total, totals[count]);
            pos += total;
            count++;
        }
        if (have == n)
            ck_assert_uint_eq(count, 4);
    }
}
END_TEST

START_TEST(test_msg_header_null)
{
    ck_assert_int_eq(pg_msg_header(NULL, 0, 8192, NULL, NULL), 0);
    ck_assert_int_eq(pg_msg_header(NULL, 10, 8192, NULL, NULL), 0);
    ck_assert_int_eq(pg_msg_header((const uint8_t *)"Z\0\0\0\x05I", 6, 8192, NULL, NULL), 1);
}
END_TEST

/* ---- BackendKeyData ----------------------------------------------------- */

struct bkey_case {
    const char *name;
    uint8_t type;
    size_t keylen;
    int word_adj; /* added to the correct length word */
    int len_adj;  /* added to the number of bytes handed over */
    int want;
};

static const struct bkey_case bkey_cases[] = {
    {"3.0, 4-byte key", 'K', 4, 0, 0, 0},
    {"3.2, 32-byte key", 'K', 32, 0, 0, 0},
    {"3.2, 256-byte key", 'K', 256, 0, 0, 0},
    {"3.2, 5-byte key", 'K', 5, 0, 0, 0},
    {"no key", 'K', 0, 0, 0, -1},
    {"3-byte key", 'K', 3, 0, 0, -1},
    {"257-byte key", 'K', 257, 0, 0, -1},
    {"truncated by one byte", 'K', 32, 0, -1, -1},
    {"truncated to the header", 'K', 32, 0, -32 - 4, -1},
    {"truncated inside the header", 'K', 4, 0, -10, -1},
    {"one trailing byte", 'K', 4, 0, 1, -1},
    {"length word one short (trailing byte)", 'K', 32, -1, 0, -1},
    {"length word one long (truncated)", 'K', 32, 1, 0, -1},
    {"not a BackendKeyData", 'k', 4, 0, 0, -1},
    {"ErrorResponse", 'E', 4, 0, 0, -1},
};

START_TEST(test_backend_key)
{
    const struct bkey_case *tc = &bkey_cases[_i];
    uint8_t msg[5 + 4 + 300];
    uint8_t body[4 + 300];
    memset(body, 0x33, sizeof(body));
    put_be32(body, 0x01020304);
    for (size_t i = 0; i < tc->keylen; i++)
        body[4 + i] = (uint8_t)(i * 13 + 7);
    size_t full = frame(tc->type, body, 4 + tc->keylen + 1, msg); /* room for a trailing byte */
    full -= 1;
    put_be32(msg + 1, (uint32_t)((long)(4 + 4 + tc->keylen) + tc->word_adj));
    size_t n = (size_t)((long)full + tc->len_adj);

    uint32_t pid = 0xaaaaaaaa;
    uint8_t key[PG_CANCEL_KEY_MAX];
    size_t keylen = 9999;
    memset(key, 0xaa, sizeof(key));
    int got = pg_parse_backend_key(msg, n, &pid, key, &keylen);
    ck_assert_msg(got == tc->want, "%s: got %d, want %d", tc->name, got, tc->want);
    if (got == 0) {
        ck_assert_uint_eq(pid, 0x01020304);
        ck_assert_uint_eq(keylen, tc->keylen);
        ck_assert_mem_eq(key, body + 4, tc->keylen);
        /* It also frames as one whole message. */
        uint8_t type;
        size_t total;
        ck_assert_int_eq(pg_msg_header(msg, n, 8192, &type, &total), 1);
        ck_assert_uint_eq(total, n);
    } else {
        ck_assert_uint_eq(pid, 0xaaaaaaaa);
        ck_assert_uint_eq(keylen, 9999);
        for (size_t i = 0; i < sizeof(key); i++)
            ck_assert_uint_eq(key[i], 0xaa);
    }
}
END_TEST

START_TEST(test_backend_key_null)
{
    static const uint8_t msg[] = "K\0\0\0\x0c\0\0\x30\x39\xde\xad\xbe\xef";
    uint32_t pid;
    uint8_t key[PG_CANCEL_KEY_MAX];
    size_t keylen;
    ck_assert_int_eq(pg_parse_backend_key(msg, sizeof(msg) - 1, &pid, key, &keylen), 0);
    ck_assert_uint_eq(pid, 12345);
    ck_assert_uint_eq(keylen, 4);
    ck_assert_int_eq(pg_parse_backend_key(NULL, 13, &pid, key, &keylen), -1);
    ck_assert_int_eq(pg_parse_backend_key(msg, sizeof(msg) - 1, NULL, key, &keylen), -1);
    ck_assert_int_eq(pg_parse_backend_key(msg, sizeof(msg) - 1, &pid, NULL, &keylen), -1);
    ck_assert_int_eq(pg_parse_backend_key(msg, sizeof(msg) - 1, &pid, key, NULL), -1);
}
END_TEST

/* ---- CancelRequest build / parse ---------------------------------------- */

START_TEST(test_build_cancel_golden)
{
    static const uint8_t want30[] = "\0\0\0\x10\x04\xd2\x16\x2e"
                                    "\x01\x02\x03\x04"
                                    "\xde\xad\xbe\xef";
    static const uint8_t key4[] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t got[300];
    memset(got, 0xaa, sizeof(got));
    size_t n = pg_build_cancel(got, sizeof(got), 0x01020304, key4, sizeof(key4));
    ck_assert_uint_eq(n, 16);
    ck_assert_mem_eq(got, want30, 16);
    ck_assert_uint_eq(got[16], 0xaa);

    /* 3.2: a 32-byte key, length 44 = 0x2c. */
    static const uint8_t want32[] =
        "\0\0\0\x2c\x04\xd2\x16\x2e"
        "\0\0\x30\x39"
        "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
        "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f";
    uint8_t key32[32];
    for (size_t i = 0; i < sizeof(key32); i++)
        key32[i] = (uint8_t)i;
    memset(got, 0xaa, sizeof(got));
    n = pg_build_cancel(got, sizeof(got), 12345, key32, sizeof(key32));
    ck_assert_uint_eq(n, sizeof(want32) - 1);
    ck_assert_uint_eq(n, 44);
    ck_assert_mem_eq(got, want32, n);
    ck_assert_uint_eq(got[n], 0xaa);
}
END_TEST

static const size_t cancel_keylens[] = {4, 5, 32, 255, 256};

START_TEST(test_cancel_round_trip)
{
    size_t kl = cancel_keylens[_i];
    uint8_t key[PG_CANCEL_KEY_MAX];
    for (size_t i = 0; i < kl; i++)
        key[i] = (uint8_t)(0xff - i);

    uint8_t pkt[12 + PG_CANCEL_KEY_MAX];
    size_t n = pg_build_cancel(pkt, sizeof(pkt), 0xfedcba98, key, kl);
    ck_assert_uint_eq(n, 12 + kl);

    struct pg_first first;
    ck_assert_int_eq(pg_parse_first(pkt, n, &first, NULL, 0), PG_FIRST_CANCEL);
    ck_assert_uint_eq(first.len, n);
    ck_assert_uint_eq(first.code, PG_CANCELREQUEST_CODE);

    uint32_t pid = 0;
    uint8_t got[PG_CANCEL_KEY_MAX];
    size_t gotlen = 0;
    ck_assert_int_eq(pg_parse_cancel(pkt, first.len, &pid, got, &gotlen), 0);
    ck_assert_uint_eq(pid, 0xfedcba98);
    ck_assert_uint_eq(gotlen, kl);
    ck_assert_mem_eq(got, key, kl);

    /* The same key arriving as BackendKeyData gives the same answer, so a
     * key recorded from the server can be matched against a cancel. */
    uint8_t body[4 + PG_CANCEL_KEY_MAX];
    uint8_t msg[5 + sizeof(body)];
    put_be32(body, 0xfedcba98);
    memcpy(body + 4, key, kl);
    size_t mlen = frame('K', body, 4 + kl, msg);
    uint32_t bpid = 0;
    uint8_t bkey[PG_CANCEL_KEY_MAX];
    size_t bkeylen = 0;
    ck_assert_int_eq(pg_parse_backend_key(msg, mlen, &bpid, bkey, &bkeylen), 0);
    ck_assert_uint_eq(bpid, pid);
    ck_assert_uint_eq(bkeylen, gotlen);
    ck_assert_mem_eq(bkey, got, kl);
}
END_TEST

START_TEST(test_build_cancel_bad)
{
    uint8_t key[300];
    uint8_t out[400];
    memset(key, 1, sizeof(key));

    static const size_t bad_keylens[] = {0, 3, 257, 300};
    for (size_t i = 0; i < sizeof(bad_keylens) / sizeof(bad_keylens[0]); i++)
        ck_assert_uint_eq(pg_build_cancel(out, sizeof(out), 1, key, bad_keylens[i]), 0);

    /* cap: exactly enough works, one less writes nothing. */
    ck_assert_uint_eq(pg_build_cancel(out, 16, 1, key, 4), 16);
    memset(out, 0xaa, sizeof(out));
    ck_assert_uint_eq(pg_build_cancel(out, 15, 1, key, 4), 0);
    ck_assert_uint_eq(pg_build_cancel(out, 12 + 255, 1, key, 256), 0);
    ck_assert_uint_eq(pg_build_cancel(out, 0, 1, key, 4), 0);
    for (size_t i = 0; i < sizeof(out); i++)
        ck_assert_uint_eq(out[i], 0xaa);
    ck_assert_uint_eq(pg_build_cancel(NULL, sizeof(out), 1, key, 4), 0);
    ck_assert_uint_eq(pg_build_cancel(out, sizeof(out), 1, NULL, 4), 0);
}
END_TEST

struct cancel_parse_case {
    const char *name;
    const uint8_t *bytes;
    size_t n;
};

/* Every one of these is refused by pg_parse_cancel. */
static const struct cancel_parse_case cancel_parse_bad[] = {
    {"empty", RAW("")},
    {"length word only", RAW("\0\0\0\x10")},
    {"no key", RAW("\0\0\0\x0c\x04\xd2\x16\x2e\0\0\0\x01")},
    {"3-byte key", RAW("\0\0\0\x0f\x04\xd2\x16\x2e\0\0\0\x01\1\2\3")},
    {"truncated", RAW("\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x01\1\2\3")},
    {"trailing byte", RAW("\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x01\1\2\3\4\5")},
    {"sslrequest code", RAW("\0\0\0\x10\x04\xd2\x16\x2f\0\0\0\x01\1\2\3\4")},
    {"startup 3.0", RAW("\0\0\0\x10\0\3\0\0\0\0\0\x01\1\2\3\4")},
};

START_TEST(test_parse_cancel_bad)
{
    const struct cancel_parse_case *tc = &cancel_parse_bad[_i];
    uint32_t pid = 7;
    uint8_t key[PG_CANCEL_KEY_MAX];
    size_t keylen = 7;
    ck_assert_msg(pg_parse_cancel(tc->bytes, tc->n, &pid, key, &keylen) == -1, "%s: accepted",
                  tc->name);
    ck_assert_uint_eq(pid, 7);
    ck_assert_uint_eq(keylen, 7);
}
END_TEST

START_TEST(test_parse_cancel_257)
{
    uint8_t pkt[12 + 257];
    memset(pkt, 0x5a, sizeof(pkt));
    put_be32(pkt, sizeof(pkt));
    put_be32(pkt + 4, PG_CANCELREQUEST_CODE);
    uint32_t pid;
    uint8_t key[PG_CANCEL_KEY_MAX];
    size_t keylen;
    ck_assert_int_eq(pg_parse_cancel(pkt, sizeof(pkt), &pid, key, &keylen), -1);
    ck_assert_int_eq(pg_parse_cancel(pkt, sizeof(pkt) - 1, &pid, key, &keylen), -1);
    put_be32(pkt, sizeof(pkt) - 1);
    ck_assert_int_eq(pg_parse_cancel(pkt, sizeof(pkt) - 1, &pid, key, &keylen), 0);
    ck_assert_uint_eq(keylen, 256);
    ck_assert_int_eq(pg_parse_cancel(NULL, 16, &pid, key, &keylen), -1);
}
END_TEST

/* ---- Authentication ----------------------------------------------------- */

struct auth_case {
    const char *name;
    const uint8_t *bytes;
    size_t n;
    int want;
};

static const struct auth_case auth_cases[] = {
    {"AuthenticationOk", RAW("R\0\0\0\x08\0\0\0\0"), 0},
    {"CleartextPassword", RAW("R\0\0\0\x08\0\0\0\x03"), 3},
    {"MD5Password with salt", RAW("R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04"), 5},
    {"GSS", RAW("R\0\0\0\x08\0\0\0\x07"), 7},
    {"GSSContinue with data", RAW("R\0\0\0\x0b\0\0\0\x08xyz"), 8},
    {"SSPI", RAW("R\0\0\0\x08\0\0\0\x09"), 9},
    {"SASL", RAW("R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"), 10},
    {"SASLContinue", RAW("R\0\0\0\x0e\0\0\0\x0br=abcd"), 11},
    {"SASLFinal", RAW("R\0\0\0\x0e\0\0\0\x0cv=abcd"), 12},
    {"unknown code, no data", RAW("R\0\0\0\x08\0\0\0\x63"), 99},
    {"largest int32 code", RAW("R\0\0\0\x08\x7f\xff\xff\xff"), 0x7fffffff},
    {"negative code", RAW("R\0\0\0\x08\xff\xff\xff\xff"), -1},
    {"code 0x80000000", RAW("R\0\0\0\x08\x80\0\0\0"), -1},
    {"AuthenticationOk with a trailing byte", RAW("R\0\0\0\x09\0\0\0\0\0"), -1},
    {"CleartextPassword with data", RAW("R\0\0\0\x09\0\0\0\x03x"), -1},
    {"MD5Password without salt", RAW("R\0\0\0\x08\0\0\0\x05"), -1},
    {"MD5Password with 3-byte salt", RAW("R\0\0\0\x0b\0\0\0\x05\1\2\3"), -1},
    {"no code word", RAW("R\0\0\0\x04"), -1},
    {"2-byte code word", RAW("R\0\0\0\x06\0\0"), -1},
    {"truncated", RAW("R\0\0\0\x08\0\0\0"), -1},
    {"bytes after the message", RAW("R\0\0\0\x08\0\0\0\0Z"), -1},
    {"length word 3", RAW("R\0\0\0\x03\0\0\0\0"), -1},
    {"ErrorResponse", RAW("E\0\0\0\x08\0\0\0\0"), -1},
    {"empty", RAW(""), -1},
};

START_TEST(test_auth_code)
{
    const struct auth_case *tc = &auth_cases[_i];
    int got = pg_auth_code(tc->bytes, tc->n);
    ck_assert_msg(got == tc->want, "%s: got %d, want %d", tc->name, got, tc->want);
}
END_TEST

/* ---- ErrorResponse fields (the login audit) ----------------------------- */

struct err_case {
    const char *name;
    const char *body; /* fields after the header, terminator included */
    size_t bodylen;
    int want;
    const char *sqlstate, *severity, *message;
};

static const struct err_case err_cases[] = {
    {"wrong password (PostgreSQL 16)",
     STR("SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"app\"\0"
         "Fauth.c\0L323\0Rauth_failed\0\0"),
     0, "28P01", "FATAL", "password authentication failed for user ?app?"},
    {"unknown database", STR("SFATAL\0VFATAL\0C3D000\0Mdatabase \"nope\" does not exist\0\0"), 0,
     "3D000", "FATAL", "database ?nope? does not exist"},
    {"localised S, V wins whatever the order", STR("VFATAL\0SSCHWERWIEGEND\0C28000\0\0"), 0,
     "28000", "FATAL", ""},
    {"S only (before 9.6)", STR("SFATAL\0C53300\0Msorry\0\0"), 0, "53300", "FATAL", "sorry"},
    {"control bytes and non-ASCII sanitised",
     STR("SFATAL\0C28P01\0Ma\x01\xff"
         "b\0\0"),
     0, "28P01", "FATAL", "a??b"},
    {"no SQLSTATE", STR("SFATAL\0Mx\0\0"), -1, NULL, NULL, NULL},
    {"SQLSTATE too short", STR("SFATAL\0C2800\0\0"), -1, NULL, NULL, NULL},
    {"SQLSTATE too long", STR("SFATAL\0C28P011\0\0"), -1, NULL, NULL, NULL},
    {"SQLSTATE lower case", STR("SFATAL\0C28p01\0\0"), -1, NULL, NULL, NULL},
    {"SQLSTATE with a quote", STR("SFATAL\0C28\"01\0\0"), -1, NULL, NULL, NULL},
    {"no terminator", STR("SFATAL\0C28P01\0"), -1, NULL, NULL, NULL},
    {"unterminated field", STR("SFATAL\0C28P01"), -1, NULL, NULL, NULL},
    {"bytes after the terminator", STR("SFATAL\0C28P01\0\0X"), -1, NULL, NULL, NULL},
    {"empty body", STR(""), -1, NULL, NULL, NULL},
    {"terminator only", STR("\0"), -1, NULL, NULL, NULL},
};

static size_t err_msg(const struct err_case *tc, uint8_t *out, size_t cap)
{
    size_t n = 5 + tc->bodylen;
    ck_assert_uint_le(n, cap);
    out[0] = 'E';
    uint32_t w = (uint32_t)(n - 1);
    out[1] = (uint8_t)(w >> 24);
    out[2] = (uint8_t)(w >> 16);
    out[3] = (uint8_t)(w >> 8);
    out[4] = (uint8_t)w;
    memcpy(out + 5, tc->body, tc->bodylen);
    return n;
}

START_TEST(test_parse_error)
{
    const struct err_case *tc = &err_cases[_i];
    uint8_t m[512];
    struct pg_error_fields ef;
    size_t n = err_msg(tc, m, sizeof(m));
    int got = pg_parse_error(m, n, &ef);
    ck_assert_msg(got == tc->want, "%s: got %d, want %d", tc->name, got, tc->want);
    if (got == 0) {
        ck_assert_str_eq(ef.sqlstate, tc->sqlstate);
        ck_assert_str_eq(ef.severity, tc->severity);
        ck_assert_str_eq(ef.message, tc->message);
    }
    /* Every shorter prefix, and a wrong type byte, is refused. */
    for (size_t cut = 0; cut < n; cut++)
        ck_assert_int_eq(pg_parse_error(m, cut, &ef), -1);
    m[0] = 'N';
    ck_assert_int_eq(pg_parse_error(m, n, &ef), -1);
    ck_assert_int_eq(pg_parse_error(NULL, 0, &ef), -1);
}
END_TEST

START_TEST(test_parse_error_long_message)
{
    /* A message longer than the field: truncated, NUL-terminated. */
    uint8_t m[600];
    char body[560];
    size_t b = 0;
    b += (size_t)snprintf(body + b, sizeof(body) - b, "SFATAL%cC28P01%cM", 0, 0);
    memset(body + b, 'x', 500);
    b += 500;
    body[b++] = 0;
    body[b++] = 0;
    struct err_case tc = {"long", body, b, 0, NULL, NULL, NULL};
    size_t n = err_msg(&tc, m, sizeof(m));
    struct pg_error_fields ef;
    ck_assert_int_eq(pg_parse_error(m, n, &ef), 0);
    ck_assert_uint_eq(strlen(ef.message), sizeof(ef.message) - 1);
}
END_TEST

/* ---- AuthenticationSASL: stripping -PLUS -------------------------------- */

struct sasl_case {
    const char *name;
    const char *list; /* mechanism names after the code word */
    size_t listlen;
    const char *want; /* names in the result, NULL: returns 0 */
    size_t wantlen;
    unsigned stripped;
};

static const struct sasl_case sasl_cases[] = {
    {"no PLUS: unchanged copy", STR("SCRAM-SHA-256\0\0"), STR("SCRAM-SHA-256\0\0"), 0},
    {"PLUS and plain", STR("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"), STR("SCRAM-SHA-256\0\0"), 1},
    {"plain then PLUS", STR("SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0\0"), STR("SCRAM-SHA-256\0\0"), 1},
    {"order of the others kept", STR("B\0A-PLUS\0A\0C-PLUS\0C\0\0"), STR("B\0A\0C\0\0"), 2},
    {"only PLUS", STR("SCRAM-SHA-256-PLUS\0\0"), NULL, 0, 1},
    {"two PLUS only", STR("A-PLUS\0B-PLUS\0\0"), NULL, 0, 2},
    {"suffix is case-sensitive", STR("SCRAM-SHA-256-plus\0\0"), STR("SCRAM-SHA-256-plus\0\0"), 0},
    {"PLUS without the dash kept", STR("SCRAMPLUS\0PLUS\0\0"), STR("SCRAMPLUS\0PLUS\0\0"), 0},
    {"PLUS not at the end kept", STR("X-PLUSX\0-PLUS-\0\0"), STR("X-PLUSX\0-PLUS-\0\0"), 0},
    {"bare -PLUS stripped", STR("-PLUS\0A\0\0"), STR("A\0\0"), 1},
    {"-PLUS-PLUS stripped", STR("A-PLUS-PLUS\0A\0\0"), STR("A\0\0"), 1},
    {"one-letter names", STR("a\0b\0\0"), STR("a\0b\0\0"), 0},
    {"empty list", STR("\0"), NULL, 0, 0},
    {"missing final NUL", STR("SCRAM-SHA-256\0"), NULL, 0, 0},
    {"missing final NUL after PLUS", STR("SCRAM-SHA-256-PLUS\0"), NULL, 0, 0},
    {"name running past the end", STR("SCRAM-SHA-256\0SCRAM"), NULL, 0, 0},
    {"only a name, no NUL", STR("SCRAM-SHA-256"), NULL, 0, 0},
    {"trailing byte after the list", STR("SCRAM-SHA-256\0\0x"), NULL, 0, 0},
    {"trailing NUL after the list", STR("SCRAM-SHA-256\0\0\0"), NULL, 0, 0},
    {"empty name in the middle", STR("A\0\0B\0\0"), NULL, 0, 0},
    {"no list at all", STR(""), NULL, 0, 0},
};

START_TEST(test_sasl_strip)
{
    const struct sasl_case *tc = &sasl_cases[_i];
    uint8_t body[128], msg[160], out[160];
    put_be32(body, PG_AUTH_SASL);
    memcpy(body + 4, tc->list, tc->listlen);
    size_t n = frame('R', body, 4 + tc->listlen, msg);

    unsigned stripped = 999;
    memset(out, 0xaa, sizeof(out));
    size_t got = pg_sasl_strip_plus(msg, n, out, sizeof(out), &stripped);
    ck_assert_msg(stripped == tc->stripped, "%s: stripped %u, want %u", tc->name, stripped,
                  tc->stripped);
    if (tc->want == NULL) {
        ck_assert_msg(got == 0, "%s: returned %zu, want 0", tc->name, got);
        for (size_t i = 0; i < sizeof(out); i++)
            ck_assert_uint_eq(out[i], 0xaa);
        return;
    }
    uint8_t wbody[128], want[160];
    put_be32(wbody, PG_AUTH_SASL);
    memcpy(wbody + 4, tc->want, tc->wantlen);
    size_t wn = frame('R', wbody, 4 + tc->wantlen, want);
    ck_assert_msg(got == wn, "%s: returned %zu, want %zu", tc->name, got, wn);
    ck_assert_mem_eq(out, want, wn);
    ck_assert_uint_eq(out[wn], 0xaa);

    /* The result is itself a well-formed AuthenticationSASL with nothing left
     * to strip. */
    ck_assert_int_eq(pg_auth_code(out, got), PG_AUTH_SASL);
    uint8_t again[160];
    unsigned s2 = 999;
    ck_assert_uint_eq(pg_sasl_strip_plus(out, got, again, sizeof(again), &s2), got);
    ck_assert_uint_eq(s2, 0);
    ck_assert_mem_eq(again, out, got);

    /* cap: exactly enough works; one byte less returns 0 and writes nothing. */
    ck_assert_uint_eq(pg_sasl_strip_plus(msg, n, again, got, NULL), got);
    memset(again, 0xaa, sizeof(again));
    ck_assert_uint_eq(pg_sasl_strip_plus(msg, n, again, got - 1, &s2), 0);
    ck_assert_uint_eq(s2, tc->stripped);
    for (size_t i = 0; i < sizeof(again); i++)
        ck_assert_uint_eq(again[i], 0xaa);
}
END_TEST

/* The case that matters, as bytes on the wire (PostgreSQL 11+ over TLS). */
START_TEST(test_sasl_strip_golden)
{
    static const uint8_t in[] = "R\0\0\0\x2a\0\0\0\x0a"
                                "SCRAM-SHA-256-PLUS\0"
                                "SCRAM-SHA-256\0"
                                "\0";
    static const uint8_t want[] = "R\0\0\0\x17\0\0\0\x0a"
                                  "SCRAM-SHA-256\0"
                                  "\0";
    uint8_t out[64];
    unsigned stripped = 0;
    memset(out, 0xaa, sizeof(out));
    size_t n = pg_sasl_strip_plus(in, sizeof(in) - 1, out, sizeof(out), &stripped);
    ck_assert_uint_eq(sizeof(in) - 1, 43);
    ck_assert_uint_eq(n, sizeof(want) - 1);
    ck_assert_uint_eq(n, 24);
    ck_assert_mem_eq(out, want, n);
    ck_assert_uint_eq(out[n], 0xaa);
    ck_assert_uint_eq(stripped, 1);
    ck_assert_uint_eq(pg_sasl_strip_plus(in, sizeof(in) - 1, out, 23, &stripped), 0);
}
END_TEST

struct sasl_raw_case {
    const char *name;
    const uint8_t *bytes;
    size_t n;
};

/* Framing and code errors: all return 0 with nothing stripped. */
static const struct sasl_raw_case sasl_raw_bad[] = {
    {"AuthenticationOk", RAW("R\0\0\0\x08\0\0\0\0")},
    {"SASLContinue", RAW("R\0\0\0\x17\0\0\0\x0bSCRAM-SHA-256\0\0")},
    {"not an 'R'", RAW("E\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0")},
    {"length word one long", RAW("R\0\0\0\x18\0\0\0\x0aSCRAM-SHA-256\0\0")},
    {"length word one short", RAW("R\0\0\0\x16\0\0\0\x0aSCRAM-SHA-256\0\0")},
    {"truncated message", RAW("R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0")},
    {"length word short of a PLUS name", RAW("R\0\0\0\x0f\0\0\0\x0a"
                                             "A-PLUS\0\0")},
    {"header only", RAW("R\0\0\0\x08")},
    {"empty", RAW("")},
};

START_TEST(test_sasl_strip_raw_bad)
{
    const struct sasl_raw_case *tc = &sasl_raw_bad[_i];
    uint8_t out[64];
    unsigned stripped = 999;
    memset(out, 0xaa, sizeof(out));
    ck_assert_msg(pg_sasl_strip_plus(tc->bytes, tc->n, out, sizeof(out), &stripped) == 0,
                  "%s: accepted", tc->name);
    ck_assert_uint_eq(stripped, 0);
    ck_assert_uint_eq(out[0], 0xaa);
}
END_TEST

START_TEST(test_sasl_strip_null)
{
    static const uint8_t in[] = "R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0";
    uint8_t out[64];
    unsigned stripped = 999;
    ck_assert_uint_eq(pg_sasl_strip_plus(NULL, 24, out, sizeof(out), &stripped), 0);
    ck_assert_uint_eq(stripped, 0);
    ck_assert_uint_eq(pg_sasl_strip_plus(in, sizeof(in) - 1, NULL, 64, &stripped), 0);
    ck_assert_uint_eq(pg_sasl_strip_plus(in, sizeof(in) - 1, out, 0, NULL), 0);
    ck_assert_uint_eq(pg_sasl_strip_plus(in, sizeof(in) - 1, out, sizeof(out), NULL), 24);
}
END_TEST

/* ---- SASLInitialResponse ------------------------------------------------ */

struct sasl_init_case {
    const char *name;
    const char *body;
    size_t blen;
    int want;
    const char *mech;
};

static const struct sasl_init_case sasl_init_cases[] = {
    {"no initial response (-1)", STR("SCRAM-SHA-256\0\xff\xff\xff\xff"), 0, "SCRAM-SHA-256"},
    {"30-byte initial response", STR("SCRAM-SHA-256\0\0\0\0\x1en,,n=,r=abcdefghijklmnopqrstuv"), 0,
     "SCRAM-SHA-256"},
    {"PLUS mechanism", STR("SCRAM-SHA-256-PLUS\0\0\0\0\x03p=x"), 0, "SCRAM-SHA-256-PLUS"},
    {"empty response (0)", STR("SCRAM-SHA-256\0\0\0\0\0"), 0, "SCRAM-SHA-256"},
    {"response holds NULs", STR("X\0\0\0\0\x03\0\0\0"), 0, "X"},
    {"name sanitised", STR("SCRAM\"x\n\\\0\xff\xff\xff\xff"), 0, "SCRAM?x??"},
    {"length 31, 30 bytes", STR("SCRAM-SHA-256\0\0\0\0\x1fn,,n=,r=abcdefghijklmnopqrstuv"), -1,
     NULL},
    {"length 29, 30 bytes", STR("SCRAM-SHA-256\0\0\0\0\x1dn,,n=,r=abcdefghijklmnopqrstuv"), -1,
     NULL},
    {"-1 with bytes after it", STR("SCRAM-SHA-256\0\xff\xff\xff\xffx"), -1, NULL},
    {"length -2", STR("SCRAM-SHA-256\0\xff\xff\xff\xfe"), -1, NULL},
    {"length 0x80000000", STR("SCRAM-SHA-256\0\x80\0\0\0"), -1, NULL},
    {"no length word", STR("SCRAM-SHA-256\0"), -1, NULL},
    {"half a length word", STR("SCRAM-SHA-256\0\0\0"), -1, NULL},
    {"name not terminated", STR("SCRAM-SHA-256"), -1, NULL},
    {"empty name", STR("\0\xff\xff\xff\xff"), -1, NULL},
    {"empty body", STR(""), -1, NULL},
};

START_TEST(test_sasl_initial)
{
    const struct sasl_init_case *tc = &sasl_init_cases[_i];
    uint8_t msg[128];
    size_t n = frame('p', tc->body, tc->blen, msg);
    char name[PG_LOGVAL_MAX];
    memset(name, 'x', sizeof(name));
    int got = pg_sasl_initial_mechanism(msg, n, name, sizeof(name));
    ck_assert_msg(got == tc->want, "%s: got %d, want %d", tc->name, got, tc->want);
    if (got == 0)
        ck_assert_str_eq(name, tc->mech);
    else
        ck_assert_str_eq(name, "");

    /* Framing around the same body: truncated and with a trailing byte. */
    if (n > 5)
        ck_assert_int_eq(pg_sasl_initial_mechanism(msg, n - 1, name, sizeof(name)), -1);
    msg[n] = 0;
    ck_assert_int_eq(pg_sasl_initial_mechanism(msg, n + 1, name, sizeof(name)), -1);
}
END_TEST

START_TEST(test_sasl_initial_misc)
{
    uint8_t msg[64];
    char name[8];
    size_t n = frame('p', STR("SCRAM-SHA-256\0\xff\xff\xff\xff"), msg);

    /* Truncated to the buffer, always terminated. */
    memset(name, 'x', sizeof(name));
    ck_assert_int_eq(pg_sasl_initial_mechanism(msg, n, name, 6), 0);
    ck_assert_str_eq(name, "SCRAM");
    ck_assert_int_eq(name[6], 'x');
    ck_assert_int_eq(pg_sasl_initial_mechanism(msg, n, name, 1), 0);
    ck_assert_str_eq(name, "");
    /* Validation only. */
    ck_assert_int_eq(pg_sasl_initial_mechanism(msg, n, NULL, 0), 0);

    /* Wrong type: 'P' (Parse) is not 'p'. */
    msg[0] = 'P';
    ck_assert_int_eq(pg_sasl_initial_mechanism(msg, n, name, sizeof(name)), -1);
    ck_assert_int_eq(pg_sasl_initial_mechanism(NULL, n, name, sizeof(name)), -1);
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

    TCase *msgs = tcase_create("messages");
    tcase_add_loop_test(msgs, test_msg_header, 0, NELEM(header_cases));
    tcase_add_test(msgs, test_msg_header_stream);
    tcase_add_test(msgs, test_msg_header_null);
    tcase_add_loop_test(msgs, test_backend_key, 0, NELEM(bkey_cases));
    tcase_add_test(msgs, test_backend_key_null);
    tcase_add_test(msgs, test_build_cancel_golden);
    tcase_add_loop_test(msgs, test_cancel_round_trip, 0, NELEM(cancel_keylens));
    tcase_add_test(msgs, test_build_cancel_bad);
    tcase_add_loop_test(msgs, test_parse_cancel_bad, 0, NELEM(cancel_parse_bad));
    tcase_add_test(msgs, test_parse_cancel_257);
    tcase_add_loop_test(msgs, test_auth_code, 0, NELEM(auth_cases));
    tcase_add_loop_test(msgs, test_parse_error, 0, NELEM(err_cases));
    tcase_add_test(msgs, test_parse_error_long_message);
    tcase_add_loop_test(msgs, test_sasl_strip, 0, NELEM(sasl_cases));
    tcase_add_test(msgs, test_sasl_strip_golden);
    tcase_add_loop_test(msgs, test_sasl_strip_raw_bad, 0, NELEM(sasl_raw_bad));
    tcase_add_test(msgs, test_sasl_strip_null);
    tcase_add_loop_test(msgs, test_sasl_initial, 0, NELEM(sasl_init_cases));
    tcase_add_test(msgs, test_sasl_initial_misc);
    suite_add_tcase(s, msgs);

    return s;
}
