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

bool keymap_contains(uint32_t pid, const uint8_t *key, size_t keylen)
{
    bool found = false;
    pthread_mutex_lock(&lock);
    for (struct keymap_entry *e = buckets[bucket_of(pid)]; e != NULL && !found; e = e->next)
        found = e->pid == pid && e->keylen == keylen && CRYPTO_memcmp(e->key, key, keylen) == 0;
    pthread_mutex_unlock(&lock);
    return found;
}

size_t keymap_count(void)
{
    pthread_mutex_lock(&lock);
    size_t n = count;
    pthread_mutex_unlock(&lock);
    return n;
}
