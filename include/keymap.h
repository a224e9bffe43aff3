/*
 * keymap.h - the cancel keys the proxy gives its clients, each mapped to
 * the upstream's own BackendKeyData and the session's route.
 *
 * The client never sees the server's key: the proxy sends its own (random,
 * keymap_add; the pid stays the server's), and a CancelRequest is looked
 * up by that key. A
 * hit is forwarded with the server's pid/key to the route the session
 * runs on (not the route the cancel's connection would take: a cancel
 * carries no server name or database). Anything else cancels nothing: a
 * guessed key, a replayed key of an ended session, or the server's real
 * pid/key sent to the proxy.
 *
 * Process-wide and thread-safe: every worker may add, remove and look up.
 */
#ifndef PGTP_KEYMAP_H
#define PGTP_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYMAP_KEY_MIN 4   /* protocol 3.0 */
#define KEYMAP_KEY_MAX 256 /* protocol 3.2 allows up to 256 bytes */

struct keymap_entry;
struct route;

/* What a proxy key stands for, copied out of the table: the server's
 * pid/key (a secret: keymap_target_clear wipes it) and a reference to
 * the session's route. */
struct keymap_target {
    struct route *route; /* a reference, or NULL */
    uint32_t pid;
    size_t keylen;
    uint8_t key[KEYMAP_KEY_MAX];
};

/*
 * A session's server sent server_pid/server_key (keylen 4..256) and runs
 * on route rt (a reference is taken; NULL is allowed, for tests). Makes
 * the proxy's key for the client: *client_pid is the server's pid (so
 * pg_backend_pid(), NotificationResponse pids and PQbackendPID agree),
 * client_key[0..keylen) random, never the server's, and unique among live
 * entries with that pid (the same length as the server's, so the
 * BackendKeyData keeps its size). With peering on (peer_id 1..255,
 * peers.h), client_key[0] is peer_id, so that any instance can tell whose
 * key it is: a 3.0 key keeps 24 random bits, a 3.2 key up to 2040. NULL if
 * keylen is out of bounds, out of memory or out of randomness.
 */
struct keymap_entry *keymap_add(struct route *rt, uint32_t server_pid, const uint8_t *server_key,
                                size_t keylen, unsigned peer_id, uint32_t *client_pid,
                                uint8_t *client_key);
/* Forget it (when the session ends): both keys are wiped, the route
 * reference dropped. NULL is fine. */
void keymap_remove(struct keymap_entry *e);
/* True if pid/key is a proxy key of a live session; constant-time compare. */
bool keymap_contains(uint32_t pid, const uint8_t *key, size_t keylen);
/* Look pid/key (a proxy key) up: true and *t filled (release it with
 * keymap_target_clear) on a hit; false and *t cleared otherwise. */
bool keymap_lookup(uint32_t pid, const uint8_t *key, size_t keylen, struct keymap_target *t);
/* Drop t's route reference and wipe its key. */
void keymap_target_clear(struct keymap_target *t);
size_t keymap_count(void);

/*
 * Cancel coalescing, keyed on the proxy's key. A cancel is idempotent
 * (PostgreSQL cancels whatever runs when it arrives), so while one for a
 * key is on its way upstream, or was delivered less than coalesce_ms ago,
 * another for the same key adds nothing but an upstream connection.
 */
enum keymap_cancel {
    KEYMAP_UNKNOWN,   /* no live session has this pid/key */
    KEYMAP_COALESCED, /* one is in flight, or was sent < coalesce_ms ago */
    KEYMAP_FORWARD,   /* go ahead: marked in flight until keymap_cancel_end */
};
/* On KEYMAP_FORWARD, *t is filled (keymap_target_clear it); otherwise
 * cleared. t may be NULL. */
enum keymap_cancel keymap_cancel_begin(uint32_t pid, const uint8_t *key, size_t keylen,
                                       uint64_t now_ms, uint64_t coalesce_ms,
                                       struct keymap_target *t);
/* The forward begun for pid/key is over: sent (delivered at now_ms) or not.
 * Nothing happens if the session has ended meanwhile. */
void keymap_cancel_end(uint32_t pid, const uint8_t *key, size_t keylen, uint64_t now_ms, bool sent);

#endif
