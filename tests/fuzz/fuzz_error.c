/*
 * fuzz_error.c - libFuzzer round trip for pg_build_error.
 *
 * Input layout: byte 0 picks the output capacity relative to the size the
 * message needs (-8..+8 bytes), byte 1 picks which arguments are NULL, and
 * the rest is split at NUL bytes into severity, sqlstate, message and hint.
 * The builder writes into a heap buffer of exactly that capacity (so ASan
 * sees any overrun); the result is parsed back with an independent parser
 * below and compared field by field. abort() on any mismatch.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool sqlstate_valid(const char *s)
{
    if (s == NULL || strlen(s) != 5)
        return false;
    for (size_t i = 0; i < 5; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

/* What a client sees in the message. */
struct fields {
    const char *f[4]; /* S/V severity, C, M, H, pointing into the message */
    const char *v;
};

/* Parse an ErrorResponse the way a strict client would: 'E', a length word
 * equal to n - 1, fields S V C M and optionally H in that order, each a
 * NUL-terminated string inside the message, and a final NUL as last byte. */
static bool parse_error(const uint8_t *m, size_t n, struct fields *out)
{
    static const char order[] = "SVCMH";
    memset(out, 0, sizeof(*out));
    if (n < 6 || m[0] != 'E')
        return false;
    uint32_t word = (uint32_t)m[1] << 24 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 8 | m[4];
    if (word != n - 1)
        return false;
    size_t i = 5, nf = 0;
    while (i < n && m[i] != 0) {
        if (nf >= 5 || m[i] != (uint8_t)order[nf])
            return false;
        const uint8_t *nul = memchr(m + i + 1, 0, n - i - 1);
        if (nul == NULL)
            return false;
        const char *s = (const char *)(m + i + 1);
        if (nf == 1)
            out->v = s;
        else
            out->f[nf == 0 ? 0 : nf - 1] = s;
        nf++;
        i = (size_t)(nul - m) + 1;
    }
    return i == n - 1 && m[i] == 0 && nf >= 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int delta = (int)(data[0] % 17) - 8;
    uint8_t nulls = data[1];

    /* A NUL-terminated copy so every piece is a C string. */
    char *text = malloc(size - 2 + 1);
    require(text != NULL);
    memcpy(text, data + 2, size - 2);
    text[size - 2] = '\0';

    const char *arg[4] = {NULL, NULL, NULL, NULL}; /* severity, sqlstate, message, hint */
    size_t off = 0;
    for (int a = 0; a < 4 && off <= size - 2; a++) {
        arg[a] = &text[off];
        off += strlen(&text[off]) + 1;
    }
    for (int a = 0; a < 4; a++)
        if (nulls & (1u << a))
            arg[a] = NULL;
    const char *sev = arg[0], *state = arg[1], *msg = arg[2], *hint = arg[3];

    bool valid = sev != NULL && msg != NULL && sqlstate_valid(state);
    bool has_hint = hint != NULL && hint[0] != '\0';
    size_t slen = sev ? strlen(sev) : 0, mlen = msg ? strlen(msg) : 0;
    size_t need = 1 + 4 + 2 * (slen + 2) + 7 + (mlen + 2) + (has_hint ? strlen(hint) + 2 : 0) + 1;

    size_t cap = (delta < 0 && (size_t)-delta > need) ? 0 : (size_t)((long)need + delta);
    uint8_t *buf = malloc(cap > 0 ? cap : 1);
    require(buf != NULL);

    size_t n = pg_build_error(buf, cap, sev, state, msg, hint);
    require(n == ((valid && need <= cap) ? need : 0));

    if (n > 0) {
        struct fields f;
        require(parse_error(buf, n, &f));
        require(strcmp(f.f[0], sev) == 0 && strcmp(f.v, sev) == 0);
        require(strcmp(f.f[1], state) == 0);
        require(strcmp(f.f[2], msg) == 0);
        if (has_hint)
            require(f.f[3] != NULL && strcmp(f.f[3], hint) == 0);
        else
            require(f.f[3] == NULL);
    }
    free(buf);
    free(text);
    return 0;
}
