/*
 * adminsess.c - the admin endpoint's /sessions paths, on the main thread:
 *
 *   GET  /sessions               every open session (JSON, sessjson.c)
 *   GET  /sessions/ID            one session; 404 if none has that id
 *   POST /sessions/ID/terminate  end it with FATAL 57P01; 404 if none
 *
 * Protected (adminauth.c): loopback peers by default, the token of
 * --admin-token-file when one is set. Sessions live on the workers, so a
 * request is handed to every worker (sessions.c) and the last one to
 * answer wakes this loop (a_async), which renders the answer. Owns the
 * requests in flight: one whose admin connection has closed meanwhile is
 * detached (owner NULL) and freed when answered; the loop never waits for
 * a worker. Owns the token, read at start and again on SIGHUP.
 */
#include "adminsess.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adminaddr.h"
#include "adminauth.h"
#include "httpreq.h"
#include "log.h"
#include "sessjson.h"

static struct worker *a_workers;
static unsigned a_nworkers;
static adminsess_reply_fn a_reply;
static const char *a_token_file; /* the running configuration's; NULL: none */
static struct admin_token a_token;
static uv_async_t a_async;
static bool a_started;
/* Answered requests, handed over by the workers' threads. */
static uv_mutex_t a_lock;
static struct sess_req *a_done; /* guarded by a_lock */
static bool a_closed;           /* guarded by a_lock: a_async closed */

bool adminsess_path(const char *path)
{
    return strcmp(path, "/sessions") == 0 || strncmp(path, "/sessions/", 10) == 0;
}

/* A session id: decimal, 1..UINT64_MAX, no sign or leading zero. Its
 * length is returned (the id ends at '/' or the end), 0 if malformed. */
static size_t parse_id(const char *s, uint64_t *id)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++) {
        unsigned d = (unsigned)(s[n] - '0');
        if (n > 0 && v == 0) /* leading zero */
            return 0;
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (n == 0 || v == 0 || (s[n] != '\0' && s[n] != '/'))
        return 0;
    *id = v;
    return n;
}

int adminsess_route(const char *method, const char *path, enum sess_op *op, uint64_t *id,
                    const char **allow)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    *allow = "GET, HEAD";
    *id = 0;
    if (strcmp(path, "/sessions") == 0) {
        *op = SESS_LIST;
        return get ? 0 : 405;
    }
    if (strncmp(path, "/sessions/", 10) != 0)
        return 404;
    size_t n = parse_id(path + 10, id);
    if (n == 0)
        return 404;
    const char *rest = path + 10 + n;
    if (*rest == '\0') {
        *op = SESS_ONE;
        return get ? 0 : 405;
    }
    if (strcmp(rest, "/terminate") == 0) {
        *op = SESS_KILL;
        *allow = "POST";
        return strcmp(method, "POST") == 0 ? 0 : 405;
    }
    return 404;
}

/* ---- the answers ---- */

static void set_text(struct adminsess_reply *r, int status, const char *text)
{
    r->status = status;
    r->text = text;
    r->body = NULL;
    r->len = 0;
}

static void answer(struct sess_req *req, struct adminsess_reply *r)
{
    r->ctype = "application/json";
    r->extra = "";
    if (req->oom) {
        set_text(r, 500, "{\"error\":\"out of memory\"}\n");
        return;
    }
    if (req->op == SESS_LIST || req->found) {
        if (req->op == SESS_KILL) {
            char b[64];
            int n = snprintf(b, sizeof(b), "{\"terminated\":%" PRIu64 "}\n", req->id);
            r->body = n > 0 ? strdup(b) : NULL;
            r->len = r->body != NULL ? (size_t)n : 0;
        } else {
            r->body = sessjson_render(req, req->op == SESS_LIST, SESS_BODY_MAX, &r->len);
        }
        r->status = 200;
        if (r->body == NULL)
            set_text(r, 500, "{\"error\":\"out of memory\"}\n");
        return;
    }
    set_text(r, 404, "{\"error\":\"no open session has this id\"}\n");
}

static void async_cb(uv_async_t *a)
{
    (void)a;
    uv_mutex_lock(&a_lock);
    struct sess_req *req = a_done;
    a_done = NULL;
    uv_mutex_unlock(&a_lock);
    while (req != NULL) {
        struct sess_req *next = req->next;
        if (req->owner != NULL) {
            struct adminsess_reply r = {0};
            answer(req, &r);
            a_reply(req->owner, &r);
        }
        sessions_req_free(req);
        req = next;
    }
}

/* A worker's thread: the last answer is in. */
static void req_done(struct sess_req *req)
{
    /* Sent under the lock: adminsess_stop sets a_closed under it before it
     * closes a_async, so no wake-up goes to a closed handle. */
    uv_mutex_lock(&a_lock);
    bool closed = a_closed;
    if (!closed) {
        req->next = a_done;
        a_done = req;
        uv_async_send(&a_async);
    }
    uv_mutex_unlock(&a_lock);
    if (closed)
        sessions_req_free(req); /* the endpoint has stopped: nobody waits */
}

void adminsess_detach(struct sess_req *req)
{
    if (req != NULL)
        req->owner = NULL;
}

/* At most one admin_denied line a second, saying how many refusals went
 * unlogged since the last one: a scanner, or a script with a stale token,
 * must not flood the log. */
static struct log_gate denied_gate;

static int authorize(const char *head, size_t hlen, const struct sockaddr *peer, const char *path,
                     struct adminsess_reply *r)
{
    char auth[ADMIN_TOKEN_MAX + 16];
    int h = httpreq_header(head, hlen, "Authorization", auth, sizeof(auth));
    int d = adminauth_decide(peer, &a_token, h == 1 ? auth : NULL);
    OPENSSL_cleanse(auth, sizeof(auth));
    if (d == 200)
        return 0;
    char who[80], q[80];
    unsigned seen = 0;
    if (log_gate_pass(&denied_gate, &seen)) {
        adminaddr_text((const struct sockaddr_storage *)peer, who, sizeof(who));
        log_warn("event=admin_denied peer=%s path=\"%s\" status=%d reason=\"%s\" "
                 "suppressed=%u",
                 who, log_escape(path, q, sizeof(q)), d,
                 d == 401 ? (h == 1 ? "wrong token" : "no bearer token")
                          : "not a loopback peer and no --admin-token-file",
                 seen - 1);
    }
    r->ctype = "application/json";
    if (d == 401) {
        set_text(r, 401,
                 "{\"error\":\"this path needs Authorization: Bearer TOKEN, the token of "
                 "--admin-token-file\"}\n");
        r->extra = "WWW-Authenticate: Bearer realm=\"pg-tls-proxy\"\r\n";
    } else {
        set_text(r, 403,
                 "{\"error\":\"/sessions answers loopback peers only; to allow others, set "
                 "--admin-token-file and send Authorization: Bearer TOKEN\"}\n");
        r->extra = "";
    }
    return -1;
}

struct sess_req *adminsess_request(void *owner, const char *method, const char *path,
                                   const char *head, size_t hlen, const struct sockaddr *peer,
                                   struct adminsess_reply *r)
{
    enum sess_op op = SESS_LIST;
    uint64_t id = 0;
    const char *allow;
    static char allow_hdr[40];

    r->ctype = "application/json";
    r->extra = "";
    int st = adminsess_route(method, path, &op, &id, &allow);
    if (st == 404) {
        set_text(r, 404, "{\"error\":\"no such path; see GET /sessions\"}\n");
        return NULL;
    }
    /* Before the method: a refused peer learns nothing about the paths. */
    if (authorize(head, hlen, peer, path, r) < 0)
        return NULL;
    if (st == 405) {
        set_text(r, 405, "{\"error\":\"method not allowed\"}\n");
        snprintf(allow_hdr, sizeof(allow_hdr), "Allow: %s\r\n", allow);
        r->extra = allow_hdr;
        return NULL;
    }
    if (!a_started) {
        set_text(r, 503, "{\"error\":\"the workers are not running\"}\n");
        return NULL;
    }
    struct sess_req *req = sessions_req_new(op, id, a_nworkers, req_done);
    if (req == NULL) {
        set_text(r, 500, "{\"error\":\"out of memory\"}\n");
        return NULL;
    }
    req->owner = owner;
    adminaddr_text((const struct sockaddr_storage *)peer, req->peer, sizeof(req->peer));
    sessions_post(a_workers, a_nworkers, req);
    return req;
}

/* ---- start / reload / stop ---- */

int adminsess_start(uv_loop_t *loop, struct worker *workers, unsigned nworkers,
                    const char *token_file, adminsess_reply_fn reply, char *err, size_t errlen)
{
    if (token_file != NULL && adminauth_load(token_file, &a_token, err, errlen) < 0)
        return -1;
    if (uv_mutex_init(&a_lock) != 0 || uv_async_init(loop, &a_async, async_cb) != 0) {
        snprintf(err, errlen, "--admin-address: cannot set up the sessions endpoint");
        return -1;
    }
    a_workers = workers;
    a_nworkers = nworkers;
    a_reply = reply;
    a_token_file = token_file;
    a_closed = false;
    a_started = true;
    log_info("event=admin_sessions paths=\"/sessions /sessions/ID /sessions/ID/terminate\" "
             "access=%s",
             a_token.set ? "bearer_token" : "loopback_only");
    return 0;
}

void adminsess_reload(void)
{
    char err[512];
    if (!a_started || a_token_file == NULL)
        return;
    if (adminauth_load(a_token_file, &a_token, err, sizeof(err)) < 0) {
        char q[600];
        log_error("event=reload_failed what=admin_token_file reason=\"%s\" hint=\"the token in "
                  "use stays\"",
                  log_escape(err, q, sizeof(q)));
        return;
    }
    log_info("event=admin_token_reloaded");
}

void adminsess_stop(void)
{
    if (!a_started)
        return;
    a_started = false;
    uv_mutex_lock(&a_lock);
    a_closed = true;
    struct sess_req *req = a_done;
    a_done = NULL;
    uv_mutex_unlock(&a_lock);
    while (req != NULL) {
        struct sess_req *next = req->next;
        sessions_req_free(req);
        req = next;
    }
    uv_close((uv_handle_t *)&a_async, NULL);
    OPENSSL_cleanse(&a_token, sizeof(a_token));
}
