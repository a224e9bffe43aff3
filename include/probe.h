/*
 * probe.h - the proxy's own upstream handshakes, with no client: --check
 * (print the verified chain, exit status) and the readiness probe behind
 * /readyz. Both run on dial + back (back.h) with their own completion
 * callbacks; neither has a front leg.
 */
#ifndef PGTP_PROBE_H
#define PGTP_PROBE_H

struct worker;

/* --check: w->probe_status becomes 0 (verified; the chain is printed) or
 * 1 (the reason is reported on stderr). Run w's loop until it is done. */
void probe_check_start(struct worker *w);
/* A quiet readiness probe: its success feeds /readyz (metrics), its
 * failure counts as a probe failure, not a client's handshake. */
void probe_health_start(struct worker *w);

#endif
