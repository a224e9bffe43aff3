/*
 * peers.c - the other instances (peers.h): their routes, the shared
 * secret, and the replay table of PeerCancelRequests received.
 *
 * Owns the secret (wiped by peers_free, never logged), a route per peer
 * and the replay table. Trust: a peer is reached with SSLRequest and TLS
 * verified against --peer-ca-path and the peer's name (or
 * --peer-tls-validation-host): the instances present their client-facing
 * certificate, which the upstreams' CA roots (--client-ca-roots-path) do
 * not sign, and the system roots would trust anyone with a public
 * certificate for that name. TLS keeps the forwarded key secret; the HMAC
 * (peermsg.c) is what makes an instance act, so a stranger who can reach
 * the client port still cannot make it cancel or forward.
 */
#include "peers.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "config.h"
#include "route.h"
#include "tlsctx.h"

#define PEERS_SECRET_MAX 4096

static unsigned self;
static uint8_t secret[PEERS_SECRET_MAX];
static size_t secretlen;
static struct route *by_id[256];
static size_t npeers;
static pthread_mutex_t replay_lock = PTHREAD_MUTEX_INITIALIZER;
static struct peermsg_replay replay;

/* The secret file's bytes, a trailing newline (as `openssl rand -hex 32 >
 * file` writes) dropped. */
static int load_secret(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "--peer-secret-file %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(secret, 1, sizeof(secret), f);
    int more = fgetc(f);
    fclose(f);
    while (n > 0 && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
        n--;
    if (more != EOF || n < PEERMSG_SECRET_MIN) {
        OPENSSL_cleanse(secret, sizeof(secret));
        snprintf(err, errlen,
                 "--peer-secret-file %s: the secret must be %d to %d bytes (e.g. openssl rand "
                 "-hex 32 > FILE, the same file on every instance)",
                 path, PEERMSG_SECRET_MIN, PEERS_SECRET_MAX - 1);
        return -1;
    }
    secretlen = n;
    return 0;
}

/* The route to one peer: its address, the peers' CA and name. */
static struct route *peer_route(const struct config *cfg, const struct peer_conf *p, char *err,
                                size_t errlen)
{
    struct config pc;
    struct tls_contexts ctx;
    char e[1024], name[32];

    memset(&pc, 0, sizeof(pc));
    pc.upstream_host = p->host;
    pc.upstream_port = p->port;
    pc.upstream_verify_name = cfg->peer_verify_name != NULL ? cfg->peer_verify_name : p->host;
    pc.ca_roots_path = cfg->peer_ca_path;
    pc.back_min_tls = 13; /* both ends are this program */
    pc.connect_timeout_s = cfg->connect_timeout_s;
    pc.keepalive_s = cfg->keepalive_s;
    if (tlsctx_build_route(&pc, false, &ctx, e, sizeof(e)) < 0) {
        snprintf(err, errlen, "peer %u (%s:%u): --peer-ca-path: %s", p->id, p->host, p->port, e);
        return NULL;
    }
    struct route *r = route_new(&pc, ctx.back, e, sizeof(e));
    tlsctx_contexts_free(&ctx);
    snprintf(name, sizeof(name), "peer-%u", p->id);
    char *n = r != NULL ? strdup(name) : NULL;
    if (n == NULL) {
        snprintf(err, errlen, "peer %u: %s", p->id, r == NULL ? e : "out of memory");
        route_unref(r);
        return NULL;
    }
    free(r->name);
    r->name = n;
    /* The instances share their settings: behind a PROXY-protocol balancer
     * each expects a header, which another instance sends as LOCAL. */
    r->proxy_local = cfg->proxy_protocol;
    return r;
}

int peers_init(const struct config *cfg, char *err, size_t errlen)
{
    peers_free();
    if (cfg->peer_id == 0)
        return 0;
    if (load_secret(cfg->peer_secret_file, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < cfg->npeers; i++) {
        const struct peer_conf *p = &cfg->peers[i];
        if (p->id == cfg->peer_id) /* one [peers] list for every instance */
            continue;
        if ((by_id[p->id] = peer_route(cfg, p, err, errlen)) == NULL) {
            peers_free();
            return -1;
        }
        npeers++;
    }
    self = cfg->peer_id;
    return 0;
}

void peers_free(void)
{
    for (size_t i = 0; i < 256; i++) {
        route_unref(by_id[i]);
        by_id[i] = NULL;
    }
    npeers = 0;
    self = 0;
    OPENSSL_cleanse(secret, sizeof(secret));
    secretlen = 0;
    pthread_mutex_lock(&replay_lock);
    memset(&replay, 0, sizeof(replay));
    pthread_mutex_unlock(&replay_lock);
}

unsigned peers_self(void)
{
    return self;
}

unsigned peers_owner(const uint8_t *key, size_t keylen)
{
    if (self == 0 || key == NULL || keylen == 0 || key[0] == self)
        return 0;
    return key[0];
}

struct route *peers_route(unsigned id)
{
    return id < 256 && by_id[id] != NULL ? route_ref(by_id[id]) : NULL;
}

size_t peers_count(void)
{
    return npeers;
}

uint64_t peers_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

size_t peers_sign(uint8_t *out, size_t cap, const struct peermsg *m)
{
    return peermsg_build(out, cap, m, secret, secretlen);
}

bool peers_fresh(struct peermsg *m, const uint8_t *cancel, size_t len)
{
    memset(m, 0, sizeof(*m));
    if (len > sizeof(m->cancel) || RAND_bytes(m->nonce, PEERMSG_NONCE) != 1)
        return false;
    m->hops = PEERMSG_HOPS;
    m->origin = (uint8_t)self;
    m->ts_ms = peers_now_ms();
    memcpy(m->cancel, cancel, len);
    m->cancel_len = len;
    return true;
}

enum peermsg_result peers_verify(const uint8_t *pkt, size_t len, struct peermsg *m)
{
    pthread_mutex_lock(&replay_lock);
    enum peermsg_result r = peermsg_verify(pkt, len, secret, secretlen, peers_now_ms(), &replay, m);
    pthread_mutex_unlock(&replay_lock);
    return r;
}
