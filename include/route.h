/*
 * route.h - where a session goes upstream, and how: the upstream's host
 * and port, the name its certificate must carry, direct TLS or SSLRequest,
 * the back SSL_CTX (CA roots, client certificate), timeouts.
 *
 * A route is immutable once built and reference-counted: a session takes
 * a reference at accept and keeps it until it is freed, so a reload never
 * changes a session's upstream or trust under its feet. A route table
 * holds every route of a configuration (one today, the default, built from
 * the --client-* flags) and the front SSL_CTX; reload builds a new table
 * all-or-nothing and every worker swaps to it on its own thread.
 * References may be taken and dropped on any thread.
 */
#ifndef PGTP_ROUTE_H
#define PGTP_ROUTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct authfile;
struct config;

struct route {
    atomic_uint refs;
    char *host;                  /* --client-connection-host-or-ip */
    unsigned port;               /* --client-connection-port */
    char *verify_name;           /* --client-tls-validation-host (default: host) */
    bool direct_tls;             /* --client-direct-tls: ClientHello first, ALPN postgresql */
    SSL_CTX *back_ctx;           /* roots, client certificate, versions (a reference) */
    unsigned connect_timeout_ms; /* resolve -> verified TLS; 0 = none */
    unsigned keepalive_s;        /* TCP keepalive on the back leg; 0 = off */
    int auth_mode;               /* --auth-mode: enum auth_mode (config.h) */
    struct authfile *auth;       /* --auth-file, loaded with the route (scram mode) */
};

struct route_table {
    atomic_uint refs;
    SSL_CTX *front_ctx; /* the listener's certificate (a reference) */
    struct route *dflt; /* the route every session takes today */
};

/* A route from the configuration's upstream flags and back_ctx (a new
 * reference is taken). NULL with err filled if out of memory. */
struct route *route_new(const struct config *cfg, SSL_CTX *back_ctx, char *err, size_t errlen);
/* Another reference to r (r may not be NULL). Returns r. */
struct route *route_ref(struct route *r);
/* Drop a reference; the last one frees. NULL is fine. */
void route_unref(struct route *r);

/* A table from cfg and both contexts (new references are taken): all or
 * nothing, NULL with err filled. The caller holds the one reference. */
struct route_table *route_table_build(const struct config *cfg, SSL_CTX *front, SSL_CTX *back,
                                      char *err, size_t errlen);
struct route_table *route_table_ref(struct route_table *t);
void route_table_unref(struct route_table *t);
/* The route for a new session (no reference taken: route_ref it). */
struct route *route_table_pick(const struct route_table *t);

#endif
