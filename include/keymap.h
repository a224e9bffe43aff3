/*
 * keymap.h - the cancel keys of live sessions (BackendKeyData seen from the
 * upstream), so that only cancels for our own sessions are forwarded.
 *
 * Process-wide and thread-safe: every worker may add, remove and look up.
 */
#ifndef PGTP_KEYMAP_H
#define PGTP_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keymap_entry;

/* Remember pid/key (keylen 4..256). NULL if out of memory. */
struct keymap_entry *keymap_add(uint32_t pid, const uint8_t *key, size_t keylen);
/* Forget it (when the session ends). NULL is fine. */
void keymap_remove(struct keymap_entry *e);
/* True if pid/key belongs to a live session; the key compare is constant-time. */
bool keymap_contains(uint32_t pid, const uint8_t *key, size_t keylen);
size_t keymap_count(void);

/*
 * Cancel coalescing. A cancel is idempotent (PostgreSQL cancels whatever
 * runs when it arrives), so while one for a key is on its way upstream, or
 * was delivered less than coalesce_ms ago, another for the same key adds
 * nothing but an upstream connection.
 */
enum keymap_cancel {
    KEYMAP_UNKNOWN,   /* no live session has this pid/key */
    KEYMAP_COALESCED, /* one is in flight, or was sent < coalesce_ms ago */
    KEYMAP_FORWARD,   /* go ahead: marked in flight until keymap_cancel_end */
};
enum keymap_cancel keymap_cancel_begin(uint32_t pid, const uint8_t *key, size_t keylen,
                                       uint64_t now_ms, uint64_t coalesce_ms);
/* The forward begun for pid/key is over: sent (delivered at now_ms) or not.
 * Nothing happens if the session has ended meanwhile. */
void keymap_cancel_end(uint32_t pid, const uint8_t *key, size_t keylen, uint64_t now_ms, bool sent);

#endif
