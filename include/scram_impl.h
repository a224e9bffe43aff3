/*
 * scram_impl.h - helpers shared by src/scram.c, src/scram_server.c and
 * src/scram_client.c, and by nothing else: strict base64, HMAC-SHA-256,
 * the "a=value" attribute reader of RFC 5802 messages and the error filler.
 * Pure: no I/O, no globals.
 */
#ifndef PGTP_SCRAM_IMPL_H
#define PGTP_SCRAM_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scram.h"

/* Base64 (RFC 4648, with padding) of in[0..n) into out, NUL-terminated.
 * Its length, or -1 if cap is too small. */
int scram_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/* Strict decoding of in[0..n): whole quanta of 4, the standard alphabet,
 * padding only at the end; no white space. Bytes written, or -1 when
 * malformed or more than cap bytes. */
int scram_b64_decode(const char *in, size_t n, uint8_t *out, size_t cap);

/* HMAC-SHA-256 and SHA-256 (0 or -1). */
int scram_hmac(const uint8_t *key, size_t keylen, const void *data, size_t n,
               uint8_t out[SCRAM_KEY_LEN]);
int scram_sha256(const void *data, size_t n, uint8_t out[SCRAM_KEY_LEN]);

/* RFC 5802's "printable": %x21-2B / %x2D-7E. */
bool scram_printable(const char *s, size_t n);
/* A byte for an error text, as PostgreSQL's sanitize_char prints it:
 * "'c'" when printable ASCII, else "0x%02x". */
const char *scram_sanitize_char(char c, char buf[8]);

/* One attribute "<attr>=<value>" at *p (up to end, the message's end):
 * value and its length out, *p moved past the value and its comma.
 * SCRAM_ATTR_OK, or which check failed (so each side can word its own
 * error as PostgreSQL does on that side). */
enum scram_attr_rc { SCRAM_ATTR_OK, SCRAM_ATTR_END, SCRAM_ATTR_WRONG, SCRAM_ATTR_NO_EQUALS };
enum scram_attr_rc scram_attr(const char **p, const char *end, char want, char *got,
                              const char **val, size_t *vlen);

/* Fill err (message, and detail when detail_fmt is not NULL); -1 always,
 * so callers can "return scram_fail(...)". */
int scram_fail(struct scram_error *err, const char *sqlstate, const char *message,
               const char *detail_fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
