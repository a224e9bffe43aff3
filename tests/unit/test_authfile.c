/*
 * test_authfile.c - unit tests for src/authfile.c: PgBouncer's userlist
 * format (quotes doubled inside quotes, comments, blank lines, CRLF), the
 * binary-search lookup over many users, and every refusal with the file,
 * line and fix in its message and never the verifier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authfile.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))
#define V1                                                                                         \
    "SCRAM-SHA-256$4096:lFwC9V339dgV/fqpnr7yaw==$KJ5oSJJBuy5PH8emZHl6OsnCBdDGWUaUVrhNftRX4j0=:"   \
    "Cw5QYuiR3j19oC6s11xht+H7h6Nf62+6Zqu6rjq65X4="
#define V2                                                                                         \
    "SCRAM-SHA-256$4096:quH3msUHySZxoYPbg3rdqw==$V9cckYMB65Ymbf9qQJMoqssq7wsJcz/cDRjB03zFtl8=:"   \
    "/3HdfJ47uqNqAV/Ea/+eNhPx74gQFRdFTZB1Eh0nX3M="

static struct authfile *parse(const char *text, char *err, size_t errlen)
{
    return authfile_parse(text, strlen(text), "users.txt", err, errlen);
}

START_TEST(test_good)
{
    char err[256];
    const char *text = "; PgBouncer comment\n"
                       "# another comment\n"
                       "\n"
                       "  \"alice\" \"" V1 "\"\r\n"
                       "\"we\"\"ird\"\t\"" V2 "\"  \n"
                       "\"bob\" \"" V2 "\"";
    struct authfile *af = parse(text, err, sizeof(err));
    ck_assert_msg(af != NULL, "%s", err);
    ck_assert_uint_eq(authfile_count(af), 3);
    const struct scram_secret *a = authfile_find(af, "alice");
    ck_assert_ptr_nonnull(a);
    struct scram_secret want;
    ck_assert_int_eq(scram_secret_parse(V1, &want), 0);
    ck_assert_mem_eq(a->stored_key, want.stored_key, SCRAM_KEY_LEN);
    ck_assert_ptr_nonnull(authfile_find(af, "we\"ird"));
    ck_assert_ptr_nonnull(authfile_find(af, "bob"));
    ck_assert_ptr_null(authfile_find(af, "Alice"));
    ck_assert_ptr_null(authfile_find(af, "carol"));
    ck_assert_ptr_null(authfile_find(af, ""));
    authfile_free(af);
    /* Empty and comment-only files hold no users. */
    af = parse("", err, sizeof(err));
    ck_assert_ptr_nonnull(af);
    ck_assert_uint_eq(authfile_count(af), 0);
    ck_assert_ptr_null(authfile_find(af, "alice"));
    authfile_free(af);
    authfile_free(NULL);
}
END_TEST

START_TEST(test_many)
{
    size_t n = 5000, cap = n * 160;
    char *text = malloc(cap), err[256];
    size_t o = 0;
    for (size_t i = n; i > 0; i--)
        o += (size_t)snprintf(text + o, cap - o, "\"user%zu\" \"%s\"\n", i, V1);
    struct authfile *af = authfile_parse(text, o, "big", err, sizeof(err));
    ck_assert_msg(af != NULL, "%s", err);
    ck_assert_uint_eq(authfile_count(af), n);
    for (size_t i = 1; i <= n; i++) {
        char u[32];
        snprintf(u, sizeof(u), "user%zu", i);
        ck_assert_ptr_nonnull(authfile_find(af, u));
    }
    ck_assert_ptr_null(authfile_find(af, "user0"));
    authfile_free(af);
    free(text);
}
END_TEST

static const struct bad_case {
    const char *text;
    const char *want; /* in the error */
} bad_cases[] = {
    {"alice " V1 "\n", "users.txt:1: expected a user name in double quotes"},
    {"\n\"alice\" \"md5c5ea06af6d9c9f4e4a2b63ba4d5d1a8b\"\n",
     "users.txt:2: user \"alice\": an md5 hash; only SCRAM-SHA-256 verifiers are accepted; make "
     "one with pg-tls-proxy scram-secret USER"},
    {"\"alice\" \"hunter2\"\n",
     "users.txt:1: user \"alice\": a plaintext password or an unknown hash; only SCRAM-SHA-256 "
     "verifiers are accepted; make one with pg-tls-proxy scram-secret USER"},
    {"\"alice\" \"SCRAM-SHA-256$4096:abc$def:ghi\"\n",
     "users.txt:1: user \"alice\": a malformed SCRAM-SHA-256 verifier"},
    {"\"alice \"" V1 "\"\n", "users.txt:1: user \"alice \": expected its verifier in double quotes"},
    {"\"alice\n", "users.txt:1: the user name has no closing double quote"},
    {"\"\" \"" V1 "\"\n", "users.txt:1: the user name is empty"},
    {"\"alice\"\n", "users.txt:1: user \"alice\": expected its verifier in double quotes"},
    {"\"alice\" \"" V1 "\" extra\n", "users.txt:1: user \"alice\": unexpected text after"},
    {"\"alice\" \"" V1 "\n", "users.txt:1: user \"alice\": expected its verifier"},
    {"\"alice\" \"" V1 "\"\n\"bob\" \"" V2 "\"\n\"alice\" \"" V2 "\"\n",
     "users.txt: user \"alice\" is listed twice (lines 1 and 3); keep one line"},
};

START_TEST(test_bad)
{
    char err[512];
    const struct bad_case *bc = &bad_cases[_i];
    ck_assert_ptr_null(parse(bc->text, err, sizeof(err)));
    ck_assert_msg(strstr(err, bc->want) != NULL, "got: %s\nwant: %s", err, bc->want);
    /* Never a key, a hash or a password in the message. */
    ck_assert_ptr_null(strstr(err, "KJ5oSJJBuy5PH8emZHl6"));
    ck_assert_ptr_null(strstr(err, "V9cckYMB65Ymbf9qQJMo"));
    ck_assert_ptr_null(strstr(err, "c5ea06af6d9c9f"));
    ck_assert_ptr_null(strstr(err, "hunter2"));
}
END_TEST

START_TEST(test_nul_and_load)
{
    char err[512];
    static const char nul[] = "\"alice\" \"x\0y\"\n";
    ck_assert_ptr_null(authfile_parse(nul, sizeof(nul) - 1, "f", err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "f:1: a NUL byte"));

    char path[] = "/tmp/pgtp-authfile-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "\"alice\" \"" V1 "\"\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    struct authfile *af = authfile_load(path, err, sizeof(err));
    ck_assert_msg(af != NULL, "%s", err);
    ck_assert_ptr_nonnull(authfile_find(af, "alice"));
    authfile_free(af);
    unlink(path);
    ck_assert_ptr_null(authfile_load(path, err, sizeof(err)));
    ck_assert_msg(strstr(err, "cannot open auth file /tmp/pgtp-authfile-") != NULL &&
                      strstr(err, "No such file or directory") != NULL,
                  "%s", err);
    ck_assert_ptr_null(authfile_load("/tmp", err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "is not a regular file"));
}
END_TEST

Suite *authfile_suite(void)
{
    Suite *s = suite_create("authfile");
    TCase *t = tcase_create("parse");
    tcase_add_test(t, test_good);
    tcase_add_test(t, test_many);
    tcase_add_loop_test(t, test_bad, 0, NELEM(bad_cases));
    tcase_add_test(t, test_nul_and_load);
    suite_add_tcase(s, t);
    return s;
}
