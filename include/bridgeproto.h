/*
 * bridgeproto.h - the bridge protocol (issue 15), shared by the proxy's
 * bridge listener (bridge.c), its workers (bridgedial.c) and the connector
 * (connector.c). Pure codecs: no sockets, no event loop, fuzzed.
 *
 * A connector inside a private network dials out to the proxy's bridge
 * address. Every TCP connection it opens there starts with a plaintext
 * preamble of BRIDGE_PREAMBLE_LEN bytes:
 *
 *     "PGTPBRG1" (8 bytes)  stream id (8 bytes, big-endian; 0 = control)
 *
 * then a TLS handshake (the connector is the client and verifies the
 * proxy's certificate; ALPN BRIDGE_ALPN). The stream id is a routing hint
 * only (which worker waits for it), never a credential.
 *
 * Control connection (stream id 0), inside TLS: frames of
 *
 *     type (1 byte)  length (4 bytes, big-endian, <= BRIDGE_FRAME_MAX)  payload
 *
 * Every payload is text: "key=value\n" lines (keys [a-z_]+, values printable
 * ASCII or UTF-8 without control characters, each at most BRIDGE_VALUE_MAX
 * bytes). Unknown keys are ignored (later versions may add some).
 *
 *   HELLO   C->P  v=1 id=<bridge id> secret=<secret> name=<connector name>
 *   WELCOME P->C  heartbeat=<seconds> connector=<the proxy's number for it>
 *   REJECT  P->C  reason=<text for the connector's log>; the proxy closes
 *   OPEN    P->C  stream=<16 hex digits> token=<64 hex digits> target=<host:port>
 *   FAIL    C->P  stream=... code=not_allowed|unreachable|timeout|error message=<text>
 *   PING    both  t=<anything>: the other side answers PONG with the same payload
 *   PONG    both
 *   BYE     both  reason=<text>: an orderly close follows (drain, rotation)
 *
 * Either side sends PING every heartbeat seconds; a side that has read
 * nothing for BRIDGE_DEAD_AFTER heartbeats counts the tunnel dead.
 *
 * Data connection (stream id from an OPEN), inside TLS: the connector has
 * already connected to the target; its first bytes are the stream's token
 * (BRIDGE_TOKEN_LEN raw bytes). From then on the connection carries the
 * proxy <-> database bytes both ways, untouched: the proxy's SSLRequest,
 * the database's 'S', and the proxy's own verify-full TLS session with the
 * database. A connector that cannot reach the target sends FAIL on the
 * control connection instead of opening a data connection.
 */
#ifndef PGTP_BRIDGEPROTO_H
#define PGTP_BRIDGEPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BRIDGE_MAGIC "PGTPBRG1"
#define BRIDGE_MAGIC_LEN 8
#define BRIDGE_PREAMBLE_LEN 16
#define BRIDGE_ALPN "pgtp-bridge/1"
#define BRIDGE_VERSION 1
#define BRIDGE_FRAME_HDR 5
#define BRIDGE_FRAME_MAX 4096 /* payload bytes */
#define BRIDGE_VALUE_MAX 1024
#define BRIDGE_TOKEN_LEN 32
#define BRIDGE_HEARTBEAT_S 5 /* default --heartbeat-interval */
#define BRIDGE_DEAD_AFTER 3  /* heartbeats of silence: the tunnel is dead */
#define BRIDGE_ID_MAX 63     /* [A-Za-z0-9_.-]{1,63} */

enum bridge_frame_type {
    BRIDGE_HELLO = 'H',
    BRIDGE_WELCOME = 'W',
    BRIDGE_REJECT = 'R',
    BRIDGE_OPEN = 'O',
    BRIDGE_FAIL = 'F',
    BRIDGE_PING = 'P',
    BRIDGE_PONG = 'Q',
    BRIDGE_BYE = 'B',
};

/* Is t one of the frame types above? */
bool bridge_frame_type_known(uint8_t t);

/* The preamble for stream id into out (BRIDGE_PREAMBLE_LEN bytes). */
void bridge_preamble_encode(uint64_t stream, uint8_t out[BRIDGE_PREAMBLE_LEN]);
/* Parse the first BRIDGE_PREAMBLE_LEN bytes of buf[0..len): 1 with
 * *stream set, 0 if more bytes are needed, -1 if it is not a preamble
 * (the magic differs: someone else knocking). */
int bridge_preamble_decode(const uint8_t *buf, size_t len, uint64_t *stream);

/*
 * One frame at the front of buf[0..len): 1 with *type, *payload (pointing
 * into buf), *plen and *used (header + payload) set; 0 if more bytes are
 * needed; -1 if malformed (unknown type, payload over BRIDGE_FRAME_MAX):
 * close the connection.
 */
int bridge_frame_decode(const uint8_t *buf, size_t len, uint8_t *type, const uint8_t **payload,
                        size_t *plen, size_t *used);

/* A frame builder over a caller's buffer (BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX
 * bytes is always enough). */
struct bridge_frame {
    uint8_t *buf;
    size_t cap, len;
    bool overflow; /* a field did not fit, or a value held a newline or NUL */
};
void bridge_frame_begin(struct bridge_frame *f, uint8_t *buf, size_t cap, uint8_t type);
/* Append "key=value\n". */
void bridge_frame_add(struct bridge_frame *f, const char *key, const char *value);
void bridge_frame_addf(struct bridge_frame *f, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fill in the length: the frame's total size, or -1 on overflow. */
int bridge_frame_end(struct bridge_frame *f);

/*
 * The value of key in a payload of "key=value\n" lines, copied into
 * out[0..cap) NUL-terminated. 1 if found, 0 if absent, -1 if the payload is
 * malformed (a line without '=', a control character, no final newline) or
 * the value does not fit.
 */
int bridge_payload_get(const uint8_t *payload, size_t len, const char *key, char *out, size_t cap);

/* "0123456789abcdef"-style: 16 hex digits <-> stream id. 0 or -1. */
int bridge_stream_parse(const char *text, uint64_t *stream);
void bridge_stream_format(uint64_t stream, char out[17]);
/* 64 hex digits <-> token. 0 or -1. */
int bridge_token_parse(const char *text, uint8_t token[BRIDGE_TOKEN_LEN]);
void bridge_token_format(const uint8_t token[BRIDGE_TOKEN_LEN], char out[2 * BRIDGE_TOKEN_LEN + 1]);

/* A bridge id: [A-Za-z0-9_.-]{1,BRIDGE_ID_MAX}. */
bool bridge_id_valid(const char *id);

/*
 * "host:port", "[v6]:port" -> host (without brackets) and port 1..65535.
 * 0, or -1 if malformed. Used for --allow lists, OPEN targets and
 * --bridge-address.
 */
int bridge_hostport_parse(const char *text, char *host, size_t hostcap, uint16_t *port);

#endif
