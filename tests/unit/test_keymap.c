/*
 * test_keymap.c - unit tests for src/keymap.c, the process-wide table of
 * the proxy's cancel keys: each session's server key (pid, 4 bytes in
 * protocol 3.0, up to 256 in 3.2) is given a random proxy key of the same
 * length, mapped back to the server's pid/key and the session's route.
 * Checked: the proxy key differs from the server's and is random (no two
 * alike over many sessions, pids non-zero, positive and unique), a
 * look-up by the proxy key returns the server's pid/key and a reference to
 * the route (which outlives the entry), the server's own pid/key finds
 * nothing, every byte of a key counts in the compare (CRYPTO_memcmp:
 * constant time, which a unit test cannot time reliably, so it checks the
 * result at every position), removing wipes and forgets, key length
 * bounds, and the cancel coalescing marks cancelfwd.c relies on.
 * The table is shared by the whole process: counts are compared before and
 * after, so the tests also pass with CK_FORK=no.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keymap.h"
#include "route.h"
#include "suites.h"

/* A route as main.c builds one, without a TLS context. */
static struct route *test_route(const char *host, unsigned port)
{
    struct config cfg;
    char err[128];
    memset(&cfg, 0, sizeof(cfg));
    cfg.upstream_host = (char *)host;
    cfg.upstream_port = port;
    struct route *r = route_new(&cfg, NULL, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

/* A session's entry for server pid/key: asserts it was made. */
static struct keymap_entry *add(struct route *rt, uint32_t spid, const uint8_t *skey, size_t len,
                                uint32_t *pid, uint8_t *key)
{
    struct keymap_entry *e = keymap_add(rt, spid, skey, len, 0, pid, key);
    ck_assert_ptr_nonnull(e);
    return e;
}

START_TEST(keymap_proxy_key_maps_to_server_key)
{
    size_t n0 = keymap_count();
    struct route *ra = test_route("a.db.internal", 5433);
    const uint8_t s4[4] = {0xde, 0xad, 0xbe, 0xef};
    uint8_t s32[32];
    for (int i = 0; i < 32; i++)
        s32[i] = (uint8_t)(i * 7 + 1);
    uint32_t pa, pb;
    uint8_t ka[4], kb[32];
    struct keymap_entry *a = add(ra, 1001, s4, sizeof(s4), &pa, ka);
    struct keymap_entry *b = add(ra, 1002, s32, sizeof(s32), &pb, kb);
    ck_assert_uint_eq(keymap_count(), n0 + 2);
    /* the client's key is the proxy's, not the server's */
    ck_assert(pa != 1001 || memcmp(ka, s4, 4) != 0);
    ck_assert(memcmp(kb, s32, 32) != 0);
    ck_assert(keymap_contains(pa, ka, 4));
    ck_assert(keymap_contains(pb, kb, 32));

    struct keymap_target t;
    ck_assert(keymap_lookup(pb, kb, 32, &t));
    ck_assert_uint_eq(t.pid, 1002);
    ck_assert_uint_eq(t.keylen, 32);
    ck_assert_mem_eq(t.key, s32, 32);
    ck_assert_ptr_eq(t.route, ra);
    keymap_target_clear(&t); /* wiped: no byte of the server's key is left */
    ck_assert_ptr_null(t.route);
    ck_assert_uint_eq(t.keylen, 0);
    ck_assert_uint_eq(t.pid, 0);
    for (size_t i = 0; i < sizeof(t.key); i++)
        ck_assert_uint_eq(t.key[i], 0);

    /* the server's real pid/key, sent to the proxy, finds nothing */
    ck_assert(!keymap_contains(1001, s4, 4));
    ck_assert(!keymap_lookup(1002, s32, 32, &t));
    ck_assert_ptr_null(t.route);
    ck_assert(!keymap_contains(pa, s4, 4));
    /* the pid, the key and its length all have to match */
    ck_assert(!keymap_contains(pb, ka, 4));
    ck_assert(!keymap_contains(pa, kb, 32));
    ck_assert(!keymap_contains(pb, kb, 31));
    ck_assert(!keymap_contains(pa, ka, 3));
    ck_assert(!keymap_contains(pa, NULL, 4));

    keymap_remove(a);
    ck_assert(!keymap_contains(pa, ka, 4)); /* a replayed key of an ended session */
    ck_assert(keymap_contains(pb, kb, 32));
    ck_assert_uint_eq(keymap_count(), n0 + 1);
    keymap_remove(b);
    ck_assert(!keymap_lookup(pb, kb, 32, &t));
    ck_assert_uint_eq(keymap_count(), n0);
    keymap_remove(NULL); /* allowed */
    ck_assert_uint_eq(keymap_count(), n0);
    route_unref(ra);
}
END_TEST

/* The same server pid and key on two upstreams (two servers can hand out
 * the same pid): the client keeps the pid, and two proxy keys tell the
 * sessions apart, each mapped to its own route. */
START_TEST(keymap_same_server_pid_two_routes)
{
    struct route *ra = test_route("a.db.internal", 5433);
    struct route *rb = test_route("b.db.internal", 5434);
    const uint8_t sk[4] = {1, 2, 3, 4};
    uint32_t pa, pb;
    uint8_t ka[4], kb[4];
    struct keymap_entry *a = add(ra, 555, sk, 4, &pa, ka);
    struct keymap_entry *b = add(rb, 555, sk, 4, &pb, kb);
    ck_assert_uint_eq(pa, 555);
    ck_assert_uint_eq(pb, 555);
    ck_assert_mem_ne(ka, kb, 4);
    struct keymap_target t;
    ck_assert(keymap_lookup(pa, ka, 4, &t));
    ck_assert_ptr_eq(t.route, ra);
    ck_assert_uint_eq(t.pid, 555);
    keymap_target_clear(&t);
    ck_assert(keymap_lookup(pb, kb, 4, &t));
    ck_assert_ptr_eq(t.route, rb);
    ck_assert_uint_eq(t.pid, 555);
    ck_assert_mem_eq(t.key, sk, 4);
    keymap_target_clear(&t);
    /* a key against the other's pid: nothing */
    ck_assert(!keymap_contains(pa, sk, 4)); /* the server's own key: nothing */
    keymap_remove(b);
    ck_assert(keymap_contains(pa, ka, 4));
    ck_assert(!keymap_contains(pb, kb, 4));
    keymap_remove(a);
    route_unref(ra);
    route_unref(rb);
}
END_TEST

/* The entry and a looked-up target each hold a reference: the route a
 * reload dropped lives until the last of them is gone (ASan and valgrind
 * would see a use after free or a leak). */
START_TEST(keymap_route_references)
{
    struct route *r = test_route("c.db.internal", 5435);
    const uint8_t sk[4] = {9, 9, 9, 9};
    uint32_t p;
    uint8_t k[4];
    struct keymap_entry *e = add(r, 77, sk, 4, &p, k);
    ck_assert_uint_eq(atomic_load(&r->refs), 2);
    route_unref(r); /* the reload's table is gone: the entry keeps it */
    struct keymap_target t;
    ck_assert(keymap_lookup(p, k, 4, &t));
    ck_assert_uint_eq(atomic_load(&t.route->refs), 2);
    ck_assert_str_eq(t.route->host, "c.db.internal");
    keymap_remove(e); /* the session ends while its cancel is on the way */
    ck_assert_uint_eq(atomic_load(&t.route->refs), 1);
    ck_assert_uint_eq(t.route->port, 5435);
    keymap_target_clear(&t); /* frees the route */
    /* no route (allowed): the target has none either */
    e = add(NULL, 78, sk, 4, &p, k);
    ck_assert(keymap_lookup(p, k, 4, &t));
    ck_assert_ptr_null(t.route);
    ck_assert_uint_eq(t.pid, 78);
    keymap_target_clear(&t);
    keymap_remove(e);
}
END_TEST

#define GEN_N 2000

/* Generation: 2,000 sessions with the same server key get keys that are
 * distinct for each pid (the server's, kept); the key
 * bytes look random (every byte value seen, no byte fixed). */
START_TEST(keymap_generation_random_unique)
{
    static struct keymap_entry *e[GEN_N];
    static uint32_t pid[GEN_N];
    static uint8_t key[GEN_N][4];
    const uint8_t sk[4] = {0, 0, 0, 0};
    size_t n0 = keymap_count();
    unsigned seen[256] = {0};
    for (int i = 0; i < GEN_N; i++) {
        /* 16 pids (as 16 upstreams with a backend of the same pid each
         * would give), 125 sessions on each */
        e[i] = add(NULL, 4242 + (uint32_t)(i % 16), sk, 4, &pid[i], key[i]);
        ck_assert_uint_eq(pid[i], 4242 + (uint32_t)(i % 16)); /* the server's pid is kept */
        for (int j = 0; j < 4; j++)
            seen[key[i][j]]++;
    }
    ck_assert_uint_eq(keymap_count(), n0 + GEN_N);
    /* Two million pairs: a plain loop, one assertion (every ck_assert is a
     * message to Check's parent process, which under ASan on a busy
     * machine took the test past its timeout). */
    int dup_i = -1, dup_j = -1;
    for (int i = 0; i < GEN_N && dup_i < 0; i++)
        for (int j = i + 1; j < GEN_N; j++)
            if (pid[i] == pid[j] && memcmp(key[i], key[j], 4) == 0) {
                dup_i = i, dup_j = j;
                break;
            }
    ck_assert_msg(dup_i < 0, "key given twice for one pid (%d, %d)", dup_i, dup_j);
    /* 8,000 random bytes: each of the 256 values is expected ~31 times;
     * missing one has odds of about 256 * e^-31. */
    for (int v = 0; v < 256; v++)
        ck_assert_msg(seen[v] > 0, "byte value %d never drawn", v);
    for (int i = 0; i < GEN_N; i++) {
        ck_assert(keymap_contains(pid[i], key[i], 4));
        keymap_remove(e[i]);
    }
    ck_assert_uint_eq(keymap_count(), n0);
}
END_TEST

/* A key that differs from the live one in any single byte (first, middle,
 * last, one bit) is not found. */
START_TEST(keymap_every_byte_counts)
{
    uint8_t sk[32], k[32];
    uint32_t p;
    memset(sk, 0xa0, sizeof(sk));
    struct keymap_entry *e = add(NULL, 77, sk, sizeof(sk), &p, k);
    for (size_t i = 0; i < sizeof(k); i++) {
        uint8_t t[32];
        memcpy(t, k, sizeof(t));
        t[i] ^= 0x01;
        ck_assert_msg(!keymap_contains(p, t, sizeof(t)), "byte %zu ignored", i);
    }
    ck_assert(keymap_contains(p, k, sizeof(k)));
    keymap_remove(e);
}
END_TEST

/* keylen 4..256 (protocol 3.2 allows up to 256 bytes); the proxy key has
 * the server key's length; shorter ones are refused. */
START_TEST(keymap_key_length_bounds)
{
    size_t n0 = keymap_count();
    uint8_t big[257], mine[257];
    uint32_t p;
    memset(big, 0x5a, sizeof(big));
    ck_assert_ptr_null(keymap_add(NULL, 9, big, 0, 0, &p, mine));
    ck_assert_ptr_null(keymap_add(NULL, 9, big, 3, 0, &p, mine));
    ck_assert_ptr_null(keymap_add(NULL, 9, big, 257, 0, &p, mine));
    ck_assert_ptr_null(keymap_add(NULL, 9, NULL, 4, 0, &p, mine));
    ck_assert_uint_eq(keymap_count(), n0);
    memset(mine, 0, sizeof(mine));
    struct keymap_entry *e = add(NULL, 9, big, 256, &p, mine);
    ck_assert(memcmp(mine, big, 256) != 0);
    ck_assert_uint_eq(mine[256], 0); /* exactly keylen bytes written */
    ck_assert(keymap_contains(p, mine, 256));
    ck_assert(!keymap_contains(p, mine, 255));
    struct keymap_target t;
    ck_assert(keymap_lookup(p, mine, 256, &t));
    ck_assert_uint_eq(t.keylen, 256);
    ck_assert_mem_eq(t.key, big, 256);
    keymap_target_clear(&t);
    keymap_remove(e);
    ck_assert_uint_eq(keymap_count(), n0);
}
END_TEST

START_TEST(keymap_coalescing)
{
    const uint8_t sk[4] = {1, 2, 3, 4};
    uint8_t key[4], wrong[4];
    uint32_t p;
    struct keymap_target t;
    struct keymap_entry *e = add(NULL, 4242, sk, sizeof(sk), &p, key);
    memcpy(wrong, key, 4);
    wrong[3] ^= 0x80;
    ck_assert_int_eq(keymap_cancel_begin(p, wrong, 4, 100, 1000, &t), KEYMAP_UNKNOWN);
    ck_assert_int_eq(keymap_cancel_begin(p ^ 1, key, 4, 100, 1000, &t), KEYMAP_UNKNOWN);
    ck_assert_int_eq(keymap_cancel_begin(p, key, 3, 100, 1000, &t), KEYMAP_UNKNOWN);
    /* the server's own key is not a proxy key */
    ck_assert_int_eq(keymap_cancel_begin(4242, sk, 4, 100, 1000, &t), KEYMAP_UNKNOWN);
    ck_assert_uint_eq(t.keylen, 0);
    ck_assert_int_eq(keymap_cancel_begin(p, key, 4, 100, 1000, &t), KEYMAP_FORWARD);
    ck_assert_uint_eq(t.pid, 4242); /* what goes upstream */
    ck_assert_mem_eq(t.key, sk, 4);
    keymap_target_clear(&t);
    ck_assert_int_eq(keymap_cancel_begin(p, key, 4, 5000, 1000, &t), KEYMAP_COALESCED);
    ck_assert_uint_eq(t.keylen, 0); /* nothing to forward */
    /* Not sent (upstream failed): the next one may go at once. */
    keymap_cancel_end(p, key, 4, 5000, false);
    ck_assert_int_eq(keymap_cancel_begin(p, key, 4, 5000, 1000, NULL), KEYMAP_FORWARD);
    keymap_cancel_end(p, key, 4, 6000, true);
    ck_assert_int_eq(keymap_cancel_begin(p, key, 4, 6999, 1000, NULL), KEYMAP_COALESCED);
    ck_assert_int_eq(keymap_cancel_begin(p, key, 4, 7000, 1000, NULL), KEYMAP_FORWARD);
    keymap_remove(e);
    /* Ended for a session that is gone: nothing happens. */
    keymap_cancel_end(p, key, 4, 8000, true);
    ck_assert_int_eq(keymap_cancel_begin(p, key, 4, 8000, 1000, NULL), KEYMAP_UNKNOWN);
}
END_TEST

/* The coalescing marks with a 32-byte key, and one key's marks do not
 * touch another's. */
START_TEST(keymap_coalescing_32_independent)
{
    uint8_t sk[32], k1[32], k2[32];
    uint32_t p1, p2;
    memset(sk, 0x11, sizeof(sk));
    struct keymap_entry *a = add(NULL, 31, sk, 32, &p1, k1);
    struct keymap_entry *b = add(NULL, 31, sk, 32, &p2, k2);
    ck_assert_int_eq(keymap_cancel_begin(p1, k1, 32, 10, 1000, NULL), KEYMAP_FORWARD);
    ck_assert_int_eq(keymap_cancel_begin(p2, k2, 32, 10, 1000, NULL), KEYMAP_FORWARD);
    ck_assert_int_eq(keymap_cancel_begin(p1, k1, 32, 11, 1000, NULL), KEYMAP_COALESCED);
    keymap_cancel_end(p1, k1, 32, 20, true);
    keymap_cancel_end(p2, k2, 32, 20, false);
    ck_assert_int_eq(keymap_cancel_begin(p1, k1, 32, 500, 1000, NULL), KEYMAP_COALESCED);
    ck_assert_int_eq(keymap_cancel_begin(p2, k2, 32, 500, 1000, NULL), KEYMAP_FORWARD);
    keymap_cancel_end(p2, k2, 32, 500, true);
    /* coalesce_ms 0: never coalesced once delivered */
    ck_assert_int_eq(keymap_cancel_begin(p1, k1, 32, 501, 0, NULL), KEYMAP_FORWARD);
    keymap_cancel_end(p1, k1, 32, 501, true);
    keymap_remove(a);
    keymap_remove(b);
    ck_assert_int_eq(keymap_cancel_begin(p1, k1, 32, 9000, 1000, NULL), KEYMAP_UNKNOWN);
}
END_TEST

Suite *keymap_suite(void)
{
    Suite *s = suite_create("keymap");
    TCase *tc = tcase_create("keymap");
    tcase_add_test(tc, keymap_proxy_key_maps_to_server_key);
    tcase_add_test(tc, keymap_same_server_pid_two_routes);
    tcase_add_test(tc, keymap_route_references);
    tcase_add_test(tc, keymap_generation_random_unique);
    tcase_add_test(tc, keymap_every_byte_counts);
    tcase_add_test(tc, keymap_key_length_bounds);
    tcase_add_test(tc, keymap_coalescing);
    tcase_add_test(tc, keymap_coalescing_32_independent);
    suite_add_tcase(s, tc);
    return s;
}
