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

static void signal_cb(uv_signal_t *h, int signum)
{
    struct worker *w = h->data;
    uv_signal_t *sigs = w->signals;
    log_info("event=shutdown signal=%s open_connections=%zu",
             signum == SIGINT ? "SIGINT" : "SIGTERM", w->nconns);
    worker_shutdown(w);
    for (int i = 0; i < NSIGNALS; i++)
        if (!uv_is_closing((uv_handle_t *)&sigs[i]))
            uv_close((uv_handle_t *)&sigs[i], NULL);
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

int main(int argc, char **argv)
{
    struct config cfg;
    char err[1024], front_summary[1024], roots_summary[1024], bound[512];

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

    struct worker *w = calloc(1, sizeof(*w));
    uv_loop_t loop;
    if (w == NULL || uv_loop_init(&loop) != 0)
        fatal("cannot create the event loop");
    w->loop = &loop;
    w->rt = &rt;

    int status = 0;
    if (cfg.check_only) {
        printf("front certificate: %s\nCA roots: %s\n", front_summary, roots_summary);
        fflush(stdout);
        status = run_check(w);
    } else {
        if (listener_start(w, cfg.listen_host, cfg.listen_port, bound, sizeof(bound), err,
                           sizeof(err)) < 0)
            fatal("%s", err);
        log_info("event=started version=%s listen=%s upstream=%s:%u verify_name=\"%s\" "
                 "upstream_direct_tls=%s ca_roots=\"%s\" front_certificate=[%s] "
                 "allow_from=\"%s\" allow_plaintext_from=\"%s\"",
                 PGTP_VERSION, bound, cfg.upstream_host, cfg.upstream_port,
                 cfg.upstream_verify_name, cfg.back_direct_tls ? "on" : "off", roots_summary,
                 front_summary, cfg.allow_from ? cfg.allow_from : "all",
                 cfg.allow_plaintext_from ? cfg.allow_plaintext_from : "none");
        if (cfg.allow_plaintext_from != NULL)
            log_warn("event=plaintext_allowed from=\"%s\" reason=\"sidecar mode: clients from "
                     "these addresses may connect without TLS\"",
                     cfg.allow_plaintext_from);
        uv_signal_t sigs[NSIGNALS];
        w->signals = sigs;
        const int signums[NSIGNALS] = {SIGINT, SIGTERM, SIGHUP};
        for (int i = 0; i < NSIGNALS; i++) {
            uv_signal_init(&loop, &sigs[i]);
            sigs[i].data = w;
            uv_signal_start(&sigs[i], signums[i] == SIGHUP ? sighup_cb : signal_cb, signums[i]);
        }
        uv_run(&loop, UV_RUN_DEFAULT);
        log_info("event=stopped");
    }

    int lr = uv_loop_close(&loop);
    if (lr != 0)
        log_error("event=loop_close_failed reason=\"%s\"", uv_strerror(lr));
    chunk_cache_free(w);
    free(w->listeners);
    free(w);
    cidr_list_free(&rt.allow_from);
    cidr_list_free(&rt.allow_plain);
    SSL_CTX_free(rt.front_ctx);
    SSL_CTX_free(rt.back_ctx);
    config_free(&cfg);
    return status;
}
