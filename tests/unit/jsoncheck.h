/*
 * jsoncheck.h - a strict validator of the JSON subset log_to_json writes
 * (one object of string and number members, valid UTF-8), written apart
 * from log.c on purpose so that it does not share its mistakes. Used by the
 * unit suite (test_log.c) and the fuzz target (fuzz_logjson.c).
 */
#ifndef PGTP_TEST_JSONCHECK_H
#define PGTP_TEST_JSONCHECK_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
