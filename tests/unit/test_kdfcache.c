/*
 * test_kdfcache.c - unit tests for src/kdfcache.c, the SaltedPassword cache
 * of --auth-mode password: the key changes with each of its inputs (user,
 * salt, iterations, password) and with where one field ends, a miss before
 * a put and a hit after, a new entry replacing the one in its slot, and
 * clear. The cache is process-wide: each test clears it first and last.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kdfcache.h"
#include "suites.h"

static const uint8_t salt_a[16] = "0123456789abcdef";
static const uint8_t salt_b[16] = "0123456789abcdeF";

static void key_of(const char *user, const uint8_t *salt, size_t salt_len, unsigned it,
                   const char *pw, uint8_t key[KDFCACHE_KEY_LEN])
{
    kdfcache_key(user, salt, salt_len, it, pw, strlen(pw), key);
}

START_TEST(key_inputs)
{
    uint8_t base[KDFCACHE_KEY_LEN], again[KDFCACHE_KEY_LEN], other[KDFCACHE_KEY_LEN];
    static const uint8_t zero[KDFCACHE_KEY_LEN];
    key_of("alice", salt_a, 16, 4096, "secret", base);
    ck_assert(memcmp(base, zero, sizeof(zero)) != 0);
    key_of("alice", salt_a, 16, 4096, "secret", again);
    ck_assert_mem_eq(base, again, KDFCACHE_KEY_LEN); /* deterministic */

    key_of("alicf", salt_a, 16, 4096, "secret", other);
    ck_assert(memcmp(base, other, KDFCACHE_KEY_LEN) != 0); /* user */
    key_of("alice", salt_b, 16, 4096, "secret", other);
    ck_assert(memcmp(base, other, KDFCACHE_KEY_LEN) != 0); /* salt */
    key_of("alice", salt_a, 15, 4096, "secret", other);
    ck_assert(memcmp(base, other, KDFCACHE_KEY_LEN) != 0); /* salt length */
    key_of("alice", salt_a, 16, 4097, "secret", other);
    ck_assert(memcmp(base, other, KDFCACHE_KEY_LEN) != 0); /* iterations */
    key_of("alice", salt_a, 16, 4096 + (1u << 24), "secret", other);
    ck_assert(memcmp(base, other, KDFCACHE_KEY_LEN) != 0); /* iterations, high byte */
    key_of("alice", salt_a, 16, 4096, "secreT", other);
    ck_assert(memcmp(base, other, KDFCACHE_KEY_LEN) != 0); /* password */
    kdfcache_key("alice", salt_a, 16, 4096, "secret", 5, other);
    ck_assert(memcmp(base, other, KDFCACHE_KEY_LEN) != 0); /* password length */
}
END_TEST

/* Bytes moved from one field to the next make another key: each field is
 * length-prefixed, so ("ab", salt "c...") is not ("a", salt "bc..."). */
START_TEST(key_boundaries)
{
    uint8_t k1[KDFCACHE_KEY_LEN], k2[KDFCACHE_KEY_LEN];
    static const uint8_t s1[] = "cd", s2[] = "bcd";
    key_of("ab", s1, 2, 4096, "pw", k1);
    key_of("a", s2, 3, 4096, "pw", k2);
    ck_assert(memcmp(k1, k2, KDFCACHE_KEY_LEN) != 0);
    /* and between the salt and the password */
    static const uint8_t s3[] = "xy";
    key_of("u", s3, 2, 4096, "zpw", k1);
    kdfcache_key("u", (const uint8_t *)"xyz", 3, 4096, "pw", 2, k2);
    ck_assert(memcmp(k1, k2, KDFCACHE_KEY_LEN) != 0);
}
END_TEST

START_TEST(hit_and_miss)
{
    uint8_t key[KDFCACHE_KEY_LEN], other[KDFCACHE_KEY_LEN], salted[32], got[32];
    kdfcache_clear();
    for (int i = 0; i < 32; i++)
        salted[i] = (uint8_t)(0xa0 + i);
    key_of("bob", salt_a, 16, 4096, "right", key);
    key_of("bob", salt_a, 16, 4096, "wrong", other);

    memset(got, 0x11, sizeof(got));
    ck_assert(!kdfcache_get(key, got)); /* nothing yet */
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(got[i], 0x11); /* a miss writes nothing */
    kdfcache_put(key, salted);
    ck_assert(kdfcache_get(key, got));
    ck_assert_mem_eq(got, salted, 32);
    /* The wrong password's key never gets the right one's SaltedPassword,
     * even when both land in the same slot. */
    ck_assert(!kdfcache_get(other, got) || memcmp(other, key, KDFCACHE_KEY_LEN) == 0);
    kdfcache_clear();
    ck_assert(!kdfcache_get(key, got));
}
END_TEST

/* Two keys for one slot (the slot is the first two bytes modulo the
 * table size): the newer replaces the older, which then misses. */
START_TEST(replacement)
{
    uint8_t a[KDFCACHE_KEY_LEN] = {0}, b[KDFCACHE_KEY_LEN] = {0}, c[KDFCACHE_KEY_LEN] = {0};
    uint8_t sa[32], sb[32], sc[32], got[32];
    kdfcache_clear();
    memset(sa, 0xaa, sizeof(sa));
    memset(sb, 0xbb, sizeof(sb));
    memset(sc, 0xcc, sizeof(sc));
    a[0] = 0x00;
    a[31] = 1;
    b[0] = (uint8_t)(KDFCACHE_SLOTS >> 8); /* same slot as a, another key */
    b[31] = 2;
    c[1] = 1; /* another slot */
    kdfcache_put(a, sa);
    kdfcache_put(c, sc);
    ck_assert(kdfcache_get(a, got));
    ck_assert_mem_eq(got, sa, 32);
    kdfcache_put(b, sb);
    ck_assert(!kdfcache_get(a, got)); /* replaced */
    ck_assert(kdfcache_get(b, got));
    ck_assert_mem_eq(got, sb, 32);
    ck_assert(kdfcache_get(c, got)); /* the other slot kept its entry */
    ck_assert_mem_eq(got, sc, 32);
    /* the same key again: its value is updated in place */
    kdfcache_put(b, sa);
    ck_assert(kdfcache_get(b, got));
    ck_assert_mem_eq(got, sa, 32);
    kdfcache_clear();
    ck_assert(!kdfcache_get(b, got));
    ck_assert(!kdfcache_get(c, got));
}
END_TEST

/* An all-zero key is an ordinary key (a failed digest writes zeros): an
 * empty, cleared slot must not answer for it. */
START_TEST(cleared_slot_no_hit)
{
    uint8_t zero[KDFCACHE_KEY_LEN] = {0}, got[32];
    kdfcache_clear();
    ck_assert(!kdfcache_get(zero, got));
}
END_TEST

Suite *kdfcache_suite(void)
{
    Suite *s = suite_create("kdfcache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, key_inputs);
    tcase_add_test(tc, key_boundaries);
    tcase_add_test(tc, hit_and_miss);
    tcase_add_test(tc, replacement);
    tcase_add_test(tc, cleared_slot_no_hit);
    suite_add_tcase(s, tc);
    return s;
}
