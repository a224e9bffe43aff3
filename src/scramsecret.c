/*
 * scramsecret.c - `pg-tls-proxy scram-secret USER [--iterations N]` (see
 * scramsecret.h). Prints
 *   "USER" "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>"
 *   ALTER ROLE "USER" PASSWORD 'SCRAM-SHA-256$...';
 * the first for --auth-file (PgBouncer's userlist format, '"' doubled), the
 * second for the server (PostgreSQL stores a password given in this form
 * as the verifier itself, so both ends hold the same salt and keys).
 *
 * The password never leaves this file: read into a stack buffer, wiped
 * (OPENSSL_cleanse) on every path, never echoed or printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "scram.h"
#include "scramsecret.h"

#define SALT_LEN 16 /* what PostgreSQL makes */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pg-tls-proxy scram-secret USER [--iterations N]\n"
            "  Reads USER's password (twice, without echo, on a terminal; else the first\n"
            "  line of standard input) and prints the --auth-file line for --auth-mode scram\n"
            "  and the ALTER ROLE statement that gives the server the same verifier.\n"
            "  --iterations N  PBKDF2 iterations (default %d, PostgreSQL's)\n",
            SCRAM_DEFAULT_ITERATIONS);
}

/* One line of f into buf without its line end. 0, or -1 at EOF before any
 * byte, or when the line is longer than SCRAM_PASSWORD_MAX. */
static int read_line(FILE *f, char *buf, size_t cap)
{
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (n + 1 >= cap) {
            /* drain the rest so nothing of it stays in a stdio buffer we own */
            while ((c = getc(f)) != EOF && c != '\n')
                ;
            OPENSSL_cleanse(buf, cap);
            return -2;
        }
        buf[n++] = (char)c;
    }
    if (c == EOF && n == 0)
        return -1;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return 0;
}

/* Prompt on the terminal with echo off; restores the terminal after. */
static int ask_tty(FILE *tty, const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    int fd = fileno(tty);
    bool restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    fputs(prompt, tty);
    fflush(tty);
    int rc = read_line(tty, buf, cap);
    if (restore)
        tcsetattr(fd, TCSAFLUSH, &old);
    return rc;
}

static int get_password(const char *user, FILE *in, FILE *err, char *pw, size_t cap)
{
    int fd = fileno(in);
    if (fd < 0 || !isatty(fd)) {
        int rc = read_line(in, pw, cap);
        if (rc == -2)
            fprintf(err, "scram-secret: the password is longer than %d bytes\n",
                    SCRAM_PASSWORD_MAX);
        else if (rc != 0)
            fprintf(err, "scram-secret: no password on standard input (give it as its "
                         "first line)\n");
        return rc == 0 ? 0 : -1;
    }
    FILE *tty = fopen("/dev/tty", "r+");
    if (tty == NULL) {
        fprintf(err, "scram-secret: cannot open /dev/tty: %s\n", strerror(errno));
        return -1;
    }
    setvbuf(tty, NULL, _IONBF, 0); /* no copy of the password in a stdio buffer */
    char again[SCRAM_PASSWORD_MAX + 2], prompt[160];
    snprintf(prompt, sizeof(prompt), "Password for %.100s: ", user);
    int rc = ask_tty(tty, prompt, pw, cap);
    if (rc == 0)
        rc = ask_tty(tty, "Again: ", again, sizeof(again));
    fclose(tty);
    if (rc == -2)
        fprintf(err, "scram-secret: the password is longer than %d bytes\n", SCRAM_PASSWORD_MAX);
    else if (rc != 0)
        fprintf(err, "scram-secret: no password given\n");
    else if (strlen(pw) != strlen(again) || CRYPTO_memcmp(pw, again, strlen(pw)) != 0) {
        fprintf(err, "scram-secret: the two passwords differ; nothing printed\n");
        rc = -1;
    }
    OPENSSL_cleanse(again, sizeof(again));
    return rc == 0 ? 0 : -1;
}

/* s between double quotes, each '"' doubled: PgBouncer's userlist and an
 * SQL identifier quote the same way. */
static void put_quoted(FILE *out, const char *s)
{
    putc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            putc('"', out);
        putc(*s, out);
    }
    putc('"', out);
}

int scramsecret_main(int argc, char **argv, FILE *in, FILE *out, FILE *err)
{
    const char *user = NULL;
    unsigned long iterations = SCRAM_DEFAULT_ITERATIONS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(out);
            return 0;
        }
        if (strcmp(a, "--iterations") == 0) {
            if (i + 1 >= argc) {
                fprintf(err, "scram-secret: --iterations needs a number\n");
                return 2;
            }
            val = argv[++i];
        } else if (strncmp(a, "--iterations=", 13) == 0) {
            val = a + 13;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(err, "scram-secret: unknown option %s\n", a);
            usage(err);
            return 2;
        } else if (user == NULL) {
            user = a;
            continue;
        } else {
            fprintf(err, "scram-secret: one user at a time (got %s after %s)\n", a, user);
            return 2;
        }
        char *end;
        errno = 0;
        iterations = strtoul(val, &end, 10);
        if (errno != 0 || *end != '\0' || val[0] < '1' || val[0] > '9' ||
            iterations > SCRAM_ITERATIONS_MAX) {
            fprintf(err, "scram-secret: --iterations must be a number from 1 to %u\n",
                    SCRAM_ITERATIONS_MAX);
            return 2;
        }
    }
    if (user == NULL || user[0] == '\0') {
        usage(err);
        return 2;
    }
    char pw[SCRAM_PASSWORD_MAX + 2];
    struct scram_secret s;
    char text[256];
    int rc = 1;
    if (get_password(user, in, err, pw, sizeof(pw)) != 0)
        goto out;
    if (pw[0] == '\0') {
        /* PostgreSQL refuses to log anyone in with an empty password. */
        fprintf(err, "scram-secret: the password is empty\n");
        goto out;
    }
    if (iterations < SCRAM_DEFAULT_ITERATIONS)
        fprintf(err, "scram-secret: warning: %lu iterations is below PostgreSQL's %d\n", iterations,
                SCRAM_DEFAULT_ITERATIONS);
    if (scram_secret_make(pw, SALT_LEN, (unsigned)iterations, &s) != 0 ||
        scram_secret_format(&s, text, sizeof(text)) < 0) {
        fprintf(err, "scram-secret: could not make the verifier (no random bytes?)\n");
        goto out;
    }
    put_quoted(out, user);
    fprintf(out, " \"%s\"\nALTER ROLE ", text);
    put_quoted(out, user);
    fprintf(out, " PASSWORD '%s';\n", text);
    rc = fflush(out) == 0 ? 0 : 1;
out:
    OPENSSL_cleanse(pw, sizeof(pw));
    OPENSSL_cleanse(&s, sizeof(s));
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}
