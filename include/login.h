/*
 * login.h - the login phase: from the forwarded StartupMessage to the
 * upstream's ReadyForQuery, both directions framed into whole messages and
 * looked at before they are passed on; with --auth-mode password or scram
 * the proxy authenticates the client itself (auth.h: its states below).
 *
 *   NONE --join--> STARTUP --AuthenticationSASL--> SASL --SASLInitialResponse--> SASL_CHOSEN
 *   STARTUP, SASL, SASL_CHOSEN --ReadyForQuery--> READY
 *   STARTUP, SASL, SASL_CHOSEN --unframeable message--> UNWATCHED
 *   password: STARTUP --server asks--> ASK_PASSWORD --password--> BACK_AUTH
 *   scram:    NONE --join--> FRONT_SASL --proof checked--> BACK_AUTH
 *   BACK_AUTH <--> KDF;  BACK_AUTH --AuthenticationOk--> AUTHED --ReadyForQuery--> READY
 */
#ifndef PGTP_LOGIN_H
#define PGTP_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct leg;

enum login_state {
    LOGIN_NONE,         /* not joined yet */
    LOGIN_STARTUP,      /* StartupMessage forwarded: watching */
    LOGIN_SASL,         /* the upstream offered SASL: the client's mechanism is checked */
    LOGIN_SASL_CHOSEN,  /* the client chose one */
    LOGIN_READY,        /* ReadyForQuery: the login succeeded; bytes pass as they are */
    LOGIN_UNWATCHED,    /* the watch stopped before it could tell (unframeable) */
    LOGIN_FRONT_SASL,   /* scram: the proxy is the client's SCRAM server */
    LOGIN_ASK_PASSWORD, /* password: the client was asked for its password */
    LOGIN_BACK_AUTH,    /* the proxy logs in upstream itself */
    LOGIN_KDF,          /* password: PBKDF2 on the thread pool; both legs wait */
    LOGIN_AUTHED,       /* the server said AuthenticationOk to the proxy */
    LOGIN_STATES
};

#define LOGIN_MSG_MAX ((size_t)64 * 1024) /* a bigger start-up message ends the watch */

/* Bytes of one direction not yet framed into a whole message. */
struct login_buf {
    uint8_t *buf;
    size_t len;
};

/* The legs are joined: start watching. May end the connection. */
bool login_start(struct conn *c);
/* Plaintext from one leg while watching: framed, looked at, passed on.
 * 0, or -1 when the connection is ending (the caller returns). */
int login_input(struct conn *c, struct leg *from, const uint8_t *buf, size_t len);
/* Free the buffers (idempotent). */
void login_free(struct conn *c);
/* Between the join and ReadyForQuery, while messages are framed. */
bool login_watching(const struct conn *c);
/* Frame and handle what both directions hold (after a state change that
 * lets held messages through: the end of KDF). 0 or -1 as login_input. */
int login_process(struct conn *c);

/* Every change goes through login_set_state: logged at debug level, an
 * impossible one refused (the connection ends with XX000, false returned:
 * return right after it). */
bool login_set_state(struct conn *c, enum login_state to, const char *why);
bool login_move_legal(enum login_state from, enum login_state to);
const char *login_state_name(enum login_state s);

#endif
