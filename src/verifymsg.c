/*
 * verifymsg.c - certificates as text, and why the upstream's certificate
 * did not verify: the failure the back context's verify callback records in
 * the SSL, and the client's FATAL message (cause and fix) made from it.
 *
 * Owns: the SSL ex-data slot of the failure record (freed with the SSL).
 * Never: decides a verdict (the callbacks in tlsctx.c do), logs, or reads
 * files; tlsctx_verify_message is pure, for unit tests.
 */
#include "verifymsg.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

void tlsctx_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) {
        snprintf(buf, len, "?");
        return;
    }
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void tlsctx_cert_names(X509 *cert, char *buf, size_t len)
{
    size_t off = 0;
    char cn[256] = "";
    buf[0] = '\0';
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    off += (size_t)snprintf(buf, len, "CN=%s", cn[0] ? cn : "(none)");
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && off < len; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            off += (size_t)snprintf(buf + off, len - off, "%sDNS:%.*s", i ? ", " : ", SAN ",
                                    ASN1_STRING_length(g->d.dNSName), (const char *)d);
        } else if (g->type == GEN_IPADD) {
            char ip[INET6_ADDRSTRLEN] = "?";
            int l = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
            if (l == 4)
                inet_ntop(AF_INET, d, ip, sizeof(ip));
            else if (l == 16)
                inet_ntop(AF_INET6, d, ip, sizeof(ip));
            off += (size_t)snprintf(buf + off, len - off, "%sIP:%s", i ? ", " : ", SAN ", ip);
        }
    }
    GENERAL_NAMES_free(sans);
}

void tlsctx_cert_summary(X509 *cert, char *buf, size_t len)
{
    char subj[256], iss[256], exp[32];
    X509_NAME_oneline(X509_get_subject_name(cert), subj, sizeof(subj));
    X509_NAME_oneline(X509_get_issuer_name(cert), iss, sizeof(iss));
    tlsctx_time_str(X509_get0_notAfter(cert), exp, sizeof(exp));
    snprintf(buf, len, "subject=\"%s\" issuer=\"%s\" not_after=%s", subj, iss, exp);
}

/* ---- why the upstream's certificate did not verify ---------------------- */

/*
 * OpenSSL keeps only the error code after the handshake (SSL_get_verify_result);
 * which certificate failed, and its dates and issuer, are gone with the
 * X509_STORE_CTX. The verify callback copies them into the SSL's ex data
 * (first failure only: verification stops there), allocated only on
 * failure and freed with the SSL.
 */
static int failure_idx = -1;
static pthread_once_t failure_once = PTHREAD_ONCE_INIT;

static void failure_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                            void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static void failure_index_init(void)
{
    failure_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, failure_free_cb);
}

void tlsctx_verify_failure_init(void)
{
    pthread_once(&failure_once, failure_index_init);
}

void tlsctx_name_str(const X509_NAME *name, char *buf, size_t len)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    int n = BIO_read(b, buf, (int)len - 1);
    buf[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

struct tlsctx_verify_failure *tlsctx_record_verify_failure(X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl == NULL || failure_idx < 0)
        return NULL;
    struct tlsctx_verify_failure *f = SSL_get_ex_data(ssl, failure_idx);
    if (f != NULL)
        return f; /* the first failure stays: verification stopped there */
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL; /* the message falls back to the bare error code */
    f->err = X509_STORE_CTX_get_error(store);
    f->depth = X509_STORE_CTX_get_error_depth(store);
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(store);
    f->sent = sent != NULL ? sk_X509_num(sent) : 0;
    X509 *cert = X509_STORE_CTX_get_current_cert(store);
    if (cert != NULL) {
        tlsctx_name_str(X509_get_subject_name(cert), f->subject, sizeof(f->subject));
        tlsctx_name_str(X509_get_issuer_name(cert), f->issuer, sizeof(f->issuer));
        tlsctx_cert_names(cert, f->names, sizeof(f->names));
        tlsctx_time_str(X509_get0_notBefore(cert), f->not_before, sizeof(f->not_before));
        tlsctx_time_str(X509_get0_notAfter(cert), f->not_after, sizeof(f->not_after));
    }
    if (SSL_set_ex_data(ssl, failure_idx, f) != 1) {
        free(f);
        return NULL;
    }
    return f;
}

const struct tlsctx_verify_failure *tlsctx_verify_failure(const SSL *ssl)
{
    return failure_idx >= 0 ? SSL_get_ex_data(ssl, failure_idx) : NULL;
}

/* "subject \"S\"" or, when the callback saw no certificate, nothing. */
static const char *subj_of(const struct tlsctx_verify_failure *f, char *buf, size_t len)
{
    if (f->subject[0] == '\0')
        return "";
    snprintf(buf, len, " \"%s\"", f->subject);
    return buf;
}

const char *tlsctx_verify_message(const struct tlsctx_verify_failure *f, const char *name,
                                  time_t now, char *buf, size_t len)
{
    char s[300], nowstr[32];
    struct tm tm;
    const char *subj = subj_of(f, s, sizeof(s));
    int leaf = f->depth <= 0;
    const char *what = leaf ? "the server's certificate" : "the CA certificate";

    if (f->err == X509_V_ERR_HOSTNAME_MISMATCH || f->err == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        /* Its own wording: the fix may be on either side. */
        snprintf(buf, len,
                 "pg-tls-proxy: upstream certificate does not match the name \"%s\" (the "
                 "certificate has %s) — set --client-tls-validation-host to a name the "
                 "certificate carries, or give the database server a certificate for \"%s\"",
                 name, f->names[0] ? f->names : "unknown names", name);
        return "name";
    }
    if (gmtime_r(&now, &tm) != NULL)
        strftime(nowstr, sizeof(nowstr), "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(nowstr, sizeof(nowstr), "?");
    char none[1];
    if (len == 0) { /* nothing to write, but the label still counts */
        buf = none;
        len = 1;
    }
    int n = snprintf(buf, len,
                     "pg-tls-proxy: upstream certificate verification failed for \"%s\": ", name);
    size_t off = n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
    buf += off; /* the cause and fix go after the prefix, truncated as it was */
    len -= off;

    switch (f->err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        if (leaf)
            snprintf(buf, len,
                     "%s%s expired on %s (its notAfter; the proxy's clock says %s) — renew the "
                     "database server's certificate (its ssl_cert_file) and reload the server",
                     what, subj, f->not_after, nowstr);
        else
            snprintf(buf, len,
                     "%s%s (depth %d of the chain) expired on %s (its notAfter; the proxy's clock "
                     "says %s) — replace it with the CA's renewed certificate, in the database "
                     "server's ssl_cert_file chain or in --client-ca-roots-path",
                     what, subj, f->depth, f->not_after, nowstr);
        return "expired";
    case X509_V_ERR_CERT_NOT_YET_VALID:
        snprintf(buf, len,
                 "%s%s is not valid before %s (its notBefore; the proxy's clock says %s) — "
                 "check the clocks of the proxy host and of the machine that issued it, or "
                 "reissue the certificate with a start date in the past",
                 what, subj, f->not_before, nowstr);
        return "not_yet_valid";
    case X509_V_ERR_PERMITTED_VIOLATION:
    case X509_V_ERR_EXCLUDED_VIOLATION:
        if (f->cn_constraint)
            snprintf(buf, len,
                     "the server's certificate%s has no DNS subjectAltName, and its name (%s) is "
                     "not permitted by the name constraints of its CA \"%s\" (%s) — a name its "
                     "CA may not certify is refused: give the database server a certificate "
                     "whose subjectAltName has a DNS name inside those constraints, and set "
                     "--client-tls-validation-host to that name",
                     subj, f->names[0] ? f->names : "its CN", f->constraint_ca,
                     f->constraints[0] ? f->constraints : "see the CA certificate");
        else
            snprintf(buf, len,
                     "the server's certificate%s has a name (%s) that the name constraints of a "
                     "CA in its chain do not permit (%s) — give the database server a "
                     "certificate whose names are inside its CA's constraints",
                     subj, f->names[0] ? f->names : "?", X509_verify_cert_error_string(f->err));
        return "name_constraints";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        snprintf(buf, len,
                 "the server's certificate%s is self-signed (no CA issued it) — give the "
                 "database server a certificate signed by a CA in --client-ca-roots-path, or, "
                 "to trust this one certificate, add it to --client-ca-roots-path",
                 subj);
        return "self_signed";
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        snprintf(buf, len,
                 "the server's chain ends at the root CA%s, which is not in "
                 "--client-ca-roots-path — is --client-ca-roots-path the CA that signed the "
                 "database server's certificate? Add that root to it only if you trust it",
                 subj);
        return "untrusted_root";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        if (leaf && f->sent <= 1)
            /*
             * The leaf alone, from an issuer we do not have: either the
             * server leaves out its intermediate or the roots are the wrong
             * CA. Nothing in the leaf tells which, so name the issuer and
             * give both fixes, the likelier first.
             */
            snprintf(buf, len,
                     "the server sent only its own certificate%s, and its issuer \"%s\" is not "
                     "in --client-ca-roots-path — if that is an intermediate CA, the server did "
                     "not send it: append it to the database server's ssl_cert_file after the "
                     "server's certificate, or add it to --client-ca-roots-path; otherwise "
                     "--client-ca-roots-path is not the CA that signed the server's certificate",
                     subj, f->issuer);
        else if (leaf)
            snprintf(buf, len,
                     "none of the %d certificates the server sent is the issuer \"%s\" of its "
                     "own certificate%s, and --client-ca-roots-path does not have it either — "
                     "put the intermediate CA right after the server's certificate in its "
                     "ssl_cert_file, or add it to --client-ca-roots-path",
                     f->sent, f->issuer, subj);
        else
            snprintf(buf, len,
                     "the server's chain ends at%s (depth %d), issued by \"%s\", which is not "
                     "in --client-ca-roots-path — is --client-ca-roots-path the CA that signed "
                     "the database server's certificate? It needs \"%s\"",
                     subj, f->depth, f->issuer, f->issuer);
        return "unknown_issuer";
    default:
        snprintf(buf, len,
                 "%s (%s%s, depth %d) — is --client-ca-roots-path the CA that signed the "
                 "upstream's certificate?",
                 X509_verify_cert_error_string(f->err),
                 leaf ? "the server's certificate"
                      : "a CA "
                        "certificate",
                 subj, f->depth);
        return "verify";
    }
}
