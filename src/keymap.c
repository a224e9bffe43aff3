/*
 * keymap.c - the proxy's cancel keys of live sessions, each with the
 * server's pid/key and the session's route: a chained hash table on the
 * proxy's pid, behind one mutex (look-ups are rare: one per cancel, one
 * per login).
 *
 * Owns the entries, both keys in them and a route reference each. Never
 * logs a key: a key is what lets anyone cancel a session's queries. The
 * client keeps the server's pid; the key is the proxy's, so a look-up
 * compares each live entry with that pid in constant time (CRYPTO_memcmp).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "keymap.h"
#include "route.h"

#define KEYMAP_BUCKETS 4096
/* Draws of a key before giving up: a draw collides only with a live entry
 * of the same pid (the same backend pid on another upstream) and the same
 * key: odds below 2^-32 per draw. */
#define KEYMAP_PID_TRIES 16

struct keymap_entry {
    struct keymap_entry *next, **pprev;
    uint32_t pid;            /* the proxy's: what the client was given */
    uint32_t server_pid;     /* the upstream's */
    uint16_t keylen;         /* both keys have this length */
    bool cancel_in_flight;   /* a forward of a cancel for this key is under way */
    uint64_t cancel_sent_ms; /* when the last one was delivered; 0: never */
    struct route *route;     /* the session's (a reference), or NULL */
    uint8_t *server_key;     /* = key + keylen */
    uint8_t key[];           /* the proxy's key, then the server's */
};

static struct keymap_entry *buckets[KEYMAP_BUCKETS];
static size_t count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t bucket_of(uint32_t pid)
{
    return (pid * 2654435761u) % KEYMAP_BUCKETS;
}

/* The entry for pid/key, or NULL. Several live entries may share a pid
 * (the same backend pid on two upstreams); each candidate's key is compared
 * in constant time, and at most one matches (keymap_add sees to it). The
 * length is not secret (the client chose what it sent). Locked. */
static struct keymap_entry *find(uint32_t pid, const uint8_t *key, size_t keylen)
{
    struct keymap_entry *hit = NULL;
    if (key == NULL)
        return NULL;
    for (struct keymap_entry *e = buckets[bucket_of(pid)]; e != NULL; e = e->next)
        if (e->pid == pid && e->keylen == keylen && CRYPTO_memcmp(e->key, key, keylen) == 0)
            hit = e;
    return hit;
}

struct keymap_entry *keymap_add(struct route *rt, uint32_t server_pid, const uint8_t *server_key,
                                size_t keylen, unsigned peer_id, uint32_t *client_pid,
                                uint8_t *client_key)
{
    if (keylen < KEYMAP_KEY_MIN || keylen > KEYMAP_KEY_MAX || server_key == NULL || peer_id > 255 ||
        client_pid == NULL || client_key == NULL)
        return NULL;
    struct keymap_entry *e = malloc(sizeof(*e) + 2 * keylen);
    if (e == NULL)
        return NULL;
    e->server_pid = server_pid;
    e->keylen = (uint16_t)keylen;
    e->cancel_in_flight = false;
    e->cancel_sent_ms = 0;
    e->server_key = e->key + keylen;
    memcpy(e->server_key, server_key, keylen);

    /* The client keeps the server's pid (pg_backend_pid(), a
     * NotificationResponse's pid and PQbackendPID agree, as tools expect);
     * the key is the proxy's own, random, unique among live entries with
     * that pid. */
    e->pid = server_pid;
    bool placed = false;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < KEYMAP_PID_TRIES && !placed; i++) {
        if (RAND_bytes(e->key, (int)keylen) != 1)
            break;
        if (peer_id != 0)
            e->key[0] = (uint8_t)peer_id; /* the owner, for the other instances */
        if (find(e->pid, e->key, keylen) != NULL ||
            CRYPTO_memcmp(e->key, e->server_key, keylen) == 0)
            continue;
        struct keymap_entry **head = &buckets[bucket_of(e->pid)];
        e->next = *head;
        if (*head != NULL)
            (*head)->pprev = &e->next;
        e->pprev = head;
        *head = e;
        count++;
        placed = true;
    }
    pthread_mutex_unlock(&lock);
    if (!placed)
        goto fail;
    e->route = rt != NULL ? route_ref(rt) : NULL;
    *client_pid = e->pid;
    memcpy(client_key, e->key, keylen);
    return e;
fail:
    OPENSSL_cleanse(e->key, 2 * keylen);
    free(e);
    return NULL;
}

void keymap_remove(struct keymap_entry *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&lock);
    *e->pprev = e->next;
    if (e->next != NULL)
        e->next->pprev = e->pprev;
    count--;
    pthread_mutex_unlock(&lock);
    /* The route may be freed here (a reload removed it): outside the lock. */
    route_unref(e->route);
    OPENSSL_cleanse(e->key, 2 * (size_t)e->keylen);
    e->server_pid = 0;
    free(e);
}

/* Copy what e stands for into *t (a new route reference). Locked: the
 * entry's reference keeps the route alive while it is taken. */
static void target_of(const struct keymap_entry *e, struct keymap_target *t)
{
    t->route = e->route != NULL ? route_ref(e->route) : NULL;
    t->pid = e->server_pid;
    t->keylen = e->keylen;
    memcpy(t->key, e->server_key, e->keylen);
}

void keymap_target_clear(struct keymap_target *t)
{
    if (t == NULL)
        return;
    route_unref(t->route);
    OPENSSL_cleanse(t, sizeof(*t));
    t->route = NULL;
}

bool keymap_contains(uint32_t pid, const uint8_t *key, size_t keylen)
{
    pthread_mutex_lock(&lock);
    bool found = find(pid, key, keylen) != NULL;
    pthread_mutex_unlock(&lock);
    return found;
}

bool keymap_lookup(uint32_t pid, const uint8_t *key, size_t keylen, struct keymap_target *t)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_lock(&lock);
    struct keymap_entry *e = find(pid, key, keylen);
    if (e != NULL)
        target_of(e, t);
    pthread_mutex_unlock(&lock);
    return e != NULL;
}

enum keymap_cancel keymap_cancel_begin(uint32_t pid, const uint8_t *key, size_t keylen,
                                       uint64_t now_ms, uint64_t coalesce_ms,
                                       struct keymap_target *t)
{
    enum keymap_cancel r = KEYMAP_UNKNOWN;
    if (t != NULL)
        memset(t, 0, sizeof(*t));
    pthread_mutex_lock(&lock);
    struct keymap_entry *e = find(pid, key, keylen);
    if (e != NULL && (e->cancel_in_flight ||
                      (e->cancel_sent_ms != 0 && now_ms - e->cancel_sent_ms < coalesce_ms))) {
        r = KEYMAP_COALESCED;
    } else if (e != NULL) {
        e->cancel_in_flight = true;
        if (t != NULL)
            target_of(e, t);
        r = KEYMAP_FORWARD;
    }
    pthread_mutex_unlock(&lock);
    return r;
}

void keymap_cancel_end(uint32_t pid, const uint8_t *key, size_t keylen, uint64_t now_ms, bool sent)
{
    pthread_mutex_lock(&lock);
    struct keymap_entry *e = find(pid, key, keylen);
    if (e != NULL) {
        e->cancel_in_flight = false;
        if (sent)
            e->cancel_sent_ms = now_ms != 0 ? now_ms : 1;
    }
    pthread_mutex_unlock(&lock);
}

size_t keymap_count(void)
{
    pthread_mutex_lock(&lock);
    size_t n = count;
    pthread_mutex_unlock(&lock);
    return n;
}
