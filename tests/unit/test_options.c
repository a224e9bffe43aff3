/*
 * test_options.c - unit tests for src/options.c: the option table's own
 * invariants (names, short flags, help, defaults, environment names), the
 * lookups config.c relies on, the typo suggestions, and --help listing
 * every option with its variable.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* Every entry well formed; no two share a long flag, short flag or variable. */
START_TEST(test_table_invariants)
{
    ck_assert_uint_gt(config_noptions, 10);
    ck_assert_uint_le(config_noptions, CONFIG_OPTIONS_MAX);
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        ck_assert_ptr_nonnull(o->name);
        ck_assert_msg(strlen(o->name) > 1 && o->name[0] != '-', "bad name \"%s\"", o->name);
        for (const char *p = o->name; *p != '\0'; p++)
            ck_assert_msg(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-',
                          "--%s: not lower-case", o->name);
        ck_assert_msg(o->help != NULL && strlen(o->help) > 10, "--%s: no help", o->name);
        ck_assert_msg(o->help[strlen(o->help) - 1] == '.', "--%s: help is not a sentence", o->name);
        ck_assert_msg(!(o->required && o->def != NULL), "--%s: required with a default", o->name);
        if (o->kind == OPT_BOOL || o->kind == OPT_HELP || o->kind == OPT_VERSION)
            ck_assert_msg(!opt_takes_value(o), "--%s takes no value", o->name);
        else
            ck_assert_msg(opt_takes_value(o), "--%s needs a metavar", o->name);
        char env[ENV_NAME_MAX];
        opt_env_name(o, env, sizeof(env));
        ck_assert_uint_lt(strlen(env), ENV_NAME_MAX - 1); /* not truncated */
        for (size_t j = 0; j < i; j++) {
            const struct opt_def *q = &config_options[j];
            ck_assert_str_ne(o->name, q->name);
            ck_assert_msg(o->short_name == 0 || o->short_name != q->short_name, "-%c used twice",
                          o->short_name);
            char env2[ENV_NAME_MAX];
            opt_env_name(q, env2, sizeof(env2));
            ck_assert_str_ne(env, env2);
        }
    }
}
END_TEST

START_TEST(test_env_name)
{
    char env[ENV_NAME_MAX];
    const struct opt_def *o = opt_find_long("client-ca-roots-path", 20);
    ck_assert_ptr_nonnull(o);
    opt_env_name(o, env, sizeof(env));
    ck_assert_str_eq(env, "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH");
    /* A short buffer truncates, NUL-terminated. */
    char small[16];
    opt_env_name(o, small, sizeof(small));
    ck_assert_str_eq(small, "PG_TLS_PROXY_CL");
    ck_assert(!opt_has_env(opt_find_long("help", 4)));
    ck_assert(!opt_has_env(opt_find_long("version", 7)));
    ck_assert(opt_has_env(opt_find_long("log", 3)));
}
END_TEST

START_TEST(test_find)
{
    /* The length counts, not the NUL: "--server-port=5433" is looked up by prefix. */
    const char *arg = "server-port=5433";
    const struct opt_def *o = opt_find_long(arg, 11);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(o->name, "server-port");
    ck_assert_ptr_null(opt_find_long(arg, 10)); /* "server-por" */
    ck_assert_ptr_null(opt_find_long(arg, strlen(arg)));
    ck_assert_ptr_null(opt_find_long("", 0));
    ck_assert_str_eq(opt_find_short('l')->name, "log");
    ck_assert_str_eq(opt_find_short('h')->name, "help");
    ck_assert_str_eq(opt_find_short('V')->name, "version");
    ck_assert_ptr_null(opt_find_short('q'));
    ck_assert_ptr_null(opt_find_short('\0'));
}
END_TEST

/* What a typo suggests: the nearest spelling within a third of its length
 * (at most 3 edits), or the option a trailing extra word was added to. */
static const struct {
    const char *typed;
    int env;
    const char *want; /* long name, or NULL for no suggestion */
} typo_cases[] = {
    {"server-portt", 0, "server-port"},
    {"sever-port", 0, "server-port"},
    {"server-prot", 0, "server-port"},
    {"client-ca-root-path", 0, "client-ca-roots-path"},
    {"lgo", 0, NULL}, /* a transposition is two edits: too far for three letters */
    {"lgg", 0, "log"},
    {"log-level", 0, "log"},
    {"workers-count", 0, "workers"},
    {"xyzzy", 0, NULL},
    {"completely-different-flag", 0, NULL},
    {"PG_TLS_PROXY_SERVER_PORTT", 1, "server-port"},
    {"PG_TLS_PROXY_LOG_LEVEL", 1, "log"},
    {"PG_TLS_PROXY_CLIENT_CA_ROOT_PATH", 1, "client-ca-roots-path"},
    {"PG_TLS_PROXY_NOTHING_LIKE_IT", 1, NULL},
    /* --help has no variable: never suggested for one. */
    {"PG_TLS_PROXY_HELP", 1, NULL},
};

START_TEST(test_closest)
{
    const struct opt_def *o = opt_closest(typo_cases[_i].typed, typo_cases[_i].env != 0);
    if (typo_cases[_i].want == NULL)
        ck_assert_msg(o == NULL, "%s: suggested --%s", typo_cases[_i].typed, o->name);
    else {
        ck_assert_msg(o != NULL, "%s: no suggestion", typo_cases[_i].typed);
        ck_assert_str_eq(o->name, typo_cases[_i].want);
    }
}
END_TEST

/* --help names every flag, its short form and its variable, once. */
START_TEST(test_usage_lists_every_option)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    config_usage(f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert(strncmp(text, "Usage: pg-tls-proxy", 19) == 0);
    for (size_t i = 0; i < config_noptions; i++) {
        const struct opt_def *o = &config_options[i];
        char want[128];
        if (o->short_name != 0)
            snprintf(want, sizeof(want), "  -%c, --%s%s%s\n", o->short_name, o->name,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(want, sizeof(want), "  --%s%s%s\n", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        ck_assert_msg(strstr(text, want) != NULL, "--help lacks \"%s\"", want);
        if (opt_has_env(o)) {
            char env[ENV_NAME_MAX], line[ENV_NAME_MAX + 16];
            opt_env_name(o, env, sizeof(env));
            snprintf(line, sizeof(line), "env: %s", env);
            const char *at = strstr(text, line);
            ck_assert_msg(at != NULL, "--help lacks %s", env);
        }
        if (o->required) {
            /* "Required." follows the help text of this option. */
            const char *at = strstr(text, want);
            const char *next = strstr(at + strlen(want), "\n  -");
            const char *req = strstr(at, "Required.");
            ck_assert_msg(req != NULL && (next == NULL || req < next), "--%s: not marked required",
                          o->name);
        }
    }
    /* Help texts are wrapped at 79 columns (the indented lines but the env: ones). */
    for (const char *p = text; *p != '\0';) {
        size_t n = strcspn(p, "\n");
        if (strncmp(p, "      ", 6) == 0 && strncmp(p, "      env: ", 11) != 0)
            ck_assert_msg(n <= 79, "--help line of %zu columns: %.*s", n, (int)n, p);
        p += n + (p[n] == '\n');
    }
    free(text);
}
END_TEST

Suite *options_suite(void)
{
    Suite *s = suite_create("options");
    TCase *t = tcase_create("options");
    tcase_add_test(t, test_table_invariants);
    tcase_add_test(t, test_env_name);
    tcase_add_test(t, test_find);
    tcase_add_loop_test(t, test_closest, 0, NELEM(typo_cases));
    tcase_add_test(t, test_usage_lists_every_option);
    suite_add_tcase(s, t);
    return s;
}
