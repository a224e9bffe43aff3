/*
 * pgauth.h - the authentication messages of the PostgreSQL protocol that
 * the proxy reads and writes when it authenticates itself (auth.c):
 * Authentication* ('R') from the server, PasswordMessage, SASLInitialResponse
 * and SASLResponse ('p') from the client, and builders for each.
 *
 * Pure: caller-owned buffers, pointers into the message given, bounded;
 * fuzzed by tests/fuzz/fuzz_pgauth.c. msg is always one whole message
 * (type byte and length word included; the length word must equal
 * len - 1).
 */
#ifndef PGTP_PGAUTH_H
#define PGTP_PGAUTH_H

#include <stddef.h>
#include <stdint.h>

enum pg_auth_req {
    PG_AUTH_OK = 0,
    PG_AUTH_CLEARTEXT = 3,
    PG_AUTH_MD5 = 5,
    PG_AUTH_SASL_START = 10,
    PG_AUTH_SASL_CONTINUE = 11,
    PG_AUTH_SASL_FINAL = 12,
};

/* An 'R' message: its code and what follows it (the MD5 salt, the SASL
 * mechanism list, SASL data). 0, or -1 if malformed. */
int pg_auth_parse(const uint8_t *msg, size_t len, int *code, const uint8_t **data, size_t *datalen);
/* An 'R' message of code with data (may be NULL when datalen is 0) into
 * out. Its length, or 0 if it does not fit. */
size_t pg_auth_build(uint8_t *out, size_t cap, int code, const void *data, size_t datalen);

/* PasswordMessage: a 'p' whose body is one NUL-terminated string, the NUL
 * its last byte. The password (NUL-terminated inside msg) and its length;
 * 0, or -1 if malformed. */
int pg_password_parse(const uint8_t *msg, size_t len, const char **password, size_t *pwlen);
/* SASLInitialResponse: mechanism (NUL-terminated inside msg) and the
 * initial response (datalen 0 and data NULL when its length is -1).
 * 0, or -1 if malformed. */
int pg_sasl_initial_parse(const uint8_t *msg, size_t len, const char **mech, const uint8_t **data,
                          size_t *datalen);
/* SASLResponse: the body. 0, or -1 if not a 'p' message. */
int pg_sasl_response_parse(const uint8_t *msg, size_t len, const uint8_t **data, size_t *datalen);

/* A 'p' message of the given body bytes (a PasswordMessage's body must end
 * with its NUL; a SASLResponse's is the data). Its length, or 0. */
size_t pg_p_build(uint8_t *out, size_t cap, const void *body, size_t bodylen);
/* SASLInitialResponse for mech with data. Its length, or 0. */
size_t pg_sasl_initial_build(uint8_t *out, size_t cap, const char *mech, const void *data,
                             size_t datalen);

#endif
