/*
 * fuzz_connector_allow.c - libFuzzer target for the connector's --allow
 * list (connector_allow_parse, connector_allowed).
 *
 * The input (up to its first NUL) is parsed as a list. A failure must leave
 * a non-empty error and no list. A success must give entries with a host
 * that is neither empty nor holds a '*', and a port from 1 to 65535, at
 * most one per comma-separated item; every entry must match itself, also
 * in upper case, and no entry may match its host with another port that is
 * not listed. The input is also taken as an OPEN target, as the connector
 * does, and matched. abort() on any disagreement.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connector.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

/* Is host:port listed, by a plain loop written here? */
static bool listed(const struct connector_allow *a, size_t n, const char *host, uint16_t port)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i].port != port || strlen(a[i].host) != strlen(host))
            continue;
        bool same = true;
        for (size_t k = 0; host[k] != '\0' && same; k++)
            same = tolower((unsigned char)host[k]) == tolower((unsigned char)a[i].host[k]);
        if (same)
            return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[2048], err[64], host[CONNECTOR_HOST_MAX], up[CONNECTOR_HOST_MAX];
    size_t len = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, len);
    text[len] = '\0';

    struct connector_allow *a = (struct connector_allow *)1;
    size_t n = 99, items = 1;
    for (const char *p = text; *p != '\0'; p++)
        items += *p == ',';
    if (connector_allow_parse(text, &a, &n, err, sizeof(err)) < 0) {
        require(a == NULL && n == 0 && err[0] != '\0');
    } else {
        require(a != NULL && n >= 1 && n <= items);
        for (size_t i = 0; i < n; i++) {
            require(a[i].host[0] != '\0' && strchr(a[i].host, '*') == NULL && a[i].port != 0);
            require(connector_allowed(a, n, a[i].host, a[i].port));
            size_t k = 0;
            for (; a[i].host[k] != '\0'; k++)
                up[k] = (char)toupper((unsigned char)a[i].host[k]);
            up[k] = '\0';
            require(connector_allowed(a, n, up, a[i].port));
            uint16_t other = (uint16_t)(a[i].port == 65535 ? 1 : a[i].port + 1);
            require(connector_allowed(a, n, a[i].host, other) == listed(a, n, a[i].host, other));
        }
    }
    uint16_t port;
    if (bridge_hostport_parse(text, host, sizeof(host), &port) == 0)
        require(connector_allowed(a, a != NULL ? n : 0, host, port) ==
                listed(a, a != NULL ? n : 0, host, port));
    free(a);
    return 0;
}
