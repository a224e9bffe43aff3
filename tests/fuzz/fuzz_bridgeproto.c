/*
 * fuzz_bridgeproto.c - libFuzzer target for the bridge protocol's codecs
 * (src/bridgeproto.c, issue 15).
 *
 * The input is taken as bytes a connection received: the preamble is
 * decoded, then frames one after another as a reader would, each payload
 * searched for the keys the proxy and the connector read. A payload
 * accepted for a key is rebuilt with the frame builder from what was
 * found and must decode to the same value; a host:port value that parses
 * must print back to text that parses to the same host and port. Stream
 * ids and tokens round-trip through hex. abort() on any disagreement.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridgeproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

static const char *const keys[] = {"v",       "id",        "secret", "name",   "heartbeat",
                                   "reason",  "stream",    "token",  "target", "code",
                                   "message", "connector", "t"};

static void check_value(const char *key, const char *v)
{
    uint8_t buf[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    struct bridge_frame f;
    bridge_frame_begin(&f, buf, sizeof(buf), BRIDGE_FAIL);
    bridge_frame_add(&f, key, v);
    int n = bridge_frame_end(&f);
    require(n > 0);
    uint8_t type;
    const uint8_t *pl;
    size_t plen, used;
    require(bridge_frame_decode(buf, (size_t)n, &type, &pl, &plen, &used) == 1);
    require(type == BRIDGE_FAIL && used == (size_t)n);
    char again[BRIDGE_VALUE_MAX + 1];
    require(bridge_payload_get(pl, plen, key, again, sizeof(again)) == 1);
    require(strcmp(again, v) == 0);

    char host[BRIDGE_VALUE_MAX + 1], host2[BRIDGE_VALUE_MAX + 1], text[BRIDGE_VALUE_MAX + 16];
    uint16_t port, port2;
    if (bridge_hostport_parse(v, host, sizeof(host), &port) == 0) {
        bool v6 = strchr(host, ':') != NULL;
        snprintf(text, sizeof(text), v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)port);
        require(bridge_hostport_parse(text, host2, sizeof(host2), &port2) == 0);
        require(strcmp(host, host2) == 0 && port == port2);
    }
    uint64_t s;
    if (bridge_stream_parse(v, &s) == 0) {
        char hex[17];
        bridge_stream_format(s, hex);
        uint64_t s2;
        require(bridge_stream_parse(hex, &s2) == 0 && s2 == s);
    }
    uint8_t tok[BRIDGE_TOKEN_LEN], tok2[BRIDGE_TOKEN_LEN];
    if (bridge_token_parse(v, tok) == 0) {
        char hex[2 * BRIDGE_TOKEN_LEN + 1];
        bridge_token_format(tok, hex);
        require(bridge_token_parse(hex, tok2) == 0 && memcmp(tok, tok2, sizeof(tok)) == 0);
    }
    (void)bridge_id_valid(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size > 0 ? size : 1);
    require(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);
    size_t off = 0;
    uint64_t stream;
    int r = bridge_preamble_decode(buf, size, &stream);
    if (r == 1)
        off = BRIDGE_PREAMBLE_LEN;
    while (off < size) {
        uint8_t type;
        const uint8_t *pl;
        size_t plen, used;
        r = bridge_frame_decode(buf + off, size - off, &type, &pl, &plen, &used);
        if (r <= 0)
            break;
        require(used == BRIDGE_FRAME_HDR + plen && used <= size - off);
        require(bridge_frame_type_known(type));
        for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
            char v[BRIDGE_VALUE_MAX + 1];
            if (bridge_payload_get(pl, plen, keys[k], v, sizeof(v)) == 1)
                check_value(keys[k], v);
        }
        off += used;
    }
    free(buf);
    return 0;
}
