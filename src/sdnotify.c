/*
 * sdnotify.c - readiness and state for systemd through libsystemd's
 * sd_notify(3) (Debian libsystemd-dev; libsystemd0 is on every Debian
 * system, apt itself depends on it). The datagram protocol is small enough
 * to write ourselves, but the library is the reference implementation: it
 * handles abstract socket names, vsock addresses and credentials the way
 * every systemd version expects, and it is maintained with systemd.
 *
 * Owns nothing but a "warned once" flag. Never fails the caller: a message
 * that cannot be sent is logged once (the unit then times out starting,
 * which the log line explains) and the process goes on serving.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "route.h"
#include "sdnotify.h"

#define STATUS_MAX 480 /* "systemctl status" shows one line; keep it short */

bool sdnotify_enabled(void)
{
    const char *s = getenv("NOTIFY_SOCKET");
    return s != NULL && s[0] != '\0';
}

/* STATUS must be one line: newlines would start new assignments. */
static void one_line(char *s)
{
    for (; *s != '\0'; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

/* Send "<state>\nSTATUS=<status>" (state may be empty). */
static void send_state(const char *state, const char *status)
{
    static atomic_bool warned;
    char msg[STATUS_MAX + 128];
    snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", state, state[0] != '\0' ? "\n" : "", status);
    int r = sd_notify(0, msg);
    if (r > 0) {
        log_debug("event=sd_notify state=\"%s\"", state[0] != '\0' ? state : "STATUS");
        return;
    }
    if (r < 0 && !atomic_exchange(&warned, true)) {
        char q[300];
        log_warn("event=sd_notify_failed socket=\"%s\" reason=\"%s\" hint=\"systemd will not "
                 "see the proxy as ready (Type=notify): check NOTIFY_SOCKET, or use Type=exec\"",
                 log_escape(getenv("NOTIFY_SOCKET"), q, sizeof(q)), strerror(-r));
    }
}

static void send_statusv(const char *state, const char *fmt, va_list ap)
{
    char status[STATUS_MAX];
    vsnprintf(status, sizeof(status), fmt, ap);
    one_line(status);
    send_state(state, status);
}

void sdnotify_ready(const char *fmt, ...)
{
    if (!sdnotify_enabled())
        return;
    va_list ap;
    va_start(ap, fmt);
    send_statusv("READY=1", fmt, ap);
    va_end(ap);
}

void sdnotify_stopping(const char *fmt, ...)
{
    if (!sdnotify_enabled())
        return;
    va_list ap;
    va_start(ap, fmt);
    send_statusv("STOPPING=1", fmt, ap);
    va_end(ap);
}

void sdnotify_status(const char *fmt, ...)
{
    if (!sdnotify_enabled())
        return;
    va_list ap;
    va_start(ap, fmt);
    send_statusv("", fmt, ap);
    va_end(ap);
}

void sdnotify_reloading(const char *why)
{
    if (!sdnotify_enabled())
        return;
    struct timespec ts;
    char state[64], status[128];
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* Type=notify-reload (systemd 253) matches RELOADING=1 to the reload
     * it asked for by this timestamp; older versions ignore it. */
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    snprintf(status, sizeof(status), "reloading (%s)", why);
    send_state(state, status);
}

void sdnotify_serving(const char *what, const char *listen, const struct route_table *routes)
{
    if (!sdnotify_enabled())
        return;
    char status[STATUS_MAX];
    size_t n =
        (size_t)snprintf(status, sizeof(status), "%s: listening on %s; routes:", what, listen);
    for (size_t i = 0; routes != NULL && i < routes->n && n < sizeof(status); i++) {
        const struct route *r = routes->all[i];
        n += (size_t)snprintf(status + n, sizeof(status) - n, "%s %s -> %s:%u", i ? "," : "",
                              r->name, r->host, r->port);
    }
    if ((routes == NULL || routes->n == 0) && n < sizeof(status))
        snprintf(status + n, sizeof(status) - n, " none (bridges only)");
    one_line(status);
    send_state("READY=1", status);
}
