/*
 * options.c - the option table of pg-tls-proxy and what reads it by name:
 * lookup of a flag or variable, "did you mean" for a typo, and --help.
 *
 * Owns: the table (read-only data). Never: parses values, allocates, logs,
 * or keeps state; config.c parses and validates what the table describes.
 * tests/check-docs.sh checks the man page and README against --help.
 */
#include "options.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

#define FIELD(f) offsetof(struct config, f)
/* per_route: ROUTE options describe an upstream, its trust and who may reach
 * it, so a [route NAME] section of --config may set them; PROCESS options
 * (listening, limits, logs, admin) belong to the whole process and may only
 * be set globally. */
#define ROUTE true
#define PROCESS false

/* The one table. --help, the environment and the parser all read it; keep it
 * in the order --help should show. tests/check-docs.sh checks that the man
 * page and README mention every flag and variable that --help prints. */
const struct opt_def config_options[] = {
    {"config", 0, OPT_STRING, PROCESS, "PATH", FIELD(config_path), false, NULL, "none",
     "INI file of settings: keys are these long option names, globals first (or in "
     "[global]), then [route NAME] sections for more upstreams; flags and environment "
     "variables override its globals. Re-read on SIGHUP, all or nothing."},
    {"server-certificate-path", 0, OPT_STRING, ROUTE, "PATH", FIELD(front_cert_path), true, NULL,
     NULL, "PEM certificate chain the proxy presents to clients, leaf first."},
    {"server-private-key-path", 0, OPT_STRING, ROUTE, "PATH", FIELD(front_key_path), true, NULL,
     NULL, "PEM private key for --server-certificate-path."},
    {"server-host", 0, OPT_STRING, PROCESS, "ADDR", FIELD(listen_host), false, NULL,
     "all IPv4 and IPv6 addresses", "Address to listen on for clients."},
    {"server-port", 0, OPT_PORT, PROCESS, "PORT", FIELD(listen_port), false, "5432", NULL,
     "TCP port to listen on for clients."},
    {"client-connection-host-or-ip", 0, OPT_STRING, ROUTE, "HOST", FIELD(upstream_host), true, NULL,
     NULL, "Host name or IP address of the upstream database."},
    {"client-connection-port", 0, OPT_PORT, ROUTE, "PORT", FIELD(upstream_port), false, "5432",
     NULL, "TCP port of the upstream database."},
    {"client-tls-validation-host", 0, OPT_STRING, ROUTE, "NAME", FIELD(upstream_verify_name), false,
     NULL, "the value of --client-connection-host-or-ip",
     "DNS name or IP address the upstream certificate must match; also sent as SNI when it "
     "is a DNS name. PROJECT:INSTANCE (Google Cloud SQL) is checked against the "
     "certificate's CN exactly instead."},
    {"client-ca-roots-path", 0, OPT_STRING, ROUTE, "PATH", FIELD(ca_roots_path), true, NULL, NULL,
     "CA certificates that sign the upstream certificate: a PEM file, or a directory whose "
     "*.pem and *.crt files are all loaded."},
    {"server-allow-from", 0, OPT_STRING, ROUTE, "CIDR[,CIDR...]", FIELD(allow_from), false, NULL,
     "every address",
     "Only clients from these IPv4/IPv6 prefixes may connect; others are told FATAL 28000 "
     "\"address not allowed\" (inside TLS when they asked for it)."},
    {"server-allow-plaintext-from", 0, OPT_STRING, ROUTE, "CIDR[,CIDR...]",
     FIELD(allow_plaintext_from), false, NULL, "none: TLS is required from everyone",
     "Sidecar mode: clients from these prefixes may connect without TLS (sslmode=disable); "
     "the upstream leg is still verify-full. Use only for loopback or a pod's own network."},
    {"client-direct-tls", 0, OPT_BOOL, ROUTE, NULL, FIELD(back_direct_tls), false, NULL, NULL,
     "Open the upstream leg with direct TLS (ALPN \"postgresql\", no SSLRequest), saving a "
     "round trip; needs PostgreSQL 17 or newer upstream."},
    {"server-handshake-timeout", 0, OPT_SECONDS, PROCESS, "SECONDS", FIELD(handshake_timeout_s),
     false, "15", NULL,
     "Time a client has from connecting to a complete StartupMessage (TLS handshake "
     "included); 0 = no limit."},
    {"client-connect-timeout", 0, OPT_SECONDS, ROUTE, "SECONDS", FIELD(connect_timeout_s), false,
     "10", NULL,
     "Time for the upstream leg: resolve, connect and verified TLS handshake; 0 = no "
     "limit."},
    {"idle-timeout", 0, OPT_SECONDS, PROCESS, "SECONDS", FIELD(idle_timeout_s), false, "0",
     "0: off",
     "Close a session idle this long: every query answered (ReadyForQuery) and no byte "
     "either way since; a running query is never idle."},
    {"write-stall-timeout", 0, OPT_SECONDS, PROCESS, "SECONDS", FIELD(write_stall_s), false, "60",
     NULL,
     "End a session whose client has stopped reading: more than 256 KB waits to be sent to "
     "it and none of it has gone for this long; 0 = off."},
    {"tcp-keepalive", 0, OPT_SECONDS, ROUTE, "SECONDS", FIELD(keepalive_s), false, "60", NULL,
     "TCP keepalive idle time on both legs; 0 turns keepalive off."},
    {"shutdown-timeout", 0, OPT_SECONDS, PROCESS, "SECONDS", FIELD(shutdown_timeout_s), false, "30",
     NULL,
     "On SIGTERM/SIGINT: how long open sessions may finish before they are ended "
     "(57P01); a second signal ends them at once."},
    {"max-connections", 0, OPT_COUNT, PROCESS, "N", FIELD(max_connections), false, "10000", NULL,
     "Client connections at once; the next client is told FATAL 53300 once it has sent its "
     "StartupMessage (inside TLS when it asked for TLS)."},
    {"auth-mode", 0, OPT_AUTHMODE, ROUTE, "passthrough|password|scram", FIELD(auth_mode), false,
     "passthrough", NULL,
     "Who authenticates clients. passthrough: the upstream, through the relayed login "
     "(clients must turn channel binding off); password: the proxy asks the client for its "
     "password inside TLS and logs in upstream itself, channel-bound; scram: the proxy "
     "checks the client against --auth-file's SCRAM verifiers (channel binding to the "
     "proxy works) and logs in upstream with the key it recovers."},
    {"auth-file", 0, OPT_STRING, ROUTE, "PATH", FIELD(auth_file), false, NULL, "none",
     "--auth-mode scram: PgBouncer-style userlist, one \"user\" \"SCRAM-SHA-256$...\" line "
     "per role (pg-tls-proxy scram-secret USER prints one); reloaded on SIGHUP."},
    {"server-proxy-protocol", 0, OPT_BOOL, PROCESS, NULL, FIELD(proxy_protocol), false, NULL, NULL,
     "Expect a PROXY protocol v1 or v2 header (AWS NLB, HAProxy) before every client "
     "connection; its source address is the one logged and allow-listed. Connections "
     "without a valid header are refused."},
    {"server-client-ca-path", 0, OPT_STRING, ROUTE, "PATH", FIELD(front_client_ca_path), false,
     NULL, "off", "mTLS: require client certificates signed by these CAs (PEM file or directory)."},
    {"server-min-tls-version", 0, OPT_TLSVER, ROUTE, "1.2|1.3", FIELD(front_min_tls), false, "1.2",
     NULL, "Oldest TLS version clients may use."},
    {"server-tls12-ciphers", 0, OPT_STRING, ROUTE, "LIST", FIELD(front_tls12_ciphers), false, NULL,
     "OpenSSL's default", "OpenSSL cipher list for TLS 1.2 clients."},
    {"server-tls13-ciphersuites", 0, OPT_STRING, ROUTE, "LIST", FIELD(front_tls13_suites), false,
     NULL, "OpenSSL's default", "TLS 1.3 cipher suites offered to clients (colon-separated)."},
    {"client-certificate-path", 0, OPT_STRING, ROUTE, "PATH", FIELD(back_cert_path), false, NULL,
     "none",
     "Client certificate chain the proxy presents to the upstream (Cloud SQL trusted "
     "client certificates, pg_hba clientcert=verify-full)."},
    {"client-private-key-path", 0, OPT_STRING, ROUTE, "PATH", FIELD(back_key_path), false, NULL,
     "none", "Private key for --client-certificate-path."},
    {"client-min-tls-version", 0, OPT_TLSVER, ROUTE, "1.2|1.3", FIELD(back_min_tls), false, "1.2",
     NULL, "Oldest TLS version accepted from the upstream."},
    {"client-tls12-ciphers", 0, OPT_STRING, ROUTE, "LIST", FIELD(back_tls12_ciphers), false, NULL,
     "OpenSSL's default", "OpenSSL cipher list offered to the upstream for TLS 1.2."},
    {"client-tls13-ciphersuites", 0, OPT_STRING, ROUTE, "LIST", FIELD(back_tls13_suites), false,
     NULL, "OpenSSL's default", "TLS 1.3 cipher suites offered to the upstream."},
    {"watch-certificates", 0, OPT_BOOL, PROCESS, NULL, FIELD(watch_certificates), false, NULL, NULL,
     "Reload (as on SIGHUP) when a certificate, key, CA or auth file changes on disk, including "
     "Kubernetes secret mounts that swap a symlink."},
    {"admin-address", 0, OPT_STRING, PROCESS, "HOST:PORT", FIELD(admin_address), false, NULL, "off",
     "Serve /metrics (Prometheus), /healthz, /readyz and /sessions (open sessions, and ending "
     "one) over plain HTTP; a bare port means 127.0.0.1."},
    {"admin-ready-window", 0, OPT_SECONDS, PROCESS, "SECONDS", FIELD(admin_ready_window_s), false,
     "60", NULL,
     "/readyz answers 200 while every route's upstream had a verified TLS handshake within "
     "this window (the proxy probes each route when idle); /readyz/NAME answers for one "
     "route."},
    {"admin-token-file", 0, OPT_STRING, PROCESS, "PATH", FIELD(admin_token_file), false, NULL,
     "none: loopback peers only",
     "File holding a bearer token (16 to 1024 visible ASCII bytes, e.g. openssl rand -hex 32): "
     "/sessions then answers only requests with \"Authorization: Bearer TOKEN\", from any "
     "address. Re-read on SIGHUP."},
    {"log-format", 0, OPT_LOGFMT, PROCESS, "text|json", FIELD(log_json), false, "text", NULL,
     "Log lines as key=value text or as JSON objects (one per line)."},
    {"workers", 0, OPT_WORKERS, PROCESS, "N", FIELD(workers), false, "0", "0: one per CPU",
     "Event-loop threads; each accepts on its own socket (SO_REUSEPORT) and keeps its "
     "sessions."},
    {"log", 'l', OPT_LOG, PROCESS, "LEVEL", FIELD(log_level), false, "info", NULL,
     "Log level: debug, info, warn or error (case-insensitive)."},
    {"check", 0, OPT_BOOL, PROCESS, NULL, FIELD(check_only), false, NULL, NULL,
     "Load and validate everything, make one verified TLS connection to every route's "
     "upstream, print each certificate chain and exit: 0 on success, 1 if any route failed "
     "(named on the last line)."},
    {"peer-id", 0, OPT_PEERID, PROCESS, "N", FIELD(peer_id), false, "0", "0: peering off",
     "This instance's number among instances behind one load balancer (1-255, e.g. a "
     "StatefulSet ordinal + 1): the first byte of every cancel key it gives out, so that a "
     "cancel that lands on another instance is forwarded here. The others are listed in the "
     "config file's [peers] section."},
    {"peer-secret-file", 0, OPT_STRING, PROCESS, "PATH", FIELD(peer_secret_file), false, NULL,
     "none",
     "File holding the secret (at least 32 bytes) every instance shares: it signs the cancels "
     "forwarded between instances (HMAC-SHA256), so that no one else can make an instance "
     "cancel. Required with --peer-id."},
    {"peer-ca-path", 0, OPT_STRING, PROCESS, "PATH", FIELD(peer_ca_path), false, NULL, "none",
     "CA certificates that sign the instances' --server-certificate-path (PEM file or "
     "directory): a cancel goes to another instance only over TLS verified against them. "
     "Required with --peer-id."},
    {"peer-tls-validation-host", 0, OPT_STRING, PROCESS, "NAME", FIELD(peer_verify_name), false,
     NULL, "each peer's host in [peers]",
     "DNS name or IP address every instance's certificate must match (the load balancer's "
     "name, when the instances share its certificate)."},
    {"bridge-listen", 0, OPT_STRING, PROCESS, "HOST:PORT", FIELD(bridge_listen), false, NULL, "off",
     "Bridge mode: where connectors (pg-tls-proxy connector, run inside a private network) "
     "dial in; a route with --client-bridge reaches its upstream through them. Needs "
     "--bridges-file."},
    {"bridges-file", 0, OPT_STRING, PROCESS, "PATH", FIELD(bridges_file), false, NULL, "none",
     "Bridge mode: one \"bridge-id\" \"SCRAM-SHA-256$...\" line per bridge, the verifier of its "
     "secret (pg-tls-proxy bridge-secret ID prints both); re-read on SIGHUP, and connectors of "
     "a bridge whose line changed or went are disconnected. Required with --bridge-listen."},
    {"bridge-certificate-path", 0, OPT_STRING, PROCESS, "PATH", FIELD(bridge_cert_path), false,
     NULL, "--server-certificate-path",
     "PEM certificate chain the proxy presents to connectors on --bridge-listen."},
    {"bridge-private-key-path", 0, OPT_STRING, PROCESS, "PATH", FIELD(bridge_key_path), false, NULL,
     "--server-private-key-path", "PEM private key for --bridge-certificate-path."},
    {"client-bridge", 0, OPT_STRING, ROUTE, "ID", FIELD(client_bridge), false, NULL,
     "none: the proxy connects itself",
     "Reach the upstream (--client-connection-host-or-ip and --client-connection-port, as the "
     "connector resolves them) through a connector of this bridge id; the proxy still "
     "verifies the upstream's certificate end to end. Needs --bridge-listen."},
    {"help", 'h', OPT_HELP, PROCESS, NULL, 0, false, NULL, NULL, "Print this help and exit."},
    {"version", 'V', OPT_VERSION, PROCESS, NULL, 0, false, NULL, NULL,
     "Print the version and exit."},
};

const size_t config_noptions = sizeof(config_options) / sizeof(config_options[0]);
_Static_assert(sizeof(config_options) / sizeof(config_options[0]) <= CONFIG_OPTIONS_MAX,
               "raise CONFIG_OPTIONS_MAX");

bool opt_has_env(const struct opt_def *o)
{
    return o->kind != OPT_HELP && o->kind != OPT_VERSION;
}

bool opt_takes_value(const struct opt_def *o)
{
    return o->metavar != NULL;
}

/* "client-ca-roots-path" -> "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH". */
void opt_env_name(const struct opt_def *o, char *buf, size_t len)
{
    size_t n = strlen(ENV_PREFIX);
    memcpy(buf, ENV_PREFIX, n);
    for (const char *p = o->name; *p != '\0' && n + 1 < len; p++, n++) {
        char c = *p;
        buf[n] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    buf[n] = '\0';
}

const struct opt_def *opt_find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < config_noptions; i++) {
        if (strlen(config_options[i].name) == len &&
            strncmp(config_options[i].name, name, len) == 0)
            return &config_options[i];
    }
    return NULL;
}

const struct opt_def *opt_find_short(char c)
{
    for (size_t i = 0; i < config_noptions; i++) {
        if (config_options[i].short_name != 0 && config_options[i].short_name == c)
            return &config_options[i];
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

/* How option o is spelt where it was typed: its env name if env (false
 * when it has none), else its long name. */
static bool opt_spelling(const struct opt_def *o, bool env, char *name, size_t len)
{
    if (env && !opt_has_env(o))
        return false;
    if (env)
        opt_env_name(o, name, len);
    else
        snprintf(name, len, "%s", o->name);
    return true;
}

/* The option whose spelling (its env name if env, else its long name) is
 * closest to what was typed, if close enough to be a likely typo: at most
 * a third of the length, and 3, edits away. NULL otherwise. */
const struct opt_def *opt_closest(const char *typed, bool env)
{
    const struct opt_def *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < config_noptions; i++) {
        char name[ENV_NAME_MAX];
        if (!opt_spelling(&config_options[i], env, name, sizeof(name)))
            continue;
        size_t d = edit_distance(typed, name);
        if (d < best_d) {
            best_d = d;
            best = &config_options[i];
        }
    }
    /* The length that counts is the part after the common prefix. */
    size_t len = strlen(typed) - (env ? strlen(ENV_PREFIX) : 0);
    size_t max = len / 3 < 3 ? len / 3 : 3;
    if (best != NULL && best_d <= (max > 0 ? max : 1))
        return best;
    /* A word too many, as in PG_TLS_PROXY_LOG_LEVEL for PG_TLS_PROXY_LOG. */
    for (size_t i = 0; i < config_noptions; i++) {
        char name[ENV_NAME_MAX];
        if (!opt_spelling(&config_options[i], env, name, sizeof(name)))
            continue;
        size_t n = strlen(name);
        if (strncmp(typed, name, n) == 0 && (typed[n] == '_' || typed[n] == '-'))
            return &config_options[i];
    }
    return NULL;
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
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
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
        if (opt_has_env(o)) {
            char env[ENV_NAME_MAX];
            opt_env_name(o, env, sizeof(env));
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
          "\nSubcommands (each with --help):\n"
          "  pg-tls-proxy connector ...           the bridge connector\n"
          "  pg-tls-proxy scram-secret USER       a SCRAM verifier for --auth-file\n"
          "  pg-tls-proxy bridge-secret ID        a bridge secret and its --bridges-file line\n"
          "  pg-tls-proxy healthcheck [HOST:PORT] GET /healthz; exit 0 on 200 (the image's "
          "HEALTHCHECK)\n"
          "\nSee pg-tls-proxy(1) for details.\n",
          out);
}
