/*
 * bridgesecret.c - `pg-tls-proxy bridge-secret ID [--iterations N]` (see
 * bridgesecret.h). Prints
 *   secret=<43 characters of base64url>
 *   "ID" "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>"
 * the first for the connector (--bridge-secret), the second for the
 * proxy's --bridges-file. The secret is 32 random bytes: the text printed
 * is what the connector sends and what the verifier is made of (PBKDF2 over
 * the text, as scram_salted_password does with a password).
 *
 * Iterations default to BRIDGE_SECRET_ITERATIONS, far above PostgreSQL's
 * 4096: a random secret needs no stretching against guessing, but a stolen
 * bridges file should still cost its thief; the proxy pays the KDF once
 * per connector (bridgeauth.c caches a verified secret's hash).
 *
 * The secret never leaves stdout: wiped (OPENSSL_cleanse) on every path.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bridgeproto.h"
#include "bridgesecret.h"
#include "scram.h"

#define SALT_LEN 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pg-tls-proxy bridge-secret ID [--iterations N]\n"
            "  Makes a random secret for bridge ID and prints two lines: secret=... for the\n"
            "  connector (--bridge-secret or PG_TLS_PROXY_BRIDGE_SECRET) and the line for the\n"
            "  proxy's --bridges-file (the verifier of the secret, never the secret itself).\n"
            "  --iterations N  PBKDF2 iterations (default %u)\n",
            BRIDGE_SECRET_ITERATIONS);
}

int bridgesecret_encode(const uint8_t *raw, size_t len, char *out, size_t cap)
{
    /* EVP_EncodeBlock writes 4 characters per 3 bytes and a NUL. */
    if (cap < 4 * ((len + 2) / 3) + 1)
        return -1;
    int n = EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
    if (n < 0)
        return -1;
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (int i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return n;
}

/* Parse argv: the id and the iterations. 0 to go on, -1 after printing
 * --help (exit 0), or 2 after a usage message. */
static int parse_args(int argc, char **argv, FILE *out, FILE *err, const char **id,
                      unsigned long *iterations)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(out);
            return -1;
        }
        if (strcmp(a, "--iterations") == 0 && i + 1 < argc) {
            val = argv[++i];
        } else if (strncmp(a, "--iterations=", 13) == 0) {
            val = a + 13;
        } else if (a[0] == '-') {
            fprintf(err, "bridge-secret: unknown option or missing value: %s\n", a);
            usage(err);
            return 2;
        } else if (*id == NULL) {
            *id = a;
            continue;
        } else {
            fprintf(err, "bridge-secret: one bridge id at a time (got %s after %s)\n", a, *id);
            return 2;
        }
        char *end;
        errno = 0;
        *iterations = strtoul(val, &end, 10);
        if (errno != 0 || *end != '\0' || val[0] < '1' || val[0] > '9' ||
            *iterations > SCRAM_ITERATIONS_MAX) {
            fprintf(err, "bridge-secret: --iterations must be a number from 1 to %u\n",
                    SCRAM_ITERATIONS_MAX);
            return 2;
        }
    }
    if (*id == NULL) {
        usage(err);
        return 2;
    }
    if (!bridge_id_valid(*id)) {
        fprintf(err,
                "bridge-secret: \"%s\" is not a bridge id: 1 to %d characters of A-Z a-z 0-9 "
                "_ . -\n",
                *id, BRIDGE_ID_MAX);
        return 2;
    }
    return 0;
}

int bridgesecret_main(int argc, char **argv, FILE *out, FILE *err)
{
    const char *id = NULL;
    unsigned long iterations = BRIDGE_SECRET_ITERATIONS;
    int rc = parse_args(argc, argv, out, err, &id, &iterations);
    if (rc != 0)
        return rc < 0 ? 0 : rc;

    uint8_t raw[BRIDGE_SECRET_BYTES];
    char secret[2 * BRIDGE_SECRET_BYTES], text[256];
    struct scram_secret s;
    rc = 1;
    if (RAND_bytes(raw, sizeof(raw)) != 1 ||
        bridgesecret_encode(raw, sizeof(raw), secret, sizeof(secret)) < 0 ||
        scram_secret_make(secret, SALT_LEN, (unsigned)iterations, &s) != 0 ||
        scram_secret_format(&s, text, sizeof(text)) < 0) {
        fprintf(err, "bridge-secret: could not make the secret (no random bytes?)\n");
        goto out;
    }
    /* Ids are [A-Za-z0-9_.-]: no quote to double. */
    fprintf(out, "secret=%s\n\"%s\" \"%s\"\n", secret, id, text);
    rc = fflush(out) == 0 ? 0 : 1;
out:
    OPENSSL_cleanse(raw, sizeof(raw));
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(&s, sizeof(s));
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}
