/*
 * adminready.h - what /readyz and /readyz/NAME answer (adminready.c).
 */
#ifndef PGTP_ADMINREADY_H
#define PGTP_ADMINREADY_H

#include <stddef.h>

/*
 * /readyz (route NULL): ready when every route of the running configuration
 * had a verified upstream TLS handshake within window seconds; the body
 * says so on its first line, then one line per route. /readyz/NAME: the
 * same for one route; 404 if no running route has that name. The body
 * (malloc'd) goes to *body. Returns the status (500: out of memory, no body).
 */
int adminready_body(const char *route, unsigned window, char **body, size_t *len);

#endif
