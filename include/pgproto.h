/*
 * pgproto.h - pure parsers and builders for the PostgreSQL start-up phase.
 *
 * No libuv, no sockets, no allocation: every function works on caller-owned
 * byte buffers so that unit tests and fuzzers can drive it directly.
 */
#ifndef PGTP_PGPROTO_H
#define PGTP_PGPROTO_H

#include <stddef.h>
#include <stdint.h>

/* Bounds on the first packet, as PostgreSQL's own (MAX_STARTUP_PACKET_LENGTH). */
#define PG_STARTUP_MIN 8
#define PG_STARTUP_MAX 10000

#define PG_SSLREQUEST_CODE 80877103u
#define PG_GSSENCREQUEST_CODE 80877104u
#define PG_CANCELREQUEST_CODE 80877102u

/* First byte of a TLS record carrying a handshake (PG17 direct TLS). */
#define PG_TLS_HANDSHAKE_BYTE 0x16

/* Room for a logged start-up parameter value, including the NUL. */
#define PG_LOGVAL_MAX 64

enum pg_first_kind {
    PG_FIRST_INCOMPLETE = 0, /* need more bytes; nothing is wrong yet */
    PG_FIRST_SSLREQUEST,     /* exactly 8 bytes, code 80877103 */
    PG_FIRST_GSSENCREQUEST,  /* exactly 8 bytes, code 80877104 */
    PG_FIRST_CANCEL,         /* CancelRequest: 16 bytes (3.0) or 12 + key 4..256 (3.2) */
    PG_FIRST_STARTUP,        /* StartupMessage, protocol 3.x */
    PG_FIRST_DIRECT_TLS,     /* first byte 0x16: a TLS ClientHello */
    PG_FIRST_INVALID,        /* malformed; err says why */
};

struct pg_startup_info {
    uint32_t proto; /* (major << 16) | minor, as on the wire */
    /* Sanitised copies for logging only (printable ASCII, no '"' or '\\',
     * truncated to PG_LOGVAL_MAX - 1). Empty when absent. The packet itself
     * is forwarded unchanged. */
    char user[PG_LOGVAL_MAX];
    char database[PG_LOGVAL_MAX];
    char application_name[PG_LOGVAL_MAX];
    unsigned nparams; /* name/value pairs seen */
};

struct pg_first {
    enum pg_first_kind kind;
    size_t len;    /* packet length incl. the 4-byte length word (0 for DIRECT_TLS) */
    uint32_t code; /* request code / protocol word as read */
    struct pg_startup_info startup; /* valid when kind == PG_FIRST_STARTUP */
};

/*
 * Classify the first packet a client sends (plaintext, or the first packet
 * inside TLS). buf holds len bytes received so far; only the first packet is
 * looked at, bytes beyond out->len are the caller's business (pipelining).
 * Returns out->kind. On PG_FIRST_INVALID, err (if non-NULL) receives a
 * human-readable reason. Never reads past buf + len.
 *
 * Rules: length word must be in [PG_STARTUP_MIN, PG_STARTUP_MAX]; SSLRequest
 * and GSSENCRequest must be exactly 8 bytes; a StartupMessage must have major
 * version 3, a well-formed list of NUL-terminated name/value pairs ending
 * with a single NUL exactly at the end of the packet. Any minor version is
 * passed through (3.0, 3.2, ...). Protocol major 1234 with an unknown minor
 * is INVALID ("unsupported request code"). A first byte of 0x16 is
 * DIRECT_TLS whatever follows.
 */
enum pg_first_kind pg_parse_first(const uint8_t *buf, size_t len, struct pg_first *out, char *err,
                                  size_t errlen);

/* Write the 8-byte SSLRequest into out. */
void pg_build_sslrequest(uint8_t out[8]);

/*
 * Build an ErrorResponse ('E') with fields S and V (severity), C (sqlstate),
 * M (message) and, when hint is non-NULL and non-empty, H (hint), then the
 * terminating NUL. Returns the total length written, or 0 if it does not fit
 * in cap or an argument is invalid (sqlstate must be 5 chars). Never writes
 * past out + cap.
 */
size_t pg_build_error(uint8_t *out, size_t cap, const char *severity, const char *sqlstate,
                      const char *message, const char *hint);

/* ---- Messages after the StartupMessage: type byte + int32 length ---- */

#define PG_MSG_HDR 5
#define PG_CANCEL_KEY_MIN 4   /* protocol 3.0 keys are 4 bytes */
#define PG_CANCEL_KEY_MAX 256 /* protocol 3.2: variable, at most 256 */
#define PG_AUTH_SASL 10       /* AuthenticationSASL code */

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
