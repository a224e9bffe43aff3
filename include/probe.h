/*
 * probe.h - the proxy's own upstream handshakes, with no client: --check
 * (print the verified chain, exit status) and the readiness probe behind
 * /readyz. Both run on dial + back (back.h) with their own completion
 * callbacks; neither has a front leg.
 */
#ifndef PGTP_PROBE_H
#define PGTP_PROBE_H

struct worker;

struct route;

/* --check: every route of w->routes in turn, each with its own roots and
 * name. w->probe_status becomes 0 (all verified; each chain is printed) or
 * 1 (each failure is reported on stderr; with several routes, every route
 * also has a block on stdout and a last line names the routes that
 * failed). Run w's loop until it is done. */
void probe_check_start(struct worker *w);
/* A quiet readiness probe of route r: its success feeds /readyz (metrics),
 * its failure counts as a probe failure, not a client's handshake. Does
 * nothing while a probe of r is still under way. */
void probe_health_start(struct worker *w, struct route *r);

#endif
