/*
 * test_netaddr.c - the one address formatter (src/netaddr.c).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "netaddr.h"
#include "suites.h"

START_TEST(formats)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr other;
    char buf[64], host[64];

    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    a4.sin_port = htons(5432);
    inet_pton(AF_INET, "10.1.2.3", &a4.sin_addr);
    netaddr_format((const struct sockaddr *)&a4, buf, sizeof(buf));
    ck_assert_str_eq(buf, "10.1.2.3:5432");
    ck_assert_str_eq(netaddr_host(buf, host, sizeof(host)), "10.1.2.3");

    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(6432);
    inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
    netaddr_format((const struct sockaddr *)&a6, buf, sizeof(buf));
    ck_assert_str_eq(buf, "[2001:db8::1]:6432");
    ck_assert_str_eq(netaddr_host(buf, host, sizeof(host)), "[2001:db8::1]");

    memset(&other, 0, sizeof(other));
    other.sa_family = AF_UNIX;
    netaddr_format(&other, buf, sizeof(buf));
    ck_assert_str_eq(buf, "?");
    netaddr_format(NULL, buf, sizeof(buf));
    ck_assert_str_eq(buf, "?");
    ck_assert_str_eq(netaddr_host("-", host, sizeof(host)), "-");
}
END_TEST

Suite *netaddr_suite(void)
{
    Suite *s = suite_create("netaddr");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, formats);
    suite_add_tcase(s, tc);
    return s;
}
