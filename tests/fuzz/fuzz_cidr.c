/*
 * fuzz_cidr.c - libFuzzer target for cidr_list_parse and cidr_list_match.
 *
 * The input (up to its first NUL) is parsed as an allow-list. A failure must
 * leave a non-empty, terminated error and an empty list. A success must give
 * well-formed prefixes (family, length in range, no host bits) that print
 * and parse back to the same list. Then a few peer addresses derived from
 * the input and from the prefixes themselves are matched, and each answer
 * is compared with a bit-by-bit reference written here. abort() on any
 * disagreement.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERRLEN 48 /* small on purpose: long items get truncated */

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool bit(const uint8_t *a, unsigned i)
{
    return (a[i / 8] >> (7 - i % 8)) & 1;
}

static bool ref_prefix(const uint8_t *net, const uint8_t *addr, unsigned bits)
{
    for (unsigned i = 0; i < bits; i++)
        if (bit(net, i) != bit(addr, i))
            return false;
    return true;
}

/* A peer: family plus 4 or 16 address bytes. */
struct peer {
    int family;
    uint8_t a[16];
};

static bool ref_match(const struct cidr_list *l, const struct peer *p)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    bool is_mapped = p->family == AF_INET6 && memcmp(p->a, mapped, 12) == 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct cidr *c = &l->v[i];
        if (c->family == AF_INET && p->family == AF_INET && ref_prefix(c->addr, p->a, c->bits))
            return true;
        if (c->family == AF_INET && is_mapped && ref_prefix(c->addr, p->a + 12, c->bits))
            return true;
        if (c->family == AF_INET6 && p->family == AF_INET6 && ref_prefix(c->addr, p->a, c->bits))
            return true;
    }
    return false;
}

static bool do_match(const struct cidr_list *l, const struct peer *p)
{
    /* In a heap buffer of exactly the sockaddr's size, so ASan sees reads
     * past it. */
    bool r;
    if (p->family == AF_INET) {
        struct sockaddr_in *sin = calloc(1, sizeof(*sin));
        require(sin != NULL);
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, p->a, 4);
        r = cidr_list_match(l, (const struct sockaddr *)sin);
        free(sin);
    } else {
        struct sockaddr_in6 *sin6 = calloc(1, sizeof(*sin6));
        require(sin6 != NULL);
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, p->a, 16);
        r = cidr_list_match(l, (const struct sockaddr *)sin6);
        free(sin6);
    }
    return r;
}

static void check_peer(const struct cidr_list *l, const struct peer *p)
{
    bool got = do_match(l, p);
    require(got == ref_match(l, p));
    /* An IPv4 peer that matches also matches as its mapped IPv6 form. */
    if (p->family == AF_INET && got) {
        struct peer m = {.family = AF_INET6};
        m.a[10] = m.a[11] = 0xff;
        memcpy(m.a + 12, p->a, 4);
        require(do_match(l, &m));
    }
}

static void check_prefix(const struct cidr *c)
{
    unsigned maxbits = c->family == AF_INET ? 32 : 128;
    require(c->family == AF_INET || c->family == AF_INET6);
    require(c->bits <= maxbits);
    for (unsigned i = c->bits; i < maxbits; i++)
        require(!bit(c->addr, i));
    if (c->family == AF_INET)
        for (size_t i = 4; i < sizeof(c->addr); i++)
            require(c->addr[i] == 0);
}

/* Print the list back as text and parse it again: same prefixes. */
static void check_round_trip(const struct cidr_list *l)
{
    size_t cap = l->n * (INET6_ADDRSTRLEN + 8) + 1;
    char *text = malloc(cap);
    require(text != NULL);
    size_t pos = 0;
    for (size_t i = 0; i < l->n; i++) {
        char addr[INET6_ADDRSTRLEN];
        require(inet_ntop(l->v[i].family, l->v[i].addr, addr, sizeof(addr)) != NULL);
        int w = snprintf(text + pos, cap - pos, "%s%s/%u", i > 0 ? ", " : "", addr,
                         (unsigned)l->v[i].bits);
        require(w > 0 && (size_t)w < cap - pos);
        pos += (size_t)w;
    }
    struct cidr_list again;
    char err[ERRLEN];
    require(cidr_list_parse(text, &again, err, sizeof(err)) == 0);
    require(again.n == l->n);
    for (size_t i = 0; i < l->n; i++) {
        const struct cidr *a = &l->v[i], *b = &again.v[i];
        require(a->family == b->family && a->bits == b->bits &&
                memcmp(a->addr, b->addr, sizeof(a->addr)) == 0);
    }
    cidr_list_free(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    require(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';

    struct cidr_list l;
    char *err = malloc(ERRLEN);
    require(err != NULL);
    memset(err, 'x', ERRLEN);
    int r = cidr_list_parse(s, &l, err, ERRLEN);
    require(memchr(err, 0, ERRLEN) != NULL);
    if (r != 0) {
        require(r == -1);
        require(err[0] != '\0');
        require(l.v == NULL && l.n == 0);
        free(err);
        free(s);
        return 0;
    }
    require(r == 0 && err[0] == '\0');
    require(l.v != NULL && l.n >= 1);
    for (size_t i = 0; i < l.n; i++)
        check_prefix(&l.v[i]);
    check_round_trip(&l);

    /* Peers from the input bytes: cycled over 16 bytes, as IPv4, IPv6 and
     * IPv4-mapped IPv6. */
    struct peer p4 = {.family = AF_INET}, p6 = {.family = AF_INET6};
    for (size_t i = 0; i < 16 && size > 0; i++)
        p6.a[i] = data[(i * 7) % size];
    memcpy(p4.a, p6.a, 4);
    check_peer(&l, &p4);
    check_peer(&l, &p6);
    struct peer pm = {.family = AF_INET6};
    pm.a[10] = pm.a[11] = 0xff;
    memcpy(pm.a + 12, p4.a, 4);
    check_peer(&l, &pm);

    /* Peers from each prefix: its network address (always inside), the
     * same with the last prefix bit flipped (outside this prefix), and with
     * the lowest bit flipped (inside unless it is a host route). */
    for (size_t i = 0; i < l.n && i < 16; i++) {
        const struct cidr *c = &l.v[i];
        unsigned maxbits = c->family == AF_INET ? 32 : 128;
        struct peer q = {.family = c->family};
        memcpy(q.a, c->addr, sizeof(q.a));
        require(do_match(&l, &q));
        check_peer(&l, &q);
        if (c->bits > 0) {
            unsigned b = c->bits - 1u;
            q.a[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
            check_peer(&l, &q);
            q.a[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
        }
        unsigned low = maxbits - 1;
        q.a[low / 8] ^= 1;
        bool in = do_match(&l, &q);
        require(in == ref_match(&l, &q));
        if (c->bits < maxbits)
            require(in);
    }

    cidr_list_free(&l);
    require(l.v == NULL && l.n == 0);
    free(err);
    free(s);
    return 0;
}
