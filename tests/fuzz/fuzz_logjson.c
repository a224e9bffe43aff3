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

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool utf8_ok(const unsigned char *s, size_t n, size_t *used)
{
    size_t len;
    if (s[0] < 0x80)
        len = 1;
    else if (s[0] >= 0xc2 && s[0] <= 0xdf)
        len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        len = 3;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        len = 4;
    else
        return false;
    if (len > n)
        return false;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return false;
    *used = len;
    return true;
}

/* A JSON string at s[*i]: quotes, escapes \" \\ \uXXXX only, no raw control
 * character, valid UTF-8. */
static bool v_string(const char *s, size_t n, size_t *i)
{
    if (*i >= n || s[*i] != '"')
        return false;
    for ((*i)++; *i < n;) {
        unsigned char ch = (unsigned char)s[*i];
        if (ch == '"') {
            (*i)++;
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            if (*i + 1 >= n)
                return false;
            char e = s[*i + 1];
            if (e == '"' || e == '\\') {
                *i += 2;
            } else if (e == 'u') {
                if (*i + 6 > n)
                    return false;
                for (size_t k = 2; k < 6; k++)
                    if (strchr("0123456789abcdef", s[*i + k]) == NULL || s[*i + k] == '\0')
                        return false;
                *i += 6;
            } else {
                return false;
            }
            continue;
        }
        size_t used;
        if (!utf8_ok((const unsigned char *)s + *i, n - *i, &used))
            return false;
        *i += used;
    }
    return false;
}

/* {"k":"v"|digits,...} and nothing after it. */
static bool valid_json(const char *s, size_t n)
{
    size_t i = 0;
    if (n < 2 || s[i++] != '{')
        return false;
    if (s[i] == '}')
        return i + 1 == n;
    for (;;) {
        if (!v_string(s, n, &i) || i >= n || s[i++] != ':')
            return false;
        if (i < n && s[i] == '"') {
            if (!v_string(s, n, &i))
                return false;
        } else {
            size_t start = i;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == start || (s[start] == '0' && i - start > 1))
                return false;
        }
        if (i >= n)
            return false;
        if (s[i] == '}')
            return i + 1 == n;
        if (s[i++] != ',')
            return false;
    }
}

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
