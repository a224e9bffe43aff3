/*
 * pemfile.h - what a certificate or key file holds, in words a user can act
 * on, before OpenSSL reads it (OpenSSL says "PEM lib" or "system lib" for
 * every mistake, and prompts on the terminal for an encrypted key).
 */
#ifndef PGTP_PEMFILE_H
#define PGTP_PEMFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the file is for. */
enum pem_want {
    PEM_WANT_CERT, /* a certificate chain, leaf first (--server-certificate-path, ...) */
    PEM_WANT_KEY,  /* a private key */
    PEM_WANT_CA,   /* CA certificates (--client-ca-roots-path, --server-client-ca-path) */
};

/* What the bytes of a file are, from a scan of its PEM armour. */
struct pem_scan {
    unsigned certs;          /* CERTIFICATE, TRUSTED CERTIFICATE, X509 CERTIFICATE */
    unsigned keys;           /* PRIVATE KEY, RSA/EC/DSA PRIVATE KEY, not encrypted */
    unsigned encrypted_keys; /* ENCRYPTED PRIVATE KEY, or a key with Proc-Type: 4,ENCRYPTED */
    unsigned others;         /* any other label: CSR, PUBLIC KEY, OPENSSH PRIVATE KEY, ... */
    char other[40];          /* the first other label, printable ASCII */
    bool empty;              /* nothing but whitespace (or zero bytes) */
    bool der;                /* no PEM block, and it starts like DER (0x30, a SEQUENCE) */
};

/* Scan len bytes (any bytes: NULs, binary). Pure. */
void pemfile_scan(const uint8_t *buf, size_t len, struct pem_scan *out);

/*
 * The problem with a file that holds s, used as want: writes "cause — fix"
 * (path names the file in the fix's command) into buf and returns buf, or
 * returns NULL when the file looks right. Pure.
 */
const char *pemfile_problem(const struct pem_scan *s, enum pem_want want, const char *path,
                            char *buf, size_t len);

/* "permission denied (running as uid N)", "no such file", ... for an errno. */
void pemfile_open_error(int errnum, char *buf, size_t len);

/*
 * Read path (its first PEMFILE_MAX bytes) and check it for want. Returns 0,
 * or -1 with err = "FLAG \"PATH\": cause — fix" (open errors included).
 */
#define PEMFILE_MAX ((size_t)16 * 1024 * 1024)
int pemfile_check(const char *flag, const char *path, enum pem_want want, char *err, size_t errlen);

/* A passphrase callback that never prompts: every SSL_CTX and PEM read gets it. */
int pemfile_no_passphrase_cb(char *buf, int size, int rwflag, void *u);

#endif
