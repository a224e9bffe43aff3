/*
 * netaddr.c - the one address formatter (it replaced four: the session's
 * peer and upstream addresses, the listener's bound addresses, the
 * client's bare IP). Pure, no allocation.
 */
#include "netaddr.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void netaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa != NULL && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(buf, len, "%s:%d", ip, ntohs(a->sin_port));
    } else if (sa != NULL && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

void netaddr_peer(const uv_tcp_t *tcp, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(buf, len, "?");
        return;
    }
    netaddr_format((const struct sockaddr *)&ss, buf, len);
}

const char *netaddr_host(const char *addr, char *buf, size_t len)
{
    snprintf(buf, len, "%s", addr);
    char *colon = strrchr(buf, ':');
    if (colon != NULL && colon != buf)
        *colon = '\0';
    return buf;
}
