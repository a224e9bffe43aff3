/*
 * adminsess.h - the admin endpoint's /sessions paths, on the main thread:
 * routing, protection, asking the workers (sessions.h) and the answer.
 */
#ifndef PGTP_ADMINSESS_H
#define PGTP_ADMINSESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "sessions.h"

struct worker;

/*
 * What a /sessions request asks, from its method and path (no query
 * string): 0 and *op, *id; or the status to answer at once: 404 (a path
 * that is not ours, or a malformed id), 405 (*allow says which methods).
 * Pure. GET /sessions, GET /sessions/ID (HEAD too), POST
 * /sessions/ID/terminate.
 */
int adminsess_route(const char *method, const char *path, enum sess_op *op, uint64_t *id,
                    const char **allow);
/* Is path one of ours (/sessions or below)? */
bool adminsess_path(const char *path);

/* An answer for the admin connection `owner` (admin.c). body is malloc'd
 * (the callee owns it), or NULL with text a static string. */
struct adminsess_reply {
    int status;
    const char *text;
    char *body;
    size_t len;
    const char *ctype, *extra;
};
typedef void (*adminsess_reply_fn)(void *owner, struct adminsess_reply *r);

/* Main thread, once the workers exist: the loop, the workers to ask, the
 * token file (NULL: none). 0, or -1 with err (an unreadable or short
 * token refuses the start). */
int adminsess_start(uv_loop_t *loop, struct worker *workers, unsigned nworkers,
                    const char *token_file, adminsess_reply_fn reply, char *err, size_t errlen);
/* SIGHUP: read the token file again; a bad one keeps the old token. */
void adminsess_reload(void);
/* The admin endpoint stops: pending requests are dropped when answered. */
void adminsess_stop(void);

/*
 * A request for a /sessions path: either answered at once (*r filled,
 * returns NULL), or sent to the workers: the request, which reply() will
 * answer later unless adminsess_detach is called first (the admin
 * connection closed).
 */
struct sess_req *adminsess_request(void *owner, const char *method, const char *path,
                                   const char *head, size_t hlen, const struct sockaddr *peer,
                                   struct adminsess_reply *r);
void adminsess_detach(struct sess_req *req);

#endif
