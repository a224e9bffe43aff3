/*
 * test_states.c - the legality tables of the three state machines (front.c,
 * back.c, login.c): every (from, to) pair is checked against the list of
 * moves the code makes, so a move added to the code without its table
 * entry, or a table entry no code needs, shows here.
 */
#include <stdbool.h>
#include <string.h>

#include "back.h"
#include "front.h"
#include "login.h"
#include "suites.h"

struct move {
    int from, to;
};

static bool listed(const struct move *m, size_t n, int from, int to)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].from == from && m[i].to == to)
            return true;
    return false;
}

START_TEST(front_table)
{
    static const struct move ok[] = {
        {FRONT_FIRST, FRONT_TLS},    /* SSLRequest answered 'S', or a ClientHello */
        {FRONT_FIRST, FRONT_WAIT},   /* plaintext StartupMessage (sidecar) */
        {FRONT_TLS, FRONT_STARTUP},  /* handshake done */
        {FRONT_STARTUP, FRONT_WAIT}, /* StartupMessage inside TLS */
        {FRONT_WAIT, FRONT_RELAY},   /* joined */
    };
    for (int f = 0; f < FRONT_STATES; f++)
        for (int t = 0; t < FRONT_STATES; t++)
            ck_assert_msg(front_move_legal(f, t) == listed(ok, sizeof(ok) / sizeof(ok[0]), f, t),
                          "front %s -> %s", front_state_name(f), front_state_name(t));
    ck_assert(!front_move_legal(FRONT_STATES, FRONT_TLS));
    ck_assert(!front_move_legal(FRONT_FIRST, FRONT_STATES));
    ck_assert_str_eq(front_state_name(FRONT_STATES), "invalid");
}
END_TEST

START_TEST(back_table)
{
    static const struct move ok[] = {
        {BACK_IDLE, BACK_DIAL},     {BACK_IDLE, BACK_FAILED},  {BACK_DIAL, BACK_SSLREQ},
        {BACK_DIAL, BACK_TLS},      {BACK_DIAL, BACK_FAILED},  {BACK_SSLREQ, BACK_TLS},
        {BACK_SSLREQ, BACK_FAILED}, {BACK_TLS, BACK_READY},    {BACK_TLS, BACK_FAILED},
        {BACK_READY, BACK_RELAY},   {BACK_READY, BACK_FAILED},
    };
    for (int f = 0; f < BACK_STATES; f++)
        for (int t = 0; t < BACK_STATES; t++)
            ck_assert_msg(back_move_legal(f, t) == listed(ok, sizeof(ok) / sizeof(ok[0]), f, t),
                          "back %s -> %s", back_state_name(f), back_state_name(t));
    /* Terminal states have no way out: a failed leg is never revived. */
    for (int t = 0; t < BACK_STATES; t++) {
        ck_assert(!back_move_legal(BACK_FAILED, t));
        ck_assert(!back_move_legal(BACK_RELAY, t));
    }
}
END_TEST

START_TEST(login_table)
{
    static const struct move ok[] = {
        {LOGIN_NONE, LOGIN_STARTUP},
        {LOGIN_STARTUP, LOGIN_SASL},
        {LOGIN_STARTUP, LOGIN_READY},
        {LOGIN_STARTUP, LOGIN_UNWATCHED},
        {LOGIN_SASL, LOGIN_SASL_CHOSEN},
        {LOGIN_SASL, LOGIN_READY},
        {LOGIN_SASL, LOGIN_UNWATCHED},
        {LOGIN_SASL_CHOSEN, LOGIN_READY},
        {LOGIN_SASL_CHOSEN, LOGIN_UNWATCHED},
        /* --auth-mode password and scram (auth.c) */
        {LOGIN_NONE, LOGIN_FRONT_SASL},        /* scram: the proxy offers SASL itself */
        {LOGIN_STARTUP, LOGIN_ASK_PASSWORD},   /* password: the server asked for one */
        {LOGIN_FRONT_SASL, LOGIN_BACK_AUTH},   /* the client's proof checked out */
        {LOGIN_ASK_PASSWORD, LOGIN_BACK_AUTH}, /* the client's password is in */
        {LOGIN_BACK_AUTH, LOGIN_KDF},          /* PBKDF2 off the loop */
        {LOGIN_KDF, LOGIN_BACK_AUTH},          /* keys derived */
        {LOGIN_BACK_AUTH, LOGIN_AUTHED},       /* the server said AuthenticationOk */
        {LOGIN_AUTHED, LOGIN_READY},
        {LOGIN_AUTHED, LOGIN_UNWATCHED},
    };
    for (int f = 0; f < LOGIN_STATES; f++)
        for (int t = 0; t < LOGIN_STATES; t++)
            ck_assert_msg(login_move_legal(f, t) == listed(ok, sizeof(ok) / sizeof(ok[0]), f, t),
                          "login %s -> %s", login_state_name(f), login_state_name(t));
    /* Named shortcuts that would skip a check: the server's AuthenticationOk
     * (kdf -> authed: keys not yet derived, so nothing was answered), the
     * proxy's own SCRAM exchange (front_sasl -> ready, ask_password ->
     * authed), the client's proof (none -> back_auth). */
    ck_assert(!login_move_legal(LOGIN_KDF, LOGIN_AUTHED));
    ck_assert(!login_move_legal(LOGIN_KDF, LOGIN_READY));
    ck_assert(!login_move_legal(LOGIN_FRONT_SASL, LOGIN_READY));
    ck_assert(!login_move_legal(LOGIN_FRONT_SASL, LOGIN_UNWATCHED));
    ck_assert(!login_move_legal(LOGIN_ASK_PASSWORD, LOGIN_AUTHED));
    ck_assert(!login_move_legal(LOGIN_BACK_AUTH, LOGIN_READY));
    ck_assert(!login_move_legal(LOGIN_NONE, LOGIN_BACK_AUTH));
    ck_assert(!login_move_legal(LOGIN_SASL, LOGIN_BACK_AUTH)); /* passthrough never authenticates */
    ck_assert(!login_move_legal(LOGIN_STATES, LOGIN_STARTUP));
    ck_assert(!login_move_legal(LOGIN_NONE, LOGIN_STATES));
    ck_assert_str_eq(login_state_name(LOGIN_STATES), "invalid");
    /* The moves the proxy's own login makes all have names for the debug log. */
    ck_assert_str_eq(login_state_name(LOGIN_FRONT_SASL), "front_sasl");
    ck_assert_str_eq(login_state_name(LOGIN_ASK_PASSWORD), "ask_password");
    ck_assert_str_eq(login_state_name(LOGIN_BACK_AUTH), "back_auth");
    ck_assert_str_eq(login_state_name(LOGIN_KDF), "kdf");
    ck_assert_str_eq(login_state_name(LOGIN_AUTHED), "authed");
}
END_TEST

/* Every state has a distinct name (the debug log's from= and to=). */
START_TEST(names)
{
    for (int a = 0; a < BACK_STATES; a++)
        for (int b = a + 1; b < BACK_STATES; b++)
            ck_assert_str_ne(back_state_name(a), back_state_name(b));
    for (int a = 0; a < FRONT_STATES; a++)
        for (int b = a + 1; b < FRONT_STATES; b++)
            ck_assert_str_ne(front_state_name(a), front_state_name(b));
    for (int a = 0; a < LOGIN_STATES; a++)
        for (int b = a + 1; b < LOGIN_STATES; b++)
            ck_assert_str_ne(login_state_name(a), login_state_name(b));
}
END_TEST

Suite *states_suite(void)
{
    Suite *s = suite_create("states");
    TCase *tc = tcase_create("legality");
    tcase_add_test(tc, front_table);
    tcase_add_test(tc, back_table);
    tcase_add_test(tc, login_table);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return s;
}
