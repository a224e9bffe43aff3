/*
 * test_pgtrack.c - unit tests for src/pgtrack.c: is a session idle, from
 * the messages each way. Table-driven: a case is a script of messages
 * ("c:Q5" = the client sends a 'Q' with a 5-byte body, "s:Z1" = the
 * server sends ReadyForQuery) and the expected answer after the script;
 * each script is also replayed in chunks of every size from 1 byte up, so
 * that framing across reads is exercised at every split point.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgtrack.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

struct track_case {
    const char *name;
    const char *script;
    bool idle;
    bool failed;
    unsigned pending;
};

static const struct track_case cases[] = {
    {"nothing yet", "", true, false, 0},
    {"query running", "c:Q9", false, false, 1},
    {"query with rows, not done", "c:Q9 s:T20 s:D8 s:C9", false, false, 1},
    {"query answered", "c:Q9 s:T20 s:D8 s:C9 s:Z1", true, false, 0},
    {"notice, then still running", "c:Q30 s:N40", false, false, 1},
    {"two pipelined queries, one answered", "c:Q9 c:Q9 s:C9 s:Z1", false, false, 1},
    {"two pipelined queries, both answered", "c:Q9 c:Q9 s:Z1 s:Z1", true, false, 0},
    {"query sent with the last result", "c:Q9 s:Z1 c:Q9", false, false, 1},
    {"extended, no Sync yet", "c:P20 c:B12 c:E9", false, false, 0},
    {"extended, Sync, not answered", "c:P20 c:B12 c:E9 c:S0", false, false, 1},
    {"extended, answered", "c:P20 c:B12 c:E9 c:S0 s:11 s:21 s:C9 s:Z1", true, false, 0},
    {"extended after an answered query, no Sync", "c:Q9 c:P20 s:Z1", false, false, 0},
    {"flush without Sync", "c:P20 c:H0 s:10", false, false, 0},
    {"function call answered", "c:F20 s:V8 s:Z1", true, false, 0},
    {"COPY FROM STDIN in progress", "c:Q30 s:G7 c:d100 c:d100", false, false, 1},
    {"COPY FROM STDIN done", "c:Q30 s:G7 c:d100 c:c0 s:C9 s:Z1", true, false, 0},
    {"COPY TO STDOUT streaming", "c:Q30 s:H7 s:d100 s:d100", false, false, 1},
    {"unsolicited ReadyForQuery does not go below zero", "s:Z1 s:Z1 c:Q9", false, false, 1},
    {"async notification while idle", "c:Q9 s:Z1 s:A20", true, false, 0},
    {"idle in transaction", "c:Q6 s:C6 s:Z1", true, false, 0},
    {"terminate", "c:X0", true, false, 0},
    {"empty bodies", "c:S0 s:Z0", true, false, 0},
    {"a 1 GB row is framed", "c:Q9 s:D1073741820", false, false, 1},
    {"client length below 4", "c:Q~3", false, true, 0},
    {"server length absurd", "s:D~1073741825", false, true, 0},
};

/* Append one message: type, length word, body of n bytes (n may be huge:
 * then only the header is written and *skip says how much body follows). */
static size_t put_msg(uint8_t *out, char type, unsigned long n, bool raw_len, size_t *body)
{
    unsigned long len = raw_len ? n : n + 4;
    out[0] = (uint8_t)type;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    *body = raw_len ? 0 : n;
    return 5;
}

/* Run a script; chunk: bytes per feed (0 = each message in one feed). */
static void run(const char *script, size_t chunk, struct pgtrack *t)
{
    memset(t, 0, sizeof(*t));
    const char *p = script;
    static uint8_t body[65536];
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        char dir = p[0], type = p[2];
        bool raw = p[3] == '~';
        char *end;
        unsigned long n = strtoul(p + 3 + raw, &end, 10);
        p = end;
        uint8_t hdr[5];
        size_t blen = 0;
        put_msg(hdr, type, n, raw, &blen);
        int (*feed)(struct pgtrack *, const uint8_t *, size_t) =
            dir == 'c' ? pgtrack_client : pgtrack_server;
        if (chunk == 0) {
            feed(t, hdr, 5);
        } else {
            for (size_t i = 0; i < 5; i += chunk)
                feed(t, hdr + i, 5 - i < chunk ? 5 - i : chunk);
        }
        /* The body, in pieces of at most sizeof(body) (or chunk) bytes. */
        while (blen > 0) {
            size_t k = blen < sizeof(body) ? blen : sizeof(body);
            if (chunk > 0 && k > chunk)
                k = chunk;
            feed(t, body, k);
            blen -= k;
            if (chunk > 0 && blen > 4096) { /* huge bodies: the rest at once */
                while (blen > 0) {
                    size_t m = blen < sizeof(body) ? blen : sizeof(body);
                    feed(t, body, m);
                    blen -= m;
                }
            }
        }
    }
}

START_TEST(test_track)
{
    const struct track_case *tc = &cases[_i];
    for (size_t chunk = 0; chunk <= 7; chunk++) {
        struct pgtrack t;
        run(tc->script, chunk, &t);
        ck_assert_msg(pgtrack_idle(&t) == tc->idle, "%s (chunk %zu): idle %d", tc->name, chunk,
                      (int)pgtrack_idle(&t));
        ck_assert_msg(t.failed == tc->failed, "%s (chunk %zu): failed %d", tc->name, chunk,
                      (int)t.failed);
        ck_assert_msg(t.pending == tc->pending, "%s (chunk %zu): pending %u", tc->name, chunk,
                      t.pending);
    }
}
END_TEST

/* Once framing fails, nothing makes the session idle again. */
START_TEST(test_failed_sticks)
{
    struct pgtrack t;
    memset(&t, 0, sizeof(t));
    static const uint8_t bad[] = {'Q', 0, 0, 0, 2};
    static const uint8_t z[] = {'Z', 0, 0, 0, 5, 'I'};
    ck_assert_int_eq(pgtrack_client(&t, bad, sizeof(bad)), -1);
    ck_assert_int_eq(pgtrack_server(&t, z, sizeof(z)), -1);
    ck_assert_int_eq(pgtrack_client(&t, z, 0), -1);
    ck_assert(!pgtrack_idle(&t));
}
END_TEST

/* Several messages in one feed, split mid-header and mid-body. */
START_TEST(test_one_buffer)
{
    static const uint8_t srv[] = {'C', 0, 0, 0,   8,   'S', 'E', 'L', 0, 'Z', 0,
                                  0,   0, 5, 'I', 'Z', 0,   0,   0,   5, 'T'};
    static const uint8_t cli[] = {'Q', 0, 0, 0, 5, 0, 'Q', 0, 0, 0, 5, 0};
    struct pgtrack t;
    memset(&t, 0, sizeof(t));
    ck_assert_int_eq(pgtrack_client(&t, cli, sizeof(cli)), 0);
    ck_assert_uint_eq(t.pending, 2);
    ck_assert_int_eq(pgtrack_server(&t, srv, 12), 0); /* C, and Z's first 3 bytes */
    ck_assert_uint_eq(t.pending, 2);
    ck_assert_int_eq(pgtrack_server(&t, srv + 12, 2), 0); /* Z's header is whole */
    ck_assert_uint_eq(t.pending, 1);
    ck_assert(!pgtrack_idle(&t));
    ck_assert_int_eq(pgtrack_server(&t, srv + 14, sizeof(srv) - 14), 0);
    ck_assert(pgtrack_idle(&t));
}
END_TEST

Suite *pgtrack_suite(void)
{
    Suite *s = suite_create("pgtrack");
    TCase *tc = tcase_create("track");
    tcase_add_loop_test(tc, test_track, 0, NELEM(cases));
    tcase_add_test(tc, test_failed_sticks);
    tcase_add_test(tc, test_one_buffer);
    suite_add_tcase(s, tc);
    return s;
}
