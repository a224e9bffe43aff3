/*
 * test_certcheck.c - unit tests for src/certcheck.c: an upstream leaf's CN against its CAs' name
 * constraints (table of CNs and constraints, several CNs, and through the back context's verify
 * callback with the message the client gets), the front certificate's dates and chain, whole days
 * left (the SNI warning's rate limit is in test_sniwarn.c). Certificates are made here in memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "suites.h"
#include "tlsctx.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))
#define DAY (24L * 3600)

static EVP_PKEY *key_a, *key_b;

static void keys_setup(void)
{
    key_a = EVP_EC_gen("P-256");
    key_b = EVP_EC_gen("P-256");
}

static void keys_teardown(void)
{
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    ck_assert_msg(e != NULL, "extension %d \"%s\"", nid, value);
    ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/*
 * A certificate with the CNs in cns ("a" or "a|b": several CN entries),
 * valid from now+from to now+to, signed by issuer (NULL: self-signed with
 * key). ca: a CA; san and nc: subjectAltName and nameConstraints, or NULL.
 */
static X509 *make(const char *cns, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long from, long to,
                  int ca, const char *san, const char *nc)
{
    static long serial = 1000;
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", cns);
    for (char *save = NULL, *cn = strtok_r(buf, "|", &save); cn != NULL;
         cn = strtok_r(NULL, "|", &save))
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, from, NULL);
    X509_time_adj_ex(X509_getm_notAfter(x), 0, to, NULL);
    X509_set_pubkey(x, key);
    X509 *signer = issuer != NULL ? issuer : x;
    add_ext(x, signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, signer, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (issuer != NULL)
        add_ext(x, signer, NID_authority_key_identifier, "keyid");
    if (san != NULL)
        add_ext(x, signer, NID_subject_alt_name, san);
    if (nc != NULL)
        add_ext(x, signer, NID_name_constraints, nc);
    ck_assert_int_gt(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()), 0);
    return x;
}

/* ---- the CN against name constraints ------------------------------------ */

static const struct nc_case {
    const char *cns, *nc;
    int want;
} nc_cases[] = {
    {"localhost", "critical,permitted;DNS:example.com", X509_V_ERR_PERMITTED_VIOLATION},
    {"db.example.com", "critical,permitted;DNS:example.com", X509_V_OK},
    {"example.com", "critical,permitted;DNS:example.com", X509_V_OK},
    {"DB.Example.COM", "critical,permitted;DNS:example.com", X509_V_OK},
    {"badexample.com", "critical,permitted;DNS:example.com", X509_V_ERR_PERMITTED_VIOLATION},
    {"example.com", "critical,permitted;DNS:.example.com", X509_V_ERR_PERMITTED_VIOLATION},
    {"a.example.com", "critical,permitted;DNS:.example.com", X509_V_OK},
    {"localhost", "critical,excluded;DNS:localhost", X509_V_ERR_EXCLUDED_VIOLATION},
    {"db.example.com", "critical,excluded;DNS:localhost", X509_V_OK},
    /* No DNS subtree: DNS names are not constrained (RFC 5280 4.2.1.10). */
    {"localhost", "critical,permitted;IP:10.0.0.0/255.0.0.0", X509_V_OK},
    {"myproj:myinst", "critical,permitted;DNS:example.com", X509_V_ERR_PERMITTED_VIOLATION},
    /* Every CN counts: the host check accepts a match on any of them. */
    {"db.example.com|localhost", "critical,permitted;DNS:example.com",
     X509_V_ERR_PERMITTED_VIOLATION},
    {"localhost|db.example.com", "critical,permitted;DNS:example.com",
     X509_V_ERR_PERMITTED_VIOLATION},
    {"a.example.com|b.example.com", "critical,permitted;DNS:example.com", X509_V_OK},
};

START_TEST(test_cn_constraints)
{
    const struct nc_case *c = &nc_cases[_i];
    X509 *ca = make("nc", key_a, NULL, NULL, -DAY, 30 * DAY, 1, NULL, c->nc);
    X509 *leaf = make(c->cns, key_b, ca, key_a, -DAY, 30 * DAY, 0, NULL, NULL);
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, leaf);
    sk_X509_push(chain, ca);
    char who[256], cons[256];
    int r = tlsctx_cn_constraints(chain, who, sizeof(who), cons, sizeof(cons));
    ck_assert_msg(r == c->want, "CN %s under %s: %d, want %d", c->cns, c->nc, r, c->want);
    if (r != X509_V_OK)
        ck_assert_str_eq(who, "CN=nc,O=t");
    else
        ck_assert_str_eq(who, "");
    /* The leaf alone (a trust anchor itself): no CA above it, nothing to check. */
    STACK_OF(X509) *alone = sk_X509_new_null();
    sk_X509_push(alone, leaf);
    ck_assert_int_eq(tlsctx_cn_constraints(alone, who, sizeof(who), cons, sizeof(cons)), X509_V_OK);
    sk_X509_free(alone);
    sk_X509_free(chain);
    X509_free(leaf);
    X509_free(ca);
}
END_TEST

START_TEST(test_cn_constraints_text)
{
    X509 *ca = make("nc", key_a, NULL, NULL, -DAY, 30 * DAY, 1, NULL,
                    "critical,permitted;DNS:example.com,permitted;DNS:.corp.example,excluded;DNS:"
                    "bad.example.com");
    X509 *leaf = make("localhost", key_b, ca, key_a, -DAY, 30 * DAY, 0, NULL, NULL);
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, leaf);
    sk_X509_push(chain, ca);
    char who[256], cons[256];
    ck_assert_int_eq(tlsctx_cn_constraints(chain, who, sizeof(who), cons, sizeof(cons)),
                     X509_V_ERR_PERMITTED_VIOLATION);
    ck_assert_str_eq(cons, "permitted DNS:example.com, DNS:.corp.example; excluded "
                           "DNS:bad.example.com");
    sk_X509_free(chain);
    X509_free(leaf);
    X509_free(ca);
}
END_TEST

/* Verify as a back session does (the back context's callbacks, name name). */
static long verify_back(X509 *root, X509 *leaf, const char *name, struct tlsctx_verify_failure *out,
                        int *recorded)
{
    char path[] = "/tmp/pgtp-certcheck.XXXXXX", summary[256], err[256];
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *fp = fdopen(fd, "w");
    ck_assert_ptr_nonnull(fp);
    PEM_write_X509(fp, root);
    fclose(fp);
    SSL_CTX *ctx = tlsctx_back(path, summary, sizeof(summary), err, sizeof(err));
    unlink(path);
    ck_assert_msg(ctx != NULL, "%s", err);
    SSL *ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    ck_assert_int_eq(tlsctx_back_session_setup(ssl, name, err, sizeof(err)), 0);
    STACK_OF(X509) *sent = sk_X509_new_null();
    sk_X509_push(sent, leaf);
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    ck_assert_int_eq(X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx), leaf, sent), 1);
    X509_STORE_CTX_set_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx(), ssl);
    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(sc), SSL_get0_param(ssl));
    X509_STORE_CTX_set_verify_cb(sc, SSL_get_verify_callback(ssl));
    long rc = X509_verify_cert(sc) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(sc);
    X509_STORE_CTX_free(sc);
    sk_X509_free(sent);
    const struct tlsctx_verify_failure *f = tlsctx_verify_failure(ssl);
    *recorded = f != NULL;
    if (f != NULL)
        *out = *f;
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return rc;
}

START_TEST(test_back_verify_name_constraints)
{
    struct tlsctx_verify_failure f;
    int recorded;
    X509 *nc = make("nc", key_a, NULL, NULL, -DAY, 30 * DAY, 1, NULL,
                    "critical,permitted;DNS:example.com");
    X509 *free_ca = make("free", key_a, NULL, NULL, -DAY, 30 * DAY, 1, NULL, NULL);

    /* The bypass: CN-only localhost under the constrained CA. */
    X509 *cnonly = make("localhost", key_b, nc, key_a, -DAY, 30 * DAY, 0, NULL, NULL);
    ck_assert_int_eq(verify_back(nc, cnonly, "localhost", &f, &recorded),
                     X509_V_ERR_PERMITTED_VIOLATION);
    ck_assert_int_eq(recorded, 1);
    ck_assert(f.cn_constraint);
    ck_assert_int_eq(f.depth, 0);
    ck_assert_str_eq(f.constraint_ca, "CN=nc,O=t");
    ck_assert_str_eq(f.constraints, "permitted DNS:example.com");
    char msg[1024];
    ck_assert_str_eq(tlsctx_verify_message(&f, "localhost", 0, msg, sizeof(msg)),
                     "name_constraints");
    ck_assert_str_eq(msg,
                     "pg-tls-proxy: upstream certificate verification failed for \"localhost\": "
                     "the server's certificate \"CN=localhost,O=t\" has no DNS subjectAltName, "
                     "and its name (CN=localhost) is not permitted by the name constraints of "
                     "its CA \"CN=nc,O=t\" (permitted DNS:example.com) — a name its CA may not "
                     "certify is refused: give the database server a certificate whose "
                     "subjectAltName has a DNS name inside those constraints, and set "
                     "--client-tls-validation-host to that name");

    /* The same leaf under a CA without constraints: accepted (CN fallback). */
    X509 *cnonly_free = make("localhost", key_b, free_ca, key_a, -DAY, 30 * DAY, 0, NULL, NULL);
    ck_assert_int_eq(verify_back(free_ca, cnonly_free, "localhost", &f, &recorded), X509_V_OK);
    ck_assert_int_eq(recorded, 0);

    /* A SAN inside the constraints: accepted; the CN is not used then. */
    X509 *san = make("whatever", key_b, nc, key_a, -DAY, 30 * DAY, 0, "DNS:db.example.com", NULL);
    ck_assert_int_eq(verify_back(nc, san, "db.example.com", &f, &recorded), X509_V_OK);

    /* A SAN outside them: OpenSSL's own check, with its own wording. */
    X509 *bad_san = make("x", key_b, nc, key_a, -DAY, 30 * DAY, 0, "DNS:localhost", NULL);
    ck_assert_int_eq(verify_back(nc, bad_san, "localhost", &f, &recorded),
                     X509_V_ERR_PERMITTED_VIOLATION);
    ck_assert_int_eq(recorded, 1);
    ck_assert(!f.cn_constraint);
    ck_assert_str_eq(tlsctx_verify_message(&f, "localhost", 0, msg, sizeof(msg)),
                     "name_constraints");
    ck_assert_msg(strstr(msg, "has a name (CN=x, SAN DNS:localhost) that the name constraints of "
                              "a CA in its chain do not permit") != NULL,
                  "%s", msg);

    /* Cloud SQL's CN mode: the CN must equal the name, and pass the constraints. */
    X509 *csql = make("proj:inst", key_b, nc, key_a, -DAY, 30 * DAY, 0, NULL, NULL);
    ck_assert_int_eq(verify_back(nc, csql, "proj:inst", &f, &recorded),
                     X509_V_ERR_PERMITTED_VIOLATION);
    ck_assert(f.cn_constraint);
    X509 *csql_free = make("proj:inst", key_b, free_ca, key_a, -DAY, 30 * DAY, 0, NULL, NULL);
    ck_assert_int_eq(verify_back(free_ca, csql_free, "proj:inst", &f, &recorded), X509_V_OK);

    X509_free(csql_free);
    X509_free(csql);
    X509_free(bad_san);
    X509_free(san);
    X509_free(cnonly_free);
    X509_free(cnonly);
    X509_free(free_ca);
    X509_free(nc);
}
END_TEST

/* ---- the front certificate ------------------------------------------------ */

START_TEST(test_front_check)
{
    char err[1024], warn[1024];
    time_t now = time(NULL);
    X509 *root = make("root", key_a, NULL, NULL, -DAY, 30 * DAY, 1, NULL, NULL);
    X509 *inter = make("inter", key_a, root, key_a, -DAY, 30 * DAY, 1, NULL, NULL);
    STACK_OF(X509) *extra = sk_X509_new_null();

    X509 *expired = make("old", key_b, NULL, NULL, -10 * DAY, -DAY, 0, "DNS:old", NULL);
    ck_assert_int_eq(
        tlsctx_front_check(expired, NULL, "/f.crt", now, err, sizeof(err), warn, sizeof(warn)), -1);
    ck_assert_msg(strstr(err, "--server-certificate-path \"/f.crt\": the certificate "
                              "\"CN=old,O=t\" expired on ") != NULL &&
                      strstr(err, "renew it") != NULL,
                  "%s", err);

    X509 *notyet = make("new", key_b, NULL, NULL, 2 * DAY, 10 * DAY, 0, NULL, NULL);
    ck_assert_int_eq(
        tlsctx_front_check(notyet, NULL, "/f.crt", now, err, sizeof(err), warn, sizeof(warn)), -1);
    ck_assert_msg(strstr(err, "is not valid before ") != NULL &&
                      strstr(err, "check this host's clock") != NULL,
                  "%s", err);

    X509 *selfsigned = make("self", key_b, NULL, NULL, -DAY, 10 * DAY, 0, NULL, NULL);
    ck_assert_int_eq(
        tlsctx_front_check(selfsigned, NULL, "/f.crt", now, err, sizeof(err), warn, sizeof(warn)),
        0);
    ck_assert_str_eq(warn, "");

    X509 *leaf = make("leaf", key_b, inter, key_a, -DAY, 10 * DAY, 0, "DNS:leaf", NULL);
    ck_assert_int_eq(
        tlsctx_front_check(leaf, NULL, "/f.crt", now, err, sizeof(err), warn, sizeof(warn)), 0);
    ck_assert_msg(strstr(warn, "the file holds the certificate \"CN=leaf,O=t\" without its issuer "
                               "\"CN=inter,O=t\"") != NULL &&
                      strstr(warn, "fullchain.pem, not cert.pem") != NULL,
                  "%s", warn);
    sk_X509_push(extra, root); /* not its issuer */
    ck_assert_int_eq(
        tlsctx_front_check(leaf, extra, "/f.crt", now, err, sizeof(err), warn, sizeof(warn)), 0);
    ck_assert_msg(warn[0] != '\0', "the root is not the leaf's issuer");
    sk_X509_push(extra, inter);
    ck_assert_int_eq(
        tlsctx_front_check(leaf, extra, "/f.crt", now, err, sizeof(err), warn, sizeof(warn)), 0);
    ck_assert_str_eq(warn, "");

    sk_X509_free(extra);
    X509_free(leaf);
    X509_free(selfsigned);
    X509_free(notyet);
    X509_free(expired);
    X509_free(inter);
    X509_free(root);
}
END_TEST

START_TEST(test_days_left)
{
    ck_assert_int_eq(tlsctx_days_left(1000 + 3 * 86400, 1000), 3);
    ck_assert_int_eq(tlsctx_days_left(1000 + 3 * 86400 - 1, 1000), 2);
    ck_assert_int_eq(tlsctx_days_left(1000, 1000), 0);
    ck_assert_int_eq(tlsctx_days_left(999, 1000), -1);
    ck_assert_int_eq(tlsctx_days_left(1000 - 86400, 1000), -1);
    ck_assert_int_eq(tlsctx_days_left(1000 - 86401, 1000), -2);
}
END_TEST

Suite *certcheck_suite(void)
{
    Suite *s = suite_create("certcheck");
    TCase *t = tcase_create("certcheck");
    tcase_add_unchecked_fixture(t, keys_setup, keys_teardown);
    tcase_add_loop_test(t, test_cn_constraints, 0, NELEM(nc_cases));
    tcase_add_test(t, test_cn_constraints_text);
    tcase_add_test(t, test_back_verify_name_constraints);
    tcase_add_test(t, test_front_check);
    tcase_add_test(t, test_days_left);
    suite_add_tcase(s, t);
    return s;
}
