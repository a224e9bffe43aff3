/*
 * sniwarn.c - warns when a client's SNI is not among the front
 * certificate's names (it will fail verify-full on its side, and the proxy
 * would otherwise log only an ordinary close).
 *
 * Owns one process-wide limiter under a mutex: a client that sends a new
 * SNI on every handshake must not be able to flood the log, so each name
 * logs at most once a minute and all names together SNI_LINES_PER_MIN lines.
 * Every mismatch is counted in the metrics, logged or not.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "sniwarn.h"
#include "tlsctx.h"

bool sni_limiter_allow(struct sni_limiter *l, const char *name, int64_t now, uint64_t *suppressed)
{
    char key[SNI_NAME_MAX];
    snprintf(key, sizeof(key), "%s", name);
    int found = -1, oldest = 0;
    for (int i = 0; i < SNI_SLOTS; i++) {
        if (l->slot[i].last != 0 && strcmp(l->slot[i].name, key) == 0)
            found = i;
        if (l->slot[i].last < l->slot[oldest].last)
            oldest = i; /* a free slot (0) is the oldest */
    }
    if (found >= 0 && now - l->slot[found].last < SNI_PER_NAME_S) {
        l->slot[found].suppressed++;
        return false;
    }
    if (now - l->window_start >= 60 || now < l->window_start) {
        l->window_start = now;
        l->lines = 0;
    }
    if (l->lines >= SNI_LINES_PER_MIN) {
        l->dropped++;
        return false;
    }
    int i = found >= 0 ? found : oldest;
    if (found < 0) {
        snprintf(l->slot[i].name, sizeof(l->slot[i].name), "%s", key);
        l->slot[i].suppressed = 0;
    }
    *suppressed = l->slot[i].suppressed + l->dropped;
    l->slot[i].suppressed = 0;
    l->slot[i].last = now > 0 ? now : 1;
    l->dropped = 0;
    l->lines++;
    return true;
}

static struct sni_limiter limiter;
static pthread_mutex_t limiter_lock = PTHREAD_MUTEX_INITIALIZER;

void sniwarn_check(SSL *ssl, unsigned long long conn_id, const char *front_addr)
{
    const char *sni = NULL;
    if (ssl == NULL || tlsctx_sni_covered(ssl, &sni))
        return;
    metrics_sni_mismatch();
    uint64_t suppressed = 0;
    pthread_mutex_lock(&limiter_lock);
    bool log_it = sni_limiter_allow(&limiter, sni, (int64_t)time(NULL), &suppressed);
    pthread_mutex_unlock(&limiter_lock);
    if (!log_it)
        return;
    char names[512], qs[300], qn[600];
    X509 *leaf = SSL_get_certificate(ssl);
    if (leaf != NULL)
        tlsctx_cert_names(leaf, names, sizeof(names));
    else
        snprintf(names, sizeof(names), "?");
    log_warn("event=sni_mismatch conn=%llu front=%s sni=\"%s\" certificate_names=\"%s\" "
             "not_logged_since=%llu hint=\"the client asked for a name the proxy's certificate "
             "does not carry: with sslmode=verify-full it will refuse the certificate; connect "
             "with a name the certificate carries, or add this name to the certificate of "
             "--server-certificate-path\"",
             conn_id, front_addr, log_escape(sni, qs, sizeof(qs)),
             log_escape(names, qn, sizeof(qn)), (unsigned long long)suppressed);
}
