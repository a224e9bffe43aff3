/*
 * test_tlsctx.c - unit tests for src/tlsctx.c's own decisions: what counts
 * as an IP literal and as a Cloud SQL "project:instance" name (tables),
 * the per-session name set-up each leads to (SNI or not), and the errors
 * of building a back context from roots that are missing or empty. Chain
 * verification itself is test_verifymsg.c's and test_certcheck.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "suites.h"
#include "tlsctx.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *s;
    int ip, cloudsql;
} name_cases[] = {
    {"127.0.0.1", 1, 0},
    {"10.0.0.255", 1, 0},
    {"::1", 1, 0},
    {"fe80::1", 1, 0},
    {"::ffff:1.2.3.4", 1, 0},
    {"1.2.3", 0, 0},
    {"256.1.1.1", 0, 0},
    {"db.example.com", 0, 0},
    {"localhost", 0, 0},
    {"", 0, 0},
    {"my-project:my-instance", 0, 1},
    {"p:i", 0, 1},
    {"my-project:region:instance", 0, 0}, /* two colons */
    {":instance", 0, 0},
    {"project:", 0, 0},
    {"1::", 1, 0},  /* an IPv6 literal, not a project */
    {"a::b", 1, 0}, /* hex digits: IPv6 */
    {"a::g", 0, 0},
};

START_TEST(test_name_kinds)
{
    ck_assert_msg(tlsctx_is_ip(name_cases[_i].s) == (name_cases[_i].ip != 0), "is_ip(\"%s\")",
                  name_cases[_i].s);
    ck_assert_msg(tlsctx_is_cloudsql_name(name_cases[_i].s) == (name_cases[_i].cloudsql != 0),
                  "is_cloudsql_name(\"%s\")", name_cases[_i].s);
}
END_TEST

/* A DNS name is sent as SNI and checked as a host name; an IP literal is
 * not sent (RFC 6066) and is checked against IP SANs; a Cloud SQL name is
 * neither (not a host name): its own callback compares it with the CN. */
static const struct {
    const char *name, *sni, *host, *ip;
    int own_callback;
} setup_cases[] = {
    {"db.example.com", "db.example.com", "db.example.com", NULL, 1},
    {"10.1.2.3", NULL, NULL, "10.1.2.3", 0},
    {"::1", NULL, NULL, "0:0:0:0:0:0:0:1", 0}, /* as OpenSSL prints it */
    {"proj:inst", NULL, NULL, NULL, 1},
};

START_TEST(test_session_setup)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    SSL *ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    char err[256] = "";
    ck_assert_int_eq(tlsctx_back_session_setup(ssl, setup_cases[_i].name, err, sizeof(err)), 0);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (setup_cases[_i].sni == NULL)
        ck_assert_ptr_null(sni);
    else
        ck_assert_str_eq(sni, setup_cases[_i].sni);
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    const char *host = X509_VERIFY_PARAM_get0_host(param, 0);
    if (setup_cases[_i].host == NULL)
        ck_assert_ptr_null(host);
    else
        ck_assert_str_eq(host, setup_cases[_i].host);
    char *ip = X509_VERIFY_PARAM_get1_ip_asc(param);
    if (setup_cases[_i].ip == NULL)
        ck_assert_ptr_null(ip);
    else
        ck_assert_str_eq(ip, setup_cases[_i].ip);
    OPENSSL_free(ip);
    ck_assert_int_eq(SSL_get_verify_callback(ssl) != NULL, setup_cases[_i].own_callback);
    if (setup_cases[_i].own_callback)
        ck_assert_int_eq(SSL_get_verify_mode(ssl), SSL_VERIFY_PEER);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}
END_TEST

START_TEST(test_back_roots_errors)
{
    char summary[256], err[512];
    /* Missing file: the error names the flag and the path. */
    SSL_CTX *ctx =
        tlsctx_back("/nonexistent/roots.pem", summary, sizeof(summary), err, sizeof(err));
    ck_assert_ptr_null(ctx);
    ck_assert_msg(strstr(err, "--client-ca-roots-path") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "/nonexistent/roots.pem") != NULL, "%s", err);

    /* A file without a certificate: refused, not an empty trust store. */
    char path[] = "/tmp/pgtp-test-roots-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "not a certificate\n", 18), 18);
    close(fd);
    err[0] = '\0';
    ctx = tlsctx_back(path, summary, sizeof(summary), err, sizeof(err));
    ck_assert_ptr_null(ctx);
    ck_assert_msg(strstr(err, path) != NULL, "%s", err);
    unlink(path);

    /* An empty directory: nothing to load, and said so. */
    char dir[] = "/tmp/pgtp-test-rootdir-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    err[0] = '\0';
    ctx = tlsctx_back(dir, summary, sizeof(summary), err, sizeof(err));
    ck_assert_ptr_null(ctx);
    ck_assert_msg(strstr(err, dir) != NULL, "%s", err);
    rmdir(dir);
}
END_TEST

Suite *tlsctx_suite(void)
{
    Suite *s = suite_create("tlsctx");
    TCase *t = tcase_create("tlsctx");
    tcase_add_loop_test(t, test_name_kinds, 0, NELEM(name_cases));
    tcase_add_loop_test(t, test_session_setup, 0, NELEM(setup_cases));
    tcase_add_test(t, test_back_roots_errors);
    suite_add_tcase(s, t);
    return s;
}
