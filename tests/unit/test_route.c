/*
 * test_route.c - routes and route tables (src/route.c): built from the
 * configuration's upstream flags, reference-counted, and swapped without
 * disturbing the sessions that hold the old route.
 */
#include <string.h>

#include <openssl/ssl.h>

#include "config.h"
#include "route.h"
#include "suites.h"

static struct config test_config(void)
{
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.upstream_host = (char *)"db.internal";
    cfg.upstream_port = 6432;
    cfg.upstream_verify_name = (char *)"db.example.com";
    cfg.back_direct_tls = true;
    cfg.connect_timeout_s = 7;
    cfg.keepalive_s = 30;
    return cfg;
}

START_TEST(built_from_flags)
{
    struct config cfg = test_config();
    SSL_CTX *front = SSL_CTX_new(TLS_server_method());
    SSL_CTX *back = SSL_CTX_new(TLS_client_method());
    char err[128];
    struct route_table *t = route_table_build(&cfg, front, back, err, sizeof(err));
    ck_assert_ptr_nonnull(t);
    const struct route *r = route_table_pick(t);
    ck_assert_str_eq(r->host, "db.internal");
    ck_assert_uint_eq(r->port, 6432);
    ck_assert_str_eq(r->verify_name, "db.example.com");
    ck_assert(r->direct_tls);
    ck_assert_uint_eq(r->connect_timeout_ms, 7000);
    ck_assert_uint_eq(r->keepalive_s, 30);
    ck_assert_ptr_eq(r->back_ctx, back);
    ck_assert_ptr_eq(t->front_ctx, front);
    /* the table holds its own references: the builder's may go */
    SSL_CTX_free(front);
    SSL_CTX_free(back);
    ck_assert_int_eq(SSL_CTX_up_ref(r->back_ctx), 1);
    SSL_CTX_free(r->back_ctx);
    route_table_unref(t);
}
END_TEST

/* Without --client-tls-validation-host the name is the host's. */
START_TEST(verify_name_default)
{
    struct config cfg = test_config();
    cfg.upstream_verify_name = NULL;
    char err[128];
    struct route *r = route_new(&cfg, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->verify_name, "db.internal");
    route_unref(r);
}
END_TEST

/* A session's reference keeps its route (and its SSL_CTX) alive after the
 * worker swapped tables and dropped the old one, as on reload. */
START_TEST(refcount_and_swap)
{
    struct config cfg = test_config();
    SSL_CTX *front = SSL_CTX_new(TLS_server_method());
    SSL_CTX *back1 = SSL_CTX_new(TLS_client_method());
    SSL_CTX *back2 = SSL_CTX_new(TLS_client_method());
    char err[128];
    struct route_table *worker_table = route_table_build(&cfg, front, back1, err, sizeof(err));
    ck_assert_ptr_nonnull(worker_table);
    struct route *session = route_ref(route_table_pick(worker_table));
    ck_assert_uint_eq(atomic_load(&session->refs), 2);

    cfg.upstream_port = 5433; /* the reload's configuration */
    struct route_table *fresh = route_table_build(&cfg, front, back2, err, sizeof(err));
    ck_assert_ptr_nonnull(fresh);
    struct route_table *offered = route_table_ref(fresh); /* worker_offer_routes */
    route_table_unref(fresh);                             /* main lets go */
    route_table_unref(worker_table);                      /* take_offer: the swap */
    worker_table = offered;

    ck_assert_uint_eq(atomic_load(&session->refs), 1);
    ck_assert_uint_eq(session->port, 6432); /* the old session keeps its route */
    ck_assert_ptr_eq(session->back_ctx, back1);
    ck_assert_uint_eq(route_table_pick(worker_table)->port, 5433); /* new sessions: the new one */
    ck_assert_ptr_eq(route_table_pick(worker_table)->back_ctx, back2);
    route_unref(session);
    route_table_unref(worker_table);
    SSL_CTX_free(front);
    SSL_CTX_free(back1);
    SSL_CTX_free(back2);
}
END_TEST

Suite *route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, built_from_flags);
    tcase_add_test(tc, verify_name_default);
    tcase_add_test(tc, refcount_and_swap);
    suite_add_tcase(s, tc);
    return s;
}
