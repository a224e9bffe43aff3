/*
 * tlsctx.h - building the front and back SSL_CTX.
 *
 * One context per leg for the process's default route, and one per route
 * of --config (route.c); sessions share them read-only.
 */
#ifndef PGTP_TLSCTX_H
#define PGTP_TLSCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

/* Certificate texts and verification failures, for the modules that
 * include tlsctx.h only. */
#include "verifymsg.h"

/*
 * Front: certificate chain (leaf first) + key, TLS 1.2 minimum. Checks that
 * the key matches the certificate. Fills summary with subject and expiry.
 */
SSL_CTX *tlsctx_front(const char *cert_path, const char *key_path, char *summary, size_t summarylen,
                      char *err, size_t errlen);
/* The same with other flags named in errors (the bridge listener's
 * --bridge-certificate-path, bridge.c). */
SSL_CTX *tlsctx_server(const char *cert_path, const char *key_path, const char *cert_flag,
                       const char *key_flag, char *summary, size_t summarylen, char *err,
                       size_t errlen);

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
    /* The front certificate, for the start-up and reload log lines. */
    char front_names[512];                          /* tlsctx_cert_names() of the leaf */
    char front_not_before[32], front_not_after[32]; /* "2026-01-31T12:00:00Z" */
    int64_t front_expiry;                           /* notAfter, unix seconds */
    int front_chain_len;                            /* certificates in the file, leaf included */
    char front_warning[768]; /* a problem that does not stop the proxy ("" if none) */
    /* The leaf names where to fetch its issuer (authorityInfoAccess caIssuers),
     * as every leaf of a public CA does, whose issuer is then an intermediate
     * that clients lack: the warning is likely a real mistake (certbot's
     * cert.pem). Without it (a private root signing leaves directly, as most
     * self-run CAs do), the same text is only informational. */
    bool front_warning_likely;
};

/*
 * Build new front and back contexts from cfg: identities, CA roots, mTLS,
 * client certificate, TLS versions and ciphers. All or nothing: returns 0,
 * or -1 with err naming the flag and the file, and nothing allocated.
 * Used at start-up, by --check and by every reload.
 */
int tlsctx_build(const struct config *cfg, struct tls_contexts *out, char *err, size_t errlen);
void tlsctx_contexts_free(struct tls_contexts *c);
/*
 * One route's contexts (route.c): its back context always, its front
 * context only when own_front (its certificate or client-certificate
 * policy differs from the global one: tlsctx_same_front). All or nothing.
 */
int tlsctx_build_route(const struct config *cfg, bool own_front, struct tls_contexts *out,
                       char *err, size_t errlen);
/* Do a and b describe the same front certificate, mTLS roots and policy? */
bool tlsctx_same_front(const struct config *a, const struct config *b);

/*
 * The front certificate's dates and chain, as found in the file at path, at
 * time now. Returns -1 with err naming the file, the date and the fix when
 * it is expired or not yet valid (clients would refuse it); otherwise 0,
 * with warn set when the leaf is not self-signed and its issuer is not in
 * the file (certbot's cert.pem given for fullchain.pem), else warn = "".
 * Only a warning: a leaf issued by a root the clients have needs no chain.
 */
int tlsctx_front_check(X509 *leaf, STACK_OF(X509) * extra, const char *path, time_t now, char *err,
                       size_t errlen, char *warn, size_t warnlen);

/*
 * The leaf's (chain[0]) every CN, read as a DNS name, against the
 * nameConstraints of every CA above it. OpenSSL applies constraints to a CN
 * only when it looks like a host name with a dot, yet X509_check_host falls
 * back to any CN when there is no DNS SAN: "CN=localhost" under a CA
 * limited to example.com would pass. Returns X509_V_OK, or the violation
 * with ca (RFC 2253) and cons ("permitted DNS:...") of the refusing CA.
 */
int tlsctx_cn_constraints(STACK_OF(X509) * chain, char *ca, size_t calen, char *cons,
                          size_t conslen);
/* True if x has a subjectAltName dNSName (then the host check ignores the CN). */
bool tlsctx_has_dns_san(X509 *x);

/* Whole days from now to not_after (negative once expired). */
int64_t tlsctx_days_left(int64_t not_after, time_t now);

/*
 * True if the server SSL's certificate covers the SNI the client sent (or
 * it sent none); sni receives the name, or NULL.
 */
bool tlsctx_sni_covered(SSL *ssl, const char **sni);

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

#endif
