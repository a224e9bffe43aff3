/*
 * bridgeauth.c - who may be a connector (issue 15): the bridges file
 * (authfile.c's userlist format, one SCRAM-SHA-256 verifier per bridge id)
 * and the check of a HELLO's secret against it.
 *
 * The check is SCRAM's: SaltedPassword = PBKDF2(secret, salt, iterations),
 * ClientKey from it, and SHA-256(ClientKey) must equal the StoredKey
 * (CRYPTO_memcmp). PBKDF2 at 100,000 iterations costs tens of milliseconds,
 * so it runs on libuv's threadpool, BRIDGE_KDF_RUNNING at a time with
 * BRIDGE_KDF_QUEUED more waiting: a flood of HELLOs gets REJECT "busy"
 * rather than the whole pool (which DNS lookups share). A verified secret
 * is remembered as (id, verifier, SHA-256(secret)): a connector that
 * reconnects costs one hash. An entry goes when its verifier changes.
 *
 * Owns: the KDF jobs (their copy of the secret, wiped) and the cache.
 * Never: logs or keeps a secret; answers unknown id and wrong secret
 * differently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "authfile.h"
#include "bridgeint.h"

struct bkdf {
    uv_work_t work;
    struct bctl *c; /* holds a reference while running */
    char secret[BRIDGE_VALUE_MAX + 1];
    struct scram_secret v;
    bool ok;
};

void bauth_reject_text(const char *id, char *buf, size_t cap)
{
    snprintf(buf, cap, "bridge %s: wrong secret or unknown bridge id", id);
}

struct authfile *bauth_load(const char *path, char *err, size_t errlen)
{
    char e[900];
    struct authfile *af = authfile_load(path, e, sizeof(e));
    if (af == NULL) {
        snprintf(err, errlen, "--bridges-file: %s", e);
        return NULL;
    }
    for (size_t i = 0; i < authfile_count(af); i++) {
        size_t line = 0;
        const char *id = authfile_user_at(af, i, &line);
        if (!bridge_id_valid(id)) {
            snprintf(err, errlen,
                     "--bridges-file \"%s\" line %zu: \"%.80s\" is not a bridge id (1-%d of "
                     "A-Z a-z 0-9 _ . -)",
                     path, line, id, BRIDGE_ID_MAX);
            authfile_free(af);
            return NULL;
        }
    }
    return af;
}

static bool same_verifier(const struct scram_secret *a, const struct scram_secret *b)
{
    return a->iterations == b->iterations && a->salt_len == b->salt_len &&
           memcmp(a->salt, b->salt, a->salt_len) == 0 &&
           memcmp(a->stored_key, b->stored_key, sizeof(a->stored_key)) == 0 &&
           memcmp(a->server_key, b->server_key, sizeof(a->server_key)) == 0;
}

const char *bauth_reload_reason(const struct authfile *oldf, const struct authfile *newf,
                                const char *id)
{
    const struct scram_secret *nv = authfile_find(newf, id);
    const struct scram_secret *ov = authfile_find(oldf, id);
    if (nv == NULL)
        return "bridge removed";
    if (ov == NULL || !same_verifier(ov, nv))
        return "bridge secret changed";
    return NULL;
}

/* ---- the cache ---- */

static void secret_hash(const char *secret, uint8_t out[32])
{
    SHA256((const unsigned char *)secret, strlen(secret), out);
}

static struct bcache *cache_find(struct bstate *b, const char *id)
{
    for (size_t i = 0; i < b->ncache; i++)
        if (strcmp(b->cache[i].id, id) == 0)
            return &b->cache[i];
    return NULL;
}

static void cache_remove(struct bstate *b, struct bcache *e)
{
    struct bcache *last = &b->cache[b->ncache - 1];
    if (e != last)
        *e = *last;
    OPENSSL_cleanse(last, sizeof(*last));
    b->ncache--;
}

static void cache_put(struct bstate *b, const char *id, const struct scram_secret *v,
                      const uint8_t hash[32])
{
    struct bcache *e = cache_find(b, id);
    if (e == NULL) {
        if (b->ncache == BRIDGE_CACHE_MAX)
            cache_remove(b, &b->cache[0]);
        e = &b->cache[b->ncache++];
    }
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->verifier = *v;
    memcpy(e->hash, hash, 32);
}

void bauth_cache_prune(struct bstate *b, const struct authfile *newf)
{
    for (size_t i = 0; i < b->ncache;) {
        const struct scram_secret *v = authfile_find(newf, b->cache[i].id);
        if (v == NULL || !same_verifier(v, &b->cache[i].verifier))
            cache_remove(b, &b->cache[i]); /* the last moved here: look again */
        else
            i++;
    }
}

/* ---- PBKDF2 on the threadpool ---- */

static uv_mutex_t *test_gate;

void bauth_test_gate(uv_mutex_t *gate)
{
    test_gate = gate;
}

static void kdf_work(uv_work_t *req)
{
    struct bkdf *k = req->data;
    if (test_gate != NULL) { /* unit tests: jobs that last as long as they need */
        uv_mutex_lock(test_gate);
        uv_mutex_unlock(test_gate);
    }
    uint8_t salted[SCRAM_KEY_LEN], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
    k->ok =
        scram_salted_password(k->secret, k->v.salt, k->v.salt_len, k->v.iterations, salted) == 0 &&
        (scram_keys(salted, client_key, stored, NULL),
         CRYPTO_memcmp(stored, k->v.stored_key, SCRAM_KEY_LEN) == 0);
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client_key, sizeof(client_key));
    /* The pool's threads live until exit: give OpenSSL's per-thread state back. */
    OPENSSL_thread_stop();
}

static void kdf_free(struct bkdf *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
    free(k);
}

static void kdf_start_next(struct bstate *b);

static void kdf_done(uv_work_t *req, int status)
{
    struct bkdf *k = req->data;
    struct bctl *c = k->c;
    struct bstate *b = c->b;
    b->kdf_running--;
    c->kdf = NULL;
    if (status == 0 && k->ok) {
        uint8_t h[32];
        secret_hash(k->secret, h);
        /* Only if the file still holds this verifier (no reload meanwhile). */
        const struct scram_secret *now = authfile_find(b->file, c->id);
        if (now != NULL && same_verifier(now, &k->v))
            cache_put(b, c->id, &k->v, h);
        else
            k->ok = false;
        OPENSSL_cleanse(h, sizeof(h));
    }
    char text[256];
    bauth_reject_text(c->id, text, sizeof(text));
    bool ok = status == 0 && k->ok;
    kdf_free(k);
    bctl_auth_done(c, ok, text); /* nothing if c closed meanwhile */
    bctl_unref(c);
    kdf_start_next(b);
}

static void kdf_run(struct bstate *b, struct bctl *c)
{
    struct bkdf *k = c->kdf;
    k->work.data = k;
    c->refs++;
    b->kdf_running++;
    if (uv_queue_work(b->loop, &k->work, kdf_work, kdf_done) != 0) {
        b->kdf_running--;
        c->kdf = NULL;
        kdf_free(k);
        bctl_auth_done(c, false, "the proxy cannot check the secret now: retry later");
        bctl_unref(c);
    }
}

static void kdf_start_next(struct bstate *b)
{
    while (b->kdf_running < BRIDGE_KDF_RUNNING && b->kdf_head != NULL) {
        struct bctl *c = b->kdf_head;
        b->kdf_head = c->qnext;
        if (b->kdf_head == NULL)
            b->kdf_tail = NULL;
        c->qnext = NULL;
        b->kdf_queued--;
        kdf_run(b, c);
    }
}

void bauth_check(struct bctl *c, const char *secret)
{
    struct bstate *b = c->b;
    char text[256];
    const struct scram_secret *v = authfile_find(b->file, c->id);
    bauth_reject_text(c->id, text, sizeof(text));
    if (v == NULL) {
        bctl_auth_done(c, false, text);
        return;
    }
    uint8_t h[32];
    secret_hash(secret, h);
    struct bcache *e = cache_find(b, c->id);
    bool hit = e != NULL && same_verifier(&e->verifier, v) && CRYPTO_memcmp(e->hash, h, 32) == 0;
    OPENSSL_cleanse(h, sizeof(h));
    if (hit) {
        bctl_auth_done(c, true, NULL);
        return;
    }
    if (b->kdf_running >= BRIDGE_KDF_RUNNING && b->kdf_queued >= BRIDGE_KDF_QUEUED) {
        bctl_auth_done(c, false,
                       "busy: too many connectors are logging in at once; retry in a moment");
        return;
    }
    struct bkdf *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        bctl_auth_done(c, false, "the proxy is out of memory: retry later");
        return;
    }
    k->c = c;
    k->v = *v;
    snprintf(k->secret, sizeof(k->secret), "%s", secret);
    c->kdf = k;
    if (b->kdf_running < BRIDGE_KDF_RUNNING) {
        kdf_run(b, c);
        return;
    }
    if (b->kdf_tail != NULL)
        b->kdf_tail->qnext = c;
    else
        b->kdf_head = c;
    b->kdf_tail = c;
    b->kdf_queued++;
}

void bauth_cancel(struct bctl *c)
{
    struct bstate *b = c->b;
    if (c->kdf == NULL)
        return;
    /* Queued (not running): out of the queue. Running: kdf_done drops it. */
    for (struct bctl **p = &b->kdf_head, *prev = NULL; *p != NULL; prev = *p, p = &(*p)->qnext) {
        if (*p != c)
            continue;
        *p = c->qnext;
        if (b->kdf_tail == c)
            b->kdf_tail = prev;
        c->qnext = NULL;
        b->kdf_queued--;
        kdf_free(c->kdf);
        c->kdf = NULL;
        return;
    }
}
