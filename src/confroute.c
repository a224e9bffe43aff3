/*
 * confroute.c - cfg->routes: each [route NAME] section of the --config
 * file applied over a deep copy of the finished global configuration, with
 * config.c's own value parser, then checked as a whole: every route has an
 * upstream and CA roots, pairs come together, no server name, database or
 * listen port is claimed twice.
 *
 * Owns: the route_conf array and each route's heap config (freed through
 * config_free). Never: opens files, logs, keeps state.
 */
#include "confroute.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "config.h"
#include "options.h"

static void route_err(char *err, size_t errlen, const struct conf_file *cf, int line,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "pg.conf:LINE: " and the message. */
static void route_err(char *err, size_t errlen, const struct conf_file *cf, int line,
                      const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    int n = snprintf(err, errlen, "%s:%d: ", cf->label, line);
    if (n < 0 || (size_t)n >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static char **string_field(struct config *c, const struct opt_def *o)
{
    return (char **)(void *)((char *)c + o->offset);
}

static const struct opt_def *opt(const char *name)
{
    return opt_find_long(name, strlen(name));
}

/* dst = src with every string duplicated; no routes, no argv/envp copies. */
static bool config_copy(struct config *dst, const struct config *src)
{
    memcpy(dst, src, sizeof(*dst));
    dst->routes = NULL;
    dst->nroutes = 0;
    dst->has_default = false;
    dst->argc = 0;
    dst->argv = NULL;
    dst->envp = NULL;
    dst->peers = NULL; /* process-wide: only the global config holds them */
    dst->npeers = 0;
    bool ok = true;
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        if (o->kind != OPT_STRING)
            continue;
        char **f = string_field(dst, o);
        if (*f != NULL && ok && (*f = strdup(*f)) == NULL)
            ok = false;
        else if (!ok)
            *f = NULL; /* not yet copied: must not be freed as ours */
    }
    return ok;
}

/* Whether the section sets option name. */
static bool sets(const struct conf_section *s, const char *name)
{
    return conffile_find(s, opt(name), CONF_KEY_OPTION) != NULL;
}

/* The section's keys over rc->cfg, the route-only keys into rc. */
static bool apply_section(struct route_conf *rc, const struct conf_file *cf,
                          const struct conf_section *s, char *err, size_t errlen)
{
    for (size_t i = 0; i < s->nentries; i++) {
        const struct conf_entry *e = &s->entries[i];
        char sub[512];
        switch (e->key) {
        case CONF_KEY_OPTION: {
            if (e->opt->kind == OPT_STRING) {
                char **f = string_field(rc->cfg, e->opt);
                free(*f); /* the inherited value */
                *f = NULL;
            }
            struct raw_value rv = {SRC_FILE, e->value, cf->label, e->line};
            if (!config_apply(rc->cfg, e->opt, &rv, err, errlen))
                return false;
            break;
        }
        case CONF_KEY_SNI:
        case CONF_KEY_DATABASES: {
            bool sni = e->key == CONF_KEY_SNI;
            if (conffile_list(e->value, sni, sni ? &rc->sni : &rc->databases,
                              sni ? &rc->nsni : &rc->ndatabases, sub, sizeof(sub)) < 0) {
                route_err(err, errlen, cf, e->line, "%s: %s", sni ? "sni" : "databases", sub);
                return false;
            }
            break;
        }
        case CONF_KEY_LISTEN_PORT:
            if (!config_parse_port(e->value, &rc->listen_port)) {
                route_err(err, errlen, cf, e->line,
                          "listen-port: \"%s\" is not a port number (1-65535)", e->value);
                return false;
            }
            break;
        }
    }
    return true;
}

/* What the section and its inheritance must add up to. */
static bool check_route(struct route_conf *rc, const struct conf_file *cf,
                        const struct conf_section *s, bool verify_given, char *err, size_t errlen)
{
    struct config *c = rc->cfg;
    const char *n = s->name;
    /* A validation name belongs to a host: one given for the globals' host
     * is inherited only with that host. Otherwise the route's own host. */
    if (!sets(s, "client-tls-validation-host") &&
        (sets(s, "client-connection-host-or-ip") || !verify_given)) {
        free(c->upstream_verify_name);
        c->upstream_verify_name = NULL;
        if (c->upstream_host != NULL &&
            (c->upstream_verify_name = strdup(c->upstream_host)) == NULL) {
            route_err(err, errlen, cf, s->line, "out of memory");
            return false;
        }
    }
    static const char *const needed[] = {"client-connection-host-or-ip", "client-ca-roots-path"};
    for (size_t i = 0; i < 2; i++) {
        if (*string_field(c, opt(needed[i])) == NULL) {
            route_err(err, errlen, cf, s->line,
                      "[route %s] has no %s: set it in the section or in the globals", n,
                      needed[i]);
            return false;
        }
    }
    /* A certificate inherited with a key of the section's (or the reverse)
     * would not match: a section that sets one of a pair sets both. */
    static const char *const pairs[][2] = {
        {"client-certificate-path", "client-private-key-path"},
        {"server-certificate-path", "server-private-key-path"},
    };
    for (size_t i = 0; i < 2; i++) {
        if (sets(s, pairs[i][0]) != sets(s, pairs[i][1])) {
            int a = sets(s, pairs[i][0]) ? 0 : 1;
            route_err(err, errlen, cf, s->line, "[route %s] sets %s without %s: set both", n,
                      pairs[i][a], pairs[i][1 - a]);
            return false;
        }
    }
    if (c->auth_mode == AUTH_SCRAM && c->auth_file == NULL) {
        route_err(err, errlen, cf, s->line,
                  "[route %s]: auth-mode scram needs auth-file (pg-tls-proxy scram-secret USER "
                  "prints a line of it)",
                  n);
        return false;
    }
    if (c->auth_mode != AUTH_SCRAM && c->auth_file != NULL) {
        if (sets(s, "auth-file")) {
            route_err(err, errlen, cf, s->line,
                      "[route %s]: auth-file is read only with auth-mode scram (the mode is %s)", n,
                      auth_mode_name(c->auth_mode));
            return false;
        }
        /* The globals' scram file, inherited by a route of another mode. */
        free(c->auth_file);
        c->auth_file = NULL;
    }
    if (rc->nsni == 0 && rc->ndatabases == 0 && rc->listen_port == 0) {
        route_err(err, errlen, cf, s->line,
                  "[route %s] has no sni, databases or listen-port: no client would reach it", n);
        return false;
    }
    return true;
}

/* Line of key k in section s (its header line if absent). */
static int key_line(const struct conf_section *s, enum conf_route_key k)
{
    const struct conf_entry *e = conffile_find(s, NULL, k);
    return e != NULL ? e->line : s->line;
}

/* A server name, database or port that picks two routes would be a guess. */
static bool check_unique(const struct config *g, const struct conf_file *cf, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < g->nroutes; i++) {
        const struct route_conf *a = &g->routes[i];
        const struct conf_section *sa = &cf->routes[i];
        if (a->listen_port != 0 && a->listen_port == g->listen_port) {
            route_err(err, errlen, cf, key_line(sa, CONF_KEY_LISTEN_PORT),
                      "[route %s]: listen-port %u is server-port, where every route is served: "
                      "pick another port",
                      a->name, a->listen_port);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            const struct route_conf *b = &g->routes[j];
            if (a->listen_port != 0 && a->listen_port == b->listen_port) {
                route_err(err, errlen, cf, key_line(sa, CONF_KEY_LISTEN_PORT),
                          "[route %s]: listen-port %u is also [route %s]'s", a->name,
                          a->listen_port, b->name);
                return false;
            }
            for (size_t x = 0; x < a->nsni; x++)
                for (size_t y = 0; y < b->nsni; y++)
                    if (strcmp(a->sni[x], b->sni[y]) == 0) {
                        route_err(err, errlen, cf, key_line(sa, CONF_KEY_SNI),
                                  "[route %s]: sni %s is also in [route %s]: a server name "
                                  "picks one route",
                                  a->name, a->sni[x], b->name);
                        return false;
                    }
            for (size_t x = 0; x < a->ndatabases; x++)
                for (size_t y = 0; y < b->ndatabases; y++)
                    if (strcmp(a->databases[x], b->databases[y]) == 0) {
                        route_err(err, errlen, cf, key_line(sa, CONF_KEY_DATABASES),
                                  "[route %s]: database %s is also in [route %s]: a database "
                                  "picks one route",
                                  a->name, a->databases[x], b->name);
                        return false;
                    }
        }
    }
    return true;
}

bool confroute_build(struct config *cfg, const struct conf_file *cf, bool verify_given, char *err,
                     size_t errlen)
{
    if (cf->nroutes == 0)
        return true;
    cfg->routes = calloc(cf->nroutes, sizeof(*cfg->routes));
    if (cfg->routes == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < cf->nroutes; i++) {
        const struct conf_section *s = &cf->routes[i];
        struct route_conf *rc = &cfg->routes[cfg->nroutes++];
        rc->name = strdup(s->name);
        rc->cfg = calloc(1, sizeof(*rc->cfg));
        if (rc->name == NULL || rc->cfg == NULL || !config_copy(rc->cfg, cfg)) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        if (!apply_section(rc, cf, s, err, errlen) ||
            !check_route(rc, cf, s, verify_given, err, errlen))
            return false;
    }
    return check_unique(cfg, cf, err, errlen);
}

void confroute_free(struct route_conf *rc)
{
    free(rc->name);
    conffile_list_free(rc->sni, rc->nsni);
    conffile_list_free(rc->databases, rc->ndatabases);
    if (rc->cfg != NULL) {
        config_free(rc->cfg);
        free(rc->cfg);
    }
    memset(rc, 0, sizeof(*rc));
}
