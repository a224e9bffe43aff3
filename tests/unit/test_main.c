/* Unit test runner: every module's Check suite in one binary. */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(pgproto_suite());
    srunner_add_suite(sr, config_suite());
    srunner_add_suite(sr, conffile_suite());
    srunner_add_suite(sr, peermsg_suite());
    srunner_add_suite(sr, tlsio_suite());
    srunner_add_suite(sr, cidr_suite());
    srunner_add_suite(sr, metrics_suite());
    srunner_add_suite(sr, proxyproto_suite());
    srunner_add_suite(sr, verifymsg_suite());
    srunner_add_suite(sr, admit_suite());
    srunner_add_suite(sr, states_suite());
    srunner_add_suite(sr, route_suite());
    srunner_add_suite(sr, leg_suite());
    srunner_add_suite(sr, netaddr_suite());
    srunner_add_suite(sr, log_suite());
    srunner_add_suite(sr, pemfile_suite());
    srunner_add_suite(sr, certcheck_suite());
    srunner_add_suite(sr, cancel_suite());
    srunner_add_suite(sr, pgtrack_suite());
    srunner_add_suite(sr, httpreq_suite());
    srunner_add_suite(sr, options_suite());
    srunner_add_suite(sr, adminaddr_suite());
    srunner_add_suite(sr, healthcheck_suite());
    srunner_add_suite(sr, promtext_suite());
    srunner_add_suite(sr, procstats_suite());
    srunner_add_suite(sr, sdnotify_suite());
    srunner_add_suite(sr, tlsctx_suite());
    srunner_add_suite(sr, pgmsg_suite());
    srunner_add_suite(sr, admin_suite());
    srunner_add_suite(sr, adminsess_suite());
    srunner_add_suite(sr, keymap_suite());
    srunner_add_suite(sr, sniwarn_suite());
    srunner_add_suite(sr, pgassert_suite());
    srunner_add_suite(sr, front_suite());
    srunner_add_suite(sr, back_suite());
    srunner_add_suite(sr, dial_suite());
    srunner_add_suite(sr, login_suite());
    srunner_add_suite(sr, relay_suite());
    srunner_add_suite(sr, conn_suite());
    srunner_add_suite(sr, worker_suite());
    srunner_add_suite(sr, cancelfwd_suite());
    srunner_add_suite(sr, listener_suite());
    srunner_add_suite(sr, probe_suite());
    srunner_add_suite(sr, leg_tcp_suite());
    srunner_add_suite(sr, scram_suite());
    srunner_add_suite(sr, scram_errors_suite());
    srunner_add_suite(sr, authfile_suite());
    srunner_add_suite(sr, scramsecret_suite());
    srunner_add_suite(sr, pgauth_suite());
    srunner_add_suite(sr, kdfcache_suite());
    srunner_add_suite(sr, auth_suite());
    srunner_add_suite(sr, bridgeproto_suite());
    srunner_add_suite(sr, leg_bridge_suite());
    srunner_add_suite(sr, bridgedial_suite());
    srunner_add_suite(sr, connector_suite());
    srunner_add_suite(sr, connector_loop_suite());
    srunner_add_suite(sr, connector_flow_suite());
    srunner_add_suite(sr, bridge_suite());
    srunner_add_suite(sr, bridgesecret_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
