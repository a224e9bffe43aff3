/*
 * config.c - the option table and everything generated from it: command-line
 * parsing, PG_TLS_PROXY_* environment variables, validation and --help.
 *
 * Owns: the strings it copies into struct config (freed by config_free).
 * Never: opens files, logs, exits, or keeps global state, so that it can be
 * called repeatedly from unit tests and fuzzers. Errors are written to the
 * caller's buffer; the caller decides how to report them.
 *
 * Precedence is defaults < environment < flags. Raw values are collected
 * first and only the winning value of each option is validated, so a bad
 * environment variable that a flag overrides is not an error.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

#ifndef PGTP_VERSION
#define PGTP_VERSION "unknown"
#endif

#define ENV_PREFIX "PG_TLS_PROXY_"
#define ENV_NAME_MAX 64

enum opt_kind {
    OPT_STRING,  /* char * in struct config, heap copy */
    OPT_PORT,    /* uint16_t, decimal digits only, 1..65535 */
    OPT_WORKERS, /* unsigned, 0..CONFIG_MAX_WORKERS; 0 = one per CPU */
    OPT_SECONDS, /* unsigned, 0..86400 */
    OPT_COUNT,   /* unsigned, 1..1000000 */
    OPT_LOGFMT,  /* bool log_json: "text" or "json" */
    OPT_TLSVER,  /* int: "1.2" -> 12, "1.3" -> 13 */
    OPT_LOG,     /* int, via log_level_parse */
    OPT_BOOL,    /* bool; a flag without value, a 1/0-style word in the environment */
    OPT_HELP,    /* no field, no environment variable */
    OPT_VERSION, /* no field, no environment variable */
};

struct opt_def {
    const char *name;    /* long flag without "--"; also gives the env var name */
    char short_name;     /* 0: none */
    enum opt_kind kind;  /* how the value is parsed and stored */
    const char *metavar; /* shown in --help; NULL for options without a value */
    size_t offset;       /* field in struct config (unused for HELP/VERSION) */
    bool required;       /* must be set by flag or environment */
    const char *def;     /* default, parsed like user input; NULL: none */
    const char *def_doc; /* default as words in --help when def does not say it */
    const char *help;    /* one sentence for --help */
};

#define FIELD(f) offsetof(struct config, f)

/* The one table. --help, the environment and the parser all read it; keep it
 * in the order --help should show. tests/check-docs.sh checks that the man
 * page and README mention every flag and variable that --help prints. */
static const struct opt_def options[] = {
    {"server-certificate-path", 0, OPT_STRING, "PATH", FIELD(front_cert_path), true, NULL, NULL,
     "PEM certificate chain the proxy presents to clients, leaf first."},
    {"server-private-key-path", 0, OPT_STRING, "PATH", FIELD(front_key_path), true, NULL, NULL,
     "PEM private key for --server-certificate-path."},
    {"server-host", 0, OPT_STRING, "ADDR", FIELD(listen_host), false, NULL,
     "all IPv4 and IPv6 addresses", "Address to listen on for clients."},
    {"server-port", 0, OPT_PORT, "PORT", FIELD(listen_port), false, "5432", NULL,
     "TCP port to listen on for clients."},
    {"client-connection-host-or-ip", 0, OPT_STRING, "HOST", FIELD(upstream_host), true, NULL, NULL,
     "Host name or IP address of the upstream database."},
    {"client-connection-port", 0, OPT_PORT, "PORT", FIELD(upstream_port), false, "5432", NULL,
     "TCP port of the upstream database."},
    {"client-tls-validation-host", 0, OPT_STRING, "NAME", FIELD(upstream_verify_name), false, NULL,
     "the value of --client-connection-host-or-ip",
     "DNS name or IP address the upstream certificate must match; also sent as SNI when it "
     "is a DNS name. PROJECT:INSTANCE (Google Cloud SQL) is checked against the "
     "certificate's CN exactly instead."},
    {"client-ca-roots-path", 0, OPT_STRING, "PATH", FIELD(ca_roots_path), true, NULL, NULL,
     "CA certificates that sign the upstream certificate: a PEM file, or a directory whose "
     "*.pem and *.crt files are all loaded."},
    {"server-allow-from", 0, OPT_STRING, "CIDR[,CIDR...]", FIELD(allow_from), false, NULL,
     "every address",
     "Only clients from these IPv4/IPv6 prefixes may connect; others are told FATAL 28000 "
     "\"address not allowed\" (inside TLS when they asked for it)."},
    {"server-allow-plaintext-from", 0, OPT_STRING, "CIDR[,CIDR...]", FIELD(allow_plaintext_from),
     false, NULL, "none: TLS is required from everyone",
     "Sidecar mode: clients from these prefixes may connect without TLS (sslmode=disable); "
     "the upstream leg is still verify-full. Use only for loopback or a pod's own network."},
    {"client-direct-tls", 0, OPT_BOOL, NULL, FIELD(back_direct_tls), false, NULL, NULL,
     "Open the upstream leg with direct TLS (ALPN \"postgresql\", no SSLRequest), saving a "
     "round trip; needs PostgreSQL 17 or newer upstream."},
    {"server-handshake-timeout", 0, OPT_SECONDS, "SECONDS", FIELD(handshake_timeout_s), false, "15",
     NULL,
     "Time a client has from connecting to a complete StartupMessage (TLS handshake "
     "included); 0 = no limit."},
    {"client-connect-timeout", 0, OPT_SECONDS, "SECONDS", FIELD(connect_timeout_s), false, "10",
     NULL,
     "Time for the upstream leg: resolve, connect and verified TLS handshake; 0 = no "
     "limit."},
    {"idle-timeout", 0, OPT_SECONDS, "SECONDS", FIELD(idle_timeout_s), false, "0", "0: off",
     "Close a session idle this long: every query answered (ReadyForQuery) and no byte "
     "either way since; a running query is never idle."},
    {"write-stall-timeout", 0, OPT_SECONDS, "SECONDS", FIELD(write_stall_s), false, "60", NULL,
     "End a session whose client has stopped reading: more than 256 KB waits to be sent to "
     "it and none of it has gone for this long; 0 = off."},
    {"tcp-keepalive", 0, OPT_SECONDS, "SECONDS", FIELD(keepalive_s), false, "60", NULL,
     "TCP keepalive idle time on both legs; 0 turns keepalive off."},
    {"shutdown-timeout", 0, OPT_SECONDS, "SECONDS", FIELD(shutdown_timeout_s), false, "30", NULL,
     "On SIGTERM/SIGINT: how long open sessions may finish before they are ended "
     "(57P01); a second signal ends them at once."},
    {"max-connections", 0, OPT_COUNT, "N", FIELD(max_connections), false, "10000", NULL,
     "Client connections at once; the next client is told FATAL 53300 once it has sent its "
     "StartupMessage (inside TLS when it asked for TLS)."},
    {"server-proxy-protocol", 0, OPT_BOOL, NULL, FIELD(proxy_protocol), false, NULL, NULL,
     "Expect a PROXY protocol v1 or v2 header (AWS NLB, HAProxy) before every client "
     "connection; its source address is the one logged and allow-listed. Connections "
     "without a valid header are refused."},
    {"server-client-ca-path", 0, OPT_STRING, "PATH", FIELD(front_client_ca_path), false, NULL,
     "off", "mTLS: require client certificates signed by these CAs (PEM file or directory)."},
    {"server-min-tls-version", 0, OPT_TLSVER, "1.2|1.3", FIELD(front_min_tls), false, "1.2", NULL,
     "Oldest TLS version clients may use."},
    {"server-tls12-ciphers", 0, OPT_STRING, "LIST", FIELD(front_tls12_ciphers), false, NULL,
     "OpenSSL's default", "OpenSSL cipher list for TLS 1.2 clients."},
    {"server-tls13-ciphersuites", 0, OPT_STRING, "LIST", FIELD(front_tls13_suites), false, NULL,
     "OpenSSL's default", "TLS 1.3 cipher suites offered to clients (colon-separated)."},
    {"client-certificate-path", 0, OPT_STRING, "PATH", FIELD(back_cert_path), false, NULL, "none",
     "Client certificate chain the proxy presents to the upstream (Cloud SQL trusted "
     "client certificates, pg_hba clientcert=verify-full)."},
    {"client-private-key-path", 0, OPT_STRING, "PATH", FIELD(back_key_path), false, NULL, "none",
     "Private key for --client-certificate-path."},
    {"client-min-tls-version", 0, OPT_TLSVER, "1.2|1.3", FIELD(back_min_tls), false, "1.2", NULL,
     "Oldest TLS version accepted from the upstream."},
    {"client-tls12-ciphers", 0, OPT_STRING, "LIST", FIELD(back_tls12_ciphers), false, NULL,
     "OpenSSL's default", "OpenSSL cipher list offered to the upstream for TLS 1.2."},
    {"client-tls13-ciphersuites", 0, OPT_STRING, "LIST", FIELD(back_tls13_suites), false, NULL,
     "OpenSSL's default", "TLS 1.3 cipher suites offered to the upstream."},
    {"watch-certificates", 0, OPT_BOOL, NULL, FIELD(watch_certificates), false, NULL, NULL,
     "Reload (as on SIGHUP) when a certificate, key or CA file changes on disk, including "
     "Kubernetes secret mounts that swap a symlink."},
    {"admin-address", 0, OPT_STRING, "HOST:PORT", FIELD(admin_address), false, NULL, "off",
     "Serve /metrics (Prometheus), /healthz and /readyz over plain HTTP; a bare port means "
     "127.0.0.1."},
    {"admin-ready-window", 0, OPT_SECONDS, "SECONDS", FIELD(admin_ready_window_s), false, "60",
     NULL,
     "/readyz answers 200 while an upstream TLS handshake succeeded within this window (the "
     "proxy probes the upstream when idle)."},
    {"log-format", 0, OPT_LOGFMT, "text|json", FIELD(log_json), false, "text", NULL,
     "Log lines as key=value text or as JSON objects (one per line)."},
    {"workers", 0, OPT_WORKERS, "N", FIELD(workers), false, "0", "0: one per CPU",
     "Event-loop threads; each accepts on its own socket (SO_REUSEPORT) and keeps its "
     "sessions."},
    {"log", 'l', OPT_LOG, "LEVEL", FIELD(log_level), false, "info", NULL,
     "Log level: debug, info, warn or error (case-insensitive)."},
    {"check", 0, OPT_BOOL, NULL, FIELD(check_only), false, NULL, NULL,
     "Load and validate everything, make one verified TLS connection to the upstream, print "
     "its certificate chain and exit: 0 on success, 1 on failure."},
    {"help", 'h', OPT_HELP, NULL, 0, false, NULL, NULL, "Print this help and exit."},
    {"version", 'V', OPT_VERSION, NULL, 0, false, NULL, NULL, "Print the version and exit."},
};

#define NOPTS (sizeof(options) / sizeof(options[0]))

/* Where the winning value of an option came from; decides how errors name it. */
enum source { SRC_DEFAULT = 0, SRC_ENV, SRC_FLAG };

struct raw_value {
    enum source src;
    const char *value; /* borrowed from argv, envp or the table; never freed */
};

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

static bool has_env(const struct opt_def *o)
{
    return o->kind != OPT_HELP && o->kind != OPT_VERSION;
}

static bool takes_value(const struct opt_def *o)
{
    return o->metavar != NULL;
}

/* "client-ca-roots-path" -> "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH". */
static void env_name(const struct opt_def *o, char *buf, size_t len)
{
    size_t n = strlen(ENV_PREFIX);
    memcpy(buf, ENV_PREFIX, n);
    for (const char *p = o->name; *p != '\0' && n + 1 < len; p++, n++) {
        char c = *p;
        buf[n] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    buf[n] = '\0';
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

static const struct opt_def *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    }
    return NULL;
}

static const struct opt_def *find_short(char c)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (options[i].short_name != 0 && options[i].short_name == c)
            return &options[i];
    }
    return NULL;
}

/* Edit distance (insertions, deletions, substitutions) between a and b,
 * both shorter than 128 bytes; larger inputs count as far apart. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[128];
    if (la >= 128 || lb >= 128)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The option whose spelling (its env name if env, else its long name) is
 * closest to what was typed, if close enough to be a likely typo: at most
 * a third of the length, and 3, edits away. NULL otherwise. */
static const struct opt_def *closest(const char *typed, bool env)
{
    const struct opt_def *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < NOPTS; i++) {
        char name[ENV_NAME_MAX];
        if (env && !has_env(&options[i]))
            continue;
        if (env)
            env_name(&options[i], name, sizeof(name));
        else
            snprintf(name, sizeof(name), "%s", options[i].name);
        size_t d = edit_distance(typed, name);
        if (d < best_d) {
            best_d = d;
            best = &options[i];
        }
    }
    /* The length that counts is the part after the common prefix. */
    size_t len = strlen(typed) - (env ? strlen(ENV_PREFIX) : 0);
    size_t max = len / 3 < 3 ? len / 3 : 3;
    if (best != NULL && best_d <= (max > 0 ? max : 1))
        return best;
    /* A word too many, as in PG_TLS_PROXY_LOG_LEVEL for PG_TLS_PROXY_LOG. */
    for (size_t i = 0; i < NOPTS; i++) {
        char name[ENV_NAME_MAX];
        if (env && !has_env(&options[i]))
            continue;
        if (env)
            env_name(&options[i], name, sizeof(name));
        else
            snprintf(name, sizeof(name), "%s", options[i].name);
        size_t n = strlen(name);
        if (strncmp(typed, name, n) == 0 && (typed[n] == '_' || typed[n] == '-'))
            return &options[i];
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
        for (size_t i = 0; i < NOPTS && !known; i++) {
            char env[ENV_NAME_MAX];
            if (!has_env(&options[i]))
                continue;
            env_name(&options[i], env, sizeof(env));
            known = n == strlen(env) && strncmp(*e, env, n) == 0;
        }
        if (known)
            continue;
        const struct opt_def *o = closest(name, true);
        char env[ENV_NAME_MAX] = "";
        if (o != NULL)
            env_name(o, env, sizeof(env));
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

/* Decimal digits only (no sign, no spaces, no "0x"), 1..65535. Stops
 * accumulating once past the limit so long inputs cannot overflow. */
/* Decimal digits only, at most max. */
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

static bool parse_port(const char *s, uint16_t *out)
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
 * `--server-port` or `PG_TLS_PROXY_SERVER_PORT (--server-port)`. */
static void value_origin(const struct opt_def *o, enum source src, char *buf, size_t len)
{
    if (src == SRC_ENV) {
        char env[ENV_NAME_MAX];
        env_name(o, env, sizeof(env));
        snprintf(buf, len, "%s (--%s)", env, o->name);
    } else {
        snprintf(buf, len, "--%s", o->name);
    }
}

/* Parse one winning value into its field. */
static bool apply(struct config *cfg, const struct opt_def *o, const struct raw_value *rv,
                  char *err, size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    char origin[2 * ENV_NAME_MAX + 8];
    value_origin(o, rv->src, origin, sizeof(origin));

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
        if (!parse_port(rv->value, &port)) {
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
            o = find_long(name, len);
            if (o == NULL) {
                char typed[128];
                snprintf(typed, sizeof(typed), "%.*s", (int)len, name);
                const struct opt_def *near = closest(typed, false);
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
            o = find_short(arg[1]);
            if (o == NULL || (!takes_value(o) && arg[2] != '\0')) {
                set_err(err, errlen, "unknown option \"%s\" (see --help)", arg);
                return CONFIG_ERROR;
            }
            if (arg[2] != '\0') {
                value = arg + 2;
                inline_value = true;
            }
            snprintf(spelled, sizeof(spelled), "-%c", arg[1]);
        }

        if (!takes_value(o)) {
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
            raw[o - options] = (struct raw_value){SRC_FLAG, "1"};
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
        raw[o - options] = (struct raw_value){SRC_FLAG, value};
    }
    return CONFIG_OK;
}

/* On CONFIG_ERROR and CONFIG_EXIT, cfg is left empty (nothing to free;
 * config_free is still safe to call). envp == NULL means an empty
 * environment, not environ: callers pass environ explicitly. out == NULL
 * means stdout. */
enum config_result config_parse(struct config *cfg, int argc, char **argv, char **envp, FILE *out,
                                char *err, size_t errlen)
{
    struct raw_value raw[NOPTS];

    memset(cfg, 0, sizeof(*cfg));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        out = stdout;

    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt_def *o = &options[i];
        raw[i] = (struct raw_value){SRC_DEFAULT, o->def};
        if (!has_env(o))
            continue;
        char env[ENV_NAME_MAX];
        env_name(o, env, sizeof(env));
        const char *v = env_lookup(envp, env);
        /* An empty variable counts as unset (e.g. `docker run -e NAME=`). */
        if (v != NULL && *v != '\0')
            raw[i] = (struct raw_value){SRC_ENV, v};
    }

    enum config_result r = scan_argv(raw, argc, argv, out, err, errlen);
    if (r != CONFIG_OK)
        return r;
    if (!check_env_names(envp, err, errlen))
        return CONFIG_ERROR;

    /* Values the user gave are checked before anything missing is reported:
     * a typo is the more specific mistake. */
    for (size_t i = 0; i < NOPTS; i++) {
        if (raw[i].value == NULL || !has_env(&options[i]))
            continue;
        if (!apply(cfg, &options[i], &raw[i], err, errlen)) {
            config_free(cfg);
            return CONFIG_ERROR;
        }
    }

    /* Missing required options: name the first in full, list the others, so
     * one run tells the user everything that is missing. */
    size_t nmissing = 0;
    size_t used = 0;
    for (size_t i = 0; i < NOPTS; i++) {
        if (!options[i].required || raw[i].value != NULL)
            continue;
        if (err == NULL || errlen == 0) {
            nmissing++;
            continue;
        }
        int n;
        if (nmissing++ == 0) {
            char env[ENV_NAME_MAX];
            env_name(&options[i], env, sizeof(env));
            n = snprintf(err, errlen, "missing required option --%s (or %s)", options[i].name, env);
        } else {
            n = snprintf(err + used, errlen - used, "%s--%s",
                         nmissing == 2 ? "; also missing " : ", ", options[i].name);
        }
        if (n > 0)
            used += (size_t)n;
        if (used >= errlen)
            used = errlen - 1;
    }
    if (nmissing > 0) {
        config_free(cfg);
        return CONFIG_ERROR;
    }

    if ((cfg->back_cert_path == NULL) != (cfg->back_key_path == NULL)) {
        set_err(err, errlen, "%s",
                cfg->back_cert_path != NULL
                    ? "--client-certificate-path needs --client-private-key-path"
                    : "--client-private-key-path needs --client-certificate-path");
        config_free(cfg);
        return CONFIG_ERROR;
    }
    if (cfg->upstream_verify_name == NULL) {
        cfg->upstream_verify_name = strdup(cfg->upstream_host);
        if (cfg->upstream_verify_name == NULL) {
            set_err(err, errlen, "out of memory");
            config_free(cfg);
            return CONFIG_ERROR;
        }
    }
    return CONFIG_OK;
}

void config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    /* Every string option is a heap copy; the table says which fields. */
    for (size_t i = 0; i < NOPTS; i++) {
        if (options[i].kind != OPT_STRING)
            continue;
        char **field = (char **)(void *)((char *)cfg + options[i].offset);
        free(*field);
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* Print text indented by HELP_INDENT, breaking at spaces before HELP_WIDTH
 * columns (a single longer word gets a line of its own). */
#define HELP_INDENT 6
#define HELP_WIDTH 79
static void print_wrapped(FILE *out, const char *text)
{
    const char *p = text;
    while (*p != '\0') {
        size_t room = HELP_WIDTH - HELP_INDENT;
        size_t len = strlen(p);
        if (len > room) {
            size_t cut = room;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0) {
                cut = strcspn(p, " ");
            }
            len = cut;
        }
        fprintf(out, "%*s%.*s\n", HELP_INDENT, "", (int)len, p);
        p += len;
        while (*p == ' ')
            p++;
    }
}

void config_usage(FILE *out)
{
    fputs("Usage: pg-tls-proxy [OPTION]...\n"
          "PostgreSQL TLS proxy: verify-full for clients, and for the upstream against its "
          "private CA.\n\n"
          "Options (every value can also come from the environment variable shown;\n"
          "a flag wins over its variable):\n",
          out);
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt_def *o = &options[i];
        fputs("  ", out);
        if (o->short_name != 0)
            fprintf(out, "-%c, ", o->short_name);
        fprintf(out, "--%s", o->name);
        if (o->metavar != NULL)
            fprintf(out, " %s", o->metavar);
        fputc('\n', out);

        char text[512];
        int n = snprintf(text, sizeof(text), "%s%s", o->help, o->required ? " Required." : "");
        if (n > 0 && (size_t)n < sizeof(text) && (o->def_doc != NULL || o->def != NULL))
            snprintf(text + n, sizeof(text) - (size_t)n, " Default: %s.",
                     o->def_doc != NULL ? o->def_doc : o->def);
        print_wrapped(out, text);
        if (has_env(o)) {
            char env[ENV_NAME_MAX];
            env_name(o, env, sizeof(env));
            if (o->kind == OPT_BOOL)
                fprintf(out, "      env: %s (1, true, yes, on or 0, false, no, off)\n", env);
            else
                fprintf(out, "      env: %s\n", env);
        }
    }
    fputs("\nExit status:\n"
          "  0  success\n"
          "  1  --check failed, or a runtime error\n"
          "  2  usage or configuration error\n"
          "\nSee pg-tls-proxy(1) for details.\n",
          out);
}
