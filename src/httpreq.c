/*
 * httpreq.c - the admin endpoint's HTTP/1.x request-head parser.
 *
 * Pure: reads the caller's bytes and writes the caller's buffers, nothing
 * else (no sockets, no allocation, no logging), so the unit tests drive it
 * with byte strings. Must never read past len or accept a head two HTTP
 * implementations could split differently (see httpreq_parse).
 */
#include "httpreq.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* RFC 9110 tchar: the characters of a method or a field name. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Expect buf[*i] == ch: 1 matched (and advanced), 0 out of bytes, -1 not ch. */
static int expect(const char *buf, size_t len, size_t *i, char ch)
{
    if (*i == len)
        return 0;
    if (buf[*i] != ch)
        return -1;
    (*i)++;
    return 1;
}

#define EXPECT(ch)                                                                                 \
    do {                                                                                           \
        int e_ = expect(buf, len, &i, (ch));                                                       \
        if (e_ <= 0)                                                                               \
            return e_;                                                                             \
    } while (0)

/*
 * Lines must end in CRLF: a bare LF (which RFC 9112 lets a server accept)
 * is refused, as are obsolete line folding and whitespace before a header's
 * colon. Every HTTP client sends CRLF, and a parser that accepts fewer
 * spellings has fewer ways to disagree with a proxy in front of it about
 * where a request ends (request smuggling).
 */
int httpreq_parse(const char *buf, size_t len, char *method, size_t mcap, char *path, size_t pcap)
{
    size_t i = 0, m = 0, p = 0;

    for (; i < len && is_tchar((unsigned char)buf[i]); i++) {
        if (m + 1 >= mcap)
            return -1;
        method[m++] = buf[i];
    }
    if (i == len)
        return 0;
    if (m == 0)
        return -1;
    EXPECT(' ');
    /* request-target: visible ASCII; what it may be is the caller's call. */
    for (; i < len && buf[i] > 0x20 && buf[i] < 0x7f; i++) {
        if (p + 1 >= pcap)
            return -1;
        path[p++] = buf[i];
    }
    if (i == len)
        return 0;
    if (p == 0)
        return -1;
    EXPECT(' ');
    for (const char *v = "HTTP/1."; *v != '\0'; v++)
        EXPECT(*v);
    if (i == len)
        return 0;
    if (buf[i] < '0' || buf[i] > '9')
        return -1;
    i++;
    EXPECT('\r');
    EXPECT('\n');

    /* Header lines up to the empty one. Their content is not needed (the
     * answer depends on the request line only) but must be well formed. */
    for (;;) {
        if (i == len)
            return 0;
        if (buf[i] == '\r')
            break;
        size_t name = 0;
        for (; i < len && is_tchar((unsigned char)buf[i]); i++)
            name++;
        if (i == len)
            return 0;
        if (name == 0) /* also refuses folding: a line starting with SP/HT */
            return -1;
        EXPECT(':');
        /* field-value: VCHAR, SP, HTAB and obs-text; no other control byte. */
        for (; i < len; i++) {
            unsigned char ch = (unsigned char)buf[i];
            if (ch != '\t' && (ch < 0x20 || ch == 0x7f))
                break;
        }
        EXPECT('\r');
        EXPECT('\n');
    }
    EXPECT('\r');
    EXPECT('\n');
    method[m] = '\0';
    path[p] = '\0';
    return 1;
}

/* buf[0..n) equals name, ignoring ASCII case. */
static bool name_is(const char *buf, size_t n, const char *name)
{
    if (strlen(name) != n)
        return false;
    for (size_t k = 0; k < n; k++) {
        char a = buf[k], b = name[k];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

int httpreq_header(const char *buf, size_t len, const char *name, char *out, size_t ocap)
{
    const char *end = buf + len;
    const char *line = memchr(buf, '\n', len); /* end of the request line */
    int found = 0;

    if (ocap == 0)
        return -1;
    out[0] = '\0';
    while (line != NULL && ++line < end && *line != '\r') {
        const char *eol = memchr(line, '\r', (size_t)(end - line));
        const char *colon = memchr(line, ':', (size_t)(end - line));
        if (eol == NULL || colon == NULL || colon > eol)
            return found; /* not a head httpreq_parse accepted: stop */
        if (name_is(line, (size_t)(colon - line), name)) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (found || (size_t)(ve - v) >= ocap) {
                out[0] = '\0';
                return -1;
            }
            memcpy(out, v, (size_t)(ve - v));
            out[ve - v] = '\0';
            found = 1;
        }
        line = memchr(eol, '\n', (size_t)(end - eol));
    }
    return found;
}
