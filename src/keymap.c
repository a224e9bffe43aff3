/*
 * keymap.c - cancel keys of live sessions: a chained hash table on the
 * backend pid, behind one mutex (look-ups are rare: one per cancel).
 *
 * Owns the entries. Never logs a key: a key is what lets anyone cancel a
 * session's queries.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keymap.h"

#define KEYMAP_BUCKETS 4096

struct keymap_entry {
    struct keymap_entry *next, **pprev;
    uint32_t pid;
    uint16_t keylen;
    bool cancel_in_flight;   /* a forward of a cancel for this key is under way */
    uint64_t cancel_sent_ms; /* when the last one was delivered; 0: never */
    uint8_t key[];
};

static struct keymap_entry *buckets[KEYMAP_BUCKETS];
static size_t count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t bucket_of(uint32_t pid)
{
    return (pid * 2654435761u) % KEYMAP_BUCKETS;
}

struct keymap_entry *keymap_add(uint32_t pid, const uint8_t *key, size_t keylen)
{
    if (keylen == 0 || keylen > 256)
        return NULL;
    struct keymap_entry *e = malloc(sizeof(*e) + keylen);
    if (e == NULL)
        return NULL;
    e->pid = pid;
    e->cancel_in_flight = false;
    e->cancel_sent_ms = 0;
    e->keylen = (uint16_t)keylen;
    memcpy(e->key, key, keylen);
    pthread_mutex_lock(&lock);
    struct keymap_entry **head = &buckets[bucket_of(pid)];
    e->next = *head;
    if (*head != NULL)
        (*head)->pprev = &e->next;
    e->pprev = head;
    *head = e;
    count++;
    pthread_mutex_unlock(&lock);
    return e;
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
    OPENSSL_cleanse(e->key, e->keylen);
    free(e);
}

/* The entry for pid/key, or NULL; the key compare is constant-time. Locked. */
static struct keymap_entry *find(uint32_t pid, const uint8_t *key, size_t keylen)
{
    for (struct keymap_entry *e = buckets[bucket_of(pid)]; e != NULL; e = e->next)
        if (e->pid == pid && e->keylen == keylen && CRYPTO_memcmp(e->key, key, keylen) == 0)
            return e;
    return NULL;
}

bool keymap_contains(uint32_t pid, const uint8_t *key, size_t keylen)
{
    pthread_mutex_lock(&lock);
    bool found = find(pid, key, keylen) != NULL;
    pthread_mutex_unlock(&lock);
    return found;
}

enum keymap_cancel keymap_cancel_begin(uint32_t pid, const uint8_t *key, size_t keylen,
                                       uint64_t now_ms, uint64_t coalesce_ms)
{
    enum keymap_cancel r = KEYMAP_UNKNOWN;
    pthread_mutex_lock(&lock);
    struct keymap_entry *e = find(pid, key, keylen);
    if (e != NULL && (e->cancel_in_flight ||
                      (e->cancel_sent_ms != 0 && now_ms - e->cancel_sent_ms < coalesce_ms))) {
        r = KEYMAP_COALESCED;
    } else if (e != NULL) {
        e->cancel_in_flight = true;
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
