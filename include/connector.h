/*
 * connector.h - `pg-tls-proxy connector` (issue 15): the agent inside a
 * private network that dials out to the proxy's bridge listener, keeps a
 * control connection, and for each OPEN connects to an allowed target and
 * carries the proxy <-> database bytes over a fresh data connection. The
 * protocol is bridgeproto.h's; the connector only ever carries the TLS
 * ciphertext of the proxy's own session with the database.
 *
 * Files: connector_opts.c (options: flags > environment > [connector] of
 * --config > defaults, --help), connector_main.c (the command, the loop,
 * stopping), connector.c (the control connection, heartbeats, reconnects,
 * BYE), connector_stream.c (one
 * stream: target, data connection, splice), connector_net.c (resolve and
 * connect, writes, the client TLS context), connector_health.c (/healthz).
 */
#ifndef PGTP_CONNECTOR_H
#define PGTP_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bridgeproto.h"

#define CONNECTOR_HOST_MAX 256 /* host names of --allow, --bridge-address */
#define CONNECTOR_NAME_MAX 63

/* One HOST:PORT of --allow. */
struct connector_allow {
    char host[CONNECTOR_HOST_MAX];
    uint16_t port;
};

/* Everything the connector runs with; strings are heap copies. */
struct connector_opts {
    char *config_path;
    char *bridge_address; /* as given; parsed into bridge_host, bridge_port */
    char bridge_host[CONNECTOR_HOST_MAX];
    uint16_t bridge_port;
    char *bridge_id;
    char *bridge_secret_file;
    char *bridge_secret; /* the secret itself, from the flag, env, file or --bridge-secret-file */
    bool secret_on_argv; /* given as --bridge-secret: warn, argv is visible to other users */
    char *bridge_ca_path;
    char *validation_host; /* default: bridge_host */
    char *allow_text;
    struct connector_allow *allow;
    size_t nallow;
    char *name; /* default: the host name */
    char *health_address;
    unsigned heartbeat_s, connect_timeout_s, reconnect_max_s, shutdown_timeout_s;
    unsigned max_streams; /* streams open at once; more OPENs get FAIL */
    int log_level;
    bool log_json;
    char unknown_env[256]; /* PG_TLS_PROXY_* variables that are not ours, for a warning */
};

enum connector_parse_res {
    CONNECTOR_RUN = 0,  /* options complete and valid */
    CONNECTOR_EXIT = 1, /* --help or --version printed to out: exit 0 */
    CONNECTOR_ERROR = 2 /* err says what and how to fix it: exit 2 */
};

/*
 * Read argv (argv[0] is "connector"), the PG_TLS_PROXY_* variables of envp
 * and the [connector] section of --config into o (zeroed first). The
 * secret is read from its file here. connector_opts_free is safe on any
 * result.
 */
enum connector_parse_res connector_opts_parse(struct connector_opts *o, int argc, char **argv,
                                              char **envp, FILE *out, char *err, size_t errlen);
/* Frees the strings; the secret is wiped first. */
void connector_opts_free(struct connector_opts *o);
void connector_usage(FILE *out);

/* "a:1,[::1]:2" -> allow list; "*" is refused as a host. 0, or -1 with err. */
int connector_allow_parse(const char *text, struct connector_allow **list, size_t *n, char *err,
                          size_t errlen);
/* Is host:port on the list? Host text compared case-insensitively. */
bool connector_allowed(const struct connector_allow *list, size_t n, const char *host,
                       uint16_t port);

/*
 * Reconnect backoff: the wait before the next attempt, in ms, drawn from
 * [*base / 2, *base] with rnd (full jitter), then *base doubles up to
 * cap_ms. *base starts (and is reset to) CONNECTOR_BACKOFF_START_MS.
 */
#define CONNECTOR_BACKOFF_START_MS 500
#define CONNECTOR_BACKOFF_RESET_MS 10000 /* a tunnel up this long resets the backoff */
uint64_t connector_backoff_next(uint64_t *base, uint64_t cap_ms, uint32_t rnd);

struct connector;

/*
 * Build a connector from parsed options (the TLS context, the loop's
 * handles; nothing connects yet). with_signals: SIGTERM/SIGINT stop it
 * (the command); tests stop it with connector_stop. NULL with err filled.
 */
struct connector *connector_new(const struct connector_opts *o, bool with_signals, char *err,
                                size_t errlen);
/* Run the loop until stopped and every stream has ended; 0, or 1 if the
 * loop could not be closed cleanly. */
int connector_run(struct connector *cn);
/* Ask a running connector to stop as on SIGTERM; any thread. */
void connector_stop(struct connector *cn);
/* After connector_run has returned. */
void connector_free(struct connector *cn);

/* `pg-tls-proxy connector ...`: argv[0] is "connector". Exit status. */
int connector_main(int argc, char **argv, char **envp);

#endif
