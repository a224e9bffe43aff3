/*
 * test_conffile.c - the --config file (conffile.c, confroute.c, config.c):
 * every error with its exact text, precedence flag > environment > file >
 * default, routes inheriting the globals, route-only keys, booleans,
 * comments, and config_reload_file on a real file.
 *
 * argv, envp and the file text are heap copies freed right after parsing,
 * so anything the config borrowed instead of copying is a use-after-free
 * under ASan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conffile.h"
#include "config.h"
#include "options.h"
#include "suites.h"

#define ARGS(...) ((const char *const[]){"pg-tls-proxy", __VA_ARGS__, NULL})
#define NOARGS ((const char *const[]){"pg-tls-proxy", NULL})
#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The front certificate: required in every file below. */
#define FRONT "server-certificate-path = /f.crt\nserver-private-key-path = /f.key\n"
/* And an upstream for the default route. */
#define BASE FRONT "client-connection-host-or-ip = db\nclient-ca-roots-path = /ca\n"

static struct config cfg;
static char err[1024];

static char **dup_list(const char *const *src, int *count)
{
    int n = 0;
    while (src != NULL && src[n] != NULL)
        n++;
    char **dst = calloc((size_t)n + 1, sizeof(*dst));
    ck_assert_ptr_nonnull(dst);
    for (int i = 0; i < n; i++)
        ck_assert_ptr_nonnull(dst[i] = strdup(src[i]));
    if (count != NULL)
        *count = n;
    return dst;
}

static void free_list(char **list)
{
    for (int i = 0; list[i] != NULL; i++) {
        memset(list[i], 'X', strlen(list[i]));
        free(list[i]);
    }
    free(list);
}

/* config_parse_text with the file text[0..len) labelled "pg.conf". */
static enum config_result parse_n(const char *const *args, const char *const *env, const char *text,
                                  size_t len)
{
    int argc;
    char **argv = dup_list(args, &argc);
    char **envp = dup_list(env, NULL);
    char *copy = malloc(len + 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, text, len);
    copy[len] = '\0';
    memset(err, 0, sizeof(err));
    FILE *devnull = fopen("/dev/null", "w");
    enum config_result r =
        config_parse_text(&cfg, argc, argv, envp, "pg.conf", copy, len, devnull, err, sizeof(err));
    fclose(devnull);
    memset(copy, 'X', len);
    free(copy);
    free_list(argv);
    free_list(envp);
    return r;
}

static enum config_result parse(const char *const *args, const char *const *env, const char *text)
{
    return parse_n(args, env, text, strlen(text));
}

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
}

static void teardown(void)
{
    config_free(&cfg);
}

static const struct route_conf *route(const char *name)
{
    for (size_t i = 0; i < cfg.nroutes; i++)
        if (strcmp(cfg.routes[i].name, name) == 0)
            return &cfg.routes[i];
    ck_abort_msg("no route %s", name);
    return NULL;
}

/* ---- every error, exactly ---- */

static const struct {
    const char *text;
    const char *want;
} errors[] = {
    {BASE "client-conection-port = 5433\n",
     "pg.conf:5: unknown key \"client-conection-port\" (did you mean client-connection-port?)"},
    {BASE "zzz = 1\n", "pg.conf:5: unknown key \"zzz\" (the keys are the long option names of "
                       "--help, and sni, databases, listen-port in a [route NAME] section)"},
    {BASE "server-port = 1\nserver-port = 2\n",
     "pg.conf:6: server-port is set twice in the globals (first on line 5)"},
    {"server-port = 1\n" FRONT "[global]\nserver-port = 2\n",
     "pg.conf:5: server-port is set twice in the globals (first on line 1)"},
    {BASE "[route a]\nsni = a\n[route b]\nsni = b\n[route a]\n",
     "pg.conf:9: [route a] appears twice (first on line 5): merge the two sections"},
    {BASE "[route a]\nsni = a\nsni = b\n",
     "pg.conf:7: sni is set twice in [route a] (first on line 6)"},
    {BASE "[route a]\nsni = a\nworkers = 2\n",
     "pg.conf:7: workers is process-wide: set it in the globals (before the first section, or "
     "in [global]), not in [route a]"},
    {BASE "[route a]\nserver-port = 6000\n",
     "pg.conf:6: server-port is process-wide: set it in the globals (before the first section, "
     "or in [global]), not in [route a]"},
    {BASE "sni = a.example.com\n",
     "pg.conf:5: sni belongs in a [route NAME] section: it says which clients take that route"},
    {BASE "listen-port = 6000\n",
     "pg.conf:5: listen-port belongs in a [route NAME] section: it says which clients take that "
     "route"},
    {BASE "config = /etc/other.conf\n",
     "pg.conf:5: config cannot be set inside the config file (use --config or "
     "PG_TLS_PROXY_CONFIG)"},
    {BASE "help = yes\n", "pg.conf:5: help is a command-line flag, not a setting"},
    {BASE "server-port =\n", "pg.conf:5: server-port needs a value"},
    {BASE "[routes a]\n",
     "pg.conf:5: unknown section [routes a]: the sections are [global], [route NAME] and [peers]"},
    {BASE "[route]\n",
     "pg.conf:5: unknown section [route]: the sections are [global], [route NAME] and [peers]"},
/* [peers] (several instances) */
#define PEERING "peer-id = 1\npeer-secret-file = /s\npeer-ca-path = /ca\n"
    {BASE PEERING "[peers]\n1 = a:1\n[peers]\n",
     "pg.conf:10: [peers] appears twice (first on line 8): merge the two sections"},
    {BASE PEERING "[peers]\n0 = a:1\n",
     "pg.conf:9: [peers]: \"0\" is not a peer id: write \"N = host:port\" with N 1-255 (each "
     "instance's peer-id)"},
    {BASE PEERING "[peers]\n256 = a:1\n",
     "pg.conf:9: [peers]: \"256\" is not a peer id: write \"N = host:port\" with N 1-255 (each "
     "instance's peer-id)"},
    {BASE PEERING "[peers]\nx = a:1\n",
     "pg.conf:9: [peers]: \"x\" is not a peer id: write \"N = host:port\" with N 1-255 (each "
     "instance's peer-id)"},
    {BASE PEERING "[peers]\n2 = a:1\n2 = b:1\n",
     "pg.conf:10: [peers]: peer 2 is listed twice (first on line 9)"},
    {BASE PEERING "[peers]\n2 = a\n",
     "pg.conf:9: [peers]: peer 2: \"a\" is not host:port (an IPv6 address in brackets: "
     "[::1]:6432)"},
    {BASE PEERING "[peers]\n2 = ::1:5432\n",
     "pg.conf:9: [peers]: peer 2: \"::1:5432\" is not host:port (an IPv6 address in brackets: "
     "[::1]:6432)"},
    {BASE PEERING "[peers]\n2 = a:70000\n",
     "pg.conf:9: [peers]: peer 2: \"a:70000\" is not host:port (an IPv6 address in brackets: "
     "[::1]:6432)"},
    {BASE "[peers]\n2 = a:1\n",
     "pg.conf has a [peers] section but peer-id is not set: give each instance its peer-id "
     "(1-255), or remove [peers]"},
    {BASE "peer-id = 1\npeer-ca-path = /ca\n",
     "--peer-id needs --peer-secret-file: the secret every instance shares, which signs the "
     "cancels they forward"},
    {BASE "peer-id = 1\npeer-secret-file = /s\n",
     "--peer-id needs --peer-ca-path: the CAs that sign the instances' certificates, against "
     "which a cancel's TLS to another instance is verified"},
    {BASE "peer-id = 256\n",
     "pg.conf:5: peer-id: \"256\" is not a peer id (1-255; 0 = peering off)"},
    {BASE "[route a]\nsni = a\npeer-id = 2\n",
     "pg.conf:7: peer-id is process-wide: set it in the globals (before the first section, or in "
     "[global]), not in [route a]"},
    {BASE "[route a/b]\n", "pg.conf:5: route name \"a/b\": use 1-63 of A-Z a-z 0-9 _ . -"},
    {BASE "[route default]\n",
     "pg.conf:5: the route name \"default\" is reserved for the route of the global options"},
    {BASE "[route -]\n", "pg.conf:5: the route name \"-\" is reserved: the logs and metrics use it "
                         "for sessions whose route is not decided yet"},
    {BASE "[route a\n",
     "pg.conf:5: a section header needs its closing ']' ([global] or [route NAME])"},
    {BASE "[route a] sni = a\n",
     "pg.conf:5: text after the section header's ']' (a comment starts with ; or #)"},
    {BASE "just some words\n",
     "pg.conf:5: expected \"key = value\", a [section] or a comment (; or #)"},
    {BASE "server-port = 0\n", "pg.conf:5: server-port: \"0\" is not a port number (1-65535)"},
    {BASE "client-direct-tls = maybe\n",
     "pg.conf:5: client-direct-tls: \"maybe\" is not a boolean (1, true, yes, on or 0, false, "
     "no, off)"},
    {BASE "[route a]\nsni = a\nauth-mode = kerberos\n",
     "pg.conf:7: auth-mode: \"kerberos\" is not an auth mode (passthrough, password, scram)"},
    {FRONT "client-ca-roots-path = /ca\n[route a]\nsni = a.example.com\n",
     "pg.conf:4: [route a] has no client-connection-host-or-ip: set it in the section or in the "
     "globals"},
    {FRONT "[route a]\nsni = a.example.com\nclient-connection-host-or-ip = a\n",
     "pg.conf:3: [route a] has no client-ca-roots-path: set it in the section or in the globals"},
    {BASE "[route a]\nclient-connection-host-or-ip = a\n",
     "pg.conf:5: [route a] has no sni, databases or listen-port: no client would reach it"},
    {BASE "[route a]\nsni = a\nclient-certificate-path = /c.crt\n",
     "pg.conf:5: [route a] sets client-certificate-path without client-private-key-path: set "
     "both"},
    {BASE "[route a]\nsni = a\nserver-private-key-path = /a.key\n",
     "pg.conf:5: [route a] sets server-private-key-path without server-certificate-path: set "
     "both"},
    {BASE "[route a]\nsni = a\nauth-mode = scram\n",
     "pg.conf:5: [route a]: auth-mode scram needs auth-file (pg-tls-proxy scram-secret USER "
     "prints a line of it)"},
    {BASE "[route a]\nsni = a\nauth-file = /u.txt\n",
     "pg.conf:5: [route a]: auth-file is read only with auth-mode scram (the mode is "
     "passthrough)"},
    {BASE "[route a]\nsni = a.x, b.x\n[route b]\nsni = B.X\n",
     "pg.conf:8: [route b]: sni b.x is also in [route a]: a server name picks one route"},
    {BASE "[route a]\ndatabases = app\n[route b]\ndatabases = other, app\n",
     "pg.conf:8: [route b]: database app is also in [route a]: a database picks one route"},
    {BASE "[route a]\nlisten-port = 6000\n[route b]\nlisten-port = 6000\n",
     "pg.conf:8: [route b]: listen-port 6000 is also [route a]'s"},
    {BASE "[route a]\nlisten-port = 5432\n",
     "pg.conf:6: [route a]: listen-port 5432 is server-port, where every route is served: pick "
     "another port"},
    {BASE "[route a]\nlisten-port = 70000\n",
     "pg.conf:6: listen-port: \"70000\" is not a port number (1-65535)"},
    {BASE "[route a]\nsni = a..b\n",
     "pg.conf:6: sni: server name \"a..b\": an empty label (two dots, or a leading dot)"},
    {BASE "[route a]\nsni = a.b.\n",
     "pg.conf:6: sni: server name \"a.b.\": write it without the trailing dot"},
    {BASE "[route a]\nsni = a.*.b\n",
     "pg.conf:6: sni: server name \"a.*.b\": a wildcard is only allowed as the whole first label "
     "(*.example.com)"},
    {BASE "[route a]\nsni = *.\n",
     "pg.conf:6: sni: server name \"*.\": an empty label (two dots, or a leading dot)"},
    {BASE "[route a]\nsni = a b\n",
     "pg.conf:6: sni: server name \"a b\": a host name has only letters, digits, '-', '_' and "
     "dots"},
    {BASE "[route a]\nsni = a,,b\n",
     "pg.conf:6: sni: server name \"\": an empty item (two commas, or one at an end)"},
    {BASE "[route a]\nsni = a, A\n", "pg.conf:6: sni: server name \"a\": listed twice"},
    {BASE "[route a]\ndatabases = "
          "a234567890123456789012345678901234567890123456789012345678901234\n",
     "pg.conf:6: databases: database "
     "\"a234567890123456789012345678901234567890123456789012345678901234\": longer than 63 "
     "bytes (PostgreSQL would truncate it)"},
    {FRONT "client-connection-host-or-ip = db\n[route a]\nsni = a\nclient-ca-roots-path = /a\n",
     "missing required option --client-ca-roots-path (or PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH): "
     "the global options name an upstream (--client-connection-host-or-ip), the default route, "
     "which needs its CA roots"},
    {FRONT "client-ca-roots-path = /ca\n",
     "missing required option --client-connection-host-or-ip (or "
     "PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP)"},
};

START_TEST(test_errors)
{
    enum config_result r = parse(NOARGS, NULL, errors[_i].text);
    ck_assert_int_eq(r, CONFIG_ERROR);
    ck_assert_str_eq(err, errors[_i].want);
    ck_assert_ptr_null(cfg.front_cert_path); /* nothing left allocated */
    ck_assert_ptr_null(cfg.routes);
}
END_TEST

START_TEST(test_long_line_and_nul)
{
    char text[600];
    snprintf(text, sizeof(text), BASE "server-host = %0300d\n", 7);
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_ERROR);
    ck_assert_msg(strncmp(err, "pg.conf:5: line longer than ", 28) == 0, "%s", err);
    /* inih would stop at the NUL and ignore the rest. */
    static const char nul[] = BASE "server-port = 6000\n\0workers = 2\n";
    ck_assert_int_eq(parse_n(NOARGS, NULL, nul, sizeof(nul) - 1), CONFIG_ERROR);
    ck_assert_str_eq(err, "pg.conf:6: a NUL byte: this is not a text file");
}
END_TEST

START_TEST(test_missing_file)
{
    const char *const *args = ARGS("--config", "/nonexistent/pg.conf");
    int argc;
    char **argv = dup_list(args, &argc);
    ck_assert_int_eq(config_parse(&cfg, argc, argv, NULL, NULL, err, sizeof(err)), CONFIG_ERROR);
    free_list(argv);
    ck_assert_str_eq(err, "cannot open the config file /nonexistent/pg.conf: No such file or "
                          "directory");
}
END_TEST

/* ---- precedence: flag > environment > file > default ---- */

START_TEST(test_precedence)
{
    const char *text = BASE "server-port = 6001\n";
    ck_assert_int_eq(
        parse(ARGS("--server-port", "6003"), ENV("PG_TLS_PROXY_SERVER_PORT=6002"), text),
        CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 6003);
    config_free(&cfg);
    ck_assert_int_eq(parse(NOARGS, ENV("PG_TLS_PROXY_SERVER_PORT=6002"), text), CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 6002);
    config_free(&cfg);
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 6001);
    config_free(&cfg);
    ck_assert_int_eq(parse(NOARGS, NULL, BASE), CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 5432);
    /* The file supplies required options; a flag still wins over it. */
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS("--client-connection-host-or-ip", "flag.db"), NULL, BASE),
                     CONFIG_OK);
    ck_assert_str_eq(cfg.upstream_host, "flag.db");
    ck_assert_str_eq(cfg.upstream_verify_name, "flag.db");
    ck_assert_str_eq(cfg.ca_roots_path, "/ca");
}
END_TEST

/* A bad value in the file that the environment overrides is not an error. */
START_TEST(test_overridden_bad_value)
{
    ck_assert_int_eq(parse(NOARGS, ENV("PG_TLS_PROXY_SERVER_PORT=6002"), BASE "server-port = x\n"),
                     CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 6002);
}
END_TEST

/* ---- routes ---- */

START_TEST(test_route_inheritance)
{
    const char *text = BASE "tcp-keepalive = 30\n"
                            "client-certificate-path = /g.crt\nclient-private-key-path = /g.key\n"
                            "[route a]\n"
                            "sni = a.example.com\n"
                            "client-connection-host-or-ip = a.db\n"
                            "client-connection-port = 5433\n"
                            "auth-mode = password\n"
                            "[route b]\n"
                            "databases = b\n"
                            "client-ca-roots-path = /ca-b\n"
                            "server-certificate-path = /b.crt\nserver-private-key-path = /b.key\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_OK);
    ck_assert(cfg.has_default);
    ck_assert_uint_eq(cfg.nroutes, 2);
    ck_assert_str_eq(cfg.routes[0].name, "a");
    ck_assert_str_eq(cfg.routes[1].name, "b");
    const struct config *a = route("a")->cfg, *b = route("b")->cfg;
    ck_assert_str_eq(a->upstream_host, "a.db");
    ck_assert_str_eq(a->upstream_verify_name, "a.db"); /* its own host's, not "db" */
    ck_assert_uint_eq(a->upstream_port, 5433);
    ck_assert_str_eq(a->ca_roots_path, "/ca");
    ck_assert_ptr_ne(a->ca_roots_path, cfg.ca_roots_path); /* a deep copy */
    ck_assert_uint_eq(a->keepalive_s, 30);
    ck_assert_int_eq(a->auth_mode, AUTH_PASSWORD);
    ck_assert_str_eq(a->front_cert_path, "/f.crt");
    ck_assert_str_eq(a->back_cert_path, "/g.crt");
    ck_assert_ptr_null(a->routes);
    ck_assert_ptr_null(a->argv);
    ck_assert_str_eq(b->upstream_host, "db");
    ck_assert_str_eq(b->upstream_verify_name, "db");
    ck_assert_uint_eq(b->upstream_port, 5432);
    ck_assert_str_eq(b->ca_roots_path, "/ca-b");
    ck_assert_str_eq(b->front_cert_path, "/b.crt");
    ck_assert_str_eq(b->front_key_path, "/b.key");
    ck_assert_int_eq(b->auth_mode, AUTH_PASSTHROUGH);
    /* The globals are untouched by the sections. */
    ck_assert_str_eq(cfg.upstream_host, "db");
    ck_assert_int_eq(cfg.auth_mode, AUTH_PASSTHROUGH);
    ck_assert_str_eq(cfg.ca_roots_path, "/ca");
}
END_TEST

START_TEST(test_route_flags_reach_routes)
{
    /* A flag for a per-route option changes the globals every route copies. */
    const char *text = BASE "[route a]\nsni = a\n";
    ck_assert_int_eq(parse(ARGS("--client-connect-timeout", "3"), NULL, text), CONFIG_OK);
    ck_assert_uint_eq(route("a")->cfg->connect_timeout_s, 3);
}
END_TEST

START_TEST(test_verify_name_inheritance)
{
    const char *text = BASE "client-tls-validation-host = v.global\n"
                            "[route same]\nsni = s\n"
                            "[route own]\nsni = o\nclient-connection-host-or-ip = own.db\n"
                            "[route named]\nsni = n\nclient-tls-validation-host = PROJ:INST\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_OK);
    ck_assert_str_eq(cfg.upstream_verify_name, "v.global");
    ck_assert_str_eq(route("same")->cfg->upstream_verify_name, "v.global");
    ck_assert_str_eq(route("own")->cfg->upstream_verify_name, "own.db");
    ck_assert_str_eq(route("named")->cfg->upstream_verify_name, "PROJ:INST");
}
END_TEST

START_TEST(test_no_default_route)
{
    const char *text = FRONT "client-ca-roots-path = /ca\n"
                             "[route a]\nsni = a\nclient-connection-host-or-ip = a.db\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_OK);
    ck_assert(!cfg.has_default);
    ck_assert_ptr_null(cfg.upstream_host);
    ck_assert_ptr_null(cfg.upstream_verify_name);
    ck_assert_uint_eq(cfg.nroutes, 1);
    ck_assert_str_eq(cfg.routes[0].cfg->upstream_host, "a.db");
}
END_TEST

/* client-bridge is a route's; bridge-listen and bridges-file are the process's. */
START_TEST(test_route_bridge)
{
    const char *text = BASE "bridge-listen = 127.0.0.1:7432\nbridges-file = /b\n"
                            "[route priv]\nsni = p\nclient-bridge = vpc-1\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_OK);
    ck_assert_ptr_null(cfg.client_bridge);
    ck_assert_str_eq(route("priv")->cfg->client_bridge, "vpc-1");
    config_free(&cfg);
    text = BASE "[route priv]\nsni = p\nclient-bridge = vpc-1\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_ERROR);
    ck_assert_str_eq(err, "[route priv]: --client-bridge vpc-1 needs --bridge-listen HOST:PORT "
                          "(where its connectors dial in) and --bridges-file");
    text = BASE "[route priv]\nsni = p\nbridge-listen = 127.0.0.1:7432\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_ERROR);
}
END_TEST

START_TEST(test_route_only_keys)
{
    const char *text = BASE "[route a.b_c-1]\n"
                            "sni = A.Example.COM ,  *.Example.org\n"
                            "databases = app, Reporting\n"
                            "listen-port = 6433\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_OK);
    const struct route_conf *r = route("a.b_c-1");
    ck_assert_uint_eq(r->nsni, 2);
    ck_assert_str_eq(r->sni[0], "a.example.com");
    ck_assert_str_eq(r->sni[1], "*.example.org");
    ck_assert_uint_eq(r->ndatabases, 2);
    ck_assert_str_eq(r->databases[0], "app");
    ck_assert_str_eq(r->databases[1], "Reporting"); /* database names keep their case */
    ck_assert_uint_eq(r->listen_port, 6433);
}
END_TEST

START_TEST(test_scram_file_not_inherited_by_other_modes)
{
    const char *text = BASE "auth-mode = scram\nauth-file = /users.txt\n"
                            "[route pw]\nsni = p\nauth-mode = password\n"
                            "[route sc]\nsni = s\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_OK);
    ck_assert_ptr_null(route("pw")->cfg->auth_file);
    ck_assert_str_eq(route("sc")->cfg->auth_file, "/users.txt");
}
END_TEST

static const struct {
    const char *word;
    bool value;
} bools[] = {{"true", true},   {"yes", true}, {"on", true},   {"1", true},  {"TRUE", true},
             {"false", false}, {"no", false}, {"off", false}, {"0", false}, {"Off", false}};

START_TEST(test_booleans)
{
    char text[512];
    snprintf(text, sizeof(text),
             BASE "client-direct-tls = %s\n[route a]\nsni = a\n"
                  "client-direct-tls = %s\n",
             bools[_i].word, bools[_i].word);
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_OK);
    ck_assert(cfg.back_direct_tls == bools[_i].value);
    ck_assert(cfg.routes[0].cfg->back_direct_tls == bools[_i].value);
}
END_TEST

START_TEST(test_comments_and_layout)
{
    const char *text = "\xEF\xBB\xBF; a comment\r\n"
                       "# another\r\n"
                       "\r\n"
                       "   server-certificate-path = /f.crt ; inline\r\n"
                       "\tserver-private-key-path=/f.key\r\n"
                       "client-connection-host-or-ip: db\r\n"
                       "client-ca-roots-path = /path;with;semicolons\r\n"
                       "  [ global ]  ; comment after a header\r\n"
                       "server-port = 6000 # not a comment: fails as a port\r\n";
    ck_assert_int_eq(parse(NOARGS, NULL, text), CONFIG_ERROR);
    ck_assert_str_eq(err, "pg.conf:9: server-port: \"6000 # not a comment: fails as a port\" is "
                          "not a port number (1-65535)");
    /* Without that last line: all of it read. */
    size_t len = (size_t)(strstr(text, "server-port") - text);
    ck_assert_int_eq(parse_n(NOARGS, NULL, text, len), CONFIG_OK);
    ck_assert_str_eq(cfg.front_cert_path, "/f.crt");
    ck_assert_str_eq(cfg.front_key_path, "/f.key");
    ck_assert_str_eq(cfg.upstream_host, "db");
    ck_assert_str_eq(cfg.ca_roots_path, "/path;with;semicolons");
}
END_TEST

/* An indented line is never the continuation of the value above it. */
START_TEST(test_no_continuation_lines)
{
    ck_assert_int_eq(parse(NOARGS, NULL, BASE "server-host = 127.0.0.1\n    ::1\n"), CONFIG_ERROR);
    ck_assert_str_eq(err, "pg.conf:6: expected \"key = value\", a [section] or a comment (; or #)");
}
END_TEST

START_TEST(test_empty_file)
{
    ck_assert_int_eq(
        parse(ARGS("--server-certificate-path", "/f", "--server-private-key-path", "/k",
                   "--client-connection-host-or-ip", "h", "--client-ca-roots-path", "/ca"),
              NULL, ""),
        CONFIG_OK);
    ck_assert_uint_eq(cfg.nroutes, 0);
    ck_assert(cfg.has_default);
}
END_TEST

/* ---- reload from the file on disk ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_reload_file)
{
    char path[] = "/tmp/pgtp-conffile-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, BASE "[route a]\nsni = a\n");
    int argc;
    char **argv = dup_list(ARGS("--config", path, "--server-port", "7000"), &argc);
    char **envp = dup_list(ENV("HOME=/x", "PG_TLS_PROXY_CLIENT_CONNECT_TIMEOUT=4"), NULL);
    ck_assert_int_eq(config_parse(&cfg, argc, argv, envp, NULL, err, sizeof(err)), CONFIG_OK);
    free_list(argv);
    free_list(envp);
    ck_assert_str_eq(cfg.config_path, path);
    ck_assert_str_eq(cfg.envp[0], "PG_TLS_PROXY_CLIENT_CONNECT_TIMEOUT=4"); /* only ours kept */
    ck_assert_ptr_null(cfg.envp[1]);

    struct config next;
    write_file(path, BASE "workers = 3\n[route b]\nsni = b\nclient-connection-port = 5439\n");
    ck_assert_int_eq(config_reload_file(&cfg, &next, err, sizeof(err)), 0);
    ck_assert_uint_eq(next.listen_port, 7000);    /* the flag, again */
    ck_assert_uint_eq(next.connect_timeout_s, 4); /* the environment, again */
    ck_assert_uint_eq(next.nroutes, 1);
    ck_assert_str_eq(next.routes[0].name, "b");
    ck_assert_uint_eq(next.routes[0].cfg->upstream_port, 5439);
    ck_assert_uint_eq(next.routes[0].cfg->connect_timeout_s, 4);
    char changed[128];
    ck_assert_uint_eq(config_process_wide_changes(&cfg, &next, changed, sizeof(changed)), 1);
    ck_assert_str_eq(changed, "workers");
    config_free(&next);

    write_file(path, BASE "[route b]\nsni = b\nworkers = 2\n");
    ck_assert_int_eq(config_reload_file(&cfg, &next, err, sizeof(err)), -1);
    char want[256];
    snprintf(want, sizeof(want),
             "%s:7: workers is process-wide: set it in the globals (before the first section, "
             "or in [global]), not in [route b]",
             path);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(next.routes);
    ck_assert_uint_eq(cfg.nroutes, 1); /* the running one is untouched */
    ck_assert_str_eq(cfg.routes[0].name, "a");
    unlink(path);
}
END_TEST

START_TEST(test_per_route_marks)
{
    /* What a route may set: its upstream, trust and who may reach it. */
    static const char *const route_opts[] = {"client-connection-host-or-ip",
                                             "client-ca-roots-path",
                                             "server-certificate-path",
                                             "auth-mode",
                                             "server-allow-from",
                                             "client-direct-tls"};
    static const char *const process_opts[] = {
        "workers",         "log",    "admin-address", "server-port",
        "max-connections", "config", "idle-timeout"};
    for (size_t i = 0; i < sizeof(route_opts) / sizeof(route_opts[0]); i++)
        ck_assert_msg(opt_find_long(route_opts[i], strlen(route_opts[i]))->per_route, "%s",
                      route_opts[i]);
    for (size_t i = 0; i < sizeof(process_opts) / sizeof(process_opts[0]); i++)
        ck_assert_msg(!opt_find_long(process_opts[i], strlen(process_opts[i]))->per_route, "%s",
                      process_opts[i]);
}
END_TEST

/* [peers] read into cfg.peers, in file order; its own id may be listed. */
START_TEST(test_peers_section)
{
    ck_assert_int_eq(parse(NOARGS, NULL,
                           BASE PEERING "[peers]\n1 = a.internal:5432\n  3 = [::1]:6432 ; v6\n"
                                        "2=127.0.0.1:6433\n"),
                     CONFIG_OK);
    ck_assert_uint_eq(cfg.peer_id, 1);
    ck_assert_str_eq(cfg.peer_secret_file, "/s");
    ck_assert_uint_eq(cfg.npeers, 3);
    ck_assert_uint_eq(cfg.peers[0].id, 1);
    ck_assert_str_eq(cfg.peers[0].host, "a.internal");
    ck_assert_uint_eq(cfg.peers[0].port, 5432);
    ck_assert_uint_eq(cfg.peers[1].id, 3);
    ck_assert_str_eq(cfg.peers[1].host, "::1");
    ck_assert_uint_eq(cfg.peers[1].port, 6432);
    ck_assert_uint_eq(cfg.peers[2].id, 2);
    ck_assert_str_eq(cfg.peers[2].host, "127.0.0.1");
    /* routes do not carry the list (only the global config frees it) */
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS("--peer-id", "3"), NULL,
                           BASE "peer-secret-file = /s\npeer-ca-path = /ca\n[route r]\nsni = "
                                "r.example\n[peers]\n1 = a:1\n"),
                     CONFIG_OK);
    ck_assert_uint_eq(cfg.peer_id, 3); /* the flag */
    ck_assert_ptr_null(cfg.routes[0].cfg->peers);
    ck_assert_uint_eq(cfg.routes[0].cfg->npeers, 0);
    /* a changed list is a restart-needed change */
    struct config first = cfg;
    char changed[128];
    memset(&cfg, 0, sizeof(cfg));
    ck_assert_int_eq(parse(ARGS("--peer-id", "3"), NULL,
                           BASE "peer-secret-file = /s\npeer-ca-path = /ca\n[route r]\nsni = "
                                "r.example\n[peers]\n1 = a:2\n"),
                     CONFIG_OK);
    ck_assert_uint_eq(config_process_wide_changes(&first, &cfg, changed, sizeof(changed)), 1);
    ck_assert_str_eq(changed, "peers");
    config_free(&first);
}
END_TEST

Suite *conffile_suite(void)
{
    Suite *s = suite_create("conffile");
    TCase *tc = tcase_create("conffile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_errors, 0, (int)(sizeof(errors) / sizeof(errors[0])));
    tcase_add_test(tc, test_long_line_and_nul);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_overridden_bad_value);
    tcase_add_test(tc, test_route_inheritance);
    tcase_add_test(tc, test_route_flags_reach_routes);
    tcase_add_test(tc, test_verify_name_inheritance);
    tcase_add_test(tc, test_no_default_route);
    tcase_add_test(tc, test_route_only_keys);
    tcase_add_test(tc, test_scram_file_not_inherited_by_other_modes);
    tcase_add_loop_test(tc, test_booleans, 0, (int)(sizeof(bools) / sizeof(bools[0])));
    tcase_add_test(tc, test_comments_and_layout);
    tcase_add_test(tc, test_no_continuation_lines);
    tcase_add_test(tc, test_empty_file);
    tcase_add_test(tc, test_reload_file);
    tcase_add_test(tc, test_per_route_marks);
    tcase_add_test(tc, test_peers_section);
    tcase_add_test(tc, test_route_bridge);
    suite_add_tcase(s, tc);
    return s;
}
