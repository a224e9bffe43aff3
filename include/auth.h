/*
 * auth.h - the login when the proxy authenticates the client itself
 * (--auth-mode password or scram; login.c frames the messages and hands
 * them here while the session's route says so).
 *
 * password: the StartupMessage goes upstream as in passthrough; when the
 *   server asks for a password (cleartext, md5 or SASL) the client is asked
 *   for it in cleartext (AuthenticationCleartextPassword: inside TLS, or a
 *   sidecar's plaintext loopback), and the proxy answers the server itself:
 *   SCRAM-SHA-256-PLUS bound to the upstream's certificate when offered.
 *   PBKDF2 runs on libuv's thread pool, never on the event loop, and a
 *   SaltedPassword the server accepted is cached (kdfcache.h).
 * scram: the StartupMessage is held; the proxy is the SCRAM server to the
 *   client (SCRAM-SHA-256-PLUS bound to its own certificate, and
 *   SCRAM-SHA-256) against --auth-file's verifier (a mock one for an unknown
 *   user), recovers the ClientKey from the proof, then forwards the
 *   StartupMessage and logs in upstream with that key. The client hears
 *   SASLFinal + AuthenticationOk only once the server said AuthenticationOk.
 *
 *   password: STARTUP --server asks--> ASK_PASSWORD --password--> BACK_AUTH
 *   scram:    FRONT_SASL --proof checked--> BACK_AUTH
 *   BACK_AUTH <--> KDF (password mode, PBKDF2 off the loop)
 *   BACK_AUTH --AuthenticationOk--> AUTHED --ReadyForQuery--> READY
 *
 * Every failure is a FATAL ErrorResponse with PostgreSQL's own text where
 * PostgreSQL would have sent one (28P01 "password authentication failed
 * for user ..."), else the proxy's naming cause and fix; counted in
 * pg_tls_proxy_login_failures_total{sqlstate,reason,route}. No password, key or
 * proof is ever logged; each is wiped once used.
 */
#ifndef PGTP_AUTH_H
#define PGTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;

/* The session's route terminates authentication (not passthrough). */
bool auth_active(const struct conn *c);
/* At the join, before the StartupMessage is forwarded: true when auth
 * keeps it (scram mode) and the caller must not forward it. */
bool auth_holds_startup(const struct conn *c);
/* The legs are joined (login state NONE): start. 0, or -1 when the
 * connection is ending. */
int auth_start(struct conn *c);
/* A whole message while the login is watched: 1 when auth does not take
 * it (login.c's passthrough path runs), 0 when taken, -1 when the
 * connection is ending. */
int auth_back_msg(struct conn *c, const uint8_t *m, size_t n);
int auth_front_msg(struct conn *c, const uint8_t *m, size_t n);
/* Wipe and free the session's auth state (idempotent). */
void auth_free(struct conn *c);

#endif
