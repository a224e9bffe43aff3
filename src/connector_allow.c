/*
 * connector_allow.c - the connector's --allow list: parsing
 * "host:port[,host:port...]" and matching an OPEN's target against it.
 * Pure (no sockets, no loop, no logging): unit-tested and fuzzed.
 *
 * The match is on the host text exactly (case-insensitive) and the port:
 * no wildcards, no resolving, so that what an operator listed is all the
 * proxy can reach, whatever a DNS answer says.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connector.h"

int connector_allow_parse(const char *text, struct connector_allow **list, size_t *n, char *err,
                          size_t errlen)
{
    *list = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = text; *p != '\0'; p++)
        cap += *p == ',';
    struct connector_allow *a = calloc(cap, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (const char *p = text;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char item[CONNECTOR_HOST_MAX + 16];
        while (len > 0 && (*p == ' ' || *p == '\t'))
            p++, len--;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 0 || len >= sizeof(item)) {
            snprintf(err, errlen, "--allow: %s item in \"%.200s\"",
                     len == 0 ? "an empty" : "a too long", text);
            free(a);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (bridge_hostport_parse(item, a[k].host, sizeof(a[k].host), &a[k].port) < 0) {
            snprintf(err, errlen, "--allow: \"%s\" is not HOST:PORT ([v6]:PORT for IPv6)", item);
            free(a);
            return -1;
        }
        if (strchr(a[k].host, '*') != NULL) {
            snprintf(err, errlen,
                     "--allow: \"%s\": wildcards are not accepted; list every host:port the "
                     "proxy may reach",
                     item);
            free(a);
            return -1;
        }
        k++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    *list = a;
    *n = k;
    return 0;
}

bool connector_allowed(const struct connector_allow *list, size_t n, const char *host,
                       uint16_t port)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].port == port && strcasecmp(list[i].host, host) == 0)
            return true;
    return false;
}
