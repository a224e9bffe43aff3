/*
 * test_bridgesecret.c - unit tests for src/bridgesecret.c through fmemopen:
 * the secret line (43 characters of base64url, no padding), a bridges-file
 * line whose verifier that very text opens, --iterations, the refusals,
 * and the base64url encoder on its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authfile.h"
#include "bridgesecret.h"
#include "scram.h"
#include "suites.h"

struct run {
    int rc;
    char out[2048], err[2048];
};

static void run(struct run *r, int argc, const char *const *argv)
{
    memset(r, 0, sizeof(*r));
    FILE *out = fmemopen(r->out, sizeof(r->out) - 1, "w");
    FILE *err = fmemopen(r->err, sizeof(r->err) - 1, "w");
    r->rc = bridgesecret_main(argc, (char **)argv, out, err);
    fclose(out);
    fclose(err);
}

START_TEST(test_lines)
{
    struct run r;
    const char *argv[] = {"bridge-secret", "vpc-1.prod", "--iterations", "4096"};
    run(&r, 4, argv);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(r.err, "");
    char secret[64];
    ck_assert_int_eq(sscanf(r.out, "secret=%63[A-Za-z0-9_-]\n", secret), 1);
    ck_assert_uint_eq(strlen(secret), 43); /* 32 bytes */
    const char *line = strchr(r.out, '\n') + 1;
    ck_assert_int_eq(strncmp(line, "\"vpc-1.prod\" \"SCRAM-SHA-256$4096:", 33), 0);
    /* The line is a bridges file, and the secret opens its verifier. */
    char e[256];
    struct authfile *af = authfile_parse(line, strlen(line), "b", e, sizeof(e));
    ck_assert_msg(af != NULL, "%s", e);
    const struct scram_secret *v = authfile_find(af, "vpc-1.prod");
    ck_assert_ptr_nonnull(v);
    uint8_t salted[32], stored[32];
    ck_assert_int_eq(scram_salted_password(secret, v->salt, v->salt_len, v->iterations, salted), 0);
    scram_keys(salted, NULL, stored, NULL);
    ck_assert_mem_eq(stored, v->stored_key, 32);
    authfile_free(af);
    /* Another run, another secret. */
    struct run r2;
    run(&r2, 4, argv);
    ck_assert_str_ne(r.out, r2.out);
}
END_TEST

START_TEST(test_default_iterations)
{
    struct run r;
    const char *argv[] = {"bridge-secret", "db1"};
    run(&r, 2, argv);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\n\"db1\" \"SCRAM-SHA-256$100000:"));
}
END_TEST

START_TEST(test_refusals)
{
    struct run r;
    run(&r, 1, (const char *const[]){"bridge-secret"});
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "usage: pg-tls-proxy bridge-secret ID"));
    run(&r, 2, (const char *const[]){"bridge-secret", "a b"});
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "\"a b\" is not a bridge id"));
    run(&r, 3, (const char *const[]){"bridge-secret", "a", "b"});
    ck_assert_int_eq(r.rc, 2);
    run(&r, 4, (const char *const[]){"bridge-secret", "a", "--iterations", "0"});
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--iterations must be a number"));
    run(&r, 3, (const char *const[]){"bridge-secret", "a", "--iterations"});
    ck_assert_int_eq(r.rc, 2);
    run(&r, 2, (const char *const[]){"bridge-secret", "--help"});
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage:"));
    ck_assert_str_eq(r.err, "");
}
END_TEST

START_TEST(test_encode)
{
    char out[20];
    ck_assert_int_eq(bridgesecret_encode((const uint8_t *)"\xfb\xff\xfe", 3, out, sizeof(out)), 4);
    ck_assert_str_eq(out, "-__-");
    ck_assert_int_eq(bridgesecret_encode((const uint8_t *)"ab", 2, out, sizeof(out)), 3);
    ck_assert_str_eq(out, "YWI");
    /* Room for the padded form: 4 characters per 3 bytes and a NUL. */
    ck_assert_int_eq(bridgesecret_encode((const uint8_t *)"abcdefghijk", 11, out, 17), 15);
    ck_assert_int_eq(bridgesecret_encode((const uint8_t *)"abcdefghijk", 11, out, 16), -1);
}
END_TEST

Suite *bridgesecret_suite(void)
{
    Suite *s = suite_create("bridgesecret");
    TCase *t = tcase_create("main");
    tcase_add_test(t, test_lines);
    tcase_add_test(t, test_default_iterations);
    tcase_add_test(t, test_refusals);
    tcase_add_test(t, test_encode);
    suite_add_tcase(s, t);
    return s;
}
