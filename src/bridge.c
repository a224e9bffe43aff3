/*
 * bridge.c - the bridge thread (issue 15; bridge.h): its own event loop on
 * its own thread, started by main.c when --bridge-listen is set, and the
 * one way other threads reach it: a mutex-protected queue of messages
 * (open, forget, reload, stop) and a uv_async that wakes it.
 *
 * Owns: the thread, its loop, the queue, and the bridge state (bridgecore.c
 * and the files it names). Never: runs a worker's code (results go through
 * worker_bridge_post, which only queues), or blocks a caller for longer than
 * one queue insertion. bridge_reload reads the file on the caller's (main)
 * thread so that its errors come back at once, all or nothing.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "authfile.h"
#include "bridgeint.h"
#include "config.h"
#include "log.h"
#include "tlsctx.h"

enum bmsg_kind { BMSG_OPEN, BMSG_FORGET, BMSG_RELOAD, BMSG_STOP };

struct bmsg {
    struct bmsg *next;
    enum bmsg_kind kind;
    struct worker *w;
    uint64_t stream;
    uint8_t token[BRIDGE_TOKEN_LEN];
    char id[BRIDGE_ID_MAX + 1];
    char host[256];
    unsigned port;
    struct authfile *file; /* reload */
    SSL_CTX *ctx;          /* reload */
};

static struct {
    atomic_bool running; /* started and not joined (read by workers) */
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_mutex_t lock; /* guards head, tail, closed */
    struct bmsg *head, *tail;
    bool closed; /* wake is closed: messages are answered by the sender */
    struct bstate core;
    /* start-time values: the bridges file and certificate are re-read on
     * SIGHUP from the same paths (process-wide options) */
    char *file_path, *cert_path, *key_path;
    const char *cert_flag, *key_flag;
} B;

static bridge_deliver_fn test_deliver;
static void *test_deliver_arg;
static unsigned test_heartbeat_ms, test_timeout_ms;

void bridge_test_hooks(bridge_deliver_fn fn, void *arg, unsigned heartbeat_ms, unsigned timeout_ms)
{
    test_timeout_ms = timeout_ms;
    test_deliver = fn;
    test_deliver_arg = arg;
    test_heartbeat_ms = heartbeat_ms;
}

static void post_to_worker(void *arg, struct worker *w, struct bridge_result *r)
{
    (void)arg;
    worker_bridge_post(w, r);
}

/*
 * The data connections' context, for the workers (bridge_ssl_ctx): the
 * same certificate as the control connections', swapped by a reload on
 * the main thread while workers take references.
 */
static uv_mutex_t data_ctx_lock;
static SSL_CTX *data_ctx;

static void data_ctx_set(SSL_CTX *ctx)
{
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    uv_mutex_lock(&data_ctx_lock);
    SSL_CTX *old = data_ctx;
    data_ctx = ctx;
    uv_mutex_unlock(&data_ctx_lock);
    SSL_CTX_free(old);
}

SSL_CTX *bridge_ssl_ctx(void)
{
    if (!atomic_load(&B.running))
        return NULL; /* no listener: nothing to hand over either */
    uv_mutex_lock(&data_ctx_lock);
    SSL_CTX *ctx = data_ctx;
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    uv_mutex_unlock(&data_ctx_lock);
    return ctx;
}

bool bridge_enabled(void)
{
    return B.running;
}

/* ---- the queue ---- */

static void msg_free(struct bmsg *m)
{
    authfile_free(m->file);
    SSL_CTX_free(m->ctx);
    OPENSSL_cleanse(m, sizeof(*m));
    free(m);
}

#define MSG_STOPPED "pg-tls-proxy: the proxy is shutting down: no new bridge stream"
#define MSG_OFF                                                                                    \
    "pg-tls-proxy: the bridge listener is not running (--bridge-listen is not set, or this is "    \
    "--check, which reaches no bridge)"

/* A message the bridge thread will not read (it has stopped, or never
 * started): answered here with why. */
static void msg_refused(struct bmsg *m, const char *why)
{
    if (m->kind == BMSG_OPEN) {
        bridge_deliver_fn fn = test_deliver != NULL ? test_deliver : post_to_worker;
        struct bridge_result *r = bresult_new(m->stream, -1, NULL, "error", why);
        if (r != NULL)
            fn(test_deliver_arg, m->w, r);
    }
    msg_free(m);
}

static void post(struct bmsg *m)
{
    uv_mutex_lock(&B.lock);
    bool closed = B.closed;
    if (!closed) {
        if (B.tail != NULL)
            B.tail->next = m;
        else
            B.head = m;
        B.tail = m;
        uv_async_send(&B.wake);
    }
    uv_mutex_unlock(&B.lock);
    if (closed)
        msg_refused(m, MSG_STOPPED);
}

static void wake_cb(uv_async_t *a)
{
    (void)a;
    uv_mutex_lock(&B.lock);
    struct bmsg *m = B.head;
    B.head = B.tail = NULL;
    uv_mutex_unlock(&B.lock);
    while (m != NULL) {
        struct bmsg *next = m->next;
        switch (m->kind) {
        case BMSG_OPEN:
            bcore_open(&B.core, m->w, m->stream, m->token, m->id, m->host, m->port);
            break;
        case BMSG_FORGET:
            bcore_forget(&B.core, m->stream);
            break;
        case BMSG_RELOAD:
            bcore_reload(&B.core, m->file, m->ctx);
            m->file = NULL;
            m->ctx = NULL;
            break;
        case BMSG_STOP:
            /* Two may come (the drain's, then bridge_join's): one closes. */
            if (uv_is_closing((uv_handle_t *)&B.wake))
                break;
            bcore_stop(&B.core, "proxy shutting down");
            uv_mutex_lock(&B.lock);
            B.closed = true;
            uv_mutex_unlock(&B.lock);
            uv_close((uv_handle_t *)&B.wake, NULL);
            break;
        }
        msg_free(m);
        m = next;
    }
    /* After STOP nothing more is queued (closed); anything queued between
     * the drain above and STOP is answered here. */
    if (B.closed) {
        uv_mutex_lock(&B.lock);
        m = B.head;
        B.head = B.tail = NULL;
        uv_mutex_unlock(&B.lock);
        for (struct bmsg *next; m != NULL; m = next) {
            next = m->next;
            msg_refused(m, MSG_STOPPED);
        }
    }
}

static void thread_main(void *arg)
{
    (void)arg;
    uv_run(&B.loop, UV_RUN_DEFAULT);
}

/* ---- main thread ---- */

/* A route through a bridge the file does not hold: every session of it
 * would fail, say so at start. */
static void warn_unknown_bridges(const struct config *cfg, const struct authfile *file)
{
    for (size_t i = 0; i <= cfg->nroutes; i++) {
        const struct config *rc = i < cfg->nroutes ? cfg->routes[i].cfg : cfg;
        const char *route = i < cfg->nroutes ? cfg->routes[i].name : "default";
        if (rc->client_bridge == NULL || (i == cfg->nroutes && !cfg->has_default) ||
            authfile_find(file, rc->client_bridge) != NULL)
            continue;
        log_warn("event=bridge_unknown route=\"%s\" bridge=%s reason=\"not in --bridges-file: no "
                 "connector can log in for it\" hint=\"add its line (pg-tls-proxy bridge-secret "
                 "%s) and reload\"",
                 route, rc->client_bridge, rc->client_bridge);
    }
}

/* The bridge listener's context: the bridge certificate, else the front one. */
static SSL_CTX *make_ctx(char *err, size_t errlen)
{
    char summary[512];
    SSL_CTX *ctx = tlsctx_server(B.cert_path, B.key_path, B.cert_flag, B.key_flag, summary,
                                 sizeof(summary), err, errlen);
    if (ctx != NULL)
        bctl_setup_ctx(ctx);
    return ctx;
}

static void forget_paths(void)
{
    free(B.file_path);
    free(B.cert_path);
    free(B.key_path);
    B.file_path = B.cert_path = B.key_path = NULL;
}

int bridge_start(const struct config *cfg, struct worker *workers, unsigned nworkers, char *err,
                 size_t errlen)
{
    (void)workers; /* results go to the worker that asked (bridge_open's w) */
    (void)nworkers;
    if (cfg->bridge_listen == NULL)
        return 0;
    bool own = cfg->bridge_cert_path != NULL;
    B.file_path = strdup(cfg->bridges_file);
    B.cert_path = strdup(own ? cfg->bridge_cert_path : cfg->front_cert_path);
    B.key_path = strdup(own ? cfg->bridge_key_path : cfg->front_key_path);
    B.cert_flag = own ? "--bridge-certificate-path" : "--server-certificate-path";
    B.key_flag = own ? "--bridge-private-key-path" : "--server-private-key-path";
    if (B.file_path == NULL || B.cert_path == NULL || B.key_path == NULL) {
        snprintf(err, errlen, "out of memory");
        forget_paths();
        return -1;
    }
    struct authfile *file = bauth_load(B.file_path, err, errlen);
    SSL_CTX *ctx = file != NULL ? make_ctx(err, errlen) : NULL;
    char bound[512];
    if (ctx == NULL || uv_loop_init(&B.loop) != 0) {
        authfile_free(file);
        SSL_CTX_free(ctx);
        forget_paths();
        return -1;
    }
    bridge_deliver_fn fn = test_deliver != NULL ? test_deliver : post_to_worker;
    int rc = bcore_init(&B.core, &B.loop, ctx, file, test_heartbeat_ms, test_timeout_ms, fn,
                        test_deliver_arg, err, errlen);
    if (rc == 0 && uv_mutex_init(&data_ctx_lock) == 0)
        data_ctx_set(ctx);
    else
        rc = -1;
    SSL_CTX_free(ctx); /* the core and data_ctx hold their own references */
    if (rc == 0)
        rc = bcore_listen(&B.core, cfg->bridge_listen, bound, sizeof(bound), err, errlen);
    if (rc == 0 && (uv_mutex_init(&B.lock) != 0 || uv_async_init(&B.loop, &B.wake, wake_cb) != 0))
        rc = -1;
    if (rc == 0 && uv_thread_create(&B.thread, thread_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the bridge thread");
        rc = -1;
    }
    if (rc < 0) {
        /* Start-up fails the process (fatal): nothing is left to tidy but
         * memory a sanitizer would report. */
        return -1;
    }
    B.running = true;
    B.closed = false;
    warn_unknown_bridges(cfg, file);
    log_info("event=bridge_listening address=%s bridges=%zu certificate=\"%s\" heartbeat_s=%u",
             bound, authfile_count(file), B.cert_path,
             (unsigned)(B.core.heartbeat_ms + 999) / 1000);
    return 0;
}

int bridge_reload(const struct config *cfg, char *err, size_t errlen)
{
    (void)cfg; /* the paths are process-wide: the start-time ones */
    if (!B.running)
        return 0;
    struct authfile *file = bauth_load(B.file_path, err, errlen);
    if (file == NULL)
        return -1;
    SSL_CTX *ctx = make_ctx(err, errlen);
    if (ctx == NULL) {
        authfile_free(file);
        return -1;
    }
    struct bmsg *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        authfile_free(file);
        SSL_CTX_free(ctx);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->kind = BMSG_RELOAD;
    m->file = file;
    data_ctx_set(ctx); /* new data connections take the new certificate */
    m->ctx = ctx;
    log_info("event=bridge_reloaded bridges=%zu", authfile_count(file));
    post(m);
    return 0;
}

void bridge_stop(void)
{
    if (!B.running)
        return;
    struct bmsg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return; /* bridge_join tries again */
    m->kind = BMSG_STOP;
    post(m);
}

void bridge_join(void)
{
    if (!B.running)
        return;
    bridge_stop(); /* no-op once closed */
    uv_thread_join(&B.thread);
    if (uv_loop_close(&B.loop) != 0)
        log_error("event=loop_close_failed thread=bridge");
    bcore_free(&B.core);
    data_ctx_set(NULL);
    uv_mutex_destroy(&data_ctx_lock);
    uv_mutex_destroy(&B.lock);
    forget_paths();
    B.running = false;
}

/* ---- worker threads ---- */

void bridge_open(struct worker *w, uint64_t stream, const uint8_t token[BRIDGE_TOKEN_LEN],
                 const char *bridge_id, const char *host, unsigned port)
{
    struct bmsg *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        struct bridge_result *r =
            bresult_new(stream, -1, NULL, "error", "pg-tls-proxy: out of memory");
        if (r != NULL)
            post_to_worker(NULL, w, r);
        return;
    }
    m->kind = BMSG_OPEN;
    m->w = w;
    m->stream = stream;
    memcpy(m->token, token, BRIDGE_TOKEN_LEN);
    snprintf(m->id, sizeof(m->id), "%s", bridge_id);
    snprintf(m->host, sizeof(m->host), "%s", host);
    m->port = port;
    if (!B.running) {
        msg_refused(m, MSG_OFF);
        return;
    }
    post(m);
}

void bridge_forget(uint64_t stream)
{
    if (!B.running)
        return;
    struct bmsg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return; /* the stream's entry goes with its connector */
    m->kind = BMSG_FORGET;
    m->stream = stream;
    post(m);
}
