/*
 * scram.c - the SCRAM-SHA-256 primitives both ends of the exchange share:
 * the verifier PostgreSQL stores (parse, format, make, mock), SASLprep,
 * SaltedPassword and the keys derived from it, the tls-server-end-point
 * hash of a certificate, and the strict base64 / HMAC / attribute helpers
 * of scram_impl.h. The exchanges themselves are in scram_server.c and
 * scram_client.c.
 *
 * Pure: no I/O, no globals, no logging. Every intermediate secret is wiped
 * (OPENSSL_cleanse) before return; nothing here ever prints a key.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <stringprep.h>

#include "scram.h"
#include "scram_impl.h"
#include "utf8.h"

#define PREFIX "SCRAM-SHA-256$"
#define MOCK_SALT_LEN 16 /* what PostgreSQL makes, so a mock salt looks real */

/* ---- base64 ------------------------------------------------------------ */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int scram_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t need = (n + 2) / 3 * 4;
    if (need + 1 > cap || need > (size_t)INT32_MAX)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64chars[v >> 18 & 63];
        out[o++] = b64chars[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64chars[v & 63] : '=';
    }
    out[o] = '\0';
    return (int)o;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int scram_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        int pad = 0;
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            int d;
            if (in[i + k] == '=' && last && k >= 2) {
                /* "xx==" or "xxx=": once padding starts it continues. */
                pad++;
                d = 0;
            } else {
                d = b64val(in[i + k]);
                if (d < 0 || pad > 0)
                    return -1;
            }
            v = v << 6 | (uint32_t)d;
        }
        size_t bytes = 3 - (size_t)pad;
        if (o + bytes > cap)
            return -1;
        out[o++] = (uint8_t)(v >> 16);
        if (bytes > 1)
            out[o++] = (uint8_t)(v >> 8);
        if (bytes > 2)
            out[o++] = (uint8_t)v;
    }
    return (int)o;
}

/* ---- hashing ----------------------------------------------------------- */

int scram_hmac(const uint8_t *key, size_t keylen, const void *data, size_t n,
               uint8_t out[SCRAM_KEY_LEN])
{
    unsigned len = 0;
    if (HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len) == NULL || len != SCRAM_KEY_LEN)
        return -1;
    return 0;
}

int scram_sha256(const void *data, size_t n, uint8_t out[SCRAM_KEY_LEN])
{
    unsigned len = 0;
    if (EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) != 1 || len != SCRAM_KEY_LEN)
        return -1;
    return 0;
}

/* ---- message helpers --------------------------------------------------- */

bool scram_printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return false;
    return true;
}

const char *scram_sanitize_char(char c, char buf[8])
{
    if (c >= 0x21 && c <= 0x7e)
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", (unsigned char)c);
    return buf;
}

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

enum scram_attr_rc scram_attr(const char **p, const char *end, char want, char *got,
                              const char **val, size_t *vlen)
{
    const char *s = *p;
    if (s >= end)
        return SCRAM_ATTR_END;
    if (got)
        *got = *s;
    if (want != 0 ? *s != want : !is_alpha(*s))
        return SCRAM_ATTR_WRONG;
    s++;
    if (s >= end || *s != '=')
        return SCRAM_ATTR_NO_EQUALS;
    s++;
    const char *v = s;
    while (s < end && *s != ',')
        s++;
    *val = v;
    *vlen = (size_t)(s - v);
    *p = s < end ? s + 1 : s;
    return SCRAM_ATTR_OK;
}

int scram_fail(struct scram_error *err, const char *sqlstate, const char *message,
               const char *detail_fmt, ...)
{
    if (err == NULL)
        return -1;
    err->sqlstate = sqlstate;
    snprintf(err->message, sizeof(err->message), "%s", message);
    err->detail[0] = '\0';
    if (detail_fmt != NULL) {
        va_list ap;
        va_start(ap, detail_fmt);
        vsnprintf(err->detail, sizeof(err->detail), detail_fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- the stored verifier ----------------------------------------------- */

/* Decimal without sign or leading zeros, 1..SCRAM_ITERATIONS_MAX. */
static bool parse_iterations(const char *s, size_t n, unsigned *out)
{
    if (n == 0 || n > 8 || (s[0] == '0'))
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > SCRAM_ITERATIONS_MAX)
        return false;
    *out = v;
    return true;
}

int scram_secret_parse(const char *text, struct scram_secret *out)
{
    struct scram_secret s;
    memset(&s, 0, sizeof(s));
    size_t plen = strlen(PREFIX);
    if (strncmp(text, PREFIX, plen) != 0)
        return -1;
    const char *it = text + plen;
    const char *colon = strchr(it, ':');
    if (colon == NULL || !parse_iterations(it, (size_t)(colon - it), &s.iterations))
        return -1;
    const char *salt = colon + 1;
    const char *dollar = strchr(salt, '$');
    if (dollar == NULL)
        return -1;
    int n = scram_b64_decode(salt, (size_t)(dollar - salt), s.salt, sizeof(s.salt));
    if (n < 1)
        return -1;
    s.salt_len = (size_t)n;
    const char *stored = dollar + 1;
    const char *colon2 = strchr(stored, ':');
    if (colon2 == NULL)
        return -1;
    const char *server = colon2 + 1;
    uint8_t key[SCRAM_KEY_LEN + 3];
    if (scram_b64_decode(stored, (size_t)(colon2 - stored), key, sizeof(key)) != SCRAM_KEY_LEN)
        return -1;
    memcpy(s.stored_key, key, SCRAM_KEY_LEN);
    if (scram_b64_decode(server, strlen(server), key, sizeof(key)) != SCRAM_KEY_LEN)
        return -1;
    memcpy(s.server_key, key, SCRAM_KEY_LEN);
    OPENSSL_cleanse(key, sizeof(key));
    *out = s;
    OPENSSL_cleanse(&s, sizeof(s));
    return 0;
}

int scram_secret_format(const struct scram_secret *s, char *buf, size_t cap)
{
    char salt[SCRAM_SALT_MAX * 2], stored[64], server[64];
    if (s->salt_len == 0 || s->salt_len > SCRAM_SALT_MAX ||
        scram_b64_encode(s->salt, s->salt_len, salt, sizeof(salt)) < 0 ||
        scram_b64_encode(s->stored_key, SCRAM_KEY_LEN, stored, sizeof(stored)) < 0 ||
        scram_b64_encode(s->server_key, SCRAM_KEY_LEN, server, sizeof(server)) < 0)
        return -1;
    int n = snprintf(buf, cap, PREFIX "%u:%s$%s:%s", s->iterations, salt, stored, server);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            OPENSSL_cleanse(buf, cap);
        return -1;
    }
    return n;
}

/* ---- SASLprep and the keys --------------------------------------------- */

int scram_saslprep(const char *password, char *out, size_t cap)
{
    size_t n = strlen(password);
    bool ascii = true, utf8 = true;
    for (size_t i = 0; i < n;) {
        if ((unsigned char)password[i] >= 0x80)
            ascii = false;
        size_t k = utf8_seq((const unsigned char *)password + i, n - i);
        if (k == 0) {
            utf8 = false;
            break;
        }
        i += k;
    }
    const char *use = password;
    char *prepped = NULL;
    /* As PostgreSQL (common/saslprep.c): ASCII is used as is; a password
     * that is not UTF-8, or that SASLprep prohibits, is used as it came:
     * the server made its verifier the same way, so both ends agree. */
    if (!ascii && utf8 &&
        stringprep_profile(password, &prepped, "SASLprep", STRINGPREP_NO_UNASSIGNED) ==
            STRINGPREP_OK &&
        prepped != NULL && prepped[0] != '\0')
        use = prepped;
    size_t len = strlen(use);
    int rc = -1;
    if (len < cap && len <= (size_t)INT32_MAX) {
        memcpy(out, use, len + 1);
        rc = (int)len;
    }
    if (prepped != NULL) {
        OPENSSL_cleanse(prepped, strlen(prepped));
        free(prepped);
    }
    return rc;
}

int scram_salted_password(const char *password, const uint8_t *salt, size_t salt_len,
                          unsigned iterations, uint8_t out[SCRAM_KEY_LEN])
{
    if (iterations < 1 || iterations > SCRAM_ITERATIONS_MAX || salt_len == 0 ||
        salt_len > SCRAM_SALT_MAX || strlen(password) > SCRAM_PASSWORD_MAX)
        return -1;
    /* SASLprep can only grow a string so much (NFKC of a ligature is a few
     * characters): four times the input, plus room for the NUL. */
    char prep[SCRAM_PASSWORD_MAX * 4 + 1];
    int n = scram_saslprep(password, prep, sizeof(prep));
    int rc = -1;
    if (n >= 0 && PKCS5_PBKDF2_HMAC(prep, n, salt, (int)salt_len, (int)iterations, EVP_sha256(),
                                    SCRAM_KEY_LEN, out) == 1)
        rc = 0;
    OPENSSL_cleanse(prep, sizeof(prep));
    return rc;
}

void scram_keys(const uint8_t salted[SCRAM_KEY_LEN], uint8_t client_key[SCRAM_KEY_LEN],
                uint8_t stored_key[SCRAM_KEY_LEN], uint8_t server_key[SCRAM_KEY_LEN])
{
    uint8_t ck[SCRAM_KEY_LEN];
    scram_hmac(salted, SCRAM_KEY_LEN, "Client Key", 10, ck);
    if (client_key != NULL)
        memcpy(client_key, ck, SCRAM_KEY_LEN);
    if (stored_key != NULL)
        scram_sha256(ck, SCRAM_KEY_LEN, stored_key);
    if (server_key != NULL)
        scram_hmac(salted, SCRAM_KEY_LEN, "Server Key", 10, server_key);
    OPENSSL_cleanse(ck, sizeof(ck));
}

int scram_secret_make(const char *password, size_t salt_len, unsigned iterations,
                      struct scram_secret *out)
{
    struct scram_secret s;
    uint8_t salted[SCRAM_KEY_LEN];
    memset(&s, 0, sizeof(s));
    if (salt_len == 0 || salt_len > SCRAM_SALT_MAX || RAND_bytes(s.salt, (int)salt_len) != 1)
        return -1;
    s.salt_len = salt_len;
    s.iterations = iterations;
    if (scram_salted_password(password, s.salt, salt_len, iterations, salted) != 0)
        return -1;
    scram_keys(salted, NULL, s.stored_key, s.server_key);
    OPENSSL_cleanse(salted, sizeof(salted));
    *out = s;
    OPENSSL_cleanse(&s, sizeof(s));
    return 0;
}

/* HMAC(key, label || user): the mock's salt and keys. Different labels, so
 * the salt sent to a client reveals nothing of the (unused) keys. */
static void mock_part(const uint8_t key[SCRAM_KEY_LEN], const char *label, const char *user,
                      uint8_t out[SCRAM_KEY_LEN])
{
    char buf[SCRAM_MSG_MAX];
    int n = snprintf(buf, sizeof(buf), "%s%c%s", label, '\0', user);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(buf) ? sizeof(buf) - 1 : (size_t)n;
    scram_hmac(key, SCRAM_KEY_LEN, buf, len, out);
}

void scram_secret_mock(const uint8_t key[SCRAM_KEY_LEN], const char *user, unsigned iterations,
                       struct scram_secret *out)
{
    uint8_t salt[SCRAM_KEY_LEN];
    memset(out, 0, sizeof(*out));
    out->iterations = iterations > 0 ? iterations : SCRAM_DEFAULT_ITERATIONS;
    mock_part(key, "salt", user, salt);
    memcpy(out->salt, salt, MOCK_SALT_LEN);
    out->salt_len = MOCK_SALT_LEN;
    mock_part(key, "stored", user, out->stored_key);
    mock_part(key, "server", user, out->server_key);
}

/* ---- channel binding --------------------------------------------------- */

int scram_cert_hash(X509 *cert, uint8_t out[SCRAM_CB_MAX])
{
    int md_nid = NID_undef;
    /* X509_get_signature_info knows RSA-PSS's digest too (PostgreSQL 16+
     * asks it first); OBJ_find_sigid_algs covers the classic pairs. */
    if (X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) != 1 || md_nid == NID_undef) {
        if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md_nid, NULL) != 1)
            return -1;
    }
    const EVP_MD *md;
    /* RFC 5929 4.1: MD5 and SHA-1 are replaced by SHA-256. */
    if (md_nid == NID_md5 || md_nid == NID_sha1)
        md = EVP_sha256();
    else if (md_nid == NID_undef || (md = EVP_get_digestbynid(md_nid)) == NULL)
        return -1; /* e.g. Ed25519: no separate digest to bind with */
    unsigned len = 0;
    uint8_t buf[EVP_MAX_MD_SIZE];
    if (X509_digest(cert, md, buf, &len) != 1 || len == 0 || len > SCRAM_CB_MAX)
        return -1;
    memcpy(out, buf, len);
    return (int)len;
}
