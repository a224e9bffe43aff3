/*
 * healthcheck.h - the `pg-tls-proxy healthcheck [HOST:PORT]` subcommand:
 * the container image's HEALTHCHECK without a shell. GET /healthz on the
 * admin endpoint (or the connector's health endpoint); exit 0 on 200.
 */
#ifndef PGTP_HEALTHCHECK_H
#define PGTP_HEALTHCHECK_H

#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

/* How long one probe may take in all (connect, request, status line): below
 * the Dockerfile's HEALTHCHECK --timeout, so the check reports its own
 * reason instead of being killed. */
#define HEALTHCHECK_TIMEOUT_MS 3000

/*
 * The address to probe: "host:port", "[v6]:port" or "port" as
 * --admin-address takes it, with a wildcard (0.0.0.0, ::) replaced by the
 * loopback address of its family (a wildcard listener answers there, and a
 * connect to 0.0.0.0 is not portable). 0, or -1 with err filled.
 */
int healthcheck_target(const char *addr, struct sockaddr_storage *ss, char *err, size_t errlen);

/*
 * One probe of ss: connect, "GET /healthz HTTP/1.0", read the status line,
 * all within timeout_ms. 0 on status 200; -1 with why filled ("connect to
 * 127.0.0.1:9187: Connection refused", "status 503", "no answer within
 * 3000 ms") otherwise. Blocking sockets and poll(2): a one-shot process
 * needs no event loop.
 */
int healthcheck_probe(const struct sockaddr_storage *ss, int timeout_ms, char *why, size_t whylen);

/*
 * argv[0] is "healthcheck". The address is argv[1] if given, else
 * PG_TLS_PROXY_ADMIN_ADDRESS, else PG_TLS_PROXY_HEALTH_ADDRESS (the
 * connector's) from envp. Neither set: nothing to probe, exit 0 (the image
 * without an admin endpoint stays "healthy", as it was with the shell
 * check). Returns the exit status: 0 healthy, 1 not (one line on err
 * saying why), 2 usage.
 */
int healthcheck_main(int argc, char **argv, char **envp, FILE *out, FILE *err);

#endif
