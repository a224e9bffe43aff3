/*
 * admin.h - the admin HTTP endpoint (--admin-address): /metrics, /healthz,
 * /readyz over plain HTTP/1.x, served by the main thread's loop.
 */
#ifndef PGTP_ADMIN_H
#define PGTP_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

/*
 * Listen on "host:port" ("[v6]:port" for IPv6; a bare port means
 * 127.0.0.1). /readyz answers 200 while every route of the running
 * configuration (metrics_routes_current) had a verified upstream TLS
 * handshake within the last ready_window_s seconds, else 503, with a line
 * per route; /readyz/NAME answers for one route (404 if none has that
 * name). Before any routes are published: any upstream's success counts.
 * Returns 0, or -1 with err filled ("--admin-address \"x\": ...").
 */
int admin_start(uv_loop_t *loop, const char *address, unsigned ready_window_s, char *err,
                size_t errlen);
/* Check the syntax of an --admin-address value without binding anything
 * (start-up validates every option before it listens). 0, or -1 and err. */
int admin_check_address(const char *address, char *err, size_t errlen);
/* /healthz answers 200 while true (the proxy is listening), else 503. */
void admin_set_listening(bool listening);
struct worker;
/* /sessions: once the workers exist (adminsess.h). 0, or -1 and err. */
int admin_sessions_start(struct worker *workers, unsigned nworkers, const char *token_file,
                         char *err, size_t errlen);
/* Close the listener and every admin connection (handles closed via uv_close). */
void admin_stop(void);

#endif
