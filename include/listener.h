/*
 * listener.h - listening sockets: one per address per worker.
 */
#ifndef PGTP_LISTENER_H
#define PGTP_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

#include <netdb.h>

#include <uv.h>

struct worker; /* worker.h */

#define LISTEN_BACKLOG 511

/* A new connection's descriptor (non-blocking, close-on-exec): the
 * callee owns it. It must not close the listener. */
typedef void (*listener_accept_fn)(void *arg, int fd);

/* A listening socket and its accept loop (listener.c explains why it is
 * not uv_listen). All-zero is a valid closed listener. */
struct listener {
    uv_poll_t poll;   /* readable: connections are waiting */
    uv_timer_t pause; /* out of descriptors: polling resumes when it fires */
    int fd;
    bool open;        /* handles initialised: listener_close must run */
    unsigned closing; /* handles closed but not yet called back: l in use */
    listener_accept_fn on_accept;
    void *arg;
    char name[24]; /* "worker=N" or "listener=admin", for the log */
};

/*
 * Listen on the bound socket fd (backlog LISTEN_BACKLOG) in loop and call
 * cb for each connection. Takes fd, even on failure. Set l->name first.
 * Returns 0 or a negative libuv error; on failure the handles are already
 * being closed (the loop must run once more, see closing).
 */
int listener_open(uv_loop_t *loop, struct listener *l, int fd, listener_accept_fn cb, void *arg);
/* Stop accepting, close the socket (queued clients are reset) and close
 * the handles; l may be reused once l->closing is back to 0. Idempotent. */
void listener_close(struct listener *l);

/*
 * Resolve the listen address once (host NULL: all IPv4 and IPv6 addresses)
 * and check that nobody listens there yet: SO_REUSEPORT, which lets our
 * workers share a port, would otherwise let us share it with a stranger.
 * Returns 0 or -1 with err filled. Free *res with freeaddrinfo.
 */
int listener_resolve(const char *host, unsigned port, struct addrinfo **res, char *err,
                     size_t errlen);

/*
 * Open, bind (SO_REUSEPORT) and listen on every address of res in w's loop;
 * connections go to front_accept (front.h).
 * An IPv6 address that cannot be bound is skipped when all_addrs (no
 * --server-host given) so that IPv4-only machines work. Fills bound with
 * "addr:port,..." Returns 0 or -1 with err filled.
 */
int listener_start(struct worker *w, const struct addrinfo *res, bool all_addrs, char *bound,
                   size_t boundlen, char *err, size_t errlen);
/* The same for several resolved ports (server-port and each route's
 * listen-port): res[0..nres-1], every address of each. */
int listener_start_many(struct worker *w, const struct addrinfo *const *res, size_t nres,
                        bool all_addrs, char *bound, size_t boundlen, char *err, size_t errlen);
/* Close every listener of w (a draining worker accepts no more). */
void listener_stop(struct worker *w);

#endif
