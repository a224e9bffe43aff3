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
     * PROXY command with AF_INET/AF_INET6 over STREAM); 0 for v1 UNKNOWN,
     * v2 LOCAL (health checks) and v2 PROXY with UNSPEC/UNIX family or a
     * non-STREAM transport: then use the socket's own peer address, and
     * src/dst are all zeros. Ports are in network order. */
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
 * 0 is returned only while the bytes so far can still begin a valid header,
 * so -1 or a length is final: more bytes never change it. A client that
 * sends a StartupMessage, SSLRequest (first byte 0x00) or TLS ClientHello
 * (0x16) is refused on its first byte. On 0 or -1, *out is all zeros; err
 * is "" unless -1. out and err may be NULL.
 *
 * v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", TCP6 likewise, or
 * "PROXY UNKNOWN...\r\n" (anything up to the CRLF is ignored); single
 * spaces; addresses as inet_pton reads them for the family; ports 0..65535
 * decimal without leading zeros beyond "0"; at most 107 bytes with CRLF.
 * v2: 12-byte signature \r\n\r\n\0\r\nQUIT\n, version/command byte 0x2?
 * (0x20 LOCAL, 0x21 PROXY; anything else invalid), family/transport byte,
 * 16-bit big-endian length of the rest, total bounded by PROXYPROTO_V2_MAX.
 * LOCAL: family byte and block ignored, has_addr = 0. PROXY: family 0..3
 * and transport 0..2, else invalid; the length must cover the family's
 * address block (INET 12, INET6 36, UNIX 216 bytes), TLVs after it are
 * skipped; has_addr = 1 only for INET/INET6 over STREAM (0x11, 0x21), and
 * UNSPEC, UNIX or a non-STREAM transport give has_addr = 0 (the spec lets a
 * receiver accept them and use the connection's own addresses).
 */
int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto *out, char *err,
                     size_t errlen);

#endif
