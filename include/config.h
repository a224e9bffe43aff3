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
    int log_level;              /* -l/--log: enum log_level, default LOG_INFO */
    bool check_only;            /* --check */
};

enum config_result {
    CONFIG_OK = 0,   /* run */
    CONFIG_EXIT = 1, /* --help or --version was printed to out; exit 0 */
    CONFIG_ERROR = 2 /* err holds a precise message; exit 2 */
};

/*
 * Fill cfg from argv and envp (NULL-terminated "NAME=value" array; may be
 * NULL). Defaults first, then environment, then flags. Validates what can
 * be validated without touching files: required options present, ports
 * 1..65535 and purely numeric, log level known. Files are checked later by
 * tlsctx. --help and --version print to out. Strings in cfg are heap copies
 * freed by config_free.
 */
enum config_result config_parse(struct config *cfg, int argc, char **argv, char **envp, FILE *out,
                                char *err, size_t errlen);
void config_free(struct config *cfg);

/* --help text, generated from the option table. */
void config_usage(FILE *out);

#endif
