/*
 * verifymsg.h - certificates as text, and the record and message of a
 * failed verification of the upstream's certificate.
 */
#ifndef PGTP_VERIFYMSG_H
#define PGTP_VERIFYMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* "CN=..., SAN DNS:a, IP:b" of a certificate, for error messages and logs. */
void tlsctx_cert_names(X509 *cert, char *buf, size_t len);
/* "2026-01-31T12:00:00Z" ("?" if unreadable). */
void tlsctx_time_str(const ASN1_TIME *t, char *buf, size_t len);
/* RFC 2253 text of a name ("CN=x,O=y"), truncated to len. */
void tlsctx_name_str(const X509_NAME *name, char *buf, size_t len);
/* "subject=... issuer=... not_after=..." one-line summary. */
void tlsctx_cert_summary(X509 *cert, char *buf, size_t len);

/*
 * The first failure of the upstream's chain verification, as the back
 * context's verify callback saw it: the code, which certificate (depth 0 is
 * the server's own) and what it says. Lives in the SSL's ex data, freed
 * with it; NULL if verification did not fail (or memory ran out).
 */
struct tlsctx_verify_failure {
    int err;                            /* X509_V_ERR_* */
    int depth;                          /* of the failing certificate in the chain being built */
    int sent;                           /* certificates the server sent, its own included */
    char subject[256], issuer[256];     /* RFC 2253 */
    char names[512];                    /* tlsctx_cert_names() of the certificate */
    char not_before[32], not_after[32]; /* "2026-01-31T12:00:00Z" */
    /* X509_V_ERR_PERMITTED/EXCLUDED_VIOLATION found by the proxy's own check
     * of the leaf's CN (which OpenSSL skips when it has no dot, yet the host
     * check falls back to): the CA whose constraints refuse it, and them. */
    bool cn_constraint;
    char constraint_ca[256];
    char constraints[256]; /* "permitted DNS:example.com; excluded DNS:x" */
};
const struct tlsctx_verify_failure *tlsctx_verify_failure(const SSL *ssl);

/* Create the SSL ex-data slot of the record (once per process; thread-safe).
 * Until it exists nothing is recorded and tlsctx_verify_failure is NULL. */
void tlsctx_verify_failure_init(void);

/*
 * For the back context's verify callbacks: record the failure store is at
 * (error, depth, the current certificate) in its SSL, unless one is there
 * already. Returns the SSL's record (the earlier one if any), NULL when
 * there is no SSL, no slot or no memory.
 */
struct tlsctx_verify_failure *tlsctx_record_verify_failure(X509_STORE_CTX *store);

/*
 * The client's FATAL message for a failed verification of the upstream
 * named name: the cause (which certificate, its dates against the proxy's
 * clock now) and the fix for that cause. Pure, for unit tests. Returns the
 * short reason for metrics: "name", "expired", "not_yet_valid",
 * "self_signed", "untrusted_root", "unknown_issuer", "name_constraints" or
 * "verify".
 */
const char *tlsctx_verify_message(const struct tlsctx_verify_failure *f, const char *name,
                                  time_t now, char *buf, size_t len);

#endif
