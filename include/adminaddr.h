/*
 * adminaddr.h - parsing and printing the admin endpoint's address
 * (--admin-address).
 */
#ifndef PGTP_ADMINADDR_H
#define PGTP_ADMINADDR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * "host:port", "[v6]:port" or "port" (meaning 127.0.0.1:port); the host is
 * numeric or "localhost". Fills *ss and returns 0, or -1 with err filled
 * ("--admin-address \"x\": ..."). Never resolves names.
 */
int adminaddr_parse(const char *a, struct sockaddr_storage *ss, char *err, size_t errlen);

/* "127.0.0.1:9187" or "[::1]:9187" of an AF_INET or AF_INET6 address. */
void adminaddr_text(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
