/*
 * test_peermsg.c - unit tests for src/peermsg.c, the PeerCancelRequest one
 * instance sends another (issue 14, several instances), and for the peer-id
 * in the cancel keys keymap.c makes. Checked: the layout byte by byte
 * (against peermsg.h's table and an HMAC computed here), a round trip for
 * protocol 3.0 and 3.2 keys, a wrong secret, every single flipped byte, a
 * timestamp just inside and just outside the window either way, hops 0, a
 * replay, every malformation the parser refuses, a too-short secret, the
 * message wiped on a refusal; keymap_add puts the peer-id in a key's first
 * byte and keeps the rest random.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "keymap.h"
#include "peermsg.h"
#include "peers.h"
#include "suites.h"

#define NOW 1765000000000ull /* some time in 2025, in ms */

static const uint8_t secret[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t other[32] = "0123456789abcdef0123456789abcdeF";

/* A message for pid/key (keylen bytes of 0xA0 + i), ts NOW. */
static struct peermsg msg_for(uint32_t pid, size_t keylen)
{
    struct peermsg m;
    uint8_t key[PG_CANCEL_KEY_MAX];
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < keylen; i++)
        key[i] = (uint8_t)(0xA0 + i);
    m.cancel_len = pg_build_cancel(m.cancel, sizeof(m.cancel), pid, key, keylen);
    ck_assert_uint_eq(m.cancel_len, 12 + keylen);
    m.hops = PEERMSG_HOPS;
    m.origin = 3;
    m.ts_ms = NOW;
    for (int i = 0; i < PEERMSG_NONCE; i++)
        m.nonce[i] = (uint8_t)(i * 11 + 5);
    return m;
}

static size_t build(uint8_t *out, const struct peermsg *m)
{
    size_t n = peermsg_build(out, PEERMSG_MAX, m, secret, sizeof(secret));
    ck_assert_uint_eq(n, PEERMSG_FIXED + m->cancel_len);
    return n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

START_TEST(test_layout)
{
    struct peermsg m = msg_for(4242, 4);
    uint8_t pkt[PEERMSG_MAX], mac[32];
    size_t n = build(pkt, &m);
    ck_assert_uint_eq(n, 86);
    ck_assert_uint_eq(be32(pkt), 86);
    ck_assert_uint_eq(be32(pkt + 4), (1234u << 16) | 7070u);
    ck_assert_uint_eq(pkt[8], 1);
    ck_assert_uint_eq(pkt[9], PEERMSG_HOPS);
    ck_assert_uint_eq(pkt[10], 3);
    ck_assert_uint_eq(pkt[11], 0);
    ck_assert_uint_eq(((uint64_t)be32(pkt + 12) << 32) | be32(pkt + 16), NOW);
    ck_assert_mem_eq(pkt + 20, m.nonce, 16);
    ck_assert_uint_eq(pkt[36] << 8 | pkt[37], 16);
    ck_assert_mem_eq(pkt + 38, m.cancel, 16);
    ck_assert_uint_eq(be32(pkt + 38 + 8), 4242);
    unsigned int ml = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, 32, pkt, 54, mac, &ml));
    ck_assert_mem_eq(pkt + 54, mac, 32);
    /* pgproto classifies it (only inside TLS does front.c take it) */
    struct pg_first f;
    ck_assert_int_eq(pg_parse_first(pkt, n, &f, NULL, 0), PG_FIRST_PEER_CANCEL);
    ck_assert_int_eq(pg_parse_first(pkt, n - 1, &f, NULL, 0), PG_FIRST_INCOMPLETE);
}
END_TEST

START_TEST(test_round_trip)
{
    static const size_t lens[] = {4, 32, 256};
    for (size_t i = 0; i < 3; i++) {
        struct peermsg m = msg_for(77 + (uint32_t)i, lens[i]), got;
        uint8_t pkt[PEERMSG_MAX];
        size_t n = build(pkt, &m);
        ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW, NULL, &got), PEERMSG_OK);
        ck_assert_uint_eq(got.pid, 77 + i);
        ck_assert_uint_eq(got.keylen, lens[i]);
        ck_assert_uint_eq(got.key[0], 0xA0);
        ck_assert_uint_eq(got.cancel_len, 12 + lens[i]);
        ck_assert_mem_eq(got.cancel, m.cancel, got.cancel_len);
        ck_assert_uint_eq(got.hops, PEERMSG_HOPS);
        ck_assert_uint_eq(got.origin, 3);
        ck_assert_uint_eq(got.ts_ms, NOW);
        ck_assert_mem_eq(got.nonce, m.nonce, 16);
    }
}
END_TEST

START_TEST(test_bad_mac)
{
    struct peermsg m = msg_for(5, 4), got;
    uint8_t pkt[PEERMSG_MAX];
    size_t n = build(pkt, &m);
    ck_assert_int_eq(peermsg_verify(pkt, n, other, 32, NOW, NULL, &got), PEERMSG_BAD_MAC);
    /* refused messages leave nothing behind */
    static const uint8_t zero[sizeof(struct peermsg)];
    ck_assert_mem_eq(&got, zero, sizeof(got));
    /* a short secret is never used, to sign or to check */
    ck_assert_uint_eq(peermsg_build(pkt, sizeof(pkt), &m, secret, 31), 0);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 31, NOW, NULL, &got), PEERMSG_BAD_MAC);
    /* every byte counts: flip each one, never accepted */
    for (size_t i = 0; i < n; i++) {
        pkt[i] ^= 0x01;
        enum peermsg_result r = peermsg_verify(pkt, n, secret, 32, NOW, NULL, &got);
        ck_assert_msg(r == PEERMSG_BAD_MAC || r == PEERMSG_MALFORMED, "byte %zu: %s", i,
                      peermsg_result_name(r));
        pkt[i] ^= 0x01;
    }
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW, NULL, &got), PEERMSG_OK);
}
END_TEST

START_TEST(test_window_hops_replay)
{
    struct peermsg m = msg_for(5, 4), got;
    uint8_t pkt[PEERMSG_MAX];
    size_t n = build(pkt, &m);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW + PEERMSG_WINDOW_MS, NULL, &got),
                     PEERMSG_OK);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW + PEERMSG_WINDOW_MS + 1, NULL, &got),
                     PEERMSG_STALE);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW - PEERMSG_WINDOW_MS, NULL, &got),
                     PEERMSG_OK);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW - PEERMSG_WINDOW_MS - 1, NULL, &got),
                     PEERMSG_STALE);
    m.hops = 0;
    n = build(pkt, &m);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW, NULL, &got), PEERMSG_NO_HOPS);

    struct peermsg_replay *rp = calloc(1, sizeof(*rp));
    ck_assert_ptr_nonnull(rp);
    m.hops = 1;
    n = build(pkt, &m);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW, rp, &got), PEERMSG_OK);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW + 10, rp, &got), PEERMSG_REPLAYED);
    /* a forged copy is refused for its MAC and does not touch the table */
    ck_assert_int_eq(peermsg_verify(pkt, n, other, 32, NOW, rp, &got), PEERMSG_BAD_MAC);
    ck_assert_uint_eq(rp->next, 1);
    m.nonce[0] ^= 1; /* another message */
    n = build(pkt, &m);
    ck_assert_int_eq(peermsg_verify(pkt, n, secret, 32, NOW, rp, &got), PEERMSG_OK);
    free(rp);
}
END_TEST

START_TEST(test_malformed)
{
    struct peermsg m = msg_for(5, 4), got;
    uint8_t pkt[PEERMSG_MAX], bad[PEERMSG_MAX];
    size_t n = build(pkt, &m);
    for (size_t len = 0; len < n; len++)
        ck_assert_int_eq(peermsg_parse(pkt, len, &got), PEERMSG_MALFORMED);
    ck_assert_int_eq(peermsg_parse(NULL, n, &got), PEERMSG_MALFORMED);
    struct {
        size_t off;
        uint8_t val;
    } cases[] = {
        {3, 87},        /* length word says one more */
        {7, 0x9f},      /* another code */
        {8, 2},         /* version */
        {11, 1},        /* reserved byte */
        {37, 17},       /* cancel length disagrees with the packet */
        {38 + 7, 0x2f}, /* the inner packet is not a CancelRequest */
        {38 + 3, 17},   /* the inner length word */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, pkt, n);
        bad[cases[i].off] = cases[i].val;
        ck_assert_msg(peermsg_parse(bad, n, &got) == PEERMSG_MALFORMED, "case %zu", i);
    }
    /* a CancelRequest too short to hold a key is refused by the builder */
    m.cancel_len = 12;
    ck_assert_uint_eq(peermsg_build(pkt, sizeof(pkt), &m, secret, 32), 0);
    m = msg_for(5, 4);
    ck_assert_uint_eq(peermsg_build(pkt, n - 1, &m, secret, 32), 0); /* no room */
    ck_assert_str_eq(peermsg_result_name(PEERMSG_REPLAYED), "replayed");
    ck_assert_str_eq(peermsg_result_name((enum peermsg_result)99), "invalid");
}
END_TEST

START_TEST(test_keys_carry_peer_id)
{
    uint8_t skey[4] = {1, 2, 3, 4}, k[4], first[4];
    uint32_t pid;
    struct keymap_entry *e[64];
    bool differ = false;
    for (int i = 0; i < 64; i++) {
        e[i] = keymap_add(NULL, 555, skey, 4, 7, &pid, k);
        ck_assert_ptr_nonnull(e[i]);
        ck_assert_uint_eq(k[0], 7);
        ck_assert_uint_eq(pid, 555);
        if (i == 0)
            memcpy(first, k, 4);
        else if (memcmp(first, k, 4) != 0)
            differ = true;
    }
    ck_assert(differ); /* the other 24 bits are random */
    for (int i = 0; i < 64; i++)
        keymap_remove(e[i]);
    ck_assert_ptr_null(keymap_add(NULL, 555, skey, 4, 256, &pid, k));
    /* peering off: every key is this instance's */
    ck_assert_uint_eq(peers_self(), 0);
    ck_assert_uint_eq(peers_owner(k, 4), 0);
    ck_assert_ptr_null(peers_route(7));
}
END_TEST

/* Write text to a new temporary file; its path in path. */
static void temp_file(char *path, size_t cap, const char *text)
{
    snprintf(path, cap, "/tmp/pgtp-peers-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* peers_init: the secret file's rules, this instance's own [peers] line
 * skipped, the owner of a key, and a message signed and checked with the
 * loaded secret through the process's replay table. */
START_TEST(test_peers_init)
{
    char good[64], shortf[64], err[512];
    struct config cfg;
    struct peer_conf self_line = {.id = 4, .host = (char *)"127.0.0.1", .port = 5432};
    memset(&cfg, 0, sizeof(cfg));
    temp_file(good, sizeof(good), "0123456789abcdef0123456789abcdef0123456789abcdef\r\n");
    temp_file(shortf, sizeof(shortf), "0123456789abcdef0123456789abcde\n"); /* 31 + newline */
    cfg.peer_id = 4;
    cfg.peer_ca_path = (char *)"/nonexistent/ca.pem"; /* never read: no other peer */
    cfg.peers = &self_line;
    cfg.npeers = 1;

    cfg.peer_secret_file = shortf;
    ck_assert_int_eq(peers_init(&cfg, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "the secret must be 32 to 4095 bytes") != NULL, "%s", err);
    ck_assert_uint_eq(peers_self(), 0);
    cfg.peer_secret_file = (char *)"/nonexistent/secret";
    ck_assert_int_eq(peers_init(&cfg, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "/nonexistent/secret: No such file") != NULL, "%s", err);

    cfg.peer_secret_file = good;
    ck_assert_int_eq(peers_init(&cfg, err, sizeof(err)), 0);
    ck_assert_uint_eq(peers_self(), 4);
    ck_assert_uint_eq(peers_count(), 0);
    const uint8_t mine[4] = {4, 1, 2, 3}, theirs[4] = {9, 1, 2, 3};
    ck_assert_uint_eq(peers_owner(mine, 4), 0);
    ck_assert_uint_eq(peers_owner(theirs, 4), 9);
    ck_assert_ptr_null(peers_route(9)); /* not listed: such a key cancels nothing */

    uint8_t cancel[16], pkt[PEERMSG_MAX];
    ck_assert_uint_eq(pg_build_cancel(cancel, sizeof(cancel), 77, mine, 4), 16);
    struct peermsg m, got;
    ck_assert(peers_fresh(&m, cancel, sizeof(cancel)));
    ck_assert_uint_eq(m.origin, 4);
    ck_assert_uint_eq(m.hops, PEERMSG_HOPS);
    size_t n = peers_sign(pkt, sizeof(pkt), &m);
    ck_assert_uint_eq(n, PEERMSG_FIXED + 16);
    /* the file's bytes without the line end are the key */
    const uint8_t file_secret[48] = "0123456789abcdef0123456789abcdef0123456789abcdef";
    ck_assert_int_eq(peermsg_verify(pkt, n, file_secret, 48, m.ts_ms, NULL, &got), PEERMSG_OK);
    ck_assert_int_eq(peers_verify(pkt, n, &got), PEERMSG_OK);
    ck_assert_uint_eq(got.pid, 77);
    ck_assert_int_eq(peers_verify(pkt, n, &got), PEERMSG_REPLAYED);

    peers_free();
    ck_assert_uint_eq(peers_self(), 0);
    ck_assert_int_eq(peers_verify(pkt, n, &got), PEERMSG_BAD_MAC); /* the secret is gone */
    unlink(good);
    unlink(shortf);
}
END_TEST

Suite *peermsg_suite(void)
{
    Suite *s = suite_create("peermsg");
    TCase *tc = tcase_create("peermsg");
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_bad_mac);
    tcase_add_test(tc, test_window_hops_replay);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_keys_carry_peer_id);
    tcase_add_test(tc, test_peers_init);
    suite_add_tcase(s, tc);
    return s;
}
