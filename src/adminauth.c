/*
 * adminauth.c - the admin endpoint's protection of /sessions: listing shows
 * user names and client addresses, and terminate ends a session, so they
 * answer loopback peers by default and, once --admin-token-file is set,
 * only requests that carry its token (Authorization: Bearer, RFC 6750).
 *
 * Owns nothing beyond the caller's struct admin_token. The token is kept
 * as a SHA-256 digest and compared with CRYPTO_memcmp, so neither its
 * bytes nor its length leak through timing; the file's bytes are wiped
 * after use and never logged (errors name the file, not its content).
 */
#include "adminauth.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

bool adminauth_is_loopback(const struct sockaddr *addr)
{
    if (addr == NULL)
        return false;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return true;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return false;
}

static bool digest(const void *buf, size_t len, uint8_t out[32])
{
    unsigned n = 0;
    return EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

/* Does the header carry the token? The scheme is case-insensitive. */
static bool bearer_ok(const struct admin_token *token, const char *authorization)
{
    uint8_t d[32];
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    bool ok = digest(t, strlen(t), d) && CRYPTO_memcmp(d, token->digest, sizeof(d)) == 0;
    OPENSSL_cleanse(d, sizeof(d));
    return ok;
}

int adminauth_decide(const struct sockaddr *peer, const struct admin_token *token,
                     const char *authorization)
{
    if (token != NULL && token->set)
        return bearer_ok(token, authorization) ? 200 : 401;
    return adminauth_is_loopback(peer) ? 200 : 403;
}

int adminauth_load(const char *path, struct admin_token *out, char *err, size_t errlen)
{
    char buf[ADMIN_TOKEN_MAX + 2];
    struct admin_token t = {.set = false};
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "--admin-token-file \"%s\": cannot read: %s", path, strerror(errno));
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf), f);
    bool more = n == sizeof(buf), failed = ferror(f) != 0;
    fclose(f);
    int r = -1;
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += (unsigned char)buf[i] <= 0x20 || (unsigned char)buf[i] >= 0x7f;
    if (failed)
        snprintf(err, errlen, "--admin-token-file \"%s\": read error", path);
    else if (more || n > ADMIN_TOKEN_MAX)
        snprintf(err, errlen, "--admin-token-file \"%s\": the token is longer than %d bytes", path,
                 ADMIN_TOKEN_MAX);
    else if (n < ADMIN_TOKEN_MIN)
        snprintf(err, errlen,
                 "--admin-token-file \"%s\": the token is %zu bytes, shorter than %d (make one "
                 "with: openssl rand -hex 32)",
                 path, n, ADMIN_TOKEN_MIN);
    else if (bad > 0)
        snprintf(err, errlen,
                 "--admin-token-file \"%s\": the token must be visible ASCII on one line (no "
                 "spaces or control characters)",
                 path);
    else if (!digest(buf, n, t.digest))
        snprintf(err, errlen, "--admin-token-file \"%s\": SHA-256 failed", path);
    else {
        t.set = true;
        *out = t; /* only a whole new token replaces the old one (reload) */
        r = 0;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    OPENSSL_cleanse(&t, sizeof(t));
    return r;
}
