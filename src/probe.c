/*
 * probe.c - upstream handshakes of the proxy's own (probe.h): a connection
 * with only a back leg, whose owner (struct back_ops) ends it as soon as
 * the leg is verified or has failed.
 *
 * Owns nothing beyond the connection it starts; never sends a byte beyond
 * the TLS handshake (then close_notify), so the database sees no login.
 */
#include "probe.h"

#include <stdint.h>
#include <string.h>

#include "back.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

static void check_ready(struct conn *c)
{
    back_print_chain(c);
    c->w->probe_status = 0;
    conn_end(c, "closed", "check done");
}

static void check_failed(struct conn *c, const char *sqlstate, const char *label, const char *msg)
{
    (void)sqlstate;
    (void)label;
    log_report("check failed: ", "check_failed", "%s",
               strncmp(msg, "pg-tls-proxy: ", 14) == 0 ? msg + 14 : msg);
    c->w->probe_status = 1;
    conn_close(c);
}

static const struct back_ops check_back = {
    .ready = check_ready,
    .failed = check_failed,
};

static void health_ready(struct conn *c)
{
    conn_end(c, "closed", "check done");
}

static void health_failed(struct conn *c, const char *sqlstate, const char *label, const char *msg)
{
    (void)sqlstate;
    (void)label;
    (void)msg;
    conn_close(c);
}

static const struct back_ops health_back = {
    .ready = health_ready,
    .failed = health_failed,
    .probe_metrics = true,
};

static void probe_start(struct worker *w, const struct back_ops *ops)
{
    struct conn *c = conn_new(w);
    if (c == NULL)
        return;
    c->front_deadline = UINT64_MAX; /* no client, no start-up to wait for */
    back_start(c, ops);
}

void probe_check_start(struct worker *w)
{
    w->probe_status = 1;
    probe_start(w, &check_back);
}

void probe_health_start(struct worker *w)
{
    probe_start(w, &health_back);
}
