/*
 * peermsg.h - the PeerCancelRequest: a client's CancelRequest that one
 * pg-tls-proxy instance hands to the instance owning the key (peering,
 * issue 14), authenticated with a secret every instance shares.
 *
 * On the wire, inside TLS on the owner's client port, in place of a
 * start-up packet (all integers big-endian):
 *
 *   0   u32  length of the whole packet (PEERMSG_FIXED + n)
 *   4   u32  PEERMSG_CODE (1234.7070: a request code PostgreSQL does not use)
 *   8   u8   version (PEERMSG_VERSION)
 *   9   u8   hops left: the receiver drops a message with 0
 *   10  u8   the peer-id of the instance the client sent its cancel to
 *   11  u8   0
 *   12  u64  when that instance received it: Unix time in milliseconds
 *   20  16   nonce (random): a replay of the same message is dropped
 *   36  u16  n, the CancelRequest's length (16..268)
 *   38  n    the client's CancelRequest, unchanged (the proxy's key)
 *   38+n 32  HMAC-SHA256 with the shared secret over bytes 0..38+n
 *
 * Pure (no sockets, no logging) except for the clock the caller passes in
 * and the replay table the caller owns, so unit tests and the fuzzer drive
 * it with bytes.
 */
#ifndef PGTP_PEERMSG_H
#define PGTP_PEERMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgproto.h"

#define PEERMSG_CODE PG_PEERCANCEL_CODE
#define PEERMSG_VERSION 1
#define PEERMSG_NONCE 16
#define PEERMSG_MAC 32
#define PEERMSG_HDR 38 /* everything before the CancelRequest */
#define PEERMSG_FIXED (PEERMSG_HDR + PEERMSG_MAC)
#define PEERMSG_CANCEL_MIN (PG_CANCEL_FIXED + PG_CANCEL_KEY_MIN)
#define PEERMSG_CANCEL_MAX (PG_CANCEL_FIXED + PG_CANCEL_KEY_MAX)
#define PEERMSG_MAX (PEERMSG_FIXED + PEERMSG_CANCEL_MAX)
/* Hops a message starts with: one to the owner, one spare for an instance
 * whose [peers] list lags behind (it hands it on once more). */
#define PEERMSG_HOPS 2
/* A message whose timestamp is further than this from the receiver's
 * clock, either way, is dropped (instances run NTP; a cancel is useless
 * after seconds anyway). */
#define PEERMSG_WINDOW_MS 30000
/* The shortest shared secret accepted (peer-secret-file). */
#define PEERMSG_SECRET_MIN 32
/* Nonces remembered: at most this many authentic messages within two
 * windows are told apart from replays. (Every one travels inside TLS: a
 * replay needs a message an instance already sent; this is the second
 * line of defence.) */
#define PEERMSG_REPLAY_SLOTS 4096

struct peermsg {
    uint8_t hops;
    uint8_t origin; /* peer-id of the first instance */
    uint64_t ts_ms;
    uint8_t nonce[PEERMSG_NONCE];
    size_t cancel_len;
    uint8_t cancel[PEERMSG_CANCEL_MAX]; /* the client's CancelRequest */
    uint32_t pid;                       /* parsed from it */
    size_t keylen;
    uint8_t key[PG_CANCEL_KEY_MAX];
};

enum peermsg_result {
    PEERMSG_OK = 0,
    PEERMSG_MALFORMED, /* not a well-formed PeerCancelRequest */
    PEERMSG_BAD_MAC,   /* not made with our secret */
    PEERMSG_STALE,     /* timestamp outside PEERMSG_WINDOW_MS */
    PEERMSG_REPLAYED,  /* this nonce was seen within the window */
    PEERMSG_NO_HOPS,   /* hops left is 0 */
};
const char *peermsg_result_name(enum peermsg_result r);

/* Nonces seen recently: a ring, zeroed to start. Not locked: the caller's. */
struct peermsg_replay {
    struct {
        uint8_t nonce[PEERMSG_NONCE];
        uint64_t ts_ms; /* 0: empty */
    } slot[PEERMSG_REPLAY_SLOTS];
    size_t next;
};

/*
 * Build m (hops, origin, ts_ms, nonce, cancel[0..cancel_len)) into out,
 * signed with secret. Returns the length, or 0 if cap is too small, the
 * cancel is not a CancelRequest or the secret is shorter than
 * PEERMSG_SECRET_MIN.
 */
size_t peermsg_build(uint8_t *out, size_t cap, const struct peermsg *m, const uint8_t *secret,
                     size_t secretlen);
/* The structure only (no secret, no clock): fills *m, pid and key too.
 * PEERMSG_OK or PEERMSG_MALFORMED. Never reads past pkt + len. */
enum peermsg_result peermsg_parse(const uint8_t *pkt, size_t len, struct peermsg *m);
/*
 * Everything a receiver checks, in this order: structure, MAC (constant
 * time), hops, timestamp within PEERMSG_WINDOW_MS of now_ms, nonce not in
 * rp (then it is recorded; rp may be NULL). PEERMSG_OK with *m filled.
 * *m is wiped on any other result.
 */
enum peermsg_result peermsg_verify(const uint8_t *pkt, size_t len, const uint8_t *secret,
                                   size_t secretlen, uint64_t now_ms, struct peermsg_replay *rp,
                                   struct peermsg *m);

#endif
