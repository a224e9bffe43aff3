/*
 * certcheck.c - checks of certificates that OpenSSL does not make, or makes
 * too quietly: the front certificate's dates and chain (start-up, --check,
 * reload), whether the client's SNI is among its names, and the upstream
 * leaf's CN against its CAs' name constraints.
 *
 * Pure functions of certificates and a clock: no files, no logging (the
 * caller words the log line), nothing kept between calls.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tlsctx.h"

int64_t tlsctx_days_left(int64_t not_after, time_t now)
{
    int64_t s = not_after - (int64_t)now;
    /* Floor division: a certificate that expired a second ago has -1 days. */
    return s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
}

static void now_str(time_t now, char *buf, size_t len)
{
    struct tm tm;
    if (gmtime_r(&now, &tm) != NULL)
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(buf, len, "?");
}

int tlsctx_front_check(X509 *leaf, STACK_OF(X509) * extra, const char *path, time_t now, char *err,
                       size_t errlen, char *warn, size_t warnlen)
{
    char subj[256], when[32], clock[32];
    warn[0] = '\0';
    tlsctx_name_str(X509_get_subject_name(leaf), subj, sizeof(subj));
    now_str(now, clock, sizeof(clock));
    time_t t = now;
    if (X509_cmp_time(X509_get0_notAfter(leaf), &t) <= 0) {
        tlsctx_time_str(X509_get0_notAfter(leaf), when, sizeof(when));
        snprintf(err, errlen,
                 "--server-certificate-path \"%s\": the certificate \"%s\" expired on %s (its "
                 "notAfter; this host's clock says %s) — clients refuse an expired certificate: "
                 "renew it (certbot renew, or your CA) and give the new file",
                 path, subj, when, clock);
        return -1;
    }
    if (X509_cmp_time(X509_get0_notBefore(leaf), &t) > 0) {
        tlsctx_time_str(X509_get0_notBefore(leaf), when, sizeof(when));
        snprintf(err, errlen,
                 "--server-certificate-path \"%s\": the certificate \"%s\" is not valid before "
                 "%s (its notBefore; this host's clock says %s) — clients refuse it until then: "
                 "check this host's clock, or reissue the certificate with a start date in the "
                 "past",
                 path, subj, when, clock);
        return -1;
    }
    /* Self-signed (its own name as issuer, its own key's signature; a
     * self-signed leaf has no keyCertSign, so not X509_check_issued): clients
     * trust it as it is, or not at all. */
    if (X509_NAME_cmp(X509_get_subject_name(leaf), X509_get_issuer_name(leaf)) == 0 &&
        X509_verify(leaf, X509_get0_pubkey(leaf)) == 1)
        return 0;
    ERR_clear_error();
    for (int i = 0; extra != NULL && i < sk_X509_num(extra); i++)
        if (X509_check_issued(sk_X509_value(extra, i), leaf) == X509_V_OK)
            return 0;
    char issuer[256];
    tlsctx_name_str(X509_get_issuer_name(leaf), issuer, sizeof(issuer));
    snprintf(warn, warnlen,
             "the file holds the certificate \"%s\" without its issuer \"%s\": clients that "
             "do not have that CA certificate themselves fail to verify it (libpq: \"unable "
             "to get local issuer certificate\") — if it is an intermediate CA, give the full "
             "chain, leaf first (certbot: fullchain.pem, not cert.pem); if it is a root your "
             "clients trust, nothing is wrong",
             subj, issuer);
    return 0;
}

bool tlsctx_sni_covered(SSL *ssl, const char **sni)
{
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    *sni = name;
    if (name == NULL || name[0] == '\0')
        return true;
    X509 *leaf = SSL_get_certificate(ssl);
    /* As libpq's verify-full: SAN DNS names (wildcards included), or the
     * CN when there are none. */
    return leaf == NULL || X509_check_host(leaf, name, strlen(name), 0, NULL) == 1;
}

/* "DNS:a, IP:10.0.0.0/8" of the subtrees' bases (DNS, IP, email, URI). */
static size_t subtrees_str(STACK_OF(GENERAL_SUBTREE) * st, char *buf, size_t len)
{
    size_t off = 0;
    for (int i = 0; st != NULL && i < sk_GENERAL_SUBTREE_num(st) && off < len; i++) {
        const GENERAL_NAME *g = sk_GENERAL_SUBTREE_value(st, i)->base;
        const char *sep = off ? ", " : "";
        int n = 0;
        if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
            const ASN1_IA5STRING *v = g->d.ia5;
            n = snprintf(buf + off, len - off, "%s%s:%.*s", sep,
                         g->type == GEN_DNS     ? "DNS"
                         : g->type == GEN_EMAIL ? "email"
                                                : "URI",
                         ASN1_STRING_length(v), (const char *)ASN1_STRING_get0_data(v));
        } else if (g->type == GEN_IPADD) {
            n = snprintf(buf + off, len - off, "%sIP:(%d bytes)", sep,
                         ASN1_STRING_length(g->d.iPAddress));
        } else {
            n = snprintf(buf + off, len - off, "%s(type %d)", sep, g->type);
        }
        if (n > 0)
            off += (size_t)n;
    }
    return off;
}

static void constraints_str(const NAME_CONSTRAINTS *nc, char *buf, size_t len)
{
    char p[256] = "", e[256] = "";
    subtrees_str(nc->permittedSubtrees, p, sizeof(p));
    subtrees_str(nc->excludedSubtrees, e, sizeof(e));
    snprintf(buf, len, "%s%s%s%s%s", p[0] ? "permitted " : "", p, p[0] && e[0] ? "; " : "",
             e[0] ? "excluded " : "", e);
}

static bool ascii_eq_nocase(const unsigned char *a, const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 32 : a[i];
        unsigned char y = b[i] >= 'A' && b[i] <= 'Z' ? b[i] + 32 : b[i];
        if (x != y)
            return false;
    }
    return true;
}

/*
 * RFC 5280 4.2.1.10 for a DNS name, as OpenSSL matches a dNSName: an empty
 * base matches everything; otherwise the name is the base, or ends with it
 * after a dot (a base that starts with a dot matches subdomains only).
 */
static bool dns_within(const char *name, const ASN1_IA5STRING *base)
{
    size_t n = strlen(name), b = (size_t)ASN1_STRING_length(base);
    const unsigned char *bp = ASN1_STRING_get0_data(base);
    if (b == 0)
        return true;
    if (n < b)
        return false;
    const unsigned char *tail = (const unsigned char *)name + (n - b);
    if (n > b && bp[0] != '.' && tail[-1] != '.')
        return false;
    return ascii_eq_nocase(tail, bp, b);
}

/* X509_V_OK, or the violation of nc by a dNSName name. */
static int dns_constraints(const char *name, const NAME_CONSTRAINTS *nc)
{
    bool any_permitted = false, permitted = false;
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees); i++) {
        const GENERAL_NAME *g = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base;
        if (g->type == GEN_DNS && dns_within(name, g->d.dNSName))
            return X509_V_ERR_EXCLUDED_VIOLATION;
    }
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
        const GENERAL_NAME *g = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;
        if (g->type != GEN_DNS)
            continue;
        any_permitted = true;
        permitted = permitted || dns_within(name, g->d.dNSName);
    }
    return any_permitted && !permitted ? X509_V_ERR_PERMITTED_VIOLATION : X509_V_OK;
}

/* X509_V_OK, or the first violation of a CA's constraints by cn. */
static int cn_against_chain(STACK_OF(X509) * chain, const char *cn, char *ca, size_t calen,
                            char *cons, size_t conslen)
{
    for (int i = 1; i < sk_X509_num(chain); i++) {
        X509 *issuer = sk_X509_value(chain, i);
        NAME_CONSTRAINTS *nc = X509_get_ext_d2i(issuer, NID_name_constraints, NULL, NULL);
        if (nc == NULL)
            continue;
        /* The CN as if it were the leaf's dNSName: what a client that falls
         * back to the CN trusts it for. */
        int r = dns_constraints(cn, nc);
        if (r != X509_V_OK) {
            tlsctx_name_str(X509_get_subject_name(issuer), ca, calen);
            constraints_str(nc, cons, conslen);
        }
        NAME_CONSTRAINTS_free(nc);
        if (r != X509_V_OK)
            return r;
    }
    return X509_V_OK;
}

int tlsctx_cn_constraints(STACK_OF(X509) * chain, char *ca, size_t calen, char *cons,
                          size_t conslen)
{
    ca[0] = cons[0] = '\0';
    X509 *leaf = chain != NULL && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL;
    if (leaf == NULL)
        return X509_V_OK;
    /* Every CN: the host check accepts a match on any of them. */
    const X509_NAME *subj = X509_get_subject_name(leaf);
    int r = X509_V_OK;
    for (int j = -1;
         r == X509_V_OK && (j = X509_NAME_get_index_by_NID(subj, NID_commonName, j)) >= 0;) {
        unsigned char *utf8 = NULL;
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, j));
        int n = ASN1_STRING_to_UTF8(&utf8, v);
        if (n < 0)
            return X509_V_ERR_OUT_OF_MEM; /* refuse what cannot be checked */
        /* A CN with a NUL in it matches no host name (X509_check_host refuses it). */
        if ((size_t)n == strlen((const char *)utf8))
            r = cn_against_chain(chain, (const char *)utf8, ca, calen, cons, conslen);
        OPENSSL_free(utf8);
    }
    return r;
}

bool tlsctx_has_dns_san(X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && !found; i++)
        found = sk_GENERAL_NAME_value(sans, i)->type == GEN_DNS;
    GENERAL_NAMES_free(sans);
    return found;
}
