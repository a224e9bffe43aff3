/*
 * connector_opts.c - the connector's option table and what reads it:
 * flags, PG_TLS_PROXY_* variables and the [connector] section of --config
 * (libinih, keys = long flag names), in that order of precedence over the
 * defaults; validation; --help (checked against the README and the man
 * page by tests/check-docs.sh).
 *
 * Owns the struct connector_opts it fills and the secret in it: read from
 * its file here, wiped in connector_opts_free. Never logs the secret, nor
 * puts it in an error message.
 */
#include "connector.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/crypto.h>

#include "adminaddr.h"
#include "log.h"

enum copt_kind { K_STRING, K_SECONDS, K_COUNT, K_LOG, K_LOGFMT, K_HELP, K_VERSION };

struct copt {
    const char *name;
    char short_name;
    enum copt_kind kind;
    const char *metavar; /* NULL: no value */
    size_t offset;       /* field in struct connector_opts */
    unsigned min, max;   /* K_SECONDS */
    const char *def;     /* parsed like user input; NULL: none */
    const char *help;
};

#define F(f) offsetof(struct connector_opts, f)

/* In --help order. */
static const struct copt copts[] = {
    {"config", 0, K_STRING, "PATH", F(config_path), 0, 0, NULL,
     "INI file whose [connector] section sets these options (keys are the long option "
     "names); flags and environment variables override it. Default: none."},
    {"bridge-address", 0, K_STRING, "HOST:PORT", F(bridge_address), 0, 0, NULL,
     "The proxy's bridge listener (its --bridge-listen), dialled out to over TLS. Required."},
    {"bridge-id", 0, K_STRING, "ID", F(bridge_id), 0, 0, NULL,
     "The bridge this connector serves ([A-Za-z0-9_.-], at most 63 characters), as in the "
     "proxy's --bridges-file. Required."},
    {"bridge-secret-file", 0, K_STRING, "PATH", F(bridge_secret_file), 0, 0, NULL,
     "File holding the bridge's secret (its first line). This or --bridge-secret is "
     "required."},
    {"bridge-secret", 0, K_STRING, "SECRET", F(bridge_secret), 0, 0, NULL,
     "The bridge's secret itself; prefer the environment variable or --bridge-secret-file, "
     "as other users of the machine can read a process's arguments."},
    {"bridge-ca-path", 0, K_STRING, "PATH", F(bridge_ca_path), 0, 0, NULL,
     "CA certificates that sign the proxy's bridge certificate (PEM file, or a directory "
     "whose *.pem and *.crt files are all loaded). Default: the system's public roots."},
    {"bridge-tls-validation-host", 0, K_STRING, "NAME", F(validation_host), 0, 0, NULL,
     "DNS name or IP address the proxy's certificate must match, also sent as SNI. "
     "Default: the HOST of --bridge-address."},
    {"allow", 0, K_STRING, "HOST:PORT[,HOST:PORT...]", F(allow_text), 0, 0, NULL,
     "The only targets the proxy may ask this connector to reach: host text (compared "
     "case-insensitively) and port exactly, no wildcards. Required: without it the "
     "connector refuses to start."},
    {"connector-name", 0, K_STRING, "NAME", F(name), 0, 0, NULL,
     "This connector's name in its HELLO and in every log line. Default: the host name."},
    {"health-address", 0, K_STRING, "HOST:PORT", F(health_address), 0, 0, NULL,
     "Serve GET /healthz and /readyz (200 \"ok\" while the tunnel is up, else 503 and the "
     "reason) and /metrics over plain HTTP; a bare port means 127.0.0.1. Default: off."},
    {"heartbeat-interval", 0, K_SECONDS, "SECONDS", F(heartbeat_s), 1, 3600, "5",
     "PING the proxy this often; a tunnel silent for 3 intervals is dead and reconnected."},
    {"connect-timeout", 0, K_SECONDS, "SECONDS", F(connect_timeout_s), 1, 3600, "10",
     "Time to connect to a target, and to connect and complete TLS with the proxy."},
    {"reconnect-max", 0, K_SECONDS, "SECONDS", F(reconnect_max_s), 1, 3600, "30",
     "Longest wait between attempts to reach the proxy (exponential backoff from 0.5 s, "
     "with jitter)."},
    {"max-streams", 0, K_COUNT, "N", F(max_streams), 1, 100000, "1000",
     "At most this many streams open at once; the proxy's OPENs beyond get FAIL (a bound on "
     "what the proxy can make this connector hold open in the private network)."},
    {"shutdown-timeout", 0, K_SECONDS, "SECONDS", F(shutdown_timeout_s), 0, 86400, "30",
     "On SIGTERM/SIGINT: how long open streams may finish before they are closed."},
    {"log", 'l', K_LOG, "LEVEL", F(log_level), 0, 0, "info",
     "Log level: debug, info, warn or error."},
    {"log-format", 0, K_LOGFMT, "text|json", F(log_json), 0, 0, "text",
     "Log lines as key=value text or as JSON objects."},
    {"help", 'h', K_HELP, NULL, 0, 0, 0, NULL, "Print this help and exit."},
    {"version", 'V', K_VERSION, NULL, 0, 0, 0, NULL, "Print the version and exit."},
};
#define NCOPTS (sizeof(copts) / sizeof(copts[0]))

#define SECRET_MAX BRIDGE_VALUE_MAX

static void env_name(const struct copt *c, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "PG_TLS_PROXY_");
    for (const char *p = c->name; *p != '\0' && n + 1 < len; p++)
        buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    buf[n] = '\0';
}

/* text indented by 6, broken at spaces before column 79 (a longer word
 * gets a line of its own), as the proxy's --help is. */
static void print_wrapped(FILE *out, const char *text)
{
    const size_t room = 79 - 6;
    while (*text != '\0') {
        size_t len = strlen(text);
        if (len > room) {
            size_t cut = room;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            len = cut > 0 ? cut : strcspn(text, " ");
        }
        fprintf(out, "      %.*s\n", (int)len, text);
        text += len;
        while (*text == ' ')
            text++;
    }
}

void connector_usage(FILE *out)
{
    fputs("Usage: pg-tls-proxy connector [OPTION]...\n"
          "Bridge connector: dials out to a pg-tls-proxy bridge listener and carries its\n"
          "sessions to the databases on the --allow list.\n\n"
          "Options (every value can also come from the environment variable shown;\n"
          "a flag wins over its variable, a variable over --config):\n",
          out);
    for (size_t i = 0; i < NCOPTS; i++) {
        const struct copt *c = &copts[i];
        char text[600];
        fputs("  ", out);
        if (c->short_name != 0)
            fprintf(out, "-%c, ", c->short_name);
        fprintf(out, "--%s%s%s\n", c->name, c->metavar ? " " : "", c->metavar ? c->metavar : "");
        snprintf(text, sizeof(text), "%s%s%s%s", c->help, c->def ? " Default: " : "",
                 c->def ? c->def : "", c->def ? "." : "");
        print_wrapped(out, text);
        if (c->kind != K_HELP && c->kind != K_VERSION) {
            char env[64];
            env_name(c, env, sizeof(env));
            fprintf(out, "      env: %s\n", env);
        }
    }
    fputs("\nExit status: 0 after SIGTERM/SIGINT, 2 on a usage or configuration error.\n"
          "See pg-tls-proxy(1), CONNECTOR.\n",
          out);
}

/* ---- collecting raw values ----------------------------------------------- */

/* What each source said about each option: the last word of a source wins
 * within it, and flags > env > file across them. */
struct raw {
    const char *flag[NCOPTS], *env[NCOPTS];
    char *file[NCOPTS]; /* heap */
    const char *file_label;
    char *err;
    size_t errlen;
    bool file_failed;
};

static const struct copt *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < NCOPTS; i++)
        if (strlen(copts[i].name) == len && strncmp(copts[i].name, name, len) == 0)
            return &copts[i];
    return NULL;
}

static const struct copt *find_short(char c)
{
    for (size_t i = 0; i < NCOPTS; i++)
        if (copts[i].short_name == c)
            return &copts[i];
    return NULL;
}

/* Flags: --name VALUE, --name=VALUE, -x VALUE. 1: --help/--version seen
 * (printed), 0 ok, -1 error. */
static int read_flags(struct raw *r, int argc, char **argv, FILE *out, char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const struct copt *c = NULL;
        const char *val = NULL;
        if (strncmp(a, "--", 2) == 0) {
            const char *eq = strchr(a + 2, '=');
            size_t len = eq != NULL ? (size_t)(eq - a - 2) : strlen(a + 2);
            c = find_long(a + 2, len);
            if (eq != NULL)
                val = eq + 1;
        } else if (a[0] == '-' && a[1] != '\0' && a[2] == '\0') {
            c = find_short(a[1]);
        }
        if (c == NULL) {
            snprintf(err, errlen, "connector: unknown option \"%.100s\" (see --help)", a);
            return -1;
        }
        if (c->kind == K_HELP) {
            connector_usage(out);
            return 1;
        }
        if (c->kind == K_VERSION) {
            fprintf(out, "pg-tls-proxy connector %s\n", PGTP_VERSION);
            return 1;
        }
        if (val == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value (%s)", c->name, c->metavar);
                return -1;
            }
            val = argv[++i];
        }
        r->flag[c - copts] = val[0] != '\0' ? val : NULL; /* empty: missing */
    }
    return 0;
}

/* Our variables into r; other PG_TLS_PROXY_* names (a typo, or the
 * proxy's own settings in a shared environment) are listed in unknown
 * for a warning. Empty values count as unset, as for the proxy. */
static void read_env(struct raw *r, char **envp, char *unknown, size_t cap)
{
    unknown[0] = '\0';
    for (char **e = envp; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        bool known = false;
        if (strncmp(*e, "PG_TLS_PROXY_", 13) != 0 || eq == NULL)
            continue;
        for (size_t i = 0; i < NCOPTS; i++) {
            char name[64];
            if (copts[i].kind == K_HELP || copts[i].kind == K_VERSION)
                continue;
            env_name(&copts[i], name, sizeof(name));
            if (strlen(name) == (size_t)(eq - *e) && strncmp(*e, name, strlen(name)) == 0) {
                known = true;
                if (eq[1] != '\0')
                    r->env[i] = eq + 1;
            }
        }
        size_t used = strlen(unknown);
        if (!known && used + (size_t)(eq - *e) + 2 < cap)
            snprintf(unknown + used, cap - used, "%s%.*s", used > 0 ? "," : "", (int)(eq - *e), *e);
    }
}

static int on_ini_key(void *user, const char *section, const char *name, const char *value)
{
    struct raw *r = user;
    if (strcmp(section, "connector") != 0)
        return 1; /* other sections belong to the proxy */
    const struct copt *c = find_long(name, strlen(name));
    if (c == NULL || c->kind == K_HELP || c->kind == K_VERSION || strcmp(c->name, "config") == 0) {
        snprintf(r->err, r->errlen, "%s: [connector]: unknown key \"%.100s\"", r->file_label, name);
        r->file_failed = true;
        return 0;
    }
    if (value[0] == '\0' || r->file[c - copts] != NULL) {
        snprintf(r->err, r->errlen, "%s: [connector]: %s \"%s\"", r->file_label,
                 value[0] == '\0' ? "empty value for" : "a second value for", c->name);
        r->file_failed = true;
        return 0;
    }
    r->file[c - copts] = strdup(value);
    return r->file[c - copts] != NULL;
}

static int read_file(struct raw *r, const char *path, char *err, size_t errlen)
{
    r->file_label = path;
    r->err = err;
    r->errlen = errlen;
    int line = ini_parse(path, on_ini_key, r);
    if (r->file_failed)
        return -1;
    if (line == -1) {
        snprintf(err, errlen, "--config \"%s\": cannot open it: %s", path, strerror(errno));
        return -1;
    }
    if (line != 0) {
        snprintf(err, errlen, "%s:%d: not an INI line (key = value, or [section])", path, line);
        return -1;
    }
    return 0;
}

/* ---- values ------------------------------------------------------------- */

static int set_value(struct connector_opts *o, const struct copt *c, const char *v, const char *src,
                     char *err, size_t errlen)
{
    void *field = (char *)o + c->offset;
    char *end;
    switch (c->kind) {
    case K_STRING:
        free(*(char **)field);
        *(char **)field = strdup(v);
        return *(char **)field != NULL ? 0 : -1;
    case K_SECONDS: {
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (!isdigit((unsigned char)v[0]) || *end != '\0' || errno != 0 || n < c->min ||
            n > c->max) {
            snprintf(err, errlen, "%s: \"%.40s\" is not a number of seconds from %u to %u", src, v,
                     c->min, c->max);
            return -1;
        }
        *(unsigned *)field = (unsigned)n;
        return 0;
    }
    case K_COUNT: {
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (!isdigit((unsigned char)v[0]) || *end != '\0' || errno != 0 || n < c->min ||
            n > c->max) {
            snprintf(err, errlen, "%s: \"%.40s\" is not a number from %u to %u", src, v, c->min,
                     c->max);
            return -1;
        }
        *(unsigned *)field = (unsigned)n;
        return 0;
    }
    case K_LOG: {
        int l = log_level_parse(v);
        if (l < 0) {
            snprintf(err, errlen, "%s: \"%.40s\" is not debug, info, warn or error", src, v);
            return -1;
        }
        *(int *)field = l;
        return 0;
    }
    case K_LOGFMT:
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0) {
            snprintf(err, errlen, "%s: \"%.40s\" is not text or json", src, v);
            return -1;
        }
        *(bool *)field = strcmp(v, "json") == 0;
        return 0;
    default:
        return 0;
    }
}

/* First line of path, without its line end, into a heap string. */
/* First line of the file, without its line end, into a heap string. read(2)
 * rather than stdio, whose buffer would keep a copy we cannot wipe. */
static int read_secret_file(struct connector_opts *o, char *err, size_t errlen)
{
    char buf[SECRET_MAX + 2];
    size_t n = 0;
    ssize_t r = 0;
    int fd = open(o->bridge_secret_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "--bridge-secret-file \"%s\": %s", o->bridge_secret_file,
                 strerror(errno));
        return -1;
    }
    while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (r < 0 || strlen(buf) > SECRET_MAX) {
        OPENSSL_cleanse(buf, sizeof(buf));
        snprintf(err, errlen, "--bridge-secret-file \"%s\": %s", o->bridge_secret_file,
                 r < 0 ? "cannot read it" : "its first line is longer than 1024 bytes");
        return -1;
    }
    o->bridge_secret = strdup(buf);
    OPENSSL_cleanse(buf, sizeof(buf));
    return o->bridge_secret != NULL ? 0 : -1;
}

static bool text_clean(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static int check_secret(struct connector_opts *o, bool from_flag, char *err, size_t errlen)
{
    if (o->bridge_secret != NULL && o->bridge_secret_file != NULL) {
        snprintf(err, errlen,
                 "give the bridge secret once: --bridge-secret-file or --bridge-secret "
                 "(PG_TLS_PROXY_BRIDGE_SECRET), not both");
        return -1;
    }
    if (o->bridge_secret_file != NULL && read_secret_file(o, err, errlen) < 0)
        return -1;
    if (o->bridge_secret == NULL) {
        snprintf(err, errlen,
                 "no bridge secret: give --bridge-secret-file PATH or set "
                 "PG_TLS_PROXY_BRIDGE_SECRET (the secret the proxy's --bridges-file holds the "
                 "hash of)");
        return -1;
    }
    if (o->bridge_secret[0] == '\0' || strlen(o->bridge_secret) > SECRET_MAX ||
        !text_clean(o->bridge_secret)) {
        snprintf(err, errlen,
                 "the bridge secret is empty, longer than %d bytes or holds a "
                 "control character",
                 SECRET_MAX);
        return -1;
    }
    o->secret_on_argv = from_flag;
    return 0;
}

static int validate(struct connector_opts *o, bool secret_from_flag, char *err, size_t errlen)
{
    if (o->allow_text == NULL) {
        snprintf(err, errlen,
                 "no --allow list: the connector would open any host:port the proxy asks for; "
                 "give --allow HOST:PORT[,HOST:PORT...] (PG_TLS_PROXY_ALLOW)");
        return -1;
    }
    if (connector_allow_parse(o->allow_text, &o->allow, &o->nallow, err, errlen) < 0)
        return -1;
    if (o->bridge_address == NULL) {
        snprintf(err, errlen,
                 "--bridge-address HOST:PORT is required: the proxy's bridge "
                 "listener");
        return -1;
    }
    if (bridge_hostport_parse(o->bridge_address, o->bridge_host, sizeof(o->bridge_host),
                              &o->bridge_port) < 0) {
        snprintf(err, errlen, "--bridge-address \"%.200s\" is not HOST:PORT ([v6]:PORT for IPv6)",
                 o->bridge_address);
        return -1;
    }
    if (o->bridge_id == NULL || !bridge_id_valid(o->bridge_id)) {
        snprintf(err, errlen,
                 "--bridge-id %s%.80s%s: give the bridge's id ([A-Za-z0-9_.-], 1 to "
                 "%d characters)",
                 o->bridge_id ? "\"" : "is missing", o->bridge_id ? o->bridge_id : "",
                 o->bridge_id ? "\" is not valid" : "", BRIDGE_ID_MAX);
        return -1;
    }
    if (check_secret(o, secret_from_flag, err, errlen) < 0)
        return -1;
    if (o->validation_host == NULL && (o->validation_host = strdup(o->bridge_host)) == NULL)
        return -1;
    if (o->name == NULL) {
        char host[256] = "connector";
        if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "connector");
        host[CONNECTOR_NAME_MAX] = '\0';
        if ((o->name = strdup(host)) == NULL)
            return -1;
    }
    if (o->name[0] == '\0' || strlen(o->name) > CONNECTOR_NAME_MAX || !text_clean(o->name) ||
        strpbrk(o->name, " \"\\=") != NULL) {
        snprintf(err, errlen,
                 "--connector-name \"%.80s\": 1 to %d characters, no spaces, quotes, "
                 "'=' or control characters",
                 o->name, CONNECTOR_NAME_MAX);
        return -1;
    }
    if (o->health_address != NULL) {
        struct sockaddr_storage ss;
        char e[256];
        if (adminaddr_parse(o->health_address, &ss, e, sizeof(e)) < 0) {
            snprintf(err, errlen, "--health-address: %s", e);
            return -1;
        }
    }
    return 0;
}

enum connector_parse_res connector_opts_parse(struct connector_opts *o, int argc, char **argv,
                                              char **envp, FILE *out, char *err, size_t errlen)
{
    struct raw r;
    enum connector_parse_res res = CONNECTOR_ERROR;
    memset(o, 0, sizeof(*o));
    memset(&r, 0, sizeof(r));
    int f = read_flags(&r, argc, argv, out, err, errlen);
    if (f != 0)
        return f > 0 ? CONNECTOR_EXIT : CONNECTOR_ERROR;
    read_env(&r, envp, o->unknown_env, sizeof(o->unknown_env));
    const size_t cfg = (size_t)(find_long("config", 6) - copts);
    const char *cfg_path = r.flag[cfg] != NULL ? r.flag[cfg] : r.env[cfg];
    if (cfg_path != NULL && read_file(&r, cfg_path, err, errlen) < 0)
        goto out;
    const size_t sec = (size_t)(find_long("bridge-secret", 13) - copts);
    for (size_t i = 0; i < NCOPTS; i++) {
        const struct copt *c = &copts[i];
        char src[96];
        const char *v = NULL;
        if (r.flag[i] != NULL) {
            v = r.flag[i];
            snprintf(src, sizeof(src), "--%s", c->name);
        } else if (r.env[i] != NULL) {
            v = r.env[i];
            env_name(c, src, sizeof(src));
        } else if (r.file[i] != NULL) {
            v = r.file[i];
            snprintf(src, sizeof(src), "%s: [connector] %s", cfg_path, c->name);
        } else if (c->def != NULL) {
            v = c->def;
            snprintf(src, sizeof(src), "default of --%s", c->name);
        }
        if (v != NULL && set_value(o, c, v, src, err, errlen) < 0)
            goto out;
    }
    if (validate(o, r.flag[sec] != NULL, err, errlen) < 0)
        goto out;
    res = CONNECTOR_RUN;
out:
    for (size_t i = 0; i < NCOPTS; i++) {
        if (r.file[i] != NULL)
            OPENSSL_cleanse(r.file[i], strlen(r.file[i])); /* may be the secret */
        free(r.file[i]);
    }
    return res;
}

void connector_opts_free(struct connector_opts *o)
{
    if (o->bridge_secret != NULL)
        OPENSSL_cleanse(o->bridge_secret, strlen(o->bridge_secret));
    for (size_t i = 0; i < NCOPTS; i++)
        if (copts[i].kind == K_STRING)
            free(*(char **)((char *)o + copts[i].offset));
    free(o->allow);
    memset(o, 0, sizeof(*o));
}
