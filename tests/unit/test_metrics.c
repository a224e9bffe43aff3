/*
 * test_metrics.c - unit tests for src/metrics.c (the admin endpoint's own
 * tests are in test_admin.c).
 *
 * metrics_render's output goes through a strict line-by-line checker of the
 * Prometheus text format 0.0.4 (promcheck.c, shared with test_admin.c; it
 * is itself tested on bad input here). Metric state is process-wide, so
 * assertions on counters compare before and after: the tests also pass
 * with CK_FORK=no.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "admin.h"
#include "metrics.h"
#include "procstats.h"
#include "promcheck.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

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
    "pg_tls_proxy_session_duration_seconds",
    "pg_tls_proxy_front_handshake_seconds",
    "pg_tls_proxy_back_handshake_seconds",
    "pg_tls_proxy_max_connections",
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
        snprintf(s, sizeof(s), "pg_tls_proxy_sessions_total{outcome=\"%s\",route=\"-\"}",
                 metrics_outcome_name((enum metric_outcome)o));
        ck_assert_msg(value_of(t, s) >= 0, "%s missing", s);
    }
    const char *must[] = {
        "pg_tls_proxy_active_sessions{route=\"-\"}",
        "pg_tls_proxy_bytes_total{direction=\"from_client\"}",
        "pg_tls_proxy_bytes_total{direction=\"from_upstream\"}",
        "pg_tls_proxy_handshake_failures_total{leg=\"front\",reason=\"other\",route=\"-\"}",
        "pg_tls_proxy_handshake_failures_total{leg=\"back\",reason=\"other\",route=\"-\"}",
        "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"0.001\"}",
        "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"0.0025\"}",
        "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"10\"}",
        "pg_tls_proxy_upstream_connect_seconds_bucket{le=\"+Inf\"}",
        "pg_tls_proxy_upstream_connect_seconds_sum",
        "pg_tls_proxy_upstream_connect_seconds_count",
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
    const unsigned R = METRICS_ROUTE_NONE;
    char *a = render();
    metrics_session_opened(R);
    metrics_session_opened(R);
    metrics_session_closed(R, OUT_CLOSED, 100, 2000);
    metrics_session_closed(R, OUT_UPSTREAM, 1, 2);
    metrics_session_opened(R);
    metrics_session_closed(R, (enum metric_outcome)99, 0, 0); /* counts as error */
    metrics_cancel(CANCEL_FORWARDED);
    metrics_cancel(CANCEL_RATE_LIMITED);
    metrics_cancel(CANCEL_RATE_LIMITED);
    metrics_cancel((enum cancel_outcome)99); /* counts as failed */
    metrics_reload(true);
    metrics_reload(false);
    metrics_handshake_failed(0, "alert", R);
    metrics_handshake_failed(1, "verify", R);
    metrics_handshake_failed(1, "verify", R);
    int64_t active = metrics_active_sessions();
    metrics_session_opened(R);
    ck_assert_int_eq(metrics_active_sessions(), active + 1);
    char *b = render();
    assert_valid(b);

    const struct {
        const char *series;
        double delta;
    } want[] = {
        {"pg_tls_proxy_sessions_total{outcome=\"closed\",route=\"-\"}", 1},
        {"pg_tls_proxy_sessions_total{outcome=\"upstream_error\",route=\"-\"}", 1},
        {"pg_tls_proxy_sessions_total{outcome=\"error\",route=\"-\"}", 1},
        {"pg_tls_proxy_sessions_total{outcome=\"timeout\",route=\"-\"}", 0},
        {"pg_tls_proxy_active_sessions{route=\"-\"}", 1},
        {"pg_tls_proxy_bytes_total{direction=\"from_client\"}", 101},
        {"pg_tls_proxy_bytes_total{direction=\"from_upstream\"}", 2002},
        {"pg_tls_proxy_cancel_requests_total{result=\"forwarded\"}", 1},
        {"pg_tls_proxy_cancel_requests_total{result=\"rate_limited\"}", 2},
        {"pg_tls_proxy_cancel_requests_total{result=\"failed\"}", 1},
        {"pg_tls_proxy_cancel_requests_total{result=\"unknown_key\"}", 0},
        {"pg_tls_proxy_reloads_total{result=\"success\"}", 1},
        {"pg_tls_proxy_reloads_total{result=\"failure\"}", 1},
        {"pg_tls_proxy_handshake_failures_total{leg=\"front\",reason=\"alert\",route=\"-\"}", 1},
        {"pg_tls_proxy_handshake_failures_total{leg=\"back\",reason=\"verify\",route=\"-\"}", 2},
    };
    for (int i = 0; i < NELEM(want); i++) {
        double before = value_of(a, want[i].series), after = value_of(b, want[i].series);
        if (before < 0)
            before = 0; /* a handshake series appears on first use */
        ck_assert_msg(after - before == want[i].delta, "%s: %g -> %g, want +%g", want[i].series,
                      before, after, want[i].delta);
    }
    metrics_session_closed(R, OUT_SHUTDOWN, 0, 0);
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
    unsigned hist_route = metrics_route_slot("tm_hist");
    for (int k = 0; k < NELEM(obs); k++) {
        char *a = render();
        time_t t0 = time(NULL);
        metrics_upstream_connected(hist_route, obs[k].ms);
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
        ck_assert(value_of(b, "pg_tls_proxy_upstream_last_success_timestamp_seconds{route="
                              "\"tm_hist\"}") >= (double)t0);
        ck_assert(metrics_route_last_ok(hist_route) >= (int64_t)t0);
        free(a);
        free(b);
    }
}
END_TEST

#define HS_FRONT "pg_tls_proxy_handshake_failures_total{leg=\"front\""
#define HS_OTHER(leg)                                                                              \
    "pg_tls_proxy_handshake_failures_total{leg=\"" leg "\",reason=\"other\",route=\"-\"}"

START_TEST(test_handshake_bad_reasons)
{
    int n;
    char *a = render();
    /* Not label material (or too long for a slot): counted as "other". */
    metrics_handshake_failed(0, NULL, METRICS_ROUTE_NONE);
    metrics_handshake_failed(0, "", METRICS_ROUTE_NONE);
    metrics_handshake_failed(0, "two words", METRICS_ROUTE_NONE);
    metrics_handshake_failed(0, "0123456789012345678901234567890123456789", METRICS_ROUTE_NONE);
    metrics_handshake_failed(0, "tab\there", METRICS_ROUTE_NONE);
    metrics_handshake_failed(0, "caf\xc3\xa9", METRICS_ROUTE_NONE);
    metrics_handshake_failed(0, "other", METRICS_ROUTE_NONE);
    /* Exactly 31 characters still fits. */
    metrics_handshake_failed(0, "0123456789012345678901234567890", METRICS_ROUTE_NONE);
    char *b = render();
    assert_valid(b);
    ck_assert(value_of(b, HS_OTHER("front")) - value_of(a, HS_OTHER("front")) == 7);
    ck_assert(sum_prefix(b, HS_FRONT, &n) - sum_prefix(a, HS_FRONT, &n) == 8);
    ck_assert(value_of(b, "pg_tls_proxy_handshake_failures_total{leg=\"front\",reason="
                          "\"0123456789012345678901234567890\",route=\"-\"}") >= 1);
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
    for (int i = 0; i < 520; i++) {
        char r[16];
        snprintf(r, sizeof(r), "r%d", i);
        metrics_handshake_failed(0, r, METRICS_ROUTE_NONE);
        metrics_handshake_failed(0, r, METRICS_ROUTE_NONE);
    }
    char *b = render();
    assert_valid(b);
    ck_assert(sum_prefix(b, HS_FRONT, &n) - front_a == 1040);
    sum_prefix(b, "pg_tls_proxy_handshake_failures_total{", &n);
    ck_assert_int_eq(n, 512);
    ck_assert_ptr_nonnull(strstr(b, "reason=\"r0\",route=\"-\"} 2\n"));
    ck_assert(value_of(b, HS_OTHER("front")) - value_of(a, HS_OTHER("front")) >= 2 * (520 - 510));

    /* Any leg but 0 is the back leg; a full table sends it to back's "other". */
    metrics_handshake_failed(7, "r39", METRICS_ROUTE_NONE);
    metrics_handshake_failed(1, "brand_new", METRICS_ROUTE_NONE);
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
#define LF(state, reason)                                                                          \
    "pg_tls_proxy_login_failures_total{sqlstate=\"" state "\",reason=\"" reason "\",route=\"-\"}"
    double l0 = sum_prefix(t, LF("28P01", "upstream"), &cnt);
    double w0 = sum_prefix(t, LF("28P01", "password"), &cnt);
    double o0 = sum_prefix(t, LF("other", "upstream"), &cnt);
    double r0 = sum_prefix(t, LF("28000", "other"), &cnt);
    double p0 = sum_prefix(t, "pg_tls_proxy_readiness_probe_failures_total", &cnt);
    double h0 = sum_prefix(t, "pg_tls_proxy_handshake_failures_total", &cnt);
    free(t);
    metrics_login_failed("28P01", "upstream", METRICS_ROUTE_NONE);
    metrics_login_failed("28P01", "upstream", METRICS_ROUTE_NONE);
    metrics_login_failed("28P01", "password", METRICS_ROUTE_NONE);     /* a series of its own */
    metrics_login_failed("bad\"code", "upstream", METRICS_ROUTE_NONE); /* never a label value */
    metrics_login_failed(NULL, "upstream", METRICS_ROUTE_NONE);
    metrics_login_failed("28000", "Bad\"Reason", METRICS_ROUTE_NONE); /* nor this */
    metrics_probe_failed(metrics_route_slot("tm_probe"));
    t = render();
    assert_valid(t);
    ck_assert(sum_prefix(t, LF("28P01", "upstream"), &cnt) == l0 + 2);
    ck_assert(sum_prefix(t, LF("28P01", "password"), &cnt) == w0 + 1);
    ck_assert(sum_prefix(t, LF("other", "upstream"), &cnt) == o0 + 2);
    ck_assert(sum_prefix(t, LF("28000", "other"), &cnt) == r0 + 1);
#undef LF
    ck_assert(sum_prefix(t, "pg_tls_proxy_readiness_probe_failures_total", &cnt) == p0 + 1);
    ck_assert(sum_prefix(t, "pg_tls_proxy_handshake_failures_total", &cnt) == h0);
    ck_assert_ptr_null(strstr(t, "bad"));
    ck_assert_ptr_null(strstr(t, "Bad"));
    free(t);
}
END_TEST

/* The route label: sessions, the gauge, handshakes, logins, probes and the
 * last success of each route are their own series. */
START_TEST(test_route_labels)
{
    unsigned a = metrics_route_slot("tm_a"), b = metrics_route_slot("tm_b");
    ck_assert_uint_ne(a, METRICS_ROUTE_NONE);
    ck_assert_uint_ne(b, METRICS_ROUTE_NONE);
    ck_assert_uint_ne(a, b);
    ck_assert_uint_eq(metrics_route_slot("tm_a"), a);
    ck_assert_uint_eq(metrics_route_slot(NULL), METRICS_ROUTE_NONE);
    ck_assert_uint_eq(metrics_route_slot(""), METRICS_ROUTE_NONE);
    ck_assert_uint_eq(metrics_route_slot("-"), METRICS_ROUTE_NONE);
    char longname[METRICS_ROUTE_NAME_MAX + 1];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_uint_eq(metrics_route_slot(longname), METRICS_ROUTE_NONE);

#define ACT(r) "pg_tls_proxy_active_sessions{route=\"" r "\"}"
#define SES(o, r) "pg_tls_proxy_sessions_total{outcome=\"" o "\",route=\"" r "\"}"
    char *t0 = render();
    int64_t total = metrics_active_sessions();
    metrics_session_opened(METRICS_ROUTE_NONE); /* accepted: route not known yet */
    metrics_session_opened(METRICS_ROUTE_NONE);
    metrics_session_routed(METRICS_ROUTE_NONE, a); /* its StartupMessage named tm_a */
    metrics_session_routed(a, a);                  /* no move */
    char *t1 = render();
    assert_valid(t1);
    ck_assert(value_of(t1, ACT("tm_a")) - value_of(t0, ACT("tm_a")) == 1);
    ck_assert(value_of(t1, ACT("-")) - value_of(t0, ACT("-")) == 1);
    ck_assert(value_of(t1, ACT("tm_b")) == value_of(t0, ACT("tm_b")));
    ck_assert_int_eq(metrics_active_sessions(), total + 2);
    metrics_session_closed(a, OUT_CLOSED, 10, 20);
    metrics_session_closed(METRICS_ROUTE_NONE, OUT_REFUSED, 0, 0); /* no route took it */
    metrics_login_failed("28P01", "upstream", a);
    metrics_handshake_failed(1, "verify", b);
    metrics_handshake_failed(0, "handshake", b);
    metrics_probe_failed(b);
    metrics_upstream_connected(a, 1.0);
    metrics_upstream_failed(b, "pg-tls-proxy: upstream x: certificate verify failed");
    ck_assert_int_eq(metrics_active_sessions(), total);
    char *t2 = render();
    assert_valid(t2);
    ck_assert(value_of(t2, ACT("tm_a")) == value_of(t0, ACT("tm_a")));
    ck_assert(value_of(t2, ACT("-")) == value_of(t0, ACT("-")));
    ck_assert(value_of(t2, SES("closed", "tm_a")) - value_of(t0, SES("closed", "tm_a")) == 1);
    ck_assert(value_of(t2, SES("closed", "tm_b")) == value_of(t0, SES("closed", "tm_b")));
    ck_assert(value_of(t2, SES("refused", "-")) - value_of(t0, SES("refused", "-")) == 1);
    ck_assert(value_of(t2, "pg_tls_proxy_login_failures_total{sqlstate=\"28P01\",reason="
                           "\"upstream\",route=\"tm_a\"}") >= 1);
    ck_assert(value_of(t2, "pg_tls_proxy_handshake_failures_total{leg=\"back\",reason="
                           "\"verify\",route=\"tm_b\"}") >= 1);
    ck_assert(value_of(t2, "pg_tls_proxy_handshake_failures_total{leg=\"front\",reason="
                           "\"handshake\",route=\"tm_b\"}") >= 1);
    ck_assert(value_of(t2, "pg_tls_proxy_readiness_probe_failures_total{route=\"tm_b\"}") >= 1);
    ck_assert(value_of(t2, "pg_tls_proxy_upstream_last_success_timestamp_seconds{route="
                           "\"tm_a\"}") >= (double)time(NULL) - 5);
    ck_assert(value_of(t2, "pg_tls_proxy_upstream_last_success_timestamp_seconds{route="
                           "\"tm_b\"}") == 0);
#undef ACT
#undef SES

    /* What /readyz reads: the current routes in order, by index and name. */
    unsigned cur[] = {b, a};
    metrics_routes_current(cur, 2);
    struct metrics_route_state st;
    ck_assert(metrics_route_state_at(0, &st));
    ck_assert_str_eq(st.name, "tm_b");
    ck_assert_int_eq(st.last_ok, 0);
    ck_assert(st.last_failure >= (int64_t)time(NULL) - 5);
    ck_assert_str_eq(st.failure, "upstream x: certificate verify failed");
    ck_assert(metrics_route_state_at(1, &st));
    ck_assert_str_eq(st.name, "tm_a");
    ck_assert(st.last_ok >= (int64_t)time(NULL) - 5);
    ck_assert(!metrics_route_state_at(2, &st));
    ck_assert(metrics_route_state_of("tm_a", &st));
    ck_assert(!metrics_route_state_of("tm_probe", &st)); /* known, but not current */
    metrics_routes_current(NULL, 0);
    ck_assert(!metrics_route_state_at(0, &st));
    free(t0);
    free(t1);
    free(t2);
}
END_TEST

/* Route names are bounded: past METRICS_ROUTE_SLOTS - 1 names, new ones
 * count as "-" and the exposition stays valid. In a child process, so the
 * full table does not leak into other tests (CK_FORK=no). */
START_TEST(test_route_slots_bounded)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int bad = 0;
        unsigned last = 0;
        for (int i = 0; i < METRICS_ROUTE_SLOTS + 10; i++) {
            char name[32];
            snprintf(name, sizeof(name), "full%d", i);
            unsigned s = metrics_route_slot(name);
            metrics_session_opened(s);
            metrics_session_closed(s, OUT_CLOSED, 0, 0);
            if (s >= METRICS_ROUTE_SLOTS)
                bad |= 1;
            if (s != METRICS_ROUTE_NONE)
                last = s;
        }
        if (last != METRICS_ROUTE_SLOTS - 1)
            bad |= 2;
        if (metrics_route_slot("full0") == METRICS_ROUTE_NONE) /* a known name keeps its slot */
            bad |= 4;
        char *t = render();
        char why[256] = "";
        if (expo_check(&ex, t, why, sizeof(why)) < 0)
            bad |= 8;
        int n;
        sum_prefix(t, "pg_tls_proxy_active_sessions{", &n);
        if (n != METRICS_ROUTE_SLOTS)
            bad |= 16;
        free(t);
        _exit(bad);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_msg(WEXITSTATUS(status) == 0, "child failed: %d", WEXITSTATUS(status));
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

/* The timing histograms (metrics_hist.c): each observation lands in the
 * first bucket whose bound it does not exceed, and in no other histogram. */
struct timing_case {
    void (*observe)(double ms);
    const char *name;
    double ms;
    const char *le;
};
static const struct timing_case timing_cases[] = {
    {metrics_session_duration, "pg_tls_proxy_session_duration_seconds", 40, "0.1"},
    {metrics_session_duration, "pg_tls_proxy_session_duration_seconds", 100, "0.1"},
    {metrics_session_duration, "pg_tls_proxy_session_duration_seconds", 101, "0.5"},
    {metrics_session_duration, "pg_tls_proxy_session_duration_seconds", 7200e3, "10800"},
    {metrics_session_duration, "pg_tls_proxy_session_duration_seconds", 86400e3, "86400"},
    {metrics_session_duration, "pg_tls_proxy_session_duration_seconds", 604800e3 + 1, "+Inf"},
    {metrics_session_duration, "pg_tls_proxy_session_duration_seconds", -3, "0.1"},
    {metrics_front_handshake, "pg_tls_proxy_front_handshake_seconds", 0, "0.001"},
    {metrics_front_handshake, "pg_tls_proxy_front_handshake_seconds", 3, "0.005"},
    {metrics_front_handshake, "pg_tls_proxy_front_handshake_seconds", 15000, "+Inf"},
    {metrics_front_handshake, "pg_tls_proxy_front_handshake_seconds", NAN, "0.001"},
    {metrics_back_handshake, "pg_tls_proxy_back_handshake_seconds", 2.5, "0.0025"},
    {metrics_back_handshake, "pg_tls_proxy_back_handshake_seconds", 120, "0.25"},
    {metrics_back_handshake, "pg_tls_proxy_back_handshake_seconds", INFINITY, "0.001"},
};
static const char *const timing_hists[] = {"pg_tls_proxy_session_duration_seconds",
                                           "pg_tls_proxy_front_handshake_seconds",
                                           "pg_tls_proxy_back_handshake_seconds"};
static const char *const dur_les[] = {"0.1",   "0.5",   "1",      "5",      "15",    "60",
                                      "300",   "900",   "1800",   "3600",   "10800", "21600",
                                      "43200", "86400", "259200", "604800", "+Inf"};
static const char *const hs_les[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                     "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "+Inf"};

/* How much the bucket le of histogram h moved between renders a and b. */
static double bucket_moved(const char *a, const char *b, const char *h, const char *le)
{
    char s[160];
    snprintf(s, sizeof(s), "%s_bucket{le=\"%s\"}", h, le);
    double va = value_of(a, s), vb = value_of(b, s);
    ck_assert_msg(va >= 0 && vb >= 0, "%s missing", s);
    return vb - va;
}

START_TEST(test_timing_histograms)
{
    const struct timing_case *tc = &timing_cases[_i];
    char *a = render();
    tc->observe(tc->ms);
    char *b = render();
    assert_valid(b);
    for (int h = 0; h < NELEM(timing_hists); h++) {
        bool mine = strcmp(timing_hists[h], tc->name) == 0;
        bool dur = strcmp(timing_hists[h], "pg_tls_proxy_session_duration_seconds") == 0;
        const char *const *les = dur ? dur_les : hs_les;
        int n = dur ? NELEM(dur_les) : NELEM(hs_les);
        int nb;
        char pre[128];
        snprintf(pre, sizeof(pre), "%s_bucket{", timing_hists[h]);
        sum_prefix(b, pre, &nb);
        ck_assert_int_eq(nb, n);
        bool reached = false;
        for (int i = 0; i < n; i++) {
            reached = reached || (mine && strcmp(les[i], tc->le) == 0);
            double d = bucket_moved(a, b, timing_hists[h], les[i]);
            ck_assert_msg(d == (reached ? 1 : 0), "%s %g ms: %s le=%s moved by %g", tc->name,
                          tc->ms, timing_hists[h], les[i], d);
        }
        ck_assert_msg(reached == mine, "%g ms never reached le=%s", tc->ms, tc->le);
        char cnt[128];
        snprintf(cnt, sizeof(cnt), "%s_count", timing_hists[h]);
        ck_assert(value_of(b, cnt) - value_of(a, cnt) == (mine ? 1 : 0));
    }
    /* The sum moves by the observation (clamped to 0 when not a sane time). */
    char sum[128];
    snprintf(sum, sizeof(sum), "%s_sum", tc->name);
    double want = tc->ms > 0 && tc->ms < 1e12 ? tc->ms / 1000 : 0;
    double ds = value_of(b, sum) - value_of(a, sum);
    ck_assert_msg(fabs(ds - want) < 1e-3, "%s sum moved by %g, not %g", tc->name, ds, want);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_max_connections_gauge)
{
    metrics_set_max_connections(0);
    char *a = render();
    ck_assert(value_of(a, "pg_tls_proxy_max_connections") == 0);
    metrics_set_max_connections(10000);
    char *b = render();
    assert_valid(b);
    ck_assert(value_of(b, "pg_tls_proxy_max_connections") == 10000);
    metrics_set_max_connections(1000000);
    char *c = render();
    ck_assert(value_of(c, "pg_tls_proxy_max_connections") == 1000000);
    metrics_set_max_connections(0);
    free(a);
    free(b);
    free(c);
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
    tcase_add_loop_test(m, test_timing_histograms, 0, NELEM(timing_cases));
    tcase_add_test(m, test_max_connections_gauge);
    tcase_add_test(m, test_handshake_bad_reasons);
    /* before test_handshake_table_full: with CK_FORK=no (valgrind) the
     * tests share one process, and a full table has no row for tm_b */
    tcase_add_test(m, test_route_labels);
    tcase_add_test(m, test_handshake_table_full);
    tcase_add_test(m, test_label_escaping);
    tcase_add_test(m, test_buffer_too_small);
    tcase_add_test(m, test_process_metrics);
    tcase_add_test(m, test_login_and_probe_failures);
    tcase_add_test(m, test_route_slots_bounded);
    tcase_add_loop_test(m, test_checker_rejects, 0, NELEM(bad_expositions));
    tcase_add_test(m, test_checker_accepts);
    suite_add_tcase(s, m);

    return s;
}
