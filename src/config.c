/*
 * config.c - command-line parsing, PG_TLS_PROXY_* environment variables
 * and validation, driven by the option table of options.c.
 *
 * Owns: the strings it copies into struct config (freed by config_free).
 * Never: opens a file other than --config's (read by conffile.c), logs,
 * exits, or keeps global state, so that it can be called repeatedly from
 * unit tests and fuzzers. Errors are written to the caller's buffer; the
 * caller decides how to report them.
 *
 * Precedence is defaults < the config file's globals < environment < flags.
 * Raw values are collected first and only the winning value of each option
 * is validated, so a bad environment variable that a flag overrides is not
 * an error. Each [route NAME] section is then applied, by the same apply(),
 * over a deep copy of the finished global config (confroute.c).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridgeproto.h"
#include "conffile.h"
#include "confroute.h"
#include "log.h"
#include "options.h"

#ifndef PGTP_VERSION
#define PGTP_VERSION "unknown"
#endif

#define IS_FIELD(o, f) ((o)->offset == offsetof(struct config, f) && (o)->kind == OPT_STRING)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* The value of NAME in a "NAME=value" array, or NULL. The first entry wins,
 * like getenv(3). */
static const char *env_lookup(char **envp, const char *name)
{
    if (envp == NULL)
        return NULL;
    size_t n = strlen(name);
    for (char **e = envp; *e != NULL; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    }
    return NULL;
}

/*
 * Every PG_TLS_PROXY_* variable must be one of ours: a typo such as
 * PG_TLS_PROXY_SERVER_PORTT would otherwise be ignored and the default
 * used without a word. (Lower-case names are not ours: environment names
 * are case-sensitive.)
 */
static bool check_env_names(char **envp, char *err, size_t errlen)
{
    size_t plen = strlen(ENV_PREFIX);
    for (char **e = envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, ENV_PREFIX, plen) != 0)
            continue;
        size_t n = strcspn(*e, "=");
        char name[ENV_NAME_MAX + 32];
        snprintf(name, sizeof(name), "%.*s", (int)n, *e);
        bool known = false;
        for (size_t i = 0; i < config_noptions && !known; i++) {
            char env[ENV_NAME_MAX];
            if (!opt_has_env(&config_options[i]))
                continue;
            opt_env_name(&config_options[i], env, sizeof(env));
            known = n == strlen(env) && strncmp(*e, env, n) == 0;
        }
        if (known)
            continue;
        const struct opt_def *o = opt_closest(name, true);
        char env[ENV_NAME_MAX] = "";
        if (o != NULL)
            opt_env_name(o, env, sizeof(env));
        set_err(err, errlen, "unknown environment variable %s%s%s%s", name,
                o != NULL ? " (did you mean " : " (see --help for the variables)",
                o != NULL ? env : "", o != NULL ? "?)" : "");
        return false;
    }
    return true;
}

bool config_log_json_early(int argc, char **argv, char **envp)
{
    const char *v = env_lookup(envp, ENV_PREFIX "LOG_FORMAT");
    static const char flag[] = "--log-format";
    size_t fl = sizeof(flag) - 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strncmp(argv[i], flag, fl) != 0)
            continue;
        if (argv[i][fl] == '=')
            v = argv[i] + fl + 1;
        else if (argv[i][fl] == '\0' && i + 1 < argc)
            v = argv[++i];
    }
    return v != NULL && strcasecmp(v, "json") == 0;
}

/* Decimal digits only (no sign, no spaces, no "0x"), at most max. Stops
 * accumulating once past the limit so long inputs cannot overflow. */
static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    if (*s == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

bool config_parse_port(const char *s, uint16_t *out)
{
    unsigned long v;
    if (!parse_uint(s, 65535, &v) || v == 0)
        return false;
    *out = (uint16_t)v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Prefix for a value error, naming where the bad value came from:
 * `--server-port`, `PG_TLS_PROXY_SERVER_PORT (--server-port)` or
 * `pg.conf:3: server-port`. */
static void value_origin(const struct opt_def *o, const struct raw_value *rv, char *buf, size_t len)
{
    if (rv->src == SRC_FILE) {
        snprintf(buf, len, "%s:%d: %s", rv->file, rv->line, o->name);
    } else if (rv->src == SRC_ENV) {
        char env[ENV_NAME_MAX];
        opt_env_name(o, env, sizeof(env));
        snprintf(buf, len, "%s (--%s)", env, o->name);
    } else {
        snprintf(buf, len, "--%s", o->name);
    }
}

/* Parse one winning value into its field (a string field must be NULL). */
bool config_apply(struct config *cfg, const struct opt_def *o, const struct raw_value *rv,
                  char *err, size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    char origin[4200];
    value_origin(o, rv, origin, sizeof(origin));

    switch (o->kind) {
    case OPT_STRING: {
        char *copy = strdup(rv->value);
        if (copy == NULL) {
            set_err(err, errlen, "out of memory");
            return false;
        }
        memcpy(field, &copy, sizeof(copy));
        return true;
    }
    case OPT_PORT: {
        uint16_t port;
        if (!config_parse_port(rv->value, &port)) {
            set_err(err, errlen, "%s: \"%s\" is not a port number (1-65535)", origin, rv->value);
            return false;
        }
        memcpy(field, &port, sizeof(port));
        return true;
    }
    case OPT_WORKERS: {
        unsigned long v;
        if (!parse_uint(rv->value, CONFIG_MAX_WORKERS, &v)) {
            set_err(err, errlen, "%s: \"%s\" is not a worker count (0-%d; 0 = one per CPU)", origin,
                    rv->value, CONFIG_MAX_WORKERS);
            return false;
        }
        unsigned n = (unsigned)v;
        memcpy(field, &n, sizeof(n));
        return true;
    }
    case OPT_SECONDS:
    case OPT_COUNT: {
        unsigned long v;
        bool count = o->kind == OPT_COUNT;
        unsigned long max = count ? 1000000UL : 86400UL;
        if (!parse_uint(rv->value, max, &v) || (count && v == 0)) {
            set_err(err, errlen, "%s: \"%s\" is not %s", origin, rv->value,
                    count ? "a count (1-1000000)" : "a number of seconds (0-86400)");
            return false;
        }
        unsigned n = (unsigned)v;
        memcpy(field, &n, sizeof(n));
        return true;
    }
    case OPT_PEERID: {
        unsigned long v;
        if (!parse_uint(rv->value, 255, &v)) {
            set_err(err, errlen, "%s: \"%s\" is not a peer id (1-255; 0 = peering off)", origin,
                    rv->value);
            return false;
        }
        unsigned n = (unsigned)v;
        memcpy(field, &n, sizeof(n));
        return true;
    }
    case OPT_LOGFMT: {
        bool json;
        if (strcasecmp(rv->value, "text") == 0) {
            json = false;
        } else if (strcasecmp(rv->value, "json") == 0) {
            json = true;
        } else {
            set_err(err, errlen, "%s: \"%s\" is not a log format (text, json)", origin, rv->value);
            return false;
        }
        memcpy(field, &json, sizeof(json));
        return true;
    }
    case OPT_AUTHMODE: {
        int mode;
        if (strcasecmp(rv->value, "passthrough") == 0) {
            mode = AUTH_PASSTHROUGH;
        } else if (strcasecmp(rv->value, "password") == 0) {
            mode = AUTH_PASSWORD;
        } else if (strcasecmp(rv->value, "scram") == 0) {
            mode = AUTH_SCRAM;
        } else {
            set_err(err, errlen, "%s: \"%s\" is not an auth mode (passthrough, password, scram)",
                    origin, rv->value);
            return false;
        }
        memcpy(field, &mode, sizeof(mode));
        return true;
    }
    case OPT_TLSVER: {
        int ver;
        if (strcmp(rv->value, "1.2") == 0) {
            ver = 12;
        } else if (strcmp(rv->value, "1.3") == 0) {
            ver = 13;
        } else {
            set_err(err, errlen, "%s: \"%s\" is not a TLS version (1.2, 1.3)", origin, rv->value);
            return false;
        }
        memcpy(field, &ver, sizeof(ver));
        return true;
    }
    case OPT_LOG: {
        int level = log_level_parse(rv->value);
        if (level < 0) {
            set_err(err, errlen, "%s: \"%s\" is not a log level (debug, info, warn, error)", origin,
                    rv->value);
            return false;
        }
        memcpy(field, &level, sizeof(level));
        return true;
    }
    case OPT_BOOL: {
        bool b;
        if (!parse_bool(rv->value, &b)) {
            set_err(err, errlen,
                    "%s: \"%s\" is not a boolean (1, true, yes, on or 0, false, no, off)", origin,
                    rv->value);
            return false;
        }
        memcpy(field, &b, sizeof(b));
        return true;
    }
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
    return true;
}

/* Scan argv into raw[]. Returns CONFIG_OK to go on validating, CONFIG_EXIT
 * after printing --help/--version, or CONFIG_ERROR. */
static enum config_result scan_argv(struct raw_value *raw, int argc, char **argv, FILE *out,
                                    char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const struct opt_def *o;
        const char *value = NULL;
        bool inline_value = false; /* "--flag=value" or "-lvalue" */
        char spelled[64];          /* the flag as the user wrote it, for errors */

        if (arg[0] != '-' || arg[1] == '\0') {
            set_err(err, errlen, "unexpected argument \"%s\" (see --help)", arg);
            return CONFIG_ERROR;
        }
        if (arg[1] == '-') {
            if (arg[2] == '\0') {
                /* "--" ends the options; this program takes no operands. */
                if (i + 1 < argc) {
                    set_err(err, errlen, "unexpected argument \"%s\" (see --help)", argv[i + 1]);
                    return CONFIG_ERROR;
                }
                break;
            }
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
            /* Exact names only: no getopt-style abbreviations, so adding an
             * option later can never change what an existing command means. */
            o = opt_find_long(name, len);
            if (o == NULL) {
                char typed[128];
                snprintf(typed, sizeof(typed), "%.*s", (int)len, name);
                const struct opt_def *near = opt_closest(typed, false);
                if (near != NULL)
                    set_err(err, errlen, "unknown option \"%.*s\" (did you mean --%s?)",
                            (int)(len + 2), arg, near->name);
                else
                    set_err(err, errlen, "unknown option \"%.*s\" (see --help)", (int)(len + 2),
                            arg);
                return CONFIG_ERROR;
            }
            if (eq != NULL) {
                value = eq + 1;
                inline_value = true;
            }
            snprintf(spelled, sizeof(spelled), "--%s", o->name);
        } else {
            o = opt_find_short(arg[1]);
            if (o == NULL || (!opt_takes_value(o) && arg[2] != '\0')) {
                set_err(err, errlen, "unknown option \"%s\" (see --help)", arg);
                return CONFIG_ERROR;
            }
            if (arg[2] != '\0') {
                value = arg + 2;
                inline_value = true;
            }
            snprintf(spelled, sizeof(spelled), "-%c", arg[1]);
        }

        if (!opt_takes_value(o)) {
            if (inline_value) {
                set_err(err, errlen, "%s does not take a value", spelled);
                return CONFIG_ERROR;
            }
            if (o->kind == OPT_HELP) {
                config_usage(out);
                return CONFIG_EXIT;
            }
            if (o->kind == OPT_VERSION) {
                fprintf(out, "pg-tls-proxy %s\n", PGTP_VERSION);
                return CONFIG_EXIT;
            }
            raw[o - config_options] = (struct raw_value){SRC_FLAG, "1", NULL, 0};
            continue;
        }

        if (!inline_value) {
            /* A following "--..." is the next option, not a value: otherwise a
             * forgotten value would silently swallow the next flag. Values that
             * really start with "--" can use the "--flag=value" form. */
            if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                value = argv[++i];
        }
        /* Empty counts as missing. */
        if (value == NULL || *value == '\0') {
            set_err(err, errlen, "%s needs a value", spelled);
            return CONFIG_ERROR;
        }
        raw[o - config_options] = (struct raw_value){SRC_FLAG, value, NULL, 0};
    }
    return CONFIG_OK;
}

/* The cross-checks of one finished configuration; where names the origin
 * in messages ("" for the command line and environment). */
static bool check_pairs(const struct config *cfg, char *err, size_t errlen)
{
    if ((cfg->back_cert_path == NULL) != (cfg->back_key_path == NULL)) {
        set_err(err, errlen, "%s",
                cfg->back_cert_path != NULL
                    ? "--client-certificate-path needs --client-private-key-path"
                    : "--client-private-key-path needs --client-certificate-path");
        return false;
    }
    if (cfg->auth_mode == AUTH_SCRAM && cfg->auth_file == NULL) {
        set_err(err, errlen,
                "--auth-mode scram needs --auth-file (or PG_TLS_PROXY_AUTH_FILE): "
                "a userlist of SCRAM verifiers; pg-tls-proxy scram-secret USER "
                "prints a line of it");
        return false;
    }
    if (cfg->auth_mode != AUTH_SCRAM && cfg->auth_file != NULL) {
        set_err(err, errlen, "--auth-file is read only with --auth-mode scram (the mode is %s)",
                auth_mode_name(cfg->auth_mode));
        return false;
    }
    if (cfg->admin_token_file != NULL && cfg->admin_address == NULL) {
        set_err(err, errlen,
                "--admin-token-file is read only with --admin-address (the admin endpoint it "
                "protects)");
        return false;
    }
    return true;
}

/* Missing required options: name the first in full, list the others, so
 * one run tells the user everything that is missing. With [route]
 * sections the upstream options are not required of the globals: each
 * route is checked for them instead (confroute.c). */
static bool check_required(const struct raw_value *raw, bool have_routes, char *err, size_t errlen)
{
    size_t nmissing = 0;
    size_t used = 0;
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        if (!o->required || raw[i].value != NULL)
            continue;
        if (have_routes && (IS_FIELD(o, upstream_host) || IS_FIELD(o, ca_roots_path)))
            continue;
        if (err == NULL || errlen == 0) {
            nmissing++;
            continue;
        }
        int n;
        if (nmissing++ == 0) {
            char env[ENV_NAME_MAX];
            opt_env_name(o, env, sizeof(env));
            n = snprintf(err, errlen, "missing required option --%s (or %s)", o->name, env);
        } else {
            n = snprintf(err + used, errlen - used, "%s--%s",
                         nmissing == 2 ? "; also missing " : ", ", o->name);
        }
        if (n > 0)
            used += (size_t)n;
        if (used >= errlen)
            used = errlen - 1;
    }
    return nmissing == 0;
}

/* The file's globals under the environment and the flags: an option still
 * at its default takes the file's value. */
static void overlay_file(struct raw_value *raw, const struct conf_file *cf)
{
    for (size_t i = 0; i < cf->globals.nentries; i++) {
        const struct conf_entry *e = &cf->globals.entries[i];
        size_t idx = (size_t)(e->opt - config_options);
        if (raw[idx].src == SRC_DEFAULT)
            raw[idx] = (struct raw_value){SRC_FILE, e->value, cf->label, e->line};
    }
}

/* A NULL-terminated heap copy of v[0..n) (n < 0: up to v's NULL); with
 * prefix, only the entries that start with it. v NULL: an empty array. */
static char **strv_copy(char *const *v, int n, const char *prefix)
{
    size_t count = 0;
    for (int i = 0; v != NULL && (n < 0 ? v[i] != NULL : i < n); i++)
        count++;
    char **out = calloc(count + 1, sizeof(*out));
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        if (prefix != NULL && strncmp(v[i], prefix, strlen(prefix)) != 0)
            continue;
        if ((out[k++] = strdup(v[i])) == NULL) {
            for (size_t j = 0; j < k; j++)
                free(out[j]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* The file's [peers] into cfg, and what peering needs. */
static bool peers_copy(struct config *cfg, const struct conf_file *cf, char *err, size_t errlen)
{
    if (cf->npeers > 0 && cfg->peer_id == 0) {
        set_err(err, errlen,
                "%s has a [peers] section but peer-id is not set: give each instance its "
                "peer-id (1-255), or remove [peers]",
                cf->label);
        return false;
    }
    if (cfg->peer_id != 0 && (cfg->peer_secret_file == NULL || cfg->peer_ca_path == NULL)) {
        set_err(err, errlen, "--peer-id needs %s: %s",
                cfg->peer_secret_file == NULL ? "--peer-secret-file" : "--peer-ca-path",
                cfg->peer_secret_file == NULL
                    ? "the secret every instance shares, which signs the cancels they forward"
                    : "the CAs that sign the instances' certificates, against which a cancel's "
                      "TLS to another instance is verified");
        return false;
    }
    if (cf->npeers == 0)
        return true;
    cfg->peers = calloc(cf->npeers, sizeof(*cfg->peers));
    if (cfg->peers == NULL) {
        set_err(err, errlen, "out of memory");
        return false;
    }
    for (size_t i = 0; i < cf->npeers; i++) {
        struct peer_conf *p = &cfg->peers[cfg->npeers];
        if ((p->host = strdup(cf->peers[i].host)) == NULL) {
            set_err(err, errlen, "out of memory");
            return false;
        }
        p->id = cf->peers[i].id;
        p->port = cf->peers[i].port;
        cfg->npeers++;
    }
    return true;
}

/* One --client-bridge value (where: "" or "[route NAME]: "). */
static bool check_client_bridge(const struct config *g, const char *id, const char *where,
                                char *err, size_t errlen)
{
    if (id == NULL)
        return true;
    if (!bridge_id_valid(id)) {
        set_err(err, errlen,
                "%s--client-bridge \"%s\" is not a bridge id (1-%d of A-Z a-z 0-9 _ . -)", where,
                id, BRIDGE_ID_MAX);
        return false;
    }
    if (g->bridge_listen == NULL) {
        set_err(err, errlen,
                "%s--client-bridge %s needs --bridge-listen HOST:PORT (where its connectors dial "
                "in) and --bridges-file",
                where, id);
        return false;
    }
    return true;
}

/* Bridge mode (issue 15): the listener's address and file, every route's bridge. */
static bool check_bridge(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->bridge_listen != NULL) {
        char host[256];
        uint16_t port;
        if (bridge_hostport_parse(cfg->bridge_listen, host, sizeof(host), &port) < 0) {
            set_err(err, errlen,
                    "--bridge-listen \"%s\" is not HOST:PORT (e.g. 0.0.0.0:7432 or [::]:7432)",
                    cfg->bridge_listen);
            return false;
        }
        if (cfg->bridges_file == NULL) {
            set_err(err, errlen,
                    "--bridge-listen needs --bridges-file: the bridge ids and the verifiers of "
                    "their secrets (pg-tls-proxy bridge-secret ID prints a line of it)");
            return false;
        }
    } else if (cfg->bridges_file != NULL) {
        set_err(err, errlen, "--bridges-file is read only with --bridge-listen");
        return false;
    }
    if ((cfg->bridge_cert_path == NULL) != (cfg->bridge_key_path == NULL)) {
        set_err(err, errlen, "%s",
                cfg->bridge_cert_path != NULL
                    ? "--bridge-certificate-path needs --bridge-private-key-path"
                    : "--bridge-private-key-path needs --bridge-certificate-path");
        return false;
    }
    if (!check_client_bridge(cfg, cfg->has_default ? cfg->client_bridge : NULL, "", err, errlen))
        return false;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        char where[128];
        snprintf(where, sizeof(where), "[route %s]: ", cfg->routes[i].name);
        if (!check_client_bridge(cfg, cfg->routes[i].cfg->client_bridge, where, err, errlen))
            return false;
    }
    return true;
}

/* Everything after the raw values are known: apply, check, build routes. */
static bool build(struct config *cfg, const struct raw_value *raw, const struct conf_file *cf,
                  char *err, size_t errlen)
{
    /* Values the user gave are checked before anything missing is reported:
     * a typo is the more specific mistake. */
    for (size_t i = 0; i < config_noptions; i++) {
        if (raw[i].value == NULL || !opt_has_env(&config_options[i]))
            continue;
        if (!config_apply(cfg, &config_options[i], &raw[i], err, errlen))
            return false;
    }
    if (!check_required(raw, cf->nroutes > 0, err, errlen) || !check_pairs(cfg, err, errlen))
        return false;
    cfg->has_default = cfg->upstream_host != NULL;
    if (cfg->has_default && cfg->ca_roots_path == NULL) {
        set_err(err, errlen,
                "missing required option --client-ca-roots-path (or "
                "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH): the global options name an upstream "
                "(--client-connection-host-or-ip), the default route, which needs its CA roots");
        return false;
    }
    /* Routes derive their own validation name from their own host unless
     * one was given: remember whether the global one was. */
    const struct opt_def *vo = opt_find_long("client-tls-validation-host", 26);
    bool verify_given = vo != NULL && raw[vo - config_options].value != NULL;
    if (cfg->has_default && cfg->upstream_verify_name == NULL) {
        cfg->upstream_verify_name = strdup(cfg->upstream_host);
        if (cfg->upstream_verify_name == NULL) {
            set_err(err, errlen, "out of memory");
            return false;
        }
    }
    return peers_copy(cfg, cf, err, errlen) &&
           confroute_build(cfg, cf, verify_given, err, errlen) && check_bridge(cfg, err, errlen);
}

/* On CONFIG_ERROR and CONFIG_EXIT, cfg is left empty (nothing to free;
 * config_free is still safe to call). envp == NULL means an empty
 * environment, not environ: callers pass environ explicitly. out == NULL
 * means stdout. */
enum config_result config_parse_text(struct config *cfg, int argc, char **argv, char **envp,
                                     const char *label, const char *text, size_t len, FILE *out,
                                     char *err, size_t errlen)
{
    struct raw_value raw[CONFIG_OPTIONS_MAX];

    memset(cfg, 0, sizeof(*cfg));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        out = stdout;

    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        raw[i] = (struct raw_value){SRC_DEFAULT, o->def, NULL, 0};
        if (!opt_has_env(o))
            continue;
        char env[ENV_NAME_MAX];
        opt_env_name(o, env, sizeof(env));
        const char *v = env_lookup(envp, env);
        /* An empty variable counts as unset (e.g. `docker run -e NAME=`). */
        if (v != NULL && *v != '\0')
            raw[i] = (struct raw_value){SRC_ENV, v, NULL, 0};
    }

    enum config_result r = scan_argv(raw, argc, argv, out, err, errlen);
    if (r != CONFIG_OK)
        return r;
    if (!check_env_names(envp, err, errlen))
        return CONFIG_ERROR;

    /* The file is read once its path is known (flag or environment) and
     * only then: its values rank below both. */
    struct conf_file cf;
    memset(&cf, 0, sizeof(cf));
    const struct opt_def *co = opt_find_long("config", 6);
    const char *path = co != NULL ? raw[co - config_options].value : NULL;
    if (text != NULL || path != NULL) {
        int rc = text != NULL
                     ? conffile_parse(text, len, label != NULL ? label : path, &cf, err, errlen)
                     : conffile_load(path, &cf, err, errlen);
        if (rc < 0)
            return CONFIG_ERROR;
        overlay_file(raw, &cf);
    }
    bool ok = build(cfg, raw, &cf, err, errlen);
    conffile_free(&cf);
    if (ok) {
        cfg->argc = argc;
        cfg->argv = strv_copy(argv, argc, NULL);
        cfg->envp = strv_copy(envp, -1, ENV_PREFIX);
        if (cfg->argv == NULL || cfg->envp == NULL) {
            set_err(err, errlen, "out of memory");
            ok = false;
        }
    }
    if (!ok) {
        config_free(cfg);
        return CONFIG_ERROR;
    }
    return CONFIG_OK;
}

enum config_result config_parse(struct config *cfg, int argc, char **argv, char **envp, FILE *out,
                                char *err, size_t errlen)
{
    return config_parse_text(cfg, argc, argv, envp, NULL, NULL, 0, out, err, errlen);
}

int config_reload_file(const struct config *running, struct config *out, char *err, size_t errlen)
{
    /* --help and --version would have ended the first run: nothing prints. */
    enum config_result r =
        config_parse(out, running->argc, running->argv, running->envp, stdout, err, errlen);
    if (r == CONFIG_OK)
        return 0;
    if (r == CONFIG_EXIT) {
        set_err(err, errlen, "the command line asks for --help or --version");
        config_free(out);
    }
    return -1;
}

/* Whether option o holds the same value in a and b. */
static bool same_value(const struct opt_def *o, const struct config *a, const struct config *b)
{
    const char *fa = (const char *)a + o->offset, *fb = (const char *)b + o->offset;
    switch (o->kind) {
    case OPT_STRING: {
        const char *sa, *sb;
        memcpy(&sa, fa, sizeof(sa));
        memcpy(&sb, fb, sizeof(sb));
        return (sa == NULL && sb == NULL) || (sa != NULL && sb != NULL && strcmp(sa, sb) == 0);
    }
    case OPT_PORT:
        return memcmp(fa, fb, sizeof(uint16_t)) == 0;
    case OPT_WORKERS:
    case OPT_SECONDS:
    case OPT_COUNT:
    case OPT_PEERID:
        return memcmp(fa, fb, sizeof(unsigned)) == 0;
    case OPT_LOGFMT:
    case OPT_BOOL:
        return memcmp(fa, fb, sizeof(bool)) == 0;
    case OPT_TLSVER:
    case OPT_LOG:
    case OPT_AUTHMODE:
        return memcmp(fa, fb, sizeof(int)) == 0;
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
    return true;
}

size_t config_process_wide_changes(const struct config *a, const struct config *b, char *buf,
                                   size_t len)
{
    size_t n = 0, used = 0;
    if (len > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        if (o->per_route || !opt_has_env(o) || same_value(o, a, b))
            continue;
        if (used < len) {
            int k = snprintf(buf + used, len - used, "%s%s", n > 0 ? "," : "", o->name);
            if (k > 0)
                used += (size_t)k;
        }
        n++;
    }
    /* The [peers] list is set at start with --peer-id (peers.h). */
    bool same = a->npeers == b->npeers;
    for (size_t i = 0; same && i < a->npeers; i++)
        same = a->peers[i].id == b->peers[i].id && a->peers[i].port == b->peers[i].port &&
               strcmp(a->peers[i].host, b->peers[i].host) == 0;
    if (!same) {
        if (used < len)
            snprintf(buf + used, len - used, "%speers", n > 0 ? "," : "");
        n++;
    }
    return n;
}

const char *auth_mode_name(int mode)
{
    switch (mode) {
    case AUTH_PASSTHROUGH:
        return "passthrough";
    case AUTH_PASSWORD:
        return "password";
    case AUTH_SCRAM:
        return "scram";
    default:
        return "invalid";
    }
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    /* Every string option is a heap copy; the table says which fields. */
    for (size_t i = 0; i < config_noptions; i++) {
        if (config_options[i].kind != OPT_STRING)
            continue;
        char **field = (char **)(void *)((char *)cfg + config_options[i].offset);
        free(*field);
    }
    for (size_t i = 0; i < cfg->nroutes; i++)
        confroute_free(&cfg->routes[i]);
    free(cfg->routes);
    for (size_t i = 0; i < cfg->npeers; i++)
        free(cfg->peers[i].host);
    free(cfg->peers);
    strv_free(cfg->argv);
    strv_free(cfg->envp);
    memset(cfg, 0, sizeof(*cfg));
}
