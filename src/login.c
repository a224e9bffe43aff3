/*
 * login.c - the login phase (the start-up watch): from the forwarded
 * StartupMessage until the upstream's ReadyForQuery, bytes in both
 * directions are framed into whole messages and looked at before they are
 * passed on. The phase is an explicit machine (login.h).
 *
 * What it sees and does:
 *  - BackendKeyData: remembers the session's cancel key (keymap), so that
 *    only cancels for our own sessions are forwarded.
 *  - AuthenticationSASL on a plaintext front (sidecar mode): strips the
 *    -PLUS mechanisms, because a client that sees no TLS must not be offered
 *    channel binding (libpq aborts if it is).
 *  - the client's SASLInitialResponse choosing SCRAM-SHA-256-PLUS: the
 *    binding would be to the proxy's certificate and the server would
 *    reject it with a cryptic error, so the proxy answers with a clear one.
 * Owns the login buffers of struct conn. Never holds more than
 * LOGIN_MSG_MAX of one message: a bigger one ends the watch and everything
 * passes as is.
 */
#include "login.h"

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "keymap.h"
#include "log.h"
#include "metrics.h"
#include "relay.h"

/* Each client family spells the setting its own way: pgJDBC ignores
 * libpq's channel_binding and reads channelBinding. */
#define CHANNEL_BINDING_HINT                                                                       \
    "Connect with channel_binding=disable (libpq: psql, pg_dump, psycopg; pgx), "                  \
    "channelBinding=disable (pgJDBC), Channel Binding=Disable (Npgsql), or your driver's own "     \
    "channel-binding setting turned off. pg-tls-proxy verifies the server's certificate "          \
    "(verify-full against its CA) on your behalf, and your client verifies the proxy's."

static const char *const state_names[LOGIN_STATES] = {
    [LOGIN_NONE] = "none",   [LOGIN_STARTUP] = "startup",
    [LOGIN_SASL] = "sasl",   [LOGIN_SASL_CHOSEN] = "sasl_chosen",
    [LOGIN_READY] = "ready", [LOGIN_UNWATCHED] = "unwatched",
};

#define TO(s) (1u << (s))
#define WATCH_END (TO(LOGIN_READY) | TO(LOGIN_UNWATCHED))
/* legal[from]: the states it may move to. */
static const unsigned legal[LOGIN_STATES] = {
    [LOGIN_NONE] = TO(LOGIN_STARTUP),
    [LOGIN_STARTUP] = TO(LOGIN_SASL) | WATCH_END,
    [LOGIN_SASL] = TO(LOGIN_SASL_CHOSEN) | WATCH_END,
    [LOGIN_SASL_CHOSEN] = WATCH_END,
    [LOGIN_READY] = 0,
    [LOGIN_UNWATCHED] = 0,
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
    return c->ls == LOGIN_STARTUP || c->ls == LOGIN_SASL || c->ls == LOGIN_SASL_CHOSEN;
}

bool login_start(struct conn *c)
{
    return login_set_state(c, LOGIN_STARTUP, "joined");
}

void login_free(struct conn *c)
{
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
    metrics_login_failed(ef.sqlstate);
    if (c->outcome == NULL) { /* the first cause wins, as in conn_end */
        c->outcome = "login_failed";
        snprintf(c->reason, sizeof(c->reason), "%s", ef.message);
    }
    log_debug("event=login_refused conn=%llu sqlstate=%s", (unsigned long long)c->id, ef.sqlstate);
}

/* One whole message from the upstream. */
static int back_msg(struct conn *c, const uint8_t *m, size_t n)
{
    uint8_t out[1024];
    unsigned stripped = 0;

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
    case 'K': {
        uint32_t pid;
        uint8_t key[PG_CANCEL_KEY_MAX];
        size_t keylen;
        if (pg_parse_backend_key(m, n, &pid, key, &keylen) == 0) {
            keymap_remove(c->key);
            c->key = keymap_add(pid, key, keylen);
            log_debug("event=backend_key conn=%llu pid=%u key_bytes=%zu", (unsigned long long)c->id,
                      pid, keylen);
        }
        break;
    }
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

int login_input(struct conn *c, struct leg *from, const uint8_t *buf, size_t len)
{
    struct login_buf *w = from == &c->front ? &c->wf : &c->wb;
    size_t off = 0;

    uint8_t *nb = realloc(w->buf, w->len + len);
    if (nb == NULL) {
        conn_end(c, "error", "out of memory");
        return -1;
    }
    w->buf = nb;
    memcpy(w->buf + w->len, buf, len);
    w->len += len;

    while (login_watching(c)) {
        uint8_t type;
        size_t total;
        int h = pg_msg_header(w->buf + off, w->len - off, LOGIN_MSG_MAX, &type, &total);
        if (h < 0) {
            /* Not a start-up we understand (or a huge message): stop looking. */
            log_debug("event=watch_end conn=%llu reason=\"unframeable %s message\"",
                      (unsigned long long)c->id, from == &c->front ? "front" : "back");
            memmove(w->buf, w->buf + off, w->len - off);
            w->len -= off;
            return watch_end(c, "unframeable message");
        }
        if (h == 0 || total > w->len - off)
            break;
        const uint8_t *m = w->buf + off;
        off += total;
        int r = from == &c->front ? front_msg(c, m, total) : back_msg(c, m, total);
        if (r < 0 || c->phase != PHASE_OPEN)
            return -1;
    }
    memmove(w->buf, w->buf + off, w->len - off);
    w->len -= off;
    return login_watching(c) ? 0 : watch_end(c, "ReadyForQuery");
}
