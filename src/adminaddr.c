/*
 * adminaddr.c - the --admin-address value: "host:port", "[v6]:port" or a
 * bare port, to a socket address, and back to text for the log.
 *
 * Pure apart from libuv's address conversions: no sockets, no DNS, no
 * logging (errors go to the caller's buffer, quoted with log_escape).
 */
#include "adminaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "log.h"

/* "1-65535", digits only: no sign, space or suffix that strtoul would allow. */
static int parse_port(const char *s, int *port)
{
    long v = 0;
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static int bad_port(const char *q, const char *portstr, char *err, size_t errlen)
{
    char pq[32];
    snprintf(err, errlen, "--admin-address \"%s\": port \"%s\" is not a number from 1 to 65535", q,
             log_escape(portstr, pq, sizeof(pq)));
    return -1;
}

/*
 * "host:port", "[v6]:port" or "port" (meaning 127.0.0.1:port). The host is
 * a numeric address (or "localhost"): the admin endpoint is set up before
 * the loop runs and should not wait on DNS, and a name that resolves to
 * several addresses would leave it unclear which one is served.
 */
int adminaddr_parse(const char *a, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[64], q[96];
    const char *portstr;
    int port;

    log_escape(a, q, sizeof(q));
    memset(ss, 0, sizeof(*ss));
    if (a[0] == '\0') {
        snprintf(err, errlen,
                 "--admin-address \"\": empty; expected host:port, [ipv6]:port or a port");
        return -1;
    }
    if (a[0] == '[') {
        const char *end = strchr(a, ']');
        if (end == NULL || end[1] != ':') {
            snprintf(err, errlen, "--admin-address \"%s\": expected [ipv6]:port", q);
            return -1;
        }
        size_t hl = (size_t)(end - a - 1);
        if (hl == 0 || hl >= sizeof(host)) {
            snprintf(err, errlen, "--admin-address \"%s\": not an IPv6 address in brackets", q);
            return -1;
        }
        memcpy(host, a + 1, hl);
        host[hl] = '\0';
        portstr = end + 2;
        if (parse_port(portstr, &port) < 0)
            return bad_port(q, portstr, err, errlen);
        if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) != 0) {
            char hq[96];
            snprintf(err, errlen, "--admin-address \"%s\": \"%s\" is not an IPv6 address", q,
                     log_escape(host, hq, sizeof(hq)));
            return -1;
        }
        return 0;
    }

    const char *colon = strchr(a, ':');
    if (colon == NULL) {
        snprintf(host, sizeof(host), "127.0.0.1");
        portstr = a;
    } else if (strchr(colon + 1, ':') != NULL) {
        snprintf(err, errlen,
                 "--admin-address \"%s\": an IPv6 address goes in brackets, as in [::1]:9187", q);
        return -1;
    } else {
        size_t hl = (size_t)(colon - a);
        if (hl == 0 || hl >= sizeof(host)) {
            snprintf(err, errlen,
                     "--admin-address \"%s\": expected host:port, [ipv6]:port or a port", q);
            return -1;
        }
        memcpy(host, a, hl);
        host[hl] = '\0';
        portstr = colon + 1;
    }
    if (parse_port(portstr, &port) < 0)
        return bad_port(q, portstr, err, errlen);
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) != 0) {
        char hq[96];
        snprintf(err, errlen,
                 "--admin-address \"%s\": \"%s\" is not a numeric IPv4 address (IPv6 goes in "
                 "brackets)",
                 q, log_escape(host, hq, sizeof(hq)));
        return -1;
    }
    return 0;
}

/* "127.0.0.1:9187" or "[::1]:9187" */
void adminaddr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(s6, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        uv_ip4_name(s4, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
}
