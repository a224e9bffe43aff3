/*
 * cidr.c - parse "CIDR[,CIDR...]" allow-lists and match peer addresses
 * against them.
 *
 * Owns: the array behind struct cidr_list (one allocation per successful
 * parse, freed by cidr_list_free). Parsing happens at start-up and on
 * reload, so it reports problems through err for the caller to print;
 * matching runs per connection and must never allocate, log or fail.
 *
 * Strict on purpose: a prefix with host bits set ("10.0.0.1/8") is refused
 * rather than silently masked, because the operator almost certainly meant
 * something else and an allow-list that is wider than intended is a hole.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest address text we hand to inet_pton (INET6_ADDRSTRLEN is 46, which
 * includes the NUL); anything longer cannot be an address. */
#define ADDR_TEXT_MAX INET6_ADDRSTRLEN

/* How much of an offending item or list an error message quotes. */
#define QUOTE_MAX 200

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Do the first bits bits of a and b agree? Both hold at least bits / 8
 * bytes, rounded up. */
static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* Clear every bit after the first bits; nbytes is the address size. */
static void mask_host_bits(uint8_t *addr, size_t nbytes, unsigned bits)
{
    for (size_t i = 0; i < nbytes; i++) {
        size_t first = 8 * i; /* bit number of this byte's top bit */
        if (bits >= first + 8)
            continue;
        addr[i] = bits > first ? (uint8_t)(addr[i] & (0xffu << (8 - (bits - first)))) : 0;
    }
}

/*
 * Parse one item, already trimmed: item[0..len), len > 0. Fills *c.
 */
static int parse_item(const char *item, size_t len, struct cidr *c, char *err, size_t errlen)
{
    int ilen = len > QUOTE_MAX ? QUOTE_MAX : (int)len;
    const char *slash = memchr(item, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - item) : len;
    char text[ADDR_TEXT_MAX];

    memset(c, 0, sizeof(*c));
    if (alen == 0 || alen >= sizeof(text)) {
        set_err(err, errlen, "\"%.*s\": not an IPv4 or IPv6 address", ilen, item);
        return -1;
    }
    memcpy(text, item, alen);
    text[alen] = '\0';

    unsigned maxbits;
    size_t nbytes;
    if (inet_pton(AF_INET, text, c->addr) == 1) {
        c->family = AF_INET;
        maxbits = 32;
        nbytes = 4;
    } else if (inet_pton(AF_INET6, text, c->addr) == 1) {
        c->family = AF_INET6;
        maxbits = 128;
        nbytes = 16;
    } else {
        set_err(err, errlen, "\"%.*s\": not an IPv4 or IPv6 address", ilen, item);
        return -1;
    }

    unsigned bits = maxbits;
    if (slash != NULL) {
        /* Decimal digits only: no sign, no spaces, no hex; at least one. */
        const char *p = slash + 1, *end = item + len;
        bool ok = p < end;
        bits = 0;
        for (; ok && p < end; p++) {
            if (*p < '0' || *p > '9' || bits > maxbits)
                ok = false;
            else
                bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (!ok || bits > maxbits) {
            set_err(err, errlen, "\"%.*s\": prefix length must be 0..%u", ilen, item, maxbits);
            return -1;
        }
    }
    c->bits = (uint8_t)bits;

    uint8_t masked[16];
    memcpy(masked, c->addr, sizeof(masked));
    mask_host_bits(masked, nbytes, bits);
    if (memcmp(masked, c->addr, nbytes) != 0) {
        char want[ADDR_TEXT_MAX];
        if (inet_ntop(c->family, masked, want, sizeof(want)) == NULL)
            snprintf(want, sizeof(want), "?");
        set_err(err, errlen, "\"%.*s\": host bits set (did you mean %s/%u?)", ilen, item, want,
                bits);
        return -1;
    }
    return 0;
}

/* Walks the comma-separated items of a list, each trimmed of blanks. */
struct items {
    const char *next; /* start of the next item; NULL after the last */
};

static bool next_item(struct items *it, const char **a, const char **b)
{
    if (it->next == NULL)
        return false;
    const char *p = it->next;
    const char *comma = strchr(p, ',');
    const char *end = comma != NULL ? comma : p + strlen(p);
    it->next = comma != NULL ? comma + 1 : NULL;
    while (p < end && is_space(*p))
        p++;
    while (end > p && is_space(end[-1]))
        end--;
    *a = p;
    *b = end;
    return true;
}

int cidr_list_parse(const char *s, struct cidr_list *out, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL) {
        set_err(err, errlen, "internal error: no list to fill");
        return -1;
    }
    out->v = NULL;
    out->n = 0;
    if (s == NULL) {
        set_err(err, errlen, "no address list");
        return -1;
    }

    /* Shape first: an empty item ("a,,b", a trailing comma) is reported as
     * such, whatever its neighbours look like. */
    size_t count = 0;
    struct items it = {.next = s};
    const char *a, *b;
    while (next_item(&it, &a, &b)) {
        if (a == b) {
            size_t total = strlen(s);
            int slen = total > QUOTE_MAX ? QUOTE_MAX : (int)total;
            set_err(err, errlen, "empty item in \"%.*s\"", slen, s);
            return -1;
        }
        count++;
    }

    /* A string always has at least one item, so count is at least 1; the
     * check keeps calloc(0) out of reach all the same. */
    struct cidr *v = count > 0 ? calloc(count, sizeof(*v)) : NULL;
    if (v == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    size_t n = 0;
    it.next = s;
    while (n < count && next_item(&it, &a, &b)) {
        if (parse_item(a, (size_t)(b - a), &v[n], err, errlen) != 0) {
            free(v);
            return -1;
        }
        n++;
    }
    out->v = v;
    out->n = n;
    return 0;
}

void cidr_list_free(struct cidr_list *l)
{
    if (l == NULL)
        return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/*
 * A peer address reduced to what the prefixes compare against. An
 * IPv4-mapped IPv6 peer (what a dual-stack socket reports for an IPv4
 * client) has both forms: its low 32 bits match IPv4 prefixes, and its
 * 16 bytes still match IPv6 prefixes such as ::ffff:0:0/96. A plain IPv4
 * peer matches IPv4 prefixes only.
 */
struct peer {
    bool has4, has6;
    uint8_t a4[4];
    uint8_t a6[16];
};

static bool peer_of(const struct sockaddr *sa, struct peer *pr)
{
    memset(pr, 0, sizeof(*pr));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        /* memcpy, not a cast: sa may be less aligned than sockaddr_in. */
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        memcpy(pr->a4, &sin.sin_addr, 4);
        pr->has4 = true;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, sa, sizeof(sin6));
        memcpy(pr->a6, &sin6.sin6_addr, 16);
        pr->has6 = true;
        if (memcmp(pr->a6, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
            memcpy(pr->a4, &pr->a6[12], 4);
            pr->has4 = true;
        }
        return true;
    }
    return false;
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
    struct peer pr;
    if (l == NULL || l->v == NULL || !peer_of(sa, &pr))
        return false;
    for (size_t i = 0; i < l->n; i++) {
        const struct cidr *c = &l->v[i];
        if (c->family == AF_INET && pr.has4 && c->bits <= 32 &&
            prefix_equal(c->addr, pr.a4, c->bits))
            return true;
        if (c->family == AF_INET6 && pr.has6 && c->bits <= 128 &&
            prefix_equal(c->addr, pr.a6, c->bits))
            return true;
    }
    return false;
}
