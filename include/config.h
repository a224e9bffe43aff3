/*
 * config.h - the option table: command line, environment, validation, --help.
 *
 * Every option has a long flag and an environment variable PG_TLS_PROXY_<NAME>
 * (flag name upper-cased, '-' -> '_'); the flag wins over the variable.
 */
#ifndef PGTP_CONFIG_H
#define PGTP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_WORKERS 256

/* --auth-mode: who authenticates the client (login.c, auth.c). */
enum auth_mode {
    AUTH_PASSTHROUGH, /* the upstream, through the relayed login bytes */
    AUTH_PASSWORD,    /* the proxy asks for the password and logs in upstream itself */
    AUTH_SCRAM,       /* the proxy is the SCRAM server (--auth-file), then logs in upstream */
};
const char *auth_mode_name(int mode);

struct config {
    /* front leg: what clients connect to (historical "server-" flag names) */
    char *front_cert_path; /* --server-certificate-path (required) */
    char *front_key_path;  /* --server-private-key-path (required) */
    char *listen_host;     /* --server-host; NULL = all IPv4 and IPv6 addresses */
    uint16_t listen_port;  /* --server-port, default 5432 */
    /* back leg: the upstream database (historical "client-" flag names) */
    char *upstream_host;        /* --client-connection-host-or-ip (required) */
    uint16_t upstream_port;     /* --client-connection-port, default 5432 */
    char *upstream_verify_name; /* --client-tls-validation-host; default: upstream_host */
    char *ca_roots_path;        /* --client-ca-roots-path (required): file or directory */
    char *allow_from;           /* --server-allow-from: CIDR list; NULL = everyone */
    char *allow_plaintext_from; /* --server-allow-plaintext-from: CIDR list; NULL = none */
    bool back_direct_tls;       /* --client-direct-tls */
    unsigned workers;           /* --workers: event-loop threads, 0 = one per CPU */
    /* timeouts and limits (seconds; 0 = off where the help says so) */
    unsigned handshake_timeout_s; /* --server-handshake-timeout, default 15 */
    unsigned connect_timeout_s;   /* --client-connect-timeout, default 10 */
    unsigned idle_timeout_s;      /* --idle-timeout, default 0 (off) */
    unsigned write_stall_s;       /* --write-stall-timeout, default 60 (0 off) */
    unsigned keepalive_s;         /* --tcp-keepalive, default 60 (0 off) */
    unsigned shutdown_timeout_s;  /* --shutdown-timeout, default 30 */
    unsigned max_connections;     /* --max-connections, default 10000 */
    /* network edges */
    bool proxy_protocol;        /* --server-proxy-protocol */
    char *front_client_ca_path; /* --server-client-ca-path (mTLS) */
    int front_min_tls;          /* --server-min-tls-version: 12 or 13 */
    char *front_tls12_ciphers;  /* --server-tls12-ciphers */
    char *front_tls13_suites;   /* --server-tls13-ciphersuites */
    char *back_cert_path;       /* --client-certificate-path */
    char *back_key_path;        /* --client-private-key-path */
    int back_min_tls;           /* --client-min-tls-version: 12 or 13 */
    char *back_tls12_ciphers;   /* --client-tls12-ciphers */
    char *back_tls13_suites;    /* --client-tls13-ciphersuites */
    /* operations */
    bool watch_certificates;       /* --watch-certificates */
    char *admin_address;           /* --admin-address; NULL = off */
    unsigned admin_ready_window_s; /* --admin-ready-window, default 60 */
    char *admin_token_file;        /* --admin-token-file; NULL = loopback peers only */
    bool log_json;                 /* --log-format json */
    int log_level;                 /* -l/--log: enum log_level, default LOG_INFO */
    bool check_only;               /* --check */
    /* authentication */
    int auth_mode;   /* --auth-mode: enum auth_mode, default passthrough */
    char *auth_file; /* --auth-file: userlist of SCRAM verifiers (scram mode) */
    /* the config file (issue 14) */
    char *config_path;         /* --config: INI file (libinih); NULL = none */
    struct route_conf *routes; /* its [route NAME] sections, in file order */
    size_t nroutes;
    bool has_default; /* the global options name an upstream: a default route */
    /* peering between instances (issue 14): cancels reach the key's owner */
    unsigned peer_id;        /* --peer-id: 1..255; 0 = peering off */
    char *peer_secret_file;  /* --peer-secret-file: the shared secret (>= 32 bytes) */
    char *peer_ca_path;      /* --peer-ca-path: CAs that sign the instances' certificates */
    char *peer_verify_name;  /* --peer-tls-validation-host; default: each peer's host */
    struct peer_conf *peers; /* the file's [peers] section, in file order */
    size_t npeers;
    /* bridge mode (issue 15): connectors in private networks dial in */
    char *bridge_listen;    /* --bridge-listen HOST:PORT; NULL = off (process-wide) */
    char *bridges_file;     /* --bridges-file: "id" "SCRAM-SHA-256$..." lines (process-wide) */
    char *bridge_cert_path; /* --bridge-certificate-path; default: the front certificate */
    char *bridge_key_path;  /* --bridge-private-key-path */
    char *client_bridge;    /* --client-bridge ID (per route): the upstream through bridge ID */
    /* what config_parse read, kept so that a reload re-reads the file under
     * the same flags and environment (only PG_TLS_PROXY_* entries are kept);
     * NULL in a route's cfg */
    int argc;
    char **argv;
    char **envp;
};

/*
 * One [route NAME] section of the --config file (issue 14). Its cfg is the
 * whole global configuration (flags > environment > the file's globals >
 * defaults) with the section's own keys applied over it, so a route has
 * every per-route setting (upstream, CA roots, client certificate, TLS
 * policy, front certificate, allow lists, auth mode) whether it set it or
 * inherited it. Process-wide options (workers, log, admin, limits) may not
 * appear in a section.
 */
struct route_conf {
    char *name; /* [route NAME]: [A-Za-z0-9_.-]+, unique */
    char **sni; /* sni = a.example.com, *.example.org (exact or "*." suffix) */
    size_t nsni;
    char **databases; /* databases = app, reporting: clients without a matching SNI */
    size_t ndatabases;
    uint16_t listen_port; /* listen-port = 6433: sessions on this port; 0 = none */
    struct config *cfg;   /* heap: the global config with the section over it */
};

/* One "N = host:port" line of the --config file's [peers] section. */
struct peer_conf {
    unsigned id; /* 1..255 */
    char *host;  /* a name or an address ("[::1]:6432" gives "::1") */
    uint16_t port;
};

enum config_result {
    CONFIG_OK = 0,   /* run */
    CONFIG_EXIT = 1, /* --help or --version was printed to out; exit 0 */
    CONFIG_ERROR = 2 /* err holds a precise message; exit 2 */
};

/*
 * Fill cfg from argv and envp (NULL-terminated "NAME=value" array; may be
 * NULL) and the --config file if one is named. Defaults first, then the
 * file's globals, then environment, then flags; then each [route NAME]
 * section over a copy of that (cfg->routes). Validates what can be
 * validated without touching other files: required options present, ports
 * 1..65535 and purely numeric, log level known, the file's syntax and keys.
 * Certificates and keys are checked later by tlsctx. --help and --version
 * print to out. Strings in cfg are heap copies freed by config_free.
 */
enum config_result config_parse(struct config *cfg, int argc, char **argv, char **envp, FILE *out,
                                char *err, size_t errlen);
/*
 * config_parse with the --config file's contents given as text[0..len)
 * (label names it in errors) instead of read from the --config path: for
 * tests and the fuzzer. text NULL: exactly config_parse.
 */
enum config_result config_parse_text(struct config *cfg, int argc, char **argv, char **envp,
                                     const char *label, const char *text, size_t len, FILE *out,
                                     char *err, size_t errlen);
/*
 * SIGHUP: the whole configuration again from running's flags and
 * environment and the --config file as it is now, into out. 0, or -1 with
 * err filled and out empty: all or nothing, running is untouched.
 */
int config_reload_file(const struct config *running, struct config *out, char *err, size_t errlen);
/*
 * The process-wide options (not per_route: listening, limits, logs, admin)
 * whose values differ between a and b, as "workers,server-port" into buf.
 * A reload keeps the running values of these. Returns how many.
 */
size_t config_process_wide_changes(const struct config *a, const struct config *b, char *buf,
                                   size_t len);
/* Frees the strings, the routes (each cfg with config_free) and the argv/envp copies. */
void config_free(struct config *cfg);

/*
 * Whether --log-format json (or PG_TLS_PROXY_LOG_FORMAT=json, a flag
 * winning) was asked for, read before config_parse so that the errors of
 * config_parse itself are JSON too. Validates nothing.
 */
bool config_log_json_early(int argc, char **argv, char **envp);

/* config_usage(), the --help text, is in options.h. */

#endif
