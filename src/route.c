/*
 * route.c - routes and route tables (route.h): built from the
 * configuration, immutable, freed by their last reference.
 *
 * Owns the strings of a route and its references to the SSL_CTXs. Never
 * changes a route once built: a reload builds a new table instead.
 */
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authfile.h"
#include "config.h"
#include "pgassert.h"

struct route *route_new(const struct config *cfg, SSL_CTX *back_ctx, char *err, size_t errlen)
{
    struct route *r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto oom;
    atomic_init(&r->refs, 1);
    r->host = strdup(cfg->upstream_host != NULL ? cfg->upstream_host : "");
    r->verify_name = strdup(cfg->upstream_verify_name != NULL ? cfg->upstream_verify_name
                            : cfg->upstream_host != NULL      ? cfg->upstream_host
                                                              : "");
    if (r->host == NULL || r->verify_name == NULL)
        goto oom;
    r->port = cfg->upstream_port;
    r->direct_tls = cfg->back_direct_tls;
    r->connect_timeout_ms = cfg->connect_timeout_s * 1000;
    r->keepalive_s = cfg->keepalive_s;
    r->auth_mode = cfg->auth_mode;
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
    free(r->host);
    free(r->verify_name);
    SSL_CTX_free(r->back_ctx);
    authfile_free(r->auth);
    free(r);
}

struct route_table *route_table_build(const struct config *cfg, SSL_CTX *front, SSL_CTX *back,
                                      char *err, size_t errlen)
{
    struct route_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(err, errlen, "out of memory building the route table");
        return NULL;
    }
    atomic_init(&t->refs, 1);
    t->dflt = route_new(cfg, back, err, errlen);
    if (t->dflt == NULL || (front != NULL && SSL_CTX_up_ref(front) != 1)) {
        if (t->dflt != NULL)
            snprintf(err, errlen, "out of memory building the route table");
        route_unref(t->dflt);
        free(t);
        return NULL;
    }
    t->front_ctx = front;
    return t;
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
    route_unref(t->dflt);
    SSL_CTX_free(t->front_ctx);
    free(t);
}

struct route *route_table_pick(const struct route_table *t)
{
    return t->dflt;
}
