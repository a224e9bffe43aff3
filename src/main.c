/*
 * main.c - start-up (options, TLS contexts, listeners), then the main
 * thread's own loop: signals, reloads, the shutdown timer, while the
 * workers serve connections on their threads.
 *
 * Owns the configuration and the process's references to the TLS
 * contexts. fatal() is allowed here before the workers start, and nowhere
 * after: a failed reload logs and keeps the old contexts.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "config.h"
#include "connector.h"
#include "healthcheck.h"
#include "admin.h"
#include "adminauth.h"
#include "adminsess.h"
#include "authfile.h"
#include "bridge.h"
#include "bridgesecret.h"
#include "listener.h"
#include "log.h"
#include "peers.h"
#include "metrics.h"
#include "procstats.h"
#include "tlsctx.h"
#include "leg.h"
#include "probe.h"
#include "route.h"
#include "scramsecret.h"
#include "sdnotify.h"
#include "worker.h"

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

#define NSIGNALS 5 /* SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2 */

/* What the main thread owns while the workers run. */
struct supervisor {
    const struct config *cfg; /* as started: process-wide options, argv/env for reloads */
    const char *bound;        /* the addresses listened on (systemd's STATUS=) */
    /* Each configuration a reload has read (--config), newest last: the
     * routes' and certificates' source from then on. Kept until exit, as a
     * route table built from one may outlive the next reload. */
    struct config **reloaded;
    size_t nreloaded;
    struct worker *workers;
    unsigned nworkers;
    unsigned finished;     /* workers that have stopped */
    unsigned stop_signals; /* SIGINT/SIGTERM received */
    uv_signal_t sigs[NSIGNALS];
    uv_async_t worker_done;
    uv_timer_t shutdown_timer;
    /* --watch-certificates: the directories of the certificate files */
    uv_fs_event_t watches[11];
    unsigned nwatches;
    uv_timer_t watch_debounce;
    /* the daily look at the front certificate's expiry */
    uv_timer_t expiry_timer;
    int64_t front_expiry;
    char front_not_after[32];
    /* the ports listened on (server-port and the routes' listen-ports) */
    const unsigned *ports;
    size_t nports;
};

#define WATCH_DEBOUNCE_MS 500 /* one reload for a burst of file events */

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Only workers still running: a finished one has closed its ctl handle. */
static void broadcast(struct supervisor *sv, unsigned cmds)
{
    for (unsigned i = 0; i < sv->nworkers; i++)
        if (!atomic_load(&sv->workers[i].finished))
            worker_command(&sv->workers[i], cmds);
}

/* Expiry gauges: the front certificate and every CA root, as now loaded. */
static void publish_expiry(const struct tls_contexts *ctx)
{
    char subj[256];
    metrics_clear_cert_expiry();
    X509 *leaf = SSL_CTX_get0_certificate(ctx->front);
    if (leaf != NULL) {
        X509_NAME_oneline(X509_get_subject_name(leaf), subj, sizeof(subj));
        metrics_set_cert_expiry("front", subj, tlsctx_not_after(leaf));
    }
    if (ctx->back == NULL) /* no default route: every route has its own roots */
        return;
    STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(ctx->back));
    for (int i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        if (x == NULL)
            continue;
        X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof(subj));
        metrics_set_cert_expiry("ca_root", subj, tlsctx_not_after(x));
    }
}

/* ---- the front certificate: names, chain, expiry (start-up, reload, daily) ---- */

#define EXPIRY_WARN_DAYS 14
#define EXPIRY_CHECK_MS (24ull * 3600 * 1000)

/* Warn when the front certificate expires within EXPIRY_WARN_DAYS. */
static void front_expiry_check(const char *path, int64_t not_after, const char *not_after_str)
{
    time_t now = time(NULL);
    int64_t days = tlsctx_days_left(not_after, now);
    char q[4200];
    if (not_after <= 0 || days >= EXPIRY_WARN_DAYS)
        return;
    if (not_after <= (int64_t)now)
        log_error("event=front_certificate_expired file=\"%s\" not_after=%s hint=\"clients "
                  "refuse it now: renew it and reload (SIGHUP, or --watch-certificates)\"",
                  log_escape(path, q, sizeof(q)), not_after_str);
    else
        log_warn("event=front_certificate_expiring file=\"%s\" not_after=%s days_left=%lld "
                 "hint=\"renew it before then and reload (SIGHUP, or --watch-certificates)\"",
                 log_escape(path, q, sizeof(q)), not_after_str, (long long)days);
}

/* Its names, dates and chain warning, as now loaded; remembered for the daily check. */
static void front_certificate_log(struct supervisor *sv, const struct config *cfg,
                                  const struct tls_contexts *ctx, const char *trigger)
{
    char qp[4200], qn[1100], qw[1600];
    log_escape(cfg->front_cert_path, qp, sizeof(qp));
    log_info("event=front_certificate trigger=%s file=\"%s\" names=\"%s\" not_before=%s "
             "not_after=%s days_left=%lld certificates_in_file=%d",
             trigger, qp, log_escape(ctx->front_names, qn, sizeof(qn)), ctx->front_not_before,
             ctx->front_not_after, (long long)tlsctx_days_left(ctx->front_expiry, time(NULL)),
             ctx->front_chain_len);
    if (ctx->front_warning[0] != '\0' && ctx->front_warning_likely)
        log_warn("event=front_certificate_chain file=\"%s\" reason=\"%s\"", qp,
                 log_escape(ctx->front_warning, qw, sizeof(qw)));
    else if (ctx->front_warning[0] != '\0')
        log_info("event=front_certificate_chain file=\"%s\" reason=\"%s\"", qp,
                 log_escape(ctx->front_warning, qw, sizeof(qw)));
    front_expiry_check(cfg->front_cert_path, ctx->front_expiry, ctx->front_not_after);
    if (sv != NULL) {
        sv->front_expiry = ctx->front_expiry;
        snprintf(sv->front_not_after, sizeof(sv->front_not_after), "%s", ctx->front_not_after);
    }
}

/* The configuration the routes now come from: the newest reloaded one. */
static const struct config *current_cfg(const struct supervisor *sv)
{
    return sv->nreloaded > 0 ? sv->reloaded[sv->nreloaded - 1] : sv->cfg;
}

static void expiry_timer_cb(uv_timer_t *t)
{
    struct supervisor *sv = t->data;
    front_expiry_check(current_cfg(sv)->front_cert_path, sv->front_expiry, sv->front_not_after);
}

/* --check: the same facts on stdout. */
static void front_certificate_print(const struct tls_contexts *ctx)
{
    int64_t days = tlsctx_days_left(ctx->front_expiry, time(NULL));
    printf("front certificate names: %s\nfront certificate valid: %s to %s (%lld days left), "
           "%d certificate(s) in the file\n",
           ctx->front_names, ctx->front_not_before, ctx->front_not_after, (long long)days,
           ctx->front_chain_len);
    if (ctx->front_warning[0] != '\0')
        printf("warning: front certificate: %s\n", ctx->front_warning);
    if (days < EXPIRY_WARN_DAYS)
        printf("warning: front certificate expires in %lld days (%s): renew it\n", (long long)days,
               ctx->front_not_after);
}

/* " auth_file_users=N" for the reloaded/started lines in scram mode. */
static const char *auth_summary(const struct route_table *t)
{
    static _Thread_local char buf[64];
    buf[0] = '\0';
    if (t != NULL && t->dflt != NULL && t->dflt->auth != NULL)
        snprintf(buf, sizeof(buf), " auth_file_users=%zu", authfile_count(t->dflt->auth));
    return buf;
}

/* One line per route of a --config (none with only the default route). */
static void routes_log(const struct route_table *t, const char *trigger)
{
    if (route_table_single(t))
        return;
    for (size_t i = 0; i < t->n; i++) {
        const struct route *r = t->all[i];
        char sni[512] = "", dbs[512] = "", q1[600], q2[600], q3[300];
        size_t a = 0, b = 0;
        for (size_t j = 0; j < r->nsni && a < sizeof(sni); j++)
            a += (size_t)snprintf(sni + a, sizeof(sni) - a, "%s%s", j ? "," : "", r->sni[j]);
        for (size_t j = 0; j < r->ndatabases && b < sizeof(dbs); j++)
            b += (size_t)snprintf(dbs + b, sizeof(dbs) - b, "%s%s", j ? "," : "", r->databases[j]);
        log_info("event=route trigger=%s route=\"%s\" sni=\"%s\" databases=\"%s\" "
                 "listen_port=%u upstream=%s:%u verify_name=\"%s\" upstream_direct_tls=%s "
                 "auth_mode=%s own_certificate=%s",
                 trigger, r->name, log_escape(sni, q1, sizeof(q1)), log_escape(dbs, q2, sizeof(q2)),
                 r->listen_port, r->host, r->port, log_escape(r->verify_name, q3, sizeof(q3)),
                 r->direct_tls ? "on" : "off", auth_mode_name(r->auth_mode),
                 r->front_ctx != NULL && r->front_ctx != t->front_ctx ? "yes" : "no");
    }
}

/* The routes /readyz answers for: this table's, in its order. */
static void routes_publish(const struct route_table *t)
{
    unsigned slots[METRICS_ROUTE_SLOTS];
    size_t n = 0;
    for (size_t i = 0; i < t->n && n < METRICS_ROUTE_SLOTS; i++)
        slots[n++] = t->all[i]->mslot;
    metrics_routes_current(slots, n);
}

static void free_config(struct config *c)
{
    config_free(c);
    free(c);
}

/* The configuration again (flags, environment and the --config file as it
 * is now); NULL after logging event=reload_failed. */
static struct config *reload_config(struct supervisor *sv, const char *why)
{
    char err[1024], q[1100];
    struct config *next = calloc(1, sizeof(*next));
    /* An array of pointers: each config stays where it is while the array grows. */
    struct config **grown = realloc(
        sv->reloaded, (sv->nreloaded + 1) * sizeof(*grown)); // NOLINT(bugprone-sizeof-expression)
    if (grown != NULL)
        sv->reloaded = grown;
    if (next == NULL || grown == NULL)
        snprintf(err, sizeof(err), "out of memory");
    else if (config_reload_file(sv->cfg, next, err, sizeof(err)) == 0)
        return next;
    log_error("event=reload_failed trigger=%s reason=\"%s\" hint=\"the running configuration "
              "stays in use: fix the config file and reload again\"",
              why, log_escape(err, q, sizeof(q)));
    free(next);
    metrics_reload(false);
    return NULL;
}

/* Build new contexts and hand them to every worker; old sessions keep theirs.
 * 0, or -1 after logging event=reload_failed (nothing changed). */
static int reload_apply(struct supervisor *sv, const char *why)
{
    struct tls_contexts ctx;
    char err[1024];

    /* The admin token file (its path is process-wide; its content may
     * change), whatever becomes of the rest. */
    adminsess_reload();
    struct config *next = reload_config(sv, why);
    if (next == NULL)
        return -1;
    if (tlsctx_build(next, &ctx, err, sizeof(err)) < 0) {
        char q[1100];
        log_error("event=reload_failed trigger=%s reason=\"%s\" hint=\"the old certificates stay "
                  "in use\"",
                  why, log_escape(err, q, sizeof(q)));
        free_config(next);
        metrics_reload(false);
        return -1;
    }
    /* The whole table or nothing: the contexts above, then the routes. */
    struct route_table *routes = route_table_build(next, ctx.front, ctx.back, err, sizeof(err));
    if (routes == NULL) {
        char q[1100];
        log_error("event=reload_failed trigger=%s reason=\"%s\" hint=\"the old certificates and "
                  "auth file stay in use\"",
                  why, log_escape(err, q, sizeof(q)));
        tlsctx_contexts_free(&ctx);
        free_config(next);
        metrics_reload(false);
        return -1;
    }
    sv->reloaded[sv->nreloaded++] = next;
    char changed[512];
    if (config_process_wide_changes(sv->cfg, next, changed, sizeof(changed)) > 0)
        log_warn("event=reload_restart_needed options=\"%s\" reason=\"process-wide options "
                 "take effect on restart; the running values stay\"",
                 changed);
    metrics_reload(true);
    routes_publish(routes);
    publish_expiry(&ctx);
    /* Listening sockets are bound once, at start: a listen-port new in
     * this configuration has none until the next restart. */
    for (size_t i = 0; i < routes->n; i++) {
        unsigned p = routes->all[i]->listen_port;
        bool bound = p == 0;
        for (size_t j = 0; j < sv->nports && !bound; j++)
            bound = sv->ports[j] == p;
        if (!bound)
            log_warn("event=listen_port_unbound route=\"%s\" listen_port=%u reason=\"listen "
                     "ports are bound at start\" hint=\"restart the proxy to listen on it; until "
                     "then its clients reach the route by server name or database on another "
                     "port\"",
                     routes->all[i]->name, p);
    }
    for (unsigned i = 0; i < sv->nworkers; i++)
        if (!atomic_load(&sv->workers[i].finished))
            worker_offer_routes(&sv->workers[i], routes);
    if (bridge_reload(next, err, sizeof(err)) < 0) {
        char q[1100];
        log_error("event=reload_failed trigger=%s what=bridges_file reason=\"%s\" hint=\"the "
                  "bridges file and certificate in use stay; fix the file and reload again\"",
                  why, log_escape(err, q, sizeof(q)));
    }
    log_info("event=reloaded trigger=%s ca_roots=\"%s\" front_certificate=[%s]%s", why,
             ctx.roots_summary, ctx.front_summary, auth_summary(routes));
    routes_log(routes, why);
    char what[64];
    snprintf(what, sizeof(what), "reloaded (%s)", why);
    if (sv->stop_signals == 0) /* after STOPPING=1, no READY=1 again */
        sdnotify_serving(what, sv->bound, routes);
    route_table_unref(routes); /* the workers hold their own references */
    front_certificate_log(sv, next, &ctx, why);
    tlsctx_contexts_free(&ctx); /* the workers hold their own references */
    return 0;
}

/* A reload, told to systemd: RELOADING=1, then READY=1 with the result
 * (a failed reload leaves the proxy serving as before: ready again). */
static void reload(struct supervisor *sv, const char *why)
{
    bool tell = sv->stop_signals == 0; /* draining: systemd has been told STOPPING=1 */
    if (tell)
        sdnotify_reloading(why);
    if (reload_apply(sv, why) < 0 && tell)
        sdnotify_ready("reload failed (%s): still serving the previous configuration on %s; "
                       "see event=reload_failed in the log",
                       why, sv->bound);
}

static void debounce_cb(uv_timer_t *t)
{
    reload(t->data, "file_change");
}

static void watch_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct supervisor *sv = h->data;
    (void)events;
    if (status < 0) {
        log_warn("event=watch_failed reason=\"%s\"", uv_strerror(status));
        return;
    }
    log_debug("event=file_changed name=\"%s\"", filename ? filename : "");
    uv_timer_start(&sv->watch_debounce, debounce_cb, WATCH_DEBOUNCE_MS, 0);
}

/*
 * Watch the directory of every certificate, key and CA path, of the
 * auth file, the bridges file and the --config file: Kubernetes updates a secret or a
 * ConfigMap by swapping a symlink in that directory, which a watch on the
 * file itself would miss.
 */
static void start_watches(struct supervisor *sv, uv_loop_t *loop)
{
    const struct config *cfg = sv->cfg;
    const char *paths[] = {
        cfg->front_cert_path, cfg->front_key_path,   cfg->ca_roots_path,  cfg->front_client_ca_path,
        cfg->back_cert_path,  cfg->back_key_path,    cfg->auth_file,      cfg->config_path,
        cfg->bridges_file,    cfg->bridge_cert_path, cfg->bridge_key_path};
    char dirs[11][4096];
    _Static_assert(sizeof(paths) / sizeof(paths[0]) <= sizeof(sv->watches) / sizeof(sv->watches[0]),
                   "one watch per path at most");
    uv_timer_init(loop, &sv->watch_debounce);
    sv->watch_debounce.data = sv;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (paths[i] == NULL)
            continue;
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s", paths[i]);
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            char *slash = strrchr(dir, '/');
            if (slash == NULL)
                snprintf(dir, sizeof(dir), ".");
            else if (slash == dir)
                dir[1] = '\0';
            else
                *slash = '\0';
        }
        bool seen = false;
        for (unsigned j = 0; j < sv->nwatches && !seen; j++)
            seen = strcmp(dirs[j], dir) == 0;
        if (seen)
            continue;
        uv_fs_event_t *h = &sv->watches[sv->nwatches];
        uv_fs_event_init(loop, h);
        h->data = sv;
        int r = uv_fs_event_start(h, watch_cb, dir, 0);
        if (r < 0) {
            log_warn("event=watch_failed dir=\"%s\" reason=\"%s\"", dir, uv_strerror(r));
            uv_close((uv_handle_t *)h, NULL);
            continue;
        }
        snprintf(dirs[sv->nwatches], sizeof(dirs[0]), "%s", dir);
        sv->nwatches++;
        log_info("event=watching dir=\"%s\"", dir);
    }
}

static void shutdown_timer_cb(uv_timer_t *t)
{
    struct supervisor *sv = t->data;
    log_info("event=shutdown_timeout timeout_s=%u reason=\"ending the sessions still open\"",
             sv->cfg->shutdown_timeout_s);
    broadcast(sv, WORKER_FORCE);
}

/*
 * SIGUSR1: one status line, for an operator without the admin endpoint.
 * SIGUSR2: no meaning; logged and ignored. Either used to kill the process
 * (the default action) without a word, which an operator who meant
 * "reopen the logs" (there is no file to reopen: the log is stderr) did
 * not expect.
 */
static void status_signal(struct supervisor *sv, int signum)
{
    if (signum == SIGUSR2) {
        log_info("event=signal_ignored signal=SIGUSR2 reason=\"SIGUSR2 has no meaning here; "
                 "SIGUSR1 logs a status line, SIGHUP reloads the certificates\"");
        return;
    }
    struct process_stats ps;
    process_stats_read(&ps);
    log_info("event=status signal=SIGUSR1 version=%s active_sessions=%lld workers=%u "
             "workers_running=%u draining=%s uptime_s=%lld open_fds=%lld max_fds=%lld "
             "rss_bytes=%lld cpu_ms=%lld upstream_last_success_unix=%lld",
             PGTP_VERSION, (long long)metrics_active_sessions(), sv->nworkers,
             sv->nworkers - sv->finished, sv->stop_signals > 0 ? "yes" : "no",
             (long long)(time(NULL) - ps.start_time), (long long)ps.open_fds, (long long)ps.max_fds,
             (long long)ps.rss_bytes, (long long)(ps.cpu_seconds * 1000),
             (long long)metrics_last_upstream_ok());
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct supervisor *sv = h->data;
    const char *name = signum == SIGINT ? "SIGINT" : signum == SIGTERM ? "SIGTERM" : "SIGHUP";

    if (signum == SIGUSR1 || signum == SIGUSR2) {
        status_signal(sv, signum);
        return;
    }
    if (signum == SIGHUP) {
        reload(sv, name);
        return;
    }
    if (sv->stop_signals++ > 0) {
        log_info("event=shutdown_now signal=%s", name);
        broadcast(sv, WORKER_KILL);
        return;
    }
    log_info("event=shutdown signal=%s drain_timeout_s=%u hint=\"send it again to stop at once\"",
             name, sv->cfg->shutdown_timeout_s);
    sdnotify_stopping("draining (%s): %lld sessions open, up to %u s", name,
                      (long long)metrics_active_sessions(), sv->cfg->shutdown_timeout_s);
    broadcast(sv, WORKER_DRAIN);
    bridge_stop(); /* BYE to the connectors, no more streams */
    admin_set_listening(false);
    uv_timer_start(&sv->shutdown_timer, shutdown_timer_cb,
                   (uint64_t)sv->cfg->shutdown_timeout_s * 1000, 0);
}

/* A worker has stopped; when all have, the main loop closes its handles. */
static void worker_done_cb(uv_async_t *a)
{
    struct supervisor *sv = a->data;
    unsigned n = 0;
    for (unsigned i = 0; i < sv->nworkers; i++)
        n += sv->workers[i].finished; /* written by the worker before it signals */
    sv->finished = n;
    sdnotify_status("stopping: %u of %u workers done, %lld sessions open", n, sv->nworkers,
                    (long long)metrics_active_sessions());
    if (n < sv->nworkers)
        return;
    for (int i = 0; i < NSIGNALS; i++)
        close_if_open((uv_handle_t *)&sv->sigs[i]);
    close_if_open((uv_handle_t *)&sv->shutdown_timer);
    close_if_open((uv_handle_t *)&sv->worker_done);
    for (unsigned i = 0; i < sv->nwatches; i++)
        close_if_open((uv_handle_t *)&sv->watches[i]);
    if (sv->cfg->watch_certificates)
        close_if_open((uv_handle_t *)&sv->watch_debounce);
    close_if_open((uv_handle_t *)&sv->expiry_timer);
    admin_stop();
}

static int run_check(struct worker *w)
{
    probe_check_start(w);
    uv_run(w->loop, UV_RUN_DEFAULT);
    if (w->probe_status == 0)
        printf("check ok\n");
    return w->probe_status;
}

static unsigned cpu_count(void)
{
    unsigned n = uv_available_parallelism();
    return n > 0 ? n : 1;
}

/* Start the workers, serve until stopped, join them. Exit status. */
static int run_workers(const struct config *cfg, struct runtime *rt, struct tls_contexts *ctx,
                       struct route_table *routes)
{
    struct supervisor sv;
    char err[512], bound[1024];
    uv_loop_t main_loop;

    memset(&sv, 0, sizeof(sv));
    sv.cfg = cfg;
    sv.nworkers = cfg->workers > 0 ? cfg->workers : cpu_count();
    /* server-port, then every distinct listen-port of a route. */
    struct addrinfo **addrs = calloc(routes->n + 1, sizeof(struct addrinfo *));
    unsigned *ports = calloc(routes->n + 1, sizeof(*ports));
    size_t nports = 0;
    if (addrs == NULL || ports == NULL)
        fatal("out of memory");
    ports[nports++] = cfg->listen_port;
    for (size_t i = 0; i < routes->n; i++) {
        unsigned p = routes->all[i]->listen_port;
        bool seen = p == 0;
        for (size_t j = 0; j < nports && !seen; j++)
            seen = ports[j] == p;
        if (!seen)
            ports[nports++] = p;
    }
    for (size_t i = 0; i < nports; i++)
        if (listener_resolve(cfg->listen_host, ports[i], &addrs[i], err, sizeof(err)) < 0)
            fatal("%s", err);
    sv.workers = calloc(sv.nworkers, sizeof(*sv.workers));
    if (sv.workers == NULL || uv_loop_init(&main_loop) != 0 ||
        uv_async_init(&main_loop, &sv.worker_done, worker_done_cb) != 0 ||
        uv_timer_init(&main_loop, &sv.shutdown_timer) != 0 ||
        uv_timer_init(&main_loop, &sv.expiry_timer) != 0)
        fatal("out of memory");
    sv.expiry_timer.data = &sv;
    sv.worker_done.data = &sv;
    sv.shutdown_timer.data = &sv;
    /* The admin endpoint first: if its address cannot be bound, nothing
     * has listened for clients and no event=started was logged. */
    if (cfg->admin_address != NULL) {
        if (admin_start(&main_loop, cfg->admin_address, cfg->admin_ready_window_s, err,
                        sizeof(err)) < 0)
            fatal("%s", err);
        log_info("event=admin_listening address=%s paths=\"/metrics /healthz /readyz /sessions\"",
                 cfg->admin_address);
    }
    for (unsigned i = 0; i < sv.nworkers; i++) {
        struct worker *w = &sv.workers[i];
        if (worker_init(w, i, rt, routes, &sv.worker_done) != 0)
            fatal("cannot create the event loop of worker %u", i);
        if (listener_start_many(w, (const struct addrinfo *const *)addrs, nports,
                                cfg->listen_host == NULL, bound, sizeof(bound), err,
                                sizeof(err)) < 0)
            fatal("%s", err);
    }
    for (size_t i = 0; i < nports; i++)
        freeaddrinfo(addrs[i]);
    free(addrs);
    if (cfg->admin_address != NULL &&
        admin_sessions_start(sv.workers, sv.nworkers, cfg->admin_token_file, err, sizeof(err)) < 0)
        fatal("%s", err);
    /* After the workers exist (results go to them), before they run. */
    if (bridge_start(cfg, sv.workers, sv.nworkers, err, sizeof(err)) < 0)
        fatal("%s", err);
    sv.ports = ports;
    sv.nports = nports;

    log_info("event=started version=%s listen=%s workers=%u upstream=%s:%u verify_name=\"%s\" "
             "upstream_direct_tls=%s ca_roots=\"%s\" front_certificate=[%s] "
             "client_certificates=\"%s\" allow_from=\"%s\" allow_plaintext_from=\"%s\" "
             "max_connections=%u auth_mode=%s%s",
             PGTP_VERSION, bound, sv.nworkers,
             cfg->upstream_host != NULL ? cfg->upstream_host : "none", cfg->upstream_port,
             cfg->upstream_verify_name != NULL ? cfg->upstream_verify_name : "",
             cfg->back_direct_tls ? "on" : "off", ctx->roots_summary, ctx->front_summary,
             cfg->front_client_ca_path ? ctx->client_ca_summary : "not required",
             cfg->allow_from ? cfg->allow_from : "all",
             cfg->allow_plaintext_from ? cfg->allow_plaintext_from : "none", cfg->max_connections,
             auth_mode_name(cfg->auth_mode), auth_summary(routes));
    routes_log(routes, "start");
    routes_publish(routes);
    metrics_set_max_connections(cfg->max_connections);
    front_certificate_log(&sv, cfg, ctx, "start");
    uv_timer_start(&sv.expiry_timer, expiry_timer_cb, EXPIRY_CHECK_MS, EXPIRY_CHECK_MS);
    if (cfg->upstream_verify_name != NULL && tlsctx_is_cloudsql_name(cfg->upstream_verify_name))
        log_info("event=verify_mode mode=cloudsql_cn name=\"%s\" reason=\"the validation host "
                 "looks like PROJECT:INSTANCE: the upstream certificate's CN must equal it "
                 "exactly (no SAN check, no SNI)\"",
                 cfg->upstream_verify_name);
    if (cfg->allow_plaintext_from != NULL)
        log_warn("event=plaintext_allowed from=\"%s\" reason=\"sidecar mode: clients from "
                 "these addresses may connect without TLS\"",
                 cfg->allow_plaintext_from);

    const int signums[NSIGNALS] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
    for (int i = 0; i < NSIGNALS; i++) {
        uv_signal_init(&main_loop, &sv.sigs[i]);
        sv.sigs[i].data = &sv;
        uv_signal_start(&sv.sigs[i], signal_cb, signums[i]);
    }
    if (cfg->watch_certificates)
        start_watches(&sv, &main_loop);
    publish_expiry(ctx);
    admin_set_listening(true);
    if (cfg->admin_address != NULL)
        worker_start_probe(&sv.workers[0]);
    for (unsigned i = 0; i < sv.nworkers; i++)
        if (uv_thread_create(&sv.workers[i].thread, worker_thread, &sv.workers[i]) != 0)
            fatal("cannot start worker thread %u", i);
    /* Every listener is bound (worker_init above) and the workers run. */
    sv.bound = bound;
    sdnotify_serving("started", bound, routes);

    uv_run(&main_loop, UV_RUN_DEFAULT);

    /* Before the workers are destroyed: the bridge thread posts to them. */
    bridge_join();
    int status = 0;
    for (unsigned i = 0; i < sv.nworkers; i++) {
        uv_thread_join(&sv.workers[i].thread);
        worker_destroy(&sv.workers[i]);
    }
    if (uv_loop_close(&main_loop) != 0)
        status = 1;
    free(sv.workers);
    free(ports);
    for (size_t i = 0; i < sv.nreloaded; i++)
        free_config(sv.reloaded[i]);
    free(sv.reloaded);
    log_info("event=stopped");
    return status;
}

/*
 * The first line a serving proxy logs (issue 16): what runs, as whom and
 * where its settings come from, before anything that can fail, so that a
 * container that exits at once still says what it was. Variable names are
 * counted, never printed with their values (a value may be a secret).
 */
static void log_starting(const struct config *cfg, int argc)
{
    static const char prefix[] = "PG_TLS_PROXY_";
    unsigned nenv = 0;
    char q[512];
    for (char **e = environ; *e != NULL; e++)
        nenv += strncmp(*e, prefix, sizeof(prefix) - 1) == 0;
    log_info("event=starting version=%s pid=%ld uid=%ld gid=%ld config_file=\"%s\" args=%d "
             "env_vars=%u",
             PGTP_VERSION, (long)getpid(), (long)getuid(), (long)getgid(),
             cfg->config_path != NULL ? log_escape(cfg->config_path, q, sizeof(q)) : "", argc - 1,
             nenv);
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct tls_contexts ctx;
    char err[1024];

    /* Before anything allocates through OpenSSL (issue 17: idle memory). */
    (void)tlsio_mem_init();
    /* A subcommand, not an option: it prints and exits without config. */
    if (argc >= 2 && strcmp(argv[1], "scram-secret") == 0)
        return scramsecret_main(argc - 1, argv + 1, stdin, stdout, stderr);
    /* The bridge connector (issue 15): its own options, its own loop. */
    if (argc >= 2 && strcmp(argv[1], "connector") == 0)
        return connector_main(argc - 1, argv + 1, environ);
    if (argc >= 2 && strcmp(argv[1], "bridge-secret") == 0)
        return bridgesecret_main(argc - 1, argv + 1, stdout, stderr);
    /* The image's HEALTHCHECK (issue 16): no shell in the container. */
    if (argc >= 2 && strcmp(argv[1], "healthcheck") == 0)
        return healthcheck_main(argc - 1, argv + 1, environ, stdout, stderr);

    /* Known before the first error can be printed: usage errors are JSON
     * too when JSON was asked for. */
    log_json = config_log_json_early(argc, argv, environ);
    switch (config_parse(&cfg, argc, argv, environ, stdout, err, sizeof(err))) {
    case CONFIG_EXIT:
        return 0;
    case CONFIG_ERROR:
        fatal("%s", err); /* exit status 2 */
    case CONFIG_OK:
        break;
    }
    log_min_level = (enum log_level)cfg.log_level;
    log_json = cfg.log_json;
    if (!cfg.check_only)
        log_starting(&cfg, argc);
    struct process_stats started;
    process_stats_read(&started); /* remembers the start time */
    signal(SIGPIPE, SIG_IGN);
    /* Until the main loop's handlers are installed (and in --check), the
     * default action of SIGUSR1/SIGUSR2 would kill the process unlogged. */
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    raise_fd_limit();

    struct runtime rt = {
        .cfg = &cfg,
        .startup_timeout_ms = cfg.handshake_timeout_s * 1000,
        .idle_timeout_ms = cfg.idle_timeout_s * 1000,
        .write_stall_ms = cfg.write_stall_s * 1000,
    };
    if (cfg.allow_from != NULL &&
        cidr_list_parse(cfg.allow_from, &rt.allow_from, err, sizeof(err)) < 0)
        fatal("--server-allow-from: %s", err);
    if (cfg.allow_plaintext_from != NULL &&
        cidr_list_parse(cfg.allow_plaintext_from, &rt.allow_plain, err, sizeof(err)) < 0)
        fatal("--server-allow-plaintext-from: %s", err);
    /* Every option is checked before anything is bound or logged as
     * started (the admin address used to be checked only after the front
     * port was listening). */
    if (cfg.admin_address != NULL && admin_check_address(cfg.admin_address, err, sizeof(err)) < 0)
        fatal("%s", err);
    struct admin_token token_check;
    if (cfg.admin_token_file != NULL &&
        adminauth_load(cfg.admin_token_file, &token_check, err, sizeof(err)) < 0)
        fatal("%s", err);
    OPENSSL_cleanse(&token_check, sizeof(token_check));
    if (tlsctx_build(&cfg, &ctx, err, sizeof(err)) < 0)
        fatal("%s", err);
    struct route_table *routes = route_table_build(&cfg, ctx.front, ctx.back, err, sizeof(err));
    if (routes == NULL)
        fatal("%s", err);
    if (peers_init(&cfg, err, sizeof(err)) < 0)
        fatal("%s", err);
    if (peers_self() != 0)
        log_info("event=peering peer_id=%u peers=%zu", peers_self(), peers_count());

    int status = 0;
    if (cfg.check_only) {
        struct worker *w = calloc(1, sizeof(*w));
        if (w == NULL || uv_loop_init(&w->loop_storage) != 0)
            fatal("cannot create the event loop");
        w->loop = &w->loop_storage;
        w->rt = &rt;
        w->routes = routes;
        printf("front certificate: %s\nCA roots: %s\n", ctx.front_summary, ctx.roots_summary);
        front_certificate_print(&ctx);
        fflush(stdout);
        status = run_check(w);
        if (uv_loop_close(w->loop) != 0)
            log_error("event=loop_close_failed");
        leg_chunk_cache_free(w);
        free(w);
    } else {
        status = run_workers(&cfg, &rt, &ctx, routes);
    }
    route_table_unref(routes);
    peers_free();

    tlsctx_contexts_free(&ctx);
    cidr_list_free(&rt.allow_from);
    cidr_list_free(&rt.allow_plain);
    config_free(&cfg);
    return status;
}
