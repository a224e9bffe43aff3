/*
 * test_connector.c - the connector's pure parts: options (flags >
 * environment > [connector] of --config > defaults; the refusals, with the
 * messages a user reads), the --allow list and its matching, and the
 * reconnect backoff's bounds. The loop is test_connector_loop.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connector.h"
#include "suites.h"

#define BASE "--bridge-address", "proxy.example.com:7000", "--bridge-id", "b1", "--allow", "db:5432"

struct parsed {
    enum connector_parse_res res;
    struct connector_opts o;
    char err[1024];
    char out[8192];
};

static void parse(struct parsed *p, const char *const *argv, const char *const *envp)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    memset(p, 0, sizeof(*p));
    FILE *out = fmemopen(p->out, sizeof(p->out) - 1, "w");
    p->res = connector_opts_parse(&p->o, argc, (char **)argv, (char **)envp, out, p->err,
                                  sizeof(p->err));
    fclose(out);
}

static const char *const no_env[] = {NULL};
static const char *const secret_env[] = {"PG_TLS_PROXY_BRIDGE_SECRET=s3cret", NULL};

/* A config file in /tmp with text; its path in path. */
static void write_file(char *path, const char *text)
{
    strcpy(path, "/tmp/pgtp-connector-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(test_minimal_and_defaults)
{
    struct parsed p;
    const char *argv[] = {"connector", BASE, NULL};
    parse(&p, argv, secret_env);
    ck_assert_msg(p.res == CONNECTOR_RUN, "%s", p.err);
    ck_assert_str_eq(p.o.bridge_host, "proxy.example.com");
    ck_assert_uint_eq(p.o.bridge_port, 7000);
    ck_assert_str_eq(p.o.bridge_secret, "s3cret");
    ck_assert(!p.o.secret_on_argv);
    ck_assert_str_eq(p.o.validation_host, "proxy.example.com");
    ck_assert_uint_eq(p.o.heartbeat_s, 5);
    ck_assert_uint_eq(p.o.connect_timeout_s, 10);
    ck_assert_uint_eq(p.o.reconnect_max_s, 30);
    ck_assert_uint_eq(p.o.shutdown_timeout_s, 30);
    ck_assert_uint_eq(p.o.max_streams, 1000);
    ck_assert_ptr_null(p.o.health_address);
    ck_assert_ptr_nonnull(p.o.name); /* the host name */
    ck_assert_uint_eq(p.o.nallow, 1);
    connector_opts_free(&p.o);
}
END_TEST

START_TEST(test_refuses_without_allow)
{
    struct parsed p;
    const char *argv[] = {"connector", "--bridge-address", "p:1", "--bridge-id", "b1", NULL};
    parse(&p, argv, secret_env);
    ck_assert_int_eq(p.res, CONNECTOR_ERROR);
    ck_assert_msg(strstr(p.err, "no --allow list: the connector would open any host:port the "
                                "proxy asks for") != NULL,
                  "%s", p.err);
    connector_opts_free(&p.o);
}
END_TEST

/* flags > env > file > defaults, option by option. */
START_TEST(test_precedence)
{
    char path[64], flagcfg[128];
    write_file(path, "; comment\n[global]\nserver-port = 1\n[connector]\n"
                     "heartbeat-interval = 7\nconnect-timeout = 7\nreconnect-max = 7\n"
                     "bridge-secret = from-file\n");
    snprintf(flagcfg, sizeof(flagcfg), "--config=%s", path);
    const char *env[] = {"PG_TLS_PROXY_CONNECT_TIMEOUT=8",
                         "PG_TLS_PROXY_HEARTBEAT_INTERVAL=8",
                         "PG_TLS_PROXY_BRIDGE_SECRET=from-env",
                         "PG_TLS_PROXY_UNRELATED=x",
                         "PG_TLS_PROXY_RECONNECT_MAX=",
                         "PG_TLS_PROXY_BRIDGE=y",
                         NULL};
    const char *argv[] = {"connector", BASE, flagcfg, "--heartbeat-interval", "9", NULL};
    struct parsed p;
    parse(&p, argv, env);
    ck_assert_msg(p.res == CONNECTOR_RUN, "%s", p.err);
    ck_assert_uint_eq(p.o.heartbeat_s, 9);       /* flag */
    ck_assert_uint_eq(p.o.connect_timeout_s, 8); /* env */
    ck_assert_uint_eq(p.o.reconnect_max_s, 7);   /* file: an empty variable is unset */
    ck_assert_uint_eq(p.o.shutdown_timeout_s, 30);
    ck_assert_str_eq(p.o.bridge_secret, "from-env");
    ck_assert_str_eq(p.o.unknown_env, "PG_TLS_PROXY_UNRELATED,PG_TLS_PROXY_BRIDGE");
    connector_opts_free(&p.o);

    /* The file alone also gives the secret; the env names the file too. */
    char envcfg[128];
    snprintf(envcfg, sizeof(envcfg), "PG_TLS_PROXY_CONFIG=%s", path);
    const char *env2[] = {envcfg, NULL};
    const char *argv2[] = {"connector", BASE, NULL};
    parse(&p, argv2, env2);
    ck_assert_msg(p.res == CONNECTOR_RUN, "%s", p.err);
    ck_assert_str_eq(p.o.bridge_secret, "from-file");
    ck_assert_uint_eq(p.o.heartbeat_s, 7);
    connector_opts_free(&p.o);
    unlink(path);
}
END_TEST

START_TEST(test_file_errors)
{
    char path[64], flagcfg[128];
    struct parsed p;
    const char *argv[] = {"connector", BASE, flagcfg, NULL};
    write_file(path, "[connector]\nheartbeat-intervall = 3\n");
    snprintf(flagcfg, sizeof(flagcfg), "--config=%s", path);
    parse(&p, argv, secret_env);
    ck_assert_int_eq(p.res, CONNECTOR_ERROR);
    ck_assert_msg(strstr(p.err, "unknown key \"heartbeat-intervall\"") != NULL, "%s", p.err);
    connector_opts_free(&p.o);
    unlink(path);

    write_file(path, "[connector]\nallow = a:1\nallow = b:2\n");
    snprintf(flagcfg, sizeof(flagcfg), "--config=%s", path);
    parse(&p, argv, secret_env);
    ck_assert_int_eq(p.res, CONNECTOR_ERROR);
    ck_assert_msg(strstr(p.err, "a second value for \"allow\"") != NULL, "%s", p.err);
    connector_opts_free(&p.o);
    unlink(path);

    snprintf(flagcfg, sizeof(flagcfg), "--config=/nonexistent/pgtp.ini");
    parse(&p, argv, secret_env);
    ck_assert_int_eq(p.res, CONNECTOR_ERROR);
    ck_assert_msg(strstr(p.err, "cannot open it") != NULL, "%s", p.err);
    connector_opts_free(&p.o);
}
END_TEST

/* Each bad value is refused with a message naming the option. */
START_TEST(test_bad_values)
{
    static const struct {
        const char *flag, *value, *expect;
    } cases[] = {
        {"--heartbeat-interval", "0", "--heartbeat-interval: \"0\" is not a number of seconds"},
        {"--max-streams", "0", "--max-streams: \"0\" is not a number from 1 to 100000"},
        {"--connect-timeout", "10s", "--connect-timeout: \"10s\""},
        {"--reconnect-max", "-1", "--reconnect-max"},
        {"--log", "loud", "--log: \"loud\""},
        {"--log-format", "xml", "not text or json"},
        {"--allow", "*:5432", "wildcards are not accepted"},
        {"--allow", "db", "\"db\" is not HOST:PORT"},
        {"--allow", "db:5432,,x:1", "an empty item"},
        {"--allow", "db:0", "is not HOST:PORT"},
        {"--bridge-address", "proxy", "--bridge-address \"proxy\" is not HOST:PORT"},
        {"--bridge-id", "a b", "--bridge-id \"a b\" is not valid"},
        {"--connector-name", "two words", "--connector-name \"two words\""},
        {"--health-address", "example.com:80", "--health-address"},
        {"--bogus", "1", "unknown option \"--bogus\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed p;
        const char *argv[] = {"connector", BASE, cases[i].flag, cases[i].value, NULL};
        parse(&p, argv, secret_env);
        ck_assert_msg(p.res == CONNECTOR_ERROR, "%s %s accepted", cases[i].flag, cases[i].value);
        ck_assert_msg(strstr(p.err, cases[i].expect) != NULL, "%s %s: %s", cases[i].flag,
                      cases[i].value, p.err);
        connector_opts_free(&p.o);
    }
    struct parsed p;
    const char *argv[] = {"connector", BASE, "--connect-timeout", NULL};
    parse(&p, argv, secret_env);
    ck_assert_int_eq(p.res, CONNECTOR_ERROR);
    ck_assert_msg(strstr(p.err, "--connect-timeout needs a value") != NULL, "%s", p.err);
    connector_opts_free(&p.o);
}
END_TEST

START_TEST(test_secret_sources)
{
    struct parsed p;
    char path[64];
    /* none */
    const char *argv[] = {"connector", BASE, NULL};
    parse(&p, argv, no_env);
    ck_assert_int_eq(p.res, CONNECTOR_ERROR);
    ck_assert_msg(strstr(p.err, "no bridge secret") != NULL, "%s", p.err);
    ck_assert(strstr(p.err, "PG_TLS_PROXY_BRIDGE_SECRET") != NULL);
    connector_opts_free(&p.o);
    /* the flag: accepted, flagged for the warning */
    const char *argv2[] = {"connector", BASE, "--bridge-secret", "on-argv", NULL};
    parse(&p, argv2, no_env);
    ck_assert_msg(p.res == CONNECTOR_RUN, "%s", p.err);
    ck_assert(p.o.secret_on_argv);
    connector_opts_free(&p.o);
    /* the file: first line, without its line end */
    write_file(path, "from-a-file\r\nsecond line\n");
    const char *argv3[] = {"connector", BASE, "--bridge-secret-file", path, NULL};
    parse(&p, argv3, no_env);
    ck_assert_msg(p.res == CONNECTOR_RUN, "%s", p.err);
    ck_assert_str_eq(p.o.bridge_secret, "from-a-file");
    connector_opts_free(&p.o);
    /* both: refused, and the message never holds the secret */
    parse(&p, argv3, secret_env);
    ck_assert_int_eq(p.res, CONNECTOR_ERROR);
    ck_assert_msg(strstr(p.err, "not both") != NULL, "%s", p.err);
    ck_assert(strstr(p.err, "s3cret") == NULL);
    connector_opts_free(&p.o);
    unlink(path);
    /* a missing file */
    const char *argv4[] = {"connector", BASE, "--bridge-secret-file", "/nonexistent/s", NULL};
    parse(&p, argv4, no_env);
    ck_assert_int_eq(p.res, CONNECTOR_ERROR);
    ck_assert_msg(strstr(p.err, "--bridge-secret-file \"/nonexistent/s\"") != NULL, "%s", p.err);
    connector_opts_free(&p.o);
}
END_TEST

START_TEST(test_help_and_version)
{
    struct parsed p;
    const char *argv[] = {"connector", "--help", NULL};
    parse(&p, argv, no_env);
    ck_assert_int_eq(p.res, CONNECTOR_EXIT);
    ck_assert(strstr(p.out, "--allow HOST:PORT[,HOST:PORT...]") != NULL);
    ck_assert(strstr(p.out, "env: PG_TLS_PROXY_BRIDGE_SECRET\n") != NULL);
    ck_assert(strstr(p.out, "--health-address") != NULL);
    connector_opts_free(&p.o);
    const char *argv2[] = {"connector", "-V", NULL};
    parse(&p, argv2, no_env);
    ck_assert_int_eq(p.res, CONNECTOR_EXIT);
    ck_assert(strncmp(p.out, "pg-tls-proxy connector ", 23) == 0);
    connector_opts_free(&p.o);
}
END_TEST

START_TEST(test_allow_list)
{
    struct connector_allow *a;
    size_t n;
    char err[256];
    ck_assert_int_eq(connector_allow_parse("DB.internal:5432, 10.0.0.5:6432,[fd00::1]:5432", &a, &n,
                                           err, sizeof(err)),
                     0);
    ck_assert_uint_eq(n, 3);
    ck_assert(connector_allowed(a, n, "db.internal", 5432));
    ck_assert(connector_allowed(a, n, "DB.INTERNAL", 5432));
    ck_assert(!connector_allowed(a, n, "db.internal", 5433));
    ck_assert(!connector_allowed(a, n, "db.internal.evil", 5432));
    ck_assert(!connector_allowed(a, n, "db", 5432));
    ck_assert(connector_allowed(a, n, "10.0.0.5", 6432));
    ck_assert(!connector_allowed(a, n, "10.0.0.5", 5432));
    ck_assert(connector_allowed(a, n, "fd00::1", 5432));
    ck_assert(!connector_allowed(a, n, "*", 5432));
    free(a);
    ck_assert_int_eq(connector_allow_parse("*:5432", &a, &n, err, sizeof(err)), -1);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(connector_allow_parse("db.*.internal:5432", &a, &n, err, sizeof(err)), -1);
    ck_assert_int_eq(connector_allow_parse("", &a, &n, err, sizeof(err)), -1);
}
END_TEST

/* Every wait within [base/2, base], base doubling from 0.5 s up to the cap. */
START_TEST(test_backoff_bounds)
{
    static const uint32_t rnds[] = {0, 1, 12345, 0x7fffffff, 0xffffffff};
    for (size_t r = 0; r < sizeof(rnds) / sizeof(rnds[0]); r++) {
        uint64_t base = CONNECTOR_BACKOFF_START_MS, expect = 500;
        for (int i = 0; i < 12; i++) {
            uint64_t w = connector_backoff_next(&base, 30000, rnds[r]);
            ck_assert_uint_ge(w, expect / 2);
            ck_assert_uint_le(w, expect);
            expect = expect * 2 > 30000 ? 30000 : expect * 2;
            ck_assert_uint_eq(base, expect);
        }
    }
    /* The extremes of the jitter are reachable. */
    uint64_t base = 4000;
    ck_assert_uint_eq(connector_backoff_next(&base, 30000, 0), 2000);
    base = 4000;
    ck_assert_uint_eq(connector_backoff_next(&base, 30000, 2000), 4000);
    /* A cap below the start wins. */
    base = CONNECTOR_BACKOFF_START_MS;
    ck_assert_uint_le(connector_backoff_next(&base, 300, 99), 300);
    ck_assert_uint_eq(base, 300);
}
END_TEST

Suite *connector_suite(void)
{
    Suite *s = suite_create("connector");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, test_minimal_and_defaults);
    tcase_add_test(tc, test_refuses_without_allow);
    tcase_add_test(tc, test_precedence);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_secret_sources);
    tcase_add_test(tc, test_help_and_version);
    suite_add_tcase(s, tc);
    TCase *tm = tcase_create("policy");
    tcase_add_test(tm, test_allow_list);
    tcase_add_test(tm, test_backoff_bounds);
    suite_add_tcase(s, tm);
    return s;
}
