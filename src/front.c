/*
 * front.c - the client's leg from accept to its StartupMessage: the PROXY
 * protocol header, the first packet (SSLRequest, GSSENCRequest, direct TLS
 * ClientHello, plaintext StartupMessage or CancelRequest), the front TLS
 * handshake, the StartupMessage inside TLS, and the refusals a client
 * hears once it can read them (--max-connections, the descriptor reserve,
 * --server-allow-from, TLS required).
 *
 * Mirrors the back leg (dial.c, back.c): it starts the upstream leg early
 * when admit.c allows, and hands over to conn.c's join once the
 * StartupMessage is in. Decides the session's route (front_route: SNI,
 * database, listen port, default; route.h) and refuses a client no route
 * takes with 08004. Never frees a connection; after any call that may
 * end it, returns. Never answers an SSLRequest with an error
 * (CVE-2024-10977) and never accepts bytes behind one (CVE-2021-23214).
 */
#include "front.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "cancelfwd.h"
#include "conn.h"
#include "leg.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "proxyproto.h"
#include "relay.h"
#include "sniwarn.h"
#include "tlsctx.h"
#include "back.h"
#include "login.h"
#include "route.h"
#include "worker.h"

static const char *const state_names[FRONT_STATES] = {
    [FRONT_FIRST] = "first", [FRONT_TLS] = "tls",     [FRONT_STARTUP] = "startup",
    [FRONT_WAIT] = "wait",   [FRONT_RELAY] = "relay",
};

#define TO(s) (1u << (s))
/* legal[from]: the states it may move to. */
static const unsigned legal[FRONT_STATES] = {
    [FRONT_FIRST] = TO(FRONT_TLS) | TO(FRONT_WAIT), /* SSLRequest or ClientHello; plaintext */
    [FRONT_TLS] = TO(FRONT_STARTUP),
    [FRONT_STARTUP] = TO(FRONT_WAIT),
    [FRONT_WAIT] = TO(FRONT_RELAY),
    [FRONT_RELAY] = 0,
};
#undef TO

const char *front_state_name(enum front_state s)
{
    return (unsigned)s < FRONT_STATES ? state_names[s] : "invalid";
}

bool front_move_legal(enum front_state from, enum front_state to)
{
    return (unsigned)from < FRONT_STATES && (unsigned)to < FRONT_STATES &&
           (legal[from] & (1u << to)) != 0;
}

bool front_set_state(struct conn *c, enum front_state to, const char *why)
{
    enum front_state from = c->fs;
    if (!conn_transition(c, "front", front_state_name(from), front_state_name(to),
                         front_move_legal(from, to), why))
        return false;
    c->fs = to;
    return true;
}

bool front_starting(const struct conn *c)
{
    return c->fs == FRONT_FIRST || c->fs == FRONT_TLS || c->fs == FRONT_STARTUP;
}

bool front_relaying(const struct conn *c)
{
    return c->fs == FRONT_RELAY;
}

bool front_past_handshake(const struct conn *c)
{
    return c->fs == FRONT_STARTUP || c->fs == FRONT_WAIT || c->fs == FRONT_RELAY;
}

/*
 * A client accepted nearly out of descriptors is refused only if they are
 * still nearly out when its StartupMessage arrives: others may have closed
 * meanwhile (the lowest free descriptor, which dup returns, says so).
 */
static void fd_recheck(struct conn *c)
{
    int fd = -1;
    unsigned long long limit = 0;
    if (!c->too_many || c->err_msg == NULL || uv_fileno((uv_handle_t *)&c->front.tcp, &fd) != 0)
        return;
    int probe = dup(fd);
    if (probe < 0)
        return;
    bool still = admit_fd_nearly_out(probe, &limit);
    close(probe);
    if (still)
        return;
    log_debug("event=fd_limit_cleared conn=%llu", (unsigned long long)c->id);
    free(c->err_msg);
    c->err_msg = NULL;
    c->too_many = false;
}

bool front_holds_early_back(const struct conn *c)
{
    return c->early_back;
}

/* Open the upstream leg now if an early slot is free; else it waits for
 * the StartupMessage (front_startup). */
static void back_start_early(struct conn *c)
{
    unsigned n = 0;
    switch (admit_early_take(&admit_early_legs, (long long)time(NULL), &n)) {
    case ADMIT_EARLY_WASTED:
        log_debug(
            "event=upstream_deferred conn=%llu reason=\"%u early upstream legs wasted in 2 s\"",
            (unsigned long long)c->id, n);
        return;
    case ADMIT_EARLY_FULL:
        log_debug("event=upstream_deferred conn=%llu reason=\"%u early upstream legs open\"",
                  (unsigned long long)c->id, n);
        return;
    case ADMIT_EARLY_OK:
    default:
        break;
    }
    c->early_back = true;
    back_start(c, &conn_session_back); /* leaves bs != BACK_IDLE, even when it fails */
}

/* Is the client's address in list? */
static bool front_in(struct conn *c, const struct cidr_list *list)
{
    struct sockaddr_storage ss;
    const struct sockaddr *sa = front_sockaddr(c, &ss);
    return sa != NULL && cidr_list_match(list, sa);
}

/* Not in the --server-allow-from of r (NULL: not known yet, not denied). */
static bool front_denied_by(struct conn *c, const struct route *r)
{
    return r != NULL && r->allow_from.n > 0 && !front_in(c, &r->allow_from);
}

/* The session's route once decided (at accept when there is only the
 * default route); NULL before. */
static const struct route *front_known_route(const struct conn *c)
{
    return c->route_decided ? c->route : NULL;
}

/* Is a plaintext StartupMessage allowed from this client: by its route
 * once decided, else by any route (then decided and asked again)? */
static bool front_plain_allowed(struct conn *c)
{
    if (c->route_decided)
        return c->route->allow_plain.n > 0 && front_in(c, &c->route->allow_plain);
    for (size_t i = 0; i < c->table->n; i++)
        if (c->table->all[i]->allow_plain.n > 0 && front_in(c, &c->table->all[i]->allow_plain))
            return true;
    return false;
}

/*
 * The session's route, once the StartupMessage (pktlen bytes at
 * c->startup) is in: the SNI's route, else its database's (the user name
 * when it sent none, as PostgreSQL), else the listen port's, else the
 * default (route_table_decide). A mismatch or no route is refused with
 * 08004 inside TLS, naming what the client asked for and what the routes
 * offer. False if refused (the connection is ending: return).
 */
static bool front_route(struct conn *c, size_t pktlen)
{
    char db[256], msg[1024], hint[1024], q[1100], qh[1100], qs[300], qd[300];
    struct route *r = NULL;

    if (c->route_decided)
        return true;
    if (pg_startup_param(c->startup, pktlen, "database", db, sizeof(db)) < 0 || db[0] == '\0')
        if (pg_startup_param(c->startup, pktlen, "user", db, sizeof(db)) < 0)
            db[0] = '\0';
    SSL *ssl = c->front.plain ? NULL : leg_ssl(&c->front);
    const char *sni = ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    if (route_table_decide(c->table, sni, db, c->local_port, &r, msg, sizeof(msg), hint,
                           sizeof(hint)) != ROUTE_OK) {
        log_warn("event=no_route conn=%llu front=%s sni=\"%s\" database=\"%s\" port=%u "
                 "reason=\"%s\" hint=\"%s\"",
                 (unsigned long long)c->id, c->front_addr,
                 log_escape(sni != NULL ? sni : "", qs, sizeof(qs)), log_escape(db, qd, sizeof(qd)),
                 c->local_port, log_escape(msg, q, sizeof(q)), log_escape(hint, qh, sizeof(qh)));
        conn_fail_front_hint(c, "08004", "no_route", hint, "%s", msg);
        return false;
    }
    if (r != c->route) {
        if (c->bs != BACK_IDLE) { /* started for the SNI's route, which always wins */
            conn_fail_front(c, "XX000", "internal",
                            "pg-tls-proxy: internal error (route changed after the upstream leg "
                            "started); please report it");
            return false;
        }
        route_unref(c->route);
        c->route = route_ref(r);
    }
    c->route_decided = true;
    if (c->counted) { /* the open-sessions gauge moves it from "-" to its route */
        metrics_session_routed(c->mslot, c->route->mslot);
        c->mslot = c->route->mslot;
    }
    c->denied = front_denied_by(c, c->route);
    return true;
}

/*
 * --server-proxy-protocol: the first bytes are a PROXY v1/v2 header from
 * the load balancer. Its source address becomes the client's, for the logs
 * and the allow-lists. Returns true when the header is done and c->startup
 * holds only the client's own bytes; false if more is needed or the
 * connection was refused (then it is ending).
 */
static bool front_proxy_header(struct conn *c)
{
    struct proxyproto pp;
    char err[160];
    int n = proxyproto_parse(c->startup, c->startup_len, &pp, err, sizeof(err));
    if (n == 0)
        return false;
    if (n < 0) {
        /* No ErrorResponse: the client may be waiting for an answer to its
         * SSLRequest, which must never be one (CVE-2024-10977). */
        log_warn("event=refused conn=%llu front=%s reason=\"PROXY protocol header missing or "
                 "invalid: %s\" hint=\"is the load balancer set to send PROXY protocol "
                 "headers? (--server-proxy-protocol is on)\"",
                 (unsigned long long)c->id, c->front_addr, err);
        conn_end(c, "refused", "PROXY protocol header missing or invalid: %s", err);
        return false;
    }
    c->pp_done = true;
    if (pp.has_addr && (c->pp_src = malloc(sizeof(*c->pp_src))) != NULL) {
        memcpy(c->pp_src, &pp.src, sizeof(pp.src));
        snprintf(c->lb_addr, sizeof(c->lb_addr), "%s", c->front_addr);
        netaddr_format((const struct sockaddr *)&pp.src, c->front_addr, sizeof(c->front_addr));
    }
    memmove(c->startup, c->startup + n, c->startup_len - (size_t)n);
    c->startup_len -= (size_t)n;
    c->denied = front_denied_by(c, front_known_route(c));
    log_info("event=proxy_protocol conn=%llu front=%s via=%s version=%d%s",
             (unsigned long long)c->id, c->front_addr, c->lb_addr[0] ? c->lb_addr : "-", pp.version,
             c->denied ? " denied=not_in_server_allow_from" : "");
    return true;
}

void front_accept(struct worker *w, int sock)
{
    struct conn *c = conn_new(w);
    if (c == NULL) {
        close(sock);
        log_error("event=accept_failed reason=\"out of memory\"");
        return;
    }
    leg_tcp_open(&c->front);
    conn_hold(c); /* the leg's transport: released at LEG_CLOSED */
    if (uv_tcp_open(&c->front.tcp, sock) != 0) {
        close(sock); /* not the handle's yet */
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->front.tcp, 1);
    unsigned ka = w->rt->cfg->keepalive_s;
    uv_tcp_keepalive(&c->front.tcp, ka > 0, ka);
    c->counted = true;
    c->mslot = c->route_decided ? c->route->mslot : METRICS_ROUTE_NONE;
    metrics_session_opened(c->mslot);
    unsigned open = admit_client_open();
    c->too_many = open > w->rt->cfg->max_connections;
    int fd = -1;
    unsigned long long limit = 0;
    if (!c->too_many && uv_fileno((uv_handle_t *)&c->front.tcp, &fd) == 0 &&
        admit_fd_nearly_out(fd, &limit)) {
        char msg[300];
        snprintf(msg, sizeof(msg),
                 "pg-tls-proxy: too many connections: the proxy is nearly out of file "
                 "descriptors (%d open, limit %llu) — raise its open-files limit (ulimit -n / "
                 "LimitNOFILE) or lower the load",
                 fd + 1, limit);
        c->err_msg = strdup(msg); /* told by refuse() */
        c->too_many = true;
        admit_fd_limit_log(fd, limit);
    }
    netaddr_peer(&c->front.tcp, c->front_addr, sizeof(c->front_addr));
    /* Told once the client can read it: after its TLS handshake. */
    /* Behind a PROXY-protocol load balancer, the client's address is in
     * the header: decided there. */
    c->denied = !w->rt->cfg->proxy_protocol && front_denied_by(c, front_known_route(c));
    if (!route_table_single(c->table)) { /* a route may have a listen-port of its own */
        struct sockaddr_storage ss;
        int sl = sizeof(ss);
        if (uv_tcp_getsockname(&c->front.tcp, (struct sockaddr *)&ss, &sl) == 0)
            c->local_port = ss.ss_family == AF_INET6
                                ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    /* Logged with the first packet (conn_log_accepted): a plaintext cancel has none. */
    c->accept_note = c->err_msg != NULL ? " refused=fd_limit"
                     : c->too_many      ? " refused=max_connections"
                                        : "";
    conn_arm_timer(c);
    if (leg_read_start(&c->front) < 0)
        conn_close(c);
}

/*
 * A client we will not serve (--max-connections, --server-allow-from) is
 * told why once it can read it: after its TLS handshake and StartupMessage,
 * or in reply to a plaintext StartupMessage. True if it was refused.
 */
bool front_refuse(struct conn *c)
{
    char ip[64];
    if (c->too_many && c->err_msg != NULL) { /* nearly out of descriptors */
        conn_fail_front(c, "53300", "too_many", "%s", c->err_msg);
        return true;
    }
    if (c->too_many) {
        conn_fail_front(c, "53300", "too_many",
                        "pg-tls-proxy: sorry, too many clients already (--max-connections %u)",
                        c->w->rt->cfg->max_connections);
        return true;
    }
    if (c->denied) {
        conn_fail_front(c, "28000", "denied",
                        "pg-tls-proxy: connections from %s are not allowed (--server-allow-from)",
                        netaddr_host(c->front_addr, ip, sizeof(ip)));
        return true;
    }
    return false;
}

/* Both legs ready: forward the StartupMessage (and anything after it). */

const struct sockaddr *front_sockaddr(struct conn *c, struct sockaddr_storage *ss)
{
    int sl = sizeof(*ss);
    if (c->pp_src != NULL)
        return (const struct sockaddr *)c->pp_src;
    if (uv_tcp_getpeername(&c->front.tcp, (struct sockaddr *)ss, &sl) != 0)
        return NULL;
    return (const struct sockaddr *)ss;
}

/* Start the front TLS handshake; pending holds bytes already received,
 * more (m bytes) those of the same read that did not fit in c->startup. */
static bool front_tls_begin(struct conn *c, const uint8_t *pending, size_t n, const uint8_t *more,
                            size_t m)
{
    char err[200];
    if (leg_tls_init(&c->front, c->table->front_ctx, true, err, sizeof(err)) < 0) {
        conn_end(c, "error", "%s", err);
        return false;
    }
    /* Several routes: the client's SNI picks the certificate (route.c). */
    if (!route_table_single(c->table) && route_sni_attach(leg_ssl(&c->front), &c->sni) < 0) {
        conn_end(c, "error", "cannot attach the route table to the front TLS session");
        return false;
    }
    if (leg_tls_feed(&c->front, pending, n) < 0 || leg_tls_feed(&c->front, more, m) < 0) {
        conn_close(c);
        return false;
    }
    c->front_tls_ms = uv_now(c->w->loop);
    leg_tls_begin(&c->front);
    if (!front_set_state(c, FRONT_TLS, c->direct_tls ? "ClientHello" : "SSLRequest"))
        return false;
    /* In parallel with the front handshake, unless the client must first
     * prove who it is (mTLS): then unauthenticated clients cost the
     * database nothing. With several routes, the upstream is not known
     * yet: it starts once the SNI (front_tls_ready) or the StartupMessage
     * has named it. */
    if (c->route_decided && !c->denied && !c->too_many &&
        c->w->rt->cfg->front_client_ca_path == NULL)
        back_start_early(c);
    return c->phase == PHASE_OPEN;
}

static void front_startup(struct conn *c);

/* Bytes pipelined behind a plaintext StartupMessage that did not fit in
 * c->startup: kept after it, to be forwarded with it (conn_join). */
static bool startup_append(struct conn *c, const uint8_t *more, size_t m)
{
    uint8_t *b = realloc(c->startup, c->startup_len + m);
    if (b == NULL) {
        conn_close(c);
        return false;
    }
    memcpy(b + c->startup_len, more, m);
    c->startup = b;
    c->startup_len += m;
    return true;
}

/* FRONT_FIRST: the first plaintext packet. */
static void front_first(struct conn *c, const uint8_t *buf, size_t len)
{
    struct pg_first p;
    char err[200];

    if (c->startup == NULL && (c->startup = malloc(PG_STARTUP_MAX)) == NULL) {
        conn_close(c);
        return;
    }
    /* The first packet is decided within PG_STARTUP_MAX bytes (pgproto.c),
     * so that much is kept; the rest of this read (a ClientHello can be
     * larger: post-quantum key shares) goes to TLS, or after the packet. */
    size_t take = len < PG_STARTUP_MAX - c->startup_len ? len : PG_STARTUP_MAX - c->startup_len;
    const uint8_t *more = buf + take;
    size_t m = len - take;
    memcpy(c->startup + c->startup_len, buf, take);
    c->startup_len += take;
    if (c->w->rt->cfg->proxy_protocol && !c->pp_done &&
        (!front_proxy_header(c) || c->startup_len == 0))
        return;

    enum pg_first_kind kind = pg_parse_first(c->startup, c->startup_len, &p, err, sizeof(err));
    if (kind == PG_FIRST_CANCEL && !c->accept_logged)
        c->quiet = true;
    else if (kind != PG_FIRST_INCOMPLETE && !c->accept_logged)
        conn_log_accepted(c);
    switch (kind) {
    case PG_FIRST_INCOMPLETE:
        return;
    case PG_FIRST_SSLREQUEST: {
        size_t extra = c->startup_len - p.len;
        if (extra > 0 && c->startup[p.len] != PG_TLS_HANDSHAKE_BYTE) {
            /* CVE-2021-23214: these bytes were not encrypted; they may be a
             * man-in-the-middle's. Refuse before saying 'S'. Only a TLS
             * ClientHello may follow, and it goes to the handshake. */
            log_warn("event=refused conn=%llu front=%s reason=\"%zu bytes after SSLRequest "
                     "before TLS (possible injection, CVE-2021-23214)\"",
                     (unsigned long long)c->id, c->front_addr, extra);
            conn_end(c, "refused", "bytes pipelined after SSLRequest");
            return;
        }
        if (leg_send(&c->front, "S", 1) < 0) {
            conn_close(c);
            return;
        }
        c->startup_len = 0;
        if (front_tls_begin(c, c->startup + p.len, extra, more, m) && extra + m > 0)
            leg_tls_step(&c->front);
        return;
    }
    case PG_FIRST_DIRECT_TLS: {
        /* PostgreSQL 17 sslnegotiation=direct: a ClientHello, no SSLRequest. */
        size_t n = c->startup_len;
        c->direct_tls = true;
        c->startup_len = 0;
        if (front_tls_begin(c, c->startup, n, more, m))
            leg_tls_step(&c->front);
        return;
    }
    case PG_FIRST_GSSENCREQUEST:
        if (c->startup_len > p.len) {
            conn_end(c, "refused", "bytes pipelined after GSSENCRequest");
            return;
        }
        /* No GSSAPI encryption here; the client may follow with SSLRequest. */
        c->startup_len = 0;
        if (leg_send(&c->front, "N", 1) < 0)
            conn_close(c);
        return;
    case PG_FIRST_STARTUP:
        c->info = p.startup;
        if (m > 0 && !startup_append(c, more, m))
            return;
        fd_recheck(c);
        if (front_refuse(c))
            return;
        if (front_plain_allowed(c)) {
            /* Sidecar mode: plaintext to us, verify-full upstream. */
            c->front.plain = true;
            if (!front_route(c, p.len) || front_refuse(c))
                return;
            if (!front_plain_allowed(c)) { /* allowed by another route than its own */
                c->front.plain = false;
                conn_fail_front(c, "28000", "refused",
                                "pg-tls-proxy: TLS is required for route %s; connect with "
                                "sslmode=verify-full",
                                c->route->name);
                return;
            }
            if (!front_set_state(c, FRONT_WAIT, "plaintext StartupMessage"))
                return;
            leg_read_stop(&c->front);
            back_start(c, &conn_session_back);
            return;
        }
        conn_fail_front(c, "28000", "refused",
                        "pg-tls-proxy: TLS is required; connect with sslmode=verify-full");
        return;
    case PG_FIRST_CANCEL:
        cancelfwd_request(c, p.len);
        return;
    case PG_FIRST_PEER_CANCEL: /* refused: instances send these inside TLS only */
        cancelfwd_peer_request(c, p.len);
        return;
    case PG_FIRST_INVALID:
    default:
        conn_fail_front(c, "08P01", "protocol_error", "pg-tls-proxy: invalid start-up packet: %s",
                        err);
        return;
    }
}

/* FRONT_STARTUP: read the StartupMessage inside TLS. */
static void front_startup(struct conn *c)
{
    struct pg_first p;
    char err[200], e[160];

    if (c->startup == NULL && (c->startup = malloc(PG_STARTUP_MAX)) == NULL) {
        conn_close(c);
        return;
    }
    for (;;) {
        size_t n = 0;
        enum tls_res r = TLS_WANT;
        if (c->startup_len < PG_STARTUP_MAX)
            r = leg_read_plain(&c->front, c->startup + c->startup_len,
                               PG_STARTUP_MAX - c->startup_len, &n);
        if (r == TLS_OK) {
            c->startup_len += n;
        } else if (r == TLS_EOF) {
            conn_end(c, "closed", "client closed TLS before the start-up packet");
            return;
        } else if (r == TLS_ERR) {
            conn_end(c, "error", "front TLS error: %s", leg_tls_error(e, sizeof(e)));
            return;
        }
        switch (pg_parse_first(c->startup, c->startup_len, &p, err, sizeof(err))) {
        case PG_FIRST_INCOMPLETE:
            if (r == TLS_OK && c->startup_len < PG_STARTUP_MAX)
                continue;
            if (leg_flush(&c->front) < 0) {
                conn_close(c);
                return;
            }
            /* Records OpenSSL owes the client (KeyUpdate replies) count
             * too: a client that asks for them and never reads is not
             * read from either. */
            relay_backpressure(&c->front);
            return;
        case PG_FIRST_STARTUP:
            c->info = p.startup;
            if (front_holds_early_back(c)) { /* not wasted: on to the login */
                admit_early_end(&admit_early_legs, (long long)time(NULL), false);
                c->early_back = false;
            }
            if (!front_route(c, p.len))
                return;
            if (!front_set_state(c, FRONT_WAIT, "StartupMessage"))
                return;
            fd_recheck(c);
            /* Hold further client bytes until the back leg is ready. */
            leg_read_stop(&c->front);
            leg_tls_release(&c->front);
            conn_arm_timer(c);
            leg_flush(&c->front);
            if (c->bs == BACK_IDLE && !c->denied && !c->too_many) {
                back_start(c, &conn_session_back); /* no early slot was free */
                if (c->phase != PHASE_OPEN)
                    return;
            }
            conn_join(c);
            return;
        case PG_FIRST_CANCEL:
            cancelfwd_request(c, p.len);
            return;
        case PG_FIRST_PEER_CANCEL:
            cancelfwd_peer_request(c, p.len);
            return;
        case PG_FIRST_SSLREQUEST:
        case PG_FIRST_GSSENCREQUEST:
            conn_fail_front(c, "08P01", "protocol_error",
                            "pg-tls-proxy: SSLRequest or GSSENCRequest inside TLS");
            return;
        default:
            conn_fail_front(c, "08P01", "protocol_error",
                            "pg-tls-proxy: invalid start-up packet: %s", err);
            return;
        }
    }
}

/* The front handshake failed: say why, in the log and the metrics. */
static void front_tls_failed(struct conn *c)
{
    char e[200];
    leg_tls_error(e, sizeof(e));
    long vr = SSL_get_verify_result(leg_ssl(&c->front));
    bool mtls = c->w->rt->cfg->front_client_ca_path != NULL;
    const char *hint = "the client did not complete a TLS handshake";
    if (mtls && vr != X509_V_OK) {
        /* mTLS: say what was wrong with the client's certificate. */
        snprintf(e, sizeof(e), "client certificate: %s", X509_verify_cert_error_string(vr));
        hint = "the client's certificate must be signed by --server-client-ca-path";
    } else if (strstr(e, "peer did not return a certificate") != NULL) {
        hint = "mTLS is on (--server-client-ca-path): connect with sslcert and sslkey";
    } else if (strstr(e, "certificate") != NULL || strstr(e, "unknown ca") != NULL) {
        hint = "does the client trust the CA that signed --server-certificate-path?";
    } else if (strstr(e, "application protocol") != NULL) {
        hint = "the client offered ALPN without \"postgresql\"";
    } else if (strstr(e, "version") != NULL || strstr(e, "protocol") != NULL) {
        hint = "the client sent something other than a TLS ClientHello, or a TLS "
               "version older than --server-min-tls-version";
    }
    /* The route when known: decided at accept, or named by the client's SNI. */
    const struct route *r = c->route_decided ? c->route : c->sni.route;
    metrics_handshake_failed(0,
                             mtls && vr != X509_V_OK             ? "client_certificate"
                             : strstr(e, "application protocol") ? "alpn"
                                                                 : "handshake",
                             r != NULL ? r->mslot : METRICS_ROUTE_NONE);
    log_warn("event=front_handshake_failed conn=%llu front=%s reason=\"%s\" hint=\"%s\"",
             (unsigned long long)c->id, c->front_addr, e, hint);
    leg_flush(&c->front); /* the alert */
    conn_end(c, "front_tls_failed", "front TLS handshake failed: %s", e);
}

/* The front handshake is done: check ALPN for direct TLS, then read the
 * start-up packet (it may have come with the handshake's last flight). */
static void front_tls_ready(struct conn *c)
{
    SSL *ssl = leg_ssl(&c->front);
    c->front.tls_up = true;
    metrics_front_handshake((double)(uv_now(c->w->loop) - c->front_tls_ms));
    if (!front_set_state(c, FRONT_STARTUP, "handshake done"))
        return;
    sniwarn_check(ssl, (unsigned long long)c->id, c->front_addr);
    bool sni_routed = !c->route_decided && c->sni.route != NULL;
    if (sni_routed && c->sni.route != c->route && c->bs == BACK_IDLE) {
        /* Its SNI names its route: the StartupMessage can only confirm it
         * (or be refused), so the upstream leg may start now. */
        route_unref(c->route);
        c->route = route_ref(c->sni.route);
    }
    if (sni_routed)
        c->denied = front_denied_by(c, c->route);
    bool early = c->route_decided ? c->w->rt->cfg->front_client_ca_path != NULL : sni_routed;
    if (early && !c->denied && !c->too_many && c->bs == BACK_IDLE) {
        back_start_early(c); /* the client's certificate, if asked for, is verified */
        if (c->phase != PHASE_OPEN)
            return;
    }
    log_debug("event=front_tls_up conn=%llu tls=%s cipher=%s direct=%d", (unsigned long long)c->id,
              leg_tls_version(&c->front), leg_tls_cipher(&c->front), (int)c->direct_tls);
    if (c->direct_tls && !tlsctx_alpn_postgresql(ssl)) {
        /* As PostgreSQL 17: direct TLS is only for clients that say
         * "postgresql" in ALPN, so that other protocols can't be
         * confused for ours. */
        conn_fail_front(c, "08P01", "protocol_error",
                        "pg-tls-proxy: direct TLS connection without ALPN \"postgresql\"; "
                        "use sslnegotiation=direct with libpq 17 or newer, or "
                        "sslnegotiation=postgres");
        return;
    }
    front_startup(c);
}

void front_on_event(struct conn *c, enum leg_event ev, const uint8_t *buf, size_t len)
{
    switch (ev) {
    case LEG_RAW:
        if (c->fs == FRONT_FIRST)
            front_first(c, buf, len);
        else if (c->front.plain && c->fs == FRONT_RELAY)
            relay_plain(c, &c->front, buf, len);
        return;
    case LEG_TLS_READY:
        front_tls_ready(c);
        return;
    case LEG_TLS_FAILED:
        front_tls_failed(c);
        return;
    case LEG_DATA:
        if (c->fs == FRONT_RELAY)
            relay_pump(c, &c->front);
        else if (c->fs == FRONT_STARTUP)
            front_startup(c);
        return;
    default:
        return;
    }
}
