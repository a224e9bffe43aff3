/*
 * test_scramsecret.c - unit tests for src/scramsecret.c through fmemopen:
 * the two printed lines (user quoting with '"' doubled in both), a verifier
 * that the password really opens, --iterations, and every refusal (no
 * user, no password, an empty or too long password, bad iterations).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scram.h"
#include "scramsecret.h"
#include "suites.h"

struct run {
    int rc;
    char out[2048], err[2048];
};

static void run(struct run *r, const char *input, int argc, const char *const *argv)
{
    static char inbuf[4096];
    size_t n = strlen(input);
    memcpy(inbuf, input, n + 1);
    FILE *in = fmemopen(inbuf, n > 0 ? n : 1, "r");
    if (n == 0)
        getc(in); /* an empty stream: at EOF from the start */
    memset(r, 0, sizeof(*r));
    FILE *out = fmemopen(r->out, sizeof(r->out) - 1, "w");
    FILE *err = fmemopen(r->err, sizeof(r->err) - 1, "w");
    r->rc = scramsecret_main(argc, (char **)argv, in, out, err);
    fclose(in);
    fclose(out);
    fclose(err);
}

/* The verifier between the given prefix and the next quote. */
static void verifier_after(const char *text, const char *prefix, char q, char *v, size_t cap)
{
    const char *p = strstr(text, prefix);
    ck_assert_msg(p != NULL, "no %s in %s", prefix, text);
    p += strlen(prefix);
    const char *e = strchr(p, q);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_lt((size_t)(e - p), cap);
    memcpy(v, p, (size_t)(e - p));
    v[e - p] = '\0';
}

START_TEST(test_lines)
{
    struct run r;
    const char *argv[] = {"scram-secret", "we\"ird"};
    run(&r, "s3cret pass\nignored second line\n", 2, argv);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_str_eq(r.err, "");
    char v1[256], v2[256];
    verifier_after(r.out, "\"we\"\"ird\" \"", '"', v1, sizeof(v1));
    verifier_after(r.out, "\nALTER ROLE \"we\"\"ird\" PASSWORD '", '\'', v2, sizeof(v2));
    ck_assert_str_eq(v1, v2);
    ck_assert_msg(strstr(r.out, "';\n") != NULL && strncmp(v1, "SCRAM-SHA-256$4096:", 19) == 0,
                  "%s", r.out);
    /* Exactly two lines. */
    int lines = 0;
    for (const char *p = r.out; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 2);
    /* The password opens it; another does not. */
    struct scram_secret s;
    uint8_t salted[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
    ck_assert_int_eq(scram_secret_parse(v1, &s), 0);
    ck_assert_uint_eq(s.salt_len, 16);
    ck_assert_int_eq(scram_salted_password("s3cret pass", s.salt, 16, s.iterations, salted), 0);
    scram_keys(salted, NULL, stored, NULL);
    ck_assert_mem_eq(stored, s.stored_key, SCRAM_KEY_LEN);
    ck_assert_int_eq(scram_salted_password("s3cret pas", s.salt, 16, s.iterations, salted), 0);
    scram_keys(salted, NULL, stored, NULL);
    ck_assert(memcmp(stored, s.stored_key, SCRAM_KEY_LEN) != 0);
    /* Never the password in the output. */
    ck_assert_ptr_null(strstr(r.out, "s3cret"));
}
END_TEST

START_TEST(test_iterations_and_crlf)
{
    struct run r;
    const char *argv[] = {"scram-secret", "bob", "--iterations", "10000"};
    run(&r, "pw\r\n", 4, argv);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\"bob\" \"SCRAM-SHA-256$10000:"));
    char v[256];
    verifier_after(r.out, "\"bob\" \"", '"', v, sizeof(v));
    struct scram_secret s;
    uint8_t salted[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
    ck_assert_int_eq(scram_secret_parse(v, &s), 0);
    ck_assert_int_eq(scram_salted_password("pw", s.salt, 16, 10000, salted), 0);
    scram_keys(salted, NULL, stored, NULL);
    ck_assert_mem_eq(stored, s.stored_key, SCRAM_KEY_LEN);

    const char *argv2[] = {"scram-secret", "--iterations=1000", "bob"};
    run(&r, "pw", 3, argv2); /* no newline at the end */
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "$1000:"));
    ck_assert_ptr_nonnull(strstr(r.err, "below PostgreSQL's 4096"));
}
END_TEST

START_TEST(test_refusals)
{
    struct run r;
    static const struct {
        const char *input;
        int argc;
        const char *argv[4];
        int rc;
        const char *err;
    } cases[] = {
        {"pw\n", 1, {"scram-secret"}, 2, "usage: pg-tls-proxy scram-secret USER"},
        {"pw\n", 3, {"scram-secret", "a", "b"}, 2, "one user at a time"},
        {"pw\n", 3, {"scram-secret", "a", "--iterations"}, 2, "--iterations needs a number"},
        {"pw\n", 4, {"scram-secret", "a", "--iterations", "0"}, 2, "from 1 to 10000000"},
        {"pw\n", 4, {"scram-secret", "a", "--iterations", "12x"}, 2, "from 1 to 10000000"},
        {"pw\n", 4, {"scram-secret", "a", "--iterations", "-5"}, 2, "from 1 to 10000000"},
        {"pw\n", 4, {"scram-secret", "a", "--iterations", "99999999"}, 2, "from 1 to 10000000"},
        {"pw\n", 3, {"scram-secret", "a", "--bogus"}, 2, "unknown option --bogus"},
        {"", 2, {"scram-secret", "a"}, 1, "no password on standard input"},
        {"\n", 2, {"scram-secret", "a"}, 1, "the password is empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run(&r, cases[i].input, cases[i].argc, cases[i].argv);
        ck_assert_int_eq(r.rc, cases[i].rc);
        ck_assert_msg(strstr(r.err, cases[i].err) != NULL, "case %zu: %s", i, r.err);
        ck_assert_str_eq(r.out, "");
    }
    /* Too long. */
    char *big = malloc(SCRAM_PASSWORD_MAX + 10);
    memset(big, 'x', SCRAM_PASSWORD_MAX + 8);
    big[SCRAM_PASSWORD_MAX + 8] = '\n';
    big[SCRAM_PASSWORD_MAX + 9] = '\0';
    const char *argv[] = {"scram-secret", "a"};
    run(&r, big, 2, argv);
    free(big);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_ptr_nonnull(strstr(r.err, "longer than 1024 bytes"));
    const char *help[] = {"scram-secret", "--help"};
    run(&r, "", 2, help);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage:"));
}
END_TEST

Suite *scramsecret_suite(void)
{
    Suite *s = suite_create("scramsecret");
    TCase *t = tcase_create("cli");
    tcase_add_test(t, test_lines);
    tcase_add_test(t, test_iterations_and_crlf);
    tcase_add_test(t, test_refusals);
    suite_add_tcase(s, t);
    return s;
}
