/* promcheck.c - the exposition checker of promcheck.h. */
#include "promcheck.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ---- a strict checker for the text exposition format ---------------------- */

static int ex_fail(char *why, size_t wl, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int ex_fail(char *why, size_t wl, int line, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(why, wl, "line %d: ", line);
    va_start(ap, fmt);
    vsnprintf(why + n, wl - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Independent of src/metrics.c's own check: is s valid UTF-8? */
static bool valid_utf8(const unsigned char *s)
{
    while (*s != '\0') {
        int n = *s < 0x80             ? 0
                : (*s & 0xe0) == 0xc0 ? 1
                : (*s & 0xf0) == 0xe0 ? 2
                : (*s & 0xf8) == 0xf0 ? 3
                                      : -1;
        if (n < 0 || (n == 1 && *s < 0xc2) || (n == 3 && *s > 0xf4))
            return false;
        s++;
        for (int i = 0; i < n; i++, s++)
            if ((*s & 0xc0) != 0x80)
                return false;
    }
    return true;
}

/* A value: a float strtod reads whole, or +Inf / -Inf / NaN. */
static int parse_value(const char *s, double *v)
{
    if (strcmp(s, "+Inf") == 0) {
        *v = INFINITY;
        return 0;
    }
    if (strcmp(s, "-Inf") == 0) {
        *v = -INFINITY;
        return 0;
    }
    if (strcmp(s, "NaN") == 0) {
        *v = NAN;
        return 0;
    }
    if (*s == '\0' || *s == ' ')
        return -1;
    char *end;
    *v = strtod(s, &end);
    return *end == '\0' && strchr(s, 'n') == NULL && strchr(s, 'N') == NULL ? 0 : -1;
}

static int close_family(struct expo *x, char *why, size_t wl, int line)
{
    if (x->cur[0] != '\0' && x->state != 2)
        return ex_fail(why, wl, line, "family %s has no TYPE", x->cur);
    if (strcmp(x->type, "histogram") == 0 && !(x->inf_seen && x->sum_seen && x->count_seen))
        return ex_fail(why, wl, line, "histogram %s lacks +Inf, _sum or _count", x->cur);
    return 0;
}

static int start_family(struct expo *x, const char *name, char *why, size_t wl, int line)
{
    if (close_family(x, why, wl, line) < 0)
        return -1;
    for (int i = 0; i < x->nfams; i++)
        if (strcmp(x->fams[i], name) == 0)
            return ex_fail(why, wl, line, "family %s appears twice", name);
    if (x->nfams == EX_MAXFAM || strlen(name) >= sizeof(x->cur))
        return ex_fail(why, wl, line, "too many families / name too long");
    snprintf(x->fams[x->nfams++], sizeof(x->fams[0]), "%s", name);
    snprintf(x->cur, sizeof(x->cur), "%s", name);
    x->type[0] = '\0';
    x->state = 0;
    x->last_le = -INFINITY;
    x->last_bucket = 0;
    x->inf_count = 0;
    x->inf_seen = x->sum_seen = x->count_seen = false;
    return 0;
}

/* "name" at *p, advanced past it; false if there is none. */
static bool take_name(const char **p, char *out, size_t cap)
{
    size_t n = 0;
    if (!name_start(**p))
        return false;
    while (name_char(**p)) {
        if (n + 1 >= cap)
            return false;
        out[n++] = *(*p)++;
    }
    out[n] = '\0';
    return true;
}

/* Labels from just after '{' to just after '}'; the unescaped value of le
 * (if any) into le. Returns the number of labels or -1. */
static int take_labels(const char **pp, char *le, size_t lecap)
{
    const char *p = *pp;
    char names[8][64];
    int n = 0;
    le[0] = '\0';
    for (;;) {
        char lname[64], val[256];
        size_t vl = 0;
        if (n == NELEM(names) || !take_name(&p, lname, sizeof(lname)) ||
            strchr(lname, ':') != NULL || strncmp(lname, "__", 2) == 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], lname) == 0)
                return -1; /* duplicate label */
        snprintf(names[n++], sizeof(names[0]), "%s", lname);
        if (*p++ != '=' || *p++ != '"')
            return -1;
        while (*p != '"') {
            char ch = *p;
            if (ch == '\0')
                return -1;
            if (ch == '\\') {
                p++;
                if (*p == 'n')
                    ch = '\n';
                else if (*p == '\\' || *p == '"')
                    ch = *p;
                else
                    return -1; /* only \\, \" and \n exist */
            }
            if (vl + 1 < sizeof(val))
                val[vl++] = ch;
            p++;
        }
        val[vl] = '\0';
        p++;
        if (strcmp(lname, "le") == 0) {
            if (vl >= lecap)
                return -1;
            memcpy(le, val, vl + 1);
        }
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p++ != '}')
            return -1;
        *pp = p;
        return n;
    }
}

static int check_sample(struct expo *x, const char *l, char *why, size_t wl, int line)
{
    const char *p = l;
    char name[128], le[64] = "";
    int nlabels = 0;

    if (!take_name(&p, name, sizeof(name)))
        return ex_fail(why, wl, line, "bad metric name");
    if (x->state != 2)
        return ex_fail(why, wl, line, "sample %s before its HELP and TYPE", name);
    bool hist = strcmp(x->type, "histogram") == 0;
    const char *suffix = "";
    if (hist) {
        if (strncmp(name, x->cur, strlen(x->cur)) != 0)
            return ex_fail(why, wl, line, "sample %s outside family %s", name, x->cur);
        suffix = name + strlen(x->cur);
        if (strcmp(suffix, "_bucket") != 0 && strcmp(suffix, "_sum") != 0 &&
            strcmp(suffix, "_count") != 0)
            return ex_fail(why, wl, line, "histogram sample %s", name);
    } else {
        if (strcmp(name, x->cur) != 0)
            return ex_fail(why, wl, line, "sample %s outside family %s", name, x->cur);
    }
    if (*p == '{') {
        p++;
        nlabels = take_labels(&p, le, sizeof(le));
        if (nlabels < 0)
            return ex_fail(why, wl, line, "bad labels");
    }
    if (*p != ' ')
        return ex_fail(why, wl, line, "no single space before the value");
    size_t klen = (size_t)(p - l);
    p++;
    double v;
    if (parse_value(p, &v) < 0)
        return ex_fail(why, wl, line, "bad value \"%s\" (or a timestamp)", p);

    if (klen >= sizeof(x->series[0]) || x->nseries == EX_MAXSERIES)
        return ex_fail(why, wl, line, "series too long / too many");
    for (int i = 0; i < x->nseries; i++)
        if (strncmp(x->series[i], l, klen) == 0 && x->series[i][klen] == '\0')
            return ex_fail(why, wl, line, "duplicate series");
    memcpy(x->series[x->nseries], l, klen);
    x->series[x->nseries++][klen] = '\0';

    if (strcmp(x->type, "counter") == 0 && !(v >= 0 && isfinite(v)))
        return ex_fail(why, wl, line, "counter value %g", v);
    if (!hist)
        return 0;
    if (strcmp(suffix, "_bucket") == 0) {
        double lev;
        if (nlabels != 1 || le[0] == '\0' || parse_value(le, &lev) < 0 || isnan(lev))
            return ex_fail(why, wl, line, "bucket needs exactly one numeric le label");
        if (x->sum_seen || x->count_seen || x->inf_seen)
            return ex_fail(why, wl, line, "bucket after +Inf, _sum or _count");
        if (!(lev > x->last_le))
            return ex_fail(why, wl, line, "le not increasing");
        if (!(v >= x->last_bucket) || !isfinite(v))
            return ex_fail(why, wl, line, "buckets not cumulative");
        x->last_le = lev;
        x->last_bucket = v;
        if (isinf(lev)) {
            x->inf_seen = true;
            x->inf_count = v;
        }
        return 0;
    }
    if (nlabels != 0 || !x->inf_seen)
        return ex_fail(why, wl, line, "%s before the +Inf bucket", suffix);
    if (strcmp(suffix, "_sum") == 0) {
        x->sum_seen = true;
        if (!(v >= 0)) /* all our observations are durations */
            return ex_fail(why, wl, line, "negative _sum");
        return 0;
    }
    x->count_seen = true;
    if (v != x->inf_count)
        return ex_fail(why, wl, line, "_count %g != +Inf bucket %g", v, x->inf_count);
    return 0;
}

static int check_comment(struct expo *x, const char *l, char *why, size_t wl, int line)
{
    bool help = strncmp(l, "# HELP ", 7) == 0;
    if (!help && strncmp(l, "# TYPE ", 7) != 0)
        return ex_fail(why, wl, line, "comment that is neither HELP nor TYPE");
    const char *p = l + 7;
    char name[128];
    if (!take_name(&p, name, sizeof(name)) || *p != ' ' || p[1] == '\0')
        return ex_fail(why, wl, line, "bad %s line", help ? "HELP" : "TYPE");
    p++;
    if (help) {
        if (strcmp(name, x->cur) == 0)
            return ex_fail(why, wl, line, "second HELP for %s", name);
        if (start_family(x, name, why, wl, line) < 0)
            return -1;
        for (; *p != '\0'; p++)
            if (*p == '\\' && (p[1] == '\\' || p[1] == 'n'))
                p++;
            else if (*p == '\\')
                return ex_fail(why, wl, line, "bad escape in HELP");
        x->state = 1;
        return 0;
    }
    if (strcmp(name, x->cur) != 0 || x->state != 1)
        return ex_fail(why, wl, line, "TYPE %s not right after its HELP", name);
    if (strcmp(p, "counter") != 0 && strcmp(p, "gauge") != 0 && strcmp(p, "histogram") != 0)
        return ex_fail(why, wl, line, "type %s", p);
    if (strcmp(p, "counter") == 0 && !ends_with(name, "_total"))
        return ex_fail(why, wl, line, "counter %s does not end in _total", name);
    snprintf(x->type, sizeof(x->type), "%s", p);
    x->state = 2;
    return 0;
}

/* 0 if text is a valid exposition, else -1 with the reason in why. */
int expo_check(struct expo *x, const char *text, char *why, size_t wl)
{
    memset(x, 0, sizeof(*x));
    size_t len = strlen(text);
    int line = 0;
    if (len == 0 || text[len - 1] != '\n')
        return ex_fail(why, wl, 0, "empty or no final newline");
    if (!valid_utf8((const unsigned char *)text))
        return ex_fail(why, wl, 0, "not UTF-8");
    for (const char *p = text; *p != '\0';) {
        const char *e = strchr(p, '\n');
        char l[1024];
        line++;
        if ((size_t)(e - p) >= sizeof(l))
            return ex_fail(why, wl, line, "line too long");
        memcpy(l, p, (size_t)(e - p));
        l[e - p] = '\0';
        p = e + 1;
        if (l[0] == '\0')
            return ex_fail(why, wl, line, "empty line");
        if (strchr(l, '\r') != NULL || strchr(l, '\t') != NULL)
            return ex_fail(why, wl, line, "CR or TAB");
        int r =
            l[0] == '#' ? check_comment(x, l, why, wl, line) : check_sample(x, l, why, wl, line);
        if (r < 0)
            return -1;
    }
    return close_family(x, why, wl, line);
}

void expo_assert_valid(const char *text)
{
    static struct expo x; /* large */
    char why[256] = "";
    int r = expo_check(&x, text, why, sizeof(why));
    ck_assert_msg(r == 0, "invalid exposition: %s\n%s", why, text);
}
