/*
 * test_config.c - config_parse/config_usage: defaults, flags, environment,
 * precedence and the exact error messages users see.
 *
 * argv and envp are built from heap copies that are freed right after
 * config_parse returns, so any string the config borrowed instead of copying
 * shows up as a use-after-free under ASan.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "options.h"
#include "log.h"
#include "suites.h"

#ifndef PGTP_VERSION
#define PGTP_VERSION "unknown"
#endif

#define MAXV 40

/* NULL-terminated lists of string literals. ARGS adds argv[0]. */
#define ARGS(...) ((const char *const[]){"pg-tls-proxy", __VA_ARGS__, NULL})
#define NOARGS ((const char *const[]){"pg-tls-proxy", NULL})
#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The four required options, as flags and as environment. */
#define REQ_FLAGS                                                                                  \
    "--server-certificate-path", "/c/front.crt", "--server-private-key-path", "/c/front.key",      \
        "--client-connection-host-or-ip", "db.internal", "--client-ca-roots-path", "/c/ca.pem"
#define REQ_ENV                                                                                    \
    "PG_TLS_PROXY_SERVER_CERTIFICATE_PATH=/e/front.crt",                                           \
        "PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH=/e/front.key",                                       \
        "PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP=db.env",                                        \
        "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH=/e/ca"

static struct config cfg;
static char err[512];
static char *out_buf;
static size_t out_len;

static char **dup_list(const char *const *src, int *count)
{
    char **dst = calloc(MAXV + 1, sizeof(*dst));
    ck_assert_ptr_nonnull(dst);
    int n = 0;
    for (; src != NULL && src[n] != NULL; n++) {
        ck_assert_int_lt(n, MAXV);
        dst[n] = strdup(src[n]);
        ck_assert_ptr_nonnull(dst[n]);
    }
    if (count != NULL)
        *count = n;
    return dst;
}

static void free_list(char **list)
{
    for (int i = 0; list[i] != NULL; i++) {
        memset(list[i], 'X', strlen(list[i])); /* make borrowed strings obviously wrong */
        free(list[i]);
    }
    free(list);
}

/* Run config_parse; its --help/--version output lands in out_buf. envp may
 * be NULL (no environment). */
static enum config_result parse(const char *const *args, const char *const *env)
{
    int argc;
    char **argv = dup_list(args, &argc);
    char **envp = env != NULL ? dup_list(env, NULL) : NULL;
    free(out_buf);
    out_buf = NULL;
    FILE *out = open_memstream(&out_buf, &out_len);
    ck_assert_ptr_nonnull(out);
    memset(err, 0, sizeof(err));
    enum config_result r = config_parse(&cfg, argc, argv, envp, out, err, sizeof(err));
    fclose(out);
    free_list(argv);
    if (envp != NULL)
        free_list(envp);
    return r;
}

static void setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    out_buf = NULL;
    out_len = 0;
}

static void teardown(void)
{
    config_free(&cfg);
    free(out_buf);
    out_buf = NULL;
}

static void assert_error(enum config_result r, const char *want)
{
    ck_assert_int_eq(r, CONFIG_ERROR);
    ck_assert_str_eq(err, want);
    /* Nothing is left allocated after an error. */
    ck_assert_ptr_null(cfg.front_cert_path);
    ck_assert_ptr_null(cfg.upstream_verify_name);
}

START_TEST(test_defaults)
{
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), NULL), CONFIG_OK);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(cfg.front_cert_path, "/c/front.crt");
    ck_assert_str_eq(cfg.front_key_path, "/c/front.key");
    ck_assert_ptr_null(cfg.listen_host);
    ck_assert_uint_eq(cfg.listen_port, 5432);
    ck_assert_str_eq(cfg.upstream_host, "db.internal");
    ck_assert_uint_eq(cfg.upstream_port, 5432);
    ck_assert_str_eq(cfg.upstream_verify_name, "db.internal");
    ck_assert_ptr_ne(cfg.upstream_verify_name, cfg.upstream_host); /* own copy */
    ck_assert_str_eq(cfg.ca_roots_path, "/c/ca.pem");
    ck_assert_int_eq(cfg.log_level, LOG_INFO);
    ck_assert(!cfg.check_only);
    ck_assert_uint_eq(out_len, 0);
}
END_TEST

START_TEST(test_all_flags)
{
    ck_assert_int_eq(
        parse(ARGS("--server-certificate-path", "a.crt", "--server-private-key-path", "a.key",
                   "--server-host", "::1", "--server-port", "6432",
                   "--client-connection-host-or-ip", "10.0.0.7", "--client-connection-port", "5433",
                   "--client-tls-validation-host", "db.example.com", "--client-ca-roots-path",
                   "/etc/ca.d", "-l", "debug", "--check"),
              NULL),
        CONFIG_OK);
    ck_assert_str_eq(cfg.front_cert_path, "a.crt");
    ck_assert_str_eq(cfg.front_key_path, "a.key");
    ck_assert_str_eq(cfg.listen_host, "::1");
    ck_assert_uint_eq(cfg.listen_port, 6432);
    ck_assert_str_eq(cfg.upstream_host, "10.0.0.7");
    ck_assert_uint_eq(cfg.upstream_port, 5433);
    ck_assert_str_eq(cfg.upstream_verify_name, "db.example.com");
    ck_assert_str_eq(cfg.ca_roots_path, "/etc/ca.d");
    ck_assert_int_eq(cfg.log_level, LOG_DEBUG);
    ck_assert(cfg.check_only);
}
END_TEST

START_TEST(test_equals_form)
{
    ck_assert_int_eq(
        parse(ARGS("--server-certificate-path=a.crt", "--server-private-key-path=a.key",
                   "--server-host=127.0.0.1", "--server-port=1", "--client-connection-host-or-ip=h",
                   "--client-connection-port=65535", "--client-tls-validation-host=n",
                   "--client-ca-roots-path=ca", "--log=ERROR"),
              NULL),
        CONFIG_OK);
    ck_assert_str_eq(cfg.front_cert_path, "a.crt");
    ck_assert_str_eq(cfg.front_key_path, "a.key");
    ck_assert_str_eq(cfg.listen_host, "127.0.0.1");
    ck_assert_uint_eq(cfg.listen_port, 1);
    ck_assert_str_eq(cfg.upstream_host, "h");
    ck_assert_uint_eq(cfg.upstream_port, 65535);
    ck_assert_str_eq(cfg.upstream_verify_name, "n");
    ck_assert_str_eq(cfg.ca_roots_path, "ca");
    ck_assert_int_eq(cfg.log_level, LOG_ERROR);
    config_free(&cfg);

    /* A value may itself contain '=' and may start with "--" in this form. */
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--server-host=a=b", "-lwarn"), NULL), CONFIG_OK);
    ck_assert_str_eq(cfg.listen_host, "a=b");
    ck_assert_int_eq(cfg.log_level, LOG_WARN);
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--server-certificate-path=--odd"), NULL), CONFIG_OK);
    ck_assert_str_eq(cfg.front_cert_path, "--odd");
}
END_TEST

START_TEST(test_env_only)
{
    ck_assert_int_eq(parse(NOARGS, ENV("HOME=/root", REQ_ENV, "PG_TLS_PROXY_SERVER_HOST=0.0.0.0",
                                       "PG_TLS_PROXY_SERVER_PORT=7000",
                                       "PG_TLS_PROXY_CLIENT_CONNECTION_PORT=7001",
                                       "PG_TLS_PROXY_CLIENT_TLS_VALIDATION_HOST=name.env",
                                       "PG_TLS_PROXY_LOG=Warn", "PG_TLS_PROXY_CHECK=yes")),
                     CONFIG_OK);
    ck_assert_str_eq(cfg.front_cert_path, "/e/front.crt");
    ck_assert_str_eq(cfg.front_key_path, "/e/front.key");
    ck_assert_str_eq(cfg.listen_host, "0.0.0.0");
    ck_assert_uint_eq(cfg.listen_port, 7000);
    ck_assert_str_eq(cfg.upstream_host, "db.env");
    ck_assert_uint_eq(cfg.upstream_port, 7001);
    ck_assert_str_eq(cfg.upstream_verify_name, "name.env");
    ck_assert_str_eq(cfg.ca_roots_path, "/e/ca");
    ck_assert_int_eq(cfg.log_level, LOG_WARN);
    ck_assert(cfg.check_only);
}
END_TEST

START_TEST(test_env_lookalikes_ignored)
{
    /* A lower-case name is not ours (environment names are case-sensitive);
     * an empty variable counts as unset. */
    ck_assert_int_eq(parse(NOARGS, ENV(REQ_ENV, "pg_tls_proxy_server_port=2",
                                       "PG_TLS_PROXY_SERVER_HOST=", "PG_TLS_PROXY_LOG=")),
                     CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 5432);
    ck_assert_ptr_null(cfg.listen_host);
    ck_assert_int_eq(cfg.log_level, LOG_INFO);
}
END_TEST

START_TEST(test_env_unknown_refused)
{
    /* Issue 11 item 17: a typo used to be ignored and the default used. */
    assert_error(parse(NOARGS, ENV(REQ_ENV, "PG_TLS_PROXY_SERVER_PORTT=6432")),
                 "unknown environment variable PG_TLS_PROXY_SERVER_PORTT (did you mean "
                 "PG_TLS_PROXY_SERVER_PORT?)");
    assert_error(parse(NOARGS, ENV(REQ_ENV, "PG_TLS_PROXY_SERVER_PORTX=1")),
                 "unknown environment variable PG_TLS_PROXY_SERVER_PORTX (did you mean "
                 "PG_TLS_PROXY_SERVER_PORT?)");
    assert_error(parse(NOARGS, ENV(REQ_ENV, "PG_TLS_PROXY_ADMIN_ADRESS=9187")),
                 "unknown environment variable PG_TLS_PROXY_ADMIN_ADRESS (did you mean "
                 "PG_TLS_PROXY_ADMIN_ADDRESS?)");
    /* Even empty: it is still a mistake in the deployment. */
    assert_error(parse(NOARGS, ENV(REQ_ENV, "PG_TLS_PROXY_LOG_LEVEL=")),
                 "unknown environment variable PG_TLS_PROXY_LOG_LEVEL (did you mean "
                 "PG_TLS_PROXY_LOG?)");
    /* Far from every option: no guess. */
    assert_error(parse(NOARGS, ENV(REQ_ENV, "PG_TLS_PROXY_SOMETHING_ELSE_ENTIRELY=1")),
                 "unknown environment variable PG_TLS_PROXY_SOMETHING_ELSE_ENTIRELY (see --help "
                 "for the variables)");
    /* --help and --version have no variable. */
    assert_error(parse(NOARGS, ENV(REQ_ENV, "PG_TLS_PROXY_HELP=1")),
                 "unknown environment variable PG_TLS_PROXY_HELP (see --help for the "
                 "variables)");
    /* Every real variable is accepted, the ones the Dockerfile's HEALTHCHECK
     * and the README's docker run use included. */
    ck_assert_int_eq(parse(NOARGS, ENV(REQ_ENV, "PG_TLS_PROXY_ADMIN_ADDRESS=9187",
                                       "PG_TLS_PROXY_CHECK=0", "PG_TLS_PROXY_LOG_FORMAT=json")),
                     CONFIG_OK);
}
END_TEST

START_TEST(test_log_json_early)
{
    char a0[] = "pg-tls-proxy", a1[] = "--log-format", a2[] = "json", a3[] = "--log-format=text";
    char e1[] = "PG_TLS_PROXY_LOG_FORMAT=JSON", e2[] = "PG_TLS_PROXY_LOG_FORMAT=text";
    char *argv_flag[] = {a0, a1, a2, NULL};
    char *argv_both[] = {a0, a1, a2, a3, NULL};
    char *argv_none[] = {a0, NULL};
    char *env_json[] = {e1, NULL};
    char *env_text[] = {e2, NULL};
    ck_assert(config_log_json_early(3, argv_flag, NULL));
    ck_assert(!config_log_json_early(4, argv_both, NULL)); /* the last flag wins */
    ck_assert(config_log_json_early(1, argv_none, env_json));
    ck_assert(!config_log_json_early(1, argv_none, env_text));
    ck_assert(config_log_json_early(3, argv_flag, env_text)); /* a flag beats the variable */
    ck_assert(!config_log_json_early(1, argv_none, NULL));
}
END_TEST

START_TEST(test_flag_overrides_env)
{
    ck_assert_int_eq(parse(ARGS("--server-port", "2222", "--client-connection-host-or-ip",
                                "db.flag", "-l", "error"),
                           ENV(REQ_ENV, "PG_TLS_PROXY_SERVER_PORT=1111", "PG_TLS_PROXY_LOG=debug")),
                     CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 2222);
    ck_assert_str_eq(cfg.upstream_host, "db.flag");
    ck_assert_str_eq(cfg.upstream_verify_name, "db.flag");
    ck_assert_str_eq(cfg.ca_roots_path, "/e/ca");
    ck_assert_int_eq(cfg.log_level, LOG_ERROR);
    config_free(&cfg);

    /* Only the winning value is validated: a bad variable under a flag is fine. */
    ck_assert_int_eq(parse(ARGS("--server-port", "5000", "--log", "info"),
                           ENV(REQ_ENV, "PG_TLS_PROXY_SERVER_PORT=junk", "PG_TLS_PROXY_LOG=loud")),
                     CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 5000);
}
END_TEST

START_TEST(test_repeated_flag_last_wins)
{
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--server-port", "1", "--server-port=2"), NULL),
                     CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 2);
}
END_TEST

static const struct {
    const char *flag;
    const char *env;
} required[] = {
    {"--server-certificate-path", "PG_TLS_PROXY_SERVER_CERTIFICATE_PATH"},
    {"--server-private-key-path", "PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH"},
    {"--client-connection-host-or-ip", "PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP"},
    {"--client-ca-roots-path", "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH"},
};

/* Loop test: required[_i] is given neither as flag nor as variable. */
START_TEST(test_required_missing)
{
    const char *args[MAXV] = {"pg-tls-proxy"};
    int n = 1;
    for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++) {
        if ((int)k == _i)
            continue;
        args[n++] = required[k].flag;
        args[n++] = "x";
    }
    args[n] = NULL;
    char want[256];
    snprintf(want, sizeof(want), "missing required option %s (or %s)", required[_i].flag,
             required[_i].env);
    assert_error(parse(args, NULL), want);

    /* Empty values count as missing, from a variable... */
    char empty_env[128];
    snprintf(empty_env, sizeof(empty_env), "%s=", required[_i].env);
    assert_error(parse(args, ENV(empty_env)), want);

    /* ...and from a flag, which is reported at the flag. */
    char eq_empty[128], want_value[128];
    snprintf(eq_empty, sizeof(eq_empty), "%s=", required[_i].flag);
    snprintf(want_value, sizeof(want_value), "%s needs a value", required[_i].flag);
    args[n] = eq_empty;
    args[n + 1] = NULL;
    assert_error(parse(args, NULL), want_value);
}
END_TEST

START_TEST(test_required_all_missing)
{
    assert_error(parse(NOARGS, ENV("PATH=/bin")),
                 "missing required option --server-certificate-path (or "
                 "PG_TLS_PROXY_SERVER_CERTIFICATE_PATH); also missing --server-private-key-path, "
                 "--client-connection-host-or-ip, --client-ca-roots-path");
}
END_TEST

START_TEST(test_small_err_buffer)
{
    int argc;
    char **argv = dup_list(NOARGS, &argc);
    char small[16];
    memset(small, 'Z', sizeof(small));
    ck_assert_int_eq(config_parse(&cfg, argc, argv, NULL, stdout, small, sizeof(small)),
                     CONFIG_ERROR);
    ck_assert_str_eq(small, "missing require");
    ck_assert_int_eq(config_parse(&cfg, argc, argv, NULL, stdout, NULL, 0), CONFIG_ERROR);
    free_list(argv);
}
END_TEST

static const char *const bad_ports[] = {"0",  "65536", "12a",  "-1",  " 5",
                                        "5 ", "+5",    "0x10", "1e3", "99999999999999999999"};

/* Loop test over bad_ports, once as flag and once as variable. */
START_TEST(test_bad_port)
{
    const char *v = bad_ports[_i];
    char want[256];

    snprintf(want, sizeof(want), "--server-port: \"%s\" is not a port number (1-65535)", v);
    assert_error(parse(ARGS(REQ_FLAGS, "--server-port", v), NULL), want);

    char env[128];
    snprintf(env, sizeof(env), "PG_TLS_PROXY_CLIENT_CONNECTION_PORT=%s", v);
    snprintf(want, sizeof(want),
             "PG_TLS_PROXY_CLIENT_CONNECTION_PORT (--client-connection-port): \"%s\" is not a port "
             "number (1-65535)",
             v);
    assert_error(parse(ARGS(REQ_FLAGS), ENV(env)), want);
}
END_TEST

START_TEST(test_port_edge_cases)
{
    assert_error(parse(ARGS(REQ_FLAGS, "--server-port", "54x2"), NULL),
                 "--server-port: \"54x2\" is not a port number (1-65535)");
    /* Empty: a flag without its value, a variable that counts as unset. */
    assert_error(parse(ARGS(REQ_FLAGS, "--server-port", ""), NULL), "--server-port needs a value");
    assert_error(parse(ARGS(REQ_FLAGS, "--client-connection-port="), NULL),
                 "--client-connection-port needs a value");
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV("PG_TLS_PROXY_SERVER_PORT=")), CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 5432);
    config_free(&cfg);
    /* A bad value is reported before missing options. */
    assert_error(parse(ARGS("--server-port", "54x2"), NULL),
                 "--server-port: \"54x2\" is not a port number (1-65535)");
    /* Leading zeros are still decimal digits. */
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--server-port", "00080"), NULL), CONFIG_OK);
    ck_assert_uint_eq(cfg.listen_port, 80);
}
END_TEST

START_TEST(test_bad_log_level)
{
    assert_error(parse(ARGS(REQ_FLAGS, "--log", "loud"), NULL),
                 "--log: \"loud\" is not a log level (debug, info, warn, error)");
    assert_error(parse(ARGS(REQ_FLAGS, "-l", "trace"), NULL),
                 "--log: \"trace\" is not a log level (debug, info, warn, error)");
    assert_error(parse(ARGS(REQ_FLAGS), ENV("PG_TLS_PROXY_LOG=verbose")),
                 "PG_TLS_PROXY_LOG (--log): \"verbose\" is not a log level (debug, info, warn, "
                 "error)");
}
END_TEST

START_TEST(test_unknown_option)
{
    assert_error(parse(ARGS(REQ_FLAGS, "--foo"), NULL), "unknown option \"--foo\" (see --help)");
    assert_error(parse(ARGS("--foo=bar", REQ_FLAGS), NULL),
                 "unknown option \"--foo\" (see --help)");
    assert_error(parse(ARGS(REQ_FLAGS, "-x"), NULL), "unknown option \"-x\" (see --help)");
    /* No getopt-style abbreviations. */
    assert_error(parse(ARGS(REQ_FLAGS, "--server-po", "1"), NULL),
                 "unknown option \"--server-po\" (did you mean --server-port?)");
    assert_error(parse(ARGS(REQ_FLAGS, "--server-portt", "1"), NULL),
                 "unknown option \"--server-portt\" (did you mean --server-port?)");
    assert_error(parse(ARGS(REQ_FLAGS, "--admin-adress=1"), NULL),
                 "unknown option \"--admin-adress\" (did you mean --admin-address?)");
    /* No bundled short flags. */
    assert_error(parse(ARGS(REQ_FLAGS, "-hV"), NULL), "unknown option \"-hV\" (see --help)");
    assert_error(parse(ARGS(REQ_FLAGS, "stray"), NULL),
                 "unexpected argument \"stray\" (see --help)");
    assert_error(parse(ARGS(REQ_FLAGS, "-"), NULL), "unexpected argument \"-\" (see --help)");
    assert_error(parse(ARGS(REQ_FLAGS, "--", "stray"), NULL),
                 "unexpected argument \"stray\" (see --help)");
    /* A bare "--" at the end is allowed. */
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--"), NULL), CONFIG_OK);
}
END_TEST

START_TEST(test_missing_value)
{
    assert_error(parse(ARGS(REQ_FLAGS, "--server-port"), NULL), "--server-port needs a value");
    /* The next flag is not swallowed as a value. */
    assert_error(parse(ARGS("--server-certificate-path", "--server-private-key-path", "k"), NULL),
                 "--server-certificate-path needs a value");
    assert_error(parse(ARGS(REQ_FLAGS, "-l"), NULL), "-l needs a value");
    assert_error(parse(ARGS(REQ_FLAGS, "--log="), NULL), "--log needs a value");
    assert_error(parse(ARGS(REQ_FLAGS, "--check=yes"), NULL), "--check does not take a value");
    assert_error(parse(ARGS(REQ_FLAGS, "--help=1"), NULL), "--help does not take a value");
}
END_TEST

START_TEST(test_help)
{
    /* --help wins over missing options and a broken environment. */
    ck_assert_int_eq(parse(ARGS("--help"), ENV("PG_TLS_PROXY_SERVER_PORT=bad")), CONFIG_EXIT);
    ck_assert_str_eq(err, "");
    ck_assert_ptr_nonnull(strstr(out_buf, "Usage: pg-tls-proxy"));
    ck_assert_ptr_nonnull(strstr(out_buf, "pg-tls-proxy(1)"));
    ck_assert_ptr_nonnull(strstr(out_buf, "Exit status"));
    ck_assert_ptr_nonnull(strstr(out_buf, "Default: 5432"));
    char *first = strdup(out_buf);
    ck_assert_ptr_nonnull(first);

    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "-h"), NULL), CONFIG_EXIT);
    ck_assert_str_eq(out_buf, first);
    ck_assert_ptr_null(cfg.front_cert_path);

    /* config_usage prints the same text. */
    char *direct = NULL;
    size_t direct_len = 0;
    FILE *f = open_memstream(&direct, &direct_len);
    ck_assert_ptr_nonnull(f);
    config_usage(f);
    fclose(f);
    ck_assert_str_eq(direct, first);
    free(direct);
    free(first);
}
END_TEST

START_TEST(test_version)
{
    ck_assert_int_eq(parse(ARGS("--version"), NULL), CONFIG_EXIT);
    ck_assert_str_eq(out_buf, "pg-tls-proxy " PGTP_VERSION "\n");
    ck_assert_int_eq(parse(ARGS("-V"), NULL), CONFIG_EXIT);
    ck_assert_str_eq(out_buf, "pg-tls-proxy " PGTP_VERSION "\n");
    /* Errors before it on the command line are still errors. */
    assert_error(parse(ARGS("--nope", "--version"), NULL),
                 "unknown option \"--nope\" (see --help)");
}
END_TEST

/* Written out by hand, not taken from the table, so a dropped line in
 * --help fails here. */
static const char *const help_must_mention[] = {
    "--server-certificate-path",
    "PG_TLS_PROXY_SERVER_CERTIFICATE_PATH",
    "--server-private-key-path",
    "PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH",
    "--server-host",
    "PG_TLS_PROXY_SERVER_HOST",
    "--server-port",
    "PG_TLS_PROXY_SERVER_PORT",
    "--client-connection-host-or-ip",
    "PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP",
    "--client-connection-port",
    "PG_TLS_PROXY_CLIENT_CONNECTION_PORT",
    "--client-tls-validation-host",
    "PG_TLS_PROXY_CLIENT_TLS_VALIDATION_HOST",
    "--client-ca-roots-path",
    "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH",
    "-l, --log LEVEL",
    "PG_TLS_PROXY_LOG",
    "--check",
    "PG_TLS_PROXY_CHECK",
    "-h, --help",
    "-V, --version",
};

START_TEST(test_help_mentions_everything)
{
    ck_assert_int_eq(parse(ARGS("--help"), NULL), CONFIG_EXIT);
    for (size_t i = 0; i < sizeof(help_must_mention) / sizeof(help_must_mention[0]); i++) {
        if (strstr(out_buf, help_must_mention[i]) == NULL)
            ck_abort_msg("--help does not mention %s", help_must_mention[i]);
    }
    /* No line wider than 100 columns. */
    for (const char *p = out_buf; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_int_le(nl - p, 100);
        p = nl + 1;
    }
}
END_TEST

START_TEST(test_check_via_env)
{
    static const char *const on[] = {"1", "true", "YES", "On"};
    static const char *const off[] = {"0", "false", "no", "OFF"};
    char env[64];
    for (size_t i = 0; i < 4; i++) {
        snprintf(env, sizeof(env), "PG_TLS_PROXY_CHECK=%s", on[i]);
        ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV(env)), CONFIG_OK);
        ck_assert(cfg.check_only);
        config_free(&cfg);
        snprintf(env, sizeof(env), "PG_TLS_PROXY_CHECK=%s", off[i]);
        ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV(env)), CONFIG_OK);
        ck_assert(!cfg.check_only);
        config_free(&cfg);
    }
    /* The flag wins over an "off" variable. */
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--check"), ENV("PG_TLS_PROXY_CHECK=0")), CONFIG_OK);
    ck_assert(cfg.check_only);
    config_free(&cfg);
    assert_error(parse(ARGS(REQ_FLAGS), ENV("PG_TLS_PROXY_CHECK=maybe")),
                 "PG_TLS_PROXY_CHECK (--check): \"maybe\" is not a boolean (1, true, yes, on or 0, "
                 "false, no, off)");
}
END_TEST

START_TEST(test_workers)
{
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV(NULL)), CONFIG_OK);
    ck_assert_uint_eq(cfg.workers, 0); /* one per CPU */
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--workers", "4"), ENV("PG_TLS_PROXY_WORKERS=2")),
                     CONFIG_OK);
    ck_assert_uint_eq(cfg.workers, 4);
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV("PG_TLS_PROXY_WORKERS=3")), CONFIG_OK);
    ck_assert_uint_eq(cfg.workers, 3);
    config_free(&cfg);
    assert_error(parse(ARGS(REQ_FLAGS, "--workers", "257"), ENV(NULL)),
                 "--workers: \"257\" is not a worker count (0-256; 0 = one per CPU)");
    assert_error(parse(ARGS(REQ_FLAGS, "--workers=-1"), ENV(NULL)),
                 "--workers: \"-1\" is not a worker count (0-256; 0 = one per CPU)");
}
END_TEST

/* --write-stall-timeout: 60 s unless told; 0 turns it off. */
START_TEST(test_write_stall_timeout)
{
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV(NULL)), CONFIG_OK);
    ck_assert_uint_eq(cfg.write_stall_s, 60);
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--write-stall-timeout", "0"), ENV(NULL)), CONFIG_OK);
    ck_assert_uint_eq(cfg.write_stall_s, 0);
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV("PG_TLS_PROXY_WRITE_STALL_TIMEOUT=5")), CONFIG_OK);
    ck_assert_uint_eq(cfg.write_stall_s, 5);
    config_free(&cfg);
}
END_TEST

START_TEST(test_auth_mode)
{
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV(NULL)), CONFIG_OK);
    ck_assert_int_eq(cfg.auth_mode, AUTH_PASSTHROUGH);
    ck_assert_ptr_null(cfg.auth_file);
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--auth-mode", "PASSWORD"), ENV(NULL)), CONFIG_OK);
    ck_assert_int_eq(cfg.auth_mode, AUTH_PASSWORD);
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS),
                           ENV("PG_TLS_PROXY_AUTH_MODE=scram", "PG_TLS_PROXY_AUTH_FILE=/x/users")),
                     CONFIG_OK);
    ck_assert_int_eq(cfg.auth_mode, AUTH_SCRAM);
    ck_assert_str_eq(cfg.auth_file, "/x/users");
    config_free(&cfg);
    ck_assert_str_eq(auth_mode_name(AUTH_SCRAM), "scram");
    ck_assert_str_eq(auth_mode_name(42), "invalid");
    assert_error(parse(ARGS(REQ_FLAGS, "--auth-mode", "md5"), ENV(NULL)),
                 "--auth-mode: \"md5\" is not an auth mode (passthrough, password, scram)");
    assert_error(parse(ARGS(REQ_FLAGS, "--auth-mode", "scram"), ENV(NULL)),
                 "--auth-mode scram needs --auth-file (or PG_TLS_PROXY_AUTH_FILE): a userlist "
                 "of SCRAM verifiers; pg-tls-proxy scram-secret USER prints a line of it");
    assert_error(parse(ARGS(REQ_FLAGS, "--auth-file", "/x/users"), ENV(NULL)),
                 "--auth-file is read only with --auth-mode scram (the mode is passthrough)");
}
END_TEST

/* Bridge mode (issue 15): the listener needs its file, a route's bridge the listener. */
START_TEST(test_bridge_options)
{
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS, "--bridge-listen", "0.0.0.0:7432", "--bridges-file",
                                "/x/bridges", "--client-bridge", "db-1.prod"),
                           ENV(NULL)),
                     CONFIG_OK);
    ck_assert_str_eq(cfg.bridge_listen, "0.0.0.0:7432");
    ck_assert_str_eq(cfg.bridges_file, "/x/bridges");
    ck_assert_str_eq(cfg.client_bridge, "db-1.prod");
    ck_assert_ptr_null(cfg.bridge_cert_path);
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV("PG_TLS_PROXY_BRIDGE_LISTEN=[::]:7432",
                                                "PG_TLS_PROXY_BRIDGES_FILE=/x/b",
                                                "PG_TLS_PROXY_BRIDGE_CERTIFICATE_PATH=/x/c.pem",
                                                "PG_TLS_PROXY_BRIDGE_PRIVATE_KEY_PATH=/x/k.pem")),
                     CONFIG_OK);
    ck_assert_str_eq(cfg.bridge_cert_path, "/x/c.pem");
    config_free(&cfg);
    assert_error(parse(ARGS(REQ_FLAGS, "--client-bridge", "db1"), ENV(NULL)),
                 "--client-bridge db1 needs --bridge-listen HOST:PORT (where its connectors dial "
                 "in) and --bridges-file");
    assert_error(parse(ARGS(REQ_FLAGS, "--bridge-listen", "0.0.0.0:7432", "--bridges-file", "/x",
                            "--client-bridge", "db 1"),
                       ENV(NULL)),
                 "--client-bridge \"db 1\" is not a bridge id (1-63 of A-Z a-z 0-9 _ . -)");
    assert_error(parse(ARGS(REQ_FLAGS, "--bridge-listen", "0.0.0.0:7432"), ENV(NULL)),
                 "--bridge-listen needs --bridges-file: the bridge ids and the verifiers of their "
                 "secrets (pg-tls-proxy bridge-secret ID prints a line of it)");
    assert_error(
        parse(ARGS(REQ_FLAGS, "--bridge-listen", "7432", "--bridges-file", "/x"), ENV(NULL)),
        "--bridge-listen \"7432\" is not HOST:PORT (e.g. 0.0.0.0:7432 or [::]:7432)");
    assert_error(parse(ARGS(REQ_FLAGS, "--bridges-file", "/x"), ENV(NULL)),
                 "--bridges-file is read only with --bridge-listen");
    assert_error(parse(ARGS(REQ_FLAGS, "--bridge-listen", "0.0.0.0:7432", "--bridges-file", "/x",
                            "--bridge-certificate-path", "/c"),
                       ENV(NULL)),
                 "--bridge-certificate-path needs --bridge-private-key-path");
}
END_TEST

/* --admin-token-file (issue 16): a flag, a variable, and only with --admin-address. */
START_TEST(test_admin_token_file)
{
    ck_assert_int_eq(
        parse(ARGS(REQ_FLAGS, "--admin-address", "9187", "--admin-token-file", "/x/token"),
              ENV(NULL)),
        CONFIG_OK);
    ck_assert_str_eq(cfg.admin_token_file, "/x/token");
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV("PG_TLS_PROXY_ADMIN_ADDRESS=9187",
                                                "PG_TLS_PROXY_ADMIN_TOKEN_FILE=/x/t")),
                     CONFIG_OK);
    ck_assert_str_eq(cfg.admin_token_file, "/x/t");
    config_free(&cfg);
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), ENV(NULL)), CONFIG_OK);
    ck_assert_ptr_null(cfg.admin_token_file);
    config_free(&cfg);
    assert_error(parse(ARGS(REQ_FLAGS, "--admin-token-file", "/x/token"), ENV(NULL)),
                 "--admin-token-file is read only with --admin-address (the admin endpoint it "
                 "protects)");
}
END_TEST

START_TEST(test_free_is_idempotent)
{
    ck_assert_int_eq(parse(ARGS(REQ_FLAGS), NULL), CONFIG_OK);
    config_free(&cfg);
    ck_assert_ptr_null(cfg.upstream_host);
    config_free(&cfg);
    config_free(NULL);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_all_flags);
    tcase_add_test(tc, test_equals_form);
    tcase_add_test(tc, test_env_only);
    tcase_add_test(tc, test_env_lookalikes_ignored);
    tcase_add_test(tc, test_flag_overrides_env);
    tcase_add_test(tc, test_repeated_flag_last_wins);
    tcase_add_loop_test(tc, test_required_missing, 0,
                        (int)(sizeof(required) / sizeof(required[0])));
    tcase_add_test(tc, test_required_all_missing);
    tcase_add_test(tc, test_small_err_buffer);
    tcase_add_loop_test(tc, test_bad_port, 0, (int)(sizeof(bad_ports) / sizeof(bad_ports[0])));
    tcase_add_test(tc, test_port_edge_cases);
    tcase_add_test(tc, test_bad_log_level);
    tcase_add_test(tc, test_unknown_option);
    tcase_add_test(tc, test_env_unknown_refused);
    tcase_add_test(tc, test_log_json_early);
    tcase_add_test(tc, test_missing_value);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_help_mentions_everything);
    tcase_add_test(tc, test_check_via_env);
    tcase_add_test(tc, test_workers);
    tcase_add_test(tc, test_write_stall_timeout);
    tcase_add_test(tc, test_auth_mode);
    tcase_add_test(tc, test_free_is_idempotent);
    tcase_add_test(tc, test_bridge_options);
    tcase_add_test(tc, test_admin_token_file);
    suite_add_tcase(s, tc);
    return s;
}
