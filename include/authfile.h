/*
 * authfile.h - the auth file of auth mode scram: PgBouncer's userlist
 * format, one `"user" "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>"`
 * per line (`""` is a quote inside quotes; lines starting with ';' or '#'
 * and blank lines are skipped). Only SCRAM verifiers are accepted: with an
 * md5 hash or a plaintext password the proxy could not log in upstream.
 *
 * Loaded all or nothing: one bad line and the whole file is refused (so a
 * SIGHUP with a broken file keeps the old one). Errors name the file, the
 * line and the fix, never a verifier.
 */
#ifndef PGTP_AUTHFILE_H
#define PGTP_AUTHFILE_H

#include <stddef.h>

#include "scram.h"

#define AUTHFILE_MAX_BYTES 67108864u /* 64 MB */
#define AUTHFILE_USER_MAX 1024       /* bytes of a user name (PostgreSQL keeps 63) */

struct authfile;

/* Parse text[0..len); name is the file's name for errors. NULL with err
 * filled on any bad line, duplicate user or out of memory. An empty file
 * is a valid file with no users. */
struct authfile *authfile_parse(const char *text, size_t len, const char *name, char *err,
                                size_t errlen);
/* Read path (at most AUTHFILE_MAX_BYTES) and parse it. */
struct authfile *authfile_load(const char *path, char *err, size_t errlen);
/* The user's verifier, or NULL when the file does not hold the user.
 * Binary search: O(log n). */
const struct scram_secret *authfile_find(const struct authfile *af, const char *user);
size_t authfile_count(const struct authfile *af);
/* The i-th user in sorted order (and its line in the file), or NULL past
 * the end: for callers that check every name (bridge ids, bridgeauth.c). */
const char *authfile_user_at(const struct authfile *af, size_t i, size_t *line);
/* Wipe and free (NULL is fine). */
void authfile_free(struct authfile *af);

#endif
