/*
 * auth.c - the proxy authenticates the client itself (auth.h): the
 * password and scram auth modes, between login.c's framing and the two
 * legs.
 *
 * Owns struct auth (the session's secrets while the login lasts: the
 * client's password, the recovered ClientKey, both SCRAM exchanges) and
 * wipes it as soon as the server said AuthenticationOk, or at the end.
 * Never logs a secret: the log says which step failed and why.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "authfile.h"
#include "config.h"
#include "conn.h"
#include "kdfcache.h"
#include "log.h"
#include "login.h"
#include "metrics.h"
#include "pgauth.h"
#include "pgmsg.h"
#include "relay.h"
#include "route.h"
#include "scram.h"
#include "worker.h"

#define USER_MAX 256 /* a longer user name is refused */

struct auth {
    struct conn *c;
    int mode;            /* enum auth_mode */
    char user[USER_MAX]; /* as the StartupMessage spelt it (md5 and messages use it) */
    /* password mode */
    char *password; /* the client's, NUL-terminated, wiped after use */
    size_t pwlen;
    int asked;           /* the server's request being answered (3, 5, 10) */
    uint8_t md5_salt[4]; /* AuthenticationMD5Password's */
    uint8_t mechs[256];  /* AuthenticationSASL's list, while the client is asked */
    size_t mechs_len;
    uint8_t cache_key[KDFCACHE_KEY_LEN];
    uint8_t salted[SCRAM_KEY_LEN]; /* SaltedPassword, cached once the server proved it */
    bool salted_fresh;             /* computed now (not from the cache): cache it when proved */
    uv_work_t work;
    int work_rc;
    uint64_t work_start_ms;
    /* scram mode */
    struct scram_server srv;
    char server_final[SCRAM_MSG_MAX]; /* for the client, once the server said yes */
    int server_final_len;
    /* both: the proxy's own SCRAM exchange with the server */
    struct scram_client cli;
    bool sasl_started;  /* the proxy answered an AuthenticationSASL */
    bool sasl_verified; /* and checked the server's signature */
    uint8_t client_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
};

/* Same key for the whole process: an unknown user's mock salt is the same
 * at each try (PostgreSQL keeps its mock nonce in pg_control). */
static uint8_t mock_key[SCRAM_KEY_LEN];
static pthread_once_t mock_once = PTHREAD_ONCE_INIT;

static void mock_key_init(void)
{
    if (RAND_bytes(mock_key, sizeof(mock_key)) != 1)
        memset(mock_key, 0x5a, sizeof(mock_key)); /* still unknown to the client */
}

bool auth_active(const struct conn *c)
{
    return c->route != NULL && c->route->auth_mode != AUTH_PASSTHROUGH;
}

bool auth_holds_startup(const struct conn *c)
{
    return c->route != NULL && c->route->auth_mode == AUTH_SCRAM;
}

static void wipe_secrets(struct auth *a)
{
    if (a->password != NULL) {
        OPENSSL_cleanse(a->password, a->pwlen + 1);
        free(a->password);
        a->password = NULL;
    }
    a->pwlen = 0;
    scram_server_clear(&a->srv);
    scram_client_clear(&a->cli);
    OPENSSL_cleanse(a->client_key, sizeof(a->client_key));
    OPENSSL_cleanse(a->server_key, sizeof(a->server_key));
    OPENSSL_cleanse(a->salted, sizeof(a->salted));
    OPENSSL_cleanse(a->cache_key, sizeof(a->cache_key));
    OPENSSL_cleanse(a->server_final, sizeof(a->server_final));
}

void auth_free(struct conn *c)
{
    if (c->auth == NULL)
        return;
    wipe_secrets(c->auth);
    OPENSSL_cleanse(c->auth, sizeof(*c->auth));
    free(c->auth);
    c->auth = NULL;
}

/*
 * The login failed here: the client is told (sqlstate and text as
 * PostgreSQL would say them, or the proxy's own naming cause and fix), the
 * audit line says login_failed with this SQLSTATE, the metric counts the
 * reason. Ends the connection.
 */
__attribute__((format(printf, 5, 6))) static int fail(struct conn *c, const char *sqlstate,
                                                      const char *reason, const char *hint,
                                                      const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->login_sqlstate[0] == '\0') {
        snprintf(c->login_sqlstate, sizeof(c->login_sqlstate), "%s", sqlstate);
        snprintf(c->login_severity, sizeof(c->login_severity), "FATAL");
        metrics_login_failed(sqlstate, reason, c->route->mslot);
    }
    log_info("event=auth_failed conn=%llu user=\"%s\" mode=%s reason=%s sqlstate=%s",
             (unsigned long long)c->id, c->info.user, auth_mode_name(c->route->auth_mode), reason,
             sqlstate);
    conn_fail_front_hint(c, sqlstate, "login_failed", hint, "%s", msg);
    return -1;
}

static int send_front(struct conn *c, const uint8_t *m, size_t n)
{
    return relay_emit(c, &c->front, m, n);
}

static int send_back(struct conn *c, const uint8_t *m, size_t n)
{
    return relay_emit(c, &c->back, m, n);
}

/* tls-server-end-point data of a leg's certificate (ours on the front,
 * the server's on the back); 0 when there is none to bind to. */
static size_t leg_cb(struct leg *l, bool ours, uint8_t out[SCRAM_CB_MAX])
{
    SSL *ssl = leg_ssl(l);
    if (ssl == NULL || l->plain)
        return 0;
    X509 *cert = ours ? SSL_get_certificate(ssl) : SSL_get1_peer_certificate(ssl);
    if (cert == NULL)
        return 0;
    int n = scram_cert_hash(cert, out);
    if (!ours)
        X509_free(cert);
    return n > 0 ? (size_t)n : 0;
}

/* The front's socket peer is this host (a plaintext front may carry a
 * password only from loopback: a sidecar in the same pod or host). */
static bool front_loopback(const struct conn *c)
{
    const char *peer = c->lb_addr[0] != '\0' ? c->lb_addr : c->front_addr;
    return strncmp(peer, "127.", 4) == 0 || strncmp(peer, "[::1]:", 6) == 0 ||
           strncmp(peer, "[::ffff:127.", 12) == 0;
}

/* The StartupMessage's length word (0 if the bytes are not there). */
static size_t startup_packet_len(const struct conn *c)
{
    if (c->startup == NULL || c->startup_len < 4)
        return 0;
    return (size_t)c->startup[0] << 24 | (size_t)c->startup[1] << 16 | (size_t)c->startup[2] << 8 |
           c->startup[3];
}

/* ---- scram mode: the proxy as the client's SCRAM server ------------------ */

static int offer_sasl(struct conn *c)
{
    struct auth *a = c->auth;
    const struct scram_secret *secret = authfile_find(c->route->auth, a->user);
    uint8_t cb[SCRAM_CB_MAX];
    size_t cb_len = leg_cb(&c->front, true, cb);
    uint8_t mechs[128], out[160];

    pthread_once(&mock_once, mock_key_init);
    scram_server_init(&a->srv, secret, mock_key, a->user, cb, cb_len);
    int ml = scram_server_mechanisms(&a->srv, mechs, sizeof(mechs));
    size_t n = ml > 0 ? pg_auth_build(out, sizeof(out), PG_AUTH_SASL_START, mechs, (size_t)ml) : 0;
    if (n == 0)
        return fail(c, "XX000", "internal", NULL, "pg-tls-proxy: cannot build AuthenticationSASL");
    log_debug("event=auth_offered conn=%llu mode=scram plus=%s known_user=%s",
              (unsigned long long)c->id, cb_len > 0 ? "yes" : "no", secret ? "yes" : "no");
    return send_front(c, out, n);
}

static const char *scram_reason(const struct scram_error *e)
{
    if (strcmp(e->sqlstate, "28P01") == 0)
        return "password";
    if (strstr(e->message, "channel binding") != NULL)
        return "channel_binding";
    return "protocol";
}

/* After the client's proof checked out: the StartupMessage goes up. */
static int front_proven(struct conn *c)
{
    size_t pkt = startup_packet_len(c);
    if (pkt == 0 || pkt > c->startup_len)
        return fail(c, "XX000", "internal", NULL, "pg-tls-proxy: the StartupMessage was lost");
    if (!login_set_state(c, LOGIN_BACK_AUTH, "client proven"))
        return -1;
    int r = send_back(c, c->startup, pkt);
    free(c->startup);
    c->startup = NULL;
    c->startup_len = 0;
    return r;
}

static int front_sasl_msg(struct conn *c, const uint8_t *m, size_t n)
{
    struct auth *a = c->auth;
    struct scram_error err = {0};
    char out[SCRAM_MSG_MAX];
    uint8_t pkt[SCRAM_MSG_MAX + 16];

    if (m[0] != 'p')
        return fail(c, "08P01", "protocol", NULL, "expected SASL response, got message type %d",
                    m[0]);
    if (a->srv.step == 0) {
        const char *mech;
        const uint8_t *data;
        size_t len;
        if (pg_sasl_initial_parse(m, n, &mech, &data, &len) < 0)
            return fail(c, "08P01", "protocol", NULL, "malformed SASLInitialResponse message");
        int k = scram_server_first(&a->srv, mech, data, len, out, sizeof(out), &err);
        if (k < 0)
            return fail(c, err.sqlstate, scram_reason(&err), err.detail[0] ? err.detail : NULL,
                        "%s", err.message);
        size_t p = pg_auth_build(pkt, sizeof(pkt), PG_AUTH_SASL_CONTINUE, out, (size_t)k);
        OPENSSL_cleanse(out, sizeof(out));
        return p > 0 ? send_front(c, pkt, p) : -1;
    }
    const uint8_t *data;
    size_t len;
    if (pg_sasl_response_parse(m, n, &data, &len) < 0)
        return fail(c, "08P01", "protocol", NULL, "malformed SASLResponse message");
    int k = scram_server_final(&a->srv, data, len, a->server_final, sizeof(a->server_final),
                               a->client_key, &err);
    if (k < 0) {
        const char *why = a->srv.mock ? "unknown_user" : scram_reason(&err);
        return fail(c, err.sqlstate, why, err.detail[0] ? err.detail : NULL, "%s", err.message);
    }
    a->server_final_len = k;
    memcpy(a->server_key, a->srv.secret.server_key, SCRAM_KEY_LEN);
    log_debug("event=auth_client_proven conn=%llu mode=scram plus=%s", (unsigned long long)c->id,
              a->srv.plus ? "yes" : "no");
    return front_proven(c);
}

/* ---- the proxy's own login upstream -------------------------------------- */

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* "md5" + md5hex(md5hex(password || user) || salt), as PostgreSQL checks it. */
static int md5_answer(const struct auth *a, char out[36])
{
    uint8_t d[16];
    char inner[33];
    unsigned len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_md5(), NULL) == 1 &&
             EVP_DigestUpdate(md, a->password, a->pwlen) == 1 &&
             EVP_DigestUpdate(md, a->user, strlen(a->user)) == 1 &&
             EVP_DigestFinal_ex(md, d, &len) == 1;
    if (ok) {
        hex(d, 16, inner);
        ok = EVP_DigestInit_ex(md, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(md, inner, 32) == 1 &&
             EVP_DigestUpdate(md, a->md5_salt, 4) == 1 && EVP_DigestFinal_ex(md, d, &len) == 1;
    }
    EVP_MD_CTX_free(md);
    if (!ok)
        return -1;
    out[0] = 'm';
    out[1] = 'd';
    out[2] = '5';
    hex(d, 16, out + 3);
    OPENSSL_cleanse(d, sizeof(d));
    OPENSSL_cleanse(inner, sizeof(inner));
    return 0;
}

#define NO_MD5_HINT                                                                                \
    "On the server: set password_encryption = 'scram-sha-256', give the role a SCRAM password "    \
    "(run the ALTER ROLE statement that pg-tls-proxy scram-secret prints), and use "               \
    "scram-sha-256 in pg_hba.conf. Or run the proxy with --auth-mode password."

static int answer_cleartext(struct conn *c)
{
    struct auth *a = c->auth;
    uint8_t pkt[SCRAM_PASSWORD_MAX + 16];
    if (a->mode == AUTH_SCRAM)
        return fail(c, "28000", "method", NO_MD5_HINT,
                    "pg-tls-proxy: the server asks for the password of user \"%s\" in cleartext, "
                    "but --auth-mode scram holds only a SCRAM verifier, not the password",
                    a->user);
    size_t p = pg_p_build(pkt, sizeof(pkt), a->password, a->pwlen + 1);
    int r = p > 0 ? send_back(c, pkt, p) : -1;
    OPENSSL_cleanse(pkt, sizeof(pkt));
    return r;
}

static int answer_md5(struct conn *c)
{
    struct auth *a = c->auth;
    char ans[36];
    uint8_t pkt[64];
    if (a->mode == AUTH_SCRAM)
        return fail(c, "28000", "method", NO_MD5_HINT,
                    "pg-tls-proxy: the server asks for md5 password authentication of user "
                    "\"%s\" (it holds an md5 hash for the role), but --auth-mode scram holds "
                    "only a SCRAM verifier, from which no md5 answer can be made",
                    a->user);
    if (md5_answer(a, ans) < 0)
        return fail(c, "XX000", "internal", NULL, "pg-tls-proxy: md5 is not available");
    size_t p = pg_p_build(pkt, sizeof(pkt), ans, 36);
    OPENSSL_cleanse(ans, sizeof(ans));
    return p > 0 ? send_back(c, pkt, p) : -1;
}

static int answer_sasl(struct conn *c, const uint8_t *mechs, size_t len)
{
    struct auth *a = c->auth;
    uint8_t cb[SCRAM_CB_MAX];
    size_t cb_len = leg_cb(&c->back, false, cb);
    char first[SCRAM_MSG_MAX];
    uint8_t pkt[SCRAM_MSG_MAX + 64];

    if (scram_client_init(&a->cli, mechs, len, cb, cb_len) < 0)
        return fail(c, "28000", "method",
                    "Let the role log in with scram-sha-256 (pg_hba.conf), or use --auth-mode "
                    "passthrough.",
                    "pg-tls-proxy: the server offers no SCRAM-SHA-256 mechanism for user \"%s\"",
                    a->user);
    int k = scram_client_first(&a->cli, first, sizeof(first));
    size_t p = k > 0 ? pg_sasl_initial_build(pkt, sizeof(pkt), scram_client_mechanism(&a->cli),
                                             first, (size_t)k)
                     : 0;
    if (p == 0)
        return fail(c, "XX000", "internal", NULL, "pg-tls-proxy: cannot build the SCRAM message");
    a->sasl_started = true;
    log_debug("event=auth_upstream conn=%llu mechanism=%s", (unsigned long long)c->id,
              scram_client_mechanism(&a->cli));
    return send_back(c, pkt, p);
}

/* The client-final-message from the keys. */
static int send_client_final(struct conn *c)
{
    struct auth *a = c->auth;
    char fin[SCRAM_MSG_MAX];
    uint8_t pkt[SCRAM_MSG_MAX + 16];
    int k = scram_client_final(&a->cli, a->client_key, a->server_key, fin, sizeof(fin));
    size_t p = k > 0 ? pg_p_build(pkt, sizeof(pkt), fin, (size_t)k) : 0;
    OPENSSL_cleanse(fin, sizeof(fin));
    if (p == 0)
        return fail(c, "XX000", "internal", NULL, "pg-tls-proxy: cannot build the SCRAM message");
    int r = send_back(c, pkt, p);
    OPENSSL_cleanse(pkt, sizeof(pkt));
    return r;
}

/* Outside a read callback (relay.c flushes after those): push what was
 * written to either leg. */
static void flush_legs(struct conn *c)
{
    if (c->phase != PHASE_OPEN)
        return;
    if (leg_flush(&c->front) < 0 || leg_flush(&c->back) < 0) {
        conn_end(c, "error", "write failed");
        conn_close(c);
    }
}

static void kdf_work(uv_work_t *req)
{
    struct auth *a = req->data;
    a->work_rc = scram_salted_password(a->password, a->cli.salt, a->cli.salt_len, a->cli.iterations,
                                       a->salted);
    /* The pool's threads live until the process exits: give OpenSSL's
     * per-thread state (error queue, KDF contexts) back after each job. */
    OPENSSL_thread_stop();
}

static void kdf_done(uv_work_t *req, int status)
{
    struct auth *a = req->data;
    struct conn *c = a->c;
    if (c->phase == PHASE_OPEN && c->ls == LOGIN_KDF) {
        log_debug("event=auth_kdf conn=%llu iterations=%u ms=%llu", (unsigned long long)c->id,
                  a->cli.iterations, (unsigned long long)(uv_now(c->w->loop) - a->work_start_ms));
        if (status != 0 || a->work_rc < 0) {
            fail(c, "XX000", "internal", NULL, "pg-tls-proxy: SCRAM key derivation failed");
        } else {
            scram_keys(a->salted, a->client_key, NULL, a->server_key);
            a->salted_fresh = true;
            if (login_set_state(c, LOGIN_BACK_AUTH, "keys derived") && send_client_final(c) == 0 &&
                login_process(c) == 0)
                flush_legs(c);
        }
    }
    conn_release(c);
}

#define VERIFIER_HINT                                                                              \
    "Regenerate it with pg-tls-proxy scram-secret: put its first line in the auth file and run "   \
    "its ALTER ROLE statement on the server (or copy the role's rolpassword from pg_authid into "  \
    "the auth file), then reload the proxy (SIGHUP)."

static int server_first(struct conn *c, const uint8_t *data, size_t len)
{
    struct auth *a = c->auth;
    struct scram_error err = {0};
    if (!a->sasl_started)
        return fail(c, "08P01", "protocol", NULL,
                    "pg-tls-proxy: the server sent SASLContinue before any SASL exchange");
    if (scram_client_server_first(&a->cli, data, len, &err) < 0)
        return fail(c, "08P01", "server_protocol", NULL,
                    "pg-tls-proxy: the server's SCRAM message is invalid: %s", err.message);
    if (a->mode == AUTH_SCRAM) {
        const struct scram_secret *s = &a->srv.secret;
        if (a->cli.iterations != s->iterations || a->cli.salt_len != s->salt_len ||
            CRYPTO_memcmp(a->cli.salt, s->salt, s->salt_len) != 0)
            return fail(c, "28P01", "verifier_mismatch", VERIFIER_HINT,
                        "pg-tls-proxy: the SCRAM verifier of user \"%s\" in the auth file "
                        "differs from the server's (another salt or iteration count): the "
                        "password was changed on the server, or the file is out of date",
                        a->user);
        return send_client_final(c);
    }
    /* password mode: SaltedPassword from the cache, else PBKDF2 off the loop */
    kdfcache_key(a->user, a->cli.salt, a->cli.salt_len, a->cli.iterations, a->password, a->pwlen,
                 a->cache_key);
    if (kdfcache_get(a->cache_key, a->salted)) {
        scram_keys(a->salted, a->client_key, NULL, a->server_key);
        log_debug("event=auth_kdf conn=%llu cached=yes", (unsigned long long)c->id);
        return send_client_final(c);
    }
    if (!login_set_state(c, LOGIN_KDF, "SASLContinue"))
        return -1;
    a->work.data = a;
    a->work_start_ms = uv_now(c->w->loop);
    if (uv_queue_work(c->w->loop, &a->work, kdf_work, kdf_done) != 0)
        return fail(c, "XX000", "internal", NULL, "pg-tls-proxy: cannot queue key derivation");
    conn_hold(c);
    return 0;
}

static int server_final(struct conn *c, const uint8_t *data, size_t len)
{
    struct auth *a = c->auth;
    struct scram_error err = {0};
    if (!a->sasl_started || scram_client_server_final(&a->cli, data, len, &err) < 0)
        return fail(c, "28000", "server_signature",
                    "Check that --client-connection-host-or-ip points at your database, and that "
                    "nothing between the proxy and it terminates TLS.",
                    "pg-tls-proxy: the server could not prove that it holds the SCRAM verifier "
                    "of user \"%s\" (%s): the login was stopped",
                    a->user, err.message[0] ? err.message : "no SASL exchange");
    a->sasl_verified = true;
    if (a->mode == AUTH_PASSWORD && a->salted_fresh)
        kdfcache_put(a->cache_key, a->salted);
    return 0;
}

/* AuthenticationOk from the server: the client hears it now (after our
 * SASLFinal in scram mode), the secrets go. */
static int server_ok(struct conn *c, const uint8_t *m, size_t n)
{
    struct auth *a = c->auth;
    if (a->sasl_started && !a->sasl_verified)
        return fail(c, "28000", "server_signature",
                    "Check that --client-connection-host-or-ip points at your database.",
                    "pg-tls-proxy: the server accepted user \"%s\" without proving that it "
                    "holds the SCRAM verifier (no SASLFinal): the login was stopped",
                    a->user);
    if (a->mode == AUTH_SCRAM) {
        uint8_t pkt[SCRAM_MSG_MAX + 16];
        size_t p = pg_auth_build(pkt, sizeof(pkt), PG_AUTH_SASL_FINAL, a->server_final,
                                 (size_t)a->server_final_len);
        if (p == 0 || send_front(c, pkt, p) < 0)
            return -1;
    }
    wipe_secrets(a);
    if (!login_set_state(c, LOGIN_AUTHED, "AuthenticationOk"))
        return -1;
    return send_front(c, m, n);
}

/* The client's password is in: answer the request the server made. */
static int answer_asked(struct conn *c)
{
    struct auth *a = c->auth;
    if (!login_set_state(c, LOGIN_BACK_AUTH, "password"))
        return -1;
    switch (a->asked) {
    case PG_AUTH_CLEARTEXT:
        return answer_cleartext(c);
    case PG_AUTH_MD5:
        return answer_md5(c);
    default:
        return answer_sasl(c, a->mechs, a->mechs_len);
    }
}

static const char *method_name(int code)
{
    switch (code) {
    case 2:
        return "Kerberos V5";
    case 6:
        return "SCM credentials";
    case 7:
    case 8:
        return "GSSAPI";
    case 9:
        return "SSPI";
    default:
        return "unknown";
    }
}

/*
 * scram mode: the server refused the ClientKey recovered from the auth
 * file's verifier (same salt and iteration count, so server_first could
 * not tell). PostgreSQL's own 28P01 "password authentication failed" would
 * blame the client's password, which the proxy has just verified: say that
 * the file's verifier differs from the server's, and how to fix it. Other
 * errors pass on as PostgreSQL sent them (1).
 */
static int key_refused(struct conn *c, const uint8_t *m, size_t n)
{
    struct pg_error_fields ef;
    if (pg_parse_error(m, n, &ef) < 0 || strcmp(ef.sqlstate, "28P01") != 0)
        return 1;
    return fail(c, "28P01", "verifier_mismatch", VERIFIER_HINT,
                "pg-tls-proxy: the server refused the key of user \"%s\" recovered from the "
                "auth file: the SCRAM verifier in the auth file differs from the server's (the "
                "password was changed on the server), or the role may not log in now (VALID "
                "UNTIL passed)",
                c->auth->user);
}

int auth_back_msg(struct conn *c, const uint8_t *m, size_t n)
{
    struct auth *a = c->auth;
    int code;
    const uint8_t *data;
    size_t len;

    if (a != NULL && m[0] == 'E' && c->ls == LOGIN_BACK_AUTH && a->mode == AUTH_SCRAM &&
        a->sasl_started)
        return key_refused(c, m, n);
    /* While the client is asked for its password the server has asked
     * already: another request is out of turn. */
    if (a != NULL && m[0] == 'R' && c->ls == LOGIN_ASK_PASSWORD)
        return fail(c, "08P01", "server_protocol", NULL,
                    "pg-tls-proxy: the server sent an authentication request out of turn");

    if (a == NULL || m[0] != 'R' || (c->ls != LOGIN_STARTUP && c->ls != LOGIN_BACK_AUTH))
        return 1; /* ErrorResponse, NegotiateProtocolVersion, after the login: as passthrough */
    if (pg_auth_parse(m, n, &code, &data, &len) < 0)
        return fail(c, "08P01", "server_protocol", NULL,
                    "pg-tls-proxy: the server sent a malformed authentication request");
    if (c->ls == LOGIN_STARTUP) {
        /* password mode, nothing asked yet */
        if (code != PG_AUTH_CLEARTEXT && code != PG_AUTH_MD5 && code != PG_AUTH_SASL_START)
            return 1; /* AuthenticationOk (trust) or a method the client may know */
        if (code == PG_AUTH_MD5 && len != 4)
            return fail(c, "08P01", "server_protocol", NULL,
                        "pg-tls-proxy: the server sent a malformed md5 request");
        if (code == PG_AUTH_SASL_START && len > sizeof(a->mechs))
            return fail(c, "08P01", "server_protocol", NULL,
                        "pg-tls-proxy: the server's SASL mechanism list is too long");
        if (c->front.plain && !front_loopback(c))
            return fail(c, "28000", "plaintext",
                        "Connect with sslmode=verify-full, or use --auth-mode scram for "
                        "plaintext sidecar clients.",
                        "pg-tls-proxy: --auth-mode password asks for the password in cleartext, "
                        "which it does only inside TLS or from this host (loopback)");
        a->asked = code;
        if (code == PG_AUTH_MD5)
            memcpy(a->md5_salt, data, 4);
        if (code == PG_AUTH_SASL_START) {
            memcpy(a->mechs, data, len);
            a->mechs_len = len;
        }
        uint8_t ask[16];
        size_t p = pg_auth_build(ask, sizeof(ask), PG_AUTH_CLEARTEXT, NULL, 0);
        if (!login_set_state(c, LOGIN_ASK_PASSWORD, "the server asks for a password"))
            return -1;
        return send_front(c, ask, p);
    }
    /* BACK_AUTH: the proxy answers the server itself */
    switch (code) {
    case PG_AUTH_OK:
        return server_ok(c, m, n);
    case PG_AUTH_CLEARTEXT:
        return answer_cleartext(c);
    case PG_AUTH_MD5:
        if (len != 4)
            return fail(c, "08P01", "server_protocol", NULL,
                        "pg-tls-proxy: the server sent a malformed md5 request");
        memcpy(a->md5_salt, data, 4);
        return answer_md5(c);
    case PG_AUTH_SASL_START:
        return answer_sasl(c, data, len);
    case PG_AUTH_SASL_CONTINUE:
        return server_first(c, data, len);
    case PG_AUTH_SASL_FINAL:
        return server_final(c, data, len);
    default:
        return fail(c, "28000", "method",
                    "Let the role log in with scram-sha-256 or md5 (pg_hba.conf), or use "
                    "--auth-mode passthrough.",
                    "pg-tls-proxy: the server asks for %s authentication (code %d) of user "
                    "\"%s\", which --auth-mode %s cannot perform for the client",
                    method_name(code), code, a->user, auth_mode_name(a->mode));
    }
}

int auth_front_msg(struct conn *c, const uint8_t *m, size_t n)
{
    struct auth *a = c->auth;
    if (a == NULL)
        return 1;
    if (c->ls == LOGIN_FRONT_SASL)
        return front_sasl_msg(c, m, n);
    if (c->ls != LOGIN_ASK_PASSWORD)
        return 1;
    if (m[0] != 'p')
        return fail(c, "08P01", "protocol", NULL, "expected password response, got message type %d",
                    m[0]);
    const char *pw;
    size_t len;
    if (pg_password_parse(m, n, &pw, &len) < 0)
        return fail(c, "08P01", "protocol", NULL, "invalid password packet size");
    if (len == 0)
        return fail(c, "28P01", "password", NULL, "empty password returned by client");
    if (len > SCRAM_PASSWORD_MAX)
        return fail(c, "28P01", "password", NULL,
                    "pg-tls-proxy: the password is longer than %d bytes", SCRAM_PASSWORD_MAX);
    a->password = malloc(len + 1);
    if (a->password == NULL)
        return fail(c, "53200", "internal", NULL, "out of memory");
    memcpy(a->password, pw, len + 1);
    a->pwlen = len;
    return answer_asked(c);
}

int auth_start(struct conn *c)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        conn_end(c, "error", "out of memory");
        return -1;
    }
    c->auth = a;
    a->c = c;
    a->mode = c->route->auth_mode;
    /* conn_join left the start-up bytes here (forwarded already in password
     * mode, held in scram mode): the user name as the client spelt it. */
    int got = pg_startup_param(c->startup, c->startup_len, "user", a->user, sizeof(a->user));
    size_t pkt = startup_packet_len(c);
    bool extra = pkt < c->startup_len;
    if (a->mode == AUTH_PASSWORD) {
        free(c->startup);
        c->startup = NULL;
        c->startup_len = 0;
    }
    if (a->mode == AUTH_SCRAM && extra) {
        /* The client cannot know what to send before it sees our mechanisms. */
        if (!login_set_state(c, LOGIN_FRONT_SASL, "joined"))
            return -1;
        return fail(c, "08P01", "protocol", NULL,
                    "pg-tls-proxy: unexpected data after the StartupMessage");
    }
    if (got < 0 || a->user[0] == '\0') {
        if (!login_set_state(c, a->mode == AUTH_SCRAM ? LOGIN_FRONT_SASL : LOGIN_STARTUP, "joined"))
            return -1;
        return fail(c, "28000", "protocol", NULL,
                    "no PostgreSQL user name specified in startup packet");
    }
    if (a->mode == AUTH_PASSWORD)
        return login_set_state(c, LOGIN_STARTUP, "joined") ? 0 : -1;
    if (!login_set_state(c, LOGIN_FRONT_SASL, "joined") || offer_sasl(c) < 0)
        return -1;
    flush_legs(c);
    return c->phase == PHASE_OPEN ? 0 : -1;
}
