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

/* The messages after the StartupMessage (and CancelRequest), once here. */
#include "pgmsg.h"

/* Bounds on the first packet, as PostgreSQL's own (MAX_STARTUP_PACKET_LENGTH). */
#define PG_STARTUP_MIN 8
#define PG_STARTUP_MAX 10000

#define PG_SSLREQUEST_CODE 80877103u
#define PG_GSSENCREQUEST_CODE 80877104u
#define PG_CANCELREQUEST_CODE 80877102u
/* pg-tls-proxy's own: a cancel handed between instances (peermsg.h). */
#define PG_PEERCANCEL_CODE ((1234u << 16) | 7070u)

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
    PG_FIRST_PEER_CANCEL,    /* PeerCancelRequest (peermsg.h): another instance's */
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

/* The raw value of parameter name in a StartupMessage pkt (length word
 * first, as classified by pg_parse_first), copied to out with its NUL.
 * 0, or -1 if absent, malformed or longer than cap - 1. */
int pg_startup_param(const uint8_t *pkt, size_t len, const char *name, char *out, size_t cap);

#endif
