/*
 * authfile.c - the auth file of auth mode scram (see authfile.h): parses
 * PgBouncer's userlist format into a sorted array of (user, verifier), so
 * that a lookup is a binary search.
 *
 * Owns the struct authfile it returns and everything in it; authfile_free
 * wipes the verifiers before freeing them. Never writes a verifier, or a
 * line of the file, into an error message: only the file's name, the line
 * number and the user name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authfile.h"

#define FIX "make one with pg-tls-proxy scram-secret USER"

struct entry {
    char *user;
    size_t line;
    struct scram_secret secret;
};

struct authfile {
    struct entry *v;
    size_t n, cap;
};

/* A quoted field at *p (line end at end): '"', then bytes where '""' is a
 * quote, then '"'. Unquoted into out (cap bytes, NUL-terminated). 0, or -1
 * when there is no opening or closing quote, or it does not fit. */
static int quoted(const char **p, const char *end, char *out, size_t cap, size_t *outlen)
{
    const char *s = *p;
    if (s >= end || *s != '"')
        return -1;
    s++;
    size_t o = 0;
    for (;;) {
        if (s >= end)
            return -1;
        if (*s == '"') {
            if (s + 1 < end && s[1] == '"') {
                s++; /* "" inside quotes: one quote */
            } else {
                s++;
                break;
            }
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = *s++;
    }
    out[o] = '\0';
    *outlen = o;
    *p = s;
    return 0;
}

static const char *skip_blank(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\v' || *p == '\f'))
        p++;
    return p;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->user, ((const struct entry *)b)->user);
}

/* One line: 0 (entry added or nothing on it), or -1 with err filled. */
static int parse_line(struct authfile *af, const char *p, const char *end, const char *name,
                      size_t lineno, char *err, size_t errlen)
{
    char user[AUTHFILE_USER_MAX + 1], ver[512];
    size_t ulen, vlen;
    p = skip_blank(p, end);
    if (p == end || *p == ';' || *p == '#')
        return 0;
    if (memchr(p, '\0', (size_t)(end - p)) != NULL) {
        snprintf(err, errlen, "%s:%zu: a NUL byte: this is not a text file", name, lineno);
        return -1;
    }
    if (*p != '"') {
        snprintf(err, errlen,
                 "%s:%zu: expected a user name in double quotes: \"user\" "
                 "\"SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>\"",
                 name, lineno);
        return -1;
    }
    if (quoted(&p, end, user, sizeof(user), &ulen) != 0) {
        snprintf(err, errlen,
                 "%s:%zu: the user name has no closing double quote, or is longer than %d bytes "
                 "(a quote inside the name is written \"\")",
                 name, lineno, AUTHFILE_USER_MAX);
        return -1;
    }
    if (ulen == 0 || memchr(user, '\0', ulen) != NULL) {
        snprintf(err, errlen, "%s:%zu: the user name is empty", name, lineno);
        return -1;
    }
    const char *q = skip_blank(p, end);
    if (q == p || q == end || *q != '"' || quoted(&q, end, ver, sizeof(ver), &vlen) != 0) {
        snprintf(err, errlen,
                 "%s:%zu: user \"%.64s\": expected its verifier in double quotes after the "
                 "name, separated by a space",
                 name, lineno, user);
        return -1;
    }
    int rc = -1;
    q = skip_blank(q, end);
    if (q != end) {
        snprintf(err, errlen, "%s:%zu: user \"%.64s\": unexpected text after the verifier", name,
                 lineno, user);
        goto out;
    }
    struct scram_secret s;
    if (scram_secret_parse(ver, &s) != 0) {
        const char *what = strncmp(ver, "md5", 3) == 0 && vlen == 35 ? "an md5 hash"
                           : strncmp(ver, "SCRAM-SHA-256$", 14) == 0
                               ? "a malformed SCRAM-SHA-256 verifier"
                               : "a plaintext password or an unknown hash";
        snprintf(err, errlen,
                 "%s:%zu: user \"%.64s\": %s; only SCRAM-SHA-256 verifiers are accepted; " FIX,
                 name, lineno, user, what);
        goto out;
    }
    if (af->n == af->cap) {
        size_t cap = af->cap ? af->cap * 2 : 16;
        struct entry *v = realloc(af->v, cap * sizeof(*v));
        if (v == NULL) {
            OPENSSL_cleanse(&s, sizeof(s));
            snprintf(err, errlen, "%s: out of memory", name);
            goto out;
        }
        af->v = v;
        af->cap = cap;
    }
    char *u = strdup(user);
    if (u == NULL) {
        OPENSSL_cleanse(&s, sizeof(s));
        snprintf(err, errlen, "%s: out of memory", name);
        goto out;
    }
    af->v[af->n].user = u;
    af->v[af->n].line = lineno;
    af->v[af->n].secret = s;
    af->n++;
    OPENSSL_cleanse(&s, sizeof(s));
    rc = 0;
out:
    OPENSSL_cleanse(ver, sizeof(ver));
    return rc;
}

struct authfile *authfile_parse(const char *text, size_t len, const char *name, char *err,
                                size_t errlen)
{
    struct authfile *af = calloc(1, sizeof(*af));
    if (af == NULL) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    const char *p = text, *end = text + len;
    size_t lineno = 0;
    while (p < end) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        if (parse_line(af, p, le, name, lineno, err, errlen) != 0) {
            authfile_free(af);
            return NULL;
        }
        p = nl != NULL ? nl + 1 : end;
    }
    if (af->n > 1)
        qsort(af->v, af->n, sizeof(af->v[0]), cmp_entry);
    for (size_t i = 1; i < af->n; i++) {
        if (strcmp(af->v[i - 1].user, af->v[i].user) == 0) {
            size_t a = af->v[i - 1].line, b = af->v[i].line;
            snprintf(err, errlen,
                     "%s: user \"%.64s\" is listed twice (lines %zu and %zu); keep one line", name,
                     af->v[i].user, a < b ? a : b, a < b ? b : a);
            authfile_free(af);
            return NULL;
        }
    }
    if (errlen > 0)
        err[0] = '\0';
    return af;
}

struct authfile *authfile_load(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open auth file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "auth file %s is not a regular file", path);
        close(fd);
        return NULL;
    }
    if ((unsigned long long)st.st_size > AUTHFILE_MAX_BYTES) {
        snprintf(err, errlen, "auth file %s is larger than %u MB", path,
                 AUTHFILE_MAX_BYTES / (1024 * 1024));
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        snprintf(err, errlen, "auth file %s: out of memory", path);
        close(fd);
        return NULL;
    }
    /* Read to EOF but never past what stat said (a file growing under us
     * is cut there; the next SIGHUP reads it whole). */
    while (n < cap - 1) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read auth file %s: %s", path, strerror(errno));
            OPENSSL_cleanse(buf, cap);
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    struct authfile *af = authfile_parse(buf, n, path, err, errlen);
    OPENSSL_cleanse(buf, cap);
    free(buf);
    return af;
}

const struct scram_secret *authfile_find(const struct authfile *af, const char *user)
{
    if (af == NULL || user == NULL)
        return NULL;
    size_t lo = 0, hi = af->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(user, af->v[mid].user);
        if (c == 0)
            return &af->v[mid].secret;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *authfile_user_at(const struct authfile *af, size_t i, size_t *line)
{
    if (af == NULL || i >= af->n)
        return NULL;
    if (line != NULL)
        *line = af->v[i].line;
    return af->v[i].user;
}

size_t authfile_count(const struct authfile *af)
{
    return af != NULL ? af->n : 0;
}

void authfile_free(struct authfile *af)
{
    if (af == NULL)
        return;
    for (size_t i = 0; i < af->n; i++) {
        OPENSSL_cleanse(&af->v[i].secret, sizeof(af->v[i].secret));
        OPENSSL_cleanse(af->v[i].user, strlen(af->v[i].user));
        free(af->v[i].user);
    }
    if (af->v != NULL)
        OPENSSL_cleanse(af->v, af->cap * sizeof(af->v[0]));
    free(af->v);
    free(af);
}
