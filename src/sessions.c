/*
 * sessions.c - the workers' side of the admin endpoint's /sessions: copy
 * the sessions of this worker into a request (GET), or end one of them
 * (POST /sessions/ID/terminate), on the worker's own thread.
 *
 * Owns the worker's queue of requests (w->sess_jobs, under w->sess_lock)
 * and the terminate of one session. A request is shared by every worker
 * (its lock guards what they fill in); the last worker to answer hands it
 * to req->done, and never touches it again. Must never block the worker
 * (one short lock per answer) nor read a connection of another worker.
 *
 * Ending a session tells the client why, as PostgreSQL's own
 * pg_terminate_backend does: FATAL 57P01 "terminating connection due to
 * administrator command". The ErrorResponse must land between two of the
 * server's messages (inside one it corrupts the client's stream), so after
 * the login every session frames what the server sends (relay.c, c->frames)
 * and a terminate that comes mid-message waits for its end, at most
 * SESS_KILL_WAIT_MS, then closes without it. The upstream is sent
 * Terminate ('X') when the client's stream is at a boundary too, then
 * close_notify, so the database logs a clean disconnect.
 */
#include "sessions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "conn.h"
#include "front.h"
#include "leg.h"
#include "log.h"
#include "login.h"
#include "pgtrack.h"
#include "relay.h"
#include "route.h"
#include "worker.h"

#define KILL_MSG "terminating connection due to administrator command"
#define KILL_HINT                                                                                  \
    "pg-tls-proxy's admin endpoint ended this session (POST /sessions/ID/terminate); connect "     \
    "again"

struct sess_req *sessions_req_new(enum sess_op op, uint64_t id, unsigned nworkers,
                                  void (*done)(struct sess_req *))
{
    struct sess_req *req = calloc(1, sizeof(*req) + nworkers * sizeof(struct sess_job));
    if (req == NULL)
        return NULL;
    if (uv_mutex_init(&req->lock) != 0) {
        free(req);
        return NULL;
    }
    req->op = op;
    req->id = id;
    req->done = done;
    req->pending = nworkers;
    return req;
}

void sessions_req_free(struct sess_req *req)
{
    if (req == NULL)
        return;
    uv_mutex_destroy(&req->lock);
    free(req->items);
    free(req);
}

/* One worker's answer is in: the last one hands the request on. */
static void answered(struct sess_req *req)
{
    uv_mutex_lock(&req->lock);
    bool last = --req->pending == 0;
    uv_mutex_unlock(&req->lock);
    if (last)
        req->done(req);
}

void sessions_post(struct worker *workers, unsigned n, struct sess_req *req)
{
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &workers[i];
        struct sess_job *j = &req->jobs[i];
        j->req = req;
        j->next = NULL;
        /* The wake-up is sent under the lock: once sessions_worker_close
         * has set sess_closed, w->ctl may be closed and nothing is sent. */
        uv_mutex_lock(&w->sess_lock);
        bool closed = w->sess_closed;
        if (!closed) {
            *w->sess_tail = j;
            w->sess_tail = &j->next;
            worker_command(w, WORKER_SESSIONS);
        }
        uv_mutex_unlock(&w->sess_lock);
        if (closed)
            answered(req); /* a stopped worker has no sessions */
    }
}

static struct sess_job *take_jobs(struct worker *w, bool close)
{
    uv_mutex_lock(&w->sess_lock);
    struct sess_job *j = w->sess_jobs;
    w->sess_jobs = NULL;
    w->sess_tail = &w->sess_jobs;
    if (close)
        w->sess_closed = true;
    uv_mutex_unlock(&w->sess_lock);
    return j;
}

/* ---- what a session looks like from outside ---- */

static const char *state_of(const struct conn *c)
{
    if (c->phase != PHASE_OPEN)
        return "closing";
    if (c->w->draining)
        return "draining";
    if (!front_relaying(c))
        return "startup";
    if (login_watching(c))
        return "login";
    if (c->framing && !c->frames.failed)
        return pgtrack_idle(&c->frames) ? "idle" : "active";
    return "relaying";
}

static void tls_of(const struct leg *l, char *version, size_t vcap, char *cipher, size_t ccap)
{
    SSL *ssl = l->tls_up ? leg_ssl(l) : NULL;
    snprintf(version, vcap, "%s", ssl != NULL ? SSL_get_version(ssl) : "");
    if (cipher != NULL) {
        const char *name = ssl != NULL ? SSL_get_cipher_name(ssl) : NULL;
        snprintf(cipher, ccap, "%s", name != NULL ? name : "");
    }
}

static void snapshot(const struct conn *c, uint64_t now, struct sess_info *s)
{
    memset(s, 0, sizeof(*s));
    s->id = c->id;
    s->worker = c->w->index;
    snprintf(s->client, sizeof(s->client), "%s", c->front_addr);
    snprintf(s->lb, sizeof(s->lb), "%s", c->lb_addr);
    snprintf(s->route, sizeof(s->route), "%s",
             c->route_decided && c->route != NULL ? c->route->name : "");
    snprintf(s->user, sizeof(s->user), "%s", c->info.user);
    snprintf(s->database, sizeof(s->database), "%s", c->info.database);
    snprintf(s->application_name, sizeof(s->application_name), "%s", c->info.application_name);
    tls_of(&c->front, s->front_tls, sizeof(s->front_tls), s->front_cipher, sizeof(s->front_cipher));
    tls_of(&c->back, s->back_tls, sizeof(s->back_tls), NULL, 0);
    s->from_client = c->front.bytes_in;
    s->from_upstream = c->back.bytes_in;
    s->age_ms = now > c->start_ms ? now - c->start_ms : 0;
    uint64_t last = c->last_active > c->start_ms ? c->last_active : c->start_ms;
    s->idle_ms = now > last ? now - last : 0;
    s->state = state_of(c);
    s->bridge_stream = c->bridge_stream;
    snprintf(s->bridge, sizeof(s->bridge), "%s",
             c->route != NULL && c->route->bridge != NULL ? c->route->bridge : "");
}

/* Add this worker's session to the request (its lock held). */
static bool add_item(struct sess_req *req, const struct sess_info *s)
{
    if (req->n == req->cap) {
        size_t cap = req->cap == 0 ? 64 : req->cap * 2;
        struct sess_info *items = realloc(req->items, cap * sizeof(*items));
        if (items == NULL) {
            req->oom = true;
            return false;
        }
        req->items = items;
        req->cap = cap;
    }
    req->items[req->n++] = *s;
    return true;
}

/* Every client counted by --max-connections is a session to list; a
 * probe or a cancel request's own connection is not. */
static bool listed(const struct conn *c)
{
    return c->counted && c->cancel == NULL && !c->quiet;
}

static void list_req(struct worker *w, struct sess_req *req)
{
    uint64_t now = uv_now(w->loop);
    struct sess_info s;
    /* Copied outside the request's lock, which every worker shares. */
    uv_mutex_lock(&req->lock);
    req->draining = req->draining || w->draining;
    uv_mutex_unlock(&req->lock);
    for (struct conn *c = w->conns; c != NULL; c = c->next) {
        if (!listed(c))
            continue;
        bool one = req->op != SESS_LIST;
        if (one && c->id != req->id)
            continue;
        snapshot(c, now, &s);
        uv_mutex_lock(&req->lock);
        req->open++;
        if (one)
            req->found = true;
        if (req->n < SESS_LIST_MAX)
            add_item(req, &s);
        uv_mutex_unlock(&req->lock);
        if (one)
            return;
    }
}

/* ---- terminate ---- */

static bool server_at_boundary(const struct conn *c)
{
    return c->frames.server.have == 0 && c->frames.server.skip == 0;
}

void sessions_kill_now(struct conn *c)
{
    c->kill_pending = false;
    /* The client's stream at a boundary too: Terminate, so the database
     * ends the session as a client's goodbye rather than a lost one. */
    if (c->frames.client.have == 0 && c->frames.client.skip == 0 && !c->frames.failed) {
        static const uint8_t terminate[5] = {'X', 0, 0, 0, 4};
        (void)relay_emit(c, &c->back, terminate, sizeof(terminate));
        if (c->phase != PHASE_OPEN)
            return;
    }
    conn_fail_front_between(c, "57P01", "terminated", KILL_MSG, KILL_HINT);
}

size_t sessions_kill_split(struct conn *c, const uint8_t *buf, size_t len)
{
    return pgtrack_server_boundary(&c->frames, buf, len);
}

void sessions_kill_timeout(struct conn *c)
{
    c->kill_pending = false;
    log_warn("event=session_terminate_unclean conn=%llu front=%s waited_ms=%u reason=\"the "
             "server's message under way did not end in time: closed without the FATAL\"",
             (unsigned long long)c->id, c->front_addr, SESS_KILL_WAIT_MS);
    conn_end(c, "terminated", "terminated by the admin endpoint");
}

/* How a terminate reaches the client (the log line's fatal=). */
static const char *kill_mode(const struct conn *c)
{
    if (c->phase != PHASE_OPEN || c->kill_pending)
        return "already_ending";
    if (!front_relaying(c) || login_watching(c))
        return "now_login"; /* the proxy speaks between whole messages then */
    if (!c->framing || c->frames.failed)
        return "none_unframed";
    return server_at_boundary(c) ? "now" : "at_next_boundary";
}

static void kill_one(struct conn *c, const char *peer)
{
    char q[80];
    const char *mode = kill_mode(c);
    log_info("event=session_terminated conn=%llu front=%s user=\"%s\" by=admin peer=%s state=%s "
             "fatal=%s",
             (unsigned long long)c->id, c->front_addr, c->info.user, log_escape(peer, q, sizeof(q)),
             state_of(c), mode);
    if (strcmp(mode, "already_ending") == 0)
        return;
    if (strcmp(mode, "now_login") == 0) {
        conn_fail_front_hint(c, "57P01", "terminated", KILL_HINT, "%s", KILL_MSG);
        return;
    }
    if (strcmp(mode, "none_unframed") == 0) {
        conn_end(c, "terminated",
                 "terminated by the admin endpoint (the server's stream could "
                 "not be framed: closed without a FATAL)");
        return;
    }
    if (strcmp(mode, "now") == 0) {
        sessions_kill_now(c);
        return;
    }
    c->kill_pending = true;
    c->kill_deadline = uv_now(c->w->loop) + SESS_KILL_WAIT_MS;
    conn_arm_timer(c);
}

static void kill_req(struct worker *w, struct sess_req *req)
{
    for (struct conn *c = w->conns; c != NULL; c = c->next) {
        if (c->id != req->id || !listed(c))
            continue;
        uv_mutex_lock(&req->lock);
        req->found = true;
        req->open++;
        uv_mutex_unlock(&req->lock);
        kill_one(c, req->peer);
        return;
    }
}

void sessions_worker_run(struct worker *w)
{
    struct sess_job *j = take_jobs(w, false);
    while (j != NULL) {
        struct sess_job *next = j->next;
        struct sess_req *req = j->req;
        if (req->op == SESS_KILL)
            kill_req(w, req);
        else
            list_req(w, req);
        answered(req); /* req may be gone from here on */
        j = next;
    }
}

void sessions_worker_close(struct worker *w)
{
    struct sess_job *j = take_jobs(w, true);
    while (j != NULL) {
        struct sess_job *next = j->next;
        answered(j->req);
        j = next;
    }
}
