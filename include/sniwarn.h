/*
 * sniwarn.h - a client asked (SNI) for a name the front certificate does not
 * carry: it will refuse the certificate under verify-full, and the proxy
 * sees only an ordinary close. Logged, rate limited, and counted.
 */
#ifndef PGTP_SNIWARN_H
#define PGTP_SNIWARN_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define SNI_SLOTS 32         /* names remembered for their own rate limit */
#define SNI_NAME_MAX 64      /* of each name, for matching (longer: truncated) */
#define SNI_PER_NAME_S 60    /* one line per name per this many seconds */
#define SNI_LINES_PER_MIN 20 /* and at most this many lines a minute in all */

struct sni_limiter {
    struct {
        char name[SNI_NAME_MAX];
        int64_t last;        /* unix seconds of its last line; 0: free slot */
        uint64_t suppressed; /* mismatches since its last line */
    } slot[SNI_SLOTS];
    int64_t window_start; /* of the current minute */
    unsigned lines;       /* logged in it */
    uint64_t dropped;     /* suppressed by the global cap, told on the next line */
};

/*
 * True if a line about name may be logged at now; suppressed then receives
 * how many mismatches were not logged since (this name's and the global
 * cap's). Pure: the caller holds whatever lock guards l.
 */
bool sni_limiter_allow(struct sni_limiter *l, const char *name, int64_t now, uint64_t *suppressed);

/* After the front handshake: log and count an SNI the certificate does not cover. */
void sniwarn_check(SSL *ssl, unsigned long long conn_id, const char *front_addr);

#endif
