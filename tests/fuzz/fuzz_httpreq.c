/*
 * fuzz_httpreq.c - libFuzzer target for httpreq_parse, the admin
 * endpoint's request-head parser, and httpreq_header on what it accepts.
 *
 * The input is handed over as is (no NUL: the parser must not need one).
 * Checked, abort() on any failure: the answer is -1, 0 or 1; on 1 the
 * method and path are NUL-terminated within their buffers, non-empty,
 * free of spaces and control bytes; a complete head stays complete with
 * bytes appended; an incomplete one is not malformed in any prefix; and
 * a malformed one stays malformed with more bytes ("decisions are final").
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

static void check_token(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    require(n > 0 && n < cap);
    for (size_t i = 0; i < n; i++)
        require((unsigned char)s[i] > 0x20 && (unsigned char)s[i] != 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    if (size > 0)
        memcpy(buf, data, size);
    char m[16], p[256];
    int r = httpreq_parse(buf, size, m, sizeof(m), p, sizeof(p));
    require(r >= -1 && r <= 1);
    if (r == 1) {
        check_token(m, sizeof(m));
        check_token(p, sizeof(p));
        /* httpreq_header on an accepted head: -1..1, out always a string
         * within its buffer, with no CR or LF in it. */
        char v[64];
        int h = httpreq_header(buf, size, "authorization", v, sizeof(v));
        require(h >= -1 && h <= 1);
        size_t vn = strnlen(v, sizeof(v));
        require(vn < sizeof(v) && (h == 1 || vn == 0) && memchr(v, '\r', vn) == NULL &&
                memchr(v, '\n', vn) == NULL);
    }
    /* One more byte never turns an answer around, except 0 -> anything. */
    buf[size] = 'x';
    int more = httpreq_parse(buf, size + 1, m, sizeof(m), p, sizeof(p));
    if (r != 0)
        require(more == r);
    /* Every prefix of a head that is not malformed is not malformed. */
    if (r >= 0)
        for (size_t n = 0; n < size; n += 1 + n / 8)
            require(httpreq_parse(buf, n, m, sizeof(m), p, sizeof(p)) >= 0);
    free(buf);
    return 0;
}
