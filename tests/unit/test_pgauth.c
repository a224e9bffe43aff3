/*
 * test_pgauth.c - unit tests for src/pgauth.c, the authentication messages
 * the proxy reads and writes when it logs in itself: Authentication* ('R'),
 * PasswordMessage, SASLInitialResponse, SASLResponse and their builders.
 * Table-driven: each row is one Check test (tcase_add_loop_test), so a
 * failure names the row. Every valid row is also cut short byte by byte
 * (the length word kept): a truncated message must never parse.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pgauth.h"
#include "suites.h"

#define RAW(s) (const uint8_t *)(s), sizeof(s) - 1
#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))
#define MECH "SCRAM-SHA-256"

/* ---- Authentication* ('R') ---------------------------------------------- */

struct auth_case {
    const char *name;
    const uint8_t *bytes;
    size_t n;
    int want; /* 0 or -1 */
    int code;
    size_t datalen;
};

static const struct auth_case auth_cases[] = {
    {"AuthenticationOk", RAW("R\0\0\0\x08\0\0\0\0"), 0, PG_AUTH_OK, 0},
    {"cleartext", RAW("R\0\0\0\x08\0\0\0\x03"), 0, PG_AUTH_CLEARTEXT, 0},
    {"md5 with salt", RAW("R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04"), 0, PG_AUTH_MD5, 4},
    {"SASL two mechanisms", RAW("R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"), 0,
     PG_AUTH_SASL_START, 34},
    {"SASLContinue", RAW("R\0\0\0\x0e\0\0\0\x0br=abcd"), 0, PG_AUTH_SASL_CONTINUE, 6},
    {"SASLFinal", RAW("R\0\0\0\x0e\0\0\0\x0cv=abcd"), 0, PG_AUTH_SASL_FINAL, 6},
    {"GSS (parsed; the caller refuses it)", RAW("R\0\0\0\x08\0\0\0\x07"), 0, 7, 0},
    {"code 1000 (highest accepted)", RAW("R\0\0\0\x08\0\0\x03\xe8"), 0, 1000, 0},
    {"code 1001", RAW("R\0\0\0\x08\0\0\x03\xe9"), -1, 0, 0},
    {"code -1", RAW("R\0\0\0\x08\xff\xff\xff\xff"), -1, 0, 0},
    {"no code (length 4)", RAW("R\0\0\0\x04"), -1, 0, 0},
    {"code cut short", RAW("R\0\0\0\x06\0\0"), -1, 0, 0},
    {"header only", RAW("R\0\0\0"), -1, 0, 0},
    {"empty", RAW(""), -1, 0, 0},
    {"wrong type", RAW("p\0\0\0\x08\0\0\0\0"), -1, 0, 0},
    {"length word too big", RAW("R\0\0\0\x09\0\0\0\0"), -1, 0, 0},
    {"length word too small", RAW("R\0\0\0\x07\0\0\0\0"), -1, 0, 0},
    {"length word 0", RAW("R\0\0\0\0\0\0\0\0"), -1, 0, 0},
    {"length word huge", RAW("R\xff\xff\xff\xff\0\0\0\0"), -1, 0, 0},
    {"trailing byte", RAW("R\0\0\0\x08\0\0\0\0\0"), -1, 0, 0},
};

START_TEST(auth_parse_row)
{
    const struct auth_case *t = &auth_cases[_i];
    int code = -7;
    const uint8_t *data = NULL;
    size_t datalen = 999;
    int r = pg_auth_parse(t->bytes, t->n, &code, &data, &datalen);
    ck_assert_msg(r == t->want, "%s: got %d", t->name, r);
    if (r != 0)
        return;
    ck_assert_int_eq(code, t->code);
    ck_assert_uint_eq(datalen, t->datalen);
    ck_assert_ptr_eq(data, t->bytes + 9); /* a pointer into the message, nothing copied */
    /* Cut short with the length word kept: never a message. */
    for (size_t k = 0; k < t->n; k++)
        ck_assert_msg(pg_auth_parse(t->bytes, k, &code, &data, &datalen) == -1, "%s cut at %zu",
                      t->name, k);
}
END_TEST

START_TEST(auth_parse_null)
{
    int code;
    const uint8_t *data;
    size_t datalen;
    ck_assert_int_eq(pg_auth_parse(NULL, 9, &code, &data, &datalen), -1);
}
END_TEST

START_TEST(auth_build)
{
    uint8_t out[64], parsed_salt[4];
    static const uint8_t salt[4] = {0xde, 0xad, 0xbe, 0xef};
    int code;
    const uint8_t *data;
    size_t datalen;

    /* golden bytes */
    ck_assert_uint_eq(pg_auth_build(out, sizeof(out), PG_AUTH_CLEARTEXT, NULL, 0), 9);
    ck_assert_mem_eq(out, "R\0\0\0\x08\0\0\0\x03", 9);
    ck_assert_uint_eq(pg_auth_build(out, sizeof(out), PG_AUTH_MD5, salt, 4), 13);
    ck_assert_mem_eq(out, "R\0\0\0\x0c\0\0\0\x05\xde\xad\xbe\xef", 13);
    /* and back */
    ck_assert_int_eq(pg_auth_parse(out, 13, &code, &data, &datalen), 0);
    ck_assert_int_eq(code, PG_AUTH_MD5);
    ck_assert_uint_eq(datalen, 4);
    memcpy(parsed_salt, data, 4);
    ck_assert_mem_eq(parsed_salt, salt, 4);

    /* exactly the room it needs, and one byte less */
    ck_assert_uint_eq(pg_auth_build(out, 13, PG_AUTH_MD5, salt, 4), 13);
    for (size_t cap = 0; cap < 13; cap++)
        ck_assert_msg(pg_auth_build(out, cap, PG_AUTH_MD5, salt, 4) == 0, "cap %zu", cap);
    ck_assert_uint_eq(pg_auth_build(out, 8, PG_AUTH_OK, NULL, 0), 0);
    /* a negative code, and a data length that would wrap the arithmetic */
    ck_assert_uint_eq(pg_auth_build(out, sizeof(out), -1, NULL, 0), 0);
    ck_assert_uint_eq(pg_auth_build(out, sizeof(out), PG_AUTH_SASL_FINAL, salt, SIZE_MAX), 0);
    ck_assert_uint_eq(pg_auth_build(out, sizeof(out), PG_AUTH_SASL_FINAL, salt, SIZE_MAX - 8), 0);
}
END_TEST

/* ---- PasswordMessage ---------------------------------------------------- */

struct password_case {
    const char *name;
    const uint8_t *bytes;
    size_t n;
    int want;
    const char *password;
};

static const struct password_case password_cases[] = {
    {"password", RAW("p\0\0\0\x0bsecret\0"), 0, "secret"},
    {"empty password (the caller refuses it)", RAW("p\0\0\0\x05\0"), 0, ""},
    {"md5 answer", RAW("p\0\0\0\x28md5b2f5c7e0a4f4e5d8d6cd1d9a4c1c6e81\0"), 0,
     "md5b2f5c7e0a4f4e5d8d6cd1d9a4c1c6e81"},
    {"UTF-8", RAW("p\0\0\0\x0a\xc3\xa9t\xc3\xa9\0"), 0, "\xc3\xa9t\xc3\xa9"},
    {"missing NUL", RAW("p\0\0\0\x0asecret"), -1, NULL},
    {"NUL inside", RAW("p\0\0\0\x0bsec\0et\0"), -1, NULL},
    {"two strings", RAW("p\0\0\0\x08\x61\0\x62\0"), -1, NULL},
    {"no body", RAW("p\0\0\0\x04"), -1, NULL},
    {"wrong type", RAW("Q\0\0\0\x0bsecret\0"), -1, NULL},
    {"length word too big", RAW("p\0\0\0\x0csecret\0"), -1, NULL},
    {"length word too small", RAW("p\0\0\0\x0asecret\0"), -1, NULL},
    {"length word huge", RAW("p\xff\xff\xff\xffsecret\0"), -1, NULL},
    {"header cut", RAW("p\0\0"), -1, NULL},
};

START_TEST(password_parse_row)
{
    const struct password_case *t = &password_cases[_i];
    const char *pw = NULL;
    size_t pwlen = 999;
    int r = pg_password_parse(t->bytes, t->n, &pw, &pwlen);
    ck_assert_msg(r == t->want, "%s: got %d", t->name, r);
    if (r != 0)
        return;
    ck_assert_uint_eq(pwlen, strlen(t->password));
    ck_assert_str_eq(pw, t->password); /* NUL-terminated inside the message */
    ck_assert_ptr_eq(pw, (const char *)t->bytes + 5);
    for (size_t k = 0; k < t->n; k++)
        ck_assert_msg(pg_password_parse(t->bytes, k, &pw, &pwlen) == -1, "%s cut at %zu", t->name,
                      k);
}
END_TEST

/* ---- SASLInitialResponse ------------------------------------------------ */

struct initial_case {
    const char *name;
    const uint8_t *bytes;
    size_t n;
    int want;
    const char *mech;
    const char *data; /* NULL: no initial response (length -1) */
    size_t datalen;
};

static const struct initial_case initial_cases[] = {
    {"SCRAM-SHA-256 with data", RAW("p\0\0\0\x29SCRAM-SHA-256\0\0\0\0\x13n,,n=,r=abcdefghijk"), 0,
     "SCRAM-SHA-256", "n,,n=,r=abcdefghijk", 19},
    {"-PLUS with data", RAW("p\0\0\0\x22SCRAM-SHA-256-PLUS\0\0\0\0\x07p=x,,ab"), 0,
     "SCRAM-SHA-256-PLUS", "p=x,,ab", 7},
    {"length -1: no initial response", RAW("p\0\0\0\x16SCRAM-SHA-256\0\xff\xff\xff\xff"), 0,
     "SCRAM-SHA-256", NULL, 0},
    {"length 0: an empty response", RAW("p\0\0\0\x16SCRAM-SHA-256\0\0\0\0\0"), 0, "SCRAM-SHA-256",
     "", 0},
    {"-1 then bytes", RAW("p\0\0\0\x17SCRAM-SHA-256\0\xff\xff\xff\xffx"), -1, NULL, NULL, 0},
    {"data length beyond the message", RAW("p\0\0\0\x18SCRAM-SHA-256\0\0\0\0\x03xy"), -1, NULL,
     NULL, 0},
    {"data length short of the message", RAW("p\0\0\0\x18SCRAM-SHA-256\0\0\0\0\x01xy"), -1, NULL,
     NULL, 0},
    {"data length huge", RAW("p\0\0\0\x18SCRAM-SHA-256\0\x7f\xff\xff\xffxy"), -1, NULL, NULL, 0},
    {"data length -2", RAW("p\0\0\0\x18SCRAM-SHA-256\0\xff\xff\xff\xfexy"), -1, NULL, NULL, 0},
    {"no length word", RAW("p\0\0\0\x12SCRAM-SHA-256\0"), -1, NULL, NULL, 0},
    {"3 bytes of length word", RAW("p\0\0\0\x15SCRAM-SHA-256\0\0\0\0"), -1, NULL, NULL, 0},
    {"mechanism without NUL", RAW("p\0\0\0\x11SCRAM-SHA-256"), -1, NULL, NULL, 0},
    {"empty mechanism", RAW("p\0\0\0\x09\0\0\0\0\0"), -1, NULL, NULL, 0},
    {"no body", RAW("p\0\0\0\x04"), -1, NULL, NULL, 0},
    {"wrong type", RAW("Q\0\0\0\x16SCRAM-SHA-256\0\0\0\0\0"), -1, NULL, NULL, 0},
    {"length word too big", RAW("p\0\0\0\x17SCRAM-SHA-256\0\0\0\0\0"), -1, NULL, NULL, 0},
    {"length word huge", RAW("p\xff\xff\xff\xffSCRAM-SHA-256\0\0\0\0\0"), -1, NULL, NULL, 0},
};

START_TEST(initial_parse_row)
{
    const struct initial_case *t = &initial_cases[_i];
    const char *mech = NULL;
    const uint8_t *data = (const uint8_t *)"sentinel";
    size_t datalen = 999;
    int r = pg_sasl_initial_parse(t->bytes, t->n, &mech, &data, &datalen);
    ck_assert_msg(r == t->want, "%s: got %d", t->name, r);
    if (r != 0)
        return;
    ck_assert_str_eq(mech, t->mech);
    ck_assert_uint_eq(datalen, t->datalen);
    if (t->data == NULL) {
        ck_assert_ptr_null(data);
    } else {
        ck_assert_ptr_nonnull(data);
        ck_assert_ptr_eq(data, t->bytes + t->n - t->datalen);
        ck_assert(memcmp(data, t->data, t->datalen) == 0);
    }
    for (size_t k = 0; k < t->n; k++)
        ck_assert_msg(pg_sasl_initial_parse(t->bytes, k, &mech, &data, &datalen) == -1,
                      "%s cut at %zu", t->name, k);
}
END_TEST

/* ---- SASLResponse ------------------------------------------------------- */

START_TEST(response_parse)
{
    static const uint8_t m[] = "p\0\0\0\x0a"
                               "c=biws";
    const uint8_t *data;
    size_t datalen;
    ck_assert_int_eq(pg_sasl_response_parse(m, sizeof(m) - 1, &data, &datalen), 0);
    ck_assert_ptr_eq(data, m + 5);
    ck_assert_uint_eq(datalen, 6);
    /* an empty body is a message (the SCRAM parser refuses it, not this one) */
    ck_assert_int_eq(pg_sasl_response_parse(RAW("p\0\0\0\x04"), &data, &datalen), 0);
    ck_assert_uint_eq(datalen, 0);
    for (size_t k = 0; k < sizeof(m) - 1; k++)
        ck_assert_int_eq(pg_sasl_response_parse(m, k, &data, &datalen), -1);
    ck_assert_int_eq(pg_sasl_response_parse(RAW("Q\0\0\0\x0a"
                                                "c=biws"),
                                            &data, &datalen),
                     -1);
    ck_assert_int_eq(pg_sasl_response_parse(RAW("p\0\0\0\x0b"
                                                "c=biws"),
                                            &data, &datalen),
                     -1);
    ck_assert_int_eq(pg_sasl_response_parse(RAW("p\xff\xff\xff\xff"
                                                "c=biws"),
                                            &data, &datalen),
                     -1);
    ck_assert_int_eq(pg_sasl_response_parse(NULL, 10, &data, &datalen), -1);
}
END_TEST

/* ---- the 'p' builders --------------------------------------------------- */

START_TEST(p_build)
{
    uint8_t out[64];
    const char *pw;
    size_t pwlen;
    /* a PasswordMessage: the body ends with its NUL */
    size_t n = pg_p_build(out, sizeof(out), "hunter2", 8);
    ck_assert_uint_eq(n, 13);
    ck_assert_mem_eq(out, "p\0\0\0\x0chunter2\0", 13);
    ck_assert_int_eq(pg_password_parse(out, n, &pw, &pwlen), 0);
    ck_assert_str_eq(pw, "hunter2");
    ck_assert_uint_eq(pwlen, 7);
    /* an empty SASLResponse */
    ck_assert_uint_eq(pg_p_build(out, sizeof(out), NULL, 0), 5);
    ck_assert_mem_eq(out, "p\0\0\0\x04", 5);
    /* room */
    ck_assert_uint_eq(pg_p_build(out, 13, "hunter2", 8), 13);
    for (size_t cap = 0; cap < 13; cap++)
        ck_assert_msg(pg_p_build(out, cap, "hunter2", 8) == 0, "cap %zu", cap);
    ck_assert_uint_eq(pg_p_build(out, sizeof(out), "x", SIZE_MAX), 0);
    ck_assert_uint_eq(pg_p_build(out, sizeof(out), "x", SIZE_MAX - 4), 0);
}
END_TEST

START_TEST(sasl_initial_build)
{
    uint8_t out[128];
    static const char first[] = "n,,n=,r=0123456789abcdef";
    const char *mech;
    const uint8_t *data;
    size_t datalen;
    size_t total = 5 + sizeof(MECH) + 4 + sizeof(first) - 1;

    size_t n = pg_sasl_initial_build(out, sizeof(out), MECH, first, sizeof(first) - 1);
    ck_assert_uint_eq(n, total);
    ck_assert_int_eq(out[0], 'p');
    ck_assert_int_eq(pg_sasl_initial_parse(out, n, &mech, &data, &datalen), 0);
    ck_assert_str_eq(mech, MECH);
    ck_assert_uint_eq(datalen, sizeof(first) - 1);
    ck_assert(memcmp(data, first, datalen) == 0);
    /* golden bytes of a short one */
    ck_assert_uint_eq(pg_sasl_initial_build(out, sizeof(out), "M", "ab", 2), 13);
    ck_assert_mem_eq(out,
                     "p\0\0\0\x0cM\0\0\0\0\x02"
                     "ab",
                     13);
    /* an empty initial response is length 0 (not -1) */
    ck_assert_uint_eq(pg_sasl_initial_build(out, sizeof(out), "M", NULL, 0), 11);
    ck_assert_int_eq(pg_sasl_initial_parse(out, 11, &mech, &data, &datalen), 0);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(datalen, 0);
    /* room: exactly, then every smaller capacity */
    ck_assert_uint_eq(pg_sasl_initial_build(out, total, MECH, first, sizeof(first) - 1), total);
    for (size_t cap = 0; cap < total; cap++)
        ck_assert_msg(pg_sasl_initial_build(out, cap, MECH, first, sizeof(first) - 1) == 0,
                      "cap %zu", cap);
    ck_assert_uint_eq(pg_sasl_initial_build(out, sizeof(out), "M", first, SIZE_MAX), 0);
    ck_assert_uint_eq(pg_sasl_initial_build(out, sizeof(out), "M", first, SIZE_MAX - 2), 0);
}
END_TEST

Suite *pgauth_suite(void)
{
    Suite *s = suite_create("pgauth");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, auth_parse_row, 0, NELEM(auth_cases));
    tcase_add_test(tc, auth_parse_null);
    tcase_add_loop_test(tc, password_parse_row, 0, NELEM(password_cases));
    tcase_add_loop_test(tc, initial_parse_row, 0, NELEM(initial_cases));
    tcase_add_test(tc, response_parse);
    suite_add_tcase(s, tc);
    TCase *tb = tcase_create("build");
    tcase_add_test(tb, auth_build);
    tcase_add_test(tb, p_build);
    tcase_add_test(tb, sasl_initial_build);
    suite_add_tcase(s, tb);
    return s;
}
