/*
 * session_cases.h - what the per-module session suites (test_front.c,
 * test_back.c, test_dial.c, test_login.c, test_relay.c, test_conn.c,
 * test_worker.c, test_cancelfwd.c, test_listener.c, test_probe.c) share
 * on top of session_fixture.h: the one fixture of the running test, the
 * checked teardown that stops it when an assertion cut the test short
 * (CK_FORK=no), the log-sequence check and a started client.
 *
 * The expected log lines of each test are kept in tables (one per machine:
 * front, back, login): the transitions ("event=state conn=N machine=front
 * from=X to=Y", logged at debug level by front_set_state, back_set_state
 * and login_set_state) among the events around them.
 */
#ifndef PGTP_SESSION_CASES_H
#define PGTP_SESSION_CASES_H

#include <check.h>

#include "session_fixture.h"

#define WAIT_MS 5000 /* generous: valgrind runs these too */

/* The fixture of the test that runs (one at a time). */
extern struct sfx fx;

/* A TCase for session tests: the checked teardown and a timeout that
 * leaves room for valgrind (each test takes well under a second). */
TCase *sc_tcase(const char *name);
/* Every entry of seq in order among conn id's lines, or a failure that
 * dumps the log and names the missing entry. */
void sc_check_seq(struct sfx *f, unsigned long long id, const char *const *seq, const char *what);
/* A client with TLS up and its StartupMessage sent. */
struct sfx_client *sc_client_started(struct sfx *f, const char *user);
/* The back leg fails before the login: the client reads FATAL 08001 whose
 * message contains words; up_eof: the upstream script reads to the end,
 * so the proxy's FIN must reach it. */
void sc_back_failure(const struct sfx_opts *o, const char *words, bool up_eof);

#endif
