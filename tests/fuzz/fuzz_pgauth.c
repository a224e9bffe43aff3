/*
 * fuzz_pgauth.c - libFuzzer target for the authentication messages of
 * src/pgauth.c (pg_auth_parse, pg_password_parse, pg_sasl_initial_parse,
 * pg_sasl_response_parse) and the StartupMessage parameter reader
 * pg_startup_param of src/pgproto.c: what auth.c reads from a client or a
 * server while it logs in for the client.
 *
 * The input is used as it comes (one whole message), and also with its
 * first byte forced to each type and its length word fixed to match, so
 * that most inputs reach the bodies. abort()s when an invariant auth.c
 * relies on breaks: results point inside the message and end inside it,
 * strings are NUL-terminated where they are said to be, a parsed message
 * rebuilt with the builders gives the same bytes, and a shorter input
 * never parses as the same message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pgauth.h"
#include "pgproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_IN 70000

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool inside(const uint8_t *msg, size_t len, const void *p, size_t n)
{
    const uint8_t *q = p;
    return q >= msg && q <= msg + len && n <= (size_t)(msg + len - q);
}

static void check_auth(const uint8_t *m, size_t n)
{
    int code = -1;
    const uint8_t *d = NULL;
    size_t dl = 0;
    if (pg_auth_parse(m, n, &code, &d, &dl) != 0)
        return;
    require(n >= 9 && m[0] == 'R' && code >= 0 && code <= 1000);
    require(d == m + 9 && dl == n - 9);
    uint8_t *out = malloc(n);
    require(out != NULL);
    require(pg_auth_build(out, n, code, d, dl) == n);
    require(memcmp(out, m, n) == 0);
    require(n == 0 || pg_auth_build(out, n - 1, code, d, dl) == 0);
    free(out);
}

static void check_password(const uint8_t *m, size_t n)
{
    const char *pw = NULL;
    size_t pl = 0;
    if (pg_password_parse(m, n, &pw, &pl) != 0)
        return;
    require(m[0] == 'p' && inside(m, n, pw, pl + 1));
    require(strlen(pw) == pl && pw[pl] == '\0' && (const uint8_t *)pw + pl + 1 == m + n);
    uint8_t *out = malloc(n);
    require(out != NULL);
    require(pg_p_build(out, n, pw, pl + 1) == n && memcmp(out, m, n) == 0);
    free(out);
}

static void check_initial(const uint8_t *m, size_t n)
{
    const char *mech = NULL;
    const uint8_t *d = NULL;
    size_t dl = 0;
    if (pg_sasl_initial_parse(m, n, &mech, &d, &dl) != 0)
        return;
    size_t ml = strlen(mech);
    require(m[0] == 'p' && ml > 0 && inside(m, n, mech, ml + 1));
    if (d == NULL) {
        require(dl == 0 && (const uint8_t *)mech + ml + 5 == m + n); /* length -1 */
        return;
    }
    require(inside(m, n, d, dl) && d + dl == m + n);
    uint8_t *out = malloc(n);
    require(out != NULL);
    require(pg_sasl_initial_build(out, n, mech, d, dl) == n && memcmp(out, m, n) == 0);
    free(out);
}

static void check_response(const uint8_t *m, size_t n)
{
    const uint8_t *d = NULL;
    size_t dl = 0;
    if (pg_sasl_response_parse(m, n, &d, &dl) != 0)
        return;
    require(m[0] == 'p' && d == m + 5 && dl == n - 5);
}

static void check_all(const uint8_t *m, size_t n)
{
    check_auth(m, n);
    check_password(m, n);
    check_initial(m, n);
    check_response(m, n);
    /* A whole message (its length word says n - 1) cut one byte short
     * never parses. */
    if (n >= 5 &&
        ((uint32_t)m[1] << 24 | (uint32_t)m[2] << 16 | (uint32_t)m[3] << 8 | m[4]) == n - 1) {
        int code;
        const uint8_t *d;
        const char *s;
        size_t l;
        require(pg_auth_parse(m, n - 1, &code, &d, &l) == -1);
        require(pg_password_parse(m, n - 1, &s, &l) == -1);
        require(pg_sasl_initial_parse(m, n - 1, &s, &d, &l) == -1);
        require(pg_sasl_response_parse(m, n - 1, &d, &l) == -1);
    }
}

/* needle (n bytes) somewhere in hay. */
static bool holds(const uint8_t *hay, size_t hn, const char *needle, size_t n)
{
    for (size_t i = 0; n <= hn && i <= hn - n; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

/* pg_startup_param on the input taken as a StartupMessage (its own length
 * word, then fixed), for the names auth.c and conn.c ask for. */
static void check_startup(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"user", "database", "", "replication"};
    char out[64];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        memset(out, 0x5a, sizeof(out));
        if (pg_startup_param(data, size, names[i], out, sizeof(out)) == 0) {
            const char *nul = memchr(out, '\0', sizeof(out));
            require(nul != NULL);
            /* the value is a string that the packet holds */
            require(holds(data, size, out, (size_t)(nul - out) + 1));
        }
        require(pg_startup_param(data, size, names[i], out, 0) == -1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IN)
        return 0;
    check_all(data, size);
    check_startup(data, size);
    if (size < 5)
        return 0;

    /* The same bytes as each message type, the length word made right. */
    uint8_t *m = malloc(size);
    require(m != NULL);
    memcpy(m, data, size);
    uint32_t w = (uint32_t)(size - 1);
    m[1] = (uint8_t)(w >> 24);
    m[2] = (uint8_t)(w >> 16);
    m[3] = (uint8_t)(w >> 8);
    m[4] = (uint8_t)w;
    static const uint8_t types[] = {'R', 'p'};
    for (size_t i = 0; i < sizeof(types); i++) {
        m[0] = types[i];
        check_all(m, size);
    }
    /* and as a StartupMessage whose length word is right */
    memcpy(m, data, size);
    w = (uint32_t)size;
    m[0] = (uint8_t)(w >> 24);
    m[1] = (uint8_t)(w >> 16);
    m[2] = (uint8_t)(w >> 8);
    m[3] = (uint8_t)w;
    check_startup(m, size);
    free(m);
    return 0;
}
