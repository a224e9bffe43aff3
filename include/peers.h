/*
 * peers.h - this instance among several behind one load balancer
 * (--peer-id, the config file's [peers], --peer-secret-file,
 * --peer-ca-path): which instance owns a cancel key, the route to each
 * other instance, and the signing and checking of PeerCancelRequests
 * (peermsg.h) with the shared secret.
 *
 * With peering on, the first byte of every cancel key this instance gives
 * out is its peer-id (keymap.c); the rest is random: 24 bits for a
 * protocol 3.0 key (4 bytes), up to 255 bytes for 3.2. A CancelRequest
 * whose key names another listed instance is sent there over verified TLS
 * (cancelfwd.c); one that names an unlisted instance cancels nothing.
 *
 * Set once at start (peers_init, before the workers) and read-only after:
 * peer-id, secret and peers take effect on restart (a reload warns). The
 * replay table is the one mutable part, behind its own mutex.
 */
#ifndef PGTP_PEERS_H
#define PGTP_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peermsg.h"

struct config;
struct route;

/* Load the secret, build a route (own back SSL_CTX from --peer-ca-path)
 * per listed peer other than this one. Peering off (peer_id 0): nothing.
 * 0, or -1 with err filled. */
int peers_init(const struct config *cfg, char *err, size_t errlen);
/* Drop the routes, wipe the secret (at exit; tests). */
void peers_free(void);
/* This instance's peer-id; 0 = peering off. */
unsigned peers_self(void);
/* The instance that owns key: 0 if it is this one (or peering is off),
 * else the key's first byte (which may name no listed peer). */
unsigned peers_owner(const uint8_t *key, size_t keylen);
/* A reference to the route to peer id, or NULL if it is not listed. */
struct route *peers_route(unsigned id);
/* How many other instances are listed. */
size_t peers_count(void);

/* Sign m (its cancel, hops, origin, timestamp and nonce set) into out. */
size_t peers_sign(uint8_t *out, size_t cap, const struct peermsg *m);
/* A fresh message for a client's CancelRequest: hops PEERMSG_HOPS, origin
 * this instance, now, a random nonce. False if out of randomness. */
bool peers_fresh(struct peermsg *m, const uint8_t *cancel, size_t len);
/* peermsg_verify with the secret, the wall clock and the process's
 * replay table. */
enum peermsg_result peers_verify(const uint8_t *pkt, size_t len, struct peermsg *m);
/* Unix time in milliseconds (the instances' common clock). */
uint64_t peers_now_ms(void);

#endif
