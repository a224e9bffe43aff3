/*
 * fuzz_logjson.c - libFuzzer target for log_to_json, the key=value -> JSON
 * conversion behind --log-format json. Log lines carry client-chosen bytes
 * (SNI, application_name, error messages) inside their values, so the input
 * is any NUL-free text. The output must be one valid JSON object of strings
 * and numbers, valid UTF-8, within the capacity given, at every capacity
 * the first input byte picks; abort() otherwise.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsoncheck.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    size_t cap = 3 + (size_t)data[0] * 8; /* 3 .. 2043: truncation paths too */
    char *in = malloc(size);
    char *out = malloc(cap);
    if (in == NULL || out == NULL)
        abort();
    memcpy(in, data + 1, size - 1);
    in[size - 1] = '\0';
    size_t n = log_to_json(in, out, cap);
    if (n > cap || !valid_json(out, n))
        abort();
    /* With room for the worst case nothing is cut: every key survives. */
    char *big = malloc(size * 6 + 64);
    if (big == NULL)
        abort();
    n = log_to_json(in, big, size * 6 + 64);
    if (!valid_json(big, n))
        abort();
    free(big);
    free(in);
    free(out);
    return 0;
}
