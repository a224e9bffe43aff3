/*
 * options.h - the option table behind config_parse and --help: one entry
 * per option (long flag, short flag, kind, default, help text), and the
 * lookups config.c needs by flag, by environment variable name and by typo.
 */
#ifndef PGTP_OPTIONS_H
#define PGTP_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define ENV_PREFIX "PG_TLS_PROXY_"
#define ENV_NAME_MAX 64
/* Room config_parse keeps for one raw value per option (checked at compile time). */
#define CONFIG_OPTIONS_MAX 64

enum opt_kind {
    OPT_STRING,   /* char * in struct config, heap copy */
    OPT_PORT,     /* uint16_t, decimal digits only, 1..65535 */
    OPT_WORKERS,  /* unsigned, 0..CONFIG_MAX_WORKERS; 0 = one per CPU */
    OPT_SECONDS,  /* unsigned, 0..86400 */
    OPT_COUNT,    /* unsigned, 1..1000000 */
    OPT_LOGFMT,   /* bool log_json: "text" or "json" */
    OPT_TLSVER,   /* int: "1.2" -> 12, "1.3" -> 13 */
    OPT_LOG,      /* int, via log_level_parse */
    OPT_AUTHMODE, /* int auth_mode: passthrough, password or scram */
    OPT_PEERID,   /* unsigned, 0..255; 0 = peering off */
    OPT_BOOL,     /* bool; a flag without value, a 1/0-style word in the environment */
    OPT_HELP,     /* no field, no environment variable */
    OPT_VERSION,  /* no field, no environment variable */
};

struct opt_def {
    const char *name;    /* long flag without "--"; also gives the env var name */
    char short_name;     /* 0: none */
    enum opt_kind kind;  /* how the value is parsed and stored */
    bool per_route;      /* may be set in a [route NAME] section of --config (conffile.c) */
    const char *metavar; /* shown in --help; NULL for options without a value */
    size_t offset;       /* field in struct config (unused for HELP/VERSION) */
    bool required;       /* must be set by flag or environment */
    const char *def;     /* default, parsed like user input; NULL: none */
    const char *def_doc; /* default as words in --help when def does not say it */
    const char *help;    /* one sentence for --help */
};

/* The table, in the order --help shows it. */
extern const struct opt_def config_options[];
extern const size_t config_noptions;

/* Whether the option has a PG_TLS_PROXY_* variable (not --help, --version). */
bool opt_has_env(const struct opt_def *o);
/* Whether the flag takes a value (it has a metavar). */
bool opt_takes_value(const struct opt_def *o);
/* "client-ca-roots-path" -> "PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH" into buf. */
void opt_env_name(const struct opt_def *o, char *buf, size_t len);
/* The option of long flag name[0..len) or short flag c; NULL if none. */
const struct opt_def *opt_find_long(const char *name, size_t len);
const struct opt_def *opt_find_short(char c);
/*
 * The option a typo most likely meant: typed is a long flag name (env
 * false) or a whole variable name (env true). NULL if nothing is close.
 */
const struct opt_def *opt_closest(const char *typed, bool env);

/* --help text, generated from the option table. */
void config_usage(FILE *out);

#endif
