/*
 * route.h - where a session goes upstream, and how: the upstream's host
 * and port, the name its certificate must carry, direct TLS or SSLRequest,
 * the back SSL_CTX (CA roots, client certificate), timeouts; and who may
 * take it: the server names (SNI), databases and listen port that select
 * it, the certificate its clients see, its allow lists and auth mode.
 *
 * A route is immutable once built and reference-counted: a session takes
 * a reference when its route is decided and keeps it until it is freed, so
 * a reload never changes a session's upstream or trust under its feet. A
 * route table holds every route of a configuration (the default one, from
 * the global options, and one per [route NAME] section of --config) and
 * the listener's front SSL_CTX; reload builds a new table all-or-nothing
 * and every worker swaps to it on its own thread. References may be taken
 * and dropped on any thread.
 *
 * Selection (route_table_decide), in this order: the SNI the client sent
 * (exact name, then the longest "*.suffix"), the StartupMessage's database,
 * the listen port it connected to, the default route. A server name and a
 * database (or a route's own listen port) that name different routes are
 * refused, never guessed.
 */
#ifndef PGTP_ROUTE_H
#define PGTP_ROUTE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "cidr.h"

struct authfile;
struct config;

#define ROUTE_DEFAULT_NAME "default"

struct route {
    atomic_uint refs;
    char *name;     /* "default", or the NAME of [route NAME] */
    unsigned mslot; /* its route="NAME" series in the metrics (metrics_route_slot) */
    char **sni;     /* lower-case exact names and "*.suffix" wildcards */
    size_t nsni;
    char **databases; /* exact database names */
    size_t ndatabases;
    unsigned listen_port;         /* sessions accepted on this port; 0 = none */
    char *host;                   /* --client-connection-host-or-ip */
    unsigned port;                /* --client-connection-port */
    char *verify_name;            /* --client-tls-validation-host (default: host) */
    bool direct_tls;              /* --client-direct-tls: ClientHello first, ALPN postgresql */
    bool proxy_local;             /* a peer's (peers.c): a PROXY v2 LOCAL header first */
    char *bridge;                 /* --client-bridge: reached through this bridge id; NULL: dial */
    SSL_CTX *back_ctx;            /* roots, client certificate, versions (a reference) */
    SSL_CTX *front_ctx;           /* the certificate its clients see (a reference; may be NULL) */
    unsigned connect_timeout_ms;  /* resolve -> verified TLS; 0 = none */
    unsigned keepalive_s;         /* TCP keepalive on the back leg; 0 = off */
    int auth_mode;                /* --auth-mode: enum auth_mode (config.h) */
    struct authfile *auth;        /* --auth-file, loaded with the route (scram mode) */
    struct cidr_list allow_from;  /* --server-allow-from; empty: everyone */
    struct cidr_list allow_plain; /* --server-allow-plaintext-from; empty: nobody */
};

struct route_table {
    atomic_uint refs;
    SSL_CTX *front_ctx; /* the listener's certificate (a reference) */
    struct route *dflt; /* from the global options; NULL when they name no upstream */
    struct route **all; /* dflt first when there is one, then the file's routes in order */
    size_t n;
};

/* A route from the configuration's upstream flags and back_ctx (a new
 * reference is taken), named "default". NULL with err filled if out of
 * memory or an allow list or the auth file is wrong. */
struct route *route_new(const struct config *cfg, SSL_CTX *back_ctx, char *err, size_t errlen);
/* Another reference to r (r may not be NULL). Returns r. */
struct route *route_ref(struct route *r);
/* Drop a reference; the last one frees. NULL is fine. */
void route_unref(struct route *r);

/*
 * A table from cfg: the default route (when cfg->has_default or there are
 * no routes: today's single upstream) with front and back, then one route
 * per cfg->routes[i] with its own back SSL_CTX and, when its front
 * certificate or client-certificate policy differs from the global one,
 * its own front SSL_CTX (else front). All or nothing: NULL with err naming
 * the route. Names claimed twice (an SNI name or a database in two routes)
 * are errors. The caller holds the one reference; new references to front
 * and back are taken.
 */
struct route_table *route_table_build(const struct config *cfg, SSL_CTX *front, SSL_CTX *back,
                                      char *err, size_t errlen);
struct route_table *route_table_ref(struct route_table *t);
void route_table_unref(struct route_table *t);
/* The route a connection holds before its route is decided: the default,
 * else the first (no reference taken: route_ref it). */
struct route *route_table_pick(const struct route_table *t);
/* The default route, or NULL. */
struct route *route_table_default(const struct route_table *t);
/* True when the table is today's single default route: every session goes
 * there, decided at accept. */
bool route_table_single(const struct route_table *t);

/* Lookups (no reference taken; NULL if none). Server names are compared
 * case-insensitively: an exact name first, then the longest "*.suffix"
 * whose suffix ends the name (any depth, never the bare suffix). */
struct route *route_table_by_sni(const struct route_table *t, const char *name);
struct route *route_table_by_database(const struct route_table *t, const char *db);
/* The route whose listen-port is port; NULL if none or several share it
 * (*shared then counts them, when not NULL). */
struct route *route_table_by_port(const struct route_table *t, unsigned port, size_t *shared);

enum route_verdict {
    ROUTE_OK,       /* *out is the session's route */
    ROUTE_MISMATCH, /* the SNI and the database (or listen port) name different routes */
    ROUTE_NONE,     /* nothing matched and there is no default route */
};

/*
 * Decide a session's route from what the client sent: sni (NULL or "" if
 * none), database (the StartupMessage's, or its user's when absent), the
 * local port it connected to. On a refusal, msg receives the client's
 * message (naming what it asked for) and hint the fix (which server
 * names and databases the routes have). Pure: no I/O.
 */
enum route_verdict route_table_decide(const struct route_table *t, const char *sni,
                                      const char *database, unsigned port, struct route **out,
                                      char *msg, size_t msglen, char *hint, size_t hintlen);

/* The TLS servername callback's slot: the front SSL carries a pointer to
 * it (route_sni_attach); the callback records the route the client's SNI
 * names and switches the SSL to that route's certificate. */
struct route_sni {
    const struct route_table *t;
    struct route *route; /* set by the callback: the SNI's route, or NULL */
};
/* Hook s to ssl (whose SSL_CTX is s->t's front_ctx). 0 or -1. */
int route_sni_attach(SSL *ssl, struct route_sni *s);

#endif
