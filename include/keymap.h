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

#endif
