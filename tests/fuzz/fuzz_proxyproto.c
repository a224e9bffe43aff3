/*
 * fuzz_proxyproto.c - libFuzzer target for proxyproto_parse.
 *
 * The input is parsed as the first bytes of a connection. Invariants, each
 * an abort() when broken:
 * - the result is -1, 0, or a length 1..min(len, 107 for v1, 528 for v2);
 *   -1 comes with an error message, 0 and a length with an empty one; on
 *   -1 and 0 the output struct is all zeros;
 * - 0 only for fewer bytes than the longest header (a strict prefix);
 * - decisions are final: fed byte by byte, the answer is 0 up to some point
 *   and then one fixed value, the one for the whole input; bytes appended
 *   to a complete header change nothing;
 * - a header with addresses has two sockaddrs of one family, AF_INET or
 *   AF_INET6; one without has zeros; re-encoding the addresses as a v1
 *   line and as a v2 header parses back to the same struct.
 * Then the input is tried as one address (and as one port) inside a v1
 * line: accepted exactly when inet_pton (or plain decimal 0..65535 without
 * leading zeros) accepts it, with the same bytes.
 * Every call gets a heap copy of exactly the bytes it may read, so ASan
 * catches a read past them.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERRLEN 96
/* Longer than any header, so a 0 here is a bug. */
#define PREFIX_LIMIT (PROXYPROTO_V2_MAX + 1)

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

/* Parse data[0..n) from an exact-size heap copy; check the invariants that
 * hold for any single call. */
static int parse_exact(const uint8_t *data, size_t n, struct proxyproto *pp)
{
    uint8_t *copy = malloc(n > 0 ? n : 1);
    char *err = malloc(ERRLEN);
    if (copy == NULL || err == NULL)
        abort();
    if (n > 0)
        memcpy(copy, data, n);
    memset(err, 'x', ERRLEN);
    memset(pp, 0xa5, sizeof(*pp));

    int r = proxyproto_parse(copy, n, pp, err, ERRLEN);

    require(memchr(err, 0, ERRLEN) != NULL);
    require(r >= -1);
    if (r == -1)
        require(err[0] != '\0');
    else
        require(err[0] == '\0');
    if (r <= 0) {
        require(all_zero(pp, sizeof(*pp)));
    } else {
        require(pp->version == 1 || pp->version == 2);
        require(data[0] == (pp->version == 1 ? 'P' : 0x0d));
        size_t max = pp->version == 1 ? PROXYPROTO_V1_MAX : PROXYPROTO_V2_MAX;
        require((size_t)r <= n && (size_t)r <= max);
        if (pp->version == 1)
            require(r >= 2 && data[r - 2] == '\r' && data[r - 1] == '\n');
        else
            require(r >= 16);
        require(pp->has_addr == 0 || pp->has_addr == 1);
        if (pp->has_addr) {
            int f = pp->src.ss_family;
            require(f == AF_INET || f == AF_INET6);
            require(pp->dst.ss_family == f);
            if (pp->version == 1)
                require(n >= 11 &&
                        memcmp(data, f == AF_INET ? "PROXY TCP4 " : "PROXY TCP6 ", 11) == 0);
        } else {
            require(all_zero(&pp->src, sizeof(pp->src)));
            require(all_zero(&pp->dst, sizeof(pp->dst)));
        }
    }
    if (r == 0 && n > 0)
        require(n < (data[0] == 'P' ? PROXYPROTO_V1_MAX : PROXYPROTO_V2_MAX));
    free(err);
    free(copy);
    return r;
}

/* Byte by byte: 0 ... 0, then the final answer from there on. */
static void check_prefixes(const uint8_t *data, size_t size, int final)
{
    size_t stop = size < PREFIX_LIMIT ? size : PREFIX_LIMIT;
    bool decided = false;
    for (size_t k = 0; k <= stop; k++) {
        struct proxyproto pp;
        int r = parse_exact(data, k, &pp);
        decided = decided || r != 0;
        if (decided)
            require(r == final);
    }
}

/* The same header with bytes after it. */
static void check_appended(const uint8_t *data, size_t size, int r, const struct proxyproto *pp,
                           const uint8_t *more, size_t nmore)
{
    uint8_t *buf = malloc(size + nmore);
    require(buf != NULL);
    memcpy(buf, data, size);
    if (nmore > 0)
        memcpy(buf + size, more, nmore);
    struct proxyproto again;
    require(parse_exact(buf, size + nmore, &again) == r);
    require(memcmp(&again, pp, sizeof(again)) == 0);
    free(buf);
}

/* Address and port (host order) out of a sockaddr the parser filled. */
static void split(const struct sockaddr_storage *ss, uint8_t addr[16], uint16_t *port)
{
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, ss, sizeof(sin));
        memcpy(addr, &sin.sin_addr, 4);
        *port = ntohs(sin.sin_port);
    } else {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, ss, sizeof(sin6));
        memcpy(addr, &sin6.sin6_addr, 16);
        *port = ntohs(sin6.sin6_port);
    }
}

/* Encode pp's addresses as a v1 line and a v2 header; both must parse back
 * to pp (as v1 and v2). */
static void check_reencode(const struct proxyproto *pp)
{
    int f = pp->src.ss_family;
    size_t alen = f == AF_INET ? 4 : 16;
    uint8_t sa[16], da[16];
    uint16_t sp, dp;
    split(&pp->src, sa, &sp);
    split(&pp->dst, da, &dp);

    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], line[200];
    require(inet_ntop(f, sa, s, sizeof(s)) != NULL);
    require(inet_ntop(f, da, d, sizeof(d)) != NULL);
    int n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n", f == AF_INET ? "TCP4" : "TCP6",
                     s, d, (unsigned)sp, (unsigned)dp);
    require(n > 0 && (size_t)n < sizeof(line));
    struct proxyproto back;
    int r = parse_exact((const uint8_t *)line, (size_t)n, &back);
    if (n > PROXYPROTO_V1_MAX) {
        /* Two long IPv6 texts can make a line the spec does not allow. */
        require(r == -1);
    } else {
        require(r == n && back.version == 1 && back.has_addr == 1);
        require(memcmp(&back.src, &pp->src, sizeof(back.src)) == 0);
        require(memcmp(&back.dst, &pp->dst, sizeof(back.dst)) == 0);
    }

    static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
    uint8_t bin[16 + 36];
    size_t blen = 2 * alen + 4;
    memcpy(bin, sig, sizeof(sig));
    bin[12] = 0x21;
    bin[13] = f == AF_INET ? 0x11 : 0x21;
    bin[14] = 0;
    bin[15] = (uint8_t)blen;
    memcpy(bin + 16, sa, alen);
    memcpy(bin + 16 + alen, da, alen);
    bin[16 + 2 * alen] = (uint8_t)(sp >> 8);
    bin[17 + 2 * alen] = (uint8_t)sp;
    bin[18 + 2 * alen] = (uint8_t)(dp >> 8);
    bin[19 + 2 * alen] = (uint8_t)dp;
    r = parse_exact(bin, 16 + blen, &back);
    require(r == (int)(16 + blen) && back.version == 2 && back.has_addr == 1);
    require(memcmp(&back.src, &pp->src, sizeof(back.src)) == 0);
    require(memcmp(&back.dst, &pp->dst, sizeof(back.dst)) == 0);
}

/* Reference for a v1 port: decimal 0..65535, no sign, no leading zeros. */
static bool ref_port(const char *s, unsigned *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return v <= 65535;
}

/* The input as one field of an otherwise good v1 line. */
static void check_field(const char *text, const char *fmt, int family, bool valid,
                        const uint8_t *want_addr, unsigned want_port)
{
    char line[256];
    int n = snprintf(line, sizeof(line), fmt, text);
    require(n > 0 && (size_t)n < sizeof(line));
    struct proxyproto pp;
    int r = parse_exact((const uint8_t *)line, (size_t)n, &pp);
    check_prefixes((const uint8_t *)line, (size_t)n, r);
    if (n > PROXYPROTO_V1_MAX) {
        require(r == -1);
        return;
    }
    require(valid ? r == n : r == -1);
    if (!valid)
        return;
    require(pp.has_addr == 1 && pp.src.ss_family == family);
    uint8_t a[16];
    uint16_t p;
    split(&pp.src, a, &p);
    if (want_addr != NULL)
        require(memcmp(a, want_addr, family == AF_INET ? 4 : 16) == 0);
    else
        require(p == want_port);
}

static void check_text(const uint8_t *data, size_t size)
{
    if (size > INET6_ADDRSTRLEN + 8)
        return;
    for (size_t i = 0; i < size; i++)
        if (data[i] == ' ' || data[i] == '\r' || data[i] == '\n' || data[i] == '\0')
            return;
    char text[INET6_ADDRSTRLEN + 9];
    memcpy(text, data, size);
    text[size] = '\0';

    uint8_t a4[4], a6[16];
    bool v4 = inet_pton(AF_INET, text, a4) == 1;
    bool v6 = inet_pton(AF_INET6, text, a6) == 1;
    check_field(text, "PROXY TCP4 %s 192.0.2.1 1 2\r\n", AF_INET, v4, a4, 0);
    check_field(text, "PROXY TCP6 %s ::1 1 2\r\n", AF_INET6, v6, a6, 0);
    unsigned port = 0;
    bool pok = ref_port(text, &port);
    check_field(text, "PROXY TCP4 192.0.2.1 192.0.2.2 %s 2\r\n", AF_INET, pok, NULL, port);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxyproto pp;
    int r = parse_exact(data, size, &pp);
    check_prefixes(data, size, r);

    if (r > 0) {
        static const uint8_t junk[] = {0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f,
                                       '\r', '\n', 'P',  0x0d, 0x0a, ' ',  0xff, 0x00};
        check_appended(data, (size_t)r, r, &pp, junk, sizeof(junk));
        check_appended(data, (size_t)r, r, &pp, data, size);
        if (pp.has_addr)
            check_reencode(&pp);
    }

    check_text(data, size);
    return 0;
}
