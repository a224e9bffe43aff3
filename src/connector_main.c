/*
 * connector_main.c - the connector's life: `pg-tls-proxy connector`
 * (options, warnings, run, exit status), building and freeing the loop and
 * its handles, and stopping: SIGTERM/SIGINT or connector_stop, BYE, the
 * streams' --shutdown-timeout, a second signal.
 *
 * Owns the loop's own handles (timers, signals, the stop async) and closes
 * them only when nothing is left (no control connection, no stream), so
 * that uv_run returns and uv_loop_close succeeds.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "config.h"
#include "connector_int.h"
#include "log.h"
#include "sdnotify.h"

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Stopping, no control connection and no stream left: close our handles,
 * the loop ends. */
void connector_maybe_finish(struct connector *cn)
{
    if (!cn->stopping || cn->state != CTL_WAIT || cn->nstreams > 0)
        return;
    close_handle((uv_handle_t *)&cn->ctl_timer);
    close_handle((uv_handle_t *)&cn->hb_timer);
    close_handle((uv_handle_t *)&cn->shutdown_timer);
    uv_mutex_lock(&cn->stop_mu); /* connector_stop may be sending on another thread */
    close_handle((uv_handle_t *)&cn->stop_async);
    cn->async_closed = true;
    uv_mutex_unlock(&cn->stop_mu);
    if (cn->with_signals) {
        close_handle((uv_handle_t *)&cn->sigterm);
        close_handle((uv_handle_t *)&cn->sigint);
    }
}

void connector_stream_gone(struct connector *cn)
{
    connector_maybe_finish(cn);
}

static void shutdown_timeout_cb(uv_timer_t *t)
{
    cstream_close_all(t->data, "shutdown_timeout");
}

static void begin_stop(struct connector *cn)
{
    if (cn->stopping) {
        cstream_close_all(cn, "second_signal");
        return;
    }
    cn->stopping = true;
    if (cn->with_signals)
        sdnotify_stopping("stopping: %zu streams open, up to %u s", cn->nstreams,
                          cn->o->shutdown_timeout_s);
    log_info("event=connector_stopping connector=%s streams_open=%zu shutdown_timeout_s=%u",
             cn->o->name, cn->nstreams, cn->o->shutdown_timeout_s);
    chealth_stop(cn->health);
    cn->health = NULL;
    connector_ctl_stop(cn);
    if (cn->nstreams > 0 && cn->o->shutdown_timeout_s > 0)
        uv_timer_start(&cn->shutdown_timer, shutdown_timeout_cb,
                       cn->o->shutdown_timeout_s * 1000ull, 0);
    else if (cn->nstreams > 0)
        cstream_close_all(cn, "shutdown");
    connector_maybe_finish(cn);
}

static void signal_cb(uv_signal_t *s, int signum)
{
    log_info("event=signal signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    begin_stop(s->data);
}

static void stop_async_cb(uv_async_t *a)
{
    begin_stop(a->data);
}

void connector_stop(struct connector *cn)
{
    uv_mutex_lock(&cn->stop_mu);
    if (!cn->async_closed) /* a closed async handle must not be sent to */
        uv_async_send(&cn->stop_async);
    uv_mutex_unlock(&cn->stop_mu);
}

/* ---- life cycle -------------------------------------------------------------------- */

struct connector *connector_new(const struct connector_opts *o, bool with_signals, char *err,
                                size_t errlen)
{
    struct connector *cn = calloc(1, sizeof(*cn));
    if (cn == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cn->o = o;
    cn->with_signals = with_signals;
    cn->backoff_base_ms = CONNECTOR_BACKOFF_START_MS;
    snprintf(cn->down_reason, sizeof(cn->down_reason), "connecting to the proxy");
    cn->ctx = cnet_tls_ctx(o->bridge_ca_path, err, errlen);
    if (cn->ctx == NULL || uv_loop_init(&cn->loop) != 0) {
        if (cn->ctx != NULL)
            snprintf(err, errlen, "cannot create the event loop");
        SSL_CTX_free(cn->ctx);
        free(cn);
        return NULL;
    }
    uv_mutex_init(&cn->stop_mu);
    uv_timer_init(&cn->loop, &cn->ctl_timer);
    uv_timer_init(&cn->loop, &cn->hb_timer);
    uv_timer_init(&cn->loop, &cn->shutdown_timer);
    uv_async_init(&cn->loop, &cn->stop_async, stop_async_cb);
    cn->ctl_timer.data = cn->hb_timer.data = cn->shutdown_timer.data = cn;
    cn->stop_async.data = cn;
    if (with_signals) {
        uv_signal_init(&cn->loop, &cn->sigterm);
        uv_signal_init(&cn->loop, &cn->sigint);
        cn->sigterm.data = cn->sigint.data = cn;
        uv_signal_start(&cn->sigterm, signal_cb, SIGTERM);
        uv_signal_start(&cn->sigint, signal_cb, SIGINT);
    }
    if (o->health_address != NULL &&
        (cn->health = chealth_start(cn, o->health_address, err, errlen)) == NULL) {
        cn->stopping = true;
        connector_maybe_finish(cn);
        uv_run(&cn->loop, UV_RUN_DEFAULT);
        uv_loop_close(&cn->loop);
        uv_mutex_destroy(&cn->stop_mu);
        SSL_CTX_free(cn->ctx);
        free(cn);
        return NULL;
    }
    return cn;
}

int connector_run(struct connector *cn)
{
    const struct connector_opts *o = cn->o;
    log_info("event=connector_started connector=%s bridge=%s proxy=%s allow=\"%s\" version=%s",
             o->name, o->bridge_id, o->bridge_address, o->allow_text, PGTP_VERSION);
    /* Ready when it starts trying, not when the tunnel is up: the
     * connector retries for ever by design, and a unit that waited for the
     * proxy would fail its start (TimeoutStartSec) whenever the proxy is
     * down. STATUS= says whether the tunnel is up. */
    if (cn->with_signals)
        sdnotify_ready("connecting to %s (bridge %s)", o->bridge_address, o->bridge_id);
    connector_ctl_begin(cn);
    uv_run(&cn->loop, UV_RUN_DEFAULT);
    int status = uv_loop_close(&cn->loop) == 0 ? 0 : 1;
    log_info("event=connector_stopped connector=%s", o->name);
    return status;
}

void connector_free(struct connector *cn)
{
    if (cn == NULL)
        return;
    uv_mutex_destroy(&cn->stop_mu);
    SSL_CTX_free(cn->ctx);
    free(cn);
}

/* The process's own copies of the secret, once parsed (the options hold
 * theirs): argv's --bridge-secret value, so that ps and /proc/PID/cmdline
 * stop showing it (they did until now: see the warning), and the
 * environment's PG_TLS_PROXY_BRIDGE_SECRET, so that /proc/PID/environ
 * does. Overwritten in place, as both live in memory the kernel reads. */
static void wipe_secret_copies(int argc, char **argv, char **envp)
{
    static const char var[] = "PG_TLS_PROXY_BRIDGE_SECRET=";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bridge-secret") == 0 && i + 1 < argc)
            OPENSSL_cleanse(argv[i + 1], strlen(argv[i + 1]));
        else if (strncmp(argv[i], "--bridge-secret=", 16) == 0)
            OPENSSL_cleanse(argv[i] + 16, strlen(argv[i] + 16));
    }
    for (char **e = envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, var, sizeof(var) - 1) == 0)
            OPENSSL_cleanse(*e + sizeof(var) - 1, strlen(*e + sizeof(var) - 1));
}

/* Two descriptors per stream (target, data connection): take the hard
 * limit rather than the soft one (often 1024) before anything opens. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("event=rlimit reason=\"cannot raise RLIMIT_NOFILE to %llu\"",
                 (unsigned long long)rl.rlim_max);
}

int connector_main(int argc, char **argv, char **envp)
{
    struct connector_opts o;
    char err[1024];
    /* Usage errors are JSON too when JSON was asked for (as for the proxy). */
    log_json = config_log_json_early(argc, argv, envp);
    enum connector_parse_res r =
        connector_opts_parse(&o, argc, argv, envp, stdout, err, sizeof(err));
    wipe_secret_copies(argc, argv, envp);
    if (r != CONNECTOR_RUN) {
        connector_opts_free(&o);
        if (r == CONNECTOR_EXIT)
            return 0;
        log_report("pg-tls-proxy connector: ", "config_error", "%s", err);
        return 2;
    }
    log_min_level = (enum log_level)o.log_level;
    log_json = o.log_json;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    if (o.unknown_env[0] != '\0')
        log_warn("event=unknown_environment connector=%s variables=\"%s\" hint=\"not connector "
                 "options (see pg-tls-proxy connector --help): ignored\"",
                 o.name, o.unknown_env);
    if (o.secret_on_argv)
        log_warn("event=secret_on_command_line connector=%s hint=\"other users of this machine "
                 "can read a process's arguments: use PG_TLS_PROXY_BRIDGE_SECRET or "
                 "--bridge-secret-file\"",
                 o.name);
    struct connector *cn = connector_new(&o, true, err, sizeof(err));
    if (cn == NULL) {
        log_report("pg-tls-proxy connector: ", "config_error", "%s", err);
        connector_opts_free(&o);
        return 2;
    }
    int status = connector_run(cn);
    connector_free(cn);
    connector_opts_free(&o);
    return status;
}
