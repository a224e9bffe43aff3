/*
 * cidr.h - address allow-lists: "CIDR[,CIDR...]" of IPv4 and IPv6 prefixes.
 */
#ifndef PGTP_CIDR_H
#define PGTP_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

struct cidr {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t bits;   /* prefix length */
    uint8_t addr[16];
};

struct cidr_list {
    struct cidr *v;
    size_t n;
};

/*
 * Parse "10.0.0.0/8, ::1, 127.0.0.1/32" (spaces around commas allowed; an
 * address without "/bits" is a host route). Host bits set beyond the prefix
 * are an error ("10.0.0.1/8: host bits set"), as are empty items, bad
 * addresses and prefixes over 32/128. Returns 0, or -1 with err filled; on
 * error out is left empty. out->v is heap memory freed by cidr_list_free.
 */
int cidr_list_parse(const char *s, struct cidr_list *out, char *err, size_t errlen);
void cidr_list_free(struct cidr_list *l);

/*
 * True if sa (AF_INET or AF_INET6) is inside one of the prefixes. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 prefixes too.
 */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

#endif
