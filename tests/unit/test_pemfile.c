/*
 * test_pemfile.c - unit tests for src/pemfile.c: what a certificate or key
 * file holds (table-driven over the mistakes users make: a key given as the
 * certificate and the converse, DER, empty, garbage, encrypted PKCS#8 and
 * traditional keys, a CSR, an OpenSSH key), the message and fix for each
 * use, the open errors in words, and a passphrase callback that never
 * prompts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "pemfile.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

#define CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define KEY8 "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
#define KEYEC "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n"
#define ENC8 "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIHs\n-----END ENCRYPTED PRIVATE KEY-----\n"
#define ENCTRAD                                                                                    \
    "-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-256-CBC,00\r\n"    \
    "\r\nabcd\r\n-----END RSA PRIVATE KEY-----\r\n"
#define CSR "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
#define SSHKEY "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"

static const struct scan_case {
    const char *name;
    const char *bytes;
    size_t len; /* 0: strlen(bytes) */
    unsigned certs, keys, enc, others;
    int empty, der;
    /* expected problem for a certificate, a key, CA certificates (NULL: none) */
    const char *as_cert, *as_key, *as_ca;
} scan_cases[] = {
    {"cert", CERT, 0, 1, 0, 0, 0, 0, 0, NULL, "this file holds a certificate, not a private key",
     NULL},
    {"bundle of 3", CERT CERT "\n" CERT, 0, 3, 0, 0, 0, 0, 0, NULL, "holds a certificate", NULL},
    {"pkcs8 key", KEY8, 0, 0, 1, 0, 0, 0, 0, "this file holds a private key, not a certificate",
     NULL, "this file holds a private key, not a certificate"},
    {"ec key with params",
     "-----BEGIN EC PARAMETERS-----\nBggq\n-----END EC PARAMETERS-----\n" KEYEC, 0, 0, 1, 0, 1, 0,
     0, "holds a private key, not a certificate", NULL, "holds a private key"},
    {"cert + key in one file", CERT KEY8, 0, 1, 1, 0, 0, 0, 0, NULL, NULL, NULL},
    {"encrypted pkcs8", ENC8, 0, 0, 0, 1, 0, 0, 0, "holds a private key, not a certificate",
     "encrypted keys are not supported (the proxy never asks for a passphrase) — decrypt it with "
     "openssl pkey -in '/p/f' -out KEY.pem",
     "holds a private key"},
    {"encrypted traditional", ENCTRAD, 0, 0, 0, 1, 0, 0, 0, "holds a private key",
     "encrypted keys are not supported", "holds a private key"},
    {"der", "\x30\x04\x02\x02\x01\x00", 6, 0, 0, 0, 0, 0, 1,
     "this file is DER, not PEM — convert it with openssl x509 -inform der -in '/p/f' -out "
     "CERT.pem and give CERT.pem",
     "this file is DER, not PEM — convert it with openssl pkey -inform der -in '/p/f' -out KEY.pem",
     "this file is DER, not PEM"},
    {"empty", "", 0, 0, 0, 0, 0, 1, 0, "empty file — it should hold a certificate in PEM",
     "empty file — it should hold a private key in PEM (\"-----BEGIN PRIVATE KEY-----\")",
     "empty file — it should hold CA certificates"},
    {"whitespace only", " \r\n\t\n", 0, 0, 0, 0, 0, 1, 0, "empty file", "empty file", "empty file"},
    {"garbage", "hello, world\n", 0, 0, 0, 0, 0, 0, 0,
     "no PEM certificate found in this file (no \"-----BEGIN CERTIFICATE-----\" line)",
     "no PEM private key found in this file", "no PEM certificate found"},
    {"csr", CSR, 0, 0, 0, 0, 1, 0, 0,
     "this file holds a PEM \"CERTIFICATE REQUEST\", not a certificate — a certificate request is "
     "what a CA signs",
     "this file holds a PEM \"CERTIFICATE REQUEST\", not a private key", "not CA certificates"},
    {"openssh key", SSHKEY, 0, 0, 0, 0, 1, 0, 0, "holds a PEM \"OPENSSH PRIVATE KEY\"",
     "OpenSSH's key format is not read", "OPENSSH PRIVATE KEY"},
    {"empty label", "-----BEGIN -----\n", 0, 0, 0, 0, 0, 0, 0, "no PEM certificate found",
     "no PEM private key found", "no PEM certificate found"},
    {"unterminated label", "-----BEGIN CERTIFICATE\nMIIB", 0, 0, 0, 0, 0, 0, 0,
     "no PEM certificate found", "no PEM private key found", "no PEM certificate found"},
    {"binary label", "-----BEGIN CERT\x01IFICATE-----\n", 0, 0, 0, 0, 0, 0, 0, "no PEM certificate",
     "no PEM private key", "no PEM certificate"},
    {"cert after a NUL", "\0\0" CERT, sizeof("\0\0" CERT) - 1, 1, 0, 0, 0, 0, 0, NULL,
     "holds a "
     "certificate",
     NULL},
    {"der-like text is not der", "0x30", 0, 0, 0, 0, 0, 0, 0, "no PEM certificate", "no PEM",
     "no PEM"},
    {"der, long form", "\x30\x81\x03\x02\x01\x00", 6, 0, 0, 0, 0, 0, 1, "DER, not PEM",
     "DER, not PEM", "DER, not PEM"},
    {"der, length past the end", "\x30\x82\x01\x0a\x02\x01", 6, 0, 0, 0, 0, 0, 0,
     "no PEM certificate", "no PEM private key", "no PEM certificate"},
};

static void check_problem(const struct pem_scan *s, enum pem_want w, const char *want,
                          const char *name)
{
    char buf[600];
    const char *got = pemfile_problem(s, w, "/p/f", buf, sizeof(buf));
    if (want == NULL) {
        ck_assert_msg(got == NULL, "%s (want %d): unexpected problem: %s", name, w, got);
        return;
    }
    ck_assert_msg(got != NULL, "%s (want %d): no problem found, expected \"%s\"", name, w, want);
    ck_assert_msg(strstr(got, want) != NULL, "%s (want %d): \"%s\" lacks \"%s\"", name, w, got,
                  want);
}

START_TEST(test_scan)
{
    const struct scan_case *c = &scan_cases[_i];
    struct pem_scan s;
    size_t len = c->len ? c->len : strlen(c->bytes);
    pemfile_scan((const uint8_t *)c->bytes, len, &s);
    ck_assert_msg(s.certs == c->certs && s.keys == c->keys && s.encrypted_keys == c->enc &&
                      s.others == c->others && s.empty == (bool)c->empty && s.der == (bool)c->der,
                  "%s: certs %u keys %u enc %u others %u empty %d der %d", c->name, s.certs, s.keys,
                  s.encrypted_keys, s.others, s.empty, s.der);
    check_problem(&s, PEM_WANT_CERT, c->as_cert, c->name);
    check_problem(&s, PEM_WANT_KEY, c->as_key, c->name);
    check_problem(&s, PEM_WANT_CA, c->as_ca, c->name);
}
END_TEST

/* Every message, in a buffer of every size from 0 up: terminated, never past it. */
START_TEST(test_problem_small_buffers)
{
    for (int i = 0; i < NELEM(scan_cases); i++) {
        const struct scan_case *c = &scan_cases[i];
        struct pem_scan s;
        pemfile_scan((const uint8_t *)c->bytes, c->len ? c->len : strlen(c->bytes), &s);
        for (size_t n = 1; n < 80; n++) {
            char buf[81];
            memset(buf, 'x', sizeof(buf));
            const char *got = pemfile_problem(&s, PEM_WANT_KEY, "/p/f", buf, n);
            if (got != NULL)
                ck_assert_uint_lt(strlen(buf), n);
            ck_assert_int_eq(buf[80], 'x');
        }
    }
}
END_TEST

START_TEST(test_open_errors)
{
    char buf[300], want[80];
    pemfile_open_error(EACCES, buf, sizeof(buf));
    snprintf(want, sizeof(want), "permission denied (running as uid %u)", (unsigned)geteuid());
    ck_assert_msg(strncmp(buf, want, strlen(want)) == 0, "%s", buf);
    pemfile_open_error(ENOENT, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "no such file", 12) == 0, "%s", buf);
    pemfile_open_error(EISDIR, buf, sizeof(buf));
    ck_assert_str_eq(buf, "is a directory, expected a PEM file");
    pemfile_open_error(ELOOP, buf, sizeof(buf));
    ck_assert_str_eq(buf, strerror(ELOOP));
}
END_TEST

/* pemfile_check on real files: the flag and path lead every message. */
START_TEST(test_check_files)
{
    char dir[] = "/tmp/pgtp-pemfile.XXXXXX", path[128], err[700];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(CERT, f);
    fclose(f);
    ck_assert_int_eq(pemfile_check("--x", path, PEM_WANT_CERT, err, sizeof(err)), 0);
    ck_assert_int_eq(pemfile_check("--k", path, PEM_WANT_KEY, err, sizeof(err)), -1);
    char want[300];
    snprintf(want, sizeof(want), "--k \"%s\": this file holds a certificate, not a private key",
             path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);

    ck_assert_int_eq(pemfile_check("--x", dir, PEM_WANT_CERT, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "is a directory") != NULL, "%s", err);
    snprintf(path, sizeof(path), "%s/missing.pem", dir);
    ck_assert_int_eq(pemfile_check("--x", path, PEM_WANT_CERT, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "\": no such file") != NULL, "%s", err);
    if (geteuid() != 0) { /* root reads anything: the message itself is tested above */
        snprintf(path, sizeof(path), "%s/cert.pem", dir);
        chmod(path, 0);
        ck_assert_int_eq(pemfile_check("--x", path, PEM_WANT_CERT, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "permission denied (running as uid") != NULL, "%s", err);
    }
    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* An encrypted key read with the callback fails at once instead of prompting. */
START_TEST(test_no_passphrase_prompt)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(k);
    BIO *b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(
        PEM_write_bio_PrivateKey(b, k, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)"not-a-secret"),
        1);
    ck_assert_ptr_null(PEM_read_bio_PrivateKey(b, NULL, pemfile_no_passphrase_cb, NULL));
    ERR_clear_error();
    char buf[8] = "xxxxxxx";
    ck_assert_int_eq(pemfile_no_passphrase_cb(buf, sizeof(buf), 0, NULL), -1);
    ck_assert_int_eq(buf[0], '\0');
    BIO_free(b);
    EVP_PKEY_free(k);
}
END_TEST

Suite *pemfile_suite(void)
{
    Suite *s = suite_create("pemfile");
    TCase *t = tcase_create("scan");
    tcase_add_loop_test(t, test_scan, 0, NELEM(scan_cases));
    tcase_add_test(t, test_problem_small_buffers);
    tcase_add_test(t, test_open_errors);
    tcase_add_test(t, test_check_files);
    tcase_add_test(t, test_no_passphrase_prompt);
    suite_add_tcase(s, t);
    return s;
}
