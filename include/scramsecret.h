/*
 * scramsecret.h - the `pg-tls-proxy scram-secret USER [--iterations N]`
 * subcommand: makes a SCRAM-SHA-256 verifier from a password and prints
 * the auth-file line for auth mode scram and the ALTER ROLE statement that
 * makes the server hold the same verifier (how it works where nobody can
 * read pg_authid: RDS, Cloud SQL, Azure).
 */
#ifndef PGTP_SCRAMSECRET_H
#define PGTP_SCRAMSECRET_H

#include <stdio.h>

/* argv[0] is "scram-secret". The password is the first line of in when in
 * is not a terminal; on a terminal it is asked twice on /dev/tty with echo
 * off. Two lines go to out, messages to err. Returns the exit status: 0,
 * 1 (no password, passwords differ, ...) or 2 (usage). */
int scramsecret_main(int argc, char **argv, FILE *in, FILE *out, FILE *err);

#endif
