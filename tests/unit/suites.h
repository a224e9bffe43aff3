/* One Check suite per module; test_main.c runs them all. */
#ifndef PGTP_TEST_SUITES_H
#define PGTP_TEST_SUITES_H

#include <check.h>

Suite *pgproto_suite(void);
Suite *config_suite(void);
Suite *conffile_suite(void);
Suite *peermsg_suite(void);
Suite *tlsio_suite(void);
Suite *cidr_suite(void);
Suite *metrics_suite(void);
Suite *proxyproto_suite(void);
Suite *verifymsg_suite(void);
Suite *admit_suite(void);
Suite *states_suite(void);
Suite *route_suite(void);
Suite *leg_suite(void);
Suite *netaddr_suite(void);
Suite *log_suite(void);
Suite *pemfile_suite(void);
Suite *certcheck_suite(void);
Suite *cancel_suite(void);
Suite *pgtrack_suite(void);
Suite *httpreq_suite(void);
Suite *options_suite(void);
Suite *adminaddr_suite(void);
Suite *promtext_suite(void);
Suite *procstats_suite(void);
Suite *tlsctx_suite(void);
Suite *pgmsg_suite(void);
Suite *admin_suite(void);
Suite *keymap_suite(void);
Suite *sniwarn_suite(void);
Suite *pgassert_suite(void);
Suite *front_suite(void);
Suite *back_suite(void);
Suite *dial_suite(void);
Suite *login_suite(void);
Suite *relay_suite(void);
Suite *conn_suite(void);
Suite *worker_suite(void);
Suite *cancelfwd_suite(void);
Suite *listener_suite(void);
Suite *probe_suite(void);
Suite *leg_tcp_suite(void);
Suite *scram_suite(void);
Suite *scram_errors_suite(void);
Suite *authfile_suite(void);
Suite *scramsecret_suite(void);
Suite *pgauth_suite(void);
Suite *kdfcache_suite(void);
Suite *auth_suite(void);
Suite *bridge_suite(void);
Suite *bridgesecret_suite(void);

#endif
