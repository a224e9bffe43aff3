/*
 * proxyproto.h - the PROXY protocol header (HAProxy's, versions 1 and 2) a
 * TCP load balancer such as AWS NLB puts before the client's first byte.
 *
 * Pure: no sockets, no allocation; driven by unit tests and a fuzzer.
 */
#ifndef PGTP_PROXYPROTO_H
#define PGTP_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

/* v1 is at most 107 bytes; v2 is 16 + a 16-bit length, bounded here. */
#define PROXYPROTO_V1_MAX 107
#define PROXYPROTO_V2_MAX (16 + 512)

struct proxyproto {
    int version; /* 1 or 2 */
    /* 1 when the header carries the client's address (PROXY TCP4/TCP6, v2
     * PROXY command with AF_INET/AF_INET6 over STREAM); 0 for v1 UNKNOWN and
     * v2 LOCAL (health checks): then use the socket's own peer address. */
    int has_addr;
    struct sockaddr_storage src; /* the client, when has_addr */
    struct sockaddr_storage dst; /* the address the client connected to */
};

/*
 * Parse a header at the start of buf (len bytes received so far).
 * Returns the header length (> 0) when complete and valid, 0 when more
 * bytes are needed, -1 when invalid (err says why: "not a PROXY protocol
 * header", "v1 line longer than 107 bytes", "v2 address block too short for
 * AF_INET", ...). Never reads past buf + len. Bytes after the header are the
 * client's own (the PostgreSQL start-up).
 *
 * v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", TCP6 likewise, or
 * "PROXY UNKNOWN...\r\n"; addresses must parse for their family, ports
 * 0..65535 decimal without leading zeros beyond "0".
 * v2: 12-byte signature \r\n\r\n\0\r\nQUIT\n, version/command byte 0x2?
 * (0x20 LOCAL, 0x21 PROXY), family/protocol byte (0x11 TCP4, 0x21 TCP6;
 * others: has_addr = 0 for LOCAL, invalid for PROXY), 16-bit big-endian
 * length of the rest (must cover the address block; TLVs after it are
 * skipped), total bounded by PROXYPROTO_V2_MAX.
 */
int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto *out, char *err,
                     size_t errlen);

#endif
