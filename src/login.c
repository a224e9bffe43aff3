/*
 * login.c - the login phase (the start-up watch): from the forwarded
 * StartupMessage until the upstream's ReadyForQuery, bytes in both
 * directions are framed into whole messages and looked at before they are
 * passed on. The phase is an explicit machine (login.h).
 *
 * What it sees and does:
 *  - BackendKeyData: replaced by the proxy's own cancel key (keymap), mapped
 *    to the server's and the session's route, so that only cancels for our
 *    own sessions are forwarded, and to the right upstream.
 *  - AuthenticationSASL on a plaintext front (sidecar mode): strips the
 *    -PLUS mechanisms, because a client that sees no TLS must not be offered
 *    channel binding (libpq aborts if it is).
 *  - the client's SASLInitialResponse choosing SCRAM-SHA-256-PLUS: the
 *    binding would be to the proxy's certificate and the server would
 *    reject it with a cryptic error, so the proxy answers with a clear one.
 * With --auth-mode password or scram, auth.c takes the messages it
 * answers itself (auth.h) and this file passes on the rest.
 * Owns the login buffers of struct conn. Never holds more than
 * LOGIN_MSG_MAX of one message: a bigger one ends the watch and everything
 * passes as is (or, while the proxy authenticates, ends the session).
 */
#include "login.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "conn.h"
#include "keymap.h"
#include "log.h"
#include "peers.h"
#include "metrics.h"
#include "relay.h"

/* Each client family spells the setting its own way: pgJDBC ignores
 * libpq's channel_binding and reads channelBinding. */
#define CHANNEL_BINDING_HINT                                                                       \
    "Connect with channel_binding=disable (libpq: psql, pg_dump, psycopg; pgx; postgres.js), "     \
    "channelBinding=disable (pgJDBC), Channel Binding=Disable (Npgsql), or your driver's own "     \
    "channel-binding setting turned off. pg-tls-proxy verifies the server's certificate "          \
    "(verify-full against its CA) on your behalf, and your client verifies the proxy's. "          \
    "Or run the proxy with --auth-mode password or --auth-mode scram: it then logs in for "        \
    "the client, and clients keep their default settings."

static const char *const state_names[LOGIN_STATES] = {
    [LOGIN_NONE] = "none",
    [LOGIN_STARTUP] = "startup",
    [LOGIN_SASL] = "sasl",
    [LOGIN_SASL_CHOSEN] = "sasl_chosen",
    [LOGIN_READY] = "ready",
    [LOGIN_UNWATCHED] = "unwatched",
    [LOGIN_FRONT_SASL] = "front_sasl",
    [LOGIN_ASK_PASSWORD] = "ask_password",
    [LOGIN_BACK_AUTH] = "back_auth",
    [LOGIN_KDF] = "kdf",
    [LOGIN_AUTHED] = "authed",
};

#define TO(s) (1u << (s))
#define WATCH_END (TO(LOGIN_READY) | TO(LOGIN_UNWATCHED))
/* legal[from]: the states it may move to. */
static const unsigned legal[LOGIN_STATES] = {
    [LOGIN_NONE] = TO(LOGIN_STARTUP) | TO(LOGIN_FRONT_SASL),
    [LOGIN_STARTUP] = TO(LOGIN_SASL) | TO(LOGIN_ASK_PASSWORD) | WATCH_END,
    [LOGIN_SASL] = TO(LOGIN_SASL_CHOSEN) | WATCH_END,
    [LOGIN_SASL_CHOSEN] = WATCH_END,
    [LOGIN_READY] = 0,
    [LOGIN_UNWATCHED] = 0,
    [LOGIN_FRONT_SASL] = TO(LOGIN_BACK_AUTH),
    [LOGIN_ASK_PASSWORD] = TO(LOGIN_BACK_AUTH),
    [LOGIN_BACK_AUTH] = TO(LOGIN_KDF) | TO(LOGIN_AUTHED),
    [LOGIN_KDF] = TO(LOGIN_BACK_AUTH),
    [LOGIN_AUTHED] = WATCH_END,
};
#undef WATCH_END
#undef TO

const char *login_state_name(enum login_state s)
{
    return (unsigned)s < LOGIN_STATES ? state_names[s] : "invalid";
}

bool login_move_legal(enum login_state from, enum login_state to)
{
    return (unsigned)from < LOGIN_STATES && (unsigned)to < LOGIN_STATES &&
           (legal[from] & (1u << to)) != 0;
}

bool login_set_state(struct conn *c, enum login_state to, const char *why)
{
    enum login_state from = c->ls;
    if (!conn_transition(c, "login", login_state_name(from), login_state_name(to),
                         login_move_legal(from, to), why))
        return false;
    c->ls = to;
    return true;
}

bool login_watching(const struct conn *c)
{
    return c->ls != LOGIN_NONE && c->ls != LOGIN_READY && c->ls != LOGIN_UNWATCHED &&
           (unsigned)c->ls < LOGIN_STATES;
}

/* The proxy is part-way through authenticating the client itself: nothing
 * may pass unlooked-at. (In password mode's STARTUP nothing has been asked
 * yet: what the server says passes as in passthrough.) */
static bool authenticating(const struct conn *c)
{
    return c->ls == LOGIN_FRONT_SASL || c->ls == LOGIN_ASK_PASSWORD || c->ls == LOGIN_BACK_AUTH ||
           c->ls == LOGIN_KDF;
}

/* Whether a message from this side may be handled now or must wait: while
 * PBKDF2 runs both wait (order is kept); while the proxy logs in upstream
 * the client has nothing to say, and before the StartupMessage went up
 * (FRONT_SASL) the server has not either. */
static bool may_take(const struct conn *c, bool front)
{
    if (c->ls == LOGIN_KDF)
        return false;
    if (front)
        return c->ls != LOGIN_BACK_AUTH;
    return c->ls != LOGIN_FRONT_SASL;
}

bool login_start(struct conn *c)
{
    if (auth_active(c))
        return auth_start(c) == 0;
    return login_set_state(c, LOGIN_STARTUP, "joined");
}

void login_free(struct conn *c)
{
    auth_free(c);
    free(c->wf.buf);
    free(c->wb.buf);
    memset(&c->wf, 0, sizeof(c->wf));
    memset(&c->wb, 0, sizeof(c->wb));
}

/* Stop watching: whatever is buffered goes out as it came. */
static int watch_end(struct conn *c, const char *why)
{
    int r = 0;
    if (login_watching(c) && !login_set_state(c, LOGIN_UNWATCHED, why))
        return -1;
    /* verified: the upstream's ReadyForQuery ended the watch (back_msg);
     * otherwise it stopped looking and cannot say how the login went. */
    conn_log_established(c, c->ls == LOGIN_READY);
    if (c->wb.len > 0)
        r = relay_emit(c, &c->front, c->wb.buf, c->wb.len);
    if (r == 0 && c->wf.len > 0)
        r = relay_emit(c, &c->back, c->wf.buf, c->wf.len);
    login_free(c);
    return r;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/*
 * An ErrorResponse before ReadyForQuery: the upstream refused the login
 * (wrong password 28P01, unknown database 3D000, too many connections
 * 53300...). PostgreSQL ends the session after it; the audit line then
 * says outcome=login_failed with the server's SQLSTATE instead of an
 * ordinary close, and the metric counts it. The message is sanitised by
 * the parser (printable ASCII, no quotes): it names the user or database,
 * which the audit line logs anyway, and never a password.
 */
static void login_refused(struct conn *c, const uint8_t *m, size_t n)
{
    struct pg_error_fields ef;
    if (c->login_sqlstate[0] != '\0' || pg_parse_error(m, n, &ef) < 0)
        return;
    /* Only an error that ends the session ends the login. */
    if (strcmp(ef.severity, "FATAL") != 0 && strcmp(ef.severity, "PANIC") != 0)
        return;
    memcpy(c->login_sqlstate, ef.sqlstate, sizeof(c->login_sqlstate));
    snprintf(c->login_severity, sizeof(c->login_severity), "%s", ef.severity);
    metrics_login_failed(ef.sqlstate, "upstream",
                         c->route != NULL ? c->route->mslot : METRICS_ROUTE_NONE);
    if (c->outcome == NULL) { /* the first cause wins, as in conn_end */
        c->outcome = "login_failed";
        c->reason = strndup(ef.message, CONN_REASON_MAX - 1); /* NULL: logged as "" */
    }
    log_debug("event=login_refused conn=%llu sqlstate=%s", (unsigned long long)c->id, ef.sqlstate);
}

/*
 * BackendKeyData: the client gets the proxy's own pid/key instead
 * (keymap.h), the same size, so that its cancel comes back to the proxy,
 * is looked up there and goes to this session's route with the server's
 * key. The server's key never reaches the client, nor any log. One the
 * proxy cannot parse is not passed on either: the client would cancel
 * with a key the proxy does not know.
 */
static int backend_key(struct conn *c, const uint8_t *m, size_t n)
{
    uint32_t pid, mine;
    uint8_t key[PG_CANCEL_KEY_MAX], out[5 + 4 + PG_CANCEL_KEY_MAX];
    size_t keylen;

    if (pg_parse_backend_key(m, n, &pid, key, &keylen) < 0) {
        conn_fail_front(c, "08P01", "protocol_error",
                        "pg-tls-proxy: the server sent a malformed BackendKeyData message");
        return -1;
    }
    keymap_remove(c->key);
    /* out: the header as the server sent it, then the proxy's pid and key */
    memcpy(out, m, 5);
    c->key = keymap_add(c->route, pid, key, keylen, peers_self(), &mine, out + 9);
    OPENSSL_cleanse(key, sizeof(key));
    if (c->key == NULL) {
        conn_fail_front(c, "XX000", "internal",
                        "pg-tls-proxy: could not make a cancel key for the session (out of memory "
                        "or no randomness)");
        return -1;
    }
    out[5] = (uint8_t)(mine >> 24);
    out[6] = (uint8_t)(mine >> 16);
    out[7] = (uint8_t)(mine >> 8);
    out[8] = (uint8_t)mine;
    log_debug("event=backend_key conn=%llu upstream_pid=%u key_bytes=%zu",
              (unsigned long long)c->id, pid, keylen);
    int r = relay_emit(c, &c->front, out, n);
    OPENSSL_cleanse(out, sizeof(out));
    return r;
}

/* One whole message from the upstream. */
static int back_msg(struct conn *c, const uint8_t *m, size_t n)
{
    uint8_t out[1024];
    unsigned stripped = 0;

    if (auth_active(c)) {
        int r = auth_back_msg(c, m, n);
        if (r <= 0)
            return r;
    }
    switch (m[0]) {
    case 'R':
        if (pg_auth_code(m, n) != PG_AUTH_SASL)
            break;
        if (c->ls == LOGIN_STARTUP && !login_set_state(c, LOGIN_SASL, "AuthenticationSASL"))
            return -1;
        if (!c->front.plain)
            break;
        size_t k = pg_sasl_strip_plus(m, n, out, sizeof(out), &stripped);
        if (k > 0 && stripped > 0) {
            log_debug("event=sasl_plus_stripped conn=%llu mechanisms_removed=%u",
                      (unsigned long long)c->id, stripped);
            return relay_emit(c, &c->front, out, k);
        }
        break;
    case 'K':
        return backend_key(c, m, n);
    case 'E':
        c->back_error_seen = true; /* its FATAL says why it ends the session */
        login_refused(c, m, n);
        break;
    case 'Z': {
        int r = relay_emit(c, &c->front, m, n);
        /* start-up is over; the rest is relayed as is */
        if (r == 0 && !login_set_state(c, LOGIN_READY, "ReadyForQuery"))
            return -1;
        return r;
    }
    default:
        break;
    }
    return relay_emit(c, &c->front, m, n);
}

/* One whole message from the client. */
static int front_msg(struct conn *c, const uint8_t *m, size_t n)
{
    char mech[PG_LOGVAL_MAX];

    if (auth_active(c)) {
        int r = auth_front_msg(c, m, n);
        if (r <= 0)
            return r;
    }
    if (m[0] == 'p' && c->ls == LOGIN_SASL) {
        if (!login_set_state(c, LOGIN_SASL_CHOSEN, "SASLInitialResponse"))
            return -1;
        if (pg_sasl_initial_mechanism(m, n, mech, sizeof(mech)) == 0 && ends_with(mech, "-PLUS")) {
            /* Nothing of it goes upstream: the server would only say
             * "SCRAM channel binding check failed". */
            conn_fail_front_hint(c, "28000", "channel_binding", CHANNEL_BINDING_HINT,
                                 "pg-tls-proxy: channel binding (%s) cannot pass through a "
                                 "TLS-terminating proxy: the client would bind to the proxy's "
                                 "certificate, not the server's",
                                 mech);
            return -1;
        }
    }
    return relay_emit(c, &c->back, m, n);
}

/* Frame and handle the whole messages one direction holds, as far as the
 * state lets them through. 1 if any was handled, 0 if none, -1 when the
 * connection is ending. */
static int take(struct conn *c, bool front)
{
    struct login_buf *w = front ? &c->wf : &c->wb;
    size_t off = 0;
    int took = 0;

    while (login_watching(c) && may_take(c, front)) {
        uint8_t type;
        size_t total;
        int h = pg_msg_header(w->buf + off, w->len - off, LOGIN_MSG_MAX, &type, &total);
        if (h < 0 && authenticating(c)) {
            conn_fail_front(c, "08P01", "protocol_error",
                            "pg-tls-proxy: invalid message length from the %s during "
                            "authentication",
                            front ? "client" : "server");
            return -1;
        }
        if (h < 0) {
            /* Not a start-up we understand (or a huge message): stop looking. */
            log_debug("event=watch_end conn=%llu reason=\"unframeable %s message\"",
                      (unsigned long long)c->id, front ? "front" : "back");
            memmove(w->buf, w->buf + off, w->len - off);
            w->len -= off;
            /* login_process ends the watch (once), whatever stopped it */
            return login_set_state(c, LOGIN_UNWATCHED, "unframeable message") ? 1 : -1;
        }
        if (h == 0 || total > w->len - off)
            break;
        const uint8_t *m = w->buf + off;
        off += total;
        took = 1;
        int r = front ? front_msg(c, m, total) : back_msg(c, m, total);
        if (r < 0 || c->phase != PHASE_OPEN)
            return -1;
    }
    if (w->buf != NULL) {
        memmove(w->buf, w->buf + off, w->len - off);
        w->len -= off;
    }
    return took;
}

int login_process(struct conn *c)
{
    /* A state change on one side may let the other's held messages
     * through (AuthenticationOk ends BACK_AUTH): go round until quiet. */
    for (;;) {
        int b = take(c, false);
        if (b < 0)
            return -1;
        int f = login_watching(c) ? take(c, true) : 0;
        if (f < 0)
            return -1;
        if (!login_watching(c) || (b == 0 && f == 0))
            break;
    }
    if (!login_watching(c))
        return c->ls == LOGIN_READY || c->ls == LOGIN_UNWATCHED ? watch_end(c, "ReadyForQuery") : 0;
    /* What waits may not grow without bound (a client talking while the
     * proxy logs in for it). */
    if (c->wf.len > LOGIN_MSG_MAX || c->wb.len > 4 * LOGIN_MSG_MAX) {
        conn_fail_front(c, "08P01", "protocol_error",
                        "pg-tls-proxy: too much data from the %s during authentication",
                        c->wf.len > LOGIN_MSG_MAX ? "client" : "server");
        return -1;
    }
    return 0;
}

int login_input(struct conn *c, struct leg *from, const uint8_t *buf, size_t len)
{
    struct login_buf *w = from == &c->front ? &c->wf : &c->wb;

    uint8_t *nb = realloc(w->buf, w->len + len);
    if (nb == NULL) {
        conn_end(c, "error", "out of memory");
        return -1;
    }
    w->buf = nb;
    memcpy(w->buf + w->len, buf, len);
    w->len += len;
    return login_process(c);
}
