/*
 * sdnotify.h - telling systemd (Type=notify) what the process is doing:
 * READY=1 once it serves, RELOADING=1 / READY=1 around a reload,
 * STOPPING=1 when it drains, and a one-line STATUS= for "systemctl status".
 *
 * Every function is a no-op when NOTIFY_SOCKET is not set (not started by
 * systemd). Call them from the main loop's thread (the proxy) or the
 * connector's loop: systemd takes messages from the main pid only.
 */
#ifndef PGTP_SDNOTIFY_H
#define PGTP_SDNOTIFY_H

#include <stdbool.h>

struct route_table;

/* True when NOTIFY_SOCKET is set: the caller may skip building a status. */
bool sdnotify_enabled(void);

/* READY=1 and STATUS="<what>: listening on <listen>; routes: name -> host:port, ...". */
void sdnotify_serving(const char *what, const char *listen, const struct route_table *routes);

/* READY=1 with a STATUS of the caller's (printf format). */
void sdnotify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RELOADING=1 (with MONOTONIC_USEC, as systemd 253+ asks) and STATUS naming why. */
void sdnotify_reloading(const char *why);

/* STOPPING=1 and a STATUS. */
void sdnotify_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STATUS= alone: progress (tunnel state, drain). */
void sdnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
