/*
 * tlsctx.c - the process-wide TLS contexts of both legs.
 *
 * Owns loading of certificates, keys and CA roots, and the start-up
 * validation messages about them. Never logs key material; errors are
 * returned as text for the caller to print.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "pemfile.h"
#include "tlsctx.h"
#include "tlsio.h"
#include "verifymsg.h"

bool tlsctx_is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* The back context's verify callback: changes no verdict, only remembers it. */
static int back_verify_cb(int ok, X509_STORE_CTX *store)
{
    if (!ok)
        tlsctx_record_verify_failure(store);
    return ok;
}

static int is_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : 1;
}

/* ALPN protocol id of PostgreSQL 17+, in wire format (length-prefixed). */
static const unsigned char alpn_postgresql[] = "\x0apostgresql";
#define ALPN_LEN (sizeof(alpn_postgresql) - 1)

bool tlsctx_alpn_postgresql(const SSL *ssl)
{
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    return n == ALPN_LEN - 1 && memcmp(p, alpn_postgresql + 1, n) == 0;
}

/*
 * Select "postgresql" whenever the client offers it. A client that offers
 * ALPN without it is speaking something else: refuse, as PostgreSQL does.
 */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel = NULL;
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, alpn_postgresql, ALPN_LEN, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * Certificate chain + matching key into ctx; errors name the flags. Each
 * file is checked first (pemfile.c): OpenSSL's own errors ("PEM lib",
 * "system lib") do not say which mistake it is, and with no callback it
 * would prompt on the terminal for an encrypted key's passphrase.
 */
static int load_identity(SSL_CTX *ctx, const char *cert_path, const char *key_path,
                         const char *cert_flag, const char *key_flag, char *err, size_t errlen)
{
    char e[256];

    if (pemfile_check(cert_flag, cert_path, PEM_WANT_CERT, err, errlen) < 0 ||
        pemfile_check(key_flag, key_path, PEM_WANT_KEY, err, errlen) < 0)
        return -1;
    SSL_CTX_set_default_passwd_cb(ctx, pemfile_no_passphrase_cb);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
        snprintf(err, errlen, "%s \"%s\": cannot load a PEM certificate chain: %s", cert_flag,
                 cert_path, tlsio_error(e, sizeof(e)));
        return -1;
    }
    BIO *kb = BIO_new_file(key_path, "r");
    EVP_PKEY *key =
        kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, pemfile_no_passphrase_cb, NULL) : NULL;
    BIO_free(kb);
    if (key == NULL) {
        snprintf(err, errlen, "%s \"%s\": cannot load a PEM private key: %s", key_flag, key_path,
                 tlsio_error(e, sizeof(e)));
        return -1;
    }
    int ok = X509_check_private_key(SSL_CTX_get0_certificate(ctx), key) == 1 &&
             SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok) {
        ERR_clear_error();
        snprintf(err, errlen, "%s \"%s\" does not match the certificate in \"%s\"", key_flag,
                 key_path, cert_path);
        return -1;
    }
    return 0;
}

/* Minimum version and cipher lists; errors name the flags (side: "server"/"client"). */
static int apply_policy(SSL_CTX *ctx, const char *side, int min_tls, const char *tls12,
                        const char *tls13, char *err, size_t errlen)
{
    char e[256];
    SSL_CTX_set_min_proto_version(ctx, min_tls == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    if (tls12 != NULL && SSL_CTX_set_cipher_list(ctx, tls12) != 1) {
        snprintf(err, errlen, "--%s-tls12-ciphers \"%s\": %s", side, tls12,
                 tlsio_error(e, sizeof(e)));
        return -1;
    }
    if (tls13 != NULL && SSL_CTX_set_ciphersuites(ctx, tls13) != 1) {
        snprintf(err, errlen, "--%s-tls13-ciphersuites \"%s\": %s", side, tls13,
                 tlsio_error(e, sizeof(e)));
        return -1;
    }
    return 0;
}

SSL_CTX *tlsctx_front(const char *cert_path, const char *key_path, char *summary, size_t summarylen,
                      char *err, size_t errlen)
{
    return tlsctx_server(cert_path, key_path, "--server-certificate-path",
                         "--server-private-key-path", summary, summarylen, err, errlen);
}

SSL_CTX *tlsctx_server(const char *cert_path, const char *key_path, const char *cert_flag,
                       const char *key_flag, char *summary, size_t summarylen, char *err,
                       size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create TLS context: %s", tlsio_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_passwd_cb(ctx, pemfile_no_passphrase_cb); /* never a prompt */
    /* No SSL_MODE_RELEASE_BUFFERS: freeing and reallocating 16 KB record
     * buffers on every record cost ~10% of a small query's CPU. Buffers
     * are given back when a session goes idle instead (relay.c). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
    /* Clients of a database proxy do not resume sessions (libpq never
     * does): tickets would cost CPU and memory on every handshake. */
    SSL_CTX_set_num_tickets(ctx, 0);            /* TLS 1.3 */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET); /* TLS 1.2 */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (load_identity(ctx, cert_path, key_path, cert_flag, key_flag, err, errlen) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    tlsctx_cert_summary(SSL_CTX_get0_certificate(ctx), summary, summarylen);
    return ctx;
}

/* Add every certificate of one PEM file to the store; returns the count or -1. */
static int load_pem_file(X509_STORE *store, const char *path, char *err, size_t errlen)
{
    BIO *bio = BIO_new_file(path, "r");
    int n = 0;
    X509 *x;

    if (bio == NULL) {
        ERR_clear_error();
        char why[300];
        pemfile_open_error(errno, why, sizeof(why));
        snprintf(err, errlen, "cannot open \"%s\": %s", path, why);
        return -1;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, pemfile_no_passphrase_cb, NULL)) != NULL) {
        /* A duplicate is not an error: bundles often repeat roots. */
        if (X509_STORE_add_cert(store, x) == 1)
            n++;
        X509_free(x);
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    BIO_free(bio);
    return n;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads roots_path into store; fills summary; returns total or -1. */
static int load_roots(X509_STORE *store, const char *flag, const char *roots_path, char *summary,
                      size_t summarylen, char *err, size_t errlen)
{
    char why[300];
    int f = is_file(roots_path);
    if (f < 0) {
        pemfile_open_error(-f, why, sizeof(why));
        snprintf(err, errlen, "%s \"%s\": %s", flag, roots_path, why);
        return -1;
    }
    if (f == 1) {
        if (pemfile_check(flag, roots_path, PEM_WANT_CA, err, errlen) < 0)
            return -1;
        int n = load_pem_file(store, roots_path, err, errlen);
        if (n == 0)
            snprintf(err, errlen,
                     "%s \"%s\": no PEM certificate found in the file "
                     "(0 CA certificates loaded)",
                     flag, roots_path);
        if (n > 0)
            snprintf(summary, summarylen, "%d from %s", n, roots_path);
        return n > 0 ? n : -1;
    }

    DIR *d = opendir(roots_path);
    if (d == NULL) {
        pemfile_open_error(errno, why, sizeof(why));
        snprintf(err, errlen, "%s \"%s\": %s", flag, roots_path, why);
        return -1;
    }
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' ||
            !(has_suffix(de->d_name, ".pem") || has_suffix(de->d_name, ".crt")))
            continue;
        if (nnames == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof(*names));
            if (nn == NULL)
                break;
            names = nn;
        }
        names[nnames] = strdup(de->d_name);
        if (names[nnames] != NULL)
            nnames++;
    }
    closedir(d);
    if (nnames > 1)
        qsort(names, nnames, sizeof(*names), cmp_str);

    int total = 0;
    char first_problem[700] = "";
    size_t off = (size_t)snprintf(summary, summarylen, "from %s:", roots_path);
    for (size_t i = 0; i < nnames; i++) {
        char path[4096], e[256];
        snprintf(path, sizeof(path), "%s/%s", roots_path, names[i]);
        int n = load_pem_file(store, path, e, sizeof(e));
        if (n > 0)
            total += n;
        else if (first_problem[0] == '\0') /* why, in words: unreadable, DER, a key... */
            pemfile_check("file", path, PEM_WANT_CA, first_problem, sizeof(first_problem));
        if (off < summarylen)
            off += (size_t)snprintf(summary + off, summarylen - off, " %s=%d", names[i],
                                    n < 0 ? 0 : n);
        free(names[i]);
    }
    free(names);
    if (total == 0) {
        snprintf(err, errlen,
                 "%s \"%s\": 0 CA certificates loaded from %zu *.pem/*.crt "
                 "file(s) in the directory (%s)%s%s",
                 flag, roots_path, nnames, summary, first_problem[0] ? "; " : "", first_problem);
        return -1;
    }
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%d %s", total, summary);
    snprintf(summary, summarylen, "%s", tmp);
    return total;
}

SSL_CTX *tlsctx_back(const char *roots_path, char *summary, size_t summarylen, char *err,
                     size_t errlen)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot create TLS context: %s", tlsio_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_default_passwd_cb(ctx, pemfile_no_passphrase_cb); /* never a prompt */
    /* No SSL_MODE_RELEASE_BUFFERS: freeing and reallocating 16 KB record
     * buffers on every record cost ~10% of a small query's CPU. Buffers
     * are given back when a session goes idle instead (relay.c). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    tlsctx_verify_failure_init();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, back_verify_cb);
    /* PostgreSQL up to 17 only does P-256 (ssl_ecdh_curve) and OpenSSL's
     * client sends a key share for its first group only: with X25519 first,
     * every handshake pays a HelloRetryRequest round trip. P-256 first. */
    if (SSL_CTX_set1_groups_list(ctx, "P-256:X25519:P-384:X448") != 1) {
        snprintf(err, errlen, "cannot set TLS groups: %s", tlsio_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* As libpq 17: offer "postgresql" in every handshake (required for
     * direct TLS, harmless after SSLRequest; older servers ignore it). */
    if (SSL_CTX_set_alpn_protos(ctx, alpn_postgresql, ALPN_LEN) != 0) {
        snprintf(err, errlen, "cannot set ALPN: %s", tlsio_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (load_roots(store, "--client-ca-roots-path", roots_path, summary, summarylen, err, errlen) <
        0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* Anything in the roots is a trust anchor, even an intermediate or a leaf. */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    return ctx;
}

bool tlsctx_is_cloudsql_name(const char *s)
{
    /* "project:instance" (Cloud SQL's CN): one colon, not an IPv6 literal. */
    const char *colon = strchr(s, ':');
    return colon != NULL && colon != s && colon[1] != '\0' && strchr(colon + 1, ':') == NULL &&
           !tlsctx_is_ip(s);
}

/*
 * At depth 0 once the chain verified (the host check is done by then): the
 * leaf's CN against the name constraints of its CAs, which OpenSSL skips
 * for a dotless CN. Refuses through the verify result, so the handshake
 * fails as for any other verification error and the failure says why.
 */
static int cn_constraints_cb(X509_STORE_CTX *store)
{
    char ca[256], cons[256];
    int r =
        tlsctx_cn_constraints(X509_STORE_CTX_get0_chain(store), ca, sizeof(ca), cons, sizeof(cons));
    if (r == X509_V_OK)
        return 1;
    X509_STORE_CTX_set_error(store, r);
    struct tlsctx_verify_failure *f = tlsctx_record_verify_failure(store);
    if (f != NULL && f->err == r && f->depth == 0) {
        f->cn_constraint = true;
        snprintf(f->constraint_ca, sizeof(f->constraint_ca), "%s", ca);
        snprintf(f->constraints, sizeof(f->constraints), "%s", cons);
    }
    return 0;
}

/*
 * A DNS validation host: OpenSSL's host check falls back to the CN when the
 * leaf has no DNS SAN, so the CN must then pass the name constraints too.
 */
static int host_verify_cb(int ok, X509_STORE_CTX *store)
{
    if (!ok || X509_STORE_CTX_get_error_depth(store) != 0)
        return back_verify_cb(ok, store);
    X509 *leaf = X509_STORE_CTX_get_current_cert(store);
    if (leaf == NULL || tlsctx_has_dns_san(leaf))
        return 1;
    return cn_constraints_cb(store);
}

/*
 * Cloud SQL mode: the leaf's CN must equal the validation name exactly
 * (Google's own connectors check the same); chain verification is
 * OpenSSL's as always, and the CN must pass its CAs' name constraints.
 * The name is the SSL's app data.
 */
static int cloudsql_verify_cb(int ok, X509_STORE_CTX *store)
{
    if (!ok || X509_STORE_CTX_get_error_depth(store) != 0)
        return back_verify_cb(ok, store);
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    const char *want = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get_current_cert(store);
    char cn[256] = "";
    int n = leaf != NULL ? X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName,
                                                     cn, sizeof(cn))
                         : -1;
    if (want != NULL && n > 0 && (size_t)n == strlen(want) && strcmp(cn, want) == 0)
        return cn_constraints_cb(store);
    X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
    return back_verify_cb(0, store);
}

int tlsctx_back_session_setup(SSL *ssl, const char *verify_name, char *err, size_t errlen)
{
    char e[256];
    if (tlsctx_is_cloudsql_name(verify_name)) {
        /* No SNI: "project:instance" is not a host name. */
        SSL_set_app_data(ssl, (void *)(uintptr_t)verify_name);
        SSL_set_verify(ssl, SSL_VERIFY_PEER, cloudsql_verify_cb);
        return 0;
    }
    if (tlsctx_is_ip(verify_name)) {
        /* RFC 6066: no SNI for IP literals; check the IP SAN instead. */
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), verify_name) != 1)
            goto fail;
        return 0;
    }
    if (SSL_set1_host(ssl, verify_name) != 1 || SSL_set_tlsext_host_name(ssl, verify_name) != 1)
        goto fail;
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set_verify(ssl, SSL_VERIFY_PEER, host_verify_cb);
    return 0;
fail:
    snprintf(err, errlen, "cannot set the upstream name \"%s\": %s", verify_name,
             tlsio_error(e, sizeof(e)));
    return -1;
}

/* The front certificate's names, dates and chain into out; -1 if expired or not yet valid. */
static int front_describe(struct tls_contexts *out, const char *path, char *err, size_t errlen)
{
    X509 *leaf = SSL_CTX_get0_certificate(out->front);
    STACK_OF(X509) *extra = NULL;
    SSL_CTX_get0_chain_certs(out->front, &extra);
    if (leaf == NULL)
        return 0;
    if (tlsctx_front_check(leaf, extra, path, time(NULL), err, errlen, out->front_warning,
                           sizeof(out->front_warning)) < 0)
        return -1;
    if (out->front_warning[0] != '\0') {
        AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(leaf, NID_info_access, NULL, NULL);
        for (int i = 0; aia != NULL && i < sk_ACCESS_DESCRIPTION_num(aia); i++)
            if (OBJ_obj2nid(sk_ACCESS_DESCRIPTION_value(aia, i)->method) == NID_ad_ca_issuers)
                out->front_warning_likely = true;
        AUTHORITY_INFO_ACCESS_free(aia);
    }
    tlsctx_cert_names(leaf, out->front_names, sizeof(out->front_names));
    tlsctx_time_str(X509_get0_notBefore(leaf), out->front_not_before,
                    sizeof(out->front_not_before));
    tlsctx_time_str(X509_get0_notAfter(leaf), out->front_not_after, sizeof(out->front_not_after));
    out->front_expiry = tlsctx_not_after(leaf);
    out->front_chain_len = 1 + (extra != NULL ? sk_X509_num(extra) : 0);
    return 0;
}

/* The back leg's context: CA roots, policy, client certificate. */
static int build_back(const struct config *cfg, struct tls_contexts *out, char *err, size_t errlen)
{
    out->back = tlsctx_back(cfg->ca_roots_path, out->roots_summary, sizeof(out->roots_summary), err,
                            errlen);
    if (out->back == NULL)
        return -1;
    if (apply_policy(out->back, "client", cfg->back_min_tls, cfg->back_tls12_ciphers,
                     cfg->back_tls13_suites, err, errlen) < 0)
        return -1;
    if (cfg->back_cert_path != NULL &&
        load_identity(out->back, cfg->back_cert_path, cfg->back_key_path,
                      "--client-certificate-path", "--client-private-key-path", err, errlen) < 0)
        return -1;
    return 0;
}

/* The front leg's context: identity, policy, mTLS roots. */
static int build_front(const struct config *cfg, struct tls_contexts *out, char *err, size_t errlen)
{
    out->front = tlsctx_front(cfg->front_cert_path, cfg->front_key_path, out->front_summary,
                              sizeof(out->front_summary), err, errlen);
    if (out->front == NULL || front_describe(out, cfg->front_cert_path, err, errlen) < 0)
        return -1;
    if (apply_policy(out->front, "server", cfg->front_min_tls, cfg->front_tls12_ciphers,
                     cfg->front_tls13_suites, err, errlen) < 0)
        return -1;
    if (cfg->front_client_ca_path != NULL) {
        char sum[512];
        X509_STORE *store = X509_STORE_new();
        if (store == NULL || load_roots(store, "--server-client-ca-path", cfg->front_client_ca_path,
                                        sum, sizeof(sum), err, errlen) < 0) {
            X509_STORE_free(store);
            return -1;
        }
        /* As for the upstream's roots: an intermediate may be the anchor. */
        X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
        SSL_CTX_set_cert_store(out->front, store); /* ctx owns it now */
        SSL_CTX_set_verify(out->front, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        snprintf(out->client_ca_summary, sizeof(out->client_ca_summary), "%s", sum);
    }
    return 0;
}

int tlsctx_build(const struct config *cfg, struct tls_contexts *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    /* With a --config whose routes each name their own upstream and no
     * global one, there is no default route and no global back context. */
    bool back = cfg->ca_roots_path != NULL || cfg->nroutes == 0;
    if ((back && build_back(cfg, out, err, errlen) < 0) || build_front(cfg, out, err, errlen) < 0) {
        tlsctx_contexts_free(out);
        return -1;
    }
    return 0;
}

int tlsctx_build_route(const struct config *cfg, bool own_front, struct tls_contexts *out,
                       char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (build_back(cfg, out, err, errlen) < 0 ||
        (own_front && build_front(cfg, out, err, errlen) < 0)) {
        tlsctx_contexts_free(out);
        return -1;
    }
    return 0;
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool tlsctx_same_front(const struct config *a, const struct config *b)
{
    return same_str(a->front_cert_path, b->front_cert_path) &&
           same_str(a->front_key_path, b->front_key_path) &&
           same_str(a->front_client_ca_path, b->front_client_ca_path) &&
           a->front_min_tls == b->front_min_tls &&
           same_str(a->front_tls12_ciphers, b->front_tls12_ciphers) &&
           same_str(a->front_tls13_suites, b->front_tls13_suites);
}

void tlsctx_contexts_free(struct tls_contexts *c)
{
    SSL_CTX_free(c->front);
    SSL_CTX_free(c->back);
    c->front = c->back = NULL;
}

int64_t tlsctx_not_after(X509 *cert)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}
