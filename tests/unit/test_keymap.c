/*
 * test_keymap.c - unit tests for src/keymap.c, the process-wide table of
 * live sessions' cancel keys: add, remove, contains with 4-byte (protocol
 * 3.0) and 32-byte (3.2) keys, every byte of a key counting in the
 * compare (done with CRYPTO_memcmp: constant time, which a unit test cannot
 * time reliably, so it checks the result at every position), the bounds on
 * a key's length, and the cancel coalescing marks cancelfwd.c relies on.
 * The table is shared by the whole process: counts are compared before and
 * after, so the tests also pass with CK_FORK=no.
 */
#include <string.h>

#include "keymap.h"
#include "suites.h"

START_TEST(keymap_add_contains_remove)
{
    size_t n0 = keymap_count();
    const uint8_t k4[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t k32[32];
    for (int i = 0; i < 32; i++)
        k32[i] = (uint8_t)(i * 7 + 1);
    struct keymap_entry *a = keymap_add(1001, k4, sizeof(k4));
    struct keymap_entry *b = keymap_add(1002, k32, sizeof(k32));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(keymap_count(), n0 + 2);
    ck_assert(keymap_contains(1001, k4, 4));
    ck_assert(keymap_contains(1002, k32, 32));
    /* the pid, the key and its length all have to match */
    ck_assert(!keymap_contains(1002, k4, 4));
    ck_assert(!keymap_contains(1001, k32, 32));
    ck_assert(!keymap_contains(1002, k32, 31));
    ck_assert(!keymap_contains(1002, k32, 4));
    ck_assert(!keymap_contains(1001, k4, 3));

    keymap_remove(a);
    ck_assert(!keymap_contains(1001, k4, 4));
    ck_assert(keymap_contains(1002, k32, 32));
    ck_assert_uint_eq(keymap_count(), n0 + 1);
    keymap_remove(b);
    ck_assert(!keymap_contains(1002, k32, 32));
    ck_assert_uint_eq(keymap_count(), n0);
    keymap_remove(NULL); /* allowed */
    ck_assert_uint_eq(keymap_count(), n0);
}
END_TEST

/* A key that differs from the live one in any single byte (first, middle,
 * last, one bit) is not found. */
START_TEST(keymap_every_byte_counts)
{
    uint8_t k[32];
    for (int i = 0; i < 32; i++)
        k[i] = (uint8_t)(0xa0 + i);
    struct keymap_entry *e = keymap_add(77, k, sizeof(k));
    ck_assert_ptr_nonnull(e);
    for (size_t i = 0; i < sizeof(k); i++) {
        uint8_t t[32];
        memcpy(t, k, sizeof(t));
        t[i] ^= 0x01;
        ck_assert_msg(!keymap_contains(77, t, sizeof(t)), "byte %zu ignored", i);
    }
    ck_assert(keymap_contains(77, k, sizeof(k)));
    keymap_remove(e);
}
END_TEST

/* Several sessions can share a pid (two upstreams): each key is its own
 * entry, and removing one leaves the other. */
START_TEST(keymap_same_pid_two_keys)
{
    const uint8_t k1[4] = {1, 1, 1, 1}, k2[4] = {2, 2, 2, 2};
    struct keymap_entry *a = keymap_add(555, k1, 4);
    struct keymap_entry *b = keymap_add(555, k2, 4);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert(keymap_contains(555, k1, 4));
    ck_assert(keymap_contains(555, k2, 4));
    keymap_remove(b);
    ck_assert(keymap_contains(555, k1, 4));
    ck_assert(!keymap_contains(555, k2, 4));
    keymap_remove(a);
    ck_assert(!keymap_contains(555, k1, 4));
}
END_TEST

/* keylen 4..256 (protocol 3.2 allows up to 256 bytes); 0 is refused. */
START_TEST(keymap_key_length_bounds)
{
    size_t n0 = keymap_count();
    uint8_t big[257];
    memset(big, 0x5a, sizeof(big));
    ck_assert_ptr_null(keymap_add(9, big, 0));
    ck_assert_ptr_null(keymap_add(9, big, 257));
    struct keymap_entry *e = keymap_add(9, big, 256);
    ck_assert_ptr_nonnull(e);
    ck_assert(keymap_contains(9, big, 256));
    ck_assert(!keymap_contains(9, big, 255));
    keymap_remove(e);
    ck_assert_uint_eq(keymap_count(), n0);
}
END_TEST

START_TEST(keymap_coalescing)
{
    const uint8_t key[4] = {1, 2, 3, 4}, wrong[4] = {1, 2, 3, 5};
    struct keymap_entry *e = keymap_add(4242, key, sizeof(key));
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(keymap_cancel_begin(4242, wrong, 4, 100, 1000), KEYMAP_UNKNOWN);
    ck_assert_int_eq(keymap_cancel_begin(4243, key, 4, 100, 1000), KEYMAP_UNKNOWN);
    ck_assert_int_eq(keymap_cancel_begin(4242, key, 3, 100, 1000), KEYMAP_UNKNOWN);
    ck_assert_int_eq(keymap_cancel_begin(4242, key, 4, 100, 1000), KEYMAP_FORWARD);
    ck_assert_int_eq(keymap_cancel_begin(4242, key, 4, 5000, 1000), KEYMAP_COALESCED);
    /* Not sent (upstream failed): the next one may go at once. */
    keymap_cancel_end(4242, key, 4, 5000, false);
    ck_assert_int_eq(keymap_cancel_begin(4242, key, 4, 5000, 1000), KEYMAP_FORWARD);
    keymap_cancel_end(4242, key, 4, 6000, true);
    ck_assert_int_eq(keymap_cancel_begin(4242, key, 4, 6999, 1000), KEYMAP_COALESCED);
    ck_assert_int_eq(keymap_cancel_begin(4242, key, 4, 7000, 1000), KEYMAP_FORWARD);
    keymap_remove(e);
    /* Ended for a session that is gone: nothing happens. */
    keymap_cancel_end(4242, key, 4, 8000, true);
    ck_assert_int_eq(keymap_cancel_begin(4242, key, 4, 8000, 1000), KEYMAP_UNKNOWN);
}
END_TEST

/* The coalescing marks with a 32-byte key, and one key's marks do not
 * touch another's. */
START_TEST(keymap_coalescing_32_independent)
{
    uint8_t k1[32], k2[32];
    memset(k1, 0x11, sizeof(k1));
    memset(k2, 0x11, sizeof(k2));
    k2[31] = 0x12;
    struct keymap_entry *a = keymap_add(31, k1, 32);
    struct keymap_entry *b = keymap_add(31, k2, 32);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(keymap_cancel_begin(31, k1, 32, 10, 1000), KEYMAP_FORWARD);
    ck_assert_int_eq(keymap_cancel_begin(31, k2, 32, 10, 1000), KEYMAP_FORWARD);
    ck_assert_int_eq(keymap_cancel_begin(31, k1, 32, 11, 1000), KEYMAP_COALESCED);
    keymap_cancel_end(31, k1, 32, 20, true);
    keymap_cancel_end(31, k2, 32, 20, false);
    ck_assert_int_eq(keymap_cancel_begin(31, k1, 32, 500, 1000), KEYMAP_COALESCED);
    ck_assert_int_eq(keymap_cancel_begin(31, k2, 32, 500, 1000), KEYMAP_FORWARD);
    keymap_cancel_end(31, k2, 32, 500, true);
    /* coalesce_ms 0: never coalesced once delivered */
    ck_assert_int_eq(keymap_cancel_begin(31, k1, 32, 501, 0), KEYMAP_FORWARD);
    keymap_cancel_end(31, k1, 32, 501, true);
    keymap_remove(a);
    keymap_remove(b);
    ck_assert_int_eq(keymap_cancel_begin(31, k1, 32, 9000, 1000), KEYMAP_UNKNOWN);
}
END_TEST

Suite *keymap_suite(void)
{
    Suite *s = suite_create("keymap");
    TCase *tc = tcase_create("keymap");
    tcase_add_test(tc, keymap_add_contains_remove);
    tcase_add_test(tc, keymap_every_byte_counts);
    tcase_add_test(tc, keymap_same_pid_two_keys);
    tcase_add_test(tc, keymap_key_length_bounds);
    tcase_add_test(tc, keymap_coalescing);
    tcase_add_test(tc, keymap_coalescing_32_independent);
    suite_add_tcase(s, tc);
    return s;
}
