/*
 * test_verifymsg.c - unit tests for the upstream verification-failure
 * messages of src/verifymsg.c: tlsctx_verify_message() for every cause (golden
 * text, table-driven), and the back context's verify callback, which must
 * capture the failing certificate (depth, dates, issuer, how many the server
 * sent) for certificates made here in memory: expired, not yet valid,
 * self-signed, issuer missing, untrusted root in the chain, wrong name.
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
#include "verifymsg.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* 2026-11-22T12:00:00Z, the proxy's clock in the golden messages. */
#define NOW ((time_t)1795348800)

#define LEAF "CN=localhost,O=t"
#define ROOT "CN=root,O=t"
#define INTER "CN=inter,O=t"
#define PFX "pg-tls-proxy: upstream certificate verification failed for \"db.example\": "

static const struct msg_case {
    struct tlsctx_verify_failure f;
    const char *label;
    const char *want;
} msg_cases[] = {
    {{.err = X509_V_ERR_CERT_HAS_EXPIRED,
      .sent = 1,
      .subject = LEAF,
      .issuer = ROOT,
      .not_before = "2020-01-01T00:00:00Z",
      .not_after = "2021-01-01T00:00:00Z"},
     "expired",
     PFX "the server's certificate \"" LEAF "\" expired on 2021-01-01T00:00:00Z (its notAfter; "
         "the proxy's clock says 2026-11-22T12:00:00Z) — renew the database server's "
         "certificate (its ssl_cert_file) and reload the server"},
    {{.err = X509_V_ERR_CERT_HAS_EXPIRED,
      .depth = 1,
      .sent = 2,
      .subject = INTER,
      .issuer = ROOT,
      .not_after = "2025-06-30T00:00:00Z"},
     "expired",
     PFX "the CA certificate \"" INTER "\" (depth 1 of the chain) expired on "
         "2025-06-30T00:00:00Z (its notAfter; the proxy's clock says 2026-11-22T12:00:00Z) — "
         "replace it with the CA's renewed certificate, in the database server's ssl_cert_file "
         "chain or in --client-ca-roots-path"},
    {{.err = X509_V_ERR_CERT_NOT_YET_VALID,
      .sent = 1,
      .subject = LEAF,
      .not_before = "2040-01-01T00:00:00Z"},
     "not_yet_valid",
     PFX "the server's certificate \"" LEAF "\" is not valid before 2040-01-01T00:00:00Z (its "
         "notBefore; the proxy's clock says 2026-11-22T12:00:00Z) — check the clocks of the proxy "
         "host and of the machine that issued it, or reissue the certificate with a start date "
         "in the past"},
    {{.err = X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, .sent = 1, .subject = LEAF, .issuer = LEAF},
     "self_signed",
     PFX "the server's certificate \"" LEAF "\" is self-signed (no CA issued it) — give the "
         "database server a certificate signed by a CA in --client-ca-roots-path, or, to trust "
         "this one certificate, add it to --client-ca-roots-path"},
    {{.err = X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
      .depth = 1,
      .sent = 2,
      .subject = ROOT,
      .issuer = ROOT},
     "untrusted_root",
     PFX "the server's chain ends at the root CA \"" ROOT "\", which is not in "
         "--client-ca-roots-path — is --client-ca-roots-path the CA that signed the database "
         "server's certificate? Add that root to it only if you trust it"},
    {{.err = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
      .sent = 1,
      .subject = LEAF,
      .issuer = INTER},
     "unknown_issuer",
     PFX "the server sent only its own certificate \"" LEAF "\", and its issuer \"" INTER
         "\" is not in --client-ca-roots-path — if that is an intermediate CA, the server did "
         "not send it: append it to the database server's ssl_cert_file after the server's "
         "certificate, or add it to --client-ca-roots-path; otherwise --client-ca-roots-path is "
         "not the CA that signed the server's certificate"},
    {{.err = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
      .sent = 3,
      .subject = LEAF,
      .issuer = INTER},
     "unknown_issuer",
     PFX "none of the 3 certificates the server sent is the issuer \"" INTER "\" of its own "
         "certificate \"" LEAF "\", and --client-ca-roots-path does not have it either — put the "
         "intermediate CA right after the server's certificate in its ssl_cert_file, or add it "
         "to --client-ca-roots-path"},
    {{.err = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
      .depth = 1,
      .sent = 2,
      .subject = INTER,
      .issuer = ROOT},
     "unknown_issuer",
     PFX "the server's chain ends at \"" INTER "\" (depth 1), issued by \"" ROOT "\", which is "
         "not in --client-ca-roots-path — is --client-ca-roots-path the CA that signed the "
         "database server's certificate? It needs \"" ROOT "\""},
    {{.err = X509_V_ERR_HOSTNAME_MISMATCH,
      .sent = 1,
      .subject = "CN=other.example",
      .names = "CN=other.example, SAN DNS:other.example"},
     "name",
     "pg-tls-proxy: upstream certificate does not match the name \"db.example\" (the "
     "certificate has CN=other.example, SAN DNS:other.example) — set "
     "--client-tls-validation-host to a name the certificate carries, or give the database "
     "server a certificate for \"db.example\""},
    /* What back.c builds when the callback could not record (no memory). */
    {{.err = X509_V_ERR_HOSTNAME_MISMATCH},
     "name",
     "pg-tls-proxy: upstream certificate does not match the name \"db.example\" (the "
     "certificate has unknown names) — set --client-tls-validation-host to a name the "
     "certificate carries, or give the database server a certificate for \"db.example\""},
    {{.err = X509_V_ERR_CERT_SIGNATURE_FAILURE},
     "verify",
     PFX "certificate signature failure (the server's certificate, depth 0) — is "
         "--client-ca-roots-path the CA that signed the upstream's certificate?"},
    {{.err = X509_V_ERR_CERT_REVOKED, .depth = 2, .subject = ROOT},
     "verify",
     PFX "certificate revoked (a CA certificate \"" ROOT "\", depth 2) — is "
         "--client-ca-roots-path the CA that signed the upstream's certificate?"},
};

START_TEST(test_message)
{
    const struct msg_case *tc = &msg_cases[_i];
    char buf[1024];
    const char *label = tlsctx_verify_message(&tc->f, "db.example", NOW, buf, sizeof(buf));
    ck_assert_str_eq(buf, tc->want);
    ck_assert_str_eq(label, tc->label);
}
END_TEST

/* Any buffer size: NUL-terminated, never past the end, a label always. */
START_TEST(test_message_small_buffers)
{
    char buf[200];
    for (int c = 0; c < NELEM(msg_cases); c++) {
        for (size_t len = 1; len < sizeof(buf) - 1; len++) {
            memset(buf, 'Z', sizeof(buf));
            const char *label = tlsctx_verify_message(&msg_cases[c].f, "db.example", NOW, buf, len);
            ck_assert_str_eq(label, msg_cases[c].label);
            ck_assert_uint_lt(strlen(buf), len);
            ck_assert_int_eq(buf[len], 'Z');
        }
    }
}
END_TEST

/* ---- the verify callback, on certificates made here --------------------- */

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/*
 * A certificate for cn with key, valid from now+from to now+to seconds,
 * signed by issuer/ikey (NULL: self-signed). ca: a CA certificate.
 * san: subjectAltName, or NULL.
 */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long from,
                       long to, int ca, const char *san)
{
    static long serial = 1;
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509_time_adj_ex(X509_getm_notBefore(x), 0, from, NULL);
    X509_time_adj_ex(X509_getm_notAfter(x), 0, to, NULL);
    X509_set_pubkey(x, key);
    add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints,
            ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    add_ext(x, issuer != NULL ? issuer : x, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    if (san != NULL)
        add_ext(x, issuer != NULL ? issuer : x, NID_subject_alt_name, san);
    ck_assert_int_gt(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()), 0);
    return x;
}

#define DAY (24L * 3600)

static struct pki {
    EVP_PKEY *root_key, *inter_key, *leaf_key, *other_key;
    X509 *root, *inter, *other_root;
    char roots_path[64];
} pki;

static void pki_setup(void)
{
    pki.root_key = new_key();
    pki.inter_key = new_key();
    pki.leaf_key = new_key();
    pki.other_key = new_key();
    pki.root = make_cert("root", pki.root_key, NULL, NULL, -DAY, 3650 * DAY, 1, NULL);
    pki.inter =
        make_cert("inter", pki.inter_key, pki.root, pki.root_key, -DAY, 1000 * DAY, 1, NULL);
    pki.other_root = make_cert("other", pki.other_key, NULL, NULL, -DAY, 3650 * DAY, 1, NULL);
    snprintf(pki.roots_path, sizeof(pki.roots_path), "/tmp/pgtp-verifymsg.XXXXXX");
    int fd = mkstemp(pki.roots_path);
    ck_assert_int_ge(fd, 0);
    FILE *fp = fdopen(fd, "w");
    ck_assert_ptr_nonnull(fp);
    PEM_write_X509(fp, pki.root);
    fclose(fp);
}

static void pki_teardown(void)
{
    unlink(pki.roots_path);
    X509_free(pki.root);
    X509_free(pki.inter);
    X509_free(pki.other_root);
    EVP_PKEY_free(pki.root_key);
    EVP_PKEY_free(pki.inter_key);
    EVP_PKEY_free(pki.leaf_key);
    EVP_PKEY_free(pki.other_key);
}

/*
 * Verify leaf (+ extra, as the server would send them) the way a back
 * session does: an SSL of the back context, its verify callback, the name
 * "localhost". Returns the verify result; *out receives the recorded
 * failure (copied: it lives in the SSL).
 */
static long verify_as_back(X509 *leaf, X509 *extra, struct tlsctx_verify_failure *out,
                           int *recorded)
{
    char summary[256], err[256];
    SSL_CTX *ctx = tlsctx_back(pki.roots_path, summary, sizeof(summary), err, sizeof(err));
    ck_assert_msg(ctx != NULL, "%s", err);
    SSL *ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    ck_assert_int_eq(tlsctx_back_session_setup(ssl, "localhost", err, sizeof(err)), 0);

    STACK_OF(X509) *sent = sk_X509_new_null();
    sk_X509_push(sent, leaf);
    if (extra != NULL)
        sk_X509_push(sent, extra);
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
    SSL_free(ssl); /* frees the record: ASan/valgrind would see a leak */
    SSL_CTX_free(ctx);
    return rc;
}

START_TEST(test_callback_ok_records_nothing)
{
    struct tlsctx_verify_failure f;
    int recorded;
    X509 *leaf = make_cert("localhost", pki.leaf_key, pki.root, pki.root_key, -DAY, 90 * DAY, 0,
                           "DNS:localhost");
    ck_assert_int_eq(verify_as_back(leaf, NULL, &f, &recorded), X509_V_OK);
    ck_assert_int_eq(recorded, 0);
    X509_free(leaf);
}
END_TEST

START_TEST(test_callback_expired)
{
    struct tlsctx_verify_failure f;
    int recorded;
    X509 *leaf = make_cert("localhost", pki.leaf_key, pki.root, pki.root_key, -30 * DAY, -DAY, 0,
                           "DNS:localhost");
    ck_assert_int_eq(verify_as_back(leaf, NULL, &f, &recorded), X509_V_ERR_CERT_HAS_EXPIRED);
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(f.err, X509_V_ERR_CERT_HAS_EXPIRED);
    ck_assert_int_eq(f.depth, 0);
    ck_assert_int_eq(f.sent, 1);
    ck_assert_str_eq(f.subject, "CN=localhost,O=t");
    ck_assert_str_eq(f.issuer, "CN=root,O=t");
    /* notAfter is yesterday: its date, in the ISO form the message uses. */
    char want[32];
    time_t t = time(NULL) - DAY;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(want, sizeof(want), "%Y-%m-%dT", &tm);
    ck_assert_msg(strncmp(f.not_after, want, strlen(want)) == 0, "not_after %s, want %s...",
                  f.not_after, want);
    char buf[1024];
    ck_assert_str_eq(tlsctx_verify_message(&f, "localhost", time(NULL), buf, sizeof(buf)),
                     "expired");
    X509_free(leaf);
}
END_TEST

START_TEST(test_callback_not_yet_valid)
{
    struct tlsctx_verify_failure f;
    int recorded;
    X509 *leaf = make_cert("localhost", pki.leaf_key, pki.root, pki.root_key, 10 * DAY, 90 * DAY, 0,
                           "DNS:localhost");
    ck_assert_int_eq(verify_as_back(leaf, NULL, &f, &recorded), X509_V_ERR_CERT_NOT_YET_VALID);
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(f.depth, 0);
    ck_assert_str_eq(f.subject, "CN=localhost,O=t");
    X509_free(leaf);
}
END_TEST

START_TEST(test_callback_self_signed)
{
    struct tlsctx_verify_failure f;
    int recorded;
    X509 *leaf =
        make_cert("localhost", pki.leaf_key, NULL, NULL, -DAY, 90 * DAY, 0, "DNS:localhost");
    ck_assert_int_eq(verify_as_back(leaf, NULL, &f, &recorded),
                     X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(f.depth, 0);
    ck_assert_str_eq(f.issuer, "CN=localhost,O=t");
    X509_free(leaf);
}
END_TEST

/* The leaf of an intermediate, sent alone: its issuer is nowhere. */
START_TEST(test_callback_missing_intermediate)
{
    struct tlsctx_verify_failure f;
    int recorded;
    X509 *leaf = make_cert("localhost", pki.leaf_key, pki.inter, pki.inter_key, -DAY, 90 * DAY, 0,
                           "DNS:localhost");
    ck_assert_int_eq(verify_as_back(leaf, NULL, &f, &recorded),
                     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(f.depth, 0);
    ck_assert_int_eq(f.sent, 1);
    ck_assert_str_eq(f.issuer, "CN=inter,O=t");
    /* With the intermediate sent, the same leaf verifies. */
    ck_assert_int_eq(verify_as_back(leaf, pki.inter, &f, &recorded), X509_V_OK);
    ck_assert_int_eq(recorded, 0);
    X509_free(leaf);
}
END_TEST

/* Another CA's leaf with that CA's root appended: an untrusted root. */
START_TEST(test_callback_untrusted_root)
{
    struct tlsctx_verify_failure f;
    int recorded;
    X509 *leaf = make_cert("localhost", pki.leaf_key, pki.other_root, pki.other_key, -DAY, 90 * DAY,
                           0, "DNS:localhost");
    ck_assert_int_eq(verify_as_back(leaf, pki.other_root, &f, &recorded),
                     X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
    ck_assert_int_eq(recorded, 1);
    ck_assert_int_eq(f.depth, 1);
    ck_assert_int_eq(f.sent, 2);
    ck_assert_str_eq(f.subject, "CN=other,O=t");
    X509_free(leaf);
}
END_TEST

START_TEST(test_callback_wrong_name)
{
    struct tlsctx_verify_failure f;
    int recorded;
    X509 *leaf = make_cert("db.other.example", pki.leaf_key, pki.root, pki.root_key, -DAY, 90 * DAY,
                           0, "DNS:db.other.example");
    ck_assert_int_eq(verify_as_back(leaf, NULL, &f, &recorded), X509_V_ERR_HOSTNAME_MISMATCH);
    ck_assert_int_eq(recorded, 1);
    ck_assert_str_eq(f.names, "CN=db.other.example, SAN DNS:db.other.example");
    X509_free(leaf);
}
END_TEST

Suite *verifymsg_suite(void)
{
    Suite *s = suite_create("verifymsg");

    TCase *msg = tcase_create("message");
    tcase_add_loop_test(msg, test_message, 0, NELEM(msg_cases));
    tcase_add_test(msg, test_message_small_buffers);
    suite_add_tcase(s, msg);

    TCase *cb = tcase_create("callback");
    tcase_add_unchecked_fixture(cb, pki_setup, pki_teardown);
    tcase_add_test(cb, test_callback_ok_records_nothing);
    tcase_add_test(cb, test_callback_expired);
    tcase_add_test(cb, test_callback_not_yet_valid);
    tcase_add_test(cb, test_callback_self_signed);
    tcase_add_test(cb, test_callback_missing_intermediate);
    tcase_add_test(cb, test_callback_untrusted_root);
    tcase_add_test(cb, test_callback_wrong_name);
    suite_add_tcase(s, cb);

    return s;
}
