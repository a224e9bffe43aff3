/*
 * fuzz_pgtrack.c - libFuzzer target for pgtrack_client / pgtrack_server.
 *
 * The input is a list of feeds: a control byte (bit 7: server, else
 * client; bits 0-6: length) and that many bytes. Two trackers are fed the
 * same feeds, one in the given chunks and one a byte at a time; their
 * states must agree after every feed (framing across reads), a failure
 * must stick and return -1 ever after, and a failed tracker is never idle.
 * abort() on any disagreement.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgtrack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgtrack a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    size_t i = 0;
    while (i < size) {
        bool server = data[i] & 0x80;
        size_t n = data[i] & 0x7f;
        i++;
        if (n > size - i)
            n = size - i;
        bool was_failed = a.failed;
        int (*feed)(struct pgtrack *, const uint8_t *, size_t) =
            server ? pgtrack_server : pgtrack_client;
        int ra = feed(&a, data + i, n);
        int rb = 0;
        for (size_t k = 0; k < n; k++)
            rb |= feed(&b, data + i + k, 1);
        if (n == 0)
            rb = feed(&b, data + i, 0);
        require((ra < 0) == a.failed);
        require((rb < 0) == b.failed);
        require(a.failed == b.failed);
        require(!was_failed || ra < 0);
        if (!a.failed) {
            require(a.pending == b.pending && a.unsynced == b.unsynced);
            require(memcmp(&a.client, &b.client, sizeof(a.client)) == 0);
            require(memcmp(&a.server, &b.server, sizeof(a.server)) == 0);
        }
        require(!a.failed || !pgtrack_idle(&a));
        require(a.client.have < 5 && a.server.have < 5);
        i += n;
    }
    return 0;
}
