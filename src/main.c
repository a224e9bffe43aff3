/*
 * main.c - start-up: options, TLS contexts, listeners, signals; then the
 * event loop until SIGINT or SIGTERM.
 *
 * fatal() is allowed here and nowhere after the loop starts.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/err.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "proxy.h"
#include "tlsctx.h"

extern char **environ;

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("event=rlimit reason=\"cannot raise RLIMIT_NOFILE to %llu\"",
                     (unsigned long long)want);
    }
}

#define NSIGNALS 3 /* SIGINT, SIGTERM, SIGHUP */

/* What the main thread owns while the workers run. */
struct supervisor {
    struct worker *workers;
    unsigned nworkers;
    uv_signal_t sigs[NSIGNALS];
};

static void signal_cb(uv_signal_t *h, int signum)
{
    struct supervisor *sv = h->data;
    log_info("event=shutdown signal=%s workers=%u", signum == SIGINT ? "SIGINT" : "SIGTERM",
             sv->nworkers);
    for (unsigned i = 0; i < sv->nworkers; i++)
        uv_async_send(&sv->workers[i].stop);
    for (int i = 0; i < NSIGNALS; i++)
        if (!uv_is_closing((uv_handle_t *)&sv->sigs[i]))
            uv_close((uv_handle_t *)&sv->sigs[i], NULL);
}

/* Runs on the worker's own thread: stop accepting, end its sessions. */
static void worker_stop_cb(uv_async_t *a)
{
    struct worker *w = a->data;
    log_info("event=worker_stopping worker=%u open_connections=%zu", w->index, w->nconns);
    worker_shutdown(w);
    uv_close((uv_handle_t *)a, NULL);
}

static void worker_thread(void *arg)
{
    struct worker *w = arg;
    uv_run(w->loop, UV_RUN_DEFAULT);
}

static unsigned cpu_count(void)
{
    unsigned n = uv_available_parallelism();
    return n > 0 ? n : 1;
}

/* Reloading comes with the operations work; until then SIGHUP (a closing
 * terminal, a reload habit) must not stop the proxy. */
static void sighup_cb(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
    log_warn("event=sighup reason=\"reload is not supported yet; restart the proxy to load new "
             "certificates\"");
}

static int run_check(struct worker *w)
{
    struct conn *c = conn_new(w);
    if (c == NULL)
        return 1;
    c->probe = true;
    w->probe_status = 1;
    back_start(c);
    uv_run(w->loop, UV_RUN_DEFAULT);
    if (w->probe_status == 0)
        printf("check ok\n");
    return w->probe_status;
}

/* Start the workers, wait for a stop signal, join them. Exit status. */
static int run_workers(const struct config *cfg, struct runtime *rt, const char *front_summary,
                       const char *roots_summary)
{
    struct supervisor sv;
    struct addrinfo *addrs = NULL;
    char err[512], bound[512];
    uv_loop_t main_loop;

    memset(&sv, 0, sizeof(sv));
    sv.nworkers = cfg->workers > 0 ? cfg->workers : cpu_count();
    if (listener_resolve(cfg->listen_host, cfg->listen_port, &addrs, err, sizeof(err)) < 0)
        fatal("%s", err);
    sv.workers = calloc(sv.nworkers, sizeof(*sv.workers));
    if (sv.workers == NULL || uv_loop_init(&main_loop) != 0)
        fatal("out of memory");
    for (unsigned i = 0; i < sv.nworkers; i++) {
        struct worker *w = &sv.workers[i];
        w->index = i;
        w->rt = rt;
        w->loop = &w->loop_storage;
        if (uv_loop_init(w->loop) != 0 || uv_async_init(w->loop, &w->stop, worker_stop_cb) != 0)
            fatal("cannot create the event loop of worker %u", i);
        w->stop.data = w;
        if (listener_start(w, addrs, cfg->listen_host == NULL, bound, sizeof(bound), err,
                           sizeof(err)) < 0)
            fatal("%s", err);
    }
    freeaddrinfo(addrs);

    log_info("event=started version=%s listen=%s workers=%u upstream=%s:%u verify_name=\"%s\" "
             "upstream_direct_tls=%s ca_roots=\"%s\" front_certificate=[%s] "
             "allow_from=\"%s\" allow_plaintext_from=\"%s\"",
             PGTP_VERSION, bound, sv.nworkers, cfg->upstream_host, cfg->upstream_port,
             cfg->upstream_verify_name, cfg->back_direct_tls ? "on" : "off", roots_summary,
             front_summary, cfg->allow_from ? cfg->allow_from : "all",
             cfg->allow_plaintext_from ? cfg->allow_plaintext_from : "none");
    if (cfg->allow_plaintext_from != NULL)
        log_warn("event=plaintext_allowed from=\"%s\" reason=\"sidecar mode: clients from "
                 "these addresses may connect without TLS\"",
                 cfg->allow_plaintext_from);

    const int signums[NSIGNALS] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < NSIGNALS; i++) {
        uv_signal_init(&main_loop, &sv.sigs[i]);
        sv.sigs[i].data = &sv;
        uv_signal_start(&sv.sigs[i], signums[i] == SIGHUP ? sighup_cb : signal_cb, signums[i]);
    }
    for (unsigned i = 0; i < sv.nworkers; i++)
        if (uv_thread_create(&sv.workers[i].thread, worker_thread, &sv.workers[i]) != 0)
            fatal("cannot start worker thread %u", i);

    uv_run(&main_loop, UV_RUN_DEFAULT);

    int status = 0;
    for (unsigned i = 0; i < sv.nworkers; i++) {
        struct worker *w = &sv.workers[i];
        uv_thread_join(&w->thread);
        if (uv_loop_close(w->loop) != 0) {
            log_error("event=loop_close_failed worker=%u", i);
            status = 1;
        }
        chunk_cache_free(w);
        free(w->listeners);
    }
    if (uv_loop_close(&main_loop) != 0)
        status = 1;
    free(sv.workers);
    log_info("event=stopped");
    return status;
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[1024], front_summary[1024], roots_summary[1024];

    switch (config_parse(&cfg, argc, argv, environ, stdout, err, sizeof(err))) {
    case CONFIG_EXIT:
        return 0;
    case CONFIG_ERROR:
        fprintf(stderr, "pg-tls-proxy: %s\n", err);
        return 2;
    case CONFIG_OK:
        break;
    }
    log_min_level = (enum log_level)cfg.log_level;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    struct runtime rt = {
        .cfg = &cfg,
        .startup_timeout_ms = 15000,
        .connect_timeout_ms = 10000,
    };
    if (cfg.allow_from != NULL &&
        cidr_list_parse(cfg.allow_from, &rt.allow_from, err, sizeof(err)) < 0)
        fatal("--server-allow-from: %s", err);
    if (cfg.allow_plaintext_from != NULL &&
        cidr_list_parse(cfg.allow_plaintext_from, &rt.allow_plain, err, sizeof(err)) < 0)
        fatal("--server-allow-plaintext-from: %s", err);
    rt.back_ctx =
        tlsctx_back(cfg.ca_roots_path, roots_summary, sizeof(roots_summary), err, sizeof(err));
    if (rt.back_ctx == NULL)
        fatal("%s", err);
    rt.front_ctx = tlsctx_front(cfg.front_cert_path, cfg.front_key_path, front_summary,
                                sizeof(front_summary), err, sizeof(err));
    if (rt.front_ctx == NULL)
        fatal("%s", err);

    int status = 0;
    if (cfg.check_only) {
        struct worker *w = calloc(1, sizeof(*w));
        uv_loop_t loop;
        if (w == NULL || uv_loop_init(&loop) != 0)
            fatal("cannot create the event loop");
        w->loop = &loop;
        w->rt = &rt;
        printf("front certificate: %s\nCA roots: %s\n", front_summary, roots_summary);
        fflush(stdout);
        status = run_check(w);
        if (uv_loop_close(&loop) != 0)
            log_error("event=loop_close_failed");
        chunk_cache_free(w);
        free(w);
    } else {
        status = run_workers(&cfg, &rt, front_summary, roots_summary);
    }

    cidr_list_free(&rt.allow_from);
    cidr_list_free(&rt.allow_plain);
    SSL_CTX_free(rt.front_ctx);
    SSL_CTX_free(rt.back_ctx);
    config_free(&cfg);
    return status;
}
