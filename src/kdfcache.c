/*
 * kdfcache.c - the SaltedPassword cache of --auth-mode password
 * (kdfcache.h): a direct-mapped table under one mutex.
 */
#include "kdfcache.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

struct slot {
    bool used;
    uint8_t key[KDFCACHE_KEY_LEN];
    uint8_t salted[32];
};

static struct slot slots[KDFCACHE_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Each field is length-prefixed, so no two inputs hash alike by shifting
 * bytes from one field to the next. */
static void put_field(EVP_MD_CTX *md, const void *p, size_t n)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    EVP_DigestUpdate(md, len, sizeof(len));
    EVP_DigestUpdate(md, p, n);
}

void kdfcache_key(const char *user, const uint8_t *salt, size_t salt_len, unsigned iterations,
                  const char *password, size_t pwlen, uint8_t key[KDFCACHE_KEY_LEN])
{
    uint8_t it[4] = {(uint8_t)(iterations >> 24), (uint8_t)(iterations >> 16),
                     (uint8_t)(iterations >> 8), (uint8_t)iterations};
    unsigned outlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    memset(key, 0, KDFCACHE_KEY_LEN);
    if (md == NULL)
        return;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
        put_field(md, "pg-tls-proxy kdfcache", 21);
        put_field(md, user, strlen(user));
        put_field(md, salt, salt_len);
        put_field(md, it, sizeof(it));
        put_field(md, password, pwlen);
        EVP_DigestFinal_ex(md, key, &outlen);
    }
    EVP_MD_CTX_free(md);
}

static struct slot *slot_of(const uint8_t key[KDFCACHE_KEY_LEN])
{
    return &slots[((size_t)key[0] << 8 | key[1]) % KDFCACHE_SLOTS];
}

bool kdfcache_get(const uint8_t key[KDFCACHE_KEY_LEN], uint8_t out[32])
{
    bool hit = false;
    pthread_mutex_lock(&lock);
    struct slot *s = slot_of(key);
    if (s->used && CRYPTO_memcmp(s->key, key, KDFCACHE_KEY_LEN) == 0) {
        memcpy(out, s->salted, 32);
        hit = true;
    }
    pthread_mutex_unlock(&lock);
    return hit;
}

void kdfcache_put(const uint8_t key[KDFCACHE_KEY_LEN], const uint8_t salted[32])
{
    pthread_mutex_lock(&lock);
    struct slot *s = slot_of(key);
    memcpy(s->key, key, KDFCACHE_KEY_LEN);
    memcpy(s->salted, salted, 32);
    s->used = true;
    pthread_mutex_unlock(&lock);
}

void kdfcache_clear(void)
{
    pthread_mutex_lock(&lock);
    OPENSSL_cleanse(slots, sizeof(slots));
    memset(slots, 0, sizeof(slots));
    pthread_mutex_unlock(&lock);
}
