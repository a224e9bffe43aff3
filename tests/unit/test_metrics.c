/*
 * test_metrics.c - unit tests for src/metrics.c and src/admin.c (the admin
 * endpoint's /metrics is checked with the same exposition checker).
 *
 * metrics_render's output goes through a strict line-by-line checker of the
 * Prometheus text format 0.0.4 written here (and itself tested on bad
 * input). Metric state is process-wide, so assertions on counters compare
 * before and after: the tests also pass with CK_FORK=no. The admin endpoint
 * is exercised over real loopback sockets by a libuv client on the same
 * loop, and every such test ends with uv_loop_close() == 0.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "admin.h"
#include "metrics.h"
#include "procstats.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ---- a strict checker for the text exposition format ---------------------- */

#define EX_MAXFAM 32
#define EX_MAXSERIES 512

struct expo {
    char fams[EX_MAXFAM][128];
    int nfams;
    char series[EX_MAXSERIES][320];
    int nseries;
    /* the family being read */
    char cur[128], type[16];
    int state; /* 0 nothing yet, 1 HELP seen, 2 TYPE seen */
    /* histogram bookkeeping */
    double last_le, last_bucket, inf_count;
    bool inf_seen, sum_seen, count_seen;
};

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
static int expo_check(struct expo *x, const char *text, char *why, size_t wl)
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

static struct expo ex; /* large; one at a time */

/* ---- helpers -------------------------------------------------------------- */

static char *render(void)
{
    /* The live process_* values may change length between the sizing call
     * and the render (CPU time 9.998 -> 10.002 s under valgrind): retry. */
    for (int attempt = 0;; attempt++) {
        size_t n = metrics_render(NULL, 0);
        char *buf = malloc(n + 1);
        ck_assert_ptr_nonnull(buf);
        size_t m = metrics_render(buf, n + 1);
        if (m != n && attempt < 3) {
            free(buf);
            continue;
        }
        ck_assert_uint_eq(m, n);
        ck_assert_uint_eq(strlen(buf), n);
        return buf;
    }
}

/* The value of one series ("name" or "name{labels}"), or -1 if absent. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

static double sum_prefix(const char *text, const char *prefix, int *count)
{
    double sum = 0;
    size_t n = strlen(prefix);
    *count = 0;
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, prefix, n) == 0) {
            const char *sp = strchr(p, ' ');
            sum += strtod(sp + 1, NULL);
            (*count)++;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return sum;
}

static void assert_valid(const char *text)
{
    char why[256] = "";
    int r = expo_check(&ex, text, why, sizeof(why));
    ck_assert_msg(r == 0, "invalid exposition: %s\n%s", why, text);
}

/* ---- metrics tests ----------------------------------------------------------- */

static const char *const families[] = {
    "pg_tls_proxy_sessions_total",
    "pg_tls_proxy_active_sessions",
    "pg_tls_proxy_bytes_total",
    "pg_tls_proxy_handshake_failures_total",
    "pg_tls_proxy_login_failures_total",
    "pg_tls_proxy_readiness_probe_failures_total",
    "pg_tls_proxy_upstream_connect_seconds",
    "pg_tls_proxy_upstream_last_success_timestamp_seconds",
    "pg_tls_proxy_cancel_requests_total",
    "pg_tls_proxy_reloads_total",
    "pg_tls_proxy_accept_pauses_total",
    "pg_tls_proxy_certificate_expiry_timestamp_seconds",
    "pg_tls_proxy_certificate_expiry_seconds",
    "pg_tls_proxy_front_sni_mismatch_total",
    "pg_tls_proxy_build_info",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_start_time_seconds",
};

/* Fixed process_* values: renders that must be byte-identical use them. */
static const struct process_stats fixed_ps = {.open_fds = 12,
                                              .max_fds = 1024,
                                              .rss_bytes = 4096,
                                              .virtual_bytes = 8192,
                                              .cpu_seconds = 1.5,
                                              .start_time = 1700000000};

START_TEST(test_render_valid_and_complete)
{
    metrics_freeze_process_stats(&fixed_ps);
    char *t = render();
    metrics_freeze_process_stats(NULL);
    assert_valid(t);
    ck_assert_int_eq(ex.nfams, NELEM(families));
    for (int i = 0; i < NELEM(families); i++)
        ck_assert_str_eq(ex.fams[i], families[i]);
    /* Every series that exists at zero is there. */
    for (int o = 0; o < OUT_COUNT; o++) {
        char s[128];
        snprintf(s, sizeof(s), "pg_tls_proxy_sessions_total{outcome=\"%s\"}",
                 metrics_outcome_name((enum metric_outcome)o));
        ck_assert_msg(value_of(t, s) >= 0, "%s missing", s);
    }
    const char *must[] = {
        "pg_tls_proxy_active_sessions",
        "pg_tls_proxy_bytes_total{direction=\"from_client\"}",
        "pg_tls_proxy_bytes_total{direction=\"from_upstream\"}",
        "pg_tls_proxy_handshake_failures_total{leg=\"front\",reason=\"other\"}",
        "pg_tls_proxy_handshake_failures_total{leg=\"back\",reason=\"other\"}",
        "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"0.001\"}",
        "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"0.0025\"}",
        "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"10\"}",
        "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"+Inf\"}",
        "pg_tls_proxy_upstream_connect_seconds_sum",
        "pg_tls_proxy_upstream_connect_seconds_count",
        "pg_tls_proxy_upstream_last_success_timestamp_seconds",
        "pg_tls_proxy_cancel_requests_total{result=\"forwarded\"}",
        "pg_tls_proxy_cancel_requests_total{result=\"coalesced\"}",
        "pg_tls_proxy_cancel_requests_total{result=\"rate_limited\"}",
        "pg_tls_proxy_cancel_requests_total{result=\"unknown_key\"}",
        "pg_tls_proxy_cancel_requests_total{result=\"over_limit\"}",
        "pg_tls_proxy_cancel_requests_total{result=\"denied\"}",
        "pg_tls_proxy_cancel_requests_total{result=\"failed\"}",
        "pg_tls_proxy_reloads_total{result=\"success\"}",
        "pg_tls_proxy_reloads_total{result=\"failure\"}",
    };
    for (int i = 0; i < NELEM(must); i++)
        ck_assert_msg(value_of(t, must[i]) >= 0, "%s missing", must[i]);
    int nb;
    sum_prefix(t, "pg_tls_proxy_upstream_connect_seconds_bucket{", &nb);
    ck_assert_int_eq(nb, 14);

    /* build_info names this build and the libraries actually loaded. */
    char bi[512];
    snprintf(bi, sizeof(bi),
             "pg_tls_proxy_build_info{version=\"%s\",openssl=\"%s\",libuv=\"%s\"} 1\n",
#ifdef PGTP_VERSION
             PGTP_VERSION,
#else
             "unknown",
#endif
             OpenSSL_version(OPENSSL_VERSION), uv_version_string());
    ck_assert_msg(strstr(t, bi) != NULL, "no %s in\n%s", bi, t);
    free(t);
}
END_TEST

START_TEST(test_counters_move)
{
    char *a = render();
    metrics_session_opened();
    metrics_session_opened();
    metrics_session_closed(OUT_CLOSED, 100, 2000);
    metrics_session_closed(OUT_UPSTREAM, 1, 2);
    metrics_session_opened();
    metrics_session_closed((enum metric_outcome)99, 0, 0); /* counts as error */
    metrics_cancel(CANCEL_FORWARDED);
    metrics_cancel(CANCEL_RATE_LIMITED);
    metrics_cancel(CANCEL_RATE_LIMITED);
    metrics_cancel((enum cancel_outcome)99); /* counts as failed */
    metrics_reload(true);
    metrics_reload(false);
    metrics_handshake_failed(0, "alert");
    metrics_handshake_failed(1, "verify");
    metrics_handshake_failed(1, "verify");
    int64_t active = metrics_active_sessions();
    metrics_session_opened();
    ck_assert_int_eq(metrics_active_sessions(), active + 1);
    char *b = render();
    assert_valid(b);

    const struct {
        const char *series;
        double delta;
    } want[] = {
        {"pg_tls_proxy_sessions_total{outcome=\"closed\"}", 1},
        {"pg_tls_proxy_sessions_total{outcome=\"upstream_error\"}", 1},
        {"pg_tls_proxy_sessions_total{outcome=\"error\"}", 1},
        {"pg_tls_proxy_sessions_total{outcome=\"timeout\"}", 0},
        {"pg_tls_proxy_active_sessions", 1},
        {"pg_tls_proxy_bytes_total{direction=\"from_client\"}", 101},
        {"pg_tls_proxy_bytes_total{direction=\"from_upstream\"}", 2002},
        {"pg_tls_proxy_cancel_requests_total{result=\"forwarded\"}", 1},
        {"pg_tls_proxy_cancel_requests_total{result=\"rate_limited\"}", 2},
        {"pg_tls_proxy_cancel_requests_total{result=\"failed\"}", 1},
        {"pg_tls_proxy_cancel_requests_total{result=\"unknown_key\"}", 0},
        {"pg_tls_proxy_reloads_total{result=\"success\"}", 1},
        {"pg_tls_proxy_reloads_total{result=\"failure\"}", 1},
        {"pg_tls_proxy_handshake_failures_total{leg=\"front\",reason=\"alert\"}", 1},
        {"pg_tls_proxy_handshake_failures_total{leg=\"back\",reason=\"verify\"}", 2},
    };
    for (int i = 0; i < NELEM(want); i++) {
        double before = value_of(a, want[i].series), after = value_of(b, want[i].series);
        if (before < 0)
            before = 0; /* a handshake series appears on first use */
        ck_assert_msg(after - before == want[i].delta, "%s: %g -> %g, want +%g", want[i].series,
                      before, after, want[i].delta);
    }
    metrics_session_closed(OUT_SHUTDOWN, 0, 0);
    ck_assert_int_eq(metrics_active_sessions(), active);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_outcome_names)
{
    for (int o = 0; o < OUT_COUNT; o++) {
        const char *n = metrics_outcome_name((enum metric_outcome)o);
        ck_assert_ptr_nonnull(n);
        ck_assert_int_eq(metrics_outcome_of(n), o);
        for (int p = 0; p < o; p++)
            ck_assert_str_ne(n, metrics_outcome_name((enum metric_outcome)p));
    }
    /* The words conn.c logs. */
    ck_assert_int_eq(metrics_outcome_of("protocol_error"), OUT_PROTOCOL);
    ck_assert_int_eq(metrics_outcome_of("upstream_error"), OUT_UPSTREAM);
    ck_assert_int_eq(metrics_outcome_of("front_tls_failed"), OUT_FRONT_TLS);
    ck_assert_int_eq(metrics_outcome_of("cancel_forwarded"), OUT_CANCEL);
    ck_assert_int_eq(metrics_outcome_of("cancel_failed"), OUT_CANCEL);
    ck_assert_int_eq(metrics_outcome_of("no such outcome"), OUT_ERROR);
    ck_assert_int_eq(metrics_outcome_of(""), OUT_ERROR);
    ck_assert_int_eq(metrics_outcome_of(NULL), OUT_ERROR);
    ck_assert_str_eq(metrics_outcome_name(OUT_COUNT), "error");
    ck_assert_str_eq(metrics_outcome_name((enum metric_outcome) - 1), "error");
}
END_TEST

#define BUCKET(le) "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"" le "\"}"

START_TEST(test_histogram)
{
    /* (observation ms, first bucket it lands in): bounds are inclusive. */
    const struct {
        double ms;
        const char *le;
        double sum_us;
    } obs[] = {
        {0.2, "0.001", 200},      {1.0, "0.001", 1000},  {1.0004, "0.001", 1000},
        {1.0006, "0.0025", 1001}, {2.5, "0.0025", 2500}, {7, "0.01", 7000},
        {1000, "1", 1e6},         {10000, "10", 1e7},    {10000.5, "+Inf", 10000500},
        {-5, "0.001", 0},         {NAN, "0.001", 0},     {INFINITY, "0.001", 0},
    };
    const char *les[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "+Inf"};
    for (int k = 0; k < NELEM(obs); k++) {
        char *a = render();
        time_t t0 = time(NULL);
        metrics_upstream_connected(obs[k].ms);
        char *b = render();
        assert_valid(b);
        bool reached = false;
        for (int i = 0; i < NELEM(les); i++) {
            char s[128];
            snprintf(s, sizeof(s), BUCKET("%s"), les[i]);
            reached = reached || strcmp(les[i], obs[k].le) == 0;
            double d = value_of(b, s) - value_of(a, s);
            ck_assert_msg(d == (reached ? 1 : 0), "%g ms: bucket le=%s moved by %g", obs[k].ms,
                          les[i], d);
        }
        const char *sum = "pg_tls_proxy_upstream_connect_seconds_sum";
        double ds = (value_of(b, sum) - value_of(a, sum)) * 1e6;
        ck_assert_msg(fabs(ds - obs[k].sum_us) < 0.5, "%g ms: sum moved by %g us", obs[k].ms, ds);
        const char *cnt = "pg_tls_proxy_upstream_connect_seconds_count";
        ck_assert(value_of(b, cnt) - value_of(a, cnt) == 1);
        /* ... and marks the last upstream success. */
        int64_t last = metrics_last_upstream_ok();
        ck_assert(last >= (int64_t)t0 && last <= (int64_t)time(NULL));
        ck_assert(value_of(b, "pg_tls_proxy_upstream_last_success_timestamp_seconds") >=
                  (double)t0);
        free(a);
        free(b);
    }
}
END_TEST

#define HS_FRONT "pg_tls_proxy_handshake_failures_total{leg=\"front\""
#define HS_OTHER(leg) "pg_tls_proxy_handshake_failures_total{leg=\"" leg "\",reason=\"other\"}"

START_TEST(test_handshake_bad_reasons)
{
    int n;
    char *a = render();
    /* Not label material (or too long for a slot): counted as "other". */
    metrics_handshake_failed(0, NULL);
    metrics_handshake_failed(0, "");
    metrics_handshake_failed(0, "two words");
    metrics_handshake_failed(0, "0123456789012345678901234567890123456789");
    metrics_handshake_failed(0, "tab\there");
    metrics_handshake_failed(0, "caf\xc3\xa9");
    metrics_handshake_failed(0, "other");
    /* Exactly 31 characters still fits. */
    metrics_handshake_failed(0, "0123456789012345678901234567890");
    char *b = render();
    assert_valid(b);
    ck_assert(value_of(b, HS_OTHER("front")) - value_of(a, HS_OTHER("front")) == 7);
    ck_assert(sum_prefix(b, HS_FRONT, &n) - sum_prefix(a, HS_FRONT, &n) == 8);
    ck_assert(value_of(b, "pg_tls_proxy_handshake_failures_total{leg=\"front\",reason="
                          "\"0123456789012345678901234567890\"}") >= 1);
    ck_assert_ptr_null(strstr(b, "two words"));
    ck_assert_ptr_null(strstr(b, "caf"));
    free(a);
    free(b);
}
END_TEST

START_TEST(test_handshake_table_full)
{
    int n;
    char *a = render();
    double front_a = sum_prefix(a, HS_FRONT, &n);
    /* More distinct reasons than the table holds: none is lost, the rest
     * are counted as reason="other" of their leg. */
    for (int i = 0; i < 40; i++) {
        char r[16];
        snprintf(r, sizeof(r), "r%d", i);
        metrics_handshake_failed(0, r);
        metrics_handshake_failed(0, r);
    }
    char *b = render();
    assert_valid(b);
    ck_assert(sum_prefix(b, HS_FRONT, &n) - front_a == 80);
    sum_prefix(b, "pg_tls_proxy_handshake_failures_total{", &n);
    ck_assert_int_eq(n, 32);
    ck_assert_ptr_nonnull(strstr(b, "reason=\"r0\"} 2\n"));
    ck_assert(value_of(b, HS_OTHER("front")) - value_of(a, HS_OTHER("front")) >= 2 * (40 - 30));

    /* Any leg but 0 is the back leg; a full table sends it to back's "other". */
    metrics_handshake_failed(7, "r39");
    metrics_handshake_failed(1, "brand_new");
    char *c = render();
    assert_valid(c);
    ck_assert(value_of(c, HS_OTHER("back")) - value_of(b, HS_OTHER("back")) == 2);
    ck_assert(value_of(c, HS_OTHER("front")) == value_of(b, HS_OTHER("front")));
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(test_label_escaping)
{
    metrics_clear_cert_expiry();
    metrics_set_cert_expiry("front", "CN=a\"b\\c\nd", 1893456000);
    metrics_set_cert_expiry("ca_root", "CN=Zo\xc3\xab Root,O=\xe2\x82\xac", 2000000000);
    metrics_set_cert_expiry("ca_root", "CN=\x01x\xff\xc0\xaf\xed\xa0\x80y\x7f", 5);
    metrics_set_cert_expiry("ca_root", NULL, 6);
    metrics_set_cert_expiry(NULL, "ignored", 7);
    /* Same series again: replaced, not duplicated. */
    metrics_set_cert_expiry("front", "CN=a\"b\\c\nd", 1893456001);
    char *t = render();
    assert_valid(t);
    const char *name = "pg_tls_proxy_certificate_expiry_timestamp_seconds";
    char want[256];
    snprintf(want, sizeof(want), "%s{which=\"front\",subject=\"CN=a\\\"b\\\\c\\nd\"} 1893456001\n",
             name);
    ck_assert_msg(strstr(t, want) != NULL, "no %s in\n%s", want, t);
    snprintf(want, sizeof(want),
             "%s{which=\"ca_root\",subject=\"CN=Zo\xc3\xab Root,O=\xe2\x82\xac\"} 2000000000\n",
             name);
    ck_assert_msg(strstr(t, want) != NULL, "no %s", want);
    /* Control bytes and non-UTF-8 (overlong, surrogate, stray) become '?'. */
    snprintf(want, sizeof(want), "%s{which=\"ca_root\",subject=\"CN=?x??????y?\"} 5\n", name);
    ck_assert_msg(strstr(t, want) != NULL, "no %s in\n%s", want, t);
    snprintf(want, sizeof(want), "%s{which=\"ca_root\",subject=\"\"} 6\n", name);
    ck_assert_msg(strstr(t, want) != NULL, "no %s", want);
    ck_assert_ptr_null(strstr(t, "ignored"));
    int n;
    sum_prefix(t, name, &n);
    ck_assert_int_eq(n, 4);
    free(t);

    metrics_clear_cert_expiry();
    t = render();
    assert_valid(t);
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s{", name);
    ck_assert_ptr_null(strstr(t, prefix));
    ck_assert_ptr_nonnull(strstr(t, "# TYPE pg_tls_proxy_certificate_expiry_timestamp_seconds "
                                    "gauge\n"));
    free(t);
}
END_TEST

START_TEST(test_buffer_too_small)
{
    metrics_freeze_process_stats(&fixed_ps);
    size_t n = metrics_render(NULL, 0);
    ck_assert_uint_gt(n, 1000);
    char *full = malloc(n + 1), *b = malloc(n + 1);
    ck_assert_uint_eq(metrics_render(full, n + 1), n);
    ck_assert_uint_eq(strlen(full), n);

    /* Exactly n bytes: no room for the NUL, so it does not fit: the length
     * needed comes back and the output is a NUL-terminated prefix. */
    memset(b, 'x', n + 1);
    ck_assert_uint_eq(metrics_render(b, n), n);
    ck_assert_uint_eq(strlen(b), n - 1);
    ck_assert(memcmp(b, full, n - 1) == 0);
    ck_assert_int_eq(b[n], 'x');

    memset(b, 'x', n + 1);
    ck_assert_uint_eq(metrics_render(b, 100), n);
    ck_assert_uint_eq(strlen(b), 99);
    ck_assert(memcmp(b, full, 99) == 0);
    ck_assert_int_eq(b[100], 'x');

    memset(b, 'x', n + 1);
    ck_assert_uint_eq(metrics_render(b, 1), n);
    ck_assert_int_eq(b[0], '\0');
    ck_assert_int_eq(b[1], 'x');

    memset(b, 'x', n + 1);
    ck_assert_uint_eq(metrics_render(b, 0), n);
    ck_assert_int_eq(b[0], 'x');

    /* More room than needed: the same text. */
    char *big = malloc(n + 100);
    ck_assert_uint_eq(metrics_render(big, n + 100), n);
    ck_assert_str_eq(big, full);
    free(big);
    free(full);
    free(b);
    metrics_freeze_process_stats(NULL);
}
END_TEST

/* The real process_* values: plausible, and as the kernel says. */
START_TEST(test_process_metrics)
{
    int cnt;
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    char *t = render();
    assert_valid(t);
    double fds = sum_prefix(t, "process_open_fds", &cnt);
    double max = sum_prefix(t, "process_max_fds", &cnt);
    double rss = sum_prefix(t, "process_resident_memory_bytes", &cnt);
    double start = sum_prefix(t, "process_start_time_seconds", &cnt);
    ck_assert_msg(fds >= 3 && fds < 1000, "open fds %g", fds); /* stdin, stdout, stderr */
    ck_assert_msg(max == (double)rl.rlim_cur, "max fds %g, limit %llu", max,
                  (unsigned long long)rl.rlim_cur);
    ck_assert_msg(rss > 100000, "rss %g", rss);
    ck_assert_msg(start > 1.6e9 && start <= (double)time(NULL), "start %g", start);
    ck_assert_ptr_nonnull(strstr(t, "\nprocess_cpu_seconds_total "));
    free(t);
}
END_TEST

/* Login failures by SQLSTATE; probe failures apart from handshake failures. */
START_TEST(test_login_and_probe_failures)
{
    int cnt;
    char *t = render();
    double l0 = sum_prefix(t, "pg_tls_proxy_login_failures_total{sqlstate=\"28P01\"}", &cnt);
    double o0 = sum_prefix(t, "pg_tls_proxy_login_failures_total{sqlstate=\"other\"}", &cnt);
    double p0 = sum_prefix(t, "pg_tls_proxy_readiness_probe_failures_total", &cnt);
    double h0 = sum_prefix(t, "pg_tls_proxy_handshake_failures_total", &cnt);
    free(t);
    metrics_login_failed("28P01");
    metrics_login_failed("28P01");
    metrics_login_failed("bad\"code"); /* never a label value */
    metrics_login_failed(NULL);
    metrics_probe_failed();
    t = render();
    assert_valid(t);
    ck_assert(sum_prefix(t, "pg_tls_proxy_login_failures_total{sqlstate=\"28P01\"}", &cnt) ==
              l0 + 2);
    ck_assert(sum_prefix(t, "pg_tls_proxy_login_failures_total{sqlstate=\"other\"}", &cnt) ==
              o0 + 2);
    ck_assert(sum_prefix(t, "pg_tls_proxy_readiness_probe_failures_total", &cnt) == p0 + 1);
    ck_assert(sum_prefix(t, "pg_tls_proxy_handshake_failures_total", &cnt) == h0);
    ck_assert_ptr_null(strstr(t, "bad"));
    free(t);
}
END_TEST

/* The checker must reject what Prometheus would (else the tests above prove
 * little). Each row breaks one rule. */
static const struct {
    const char *text;
    const char *why;
} bad_expositions[] = {
    {"", "empty"},
    {"# HELP a_total x\n# TYPE a_total counter\na_total 1", "final newline"},
    {"a 1\n", "before its HELP"},
    {"# TYPE a gauge\na 1\n", "neither|not right after"},
    {"# HELP a x\na 1\n", "before its HELP and TYPE"},
    {"# HELP a x\n# TYPE a gauge\n\na 1\n", "empty line"},
    {"# HELP a x\n# TYPE a gauge\n# TYPE a gauge\na 1\n", "not right after"},
    {"# HELP a x\n# HELP a y\n", "second HELP"},
    {"# HELP a x\n# TYPE a summary\n", "type summary"},
    {"# HELP a x\n# TYPE a counter\n", "_total"},
    {"# HELP a x\n# TYPE a gauge\nb 1\n", "outside family"},
    {"# HELP a x\n# TYPE a gauge\na  1\n", "bad value"},
    {"# HELP a x\n# TYPE a gauge\na 1 1700000000\n", "bad value"},
    {"# HELP a x\n# TYPE a gauge\na one\n", "bad value"},
    {"# HELP a x\n# TYPE a gauge\na{} 1\n", "bad labels"},
    {"# HELP a x\n# TYPE a gauge\na{l=\"x\",} 1\n", "bad labels"},
    {"# HELP a x\n# TYPE a gauge\na{l=\"x\",l=\"y\"} 1\n", "bad labels"},
    {"# HELP a x\n# TYPE a gauge\na{l=\"a\\tb\"} 1\n", "bad labels"},
    {"# HELP a x\n# TYPE a gauge\na{l=\"x} 1\n", "bad labels"},
    {"# HELP a x\n# TYPE a gauge\na{l=x} 1\n", "bad labels"},
    {"# HELP a x\n# TYPE a gauge\na{l=\"\xff\"} 1\n", "UTF-8"},
    {"# HELP a x\n# TYPE a gauge\na{l=\"1\"} 1\na{l=\"1\"} 2\n", "duplicate"},
    {"# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\n# HELP a x\n",
     "appears twice"},
    {"# HELP a_total x\n# TYPE a_total counter\na_total -1\n", "counter value"},
    {"# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
     "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
     "not cumulative"},
    {"# HELP h x\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
     "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
     "le not increasing"},
    {"# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
     "h_sum 1\nh_count 3\n",
     "_count 3"},
    {"# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n", "_sum before"},
    {"# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
     "h_count 1\n",
     "lacks"},
    {"# HELP h x\n# TYPE h histogram\nh_bucket 1\n", "exactly one numeric le"},
    {"# HELP h x\n# TYPE h histogram\nh_total 1\n", "histogram sample"},
};

START_TEST(test_checker_rejects)
{
    char why[256] = "";
    const char *text = bad_expositions[_i].text;
    ck_assert_msg(expo_check(&ex, text, why, sizeof(why)) < 0, "accepted:\n%s", text);
    /* "a|b": either reason */
    char alts[64];
    snprintf(alts, sizeof(alts), "%s", bad_expositions[_i].why);
    bool found = false;
    for (char *tok = strtok(alts, "|"); tok != NULL; tok = strtok(NULL, "|"))
        found = found || strstr(why, tok) != NULL;
    ck_assert_msg(found, "reason \"%s\", want \"%s\"", why, bad_expositions[_i].why);
}
END_TEST

START_TEST(test_checker_accepts)
{
    char why[256] = "";
    const char *good = "# HELP a_total x \\\\ \\n y\n# TYPE a_total counter\n"
                       "a_total{l=\"q\\\"\\\\\\n\",m=\"\"} 1.5e3\n"
                       "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 0\n"
                       "h_bucket{le=\"+Inf\"} 3\nh_sum 1.25\nh_count 3\n"
                       "# HELP g x\n# TYPE g gauge\n";
    ck_assert_msg(expo_check(&ex, good, why, sizeof(why)) == 0, "%s", why);
}
END_TEST

/* ---- admin_start: address validation ------------------------------------------ */

static const struct {
    const char *addr, *err;
} bad_addrs[] = {
    {"", "--admin-address \"\": empty"},
    {"abc", "--admin-address \"abc\": port \"abc\" is not a number from 1 to 65535"},
    {"0", "port \"0\" is not a number"},
    {"65536", "port \"65536\""},
    {"123456", "port \"123456\""},
    {"-1", "port \"-1\""},
    {"1.2.3.4:", "port \"\" is not"},
    {"1.2.3.4:+80", "port \"+80\""},
    {"1.2.3.4: 80", "port \" 80\""},
    {"1.2.3.4:80x", "port \"80x\""},
    {":9187", "\":9187\": expected host:port, [ipv6]:port or a port"},
    {"::1:9187", "an IPv6 address goes in brackets"},
    {"::1", "an IPv6 address goes in brackets"},
    {"[::1]", "expected [ipv6]:port"},
    {"[::1]9187", "expected [ipv6]:port"},
    {"[::1:9187", "expected [ipv6]:port"},
    {"[]:9187", "not an IPv6 address in brackets"},
    {"[1.2.3.4]:9187", "\"1.2.3.4\" is not an IPv6 address"},
    {"[::1]:0", "port \"0\""},
    {"999.1.1.1:9187", "\"999.1.1.1\" is not a numeric IPv4 address"},
    {"1.2.3:9187", "\"1.2.3\" is not a numeric IPv4 address"},
    {"example.com:9187", "\"example.com\" is not a numeric IPv4 address"},
    {"a\"b:1", "\"a\\\"b:1\": \"a\\\"b\" is not a numeric"},
};

START_TEST(test_admin_bad_address)
{
    uv_loop_t loop;
    char err[256] = "";
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(admin_start(&loop, bad_addrs[_i].addr, 30, err, sizeof(err)), -1);
    ck_assert_msg(strncmp(err, "--admin-address \"", 17) == 0, "%s", err);
    ck_assert_msg(strstr(err, bad_addrs[_i].err) != NULL, "\"%s\": got \"%s\", want \"%s\"",
                  bad_addrs[_i].addr, err, bad_addrs[_i].err);
    /* Refused before any handle exists. */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- admin endpoint over loopback ---------------------------------------------- */

/* A port that was free a moment ago (bind to 0 and ask). */
static int free_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    const char *req;
    size_t reqlen;
    bool half_close, written, done;
    size_t rlen;
    char resp[256 * 1024];
};

static void cl_close_cb(uv_handle_t *h)
{
    struct client *cl = h->data;
    cl->done = true;
}

static void cl_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct client *cl = h->data;
    (void)suggested;
    *buf = uv_buf_init(cl->resp + cl->rlen, (unsigned)(sizeof(cl->resp) - 1 - cl->rlen));
}

static void cl_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct client *cl = s->data;
    (void)buf;
    if (nread > 0)
        cl->rlen += (size_t)nread;
    else if (nread < 0 && !uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, cl_close_cb);
}

static void cl_shutdown_cb(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

static void cl_write_cb(uv_write_t *req, int status)
{
    struct client *cl = req->data;
    (void)status;
    cl->written = true;
}

static void cl_connect_cb(uv_connect_t *req, int status)
{
    struct client *cl = req->data;
    ck_assert_msg(status == 0, "connect: %s", uv_strerror(status));
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)cl->req, (unsigned)cl->reqlen);
    cl->wreq.data = cl;
    ck_assert_int_eq(uv_write(&cl->wreq, (uv_stream_t *)&cl->tcp, &b, 1, cl_write_cb), 0);
    /* FIN right behind the request, so the server sees both in one read. */
    if (cl->half_close)
        ck_assert_int_eq(uv_shutdown(&cl->sreq, (uv_stream_t *)&cl->tcp, cl_shutdown_cb), 0);
    ck_assert_int_eq(uv_read_start((uv_stream_t *)&cl->tcp, cl_alloc_cb, cl_read_cb), 0);
}

static void cl_start(uv_loop_t *loop, int port, struct client *cl, const char *req, size_t len)
{
    struct sockaddr_in sin;
    memset(cl, 0, sizeof(*cl));
    cl->req = req;
    cl->reqlen = len;
    uv_ip4_addr("127.0.0.1", port, &sin);
    ck_assert_int_eq(uv_tcp_init(loop, &cl->tcp), 0);
    cl->tcp.data = cl;
    cl->creq.data = cl;
    ck_assert_int_eq(
        uv_tcp_connect(&cl->creq, &cl->tcp, (const struct sockaddr *)&sin, cl_connect_cb), 0);
}

/* Send req, read the whole response (until the server closes). */
static void exchange(uv_loop_t *loop, int port, struct client *cl, const char *req, size_t len)
{
    cl_start(loop, port, cl, req, len);
    while (!cl->done)
        uv_run(loop, UV_RUN_ONCE);
    cl->resp[cl->rlen] = '\0';
}

static struct client g_cl; /* large */

/* Check status line and headers; return the body. */
static const char *check_response(const struct client *c, int status, bool head)
{
    char want[64];
    snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
    ck_assert_msg(strncmp(c->resp, want, strlen(want)) == 0, "want %s, got:\n%s", want, c->resp);
    const char *end = strstr(c->resp, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    const char *body = end + 4;
    ck_assert_ptr_nonnull(strstr(c->resp, "\r\nConnection: close\r\n"));
    const char *cl_hdr = strstr(c->resp, "\r\nContent-Length: ");
    ck_assert(cl_hdr != NULL && cl_hdr < end);
    size_t clen = strtoul(cl_hdr + 18, NULL, 10);
    size_t blen = c->rlen - (size_t)(body - c->resp);
    ck_assert_uint_eq(blen, head ? 0 : clen);
    if (head)
        ck_assert_uint_gt(clen, 0);
    return body;
}

static uv_loop_t g_loop;

static int start_admin(unsigned window)
{
    char err[256], addr[32];
    int port = free_port();
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ck_assert_int_eq(uv_loop_init(&g_loop), 0);
    ck_assert_msg(admin_start(&g_loop, addr, window, err, sizeof(err)) == 0, "%s", err);
    return port;
}

static void stop_admin(void)
{
    admin_stop();
    ck_assert_int_eq(uv_run(&g_loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&g_loop), 0);
}

#define REQ(s) s, sizeof(s) - 1

START_TEST(test_admin_endpoints)
{
    int port = start_admin(30);
    const char *body;

    exchange(&g_loop, port, &g_cl, REQ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    body = check_response(&g_cl, 200, false);
    ck_assert_ptr_nonnull(
        strstr(g_cl.resp, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert_valid(body);

    exchange(&g_loop, port, &g_cl, REQ("HEAD /metrics HTTP/1.0\r\n\r\n"));
    check_response(&g_cl, 200, true);

    admin_set_listening(true);
    exchange(&g_loop, port, &g_cl, REQ("GET /healthz HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 200, false), "ok\n");
    admin_set_listening(false);
    exchange(&g_loop, port, &g_cl, REQ("GET /healthz HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 503, false);
    exchange(&g_loop, port, &g_cl, REQ("HEAD /healthz HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 503, true);

    if (metrics_last_upstream_ok() == 0) {
        exchange(&g_loop, port, &g_cl, REQ("GET /readyz HTTP/1.1\r\n\r\n"));
        ck_assert_str_eq(check_response(&g_cl, 503, false),
                         "not ready: no upstream TLS handshake in the last 30 s\n");
    }
    metrics_upstream_connected(3.5);
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 200, false), "ready\n");

    exchange(&g_loop, port, &g_cl, REQ("POST /metrics HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"));
    check_response(&g_cl, 405, false);
    ck_assert_ptr_nonnull(strstr(g_cl.resp, "\r\nAllow: GET, HEAD\r\n"));
    exchange(&g_loop, port, &g_cl, REQ("get /metrics HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 405, false);

    exchange(&g_loop, port, &g_cl, REQ("GET /nope HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);
    /* A query string selects nothing: the path alone decides. */
    exchange(&g_loop, port, &g_cl, REQ("GET /readyz?probe=kubelet HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 200, false), "ready\n");
    exchange(&g_loop, port, &g_cl, REQ("GET /nope?x=1 HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);
    exchange(&g_loop, port, &g_cl, REQ("GET /metrics/ HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);
    exchange(&g_loop, port, &g_cl, REQ("DELETE /x HTTP/1.1\r\n\r\n"));
    check_response(&g_cl, 404, false);

    exchange(&g_loop, port, &g_cl, REQ("GET /metrics HTTP/1.1\n\n"));
    check_response(&g_cl, 400, false);
    exchange(&g_loop, port, &g_cl, REQ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"));
    check_response(&g_cl, 400, false);
    exchange(&g_loop, port, &g_cl, REQ("GET /metrics HTTP/2.0\r\n\r\n"));
    check_response(&g_cl, 400, false);

    /* A head that has not ended within 4096 bytes: 431, and the response
     * arrives intact although the client is still sending (lingering close). */
    static char big[20000];
    int off = snprintf(big, sizeof(big), "GET /metrics HTTP/1.1\r\n");
    while (off < 19000)
        off += snprintf(big + off, sizeof(big) - (size_t)off, "X-Pad: %060d\r\n", off);
    exchange(&g_loop, port, &g_cl, big, (size_t)off);
    check_response(&g_cl, 431, false);
    off += snprintf(big + off, sizeof(big) - (size_t)off, "\r\n");
    exchange(&g_loop, port, &g_cl, big, (size_t)off);
    check_response(&g_cl, 431, false);
    /* ... while 4095 bytes that end the head are fine. */
    off = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nX-Pad: ");
    memset(big + off, 'a', 4095 - 4 - (size_t)off);
    memcpy(big + 4095 - 4, "\r\n\r\n", 5);
    exchange(&g_loop, port, &g_cl, big, 4095);
    check_response(&g_cl, 503, false);

    /* A client that half-closes after its request (nc -N) gets the whole
     * response and the connection ends at once, not after the linger time. */
    uint64_t t0 = uv_hrtime();
    cl_start(&g_loop, port, &g_cl, REQ("GET /metrics HTTP/1.0\r\n\r\n"));
    g_cl.half_close = true;
    while (!g_cl.done)
        uv_run(&g_loop, UV_RUN_ONCE);
    g_cl.resp[g_cl.rlen] = '\0';
    assert_valid(check_response(&g_cl, 200, false));
    ck_assert_uint_lt(uv_hrtime() - t0, 1000000000ull);

    /* A client that gives up half-way: closed without a response. */
    cl_start(&g_loop, port, &g_cl, REQ("GET /metr"));
    g_cl.half_close = true;
    while (!g_cl.done)
        uv_run(&g_loop, UV_RUN_ONCE);
    ck_assert_uint_eq(g_cl.rlen, 0);

    stop_admin();
}
END_TEST

static void tick_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* admin_stop closes connections that are mid-request, so the loop ends now
 * rather than after the 10 s timeout (the test would time out first). */
START_TEST(test_admin_stop_closes_idle)
{
    int port = start_admin(30);
    static struct client c1, c2;
    cl_start(&g_loop, port, &c1, REQ("GET /metr"));
    cl_start(&g_loop, port, &c2, REQ("G"));
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&g_loop, &t);
    t.data = &fired;
    uv_timer_start(&t, tick_cb, 200, 0);
    while (!fired)
        uv_run(&g_loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    ck_assert(c1.written && c2.written && !c1.done && !c2.done);

    uint64_t t0 = uv_hrtime();
    admin_stop();
    /* The server's close reaches the clients as EOF; they close. */
    ck_assert_int_eq(uv_run(&g_loop, UV_RUN_DEFAULT), 0);
    ck_assert(c1.done && c2.done);
    ck_assert_uint_eq(c1.rlen + c2.rlen, 0);
    ck_assert_uint_lt(uv_hrtime() - t0, 1000000000ull);
    ck_assert_int_eq(uv_loop_close(&g_loop), 0);
}
END_TEST

static void closed_cb(uv_handle_t *h)
{
    *(bool *)h->data = false;
}

/* Run the loop for ms milliseconds. */
static void run_for(uint64_t ms)
{
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(&g_loop, &t);
    t.data = &fired;
    uv_timer_start(&t, tick_cb, ms, 0);
    while (!fired)
        uv_run(&g_loop, UV_RUN_ONCE);
    t.data = &fired;
    uv_close((uv_handle_t *)&t, closed_cb);
    while (fired) /* t lives on this stack: until its close callback */
        uv_run(&g_loop, UV_RUN_ONCE);
}

/* A full table of clients that never finish their request does not starve
 * a probe (issue 11): the oldest of them makes room, the others stay. */
START_TEST(test_admin_full_evicts_oldest_idle)
{
    enum { N = 64 };
    int port = start_admin(30);
    struct client *idle = calloc(N, sizeof(*idle));
    ck_assert_ptr_nonnull(idle);
    cl_start(&g_loop, port, &idle[0], REQ("GET /heal"));
    run_for(50);
    for (int i = 1; i < N; i++)
        cl_start(&g_loop, port, &idle[i], REQ("G"));
    /* Until all 64 are connected and written (a loaded machine takes its
     * time), well inside the endpoint's 2 s head deadline. */
    for (int waited = 0, all = 0; !all && waited < 1500; waited += 50) {
        run_for(50);
        all = 1;
        for (int i = 0; i < N; i++)
            all = all && idle[i].written;
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(idle[i].written && !idle[i].done, "idle client %d", i);

    admin_set_listening(true);
    exchange(&g_loop, port, &g_cl, REQ("GET /healthz HTTP/1.1\r\n\r\n"));
    ck_assert_str_eq(check_response(&g_cl, 200, false), "ok\n");
    run_for(50);
    ck_assert(idle[0].done && idle[0].rlen == 0); /* evicted, unanswered */
    for (int i = 1; i < N; i++)
        ck_assert_msg(!idle[i].done, "idle client %d closed too", i);

    admin_stop();
    ck_assert_int_eq(uv_run(&g_loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(uv_loop_close(&g_loop), 0);
    free(idle);
}
END_TEST

START_TEST(test_admin_start_errors)
{
    char err[256], addr[32];
    int port = start_admin(30);

    /* Only one admin endpoint. */
    ck_assert_int_eq(admin_start(&g_loop, "127.0.0.1:1", 30, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "--admin-address: the admin endpoint is already running");

    /* Address in use: the error names the option and the reason. */
    uv_loop_t l2;
    ck_assert_int_eq(uv_loop_init(&l2), 0);
    admin_stop();
    ck_assert_int_eq(uv_run(&g_loop, UV_RUN_DEFAULT), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", port, &sin);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ck_assert_int_eq(admin_start(&l2, addr, 30, err, sizeof(err)), -1);
    char want[128];
    snprintf(want, sizeof(want), "--admin-address \"%s\": cannot listen: Address already in use",
             addr);
    ck_assert_str_eq(err, want);
    close(fd);
    ck_assert_int_eq(uv_loop_close(&l2), 0);

    /* And it starts again after a stop, on another loop. */
    ck_assert_int_eq(uv_loop_close(&g_loop), 0);
    port = start_admin(30);
    exchange(&g_loop, port, &g_cl, REQ("GET /healthz HTTP/1.1\r\n\r\n"));
    ck_assert_int_eq(strncmp(g_cl.resp, "HTTP/1.1 ", 9), 0);
    stop_admin();
}
END_TEST

Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");

    TCase *m = tcase_create("render");
    tcase_add_test(m, test_render_valid_and_complete);
    tcase_add_test(m, test_counters_move);
    tcase_add_test(m, test_outcome_names);
    tcase_add_test(m, test_histogram);
    tcase_add_test(m, test_handshake_bad_reasons);
    tcase_add_test(m, test_handshake_table_full);
    tcase_add_test(m, test_label_escaping);
    tcase_add_test(m, test_buffer_too_small);
    tcase_add_test(m, test_process_metrics);
    tcase_add_test(m, test_login_and_probe_failures);
    tcase_add_loop_test(m, test_checker_rejects, 0, NELEM(bad_expositions));
    tcase_add_test(m, test_checker_accepts);
    suite_add_tcase(s, m);

    TCase *a = tcase_create("admin");
    tcase_set_timeout(a, 10);
    tcase_add_loop_test(a, test_admin_bad_address, 0, NELEM(bad_addrs));
    tcase_add_test(a, test_admin_endpoints);
    tcase_add_test(a, test_admin_stop_closes_idle);
    tcase_add_test(a, test_admin_full_evicts_oldest_idle);
    tcase_add_test(a, test_admin_start_errors);
    suite_add_tcase(s, a);

    return s;
}
