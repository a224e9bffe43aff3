/*
 * test_pgmsg.c - unit tests for the readers and builders of the messages
 * after the start-up packet in src/pgmsg.c: framing, BackendKeyData,
 * CancelRequest build/parse, Authentication, ErrorResponse fields, the SASL
 * -PLUS strip and SASLInitialResponse. Table-driven: each row is one Check
 * test (tcase_add_loop_test), so a failure names the row.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pgmsg.h"
#include "pgproto.h"
#include "suites.h"

#define RAW(s) (const uint8_t *)(s), sizeof(s) - 1
#define STR(s) (s), sizeof(s) - 1
#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

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

Suite *pgmsg_suite(void)
{
    Suite *s = suite_create("pgmsg");

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
