/*
 * fuzz_pemfile.c - libFuzzer target for pemfile_scan and pemfile_problem.
 *
 * Any bytes are a file's contents. The scan must agree with itself: empty
 * means no block, DER means no block, a label is printable and terminated.
 * The problem for each use must agree with the counts (a file with a
 * certificate is fine as a certificate or CA file, one with an unencrypted
 * key and no encrypted one is fine as a key), and every message must be
 * terminated inside its buffer whatever the buffer's size. abort() on any
 * disagreement.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pemfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* In a heap buffer of exactly the input's size, so ASan sees reads past it. */
    uint8_t *buf = malloc(size ? size : 1);
    require(buf != NULL);
    if (size > 0)
        memcpy(buf, data, size);
    struct pem_scan s;
    pemfile_scan(buf, size, &s);
    unsigned blocks = s.certs + s.keys + s.encrypted_keys + s.others;
    if (s.empty || s.der)
        require(blocks == 0);
    require(!(s.empty && s.der));
    require(memchr(s.other, 0, sizeof(s.other)) != NULL);
    for (const char *p = s.other; *p != '\0'; p++)
        require(*p >= 0x20 && *p < 0x7f);
    require((s.others == 0) == (s.other[0] == '\0'));

    static const enum pem_want wants[] = {PEM_WANT_CERT, PEM_WANT_KEY, PEM_WANT_CA};
    size_t cap = size % 200 + 1; /* small buffers too: truncation must stay inside */
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
        char *msg = malloc(cap);
        require(msg != NULL);
        const char *r = pemfile_problem(&s, wants[i], "/etc/x.pem", msg, cap);
        bool fine = wants[i] == PEM_WANT_KEY ? s.keys > 0 && s.encrypted_keys == 0 && !s.empty
                                             : s.certs > 0 && !s.empty;
        require((r == NULL) == fine);
        if (r != NULL) {
            require(r == msg);
            require(memchr(msg, 0, cap) != NULL);
        }
        free(msg);
    }
    free(buf);
    return 0;
}
