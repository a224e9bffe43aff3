/*
 * bridge.h - the proxy's side of bridge mode (issue 15): the bridge
 * listener, its own thread, the connectors online per bridge id, and what
 * workers ask of it. The protocol is bridgeproto.h's.
 *
 * Threads: bridge.c runs one event loop on its own thread. It accepts every
 * connection on --bridge-listen, reads the preamble, and either runs a
 * control connection itself (TLS, HELLO checked against --bridges-file,
 * heartbeats, OPEN and FAIL) or hands a data connection's descriptor to
 * the worker whose session waits for that stream (worker_bridge_post).
 * Workers never touch a control connection: they ask with bridge_open and
 * hear back through bridge_dial_result on their own thread.
 *
 * Worker side (bridgedial.c): a session whose route has a bridge
 * (--client-bridge) dials through it: a stream id and a random token,
 * bridge_open, then on the data connection the outer TLS as server (the
 * bridge certificate), the token, and from there the normal back leg
 * (SSLRequest, verify-full TLS with the database, login) over
 * leg_bridge_transport: TLS inside TLS.
 */
#ifndef PGTP_BRIDGE_H
#define PGTP_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "bridgeproto.h"

struct config;
struct conn;
struct worker;

/* ---- main thread ---- */

/*
 * Start the bridge thread if cfg->bridge_listen is set: load
 * cfg->bridges_file, bind the listener, make the TLS context (the bridge
 * certificate, else the front one). workers[0..n) receive data
 * connections. 0 (also when bridge mode is off), or -1 with err filled.
 */
int bridge_start(const struct config *cfg, struct worker *workers, unsigned nworkers, char *err,
                 size_t errlen);
/*
 * SIGHUP: re-read the bridges file (and the certificate). Connectors whose
 * bridge was removed or whose secret changed are told BYE and closed at
 * once. A file that does not load keeps the old one (logged). 0 or -1.
 */
int bridge_reload(const struct config *cfg, char *err, size_t errlen);
/* Drain: stop accepting, BYE to every connector, close. Returns at once. */
void bridge_stop(void);
/* After the workers have stopped: join the thread, free everything. */
void bridge_join(void);
/* Is bridge mode on (the thread running)? */
bool bridge_enabled(void);

/* ---- worker threads ---- */

/*
 * Ask an online connector of bridge id for a stream to host:port; the
 * answer comes back later through bridge_dial_result on w's thread: a
 * descriptor, or a failure (no connector online, FAIL from the connector,
 * no data connection in time). Never calls back before returning.
 */
void bridge_open(struct worker *w, uint64_t stream, const uint8_t token[BRIDGE_TOKEN_LEN],
                 const char *bridge_id, const char *host, unsigned port);
/* The session gave up on the stream (closed, timed out): a data connection
 * that still comes for it is closed. Any thread. */
void bridge_forget(uint64_t stream);
/*
 * The TLS context of data connections, where this proxy is the server (the
 * bridge certificate, else the front one; built by bridge.c, swapped on
 * reload): a new reference (SSL_CTX_free it), or NULL when bridge mode is
 * off. Any thread. bridgedial.c takes one per stream, for SSL_new, and runs
 * it as server over the data connection (leg_bridge.c). Worth setting on
 * it: SSL_MODE_RELEASE_BUFFERS (idle streams give their record buffers
 * back), ALPN BRIDGE_ALPN selected, SSL_CTX_set_num_tickets(ctx, 0) (a data
 * connection is never resumed: tickets would be bytes for nothing).
 */
SSL_CTX *bridge_ssl_ctx(void);

/* What the bridge thread tells a worker about one stream. */
struct bridge_result {
    struct bridge_result *next;
    uint64_t stream;
    int fd;         /* the data connection (non-blocking), or -1: failed */
    uint8_t *extra; /* bytes read after the preamble (the ClientHello); malloc'd */
    size_t extra_len;
    char connector[64]; /* which connector carries it ("name#n"), for the logs */
    /* fd < 0: why, for the client (FATAL sqlstate message) and the metrics */
    char sqlstate[6];
    char label[24]; /* no_connector, not_allowed, unreachable, timeout, error */
    char msg[512];
};

/* bridge thread -> worker w: queue r (w's async wakes it). Any thread. */
void worker_bridge_post(struct worker *w, struct bridge_result *r);
/* On w's thread: deliver r to the session waiting for r->stream (or close
 * r->fd if none waits any more). Takes r. (bridgedial.c; worker_bridge_post
 * is worker.c's.) */
void bridge_dial_result(struct worker *w, struct bridge_result *r);
/* Free r, closing r->fd if still set. Any thread (defined in bridgedial.c). */
void bridge_result_free(struct bridge_result *r);

#endif
