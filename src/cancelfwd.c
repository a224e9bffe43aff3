/*
 * cancelfwd.c - a client's CancelRequest on its way upstream, and the
 * upstream set-up a finished client leaves behind.
 *
 * A cancel is decided here (cancel.c's bounds, keymap.c's keys): the
 * client sends the proxy's key, and what goes upstream is the server's
 * pid/key, to the route of the session the key belongs to. It travels on
 * the client's own connection: on the back leg opened early at its
 * SSLRequest if that one goes to the same upstream (no second upstream
 * connection), else on one opened for it, over verified TLS. A client that is done while its
 * back leg is part-way through the upstream's TLS handshake leaves that
 * leg to finish (parked), so the database never logs a handshake cut off.
 * With several instances (peers.h), a key whose first byte is another
 * instance's goes there instead, as a signed PeerCancelRequest on a
 * connection of its own; one received from an instance is believed only
 * once its HMAC is, then handled as a cancel sent here.
 * Owns c->cancel: the packet, the cancel slot and key mark; wipes both
 * keys (they are secrets) and never logs them.
 */
#include "cancelfwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "admit.h"
#include "cancel.h"
#include "conn.h"
#include "front.h"
#include "keymap.h"
#include "leg.h"
#include "log.h"
#include "back.h"
#include "peers.h"
#include "route.h"
#include "worker.h"

/* A CancelRequest admitted for forwarding: the slot and the key mark it
 * holds, the proxy's key the client sent (the mark's name) and the packet
 * for the upstream, with the server's pid/key. Secrets: wiped when freed. */
struct cancelfwd {
    uint8_t pkt[PEERMSG_MAX]; /* a CancelRequest, or a PeerCancelRequest to another instance */
    size_t len;
    uint32_t pid; /* the proxy's, as the client sent it */
    size_t keylen;
    uint8_t key[PG_CANCEL_KEY_MAX];
    uint32_t server_pid; /* for the log line */
    unsigned peer;       /* the instance it goes to (peers.h); 0: an upstream */
    bool slot;           /* holds one of the CANCEL_FORWARDS_MAX (cancel.h) */
    bool marked;         /* its key is marked in flight in the keymap */
};

/* The forward of c's cancel is over: its key may be forwarded again (at
 * once if it was not sent, after CANCEL_COALESCE_MS if it was). */
static void cancel_key_end(struct cancelfwd *f, bool sent)
{
    f->marked = false;
    keymap_cancel_end(f->pid, f->key, f->keylen, cancel_now_ms(), sent);
}

/* Would a leg set up for route a reach the same server as one for b? (A
 * reload builds new routes: the session's and the connection's may be
 * different objects for the same upstream.) */
static bool same_upstream(const struct route *a, const struct route *b)
{
    if (a == NULL || b == NULL)
        return false;
    /* Through a bridge, host:port names a server in the connector's network. */
    bool same_bridge =
        (a->bridge == NULL && b->bridge == NULL) ||
        (a->bridge != NULL && b->bridge != NULL && strcmp(a->bridge, b->bridge) == 0);
    return a == b || (a->port == b->port && a->direct_tls == b->direct_tls && same_bridge &&
                      strcmp(a->host, b->host) == 0 && strcmp(a->verify_name, b->verify_name) == 0);
}

/*
 * Is the back leg part-way through its set-up with the upstream, such that
 * closing it now would cut a TLS handshake off? (From the SSLRequest on;
 * before, the upstream has seen no byte and logs nothing.) A leg that will
 * carry a cancel is waited for from the start.
 */
bool cancelfwd_midway(const struct conn *c)
{
    if (c->phase != PHASE_OPEN)
        return false;
    if (back_negotiating(c))
        return true;
    return c->cancel != NULL && back_dialing(c);
}

/* Without --client-connect-timeout, a back leg kept for a client that is
 * done still ends: DRAIN_TIMEOUT_MS at most. */
static void back_deadline_cap(struct conn *c)
{
    uint64_t cap = uv_now(c->w->loop) + DRAIN_TIMEOUT_MS;
    if (c->route->connect_timeout_ms == 0 && c->back_deadline > cap) {
        c->back_deadline = cap;
        conn_arm_timer(c);
    }
}

/*
 * The client is done but the back leg is midway: stop reading the client
 * and let the back leg finish (bounded by --client-connect-timeout, or
 * DRAIN_TIMEOUT_MS without one). Whatever is queued for the client still
 * goes out; its close comes with the back leg's.
 */
void cancelfwd_park(struct conn *c)
{
    if (c->front_done)
        return;
    c->front_done = true;
    leg_read_stop(&c->front);
    back_deadline_cap(c);
    log_debug("event=upstream_finish conn=%llu upstream=%s reason=\"client done during the "
              "upstream TLS set-up: finishing it, then close_notify\"",
              (unsigned long long)c->id, c->back_addr);
    conn_arm_timer(c);
}

/*
 * May this cancel go upstream? In order: the client's address must be
 * allowed and within its rate (cancel.h), the key must be a live session's
 * with no forward of it in flight or just done (keymap.h), and fewer than
 * CANCEL_FORWARDS_MAX forwards may be in flight. On CANCEL_FORWARDED the
 * key is marked in flight and a slot is held (the caller owns both), f
 * holds the client's pid/key and *t what they stand for (the server's
 * pid/key and route: keymap_target_clear it).
 */
static enum cancel_outcome cancel_decide(struct conn *c, const struct sockaddr *sa,
                                         const uint8_t *pkt, size_t len, bool from_peer,
                                         struct cancelfwd *f, struct keymap_target *t)
{
    enum cancel_outcome o = CANCEL_FORWARDED;

    memset(t, 0, sizeof(*t));
    /* A PeerCancelRequest passed its HMAC (peers.h): the instance that
     * received the client's cancel applied the allow list and the rate. */
    if (c->denied && !from_peer)
        return CANCEL_DENIED;
    if (!from_peer && !cancel_admit(sa))
        return CANCEL_RATE_LIMITED;
    if (pg_parse_cancel(pkt, len, &f->pid, f->key, &f->keylen) != 0) {
        cancel_penalize(sa);
        return CANCEL_UNKNOWN_KEY;
    }
    /* Another instance's key (its peer-id is the first byte): sent there,
     * not looked up here; one that names no listed instance is a miss. */
    f->peer = peers_owner(f->key, f->keylen);
    if (f->peer != 0) {
        t->route = peers_route(f->peer);
        if (t->route == NULL) {
            if (!from_peer)
                cancel_penalize(sa);
            return CANCEL_UNKNOWN_KEY;
        }
        if (!cancel_slot_take()) {
            keymap_target_clear(t);
            return CANCEL_OVER_LIMIT;
        }
        return CANCEL_FORWARDED;
    }
    switch (
        keymap_cancel_begin(f->pid, f->key, f->keylen, cancel_now_ms(), CANCEL_COALESCE_MS, t)) {
    case KEYMAP_UNKNOWN:
        if (!from_peer) /* a peer's: the guess was charged where the client sent it */
            cancel_penalize(sa);
        o = CANCEL_UNKNOWN_KEY;
        break;
    case KEYMAP_COALESCED:
        o = CANCEL_COALESCED;
        break;
    case KEYMAP_FORWARD:
    default:
        if (!cancel_slot_take()) {
            keymap_cancel_end(f->pid, f->key, f->keylen, 0, false);
            keymap_target_clear(t);
            o = CANCEL_OVER_LIMIT;
        }
        break;
    }
    return o;
}

/* Free f, wiping the keys it holds. */
static void cancelfwd_free(struct cancelfwd *f)
{
    if (f == NULL)
        return;
    OPENSSL_cleanse(f, sizeof(*f));
    free(f);
}

/* back_ops of a leg that carries a cancel: send it once the leg is
 * verified; the upstream answers with nothing and closes. */
static void cancel_back_ready(struct conn *c)
{
    struct cancelfwd *f = c->cancel;
    if (leg_write_plain(&c->back, f->pkt, f->len) < 0 || leg_flush(&c->back) < 0) {
        cancel_count(CANCEL_FAILED, NULL);
        conn_end(c, "error", "could not send the cancel request");
        return;
    }
    if (f->marked)
        cancel_key_end(f, true);
    cancel_count(CANCEL_FORWARDED, NULL);
    if (f->peer != 0)
        conn_end(c, "cancel_forwarded", "cancel request forwarded to instance %u over verified TLS",
                 f->peer);
    else
        conn_end(c, "cancel_forwarded", "cancel request forwarded over verified TLS");
}

static void cancel_back_failed(struct conn *c, const char *sqlstate, const char *label,
                               const char *msg)
{
    (void)sqlstate;
    (void)label;
    cancel_count(CANCEL_FAILED, NULL);
    if (c->cancel != NULL && c->cancel->peer != 0)
        log_warn("event=cancel_peer_failed conn=%llu peer=%u upstream=%s reason=\"%s\" "
                 "hint=\"check that instance %u listens there and that its certificate is signed "
                 "by --peer-ca-path for the name in [peers] or --peer-tls-validation-host\"",
                 (unsigned long long)c->id, c->cancel->peer, c->back_addr, msg, c->cancel->peer);
    conn_end(c, "cancel_failed", "%s", msg);
}

static const struct back_ops cancel_back = {
    .ready = cancel_back_ready,
    .failed = cancel_back_failed,
};

/*
 * Aim c's cancel at the route of the session its key belongs to (t), with
 * the server's pid/key in the packet. A back leg not started yet takes that
 * route; one already under way (the early leg opened at the SSLRequest)
 * is used only if it goes to the same upstream. False if the cancel cannot
 * go (reason in why).
 */
static bool aim(struct conn *c, struct cancelfwd *f, struct keymap_target *t, const char **why)
{
    struct route *rt = t->route != NULL ? t->route : c->route;
    f->server_pid = t->pid;
    f->len = pg_build_cancel(f->pkt, sizeof(f->pkt), t->pid, t->key, t->keylen);
    if (f->len == 0 || rt == NULL) {
        *why = "the session's upstream route is unknown";
        return false;
    }
    if (c->bs == BACK_IDLE) {
        if (rt != c->route) {
            route_unref(c->route);
            c->route = route_ref(rt);
        }
        return true;
    }
    if (!same_upstream(rt, c->route)) {
        /* Only after a reload changed the upstream, or a client whose
         * server name chose another route than its key's. */
        *why = "this connection's upstream leg goes to another upstream than the session's "
               "(the configuration was reloaded since the session began)";
        return false;
    }
    return true;
}

/*
 * Hand f (a PeerCancelRequest in f->pkt, a slot held) to a connection of
 * its own to instance f->peer over route rt (a reference, taken over): the
 * client's connection may hold an early leg to an upstream, and it has
 * nothing to wait for. False (f and rt still the caller's) if out of memory.
 */
static bool peer_send(struct conn *c, struct cancelfwd *f, struct route *rt)
{
    struct conn *pc = conn_new(c->w);
    if (pc == NULL)
        return false;
    pc->front_deadline = UINT64_MAX; /* no client on this one */
    route_unref(pc->route);
    pc->route = rt;
    pc->route_decided = true;
    pc->cancel = f;
    back_start(pc, &cancel_back);
    if (pc->phase == PHASE_OPEN)
        back_deadline_cap(pc);
    return true;
}

/* The PeerCancelRequest for f (the client's CancelRequest is in pkt, or a
 * peer's message in via to pass on with one hop less) into f->pkt. */
static bool peer_build(struct cancelfwd *f, const uint8_t *pkt, size_t len,
                       const struct peermsg *via)
{
    struct peermsg m;
    bool ok;
    if (via != NULL) {
        memcpy(&m, via, sizeof(m));
        m.hops--;
        ok = m.hops > 0;
    } else {
        ok = peers_fresh(&m, pkt, len);
    }
    f->len = ok ? peers_sign(f->pkt, sizeof(f->pkt), &m) : 0;
    OPENSSL_cleanse(&m, sizeof(m));
    return f->len > 0;
}

/*
 * A cancel (the client's CancelRequest in c->startup[0..len), or a peer's,
 * via, checked) decided and sent on. The client gets no answer, as from
 * PostgreSQL; a refused cancel is counted (cancel.c logs a summary), never
 * logged one by one. A key of this instance goes upstream on this
 * connection, to the session's route with the server's pid/key: on the back
 * leg opened early at its SSLRequest if there is one (no second upstream
 * connection), else on one opened now, over verified TLS. Another
 * instance's key goes there as a PeerCancelRequest (peer_send).
 */
static void cancel_handle(struct conn *c, size_t len, const struct peermsg *via)
{
    struct sockaddr_storage ss;
    const struct sockaddr *sa = front_sockaddr(c, &ss);
    struct cancelfwd *f = calloc(1, sizeof(*f));
    struct keymap_target t;
    enum cancel_outcome o = CANCEL_FAILED;
    const char *why = NULL;

    memset(&t, 0, sizeof(t));
    if (f != NULL) {
        o = cancel_decide(c, sa, c->startup, len, via != NULL, f, &t);
    } else {
        log_error("event=cancel_dropped conn=%llu front=%s reason=\"out of memory\"",
                  (unsigned long long)c->id, c->front_addr);
    }
    if (o == CANCEL_FORWARDED && f->peer != 0 && !peer_build(f, c->startup, len, via)) {
        cancel_slot_put();
        keymap_target_clear(&t);
        o = via != NULL ? CANCEL_UNKNOWN_KEY : CANCEL_FAILED; /* out of hops, or of randomness */
    }
    OPENSSL_cleanse(c->startup, c->startup_len);
    c->startup_len = 0;
    if (o != CANCEL_FORWARDED) {
        cancel_count(o, via != NULL ? NULL : sa); /* a forwarded one is counted once sent */
        if (via != NULL)
            log_info("event=cancel_peer_dropped conn=%llu front=%s peer=%u pid=%u outcome=%s",
                     (unsigned long long)c->id, c->front_addr, (unsigned)via->origin, via->pid,
                     cancel_outcome_name(o));
        cancelfwd_free(f);
        conn_end(c, "cancel", "cancel request not forwarded: %s", cancel_outcome_name(o));
        return;
    }
    if (f->peer != 0) {
        f->slot = true;
        log_info("event=cancel_peer_forward conn=%llu front=%s pid=%u peer=%u hops=%u",
                 (unsigned long long)c->id, c->front_addr, f->pid, f->peer,
                 via != NULL ? (unsigned)via->hops - 1 : (unsigned)PEERMSG_HOPS);
        if (!peer_send(c, f, t.route)) {
            cancel_count(CANCEL_FAILED, NULL);
            keymap_target_clear(&t);
            cancelfwd_free(f);
            cancel_slot_put();
            conn_end(c, "cancel_failed", "out of memory");
            return;
        }
        conn_end(c, "cancel", "cancel request handed to instance %u", f->peer);
        return;
    }
    f->slot = f->marked = true;
    c->cancel = f; /* from here on, cancelfwd_closed gives back the slot and mark */
    bool aimed = aim(c, f, &t, &why);
    keymap_target_clear(&t);
    if (front_holds_early_back(c)) { /* it will carry a cancel: not a wasted early leg */
        admit_early_end(&admit_early_legs, (long long)time(NULL), false);
        c->early_back = false;
    }
    if (!aimed) {
        log_warn("event=cancel_failed conn=%llu front=%s pid=%u reason=\"%s\"",
                 (unsigned long long)c->id, c->front_addr, f->pid, why);
        cancel_count(CANCEL_FAILED, NULL);
        conn_end(c, "cancel_failed", "%s", why);
        return;
    }
    bool early = c->bs != BACK_IDLE;
    log_info("event=cancel_forward conn=%llu front=%s pid=%u upstream_pid=%u leg=%s%s",
             (unsigned long long)c->id, c->front_addr, f->pid, f->server_pid,
             early ? "early" : "new", via != NULL ? " via=peer" : "");
    cancelfwd_park(c);
    switch (c->bs) {
    case BACK_IDLE:
        back_start(c, &cancel_back);
        if (c->phase == PHASE_OPEN)
            back_deadline_cap(c);
        break;
    case BACK_READY:
        back_set_owner(c, &cancel_back);
        cancel_back_ready(c);
        break;
    case BACK_FAILED:
        cancel_count(CANCEL_FAILED, NULL);
        conn_end(c, "cancel_failed", "the upstream leg had failed: %s",
                 c->err_msg != NULL ? c->err_msg : "unknown");
        break;
    default:
        back_set_owner(c, &cancel_back); /* midway: sent once it is ready */
        break;
    }
}

void cancelfwd_request(struct conn *c, size_t len)
{
    cancel_handle(c, len, NULL);
}

/*
 * Another instance's PeerCancelRequest, inside TLS. Nothing of it is
 * believed before its HMAC is: a stranger's (or a replayed, stale or
 * out-of-hops) message cancels nothing, is logged (within the sender's
 * cancel rate, so a flood is not a flood of lines) and charged like a
 * guessed key. An authentic one is handled as a cancel sent here.
 */
void cancelfwd_peer_request(struct conn *c, size_t len)
{
    struct sockaddr_storage ss;
    const struct sockaddr *sa = front_sockaddr(c, &ss);
    struct peermsg m;
    enum peermsg_result r = PEERMSG_MALFORMED;
    bool on = peers_self() != 0;
    /* Instances send these only inside verified TLS: the key is a secret. */
    bool tls = c->front.tls_up;

    if (on && tls)
        r = peers_verify(c->startup, len, &m);
    if (r != PEERMSG_OK) {
        OPENSSL_cleanse(c->startup, c->startup_len);
        c->startup_len = 0;
        bool say = cancel_admit(sa);
        cancel_penalize(sa);
        cancel_count(CANCEL_UNKNOWN_KEY, sa);
        if (say)
            log_warn("event=cancel_peer_refused conn=%llu front=%s reason=\"%s\" hint=\"%s\"",
                     (unsigned long long)c->id, c->front_addr,
                     !on    ? "peering is off (no --peer-id)"
                     : !tls ? "plaintext"
                            : peermsg_result_name(r),
                     !tls                   ? "instances send these inside TLS only"
                     : r == PEERMSG_BAD_MAC ? "every instance needs the same --peer-secret-file"
                     : r == PEERMSG_STALE
                         ? "the instances' clocks differ by more than 30 s: run NTP"
                         : "only other pg-tls-proxy instances send these");
        conn_end(c, "cancel", "peer cancel refused");
        return;
    }
    log_info("event=cancel_peer_received conn=%llu front=%s peer=%u pid=%u hops=%u",
             (unsigned long long)c->id, c->front_addr, (unsigned)m.origin, m.pid, (unsigned)m.hops);
    /* The client's CancelRequest in place of the message, as if sent here. */
    OPENSSL_cleanse(c->startup, c->startup_len);
    memcpy(c->startup, m.cancel, m.cancel_len);
    c->startup_len = m.cancel_len;
    cancel_handle(c, m.cancel_len, &m);
    OPENSSL_cleanse(&m, sizeof(m));
}

void cancelfwd_closed(struct conn *c)
{
    struct cancelfwd *f = c->cancel;
    if (f == NULL)
        return;
    if (f->marked)
        cancel_key_end(f, false);
    if (f->slot)
        cancel_slot_put();
    log_info("event=cancel_closed conn=%llu upstream=%s outcome=%s reason=\"%s\"",
             (unsigned long long)c->id, c->back_addr, c->outcome ? c->outcome : "closed",
             c->reason != NULL ? c->reason : "");
    cancelfwd_free(f);
    c->cancel = NULL;
}
