/*
 * pbkdf2_cost: what one SCRAM-SHA-256 SaltedPassword costs on this machine.
 *
 *   pbkdf2_cost [ITERATIONS [CALLS]]      (defaults: 4096, 200)
 *
 * SCRAM's SaltedPassword is PBKDF2-HMAC-SHA256 (RFC 5802 Hi()) over the
 * password with the verifier's salt and iteration count (PostgreSQL's
 * default: 4096). A proxy that logs in upstream with the client's password
 * (pg-tls-proxy --auth-mode password) computes it once per login, on
 * whichever thread runs it: scripts/bench.sh prints this figure so "more than
 * ~1 ms would stall the event loop" (issue 13) can be read against it.
 *
 * Prints one line of key=value: the median and minimum thread CPU time and
 * the median wall time per call, in microseconds. First checks OpenSSL's
 * PBKDF2 against RFC 7914's published PBKDF2-HMAC-SHA256 vector, so a figure
 * is only printed for the function SCRAM actually uses. Exit 1 on any error.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, CLOCK_THREAD_CPUTIME_ID under -std=c17 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_count(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, first 32 of 64 bytes. */
static int self_check(void)
{
    static const unsigned char want[32] = {0x55, 0xac, 0x04, 0x6e, 0x56, 0xe3, 0x08, 0x9f,
                                           0xec, 0x16, 0x91, 0xc2, 0x25, 0x44, 0xb6, 0x05,
                                           0xf9, 0x41, 0x85, 0x21, 0x6d, 0xde, 0x04, 0x65,
                                           0xe6, 0x8b, 0x9d, 0x57, 0xc2, 0x0d, 0xac, 0xbc};
    unsigned char got[32];
    if (PKCS5_PBKDF2_HMAC("passwd", 6, (const unsigned char *)"salt", 4, 1, EVP_sha256(),
                          (int)sizeof got, got) != 1)
        return -1;
    return CRYPTO_memcmp(got, want, sizeof want) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    long iterations = 4096;
    long calls = 200;
    if (argc > 3 || (argc > 1 && parse_count(argv[1], 1, 10000000, &iterations) != 0) ||
        (argc > 2 && parse_count(argv[2], 1, 100000, &calls) != 0)) {
        fprintf(stderr, "usage: %s [ITERATIONS [CALLS]]\n", argv[0]);
        return 1;
    }
    if (self_check() != 0) {
        fprintf(stderr, "pbkdf2_cost: PBKDF2-HMAC-SHA256 does not match RFC 7914's vector\n");
        return 1;
    }
    double *cpu = calloc((size_t)calls, sizeof *cpu);
    double *wall = calloc((size_t)calls, sizeof *wall);
    if (cpu == NULL || wall == NULL) {
        fprintf(stderr, "pbkdf2_cost: out of memory\n");
        free(cpu);
        free(wall);
        return 1;
    }
    /* A throw-away password and a 16-byte salt, as PostgreSQL generates. */
    static const char password[] = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5";
    static const unsigned char salt[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    unsigned char out[32];
    int rc = 0;
    for (long i = -1; i < calls && rc == 0; i++) {
        double c0 = now_us(CLOCK_THREAD_CPUTIME_ID);
        double w0 = now_us(CLOCK_MONOTONIC);
        if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)sizeof salt,
                              (int)iterations, EVP_sha256(), (int)sizeof out, out) != 1)
            rc = 1;
        double c1 = now_us(CLOCK_THREAD_CPUTIME_ID);
        double w1 = now_us(CLOCK_MONOTONIC);
        if (i >= 0) { /* call -1 warms the caches and OpenSSL's lazy init */
            cpu[i] = c1 - c0;
            wall[i] = w1 - w0;
        }
    }
    OPENSSL_cleanse(out, sizeof out);
    if (rc != 0) {
        fprintf(stderr, "pbkdf2_cost: PKCS5_PBKDF2_HMAC failed\n");
    } else {
        qsort(cpu, (size_t)calls, sizeof *cpu, cmp_double);
        qsort(wall, (size_t)calls, sizeof *wall, cmp_double);
        printf("iterations=%ld calls=%ld cpu_us_median=%.0f cpu_us_min=%.0f wall_us_median=%.0f "
               "openssl=\"%s\"\n",
               iterations, calls, cpu[calls / 2], cpu[0], wall[calls / 2],
               OpenSSL_version(OPENSSL_VERSION));
    }
    free(cpu);
    free(wall);
    return rc;
}
