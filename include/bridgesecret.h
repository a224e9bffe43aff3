/*
 * bridgesecret.h - the `pg-tls-proxy bridge-secret ID [--iterations N]`
 * subcommand (issue 15): a random secret for a bridge's connectors and the
 * --bridges-file line holding its SCRAM-SHA-256 verifier.
 */
#ifndef PGTP_BRIDGESECRET_H
#define PGTP_BRIDGESECRET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BRIDGE_SECRET_BYTES 32
#define BRIDGE_SECRET_ITERATIONS 100000u

/* argv[0] is "bridge-secret". Two lines to out, messages to err. Returns
 * the exit status: 0, 1 (no random bytes) or 2 (usage). */
int bridgesecret_main(int argc, char **argv, FILE *out, FILE *err);
/* raw[0..len) as base64url without padding into out (NUL-terminated). Its
 * length, or -1 if cap is too small. */
int bridgesecret_encode(const uint8_t *raw, size_t len, char *out, size_t cap);

#endif
