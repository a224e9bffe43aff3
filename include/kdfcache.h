/*
 * kdfcache.h - SCRAM SaltedPasswords the proxy derived for --auth-mode
 * password, so that a client logging in again does not cost another PBKDF2
 * (4096 rounds of HMAC-SHA-256, milliseconds of CPU).
 *
 * In memory only, shared by the workers (a mutex), bounded (KDFCACHE_SLOTS,
 * a new entry replaces the one in its slot). An entry is keyed on a SHA-256
 * of the user, the server's salt and iteration count and the password, and
 * is stored only once the server proved that the password was right (its
 * SCRAM signature checked). Nothing here is ever logged; cleared entries
 * are wiped.
 */
#ifndef PGTP_KDFCACHE_H
#define PGTP_KDFCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KDFCACHE_SLOTS 1024
#define KDFCACHE_KEY_LEN 32

void kdfcache_key(const char *user, const uint8_t *salt, size_t salt_len, unsigned iterations,
                  const char *password, size_t pwlen, uint8_t key[KDFCACHE_KEY_LEN]);
/* The SaltedPassword stored under key: true and out filled, or false. */
bool kdfcache_get(const uint8_t key[KDFCACHE_KEY_LEN], uint8_t out[32]);
void kdfcache_put(const uint8_t key[KDFCACHE_KEY_LEN], const uint8_t salted[32]);
/* Wipe every entry (tests; process exit). */
void kdfcache_clear(void);

#endif
