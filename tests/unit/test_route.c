/*
 * test_route.c - routes and route tables (src/route.c): built from the
 * configuration's upstream flags, reference-counted, and swapped without
 * disturbing the sessions that hold the old route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "route.h"
#include "suites.h"
#include "tlsctx.h"

static struct config test_config(void)
{
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.upstream_host = (char *)"db.internal";
    cfg.upstream_port = 6432;
    cfg.upstream_verify_name = (char *)"db.example.com";
    cfg.back_direct_tls = true;
    cfg.connect_timeout_s = 7;
    cfg.keepalive_s = 30;
    return cfg;
}

START_TEST(built_from_flags)
{
    struct config cfg = test_config();
    SSL_CTX *front = SSL_CTX_new(TLS_server_method());
    SSL_CTX *back = SSL_CTX_new(TLS_client_method());
    char err[128];
    struct route_table *t = route_table_build(&cfg, front, back, err, sizeof(err));
    ck_assert_ptr_nonnull(t);
    const struct route *r = route_table_pick(t);
    ck_assert_str_eq(r->host, "db.internal");
    ck_assert_uint_eq(r->port, 6432);
    ck_assert_str_eq(r->verify_name, "db.example.com");
    ck_assert(r->direct_tls);
    ck_assert_uint_eq(r->connect_timeout_ms, 7000);
    ck_assert_uint_eq(r->keepalive_s, 30);
    ck_assert_ptr_eq(r->back_ctx, back);
    ck_assert_ptr_eq(t->front_ctx, front);
    /* the table holds its own references: the builder's may go */
    SSL_CTX_free(front);
    SSL_CTX_free(back);
    ck_assert_int_eq(SSL_CTX_up_ref(r->back_ctx), 1);
    SSL_CTX_free(r->back_ctx);
    route_table_unref(t);
}
END_TEST

/* Without --client-tls-validation-host the name is the host's. */
START_TEST(verify_name_default)
{
    struct config cfg = test_config();
    cfg.upstream_verify_name = NULL;
    char err[128];
    struct route *r = route_new(&cfg, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->verify_name, "db.internal");
    route_unref(r);
}
END_TEST

/* A session's reference keeps its route (and its SSL_CTX) alive after the
 * worker swapped tables and dropped the old one, as on reload. */
START_TEST(refcount_and_swap)
{
    struct config cfg = test_config();
    SSL_CTX *front = SSL_CTX_new(TLS_server_method());
    SSL_CTX *back1 = SSL_CTX_new(TLS_client_method());
    SSL_CTX *back2 = SSL_CTX_new(TLS_client_method());
    char err[128];
    struct route_table *worker_table = route_table_build(&cfg, front, back1, err, sizeof(err));
    ck_assert_ptr_nonnull(worker_table);
    struct route *session = route_ref(route_table_pick(worker_table));
    ck_assert_uint_eq(atomic_load(&session->refs), 2);

    cfg.upstream_port = 5433; /* the reload's configuration */
    struct route_table *fresh = route_table_build(&cfg, front, back2, err, sizeof(err));
    ck_assert_ptr_nonnull(fresh);
    struct route_table *offered = route_table_ref(fresh); /* worker_offer_routes */
    route_table_unref(fresh);                             /* main lets go */
    route_table_unref(worker_table);                      /* take_offer: the swap */
    worker_table = offered;

    ck_assert_uint_eq(atomic_load(&session->refs), 1);
    ck_assert_uint_eq(session->port, 6432); /* the old session keeps its route */
    ck_assert_ptr_eq(session->back_ctx, back1);
    ck_assert_uint_eq(route_table_pick(worker_table)->port, 5433); /* new sessions: the new one */
    ck_assert_ptr_eq(route_table_pick(worker_table)->back_ctx, back2);
    route_unref(session);
    route_table_unref(worker_table);
    SSL_CTX_free(front);
    SSL_CTX_free(back1);
    SSL_CTX_free(back2);
}
END_TEST

/* ---- lookups and the decision, on tables made by hand ---- */

/* A route named name; sni and dbs are space-separated lists ("" none). */
static struct route *mk(const char *name, const char *sni, const char *dbs, unsigned port)
{
    struct config cfg = test_config();
    char err[128];
    struct route *r = route_new(&cfg, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    free(r->name);
    r->name = strdup(name);
    const char *lists[2] = {sni, dbs};
    char ***out[2] = {&r->sni, &r->databases};
    size_t *outn[2] = {&r->nsni, &r->ndatabases};
    for (int k = 0; k < 2; k++) {
        *out[k] = calloc(8, sizeof(char *));
        char *copy = strdup(lists[k]), *save = NULL;
        for (char *tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save))
            (*out[k])[(*outn[k])++] = strdup(tok);
        free(copy);
    }
    r->listen_port = port;
    return r;
}

/* A table of the given routes (its references taken over); dflt may be NULL. */
static struct route_table *mk_table(struct route *dflt, struct route **rs, size_t n)
{
    struct route_table *t = calloc(1, sizeof(*t));
    ck_assert_ptr_nonnull(t);
    atomic_init(&t->refs, 1);
    t->all = calloc(n + 1, sizeof(*t->all));
    t->dflt = dflt;
    if (dflt != NULL)
        t->all[t->n++] = dflt;
    for (size_t i = 0; i < n; i++)
        t->all[t->n++] = rs[i];
    return t;
}

/* Exact names first, then the longest "*.suffix"; case never matters; a
 * wildcard never matches its bare suffix. */
START_TEST(sni_lookup)
{
    struct route *rs[] = {mk("a", "a.example.com", "", 0), mk("b", "*.example.com", "", 0),
                          mk("c", "*.b.example.com db.EXAMPLE.org", "", 0)};
    struct route_table *t = mk_table(NULL, rs, 3);
    ck_assert_ptr_eq(route_table_by_sni(t, "a.example.com"), rs[0]);
    ck_assert_ptr_eq(route_table_by_sni(t, "A.Example.COM"), rs[0]);
    ck_assert_ptr_eq(route_table_by_sni(t, "x.example.com"), rs[1]);
    ck_assert_ptr_eq(route_table_by_sni(t, "x.y.example.com"), rs[1]);
    ck_assert_ptr_eq(route_table_by_sni(t, "b.example.com"), rs[1]);   /* not *.b.example.com */
    ck_assert_ptr_eq(route_table_by_sni(t, "y.b.example.com"), rs[2]); /* the longer suffix */
    ck_assert_ptr_eq(route_table_by_sni(t, "Z.B.Example.Com"), rs[2]);
    ck_assert_ptr_eq(route_table_by_sni(t, "db.example.org"), rs[2]); /* compared without case */
    ck_assert_ptr_null(route_table_by_sni(t, "example.com"));
    ck_assert_ptr_null(route_table_by_sni(t, "xexample.com"));
    ck_assert_ptr_null(route_table_by_sni(t, "a.example.com.evil"));
    ck_assert_ptr_null(route_table_by_sni(t, ""));
    ck_assert_ptr_null(route_table_by_sni(t, NULL));
    route_table_unref(t);
}
END_TEST

START_TEST(database_and_port_lookup)
{
    struct route *rs[] = {mk("a", "", "app Reports", 6433), mk("b", "", "other", 6434),
                          mk("c", "", "", 6434)};
    struct route_table *t = mk_table(NULL, rs, 3);
    size_t shared = 0;
    ck_assert_ptr_eq(route_table_by_database(t, "app"), rs[0]);
    ck_assert_ptr_eq(route_table_by_database(t, "Reports"), rs[0]);
    ck_assert_ptr_null(route_table_by_database(t, "reports")); /* as PostgreSQL: case matters */
    ck_assert_ptr_null(route_table_by_database(t, "ap"));
    ck_assert_ptr_eq(route_table_by_port(t, 6433, &shared), rs[0]);
    ck_assert_uint_eq(shared, 1);
    ck_assert_ptr_null(route_table_by_port(t, 6434, &shared)); /* two share it */
    ck_assert_uint_eq(shared, 2);
    ck_assert_ptr_null(route_table_by_port(t, 5432, &shared));
    ck_assert_uint_eq(shared, 0);
    route_table_unref(t);
}
END_TEST

struct decide_case {
    const char *sni, *db;
    unsigned port;
    bool with_default;
    enum route_verdict want;
    const char *route;   /* the route picked (ROUTE_OK) */
    const char *in_msg;  /* a piece of the client's message otherwise */
    const char *in_hint; /* a piece of the hint otherwise */
};

static const struct decide_case decide_cases[] = {
    /* SNI first, then database, then port, then the default */
    {"a.localhost", "app_a", 5432, true, ROUTE_OK, "a", NULL, NULL},
    {"a.localhost", "postgres", 5432, true, ROUTE_OK, "a", NULL, NULL},
    {NULL, "app_b", 5432, true, ROUTE_OK, "b", NULL, NULL},
    {"unknown.localhost", "app_b", 5432, true, ROUTE_OK, "b", NULL, NULL},
    {NULL, "postgres", 6435, true, ROUTE_OK, "c", NULL, NULL},
    {NULL, "postgres", 5432, true, ROUTE_OK, "default", NULL, NULL},
    {"x.c.localhost", "postgres", 6435, false, ROUTE_OK, "c", NULL, NULL},
    /* mismatches are refused, not guessed */
    {"a.localhost", "app_b", 5432, true, ROUTE_MISMATCH, NULL,
     "server name \"a.localhost\" belongs to route a but database \"app_b\" to route b",
     "b (sni b.localhost; databases app_b)"},
    {NULL, "app_a", 6435, true, ROUTE_MISMATCH, NULL, "port 6435 belongs to route c",
     "port of route a"},
    {"a.localhost", "postgres", 6435, false, ROUTE_MISMATCH, NULL,
     "but server name \"a.localhost\" to route a", NULL},
    /* nothing matches and there is no default */
    {"zz.localhost", "nodb", 5432, false, ROUTE_NONE, NULL,
     "no route for server name \"zz.localhost\", database \"nodb\" on port 5432",
     "a (sni a.localhost; databases app_a)"},
    {NULL, "nodb", 5432, false, ROUTE_NONE, NULL, "server name \"(none sent)\"",
     "c (sni *.c.localhost; port 6435)"},
};

START_TEST(decide)
{
    const struct decide_case *dc = &decide_cases[_i];
    struct route *rs[] = {mk("a", "a.localhost", "app_a", 0), mk("b", "b.localhost", "app_b", 0),
                          mk("c", "*.c.localhost", "", 6435)};
    struct route_table *t = mk_table(dc->with_default ? mk("default", "", "", 0) : NULL, rs, 3);
    struct route *r = NULL;
    char msg[1024], hint[1024];
    enum route_verdict v =
        route_table_decide(t, dc->sni, dc->db, dc->port, &r, msg, sizeof(msg), hint, sizeof(hint));
    ck_assert_msg(v == dc->want, "case %d: verdict %d, want %d (%s)", _i, v, dc->want, msg);
    if (dc->route != NULL) {
        ck_assert_ptr_nonnull(r);
        ck_assert_str_eq(r->name, dc->route);
    } else {
        ck_assert_ptr_null(r);
        ck_assert_msg(strstr(msg, dc->in_msg) != NULL, "case %d: %s", _i, msg);
        ck_assert_msg(dc->in_hint == NULL || strstr(hint, dc->in_hint) != NULL, "case %d: %s", _i,
                      hint);
    }
    route_table_unref(t);
}
END_TEST

/* With only the default route, everything goes there, as before routes. */
START_TEST(decide_single)
{
    struct route_table *t = mk_table(mk("default", "", "", 0), NULL, 0);
    struct route *r = NULL;
    char msg[256], hint[256];
    ck_assert(route_table_single(t));
    ck_assert_int_eq(
        route_table_decide(t, "any.name", "anydb", 1234, &r, msg, sizeof(msg), hint, sizeof(hint)),
        ROUTE_OK);
    ck_assert_ptr_eq(r, t->dflt);
    route_table_unref(t);
}
END_TEST

/* ---- building from route_conf sections, with real files ---- */

struct pki {
    char dir[64];
    char ca[96], a_crt[96], a_key[96], d_crt[96], d_key[96];
    X509 *a_leaf, *d_leaf;
};

static X509 *signed_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0xffffff));
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x));
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                            issuer == NULL ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    ck_assert_int_gt(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()), 0);
    return x;
}

static void pem_out(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    if (x != NULL)
        PEM_write_X509(fp, x);
    if (k != NULL)
        PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
    fclose(fp);
}

/* A CA, and two leaves it signs: a.localhost (route a's front) and the default's. */
static void pki_make(struct pki *p)
{
    snprintf(p->dir, sizeof(p->dir), "/tmp/pgtp-route-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(p->dir));
    snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->dir);
    snprintf(p->a_crt, sizeof(p->a_crt), "%s/a.crt", p->dir);
    snprintf(p->a_key, sizeof(p->a_key), "%s/a.key", p->dir);
    snprintf(p->d_crt, sizeof(p->d_crt), "%s/d.crt", p->dir);
    snprintf(p->d_key, sizeof(p->d_key), "%s/d.key", p->dir);
    EVP_PKEY *ck = EVP_EC_gen("P-256"), *ak = EVP_EC_gen("P-256"), *dk = EVP_EC_gen("P-256");
    X509 *ca = signed_cert(ck, "route test CA", NULL, NULL);
    p->a_leaf = signed_cert(ak, "a.localhost", ca, ck);
    p->d_leaf = signed_cert(dk, "default.localhost", ca, ck);
    pem_out(p->ca, ca, NULL);
    pem_out(p->a_crt, p->a_leaf, NULL);
    pem_out(p->a_key, NULL, ak);
    pem_out(p->d_crt, p->d_leaf, NULL);
    pem_out(p->d_key, NULL, dk);
    X509_free(ca);
    EVP_PKEY_free(ck);
    EVP_PKEY_free(ak);
    EVP_PKEY_free(dk);
}

static void pki_free(struct pki *p)
{
    const char *f[] = {p->ca, p->a_crt, p->a_key, p->d_crt, p->d_key};
    for (size_t i = 0; i < 5; i++)
        unlink(f[i]);
    rmdir(p->dir);
    X509_free(p->a_leaf);
    X509_free(p->d_leaf);
}

struct two_routes {
    struct config global, acfg, bcfg;
    struct route_conf rc[2];
    char *a_sni[1], *b_sni[2], *a_db[1], *b_db[1];
};

/* Globals with a default upstream, route a (own certificate), route b (the global one). */
static void two_routes_init(struct two_routes *x, const struct pki *p)
{
    memset(x, 0, sizeof(*x));
    x->global = test_config();
    x->global.front_cert_path = (char *)(uintptr_t)p->d_crt;
    x->global.front_key_path = (char *)(uintptr_t)p->d_key;
    x->global.ca_roots_path = (char *)(uintptr_t)p->ca;
    x->global.listen_port = 5432;
    x->global.has_default = true;
    x->acfg = x->global;
    x->acfg.front_cert_path = (char *)(uintptr_t)p->a_crt;
    x->acfg.front_key_path = (char *)(uintptr_t)p->a_key;
    x->acfg.upstream_port = 5433;
    x->acfg.auth_mode = AUTH_PASSWORD;
    x->bcfg = x->global;
    x->bcfg.upstream_port = 5434;
    x->bcfg.allow_from = (char *)(uintptr_t) "10.0.0.0/8";
    x->a_sni[0] = (char *)(uintptr_t) "A.Localhost";
    x->b_sni[0] = (char *)(uintptr_t) "b.localhost";
    x->b_sni[1] = (char *)(uintptr_t) "*.b.localhost";
    x->a_db[0] = (char *)(uintptr_t) "app_a";
    x->b_db[0] = (char *)(uintptr_t) "app_b";
    x->rc[0] = (struct route_conf){.name = (char *)(uintptr_t) "a",
                                   .sni = x->a_sni,
                                   .nsni = 1,
                                   .databases = x->a_db,
                                   .ndatabases = 1,
                                   .cfg = &x->acfg};
    x->rc[1] = (struct route_conf){.name = (char *)(uintptr_t) "b",
                                   .sni = x->b_sni,
                                   .nsni = 2,
                                   .databases = x->b_db,
                                   .ndatabases = 1,
                                   .listen_port = 6434,
                                   .cfg = &x->bcfg};
    x->global.routes = x->rc;
    x->global.nroutes = 2;
}

START_TEST(build_routes)
{
    struct pki p;
    struct two_routes x;
    struct tls_contexts ctx;
    char err[1024];
    pki_make(&p);
    two_routes_init(&x, &p);
    ck_assert_msg(tlsctx_build(&x.global, &ctx, err, sizeof(err)) == 0, "%s", err);
    struct route_table *t = route_table_build(&x.global, ctx.front, ctx.back, err, sizeof(err));
    ck_assert_msg(t != NULL, "%s", err);
    ck_assert(!route_table_single(t));
    ck_assert_uint_eq(t->n, 3);
    ck_assert_str_eq(t->all[0]->name, "default");
    ck_assert_ptr_eq(route_table_default(t), t->all[0]);
    const struct route *a = t->all[1], *b = t->all[2];
    ck_assert_str_eq(a->name, "a");
    ck_assert_str_eq(a->sni[0], "a.localhost"); /* lower-cased */
    ck_assert_uint_eq(a->port, 5433);
    ck_assert_int_eq(a->auth_mode, AUTH_PASSWORD);
    ck_assert_int_eq(b->auth_mode, AUTH_PASSTHROUGH);
    ck_assert_uint_eq(b->listen_port, 6434);
    ck_assert_uint_eq(b->allow_from.n, 1);
    ck_assert_uint_eq(a->allow_from.n, 0);
    /* Each route its own back context; a its own certificate, b the global one. */
    ck_assert_ptr_nonnull(a->back_ctx);
    ck_assert_ptr_ne(a->back_ctx, b->back_ctx);
    ck_assert_ptr_ne(a->back_ctx, ctx.back);
    ck_assert_ptr_ne(a->front_ctx, ctx.front);
    ck_assert_int_eq(X509_cmp(SSL_CTX_get0_certificate(a->front_ctx), p.a_leaf), 0);
    ck_assert_ptr_eq(b->front_ctx, ctx.front);
    ck_assert_ptr_eq(route_table_by_sni(t, "x.b.localhost"), b);
    tlsctx_contexts_free(&ctx);
    route_table_unref(t);
    pki_free(&p);
}
END_TEST

/* All or nothing, and the error names the route. */
START_TEST(build_errors)
{
    struct pki p;
    struct two_routes x;
    struct tls_contexts ctx;
    char err[1024];
    pki_make(&p);
    two_routes_init(&x, &p);
    ck_assert_msg(tlsctx_build(&x.global, &ctx, err, sizeof(err)) == 0, "%s", err);

    x.bcfg.ca_roots_path = (char *)(uintptr_t) "/nonexistent/ca-b.pem";
    ck_assert_ptr_null(route_table_build(&x.global, ctx.front, ctx.back, err, sizeof(err)));
    ck_assert_msg(strstr(err, "route b: ") == err && strstr(err, "/nonexistent/ca-b.pem"), "%s",
                  err);
    x.bcfg.ca_roots_path = (char *)(uintptr_t)p.ca;

    x.b_db[0] = (char *)(uintptr_t) "app_a"; /* claimed twice */
    ck_assert_ptr_null(route_table_build(&x.global, ctx.front, ctx.back, err, sizeof(err)));
    ck_assert_msg(strstr(err, "database \"app_a\" is in routes a and b") != NULL, "%s", err);
    x.b_db[0] = (char *)(uintptr_t) "app_b";

    x.b_sni[0] = (char *)(uintptr_t) "a.LOCALHOST";
    ck_assert_ptr_null(route_table_build(&x.global, ctx.front, ctx.back, err, sizeof(err)));
    ck_assert_msg(strstr(err, "sni \"a.localhost\" is in routes a and b") != NULL, "%s", err);
    x.b_sni[0] = (char *)(uintptr_t) "b.localhost";

    x.rc[1].listen_port = 5432;
    ck_assert_ptr_null(route_table_build(&x.global, ctx.front, ctx.back, err, sizeof(err)));
    ck_assert_msg(strstr(err, "route b: listen-port 5432 is server-port") != NULL, "%s", err);
    x.rc[1].listen_port = 0;

    x.acfg.upstream_host = NULL;
    ck_assert_ptr_null(route_table_build(&x.global, ctx.front, ctx.back, err, sizeof(err)));
    ck_assert_msg(strstr(err, "route a: no client-connection-host-or-ip") != NULL, "%s", err);
    tlsctx_contexts_free(&ctx);
    pki_free(&p);
}
END_TEST

/* Run a handshake between two memory-BIO SSLs; true once both are done. */
static bool handshake(SSL *cli, SSL *srv)
{
    for (int i = 0; i < 20; i++) {
        int rc = SSL_do_handshake(cli), rs = SSL_do_handshake(srv);
        if (rc == 1 && rs == 1)
            return true;
        if ((rc != 1 && SSL_get_error(cli, rc) != SSL_ERROR_WANT_READ) ||
            (rs != 1 && SSL_get_error(srv, rs) != SSL_ERROR_WANT_READ))
            return false;
    }
    return false;
}

/* The client's SNI picks the route and its certificate during the
 * handshake; an SNI that names no route gets the default certificate. */
START_TEST(sni_switches_certificate)
{
    static const char *const names[] = {"a.localhost", "b.localhost", "nobody.localhost", NULL};
    struct pki p;
    struct two_routes x;
    struct tls_contexts ctx;
    char err[1024];
    pki_make(&p);
    two_routes_init(&x, &p);
    ck_assert_msg(tlsctx_build(&x.global, &ctx, err, sizeof(err)) == 0, "%s", err);
    struct route_table *t = route_table_build(&x.global, ctx.front, ctx.back, err, sizeof(err));
    ck_assert_msg(t != NULL, "%s", err);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    for (size_t i = 0; i < 4; i++) {
        SSL *cli = SSL_new(cctx), *srv = SSL_new(t->front_ctx);
        BIO *b1 = NULL, *b2 = NULL;
        ck_assert_int_eq(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
        SSL_set_bio(cli, b1, b1);
        SSL_set_bio(srv, b2, b2);
        SSL_set_connect_state(cli);
        SSL_set_accept_state(srv);
        if (names[i] != NULL)
            SSL_set_tlsext_host_name(cli, names[i]);
        struct route_sni sni = {.t = t};
        ck_assert_int_eq(route_sni_attach(srv, &sni), 0);
        ck_assert_msg(handshake(cli, srv), "handshake with SNI %s", names[i]);
        X509 *seen = SSL_get0_peer_certificate(cli);
        if (i == 0) {
            ck_assert_ptr_eq(sni.route, t->all[1]);
            ck_assert_int_eq(X509_cmp(seen, p.a_leaf), 0);
        } else if (i == 1) {
            ck_assert_ptr_eq(sni.route, t->all[2]);
            ck_assert_int_eq(X509_cmp(seen, p.d_leaf), 0); /* b has no certificate of its own */
        } else {
            ck_assert_ptr_null(sni.route);
            ck_assert_int_eq(X509_cmp(seen, p.d_leaf), 0);
        }
        SSL_free(cli);
        SSL_free(srv);
    }
    SSL_CTX_free(cctx);
    tlsctx_contexts_free(&ctx);
    route_table_unref(t);
    pki_free(&p);
}
END_TEST

Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, built_from_flags);
    tcase_add_test(tc, verify_name_default);
    tcase_add_test(tc, refcount_and_swap);
    tcase_add_test(tc, sni_lookup);
    tcase_add_test(tc, database_and_port_lookup);
    tcase_add_loop_test(tc, decide, 0, (int)(sizeof(decide_cases) / sizeof(decide_cases[0])));
    tcase_add_test(tc, decide_single);
    tcase_add_test(tc, build_routes);
    tcase_add_test(tc, build_errors);
    tcase_add_test(tc, sni_switches_certificate);
    suite_add_tcase(s, tc);
    return s;
}
