/*
 * pgmsg.h - pure framing and readers of the PostgreSQL messages the proxy
 * looks into after the start-up packet (BackendKeyData, Authentication,
 * ErrorResponse, SASL), and CancelRequest parsing and building.
 *
 * Same rules as pgproto.h: caller-owned buffers only, so unit tests and
 * fuzzers drive it with bytes.
 */
#ifndef PGTP_PGMSG_H
#define PGTP_PGMSG_H

#include <stddef.h>
#include <stdint.h>

/* ---- Messages after the StartupMessage: type byte + int32 length ---- */

#define PG_MSG_HDR 5
#define PG_CANCEL_KEY_MIN 4   /* protocol 3.0 keys are 4 bytes */
#define PG_CANCEL_KEY_MAX 256 /* protocol 3.2: variable, at most 256 */
#define PG_AUTH_SASL 10       /* AuthenticationSASL code */

/* CancelRequest: length word, code, backend pid, secret key. Protocol 3.0 keys
 * are 4 bytes; 3.2 (PostgreSQL 18) allows 4..256 (PG_CANCEL_KEY_MIN/MAX
 * below). */
#define PG_CANCEL_FIXED 12u

/*
 * Frame one message at buf. Returns 0 when fewer than 5 bytes are there;
 * otherwise 1 if the length word is >= 4 and 1 + length word <= max_total,
 * else -1. On 1 only, sets *type and *total (1 + length word: header and
 * body); the body may not have arrived yet (compare *total with len).
 */
int pg_msg_header(const uint8_t *buf, size_t len, size_t max_total, uint8_t *type, size_t *total);

/*
 * BackendKeyData ('K'): msg is the whole message (header included), len its
 * size. Fills *pid and key[0..*keylen) (key must hold PG_CANCEL_KEY_MAX).
 * Accepts 4..256-byte keys (3.0 and 3.2). Returns 0, or -1 if malformed.
 */
int pg_parse_backend_key(const uint8_t *msg, size_t len, uint32_t *pid, uint8_t *key,
                         size_t *keylen);

/* CancelRequest packet (as classified by pg_parse_first): pid and key. 0 or -1. */
int pg_parse_cancel(const uint8_t *pkt, size_t len, uint32_t *pid, uint8_t *key, size_t *keylen);

/* Build a CancelRequest for pid/key into out (cap >= 12 + keylen). Returns length or 0. */
size_t pg_build_cancel(uint8_t *out, size_t cap, uint32_t pid, const uint8_t *key, size_t keylen);

/* What the proxy logs of an upstream ErrorResponse. */
struct pg_error_fields {
    char sqlstate[6];  /* 'C': five characters [0-9A-Z] */
    char severity[16]; /* 'V' (not localised), else 'S'; sanitised like log values */
    char message[160]; /* 'M', sanitised and truncated; empty if absent */
};

/*
 * ErrorResponse ('E'): msg is the whole message, len its size (the length
 * word must equal len - 1). Fields are a code byte and a NUL-terminated
 * string each, ended by a single NUL that must be the message's last byte.
 * Returns 0 with out filled, or -1 if malformed or without a valid 'C'
 * field (out is then zeroed or partly filled: do not use it).
 */
int pg_parse_error(const uint8_t *msg, size_t len, struct pg_error_fields *out);

/*
 * Authentication ('R') message: returns its int32 code (0 ok, 10 SASL, ...)
 * or -1 if msg is not a well-formed 'R' message.
 */
int pg_auth_code(const uint8_t *msg, size_t len);

/*
 * AuthenticationSASL without the mechanisms whose names end in "-PLUS":
 * writes the rewritten message (length word fixed) to out and returns its
 * length; returns 0 if msg is not a well-formed AuthenticationSASL (code
 * 10, NUL-terminated names, final empty name at the very end), if no
 * mechanism would be left, or if it does not fit in cap. *stripped counts
 * the names removed.
 */
size_t pg_sasl_strip_plus(const uint8_t *msg, size_t len, uint8_t *out, size_t cap,
                          unsigned *stripped);

/*
 * SASLInitialResponse ('p' whose body starts with a NUL-terminated
 * mechanism name, then int32 length of the initial response, -1 for none,
 * then those bytes): copies the mechanism name into name (sanitised like
 * log values) and returns 0; -1 if malformed (no NUL within the message,
 * response length inconsistent with the message).
 */
int pg_sasl_initial_mechanism(const uint8_t *msg, size_t len, char *name, size_t namecap);

#endif
