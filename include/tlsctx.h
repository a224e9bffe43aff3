/*
 * tlsctx.h - building the front and back SSL_CTX.
 *
 * One context per leg for the whole process; sessions share it read-only.
 */
#ifndef PGTP_TLSCTX_H
#define PGTP_TLSCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

/*
 * Front: certificate chain (leaf first) + key, TLS 1.2 minimum. Checks that
 * the key matches the certificate. Fills summary with subject and expiry.
 */
SSL_CTX *tlsctx_front(const char *cert_path, const char *key_path, char *summary, size_t summarylen,
                      char *err, size_t errlen);

/*
 * Back: verify-full client context. roots_path is a PEM file or a directory
 * whose *.pem / *.crt files are all loaded (not OpenSSL's hashed format).
 * Partial chains are accepted (an intermediate or the leaf itself may be the
 * trust anchor). Zero certificates loaded is an error that lists the files.
 * summary receives "N roots from ..." for the start-up log.
 */
SSL_CTX *tlsctx_back(const char *roots_path, char *summary, size_t summarylen, char *err,
                     size_t errlen);

struct config;

/* Both legs' contexts, built together from the configuration. */
struct tls_contexts {
    SSL_CTX *front;
    SSL_CTX *back;
    char front_summary[1024];    /* the certificate clients see */
    char roots_summary[1024];    /* "N from FILE" of --client-ca-roots-path */
    char client_ca_summary[512]; /* --server-client-ca-path, when set */
};

/*
 * Build new front and back contexts from cfg: identities, CA roots, mTLS,
 * client certificate, TLS versions and ciphers. All or nothing: returns 0,
 * or -1 with err naming the flag and the file, and nothing allocated.
 * Used at start-up, by --check and by every reload.
 */
int tlsctx_build(const struct config *cfg, struct tls_contexts *out, char *err, size_t errlen);
void tlsctx_contexts_free(struct tls_contexts *c);

/* Names the upstream's certificate must match; sets SNI for DNS names. */
int tlsctx_back_session_setup(SSL *ssl, const char *verify_name, char *err, size_t errlen);

/* notAfter of cert in unix seconds (0 if unreadable). */
int64_t tlsctx_not_after(X509 *cert);

/* True if the handshake selected ALPN "postgresql". */
bool tlsctx_alpn_postgresql(const SSL *ssl);

/* True if s looks like Cloud SQL's "project:instance" (checked against the CN). */
bool tlsctx_is_cloudsql_name(const char *s);

/* True if s is an IPv4 or IPv6 literal. */
bool tlsctx_is_ip(const char *s);

/* "CN=..., SAN DNS:a, IP:b" of a certificate, for error messages and logs. */
void tlsctx_cert_names(X509 *cert, char *buf, size_t len);
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
};
const struct tlsctx_verify_failure *tlsctx_verify_failure(const SSL *ssl);

/*
 * The client's FATAL message for a failed verification of the upstream
 * named name: the cause (which certificate, its dates against the proxy's
 * clock now) and the fix for that cause. Pure, for unit tests. Returns the
 * short reason for metrics: "name", "expired", "not_yet_valid",
 * "self_signed", "untrusted_root", "unknown_issuer" or "verify".
 */
const char *tlsctx_verify_message(const struct tlsctx_verify_failure *f, const char *name,
                                  time_t now, char *buf, size_t len);

#endif
