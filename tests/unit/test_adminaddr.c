/*
 * test_adminaddr.c - unit tests for src/adminaddr.c: the accepted spellings
 * of --admin-address (table: family, address and port they become, and the
 * text adminaddr_text prints back). The refused spellings and their
 * messages are test_metrics.c's bad_addrs table, through admin_check_address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "adminaddr.h"
#include "suites.h"

#define NELEM(a) (int)(sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *in;
    int family;
    const char *text; /* adminaddr_text of the result */
} good[] = {
    {"9187", AF_INET, "127.0.0.1:9187"},
    {"1", AF_INET, "127.0.0.1:1"},
    {"65535", AF_INET, "127.0.0.1:65535"},
    {"00080", AF_INET, "127.0.0.1:80"},
    {"localhost:9187", AF_INET, "127.0.0.1:9187"},
    {"0.0.0.0:9187", AF_INET, "0.0.0.0:9187"},
    {"10.1.2.3:8080", AF_INET, "10.1.2.3:8080"},
    {"[::1]:9187", AF_INET6, "[::1]:9187"},
    {"[::]:9187", AF_INET6, "[::]:9187"},
    {"[fe80::1:2]:443", AF_INET6, "[fe80::1:2]:443"},
    {"[::ffff:10.0.0.1]:9187", AF_INET6, "[::ffff:10.0.0.1]:9187"},
};

START_TEST(test_parse_good)
{
    struct sockaddr_storage ss;
    char err[256] = "", text[80];
    memset(&ss, 0xa5, sizeof(ss)); /* the parser clears what it does not set */
    ck_assert_msg(adminaddr_parse(good[_i].in, &ss, err, sizeof(err)) == 0, "%s: %s", good[_i].in,
                  err);
    ck_assert_int_eq(ss.ss_family, good[_i].family);
    adminaddr_text(&ss, text, sizeof(text));
    ck_assert_str_eq(text, good[_i].text);
    /* The text parses back to the same address. */
    struct sockaddr_storage again;
    ck_assert_int_eq(adminaddr_parse(text, &again, err, sizeof(err)), 0);
    size_t n =
        good[_i].family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    ck_assert(memcmp(&ss, &again, n) == 0);
}
END_TEST

/* Errors fit the caller's buffer, truncated, never overrun. */
START_TEST(test_parse_bad_short_buffer)
{
    struct sockaddr_storage ss;
    char err[12];
    memset(err, 'x', sizeof(err));
    ck_assert_int_eq(adminaddr_parse("example.com:9187", &ss, err, 8), -1);
    ck_assert_str_eq(err, "--admin");
    ck_assert_int_eq(err[8], 'x');
}
END_TEST

START_TEST(test_text_truncates)
{
    struct sockaddr_storage ss;
    char err[128], text[8];
    ck_assert_int_eq(adminaddr_parse("[::1]:9187", &ss, err, sizeof(err)), 0);
    adminaddr_text(&ss, text, sizeof(text));
    ck_assert_str_eq(text, "[::1]:9");
}
END_TEST

Suite *adminaddr_suite(void)
{
    Suite *s = suite_create("adminaddr");
    TCase *t = tcase_create("adminaddr");
    tcase_add_loop_test(t, test_parse_good, 0, NELEM(good));
    tcase_add_test(t, test_parse_bad_short_buffer);
    tcase_add_test(t, test_text_truncates);
    suite_add_tcase(s, t);
    return s;
}
