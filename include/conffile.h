/*
 * conffile.h - reading the --config INI file (libinih) into raw, checked
 * (key, value, line) lists: the globals, and one list per [route NAME]
 * section. config.c turns them into struct config values with the same
 * parser as the flags.
 *
 * What is checked here (with the file name and line in the message): the
 * syntax, section names, unknown keys ("did you mean"), a key twice in a
 * section, process-wide options inside a route, route-only keys outside
 * one, empty values.
 */
#ifndef PGTP_CONFFILE_H
#define PGTP_CONFFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct opt_def;

/* The largest file read: a config of a few hundred routes is far below. */
#define CONFFILE_MAX_BYTES ((size_t)1024 * 1024)
/* Route names and databases are PostgreSQL-sized identifiers. */
#define CONFFILE_NAME_MAX 63

/* Keys that only a [route NAME] section has (they say which clients take it). */
enum conf_route_key {
    CONF_KEY_OPTION = 0, /* an option of the table: opt says which */
    CONF_KEY_SNI,        /* sni = a.example.com, *.example.org */
    CONF_KEY_DATABASES,  /* databases = app, reporting */
    CONF_KEY_LISTEN_PORT /* listen-port = 6433 */
};

struct conf_entry {
    const struct opt_def *opt; /* CONF_KEY_OPTION: the option; else NULL */
    enum conf_route_key key;
    char *value; /* heap, never empty */
    int line;
};

struct conf_section {
    char *name; /* the route's NAME; NULL for the globals */
    int line;   /* of its [header]; 0 for the globals */
    struct conf_entry *entries;
    size_t nentries;
};

/* One "N = host:port" line of [peers]. */
struct conf_peer {
    unsigned id;
    char *host;
    uint16_t port;
    int line;
};

struct conf_file {
    char *label;             /* the path as given, for messages: "pg.conf:12: ..." */
    struct conf_peer *peers; /* [peers], in file order */
    size_t npeers;
    struct conf_section globals;
    struct conf_section *routes; /* in file order */
    size_t nroutes;
};

/*
 * Parse text[0..len) (a whole file; NUL bytes are refused) into cf, labelled
 * label in errors. 0 on success; -1 with err filled ("label:LINE: what, and
 * the fix") and cf left empty. conffile_free is safe either way.
 */
int conffile_parse(const char *text, size_t len, const char *label, struct conf_file *cf, char *err,
                   size_t errlen);
/* Read path (at most CONFFILE_MAX_BYTES) and parse it. */
int conffile_load(const char *path, struct conf_file *cf, char *err, size_t errlen);
void conffile_free(struct conf_file *cf);

/* The entry of option o (or route key k when o is NULL) in s, or NULL. */
const struct conf_entry *conffile_find(const struct conf_section *s, const struct opt_def *o,
                                       enum conf_route_key k);

/*
 * A comma-separated list ("a, b,c") into a heap array of heap strings.
 * sni: lower-cased host names, exact or "*.suffix", checked as DNS names;
 * else database names (1..63 bytes, no control characters). -1 with err
 * filled (the bad item named) and nothing allocated.
 */
int conffile_list(const char *value, bool sni, char ***items, size_t *n, char *err, size_t errlen);
void conffile_list_free(char **items, size_t n);

#endif
