/*
 * fuzz_peermsg.c - libFuzzer target for the PeerCancelRequest parser and
 * verifier (src/peermsg.c).
 *
 * The input is taken as a whole packet. peermsg_parse must never read past
 * it, and must agree with pg_parse_first's classification (a packet it
 * accepts is a PG_FIRST_PEER_CANCEL). An accepted one is rebuilt from its
 * fields with a test secret: the rebuilt bytes equal the input but for the
 * MAC, verify accepts the rebuilt one (or says no_hops when its hops are
 * 0) at its own timestamp and refuses it one window later, and refuses the
 * input itself unless its MAC happens to be right. abort() on any
 * disagreement.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peermsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

static const uint8_t secret[40] = "fuzz-secret-fuzz-secret-fuzz-secret-fuzz";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A heap copy of exactly size bytes, so that ASan sees reads past it. */
    uint8_t *buf = malloc(size > 0 ? size : 1);
    require(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);
    struct peermsg m, v;
    enum peermsg_result r = peermsg_parse(buf, size, &m);
    require(r == PEERMSG_OK || r == PEERMSG_MALFORMED);
    if (r != PEERMSG_OK) {
        free(buf);
        return 0;
    }
    struct pg_first f;
    require(pg_parse_first(buf, size, &f, NULL, 0) == PG_FIRST_PEER_CANCEL && f.len == size);
    require(m.cancel_len >= PEERMSG_CANCEL_MIN && m.cancel_len <= PEERMSG_CANCEL_MAX);
    require(m.keylen + 12 == m.cancel_len);

    uint8_t out[PEERMSG_MAX];
    size_t n = peermsg_build(out, sizeof(out), &m, secret, sizeof(secret));
    require(n == size);
    require(memcmp(out, buf, size - PEERMSG_MAC) == 0);
    r = peermsg_verify(out, n, secret, sizeof(secret), m.ts_ms, NULL, &v);
    require(r == (m.hops > 0 ? PEERMSG_OK : PEERMSG_NO_HOPS));
    if (r == PEERMSG_OK) {
        require(v.pid == m.pid && v.keylen == m.keylen && memcmp(v.key, m.key, m.keylen) == 0);
        if (m.ts_ms < UINT64_MAX - PEERMSG_WINDOW_MS - 1)
            require(peermsg_verify(out, n, secret, sizeof(secret), m.ts_ms + PEERMSG_WINDOW_MS + 1,
                                   NULL, &v) == PEERMSG_STALE);
    }
    if (memcmp(out + size - PEERMSG_MAC, buf + size - PEERMSG_MAC, PEERMSG_MAC) != 0)
        require(peermsg_verify(buf, size, secret, sizeof(secret), m.ts_ms, NULL, &v) ==
                PEERMSG_BAD_MAC);
    free(buf);
    return 0;
}
