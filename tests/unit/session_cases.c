/* session_cases.c - the shared parts of the session suites (session_cases.h). */
#include "session_cases.h"

#include <string.h>

struct sfx fx;

/* Stops the fixture if the test could not (a failed assertion, with
 * CK_FORK=no), so that the next test does not run beside a worker that
 * still logs into it. */
static void teardown(void)
{
    if (fx.started)
        sfx_stop(&fx);
}

TCase *sc_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60); /* valgrind; each test takes well under a second */
    return tc;
}

void sc_check_seq(struct sfx *f, unsigned long long id, const char *const *seq, const char *what)
{
    const char *missing = sfx_log_seq(f, id, seq, WAIT_MS);
    if (missing != NULL)
        sfx_log_dump(f);
    ck_assert_msg(missing == NULL, "%s: conn=%llu: no \"%s\" in order in the log", what, id,
                  missing);
}

struct sfx_client *sc_client_started(struct sfx *f, const char *user)
{
    struct sfx_client *c = sfx_client_connect(f);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(sfx_client_tls(c), 0);
    ck_assert_int_eq(sfx_client_startup(c, user, "db"), 0);
    return c;
}

static const char *const backfail_back[] = {"machine=back from=idle to=dial",
                                            "event=upstream_failed",
                                            "sqlstate=08001",
                                            "machine=back",
                                            "to=failed",
                                            "event=closed",
                                            NULL};
static const char *const backfail_front[] = {"event=accepted", "event=front_tls_up", "event=error",
                                             "event=closed", NULL};

void sc_back_failure(const struct sfx_opts *o, const char *words, bool up_eof)
{
    struct sfx *f = &fx;
    sfx_start(f, o);
    struct sfx_client *c = sc_client_started(f, "dave");
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert_str_eq(c->sqlstate, "08001");
    ck_assert_str_eq(c->severity, "FATAL");
    ck_assert_msg(strstr(c->message, words) != NULL, "message: %s", c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    if (!o->no_upstream) {
        struct sfx_up *u = sfx_up_join(f, 0);
        ck_assert_ptr_nonnull(u);
        ck_assert(u->got_sslrequest);
        ck_assert(!u->got_startup); /* nothing of the client's reached it */
        ck_assert(u->fin || !up_eof);
    }
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    sc_check_seq(f, id, backfail_back, "back");
    sc_check_seq(f, id, backfail_front, "front");
    ck_assert_uint_eq(sfx_log_count(f, "event=login_started"), 0);
    sfx_client_free(c);
    SFX_END(f);
}
