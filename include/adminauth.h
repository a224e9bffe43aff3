/*
 * adminauth.h - who may use the admin endpoint's /sessions paths: the
 * decision (pure, unit-tested with any address) and the bearer token read
 * from --admin-token-file.
 */
#ifndef PGTP_ADMINAUTH_H
#define PGTP_ADMINAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ADMIN_TOKEN_MIN 16   /* bytes: shorter tokens are refused */
#define ADMIN_TOKEN_MAX 1024 /* bytes: the request head is 4 KB at most */

/* The configured token, kept as its SHA-256: compared in constant time
 * whatever the length of what a client sends; the token itself is wiped. */
struct admin_token {
    bool set;
    uint8_t digest[32];
};

/* Is addr a loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)? */
bool adminauth_is_loopback(const struct sockaddr *addr);

/*
 * May this request see and end sessions? authorization: the request's
 * Authorization header value, or NULL when absent (or sent twice).
 * With a token configured, every peer, loopback included, must send
 * "Bearer TOKEN" (a pod's containers and a host's users share loopback:
 * an operator who set a token wants it asked): 200, else 401. Without
 * one, loopback peers may: 200; any other peer: 403.
 */
int adminauth_decide(const struct sockaddr *peer, const struct admin_token *token,
                     const char *authorization);

/* Read the token from path: the file's content without trailing newline
 * or spaces, ADMIN_TOKEN_MIN..ADMIN_TOKEN_MAX bytes of visible ASCII.
 * 0, or -1 with err (never the token's bytes). */
int adminauth_load(const char *path, struct admin_token *out, char *err, size_t errlen);

#endif
