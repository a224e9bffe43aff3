/*
 * conffile.c - the --config file: INI read with libinih into raw
 * (key, value, line) lists, the globals and one per [route NAME] section.
 *
 * Why a library: inih is packaged by Debian (libinih-dev), small, and reads
 * the INI dialect PgBouncer users already write (key = value, [sections],
 * ; and # comments). What is ours is around it: a line reader that counts
 * lines (Debian's inih is built without line numbers in the handler), takes
 * section headers itself (inih only reports a section when a key follows,
 * so an empty or repeated section would go unseen), refuses over-long lines
 * (inih would silently read the rest of one as a new line) and strips the
 * indentation (inih would take an indented line as the continuation of the
 * previous value; a setting on two lines is a mistake here, not a feature).
 *
 * Owns: the conf_file it fills (freed by conffile_free). Never: logs, or
 * interprets values beyond the route-only lists; config.c parses values with
 * the same code as the flags.
 */
#include "conffile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "config.h"
#include "confroute.h"
#include "options.h"

struct parse_state {
    const char *p, *end; /* what the reader has not handed to inih yet */
    int line;            /* lines handed to inih: the one being parsed */
    struct conf_file *cf;
    long cur;       /* the section of the lines being read: -1 = the globals, -2 = [peers] */
    int peers_line; /* of the [peers] header; 0 = none yet */
    bool failed;    /* err holds the first error; the reader stops */
    char *err;
    size_t errlen;
};

static void fail(struct parse_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct parse_state *st, const char *fmt, ...)
{
    if (st->failed)
        return;
    st->failed = true;
    if (st->err == NULL || st->errlen == 0)
        return;
    int n = snprintf(st->err, st->errlen, "%s:%d: ", st->cf->label, st->line);
    if (n < 0 || (size_t)n >= st->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

#define PEERS_SECTION (-2)

static struct conf_section *current(struct parse_state *st)
{
    return st->cur < 0 ? &st->cf->globals : &st->cf->routes[st->cur];
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static bool route_name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > CONFFILE_NAME_MAX)
        return false;
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* A "[...]" line (indentation already stripped): [global] or [route NAME]. */
static bool section_header(struct parse_state *st, char *line)
{
    char *close = strchr(line, ']');
    if (close == NULL) {
        fail(st, "a section header needs its closing ']' ([global] or [route NAME])");
        return false;
    }
    for (const char *t = close + 1; *t != '\0' && *t != ';' && *t != '#'; t++) {
        if (!is_space(*t)) {
            fail(st, "text after the section header's ']' (a comment starts with ; or #)");
            return false;
        }
    }
    char name[128];
    const char *b = line + 1;
    while (b < close && is_space(*b))
        b++;
    size_t len = (size_t)(close - b);
    while (len > 0 && is_space(b[len - 1]))
        len--;
    snprintf(name, sizeof(name), "%.*s", (int)len, b);
    if (strcmp(name, "global") == 0) {
        st->cur = -1;
        return true;
    }
    if (strcmp(name, "peers") == 0) {
        if (st->peers_line != 0) {
            fail(st, "[peers] appears twice (first on line %d): merge the two sections",
                 st->peers_line);
            return false;
        }
        st->peers_line = st->line;
        st->cur = PEERS_SECTION;
        return true;
    }
    if (strncmp(name, "route", 5) != 0 || !is_space(name[5])) {
        fail(st, "unknown section [%s]: the sections are [global], [route NAME] and [peers]", name);
        return false;
    }
    const char *rname = name + 5;
    while (is_space(*rname))
        rname++;
    if (!route_name_ok(rname)) {
        fail(st, "route name \"%s\": use 1-%d of A-Z a-z 0-9 _ . -", rname, CONFFILE_NAME_MAX);
        return false;
    }
    /* The default route (the globals' upstream) is called "default" in the
     * logs and metrics: a section of that name would be confused with it. */
    if (strcmp(rname, "default") == 0) {
        fail(st, "the route name \"default\" is reserved for the route of the global options");
        return false;
    }
    /* route="-" in the audit lines and metrics is a session whose route is
     * not decided yet: a route of that name would share its series. */
    if (strcmp(rname, "-") == 0) {
        fail(st, "the route name \"-\" is reserved: the logs and metrics use it for sessions "
                 "whose route is not decided yet");
        return false;
    }
    struct conf_file *cf = st->cf;
    for (size_t i = 0; i < cf->nroutes; i++) {
        if (strcmp(cf->routes[i].name, rname) == 0) {
            fail(st, "[route %s] appears twice (first on line %d): merge the two sections", rname,
                 cf->routes[i].line);
            return false;
        }
    }
    struct conf_section *grown = realloc(cf->routes, (cf->nroutes + 1) * sizeof(*grown));
    if (grown == NULL) {
        fail(st, "out of memory");
        return false;
    }
    cf->routes = grown;
    struct conf_section *s = &cf->routes[cf->nroutes];
    memset(s, 0, sizeof(*s));
    s->name = strdup(rname);
    if (s->name == NULL) {
        fail(st, "out of memory");
        return false;
    }
    s->line = st->line;
    st->cur = (long)cf->nroutes++;
    return true;
}

/* inih's fgets: one line of text at a time, indentation stripped. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse_state *st = stream;
    if (st->failed || st->p >= st->end || num < 2)
        return NULL;
    const char *nl = memchr(st->p, '\n', (size_t)(st->end - st->p));
    const char *stop = nl != NULL ? nl + 1 : st->end;
    const char *s = st->p;
    st->p = stop;
    st->line++;
    if (st->line == 1 && stop - s >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3; /* a UTF-8 byte order mark, as editors on Windows write */
    while (s < stop && (*s == ' ' || *s == '\t'))
        s++;
    size_t len = (size_t)(stop - s);
    if (len > (size_t)num - 1) {
        fail(st,
             "line longer than %d characters (the INI parser's limit): shorten it, e.g. a "
             "path through a symbolic link",
             num - 2);
        return NULL;
    }
    memcpy(str, s, len);
    str[len] = '\0';
    if (str[0] == '[' && !section_header(st, str))
        return NULL;
    return str;
}

static enum conf_route_key route_key(const char *name)
{
    if (strcmp(name, "sni") == 0)
        return CONF_KEY_SNI;
    if (strcmp(name, "databases") == 0)
        return CONF_KEY_DATABASES;
    if (strcmp(name, "listen-port") == 0)
        return CONF_KEY_LISTEN_PORT;
    return CONF_KEY_OPTION;
}

const struct conf_entry *conffile_find(const struct conf_section *s, const struct opt_def *o,
                                       enum conf_route_key k)
{
    for (size_t i = 0; i < s->nentries; i++)
        if (s->entries[i].opt == o && s->entries[i].key == k)
            return &s->entries[i];
    return NULL;
}

/* "host:port" or "[v6]:port" into a heap host and a port; NULL if not. */
static char *split_host_port(const char *v, uint16_t *port)
{
    const char *colon, *h = v;
    size_t hl;
    if (*v == '[') {
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':')
            return NULL;
        h = v + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (colon == NULL || memchr(v, ':', (size_t)(colon - v)) != NULL)
            return NULL; /* an IPv6 address needs its brackets */
        hl = (size_t)(colon - v);
    }
    if (hl == 0 || hl > 253 || !config_parse_port(colon + 1, port))
        return NULL;
    for (size_t i = 0; i < hl; i++)
        if (is_space(h[i]) || (unsigned char)h[i] < 0x20)
            return NULL;
    return strndup(h, hl);
}

/* One "N = host:port" line of [peers]. */
static int on_peer(struct parse_state *st, const char *name, const char *value)
{
    struct conf_file *cf = st->cf;
    unsigned long id = 0;
    size_t n = strlen(name);
    bool digits = n > 0 && n <= 3;
    for (size_t i = 0; digits && i < n; i++)
        digits = name[i] >= '0' && name[i] <= '9';
    if (digits)
        id = strtoul(name, NULL, 10);
    if (!digits || id < 1 || id > 255) {
        fail(st,
             "[peers]: \"%s\" is not a peer id: write \"N = host:port\" with N 1-255 (each "
             "instance's peer-id)",
             name);
        return 0;
    }
    for (size_t i = 0; i < cf->npeers; i++)
        if (cf->peers[i].id == id) {
            fail(st, "[peers]: peer %lu is listed twice (first on line %d)", id, cf->peers[i].line);
            return 0;
        }
    uint16_t port = 0;
    char *host = split_host_port(value, &port);
    if (host == NULL) {
        fail(st,
             "[peers]: peer %lu: \"%s\" is not host:port (an IPv6 address in brackets: "
             "[::1]:6432)",
             id, value);
        return 0;
    }
    struct conf_peer *grown = realloc(cf->peers, (cf->npeers + 1) * sizeof(*grown));
    if (grown == NULL) {
        free(host);
        fail(st, "out of memory");
        return 0;
    }
    cf->peers = grown;
    cf->peers[cf->npeers++] = (struct conf_peer){(unsigned)id, host, port, st->line};
    return 1;
}

/* One "name = value" line of the current section. Returns 1 (go on) or 0. */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *st = user;
    (void)section; /* ours is st->cur: inih truncates long section names */
    if (st->failed)
        return 0;
    if (st->cur == PEERS_SECTION)
        return on_peer(st, name, value);
    struct conf_section *sec = current(st);
    enum conf_route_key k = route_key(name);
    const struct opt_def *o = k == CONF_KEY_OPTION ? opt_find_long(name, strlen(name)) : NULL;

    if (*name == '\0') { /* "= value", or a line such as "::1" (':' separates too) */
        fail(st, "expected \"key = value\", a [section] or a comment (; or #)");
        return 0;
    }
    if (k == CONF_KEY_OPTION && o == NULL) {
        const struct opt_def *near = opt_closest(name, false);
        if (near != NULL)
            fail(st, "unknown key \"%s\" (did you mean %s?)", name, near->name);
        else
            fail(st,
                 "unknown key \"%s\" (the keys are the long option names of --help, and "
                 "sni, databases, listen-port in a [route NAME] section)",
                 name);
        return 0;
    }
    if (o != NULL && !opt_has_env(o)) {
        fail(st, "%s is a command-line flag, not a setting", name);
        return 0;
    }
    if (o != NULL && strcmp(o->name, "config") == 0) {
        fail(st, "config cannot be set inside the config file (use --config or "
                 "PG_TLS_PROXY_CONFIG)");
        return 0;
    }
    if (sec->name != NULL && o != NULL && !o->per_route) {
        fail(st,
             "%s is process-wide: set it in the globals (before the first section, or in "
             "[global]), not in [route %s]",
             name, sec->name);
        return 0;
    }
    if (sec->name == NULL && k != CONF_KEY_OPTION) {
        fail(st, "%s belongs in a [route NAME] section: it says which clients take that route",
             name);
        return 0;
    }
    if (*value == '\0') {
        fail(st, "%s needs a value", name);
        return 0;
    }
    const struct conf_entry *dup = conffile_find(sec, o, k);
    if (dup != NULL) {
        if (sec->name != NULL)
            fail(st, "%s is set twice in [route %s] (first on line %d)", name, sec->name,
                 dup->line);
        else
            fail(st, "%s is set twice in the globals (first on line %d)", name, dup->line);
        return 0;
    }
    struct conf_entry *grown = realloc(sec->entries, (sec->nentries + 1) * sizeof(*grown));
    if (grown == NULL) {
        fail(st, "out of memory");
        return 0;
    }
    sec->entries = grown;
    char *copy = strdup(value);
    if (copy == NULL) {
        fail(st, "out of memory");
        return 0;
    }
    struct conf_entry *e = &sec->entries[sec->nentries++];
    e->opt = o;
    e->key = k;
    e->value = copy;
    e->line = st->line;
    return 1;
}

int conffile_parse(const char *text, size_t len, const char *label, struct conf_file *cf, char *err,
                   size_t errlen)
{
    memset(cf, 0, sizeof(*cf));
    cf->label = strdup(label != NULL ? label : "config");
    if (cf->label == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct parse_state st = {text, text + len, 0, cf, -1, 0, false, err, errlen};
    const char *nul = memchr(text, '\0', len);
    if (nul != NULL) {
        /* inih would stop there; the rest of the file would be ignored. */
        for (const char *q = text; q < nul; q++)
            st.line += *q == '\n';
        st.line++;
        fail(&st, "a NUL byte: this is not a text file");
        conffile_free(cf);
        return -1;
    }
    int r = ini_parse_stream(read_line, &st, on_key, &st);
    if (!st.failed && r != 0) {
        st.line = r;
        if (r > 0)
            fail(&st, "expected \"key = value\", a [section] or a comment (; or #)");
        else
            fail(&st, "out of memory");
    }
    if (st.failed) {
        conffile_free(cf);
        return -1;
    }
    return 0;
}

int conffile_load(const char *path, struct conf_file *cf, char *err, size_t errlen)
{
    memset(cf, 0, sizeof(*cf));
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open the config file %s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(CONFFILE_MAX_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = fread(buf, 1, CONFFILE_MAX_BYTES + 1, f);
    int rerr = ferror(f) ? errno : 0;
    fclose(f);
    int r = -1;
    if (rerr != 0)
        snprintf(err, errlen, "cannot read the config file %s: %s", path, strerror(rerr));
    else if (n > CONFFILE_MAX_BYTES)
        snprintf(err, errlen, "the config file %s is larger than %zu bytes", path,
                 CONFFILE_MAX_BYTES);
    else
        r = conffile_parse(buf, n, path, cf, err, errlen);
    free(buf);
    return r;
}

static void section_free(struct conf_section *s)
{
    for (size_t i = 0; i < s->nentries; i++)
        free(s->entries[i].value);
    free(s->entries);
    free(s->name);
    memset(s, 0, sizeof(*s));
}

void conffile_free(struct conf_file *cf)
{
    if (cf == NULL)
        return;
    section_free(&cf->globals);
    for (size_t i = 0; i < cf->npeers; i++)
        free(cf->peers[i].host);
    free(cf->peers);
    for (size_t i = 0; i < cf->nroutes; i++)
        section_free(&cf->routes[i]);
    free(cf->routes);
    free(cf->label);
    memset(cf, 0, sizeof(*cf));
}

void conffile_list_free(char **items, size_t n)
{
    for (size_t i = 0; i < n && items != NULL; i++)
        free(items[i]);
    free(items);
}

/* A server name as clients send it in SNI: DNS labels of [a-z0-9_-], or
 * "*." and such labels (a suffix wildcard). s is already lower-cased. */
static const char *sni_problem(const char *s)
{
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    if (strlen(s) > 253)
        return "longer than 253 characters";
    if (strchr(s, '*') != NULL)
        return "a wildcard is only allowed as the whole first label (*.example.com)";
    size_t label = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0)
                return *p == '\0' && p > s ? "write it without the trailing dot"
                                           : "an empty label (two dots, or a leading dot)";
            if (*p == '\0')
                return NULL;
            label = 0;
            continue;
        }
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return "a host name has only letters, digits, '-', '_' and dots";
        if (++label > 63)
            return "a label longer than 63 characters";
    }
}

int conffile_list(const char *value, bool sni, char ***items, size_t *n, char *err, size_t errlen)
{
    char **out = NULL;
    size_t count = 0;
    const char *p = value;
    *items = NULL;
    *n = 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *e = comma != NULL ? comma : p + strlen(p);
        while (p < e && is_space(*p))
            p++;
        while (e > p && is_space(e[-1]))
            e--;
        size_t len = (size_t)(e - p);
        const char *why = NULL;
        char item[300];
        snprintf(item, sizeof(item), "%.*s", (int)(len < 290 ? len : 290), p);
        if (len == 0)
            why = "an empty item (two commas, or one at an end)";
        else if (!sni && len > CONFFILE_NAME_MAX)
            why = "longer than 63 bytes (PostgreSQL would truncate it)";
        else if (sni && len > 253)
            why = "longer than 253 characters";
        for (size_t i = 0; why == NULL && i < len; i++) {
            unsigned char c = (unsigned char)item[i];
            if (c < 0x20 || c == 0x7f)
                why = "a control character";
            else if (sni && c >= 'A' && c <= 'Z')
                item[i] = (char)(c - 'A' + 'a'); /* DNS names are case-insensitive */
        }
        if (why == NULL && sni)
            why = sni_problem(item);
        for (size_t i = 0; why == NULL && i < count; i++)
            if (strcmp(out[i], item) == 0)
                why = "listed twice";
        char *copy = NULL;
        char **grown = NULL;
        if (why == NULL && (copy = strdup(item)) != NULL &&
            (grown = realloc(out, (count + 1) * sizeof(*grown))) != NULL) {
            out = grown;
            out[count++] = copy;
        } else {
            free(copy);
            conffile_list_free(out, count);
            if (why == NULL)
                snprintf(err, errlen, "out of memory");
            else
                snprintf(err, errlen, "%s \"%s\": %s", sni ? "server name" : "database", item, why);
            return -1;
        }
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *items = out;
    *n = count;
    return 0;
}
