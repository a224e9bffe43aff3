/*
 * fuzz_pgtrack.c - libFuzzer target for pgtrack_client / pgtrack_server.
 *
 * The input is a list of feeds: a control byte (bit 7: server, else
 * client; bits 0-6: length) and that many bytes. Two trackers are fed the
 * same feeds, one in the given chunks and one a byte at a time; their
 * states must agree after every feed (framing across reads), a failure
 * must stick and return -1 ever after, and a failed tracker is never idle.
 * Before each server feed, pgtrack_server_boundary is checked against
 * feeding. abort() on any disagreement.
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

/* The same framing state: header bytes collected (stale ones beyond
 * `have` do not count) and body left to skip. */
static bool same_dir(const struct pgtrack_dir *x, const struct pgtrack_dir *y)
{
    return x->have == y->have && x->skip == y->skip && memcmp(x->hdr, y->hdr, x->have) == 0;
}

/* pgtrack_server_boundary: feeding the n bytes it names ends exactly at a
 * message boundary, and one byte fewer does not; SIZE_MAX only when buf
 * does not reach one (feeding all of it leaves the tracker mid-message). */
static void check_boundary(const struct pgtrack *t, const uint8_t *buf, size_t len)
{
    size_t n = pgtrack_server_boundary(t, buf, len);
    struct pgtrack c = *t;
    if (n == SIZE_MAX) {
        if (pgtrack_server(&c, buf, len) == 0)
            require(len == 0 ? !(t->server.have == 0 && t->server.skip == 0)
                             : !(c.server.have == 0 && c.server.skip == 0) || t->failed);
        return;
    }
    require(n <= len);
    require(pgtrack_server(&c, buf, n) == 0 && c.server.have == 0 && c.server.skip == 0);
    if (n > 0) {
        struct pgtrack d = *t;
        require(pgtrack_server(&d, buf, n - 1) == 0 && !(d.server.have == 0 && d.server.skip == 0));
    }
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
        if (server)
            check_boundary(&a, data + i, n);
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
            require(same_dir(&a.client, &b.client));
            require(same_dir(&a.server, &b.server));
        }
        require(!a.failed || !pgtrack_idle(&a));
        require(a.client.have < 5 && a.server.have < 5);
        i += n;
    }
    return 0;
}
