/*
 * httpreq.h - the admin endpoint's HTTP/1.x request-head parser: pure (no
 * sockets, no allocation), so unit tests and fuzzers drive it with bytes.
 */
#ifndef PGTP_HTTPREQ_H
#define PGTP_HTTPREQ_H

#include <stddef.h>

/*
 * Parse buf[0..len) as "METHOD SP request-target SP HTTP/1.x CRLF", then
 * header lines ("name: value" CRLF), up to the empty line. Lines end in CRLF
 * only. On 1, method and path hold NUL-terminated copies (they must fit in
 * mcap and pcap with the NUL, else the head is malformed). Bytes after the
 * empty line are not looked at.
 * Returns 1 complete, 0 incomplete but valid so far, -1 malformed.
 */
int httpreq_parse(const char *buf, size_t len, char *method, size_t mcap, char *path, size_t pcap);

/*
 * The value of header `name` (case-insensitive) in a head that
 * httpreq_parse accepted (returned 1), without the whitespace around it,
 * NUL-terminated in out. 1 found, 0 absent, -1 present more than once or
 * longer than ocap - 1 (an Authorization sent twice is ambiguous: refused).
 */
int httpreq_header(const char *buf, size_t len, const char *name, char *out, size_t ocap);

#endif
