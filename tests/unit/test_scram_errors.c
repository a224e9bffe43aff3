/*
 * test_scram_errors.c - unit tests for src/scram*.c, every way an exchange
 * fails, with the exact SQLSTATE, message and detail (PostgreSQL's
 * auth-scram.c texts towards a client, libpq's fe-auth-scram.c texts about
 * an upstream): malformed client-first messages, channel-binding
 * negotiation ('y' when -PLUS was offered, 'p' when it was not, another
 * binding type), a wrong nonce, a wrong proof, an unknown user, a binding
 * to another certificate, and on the client side a server that does not
 * extend our nonce, sends a bad salt or iteration count, answers "e=", or
 * signs with the wrong ServerKey.
 */
#include <string.h>

#include "scram.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))
#define MALFORMED "malformed SCRAM message"

static const struct first_case {
    const char *mech;
    bool cb; /* the server offers -PLUS */
    const char *msg;
    size_t len; /* 0: strlen */
    const char *sqlstate, *message, *detail;
} first_cases[] = {
    {"SCRAM-SHA-1", false, "n,,n=,r=abc", 0, "08P01",
     "client selected an invalid SASL authentication mechanism", ""},
    {"SCRAM-SHA-256-PLUS", false, "p=tls-server-end-point,,n=,r=abc", 0, "08P01",
     "client selected an invalid SASL authentication mechanism", ""},
    {"SCRAM-SHA-256", false, "", 0, "08P01", MALFORMED, "The message is empty."},
    {"SCRAM-SHA-256", false, "n,,n=,r=a\0b", 11, "08P01", MALFORMED,
     "Message length does not match input length."},
    {"SCRAM-SHA-256", true, "y,,n=,r=abc", 0, "28000", "SCRAM channel binding negotiation error",
     "The client supports SCRAM channel binding but thinks the server does not.  However, this "
     "server does support channel binding."},
    {"SCRAM-SHA-256-PLUS", true, "n,,n=,r=abc", 0, "08P01", MALFORMED,
     "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel "
     "binding data."},
    {"SCRAM-SHA-256-PLUS", true, "y,,n=,r=abc", 0, "08P01", MALFORMED,
     "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel "
     "binding data."},
    {"SCRAM-SHA-256", true, "p=tls-server-end-point,,n=,r=abc", 0, "08P01", MALFORMED,
     "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes "
     "channel binding data."},
    {"SCRAM-SHA-256-PLUS", true, "p=tls-unique,,n=,r=abc", 0, "08P01",
     "unsupported SCRAM channel-binding type \"tls-unique\"", ""},
    {"SCRAM-SHA-256-PLUS", true, "p,,n=,r=abc", 0, "08P01", MALFORMED,
     "Expected character \"=\" for attribute \"p\"."},
    {"SCRAM-SHA-256", false, "x,,n=,r=abc", 0, "08P01", MALFORMED,
     "Unexpected channel-binding flag \"'x'\"."},
    {"SCRAM-SHA-256", false, "n", 0, "08P01", MALFORMED,
     "Comma expected, but found character \"0x00\"."},
    {"SCRAM-SHA-256", false, "n;,n=,r=abc", 0, "08P01", MALFORMED,
     "Comma expected, but found character \"';'\"."},
    {"SCRAM-SHA-256", false, "n,a=bob,n=,r=abc", 0, "0A000",
     "client uses authorization identity, but it is not supported", ""},
    {"SCRAM-SHA-256", false, "n,x,n=,r=abc", 0, "08P01", MALFORMED,
     "Unexpected attribute \"'x'\" in client-first-message."},
    {"SCRAM-SHA-256", false, "n,,m=ext,n=,r=abc", 0, "0A000",
     "client requires an unsupported SCRAM extension", ""},
    {"SCRAM-SHA-256", false, "n,,r=abc", 0, "08P01", MALFORMED,
     "Expected attribute \"n\" but found \"'r'\"."},
    {"SCRAM-SHA-256", false, "n,,n=", 0, "08P01", MALFORMED,
     "Expected attribute \"r\" but found \"0x00\"."},
    {"SCRAM-SHA-256", false, "n,,n=,r", 0, "08P01", MALFORMED,
     "Expected character \"=\" for attribute \"r\"."},
    {"SCRAM-SHA-256", false, "n,,n=,r=a\x7f", 0, "08P01", "non-printable characters in SCRAM nonce",
     ""},
    {"SCRAM-SHA-256", false, "n,,n=,r=abc,1=x", 0, "08P01", MALFORMED,
     "Attribute expected, but found invalid character \"'1'\"."},
    {"SCRAM-SHA-256", false, "n,,n=,r=abc,x", 0, "08P01", MALFORMED,
     "Expected character \"=\" for attribute \"x\"."},
    {"SCRAM-SHA-256", false,
     "n,,n=,r=0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
     "5678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345",
     0, "08P01", MALFORMED, "The nonce is too long."},
};

START_TEST(test_first_errors)
{
    const struct first_case *fc = &first_cases[_i];
    struct scram_server sv;
    struct scram_error err;
    uint8_t mk[SCRAM_KEY_LEN] = {3}, cb[32] = {9};
    char out[SCRAM_MSG_MAX];
    memset(&err, 0, sizeof(err));
    scram_server_init(&sv, NULL, mk, "alice", fc->cb ? cb : NULL, fc->cb ? sizeof(cb) : 0);
    size_t len = fc->len ? fc->len : strlen(fc->msg);
    ck_assert_int_eq(scram_server_first(&sv, fc->mech, (const uint8_t *)fc->msg, len, out,
                                        sizeof(out), &err),
                     -1);
    ck_assert_str_eq(err.sqlstate, fc->sqlstate);
    ck_assert_str_eq(err.message, fc->message);
    ck_assert_str_eq(err.detail, fc->detail);
}
END_TEST

/* A server that has answered a client-first; the client's parts kept. */
struct pair {
    struct scram_server sv;
    struct scram_client c;
    struct scram_secret secret;
    uint8_t ck[SCRAM_KEY_LEN];
    char final[SCRAM_MSG_MAX];
    int final_len;
};

static void pair_start(struct pair *p, const char *password, const uint8_t *server_cb,
                       const uint8_t *client_cb, bool known)
{
    struct scram_error err;
    uint8_t mk[SCRAM_KEY_LEN] = {4}, mechs[64], salted[SCRAM_KEY_LEN], sk[SCRAM_KEY_LEN];
    char m1[SCRAM_MSG_MAX], m2[SCRAM_MSG_MAX];
    ck_assert_int_eq(scram_secret_make("right", 16, 4096, &p->secret), 0);
    scram_server_init(&p->sv, known ? &p->secret : NULL, mk, "alice", server_cb,
                      server_cb ? 32 : 0);
    int ml = scram_server_mechanisms(&p->sv, mechs, sizeof(mechs));
    ck_assert_int_eq(scram_client_init(&p->c, mechs, (size_t)ml, client_cb, client_cb ? 32 : 0),
                     0);
    int n1 = scram_client_first(&p->c, m1, sizeof(m1));
    int n2 = scram_server_first(&p->sv, scram_client_mechanism(&p->c), (const uint8_t *)m1,
                                (size_t)n1, m2, sizeof(m2), &err);
    ck_assert_int_gt(n2, 0);
    ck_assert_int_eq(scram_client_server_first(&p->c, (const uint8_t *)m2, (size_t)n2, &err), 0);
    ck_assert_int_eq(scram_salted_password(password, p->c.salt, p->c.salt_len, p->c.iterations,
                                           salted),
                     0);
    scram_keys(salted, p->ck, NULL, sk);
    p->final_len = scram_client_final(&p->c, p->ck, sk, p->final, sizeof(p->final));
    ck_assert_int_gt(p->final_len, 0);
}

static void expect_final(struct pair *p, const char *msg, const char *sqlstate,
                         const char *message, const char *detail)
{
    struct scram_error err;
    uint8_t key[SCRAM_KEY_LEN];
    char out[SCRAM_MSG_MAX];
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(
        scram_server_final(&p->sv, (const uint8_t *)msg, strlen(msg), out, sizeof(out), key, &err),
        -1);
    ck_assert_str_eq(err.sqlstate, sqlstate);
    ck_assert_str_eq(err.message, message);
    ck_assert_str_eq(err.detail, detail);
}

START_TEST(test_final_errors)
{
    struct pair p;
    uint8_t cb1[32], cb2[32];
    char buf[2 * SCRAM_MSG_MAX];
    memset(cb1, 1, sizeof(cb1));
    memset(cb2, 2, sizeof(cb2));

    pair_start(&p, "wrong", NULL, NULL, true);
    expect_final(&p, p.final, "28P01", "password authentication failed for user \"alice\"", "");

    pair_start(&p, "right", NULL, NULL, false); /* unknown user: mock, never succeeds */
    expect_final(&p, p.final, "28P01", "password authentication failed for user \"alice\"", "");

    pair_start(&p, "right", cb1, cb2, true); /* bound to another certificate */
    expect_final(&p, p.final, "28000", "SCRAM channel binding check failed", "");

    pair_start(&p, "right", NULL, NULL, true);
    /* the nonce changed in flight */
    strcpy(buf, p.final);
    char *r = strstr(buf, ",r=") + 3;
    r[0] = r[0] == 'A' ? 'B' : 'A';
    expect_final(&p, buf, "08P01", "invalid SCRAM response", "Nonce does not match.");
    /* "y,," where "n,," was sent */
    strcpy(buf, p.final);
    memcpy(buf + 2, "eSws", 4);
    expect_final(&p, buf, "08P01",
                 "unexpected SCRAM channel-binding attribute in client-final-message", "");
    /* a short proof */
    strcpy(buf, p.final);
    strcpy(strstr(buf, ",p=") + 3, "AAAA");
    expect_final(&p, buf, "08P01", MALFORMED, "Malformed proof in client-final-message.");
    /* something after the proof */
    snprintf(buf, sizeof(buf), "%s,x", p.final);
    expect_final(&p, buf, "08P01", MALFORMED,
                 "Garbage found at the end of client-final-message.");
    expect_final(&p, "r=abc", "08P01", MALFORMED, "Expected attribute \"c\" but found \"'r'\".");
    expect_final(&p, "c=biws", "08P01", MALFORMED, "Expected attribute \"r\" but found \"0x00\".");
    /* the right message still works after all those refusals */
    uint8_t key[SCRAM_KEY_LEN];
    struct scram_error err;
    ck_assert_int_gt(scram_server_final(&p.sv, (const uint8_t *)p.final, (size_t)p.final_len, buf,
                                        sizeof(buf), key, &err),
                     0);
    ck_assert_mem_eq(key, p.ck, SCRAM_KEY_LEN);
    /* and only once */
    ck_assert_int_eq(scram_server_final(&p.sv, (const uint8_t *)p.final, (size_t)p.final_len, buf,
                                        sizeof(buf), key, &err),
                     -1);
    ck_assert_str_eq(err.message, "invalid SCRAM exchange state");
}
END_TEST

START_TEST(test_long_user_cut)
{
    struct pair p;
    uint8_t mk[SCRAM_KEY_LEN] = {0};
    char user[100];
    memset(user, 'u', 99);
    user[99] = '\0';
    pair_start(&p, "wrong", NULL, NULL, true);
    struct scram_server sv;
    scram_server_init(&sv, NULL, mk, user, NULL, 0);
    ck_assert_uint_eq(strlen(sv.user), 63);
}
END_TEST

/* ---- the client side, about an upstream ------------------------------ */

static const struct sfirst_case {
    const char *pre, *post; /* around our nonce; pre NULL: the message is post */
    const char *message;
} sfirst_cases[] = {
    {NULL, "", "malformed SCRAM message (empty message)"},
    {"x=", "", "malformed SCRAM message (attribute \"r\" expected)"},
    {"r", "", "malformed SCRAM message (expected character \"=\" for attribute \"r\")"},
    {"r=XX", ",s=QSXCR+Q6sek8bf92,i=4096", "invalid SCRAM response (nonce mismatch)"},
    {"r=", ",s=QSXCR+Q6sek8bf92,i=4096", "invalid SCRAM response (nonce mismatch)"},
    {"r=", "abc,i=4096", "malformed SCRAM message (attribute \"s\" expected)"},
    {"r=", "abc,s=!!!!,i=4096", "malformed SCRAM message (invalid salt)"},
    {"r=", "abc,s=,i=4096", "malformed SCRAM message (invalid salt)"},
    {"r=", "abc,s=QSXCR+Q6sek8bf92", "malformed SCRAM message (attribute \"i\" expected)"},
    {"r=", "abc,s=QSXCR+Q6sek8bf92,i=0", "malformed SCRAM message (invalid iteration count)"},
    {"r=", "abc,s=QSXCR+Q6sek8bf92,i=-5", "malformed SCRAM message (invalid iteration count)"},
    {"r=", "abc,s=QSXCR+Q6sek8bf92,i=4k", "malformed SCRAM message (invalid iteration count)"},
    {"r=", "abc,s=QSXCR+Q6sek8bf92,i=10000001", "malformed SCRAM message (invalid iteration count)"},
    {"r=", "abc,s=QSXCR+Q6sek8bf92,i=4096,x=1",
     "malformed SCRAM message (garbage at end of server-first-message)"},
};

START_TEST(test_server_first_errors)
{
    struct scram_client c;
    struct scram_error err;
    static const uint8_t mechs[] = "SCRAM-SHA-256\0";
    char m1[SCRAM_MSG_MAX], msg[SCRAM_MSG_MAX];
    ck_assert_int_eq(scram_client_init(&c, mechs, sizeof(mechs), NULL, 0), 0);
    ck_assert_int_gt(scram_client_first(&c, m1, sizeof(m1)), 0);
    const struct sfirst_case *sc = &sfirst_cases[_i];
    snprintf(msg, sizeof(msg), "%s%s%s", sc->pre ? sc->pre : "", sc->pre ? c.client_nonce : "",
             sc->post);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(scram_client_server_first(&c, (const uint8_t *)msg, strlen(msg), &err), -1);
    ck_assert_str_eq(err.sqlstate, "08P01");
    ck_assert_str_eq(err.message, sfirst_cases[_i].message);
}
END_TEST

START_TEST(test_server_final_errors)
{
    struct pair p;
    struct scram_error err;
    char out[SCRAM_MSG_MAX];
    uint8_t key[SCRAM_KEY_LEN];
    pair_start(&p, "right", NULL, NULL, true);
    int n = scram_server_final(&p.sv, (const uint8_t *)p.final, (size_t)p.final_len, out,
                               sizeof(out), key, &err);
    ck_assert_int_gt(n, 0);
    static const struct {
        const char *msg, *sqlstate, *message;
    } cases[] = {
        {"e=invalid-proof", "28000", "error received from server in SCRAM exchange: invalid-proof"},
        {"v=AAAA", "08P01", "malformed SCRAM message (invalid server signature)"},
        {"x=1", "08P01", "malformed SCRAM message (attribute \"v\" expected)"},
        {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", "28000", "incorrect server signature"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&err, 0, sizeof(err));
        ck_assert_int_eq(scram_client_server_final(&p.c, (const uint8_t *)cases[i].msg,
                                                   strlen(cases[i].msg), &err),
                         -1);
        ck_assert_str_eq(err.sqlstate, cases[i].sqlstate);
        ck_assert_str_eq(err.message, cases[i].message);
    }
    char garbage[2 * SCRAM_MSG_MAX];
    snprintf(garbage, sizeof(garbage), "%s,x=1", out);
    ck_assert_int_eq(scram_client_server_final(&p.c, (const uint8_t *)garbage, strlen(garbage),
                                               &err),
                     -1);
    ck_assert_str_eq(err.message, "malformed SCRAM message (garbage at end of server-final-message)");
    /* A server that verified our proof but signs with another ServerKey
     * (it holds another verifier, or is not the server at all). */
    struct scram_client c2 = p.c;
    memset(c2.server_key, 0x33, SCRAM_KEY_LEN);
    ck_assert_int_eq(scram_client_server_final(&c2, (const uint8_t *)out, (size_t)n, &err), -1);
    ck_assert_str_eq(err.message, "incorrect server signature");
    /* The genuine one passes. */
    ck_assert_int_eq(scram_client_server_final(&p.c, (const uint8_t *)out, (size_t)n, &err), 0);
}
END_TEST

Suite *scram_errors_suite(void)
{
    Suite *s = suite_create("scram_errors");
    TCase *t = tcase_create("errors");
    tcase_set_timeout(t, 30);
    tcase_add_loop_test(t, test_first_errors, 0, NELEM(first_cases));
    tcase_add_test(t, test_final_errors);
    tcase_add_test(t, test_long_user_cut);
    tcase_add_loop_test(t, test_server_first_errors, 0, NELEM(sfirst_cases));
    tcase_add_test(t, test_server_final_errors);
    suite_add_tcase(s, t);
    return s;
}
