/*
 * test_auth.c - session tests of src/auth.c (--auth-mode password and
 * scram) through the in-process harness: the fake upstream is a SCRAM
 * server (scram_server_* of scram.h, a verifier made for a known password)
 * or asks md5 or cleartext; the test thread is the client, answering
 * AuthenticationCleartextPassword (password mode) or doing SCRAM itself
 * with scram_client_* bound to the proxy's certificate (scram mode).
 *
 * Asserted: the login states in the log, the mechanism the proxy chose
 * upstream and that its channel binding verified, the exact error
 * (SQLSTATE and text) the client gets for each refusal, the audit line
 * (outcome=login_failed sqlstate=...) and the failure metric. Every test
 * ends with SFX_END (uv_loop_close() == 0), also one whose client leaves
 * while PBKDF2 runs. Not testable here: password mode on a plaintext
 * front that is not loopback (the harness has only loopback).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "kdfcache.h"
#include "keymap.h"
#include "metrics.h"
#include "pgauth.h"
#include "scram.h"
#include "session_cases.h"
#include "suites.h"

#define PASSWORD "correct horse"
#define USER "alice"

/* ---- what the fake upstream does, and what it saw ---- */

enum up_how {
    UP_SCRAM_OK,  /* the whole exchange, then AuthenticationOk and queries */
    UP_BAD_SIG,   /* SASLFinal with one byte of v= changed */
    UP_NO_FINAL,  /* AuthenticationOk straight after the client's proof */
    UP_MD5,       /* AuthenticationMD5Password */
    UP_CLEARTEXT, /* AuthenticationCleartextPassword */
    UP_LONG_KDF,  /* SCRAM with a huge iteration count, then waits for the end */
};

static struct {
    enum up_how how;
    struct scram_secret secret; /* the role's verifier on the "server" */
    bool offer_plus;
    /* seen */
    char mech[32];
    bool proof_ok;          /* scram_server_final accepted the proxy's proof and binding */
    char proof_err[160];    /* or why not */
    char password_msg[128]; /* md5 / cleartext: what the proxy answered */
} up;

static uint8_t md5_salt[4] = {0x01, 0x7f, 0x80, 0xff};

/* Exactly n bytes through TLS. */
static bool ssl_read_all(SSL *ssl, uint8_t *p, size_t n)
{
    while (n > 0) {
        int r = SSL_read(ssl, p, (int)n);
        if (r <= 0) {
            ERR_clear_error();
            return false;
        }
        p += r;
        n -= (size_t)r;
    }
    return true;
}

/* One whole message: its type, or -1. */
static int read_msg(SSL *ssl, uint8_t *buf, size_t cap, size_t *len)
{
    if (!ssl_read_all(ssl, buf, 5))
        return -1;
    uint32_t n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
    if (n < 4 || n + 1 > cap || !ssl_read_all(ssl, buf + 5, n - 4))
        return -1;
    *len = n + 1;
    return buf[0];
}

static bool send_r(SSL *ssl, int code, const void *data, size_t len)
{
    uint8_t m[SCRAM_MSG_MAX + 16];
    size_t n = pg_auth_build(m, sizeof(m), code, data, len);
    return n > 0 && SSL_write(ssl, m, (int)n) == (int)n;
}

/* The upstream's SCRAM server side, up to (not including) its answer to
 * the client-final-message; false if the exchange broke. */
static bool up_scram_exchange(struct sfx_up *u, struct scram_server *srv, char *final_out,
                              size_t cap, int *final_len)
{
    static const uint8_t no_mock[SCRAM_KEY_LEN];
    uint8_t cb[SCRAM_CB_MAX], mechs[128], buf[4096], key[SCRAM_KEY_LEN];
    char out[SCRAM_MSG_MAX];
    struct scram_error err = {0};
    size_t len, dl;
    const char *mech;
    const uint8_t *data;
    int cb_len = scram_cert_hash(u->f->leaf, cb); /* the upstream serves the fixture's leaf */
    scram_server_init(srv, &up.secret, no_mock, u->user, cb,
                      up.offer_plus && cb_len > 0 ? (size_t)cb_len : 0);
    int ml = scram_server_mechanisms(srv, mechs, sizeof(mechs));
    if (ml < 0 || !send_r(u->ssl, PG_AUTH_SASL_START, mechs, (size_t)ml))
        return false;
    if (read_msg(u->ssl, buf, sizeof(buf), &len) != 'p' ||
        pg_sasl_initial_parse(buf, len, &mech, &data, &dl) != 0)
        return false;
    snprintf(up.mech, sizeof(up.mech), "%s", mech);
    int k = scram_server_first(srv, mech, data, dl, out, sizeof(out), &err);
    if (k < 0) {
        snprintf(up.proof_err, sizeof(up.proof_err), "%s", err.message);
        return false;
    }
    if (!send_r(u->ssl, PG_AUTH_SASL_CONTINUE, out, (size_t)k))
        return false;
    if (up.how == UP_LONG_KDF) /* the proxy derives its keys now: nothing more comes */
        return false;
    if (read_msg(u->ssl, buf, sizeof(buf), &len) != 'p' ||
        pg_sasl_response_parse(buf, len, &data, &dl) != 0)
        return false;
    *final_len = scram_server_final(srv, data, dl, final_out, cap, key, &err);
    up.proof_ok = *final_len > 0;
    if (!up.proof_ok)
        snprintf(up.proof_err, sizeof(up.proof_err), "%s", err.message);
    return true;
}

static void up_auth(struct sfx_up *u)
{
    struct scram_server srv;
    char fin[SCRAM_MSG_MAX];
    int fin_len = 0;
    uint8_t buf[512];
    size_t len;
    const char *pw;
    size_t pwlen;

    if (sfx_up_tls(u) != 0 || sfx_up_first_packet(u) != 0)
        return;
    switch (up.how) {
    case UP_MD5:
    case UP_CLEARTEXT:
        if (!send_r(u->ssl, up.how == UP_MD5 ? PG_AUTH_MD5 : PG_AUTH_CLEARTEXT, md5_salt,
                    up.how == UP_MD5 ? 4 : 0))
            return;
        if (read_msg(u->ssl, buf, sizeof(buf), &len) != 'p' ||
            pg_password_parse(buf, len, &pw, &pwlen) != 0) {
            sfx_up_wait_eof(u); /* the proxy refused: its FIN */
            return;
        }
        snprintf(up.password_msg, sizeof(up.password_msg), "%s", pw);
        if (sfx_up_login_ok(u) == 0)
            sfx_up_serve(u);
        return;
    default:
        break;
    }
    if (!up_scram_exchange(u, &srv, fin, sizeof(fin), &fin_len)) {
        scram_server_clear(&srv);
        sfx_up_wait_eof(u);
        return;
    }
    scram_server_clear(&srv);
    if (!up.proof_ok) { /* as PostgreSQL: a FATAL and the end */
        sfx_up_error(u, "28P01", "password authentication failed for user \"" USER "\"");
        sfx_up_close(u, true);
        sfx_up_wait_eof(u);
        return;
    }
    if (up.how == UP_BAD_SIG) /* v=<base64>: change one character of the signature */
        fin[2] = fin[2] == 'A' ? 'B' : 'A';
    if (up.how != UP_NO_FINAL && !send_r(u->ssl, PG_AUTH_SASL_FINAL, fin, (size_t)fin_len))
        return;
    if (sfx_up_login_ok(u) != 0)
        return;
    sfx_up_serve(u);
}

/* ---- the client (the test thread) ---- */

/* The message field of the last ErrorResponse client_scram read, as sent
 * (sfx_client's parser sanitises it for logging: quotes become '?'). */
static char raw_message[256], raw_hint[512];

static void keep_raw_message(const uint8_t *m, size_t len)
{
    raw_message[0] = raw_hint[0] = '\0';
    for (size_t i = 5; i < len && m[i] != '\0';) {
        const char *v = (const char *)m + i + 1;
        size_t vl = strnlen(v, len - i - 1);
        if (m[i] == 'M')
            snprintf(raw_message, sizeof(raw_message), "%.*s", (int)vl, v);
        if (m[i] == 'H')
            snprintf(raw_hint, sizeof(raw_hint), "%.*s", (int)vl, v);
        i += vl + 2;
    }
}

/* words as sfx_client's sanitising parser shows them. */
static const char *sanitised(const char *words)
{
    static char out[256];
    snprintf(out, sizeof(out), "%s", words);
    for (char *p = out; *p != '\0'; p++)
        if (*p == '"' || *p == '\\')
            *p = '?';
    return out;
}

static void client_send(struct sfx_client *c, const uint8_t *m, size_t n)
{
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(SSL_write(c->ssl, m, (int)n), (int)n);
}

/* Password mode: the proxy asks for the password in cleartext; answer it. */
static void client_give_password(struct sfx_client *c, const char *password)
{
    uint8_t buf[512];
    size_t len;
    int code;
    const uint8_t *d;
    size_t dl;
    ck_assert_int_eq(sfx_client_read_msg(c, buf, sizeof(buf), &len), 'R');
    ck_assert_int_eq(pg_auth_parse(buf, len, &code, &d, &dl), 0);
    ck_assert_int_eq(code, PG_AUTH_CLEARTEXT);
    size_t n = pg_p_build(buf, sizeof(buf), password, strlen(password) + 1);
    client_send(c, buf, n);
}

/* Scram mode: the client's SCRAM exchange with the proxy, bound to the
 * certificate the proxy showed it. The salt it was given goes to salt
 * (SCRAM_SALT_MAX bytes) when not NULL. Returns sfx_client_login's
 * result ('Z' or 'E'); server_sig_ok: the proxy's SASLFinal verified. */
static int client_scram(struct sfx_client *c, const char *password, bool *plus, uint8_t *salt,
                        size_t *salt_len, bool *server_sig_ok)
{
    struct scram_client cli;
    struct scram_error err = {0};
    uint8_t buf[4096], cb[SCRAM_CB_MAX], salted[SCRAM_KEY_LEN], ck[SCRAM_KEY_LEN],
        sk[SCRAM_KEY_LEN];
    char msg[SCRAM_MSG_MAX];
    size_t len, dl;
    int code;
    const uint8_t *d;

    *server_sig_ok = false;
    ck_assert_int_eq(sfx_client_read_msg(c, buf, sizeof(buf), &len), 'R');
    ck_assert_int_eq(pg_auth_parse(buf, len, &code, &d, &dl), 0);
    ck_assert_int_eq(code, PG_AUTH_SASL_START);
    int cb_len = scram_cert_hash(SSL_get0_peer_certificate(c->ssl), cb);
    ck_assert_int_gt(cb_len, 0);
    ck_assert_int_eq(scram_client_init(&cli, d, dl, cb, (size_t)cb_len), 0);
    *plus = cli.plus;
    int k = scram_client_first(&cli, msg, sizeof(msg));
    ck_assert_int_gt(k, 0);
    client_send(
        c, buf,
        pg_sasl_initial_build(buf, sizeof(buf), scram_client_mechanism(&cli), msg, (size_t)k));
    ck_assert_int_eq(sfx_client_read_msg(c, buf, sizeof(buf), &len), 'R');
    ck_assert_int_eq(pg_auth_parse(buf, len, &code, &d, &dl), 0);
    ck_assert_int_eq(code, PG_AUTH_SASL_CONTINUE);
    ck_assert_int_eq(scram_client_server_first(&cli, d, dl, &err), 0);
    if (salt != NULL) {
        memcpy(salt, cli.salt, cli.salt_len);
        *salt_len = cli.salt_len;
    }
    ck_assert_int_eq(
        scram_salted_password(password, cli.salt, cli.salt_len, cli.iterations, salted), 0);
    scram_keys(salted, ck, NULL, sk);
    k = scram_client_final(&cli, ck, sk, msg, sizeof(msg));
    ck_assert_int_gt(k, 0);
    client_send(c, buf, pg_p_build(buf, sizeof(buf), msg, (size_t)k));
    int t = sfx_client_read_msg(c, buf, sizeof(buf), &len);
    if (t == 'R' && pg_auth_parse(buf, len, &code, &d, &dl) == 0 && code == PG_AUTH_SASL_FINAL)
        *server_sig_ok = scram_client_server_final(&cli, d, dl, &err) == 0;
    scram_client_clear(&cli);
    if (t == 'E') { /* the proxy refused: read the fields the usual way */
        struct pg_error_fields ef;
        keep_raw_message(buf, len);
        ck_assert_int_eq(pg_parse_error(buf, len, &ef), 0);
        memcpy(c->sqlstate, ef.sqlstate, sizeof(c->sqlstate));
        memcpy(c->message, ef.message, sizeof(c->message));
        memcpy(c->severity, ef.severity, sizeof(c->severity));
        return 'E';
    }
    ck_assert_int_eq(t, 'R');
    return sfx_client_login(c); /* AuthenticationOk ... ReadyForQuery */
}

/* ---- shared checks ---- */

/* The value of one login-failure counter of the fixture's (default) route
 * (0 if it has no line yet). */
static unsigned long long failures(const char *sqlstate, const char *reason)
{
    static char text[1 << 20];
    char needle[160];
    size_t n = metrics_render(text, sizeof(text));
    ck_assert_uint_lt(n, sizeof(text));
    snprintf(needle, sizeof(needle),
             "pg_tls_proxy_login_failures_total{sqlstate=\"%s\",reason=\"%s\",route=\"default\"} ",
             sqlstate, reason);
    const char *p = strstr(text, needle);
    return p != NULL ? strtoull(p + strlen(needle), NULL, 10) : 0;
}

/* The client was refused: the FATAL it read, then the end; the audit line
 * (outcome, e.g. "outcome=login_failed") and the counter say the same
 * (reason NULL: not counted as a login failure). */
static void expect_refused_as(struct sfx *f, struct sfx_client *c, const char *sqlstate,
                              const char *words, const char *outcome, const char *reason,
                              unsigned long long before)
{
    ck_assert_str_eq(c->severity, "FATAL");
    ck_assert_str_eq(c->sqlstate, sqlstate);
    ck_assert_msg(strstr(c->message, sanitised(words)) != NULL, "message: %s", c->message);
    ck_assert_int_ge(sfx_client_wait_eof(c, WAIT_MS), 0);
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    ck_assert(sfx_log_wait(f, WAIT_MS, "event=closed", outcome, sqlstate));
    ck_assert_uint_eq(sfx_log_count(f, "event=established"), 0);
    if (reason != NULL)
        ck_assert_uint_eq(failures(sqlstate, reason), before + 1);
}

static void expect_refused(struct sfx *f, struct sfx_client *c, const char *sqlstate,
                           const char *words, const char *reason, unsigned long long before)
{
    expect_refused_as(f, c, sqlstate, words, "outcome=login_failed", reason, before);
}

static void up_reset(enum up_how how, bool offer_plus)
{
    memset(&up, 0, sizeof(up));
    up.how = how;
    up.offer_plus = offer_plus;
    ck_assert_int_eq(scram_secret_make(PASSWORD, 16, 4096, &up.secret), 0);
    kdfcache_clear(); /* each test derives its keys afresh */
}

/* The client logged in through auth.c's modes was given the proxy's cancel
 * key (login.c rewrites BackendKeyData on the path all modes share), which
 * maps to the upstream's. */
static void expect_proxy_key(const struct sfx_client *c)
{
    struct keymap_target t;
    ck_assert_uint_eq(c->keylen, 4);
    ck_assert(c->pid != SFX_UP_PID || memcmp(c->key, SFX_UP_KEY, 4) != 0);
    ck_assert(keymap_lookup(c->pid, c->key, c->keylen, &t));
    ck_assert_uint_eq(t.pid, SFX_UP_PID);
    ck_assert_mem_eq(t.key, SFX_UP_KEY, 4);
    keymap_target_clear(&t);
}

/* ---- password mode ---- */

static const char *const pw_scram_login[] = {
    "machine=login from=none to=startup",           "machine=login from=startup to=ask_password",
    "machine=login from=ask_password to=back_auth", "machine=login from=back_auth to=kdf",
    "machine=login from=kdf to=back_auth",          "machine=login from=back_auth to=authed",
    "machine=login from=authed to=ready",           NULL};

static void password_scram(bool offer_plus)
{
    struct sfx *f = &fx;
    up_reset(UP_SCRAM_OK, offer_plus);
    sfx_start(f, &(struct sfx_opts){.auth_mode = "password", .up = {up_auth, up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    client_give_password(c, PASSWORD);
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    expect_proxy_key(c);
    ck_assert_int_eq(sfx_client_query(c, "SELECT 1"), 'Z');
    ck_assert_str_eq(c->tag, "SELECT 1");
    ck_assert_str_eq(up.mech, offer_plus ? SCRAM_MECH_PLUS : SCRAM_MECH);
    ck_assert_msg(up.proof_ok, "the upstream refused the proxy's proof: %s", up.proof_err);
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    sc_check_seq(f, id, pw_scram_login, "login");
    ck_assert_uint_eq(sfx_log_count(f, PASSWORD), 0); /* never logged */
    sfx_client_close(c, true);
    sfx_client_free(c);

    /* Again: the SaltedPassword the server proved right is cached, no KDF. */
    up.proof_ok = false;
    c = sc_client_started(f, USER);
    client_give_password(c, PASSWORD);
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    ck_assert(up.proof_ok);
    unsigned long long id2 = sfx_log_conn(f, 1, WAIT_MS);
    sc_check_seq(f, id2, (const char *const[]){"to=ask_password", "cached=yes", "to=authed", NULL},
                 "cached login");
    ck_assert_uint_eq(sfx_log_count(f, "to=kdf"), 1); /* only the first connection's */
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    sfx_client_free(c);
    SFX_END(f);
}

START_TEST(password_scram_plus)
{
    password_scram(true);
}
END_TEST

START_TEST(password_scram_plain)
{
    password_scram(false);
}
END_TEST

/* A wrong password: the server's own 28P01 reaches the client, nothing cached. */
START_TEST(password_wrong)
{
    struct sfx *f = &fx;
    up_reset(UP_SCRAM_OK, true);
    unsigned long long before = failures("28P01", "upstream");
    sfx_start(f, &(struct sfx_opts){.auth_mode = "password", .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    client_give_password(c, "wrong horse");
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert(!up.proof_ok);
    expect_refused(f, c, "28P01", "password authentication failed for user \"" USER "\"",
                   "upstream", before);
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

static void password_bad_server(enum up_how how, const char *words)
{
    struct sfx *f = &fx;
    up_reset(how, true);
    unsigned long long before = failures("28000", "server_signature");
    sfx_start(f, &(struct sfx_opts){.auth_mode = "password", .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    client_give_password(c, PASSWORD);
    ck_assert_int_eq(sfx_client_login(c), 'E');
    ck_assert(up.proof_ok); /* the password was right: the server is what is wrong */
    expect_refused(f, c, "28000", words, "server_signature", before);
    sfx_client_free(c);
    SFX_END(f);
}

START_TEST(password_bad_signature)
{
    password_bad_server(UP_BAD_SIG, "could not prove that it holds the SCRAM verifier");
}
END_TEST

START_TEST(password_no_final)
{
    password_bad_server(UP_NO_FINAL, "without proving that it holds the SCRAM verifier");
}
END_TEST

/* "md5" + md5hex(md5hex(password || user) || salt) */
static void md5_expected(char out[36])
{
    uint8_t d[16];
    char inner[33];
    unsigned n;
    EVP_Digest(PASSWORD USER, strlen(PASSWORD USER), d, &n, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++)
        snprintf(inner + 2 * i, 3, "%02x", d[i]);
    uint8_t in2[36];
    memcpy(in2, inner, 32);
    memcpy(in2 + 32, md5_salt, 4);
    EVP_Digest(in2, 36, d, &n, EVP_md5(), NULL);
    memcpy(out, "md5", 3);
    for (int i = 0; i < 16; i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", d[i]);
}

static void password_asked(enum up_how how)
{
    struct sfx *f = &fx;
    char want[36];
    up_reset(how, false);
    sfx_start(f, &(struct sfx_opts){.auth_mode = "password", .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    client_give_password(c, PASSWORD);
    ck_assert_int_eq(sfx_client_login(c), 'Z');
    if (how == UP_MD5) {
        md5_expected(want);
        ck_assert_str_eq(up.password_msg, want);
    } else {
        ck_assert_str_eq(up.password_msg, PASSWORD);
    }
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    sc_check_seq(f, id,
                 (const char *const[]){"from=startup to=ask_password",
                                       "from=ask_password to=back_auth", "from=back_auth to=authed",
                                       "from=authed to=ready", NULL},
                 "login");
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    sfx_client_free(c);
    SFX_END(f);
}

START_TEST(password_md5)
{
    password_asked(UP_MD5);
}
END_TEST

START_TEST(password_cleartext)
{
    password_asked(UP_CLEARTEXT);
}
END_TEST

/* Iterations that keep PBKDF2 busy for about ms on this machine, in this
 * build (memcheck and ASan are many times slower than -O2): measured. */
static unsigned kdf_iterations_for_ms(unsigned ms)
{
    static const uint8_t salt[16] = {1};
    uint8_t out[SCRAM_KEY_LEN];
    struct timespec a, b;
    /* once unmeasured: memcheck translates code on its first run, which
     * would make PBKDF2 look slower than it is (and the job too short) */
    ck_assert_int_eq(scram_salted_password("calibrate", salt, sizeof(salt), 4096, out), 0);
    clock_gettime(CLOCK_MONOTONIC, &a);
    ck_assert_int_eq(scram_salted_password("calibrate", salt, sizeof(salt), 4096, out), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double per =
        ((double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6) / 4096.0;
    double n = per > 0 ? (double)ms / per : 4e6;
    if (n < 8192)
        n = 8192;
    if (n > (double)SCRAM_ITERATIONS_MAX)
        n = (double)SCRAM_ITERATIONS_MAX;
    return (unsigned)n;
}

/* The client leaves while PBKDF2 runs on the thread pool: the session
 * waits for the work to come back, then everything is freed. */
START_TEST(password_close_during_kdf)
{
    struct sfx *f = &fx;
    up_reset(UP_LONG_KDF, true);
    /* long enough that the close lands while it runs, even when memcheck
     * shares one core between the pool's thread and the loop's and the
     * machine is busy (2 s under memcheck was once too short in CI: the
     * derivation ended before the close was seen) */
    up.secret.iterations = kdf_iterations_for_ms(sfx_time_scale() > 1 ? 5000 : 400);
    sfx_start(f, &(struct sfx_opts){.auth_mode = "password", .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    client_give_password(c, PASSWORD);
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    sc_check_seq(f, id, (const char *const[]){"from=back_auth to=kdf", NULL}, "kdf");
    sfx_client_close(c, true);
    ck_assert(sfx_log_wait(f, 3 * WAIT_MS, "event=closed"));
    /* closed before the derivation ended: kdf_done found the session gone */
    ck_assert_uint_eq(sfx_log_count(f, "event=auth_kdf"), 0);
    ck_assert(sfx_wait_nconns(f, 0, 4 * WAIT_MS));
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* The client answers the password request wrongly: PostgreSQL's own
 * SQLSTATE and text (auth.c's recv_password_packet), nothing upstream. */
struct bad_answer {
    const char *name;
    const uint8_t *bytes;
    size_t n;
    const char *sqlstate, *words, *reason;
    const char *outcome; /* NULL: login_failed */
};

#define RAW(s) (const uint8_t *)(s), sizeof(s) - 1
static const struct bad_answer bad_answers[] = {
    {"empty password", RAW("p\0\0\0\x05\0"), "28P01", "empty password returned by client",
     "password", NULL},
    {"no NUL", RAW("p\0\0\0\x07pwd"), "08P01", "invalid password packet size", "protocol", NULL},
    {"a query instead", RAW("Q\0\0\0\x0dSELECT 1\0"), "08P01", "expected password response",
     "protocol", NULL},
    {"length word huge", RAW("p\x7f\xff\xff\xffpwd\0"), "08P01", "invalid message length", NULL,
     "outcome=protocol_error"},
    {"length word 3", RAW("p\0\0\0\x03"), "08P01", "invalid message length", NULL,
     "outcome=protocol_error"},
};

START_TEST(password_bad_answer)
{
    const struct bad_answer *t = &bad_answers[_i];
    struct sfx *f = &fx;
    uint8_t buf[64];
    size_t len;
    up_reset(UP_SCRAM_OK, true);
    unsigned long long before = failures(t->sqlstate, t->reason);
    sfx_start(f, &(struct sfx_opts){.auth_mode = "password", .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    ck_assert_int_eq(sfx_client_read_msg(c, buf, sizeof(buf), &len), 'R');
    client_send(c, t->bytes, t->n);
    ck_assert_msg(sfx_client_login(c) == 'E', "%s", t->name);
    /* A message that cannot be framed ends the session in login.c as a
     * protocol error (not counted among login failures). */
    expect_refused_as(f, c, t->sqlstate, t->words,
                      t->outcome != NULL ? t->outcome : "outcome=login_failed", t->reason, before);
    ck_assert_str_eq(up.mech, ""); /* the proxy never answered the server's SASL */
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* ---- scram mode ---- */

static char authfile_text[512];

static const char *authfile_for(const struct scram_secret *s)
{
    char v[400];
    ck_assert_int_gt(scram_secret_format(s, v, sizeof(v)), 0);
    snprintf(authfile_text, sizeof(authfile_text), "\"%s\" \"%s\"\n", USER, v);
    return authfile_text;
}

static const char *const scram_login[] = {
    "machine=login from=none to=front_sasl", "machine=login from=front_sasl to=back_auth",
    "machine=login from=back_auth to=authed", "machine=login from=authed to=ready", NULL};

START_TEST(scram_login_plus)
{
    struct sfx *f = &fx;
    bool plus = false, sig = false;
    up_reset(UP_SCRAM_OK, true);
    sfx_start(f, &(struct sfx_opts){
                     .auth_mode = "scram", .auth_file = authfile_for(&up.secret), .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    ck_assert_int_eq(client_scram(c, PASSWORD, &plus, NULL, NULL, &sig), 'Z');
    ck_assert(plus); /* the proxy offered -PLUS on its TLS front and bound it to its cert */
    ck_assert(sig);  /* and proved it holds the verifier */
    expect_proxy_key(c);
    ck_assert_str_eq(up.mech, SCRAM_MECH_PLUS);
    ck_assert_msg(up.proof_ok, "upstream: %s", up.proof_err); /* the recovered ClientKey */
    ck_assert_int_eq(sfx_client_query(c, "SELECT 2"), 'Z');
    unsigned long long id = sfx_log_conn(f, 0, WAIT_MS);
    sc_check_seq(f, id, scram_login, "login");
    ck_assert_uint_eq(sfx_log_count(f, "to=kdf"), 0); /* no PBKDF2 in scram mode */
    sfx_client_close(c, true);
    ck_assert(sfx_wait_nconns(f, 0, WAIT_MS));
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

START_TEST(scram_wrong_password)
{
    struct sfx *f = &fx;
    bool plus, sig;
    up_reset(UP_SCRAM_OK, true);
    unsigned long long before = failures("28P01", "password");
    sfx_start(f, &(struct sfx_opts){
                     .auth_mode = "scram", .auth_file = authfile_for(&up.secret), .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    ck_assert_int_eq(client_scram(c, "wrong horse", &plus, NULL, NULL, &sig), 'E');
    ck_assert_str_eq(raw_message, "password authentication failed for user \"" USER "\"");
    expect_refused(f, c, "28P01", "password authentication failed", "password", before);
    ck_assert_str_eq(up.mech, ""); /* nothing went upstream past the start-up */
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* An unknown user goes through the whole exchange (a mock verifier) and
 * gets the same 28P01; the mock salt is the same at each try. */
START_TEST(scram_unknown_user)
{
    struct sfx *f = &fx;
    bool plus, sig;
    uint8_t salt1[SCRAM_SALT_MAX], salt2[SCRAM_SALT_MAX];
    size_t l1 = 0, l2 = 0;
    up_reset(UP_SCRAM_OK, true);
    unsigned long long before = failures("28P01", "unknown_user");
    sfx_start(f, &(struct sfx_opts){
                     .auth_mode = "scram", .auth_file = authfile_for(&up.secret), .up = {up_auth}});
    for (int i = 0; i < 2; i++) {
        struct sfx_client *c = sc_client_started(f, "mallory");
        ck_assert_int_eq(
            client_scram(c, PASSWORD, &plus, i == 0 ? salt1 : salt2, i == 0 ? &l1 : &l2, &sig),
            'E');
        ck_assert_str_eq(raw_message, "password authentication failed for user \"mallory\"");
        expect_refused(f, c, "28P01", "password authentication failed", "unknown_user",
                       before + (unsigned)i);
        sfx_client_free(c);
    }
    ck_assert_uint_gt(l1, 0);
    ck_assert_uint_eq(l1, l2);
    ck_assert_mem_eq(salt1, salt2, l1);
    ck_assert(l1 != up.secret.salt_len || memcmp(salt1, up.secret.salt, l1) != 0);
    SFX_END(f);
}
END_TEST

/* The server holds another verifier for the role (another salt): the
 * error names the file and scram-secret. */
START_TEST(scram_verifier_mismatch)
{
    struct sfx *f = &fx;
    bool plus, sig;
    struct scram_secret file_secret;
    up_reset(UP_SCRAM_OK, true);
    ck_assert_int_eq(scram_secret_make(PASSWORD, 16, 4096, &file_secret), 0);
    unsigned long long before = failures("28P01", "verifier_mismatch");
    sfx_start(f, &(struct sfx_opts){.auth_mode = "scram",
                                    .auth_file = authfile_for(&file_secret),
                                    .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    ck_assert_int_eq(client_scram(c, PASSWORD, &plus, NULL, NULL, &sig), 'E');
    expect_refused(f, c, "28P01", "differs from the server's", "verifier_mismatch", before);
    ck_assert_msg(strstr(raw_hint, "scram-secret") != NULL, "hint: %s", raw_hint);
    ck_assert(!up.proof_ok); /* no proof was sent with the wrong key */
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* The server holds another verifier with the same salt and iteration
 * count (the salt check cannot tell): it refuses the ClientKey recovered
 * from the file. Its "password authentication failed" would blame the
 * client's password, which the proxy has just verified: the client is told
 * that the file's verifier differs from the server's, and the fix. */
START_TEST(scram_upstream_refuses_key)
{
    struct sfx *f = &fx;
    bool plus, sig;
    uint8_t salted[SCRAM_KEY_LEN];
    up_reset(UP_SCRAM_OK, true);
    const char *file = authfile_for(&up.secret);
    ck_assert_int_eq(scram_salted_password("another password", up.secret.salt, up.secret.salt_len,
                                           up.secret.iterations, salted),
                     0);
    scram_keys(salted, NULL, up.secret.stored_key, up.secret.server_key);
    unsigned long long before = failures("28P01", "verifier_mismatch");
    sfx_start(f, &(struct sfx_opts){.auth_mode = "scram", .auth_file = file, .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    ck_assert_int_eq(client_scram(c, PASSWORD, &plus, NULL, NULL, &sig), 'E');
    ck_assert(!up.proof_ok); /* the server did refuse the key */
    expect_refused(f, c, "28P01", "differs from the server's", "verifier_mismatch", before);
    ck_assert_msg(strstr(raw_hint, "scram-secret") != NULL, "hint: %s", raw_hint);
    sfx_client_free(c);
    SFX_END(f);
}
END_TEST

/* The server asks md5 or cleartext: a verifier cannot answer it. */
static void scram_asked(enum up_how how, const char *words)
{
    struct sfx *f = &fx;
    bool plus, sig;
    up_reset(how, false);
    unsigned long long before = failures("28000", "method");
    sfx_start(f, &(struct sfx_opts){
                     .auth_mode = "scram", .auth_file = authfile_for(&up.secret), .up = {up_auth}});
    struct sfx_client *c = sc_client_started(f, USER);
    ck_assert_int_eq(client_scram(c, PASSWORD, &plus, NULL, NULL, &sig), 'E');
    expect_refused(f, c, "28000", words, "method", before);
    ck_assert_str_eq(up.password_msg, ""); /* nothing was answered */
    sfx_client_free(c);
    SFX_END(f);
}

START_TEST(scram_server_asks_md5)
{
    scram_asked(UP_MD5, "md5");
}
END_TEST

START_TEST(scram_server_asks_cleartext)
{
    scram_asked(UP_CLEARTEXT, "cleartext");
}
END_TEST

Suite *auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *tp = sc_tcase("password");
    tcase_add_test(tp, password_scram_plus);
    tcase_add_test(tp, password_scram_plain);
    tcase_add_test(tp, password_wrong);
    tcase_add_test(tp, password_bad_signature);
    tcase_add_test(tp, password_no_final);
    tcase_add_test(tp, password_md5);
    tcase_add_test(tp, password_cleartext);
    tcase_add_test(tp, password_close_during_kdf);
    tcase_add_loop_test(tp, password_bad_answer, 0,
                        (int)(sizeof(bad_answers) / sizeof(bad_answers[0])));
    suite_add_tcase(s, tp);
    TCase *ts = sc_tcase("scram");
    tcase_add_test(ts, scram_login_plus);
    tcase_add_test(ts, scram_wrong_password);
    tcase_add_test(ts, scram_unknown_user);
    tcase_add_test(ts, scram_verifier_mismatch);
    tcase_add_test(ts, scram_upstream_refuses_key);
    tcase_add_test(ts, scram_server_asks_md5);
    tcase_add_test(ts, scram_server_asks_cleartext);
    suite_add_tcase(s, ts);
    return s;
}
