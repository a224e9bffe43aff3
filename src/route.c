/*
 * route.c - routes and route tables (route.h): built from the
 * configuration, immutable, freed by their last reference; the lookups by
 * server name, database and listen port, the decision between them, and
 * the TLS servername callback that presents a route's certificate.
 *
 * Owns the strings of a route, its allow lists, its auth file and its
 * references to the SSL_CTXs. Never changes a route once built: a reload
 * builds a new table instead. Never logs: errors are returned as text.
 */
#include "route.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "authfile.h"
#include "config.h"
#include "metrics.h"
#include "pgassert.h"
#include "tlsctx.h"

static char **copy_list(char *const *v, size_t n, bool lower)
{
    char **out = calloc(n > 0 ? n : 1, sizeof(*out));
    for (size_t i = 0; out != NULL && i < n; i++) {
        out[i] = strdup(v[i]);
        if (out[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
        for (char *p = out[i]; lower && *p != '\0'; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
    }
    return out;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i]);
    free(v);
}

struct route *route_new(const struct config *cfg, SSL_CTX *back_ctx, char *err, size_t errlen)
{
    char e[200];
    struct route *r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto oom;
    atomic_init(&r->refs, 1);
    r->name = strdup(ROUTE_DEFAULT_NAME);
    r->host = strdup(cfg->upstream_host != NULL ? cfg->upstream_host : "");
    r->verify_name = strdup(cfg->upstream_verify_name != NULL ? cfg->upstream_verify_name
                            : cfg->upstream_host != NULL      ? cfg->upstream_host
                                                              : "");
    if (r->name == NULL || r->host == NULL || r->verify_name == NULL)
        goto oom;
    if (cfg->client_bridge != NULL && (r->bridge = strdup(cfg->client_bridge)) == NULL)
        goto oom;
    r->port = cfg->upstream_port;
    r->mslot = metrics_route_slot(r->name);
    r->direct_tls = cfg->back_direct_tls;
    r->connect_timeout_ms = cfg->connect_timeout_s * 1000;
    r->keepalive_s = cfg->keepalive_s;
    r->auth_mode = cfg->auth_mode;
    if ((cfg->allow_from != NULL &&
         cidr_list_parse(cfg->allow_from, &r->allow_from, e, sizeof(e)) < 0) ||
        (cfg->allow_plaintext_from != NULL &&
         cidr_list_parse(cfg->allow_plaintext_from, &r->allow_plain, e, sizeof(e)) < 0)) {
        snprintf(err, errlen, "%s: %s",
                 r->allow_from.n == 0 && cfg->allow_from != NULL ? "--server-allow-from"
                                                                 : "--server-allow-plaintext-from",
                 e);
        route_unref(r);
        return NULL;
    }
    if (cfg->auth_mode == AUTH_SCRAM && cfg->auth_file != NULL) {
        r->auth = authfile_load(cfg->auth_file, err, errlen);
        if (r->auth == NULL) {
            route_unref(r);
            return NULL;
        }
    }
    if (back_ctx != NULL && SSL_CTX_up_ref(back_ctx) != 1)
        goto oom;
    r->back_ctx = back_ctx;
    return r;
oom:
    snprintf(err, errlen, "out of memory building the upstream route");
    route_unref(r);
    return NULL;
}

struct route *route_ref(struct route *r)
{
    PGTP_ASSERT(r != NULL && atomic_load(&r->refs) > 0);
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void route_unref(struct route *r)
{
    if (r == NULL)
        return;
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) > 1)
        return;
    free(r->name);
    free_list(r->sni, r->nsni);
    free_list(r->databases, r->ndatabases);
    free(r->host);
    free(r->verify_name);
    free(r->bridge);
    SSL_CTX_free(r->back_ctx);
    SSL_CTX_free(r->front_ctx);
    authfile_free(r->auth);
    cidr_list_free(&r->allow_from);
    cidr_list_free(&r->allow_plain);
    free(r);
}

/* One [route NAME] section: its own contexts, its names. */
static struct route *route_from_conf(const struct config *global, const struct route_conf *rc,
                                     SSL_CTX *front, char *err, size_t errlen)
{
    char e[1024];
    struct tls_contexts ctx;
    const struct config *cfg = rc->cfg;

    if (cfg->upstream_host == NULL || cfg->ca_roots_path == NULL) {
        snprintf(err, errlen,
                 "route %s: no %s (set it in the section, or globally for every route)", rc->name,
                 cfg->upstream_host == NULL ? "client-connection-host-or-ip"
                                            : "client-ca-roots-path");
        return NULL;
    }
    bool own_front = !tlsctx_same_front(global, cfg);
    if (tlsctx_build_route(cfg, own_front, &ctx, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "route %s: %s", rc->name, e);
        return NULL;
    }
    struct route *r = route_new(cfg, ctx.back, e, sizeof(e));
    if (r == NULL) {
        snprintf(err, errlen, "route %s: %s", rc->name, e);
        tlsctx_contexts_free(&ctx);
        return NULL;
    }
    SSL_CTX *fc = own_front ? ctx.front : front;
    if (fc != NULL && SSL_CTX_up_ref(fc) == 1)
        r->front_ctx = fc;
    tlsctx_contexts_free(&ctx); /* the route holds its own references */
    free(r->name);
    r->name = strdup(rc->name);
    r->mslot = metrics_route_slot(r->name);
    r->sni = copy_list(rc->sni, rc->nsni, true);
    r->nsni = rc->nsni;
    r->databases = copy_list(rc->databases, rc->ndatabases, false);
    r->ndatabases = rc->ndatabases;
    r->listen_port = rc->listen_port;
    if (r->name == NULL || r->sni == NULL || r->databases == NULL ||
        (fc != NULL && r->front_ctx == NULL)) {
        snprintf(err, errlen, "route %s: out of memory", rc->name);
        route_unref(r);
        return NULL;
    }
    return r;
}

/* A name claimed by two routes would make the choice depend on file
 * order: an error naming both. */
static int check_unique(const struct route_table *t, const struct config *cfg, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct route *a = t->all[i];
        if (a->listen_port != 0 && a->listen_port == cfg->listen_port) {
            snprintf(err, errlen,
                     "route %s: listen-port %u is server-port, which every route shares; give "
                     "the route a port of its own or none",
                     a->name, a->listen_port);
            return -1;
        }
        for (size_t j = i + 1; j < t->n; j++) {
            const struct route *b = t->all[j];
            if (strcmp(a->name, b->name) == 0) {
                snprintf(err, errlen, "route name \"%s\" is used twice", a->name);
                return -1;
            }
            for (size_t x = 0; x < a->nsni; x++)
                for (size_t y = 0; y < b->nsni; y++)
                    if (strcmp(a->sni[x], b->sni[y]) == 0) {
                        snprintf(err, errlen, "sni \"%s\" is in routes %s and %s: give it to one",
                                 a->sni[x], a->name, b->name);
                        return -1;
                    }
            for (size_t x = 0; x < a->ndatabases; x++)
                for (size_t y = 0; y < b->ndatabases; y++)
                    if (strcmp(a->databases[x], b->databases[y]) == 0) {
                        snprintf(err, errlen,
                                 "database \"%s\" is in routes %s and %s: give it to one",
                                 a->databases[x], a->name, b->name);
                        return -1;
                    }
        }
    }
    return 0;
}

static int sni_cb(SSL *ssl, int *alert, void *arg);

struct route_table *route_table_build(const struct config *cfg, SSL_CTX *front, SSL_CTX *back,
                                      char *err, size_t errlen)
{
    struct route_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto oom;
    atomic_init(&t->refs, 1);
    t->all = calloc(cfg->nroutes + 1, sizeof(struct route *));
    if (t->all == NULL || (front != NULL && SSL_CTX_up_ref(front) != 1))
        goto oom;
    t->front_ctx = front;
    if (cfg->has_default || cfg->nroutes == 0) {
        t->dflt = route_new(cfg, back, err, errlen);
        if (t->dflt == NULL)
            goto fail;
        if (front != NULL && SSL_CTX_up_ref(front) == 1)
            t->dflt->front_ctx = front;
        t->all[t->n++] = t->dflt;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        struct route *r = route_from_conf(cfg, &cfg->routes[i], front, err, errlen);
        if (r == NULL)
            goto fail;
        t->all[t->n++] = r;
    }
    if (check_unique(t, cfg, err, errlen) < 0)
        goto fail;
    /* Routes with server names of their own: the client's SNI picks the
     * certificate (and the route) during the handshake. */
    if (front != NULL && !route_table_single(t))
        SSL_CTX_set_tlsext_servername_callback(front, sni_cb);
    return t;
oom:
    snprintf(err, errlen, "out of memory building the route table");
fail:
    route_table_unref(t);
    return NULL;
}

struct route_table *route_table_ref(struct route_table *t)
{
    PGTP_ASSERT(t != NULL && atomic_load(&t->refs) > 0);
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void route_table_unref(struct route_table *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) > 1)
        return;
    for (size_t i = 0; t->all != NULL && i < t->n; i++)
        route_unref(t->all[i]);
    free(t->all);
    SSL_CTX_free(t->front_ctx);
    free(t);
}

struct route *route_table_pick(const struct route_table *t)
{
    return t->dflt != NULL ? t->dflt : t->all[0];
}

struct route *route_table_default(const struct route_table *t)
{
    return t->dflt;
}

bool route_table_single(const struct route_table *t)
{
    return t->n == 1 && t->dflt != NULL;
}

/* ---- lookups ---- */

struct route *route_table_by_sni(const struct route_table *t, const char *name)
{
    if (name == NULL || name[0] == '\0')
        return NULL;
    size_t len = strlen(name);
    for (size_t i = 0; i < t->n; i++)
        for (size_t j = 0; j < t->all[i]->nsni; j++)
            if (strcasecmp(t->all[i]->sni[j], name) == 0)
                return t->all[i];
    struct route *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < t->n; i++)
        for (size_t j = 0; j < t->all[i]->nsni; j++) {
            const char *w = t->all[i]->sni[j];
            if (w[0] != '*' || w[1] != '.')
                continue;
            size_t sl = strlen(w + 1); /* ".suffix" */
            if (len > sl && strcasecmp(name + len - sl, w + 1) == 0 && sl > best_len) {
                best = t->all[i];
                best_len = sl;
            }
        }
    return best;
}

struct route *route_table_by_database(const struct route_table *t, const char *db)
{
    if (db == NULL || db[0] == '\0')
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        for (size_t j = 0; j < t->all[i]->ndatabases; j++)
            if (strcmp(t->all[i]->databases[j], db) == 0) /* as PostgreSQL: case matters */
                return t->all[i];
    return NULL;
}

struct route *route_table_by_port(const struct route_table *t, unsigned port, size_t *shared)
{
    struct route *found = NULL;
    size_t n = 0;
    for (size_t i = 0; port != 0 && i < t->n; i++)
        if (t->all[i]->listen_port == port) {
            found = t->all[i];
            n++;
        }
    if (shared != NULL)
        *shared = n;
    return n == 1 ? found : NULL;
}

/* Append to out (truncating, never overflowing). */
static void append(char *out, size_t outlen, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t outlen, size_t *off, const char *fmt, ...)
{
    if (*off >= outlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out + *off, outlen - *off, fmt, ap);
    va_end(ap);
    *off = k < 0 ? outlen : *off + (size_t)k;
}

/* "a (sni a.localhost; databases app_a; port 6433), b (...)" for hints. */
static void describe_routes(const struct route_table *t, char *out, size_t outlen)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < t->n; i++) {
        const struct route *r = t->all[i];
        const char *sep = "";
        append(out, outlen, &off, "%s%s (", i > 0 ? ", " : "", r->name);
        for (size_t j = 0; j < r->nsni; j++, sep = "; ")
            append(out, outlen, &off, "%s%s", j == 0 ? "sni " : " ", r->sni[j]);
        for (size_t j = 0; j < r->ndatabases; j++, sep = "; ")
            append(out, outlen, &off, "%s%s%s", j == 0 ? sep : " ", j == 0 ? "databases " : "",
                   r->databases[j]);
        if (r->listen_port != 0) {
            append(out, outlen, &off, "%sport %u", sep, r->listen_port);
            sep = "; ";
        }
        if (r == t->dflt)
            append(out, outlen, &off, "%severything else", sep);
        append(out, outlen, &off, ")");
    }
}

enum route_verdict route_table_decide(const struct route_table *t, const char *sni,
                                      const char *database, unsigned port, struct route **out,
                                      char *msg, size_t msglen, char *hint, size_t hintlen)
{
    char routes[700];
    size_t shared = 0;
    struct route *sr = route_table_by_sni(t, sni);
    struct route *dr = route_table_by_database(t, database);
    struct route *pr = route_table_by_port(t, port, &shared);
    const char *name = sni != NULL && sni[0] != '\0' ? sni : NULL;
    const char *db = database != NULL ? database : "";

    *out = NULL;
    msg[0] = hint[0] = '\0';
    /* The list of routes is written only for a refusal: a session that
     * finds its route (every one, once per connection) never pays for it. */
    if (sr != NULL && dr != NULL && dr != sr) {
        describe_routes(t, routes, sizeof(routes));
        snprintf(msg, msglen,
                 "pg-tls-proxy: server name \"%s\" belongs to route %s but database \"%s\" to "
                 "route %s",
                 name, sr->name, db, dr->name);
        snprintf(hint, hintlen, "connect with the server name and a database of the same route: %s",
                 routes);
        return ROUTE_MISMATCH;
    }
    struct route *r = sr != NULL ? sr : dr != NULL ? dr : pr;
    if (r == NULL && shared == 0)
        r = t->dflt;
    if (r == NULL) {
        describe_routes(t, routes, sizeof(routes));
        snprintf(msg, msglen,
                 "pg-tls-proxy: no route for server name \"%s\", database \"%s\" on port %u%s",
                 name != NULL ? name : "(none sent)", db, port,
                 shared > 1 ? " (several routes share this port)" : "");
        snprintf(hint, hintlen,
                 "connect with a server name (host) or database that a route lists: %s", routes);
        return ROUTE_NONE;
    }
    /* A route's own port is that route's: a client cannot reach another
     * route through it (an operator may expose only that port). */
    if (shared > 0 && r->listen_port != port) {
        describe_routes(t, routes, sizeof(routes));
        snprintf(msg, msglen, "pg-tls-proxy: port %u belongs to %s%s but %s \"%s\" to route %s",
                 port, shared > 1 ? "other routes" : "route ", shared > 1 ? "" : pr->name,
                 sr != NULL ? "server name" : "database", sr != NULL ? name : db, r->name);
        snprintf(hint, hintlen, "connect to the port of route %s, or to the shared port: %s",
                 r->name, routes);
        return ROUTE_MISMATCH;
    }
    *out = r;
    return ROUTE_OK;
}

/* ---- the TLS servername callback ---- */

static int sni_idx = -1;
static uv_once_t sni_once = UV_ONCE_INIT;

static void sni_index_init(void)
{
    sni_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int route_sni_attach(SSL *ssl, struct route_sni *s)
{
    uv_once(&sni_once, sni_index_init);
    return sni_idx >= 0 && SSL_set_ex_data(ssl, sni_idx, s) == 1 ? 0 : -1;
}

/*
 * During the ClientHello: the route the client's SNI names, and its
 * certificate. SSL_set_SSL_CTX changes the certificate and the verify
 * store but not the verify mode, which SSL_new copied from the listener's
 * context: copied here so that a route's mTLS (or its absence) holds.
 * An SNI that names no route keeps the default certificate; the session
 * is then routed by its database (route_table_decide).
 */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    struct route_sni *s = sni_idx >= 0 ? SSL_get_ex_data(ssl, sni_idx) : NULL;
    if (s == NULL)
        return SSL_TLSEXT_ERR_OK;
    s->route = route_table_by_sni(s->t, SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
    SSL_CTX *ctx = s->route != NULL ? s->route->front_ctx : NULL;
    if (ctx != NULL && ctx != SSL_get_SSL_CTX(ssl)) {
        if (SSL_set_SSL_CTX(ssl, ctx) != ctx)
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx), SSL_CTX_get_verify_callback(ctx));
    }
    return SSL_TLSEXT_ERR_OK;
}
