/*
 * pemfile.c - reads a certificate, key or CA file's bytes and says what is
 * wrong with it before OpenSSL does ("PEM lib", "system lib"), and makes
 * sure nothing ever asks for a passphrase on a terminal.
 *
 * The scan and the message are pure (unit tests and a fuzzer drive them);
 * pemfile_check() adds the open and read. Never prints a file's contents:
 * only what kinds of PEM blocks it holds. Owns nothing past its return.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pemfile.h"

#define BEGIN "-----BEGIN "
#define DASHES "-----"
#define LABEL_MAX 64 /* longer is not a PEM label we know */

static bool label_is(const uint8_t *lab, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(lab, want, n) == 0;
}

/* First needle in [p, end), or NULL (memmem is a GNU extension). */
static const uint8_t *find(const uint8_t *p, const uint8_t *end, const char *needle)
{
    size_t n = strlen(needle);
    while (end - p >= (ptrdiff_t)n) {
        const uint8_t *c = memchr(p, needle[0], (size_t)(end - p) - n + 1);
        if (c == NULL)
            return NULL;
        if (memcmp(c, needle, n) == 0)
            return c;
        p = c + 1;
    }
    return NULL;
}

/* True if the block whose label ends at p has the traditional (RFC 1421)
 * encryption header "Proc-Type: 4,ENCRYPTED" on its first line. */
static bool proc_type_encrypted(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    static const char pt[] = "Proc-Type:";
    if ((size_t)(end - p) < sizeof(pt) - 1 || memcmp(p, pt, sizeof(pt) - 1) != 0)
        return false;
    const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
    return find(p, eol != NULL ? eol : end, "ENCRYPTED") != NULL;
}

static void classify(struct pem_scan *s, const uint8_t *lab, size_t n, const uint8_t *after,
                     const uint8_t *end)
{
    static const char *const certs[] = {"CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"};
    static const char *const keys[] = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY",
                                       "DSA PRIVATE KEY"};
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        if (label_is(lab, n, certs[i])) {
            s->certs++;
            return;
        }
    if (label_is(lab, n, "ENCRYPTED PRIVATE KEY")) {
        s->encrypted_keys++;
        return;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (label_is(lab, n, keys[i])) {
            if (proc_type_encrypted(after, end))
                s->encrypted_keys++;
            else
                s->keys++;
            return;
        }
    if (s->others++ == 0)
        snprintf(s->other, sizeof(s->other), "%.*s", (int)n, (const char *)lab);
}

/*
 * DER: one ASN.1 SEQUENCE (0x30) whose length, short or long form, is the
 * whole file, as certificates and keys are. Text that starts with '0'
 * (also 0x30) does not pass.
 */
static bool der_like(const uint8_t *buf, size_t len)
{
    if (len < 2 || buf[0] != 0x30)
        return false;
    size_t hdr = 2, body = buf[1];
    if (buf[1] & 0x80) {
        size_t n = buf[1] & 0x7fu;
        if (n == 0 || n > 4 || len < 2 + n)
            return false;
        body = 0;
        for (size_t i = 0; i < n; i++)
            body = body << 8 | buf[2 + i];
        hdr += n;
    }
    return body == len - hdr;
}

void pemfile_scan(const uint8_t *buf, size_t len, struct pem_scan *out)
{
    memset(out, 0, sizeof(*out));
    size_t i = 0;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i == len) {
        out->empty = true;
        return;
    }
    const uint8_t *p = buf, *end = buf + len, *b;
    while ((b = find(p, end, BEGIN)) != NULL) {
        const uint8_t *lab = b + strlen(BEGIN);
        const uint8_t *lim = end - lab > LABEL_MAX + 5 ? lab + LABEL_MAX + 5 : end;
        const uint8_t *close = find(lab, lim, DASHES);
        p = lab;
        if (close == NULL || close == lab)
            continue;
        bool printable = true;
        for (const uint8_t *q = lab; q < close && printable; q++)
            printable = *q >= 0x20 && *q < 0x7f;
        if (!printable)
            continue;
        classify(out, lab, (size_t)(close - lab), close + strlen(DASHES), end);
        p = close + strlen(DASHES);
    }
    out->der =
        out->certs + out->keys + out->encrypted_keys + out->others == 0 && der_like(buf, len);
}

const char *pemfile_problem(const struct pem_scan *s, enum pem_want want, const char *path,
                            char *buf, size_t len)
{
    const char *what = want == PEM_WANT_KEY  ? "a private key"
                       : want == PEM_WANT_CA ? "CA certificates"
                                             : "a certificate";
    if (s->empty) {
        snprintf(buf, len,
                 "empty file — it should hold %s in PEM (\"-----BEGIN %s-----\"); was it "
                 "copied before it was written?",
                 what, want == PEM_WANT_KEY ? "PRIVATE KEY" : "CERTIFICATE");
        return buf;
    }
    if (want == PEM_WANT_KEY) {
        if (s->encrypted_keys > 0) {
            snprintf(buf, len,
                     "encrypted keys are not supported (the proxy never asks for a passphrase) "
                     "— decrypt it with openssl pkey -in '%s' -out KEY.pem, keep KEY.pem "
                     "readable only by the proxy's user (chmod 600) and give that file",
                     path);
            return buf;
        }
        if (s->keys > 0)
            return NULL;
        if (s->certs > 0) {
            snprintf(buf, len,
                     "this file holds a certificate, not a private key — were the certificate "
                     "and key options swapped? The key file starts with \"-----BEGIN PRIVATE "
                     "KEY-----\" (or RSA/EC PRIVATE KEY)");
            return buf;
        }
    } else {
        if (s->certs > 0)
            return NULL;
        if (s->keys > 0 || s->encrypted_keys > 0) {
            snprintf(buf, len,
                     "this file holds a private key, not a certificate — were the certificate "
                     "and key options swapped? A certificate file starts with \"-----BEGIN "
                     "CERTIFICATE-----\"");
            return buf;
        }
    }
    if (s->der) {
        if (want == PEM_WANT_KEY)
            snprintf(buf, len,
                     "this file is DER, not PEM — convert it with openssl pkey -inform der -in "
                     "'%s' -out KEY.pem and give KEY.pem",
                     path);
        else
            snprintf(buf, len,
                     "this file is DER, not PEM — convert it with openssl x509 -inform der -in "
                     "'%s' -out CERT.pem and give CERT.pem",
                     path);
        return buf;
    }
    if (s->others > 0) {
        snprintf(buf, len, "this file holds a PEM \"%s\", not %s%s", s->other, what,
                 strcmp(s->other, "OPENSSH PRIVATE KEY") == 0
                     ? " — OpenSSH's key format is not read: convert a copy with ssh-keygen -p "
                       "-m pkcs8 -f COPY"
                 : strcmp(s->other, "CERTIFICATE REQUEST") == 0
                     ? " — a certificate request is what a CA signs: give the certificate it "
                       "issued"
                     : "");
        return buf;
    }
    if (want == PEM_WANT_KEY)
        snprintf(buf, len,
                 "no PEM private key found in this file (no \"-----BEGIN PRIVATE KEY-----\" "
                 "line) — is it the right file?");
    else
        snprintf(buf, len,
                 "no PEM certificate found in this file (no \"-----BEGIN CERTIFICATE-----\" "
                 "line) — is it the right file?");
    return buf;
}

void pemfile_open_error(int errnum, char *buf, size_t len)
{
    switch (errnum) {
    case EACCES:
    case EPERM:
        snprintf(buf, len,
                 "permission denied (running as uid %u) — make it readable by this user "
                 "(chown, or chgrp and chmod 640 with this user in the group)",
                 (unsigned)geteuid());
        break;
    case ENOENT:
        snprintf(buf, len,
                 "no such file — check the path (a relative path starts from the "
                 "proxy's working directory)");
        break;
    case ENOTDIR:
        snprintf(buf, len, "a component of the path is not a directory");
        break;
    case EISDIR:
        snprintf(buf, len, "is a directory, expected a PEM file");
        break;
    default:
        snprintf(buf, len, "%s", strerror(errnum));
        break;
    }
}

/* The whole file (up to PEMFILE_MAX) in a malloc'd buffer; -errno on failure. */
static int read_all(int fd, uint8_t **out, size_t *outlen)
{
    size_t cap = (size_t)64 * 1024, n = 0;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (n == cap) {
            if (cap >= PEMFILE_MAX)
                break; /* the first PEMFILE_MAX bytes tell enough */
            uint8_t *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

int pemfile_check(const char *flag, const char *path, enum pem_want want, char *err, size_t errlen)
{
    char why[600];
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    int r = fd < 0 ? -errno : fstat(fd, &st) != 0 ? -errno : S_ISDIR(st.st_mode) ? -EISDIR : 0;
    if (r == 0)
        r = read_all(fd, &buf, &len);
    if (fd >= 0)
        close(fd);
    if (r < 0) {
        pemfile_open_error(-r, why, sizeof(why));
        snprintf(err, errlen, "%s \"%s\": %s", flag, path, why);
        return -1;
    }
    struct pem_scan s;
    pemfile_scan(buf, len, &s);
    OPENSSL_cleanse(buf, len); /* it may be a private key */
    free(buf);
    if (pemfile_problem(&s, want, path, why, sizeof(why)) != NULL) {
        snprintf(err, errlen, "%s \"%s\": %s", flag, path, why);
        return -1;
    }
    return 0;
}

int pemfile_no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    (void)u;
    if (buf != NULL && size > 0)
        buf[0] = '\0';
    return -1; /* "no passphrase": OpenSSL fails the read instead of prompting */
}
