/*
 * netaddr.h - socket addresses as the logs and the error texts show them:
 * "1.2.3.4:5432", "[::1]:5432", "?" for anything else.
 */
#ifndef PGTP_NETADDR_H
#define PGTP_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include <uv.h>

/* sa as "ip:port" (IPv6 in brackets), or "?" if it is neither family. */
void netaddr_format(const struct sockaddr *sa, char *buf, size_t len);
/* The peer of a connected socket, formatted; "?" if it has none. */
void netaddr_peer(const uv_tcp_t *tcp, char *buf, size_t len);
/* The address part of a formatted "ip:port" ("[::1]:5" -> "[::1]"). Returns buf. */
const char *netaddr_host(const char *addr, char *buf, size_t len);

#endif
