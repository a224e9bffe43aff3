/*
 * test_probe.c - unit tests for src/probe.c: the --check probe driven on
 * the fixture's worker (probe_check_start on its loop's thread, as
 * main.c's run_check does on its own loop). Against the fake upstream it
 * completes the TLS handshake, sends nothing else (no StartupMessage: the
 * database sees no login), ends with close_notify and sets probe_status 0;
 * against an upstream that refuses TLS it sets 1. Ends with SFX_END.
 */
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "probe.h"
#include "route.h"
#include "session_cases.h"
#include "suites.h"
#include "worker.h"

static void start_check(struct sfx *f, void *arg)
{
    (void)arg;
    probe_check_start(f->w);
}

static void read_status(struct sfx *f, void *arg)
{
    *(int *)arg = f->w->probe_status;
}

/* The probe's connection has ended; its status then. */
static int probe_result(struct sfx *f)
{
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    int status = -1;
    sfx_call(f, read_status, &status);
    return status;
}

static void up_handshake_only(struct sfx_up *u)
{
    if (sfx_up_tls(u) == 0)
        sfx_up_wait_eof(u); /* a StartupMessage here would be a login: got_startup */
}

START_TEST(test_check_ok)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.up = {up_handshake_only}});
    sfx_call(f, start_check, NULL);
    struct sfx_up *u = sfx_up_join(f, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->got_sslrequest);
    ck_assert(u->tls_up);
    ck_assert(!u->got_startup);
    ck_assert(u->close_notify);
    ck_assert(u->fin);
    ck_assert_int_eq(probe_result(f), 0);
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=back_tls_up"));
    SFX_END(f);
}
END_TEST

static void up_refuse_tls(struct sfx_up *u)
{
    if (sfx_up_sslrequest(u, 'N') == 0)
        sfx_up_wait_eof(u);
}

START_TEST(test_check_refused)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.up = {up_refuse_tls}});
    sfx_call(f, start_check, NULL);
    struct sfx_up *u = sfx_up_join(f, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->got_sslrequest);
    ck_assert(!u->tls_up);
    ck_assert(u->fin);
    ck_assert_int_eq(probe_result(f), 1);
    ck_assert_uint_eq(sfx_log_count(f, "event=back_tls_up"), 0);
    SFX_END(f);
}
END_TEST

START_TEST(test_check_unreachable)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.no_upstream = true});
    sfx_call(f, start_check, NULL);
    ck_assert_int_eq(probe_result(f), 1);
    ck_assert_int_eq(atomic_load(&f->nups), 0);
    SFX_END(f);
}
END_TEST

/* The readiness probe of one route (worker.c's timer, per route): started
 * twice at once, one connection only; its success marks that route's last
 * verified handshake, its failure is that route's probe failure and the
 * reason /readyz shows. */
static void start_health_twice(struct sfx *f, void *arg)
{
    (void)arg;
    struct route *r = route_table_pick(f->w->routes);
    probe_health_start(f->w, r);
    probe_health_start(f->w, r); /* one under way already: nothing */
}

static unsigned fixture_slot(struct sfx *f)
{
    return route_table_pick(f->routes)->mslot;
}

START_TEST(test_health_ok_per_route)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.up = {up_handshake_only}});
    unsigned slot = fixture_slot(f);
    ck_assert_uint_ne(slot, METRICS_ROUTE_NONE);
    int64_t t0 = (int64_t)time(NULL);
    sfx_call(f, start_health_twice, NULL);
    struct sfx_up *u = sfx_up_join(f, 0);
    ck_assert_ptr_nonnull(u);
    ck_assert(u->tls_up);
    ck_assert(!u->got_startup);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    ck_assert_int_eq(atomic_load(&f->nups), 1); /* the second start did nothing */
    ck_assert(metrics_route_last_ok(slot) >= t0);
    SFX_END(f);
}
END_TEST

START_TEST(test_health_failed_per_route)
{
    struct sfx *f = &fx;
    sfx_start(f, &(struct sfx_opts){.up = {up_refuse_tls}});
    unsigned slot = fixture_slot(f);
    sfx_call(f, start_health_twice, NULL);
    ck_assert_ptr_nonnull(sfx_up_join(f, 0));
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    metrics_routes_current(&slot, 1);
    struct metrics_route_state st;
    ck_assert(metrics_route_state_of(route_table_pick(f->routes)->name, &st));
    metrics_routes_current(NULL, 0);
    ck_assert(st.last_failure >= (int64_t)time(NULL) - 5);
    ck_assert_msg(strstr(st.failure, "refused TLS") != NULL, "%s", st.failure);
    ck_assert_msg(strncmp(st.failure, "pg-tls-proxy: ", 14) != 0, "%s", st.failure);
    SFX_END(f);
}
END_TEST

Suite *probe_suite(void)
{
    Suite *s = suite_create("probe");
    TCase *tc = sc_tcase("probe");
    tcase_add_test(tc, test_check_ok);
    tcase_add_test(tc, test_check_refused);
    tcase_add_test(tc, test_check_unreachable);
    tcase_add_test(tc, test_health_ok_per_route);
    tcase_add_test(tc, test_health_failed_per_route);
    suite_add_tcase(s, tc);
    return s;
}
