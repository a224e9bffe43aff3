/*
 * test_sdnotify.c - unit tests for src/sdnotify.c: the exact datagrams a
 * real AF_UNIX notify socket receives (what systemd reads), one STATUS
 * line whatever the text holds, nothing without NOTIFY_SOCKET, and one
 * warning for a socket nobody listens on.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "route.h"
#include "sdnotify.h"
#include "suites.h"

static char dir[64];
static char sock_path[100]; /* fits sun_path */
static int sock_fd = -1;

/* A datagram socket as systemd makes one; NOTIFY_SOCKET names it. */
static void receiver_setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/pgtp-sdnotify.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock_path, sizeof(sock_path), "%s/notify", dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
    sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(sock_fd, 0);
    ck_assert_int_eq(bind(sock_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(setenv("NOTIFY_SOCKET", sock_path, 1), 0);
}

static void receiver_teardown(void)
{
    unsetenv("NOTIFY_SOCKET");
    if (sock_fd >= 0)
        close(sock_fd);
    sock_fd = -1;
    unlink(sock_path);
    rmdir(dir);
}

/* The next datagram as a string; "" if none arrives within 1 s. */
static const char *next_msg(void)
{
    static char buf[2048];
    struct pollfd p = {.fd = sock_fd, .events = POLLIN};
    buf[0] = '\0';
    if (poll(&p, 1, 1000) != 1)
        return buf;
    ssize_t n = recv(sock_fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static bool nothing_pending(void)
{
    struct pollfd p = {.fd = sock_fd, .events = POLLIN};
    return poll(&p, 1, 100) == 0;
}

START_TEST(test_serving_names_listen_and_routes)
{
    char n1[] = "default", h1[] = "db.internal", n2[] = "analytics", h2[] = "10.0.0.7";
    struct route a = {.name = n1, .host = h1, .port = 5432};
    struct route b = {.name = n2, .host = h2, .port = 6432};
    struct route *all[] = {&a, &b};
    struct route_table t = {.all = all, .n = 2};
    sdnotify_serving("started", "0.0.0.0:5432,[::]:5432", &t);
    ck_assert_str_eq(next_msg(), "READY=1\nSTATUS=started: listening on 0.0.0.0:5432,[::]:5432; "
                                 "routes: default -> db.internal:5432, analytics -> 10.0.0.7:6432");
    struct route_table none = {.all = NULL, .n = 0};
    sdnotify_serving("reloaded (SIGHUP)", "127.0.0.1:5432", &none);
    ck_assert_str_eq(next_msg(), "READY=1\nSTATUS=reloaded (SIGHUP): listening on "
                                 "127.0.0.1:5432; routes: none (bridges only)");
}
END_TEST

START_TEST(test_reloading_has_monotonic_usec)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long before = (unsigned long long)ts.tv_sec * 1000000ull;
    sdnotify_reloading("SIGHUP");
    const char *m = next_msg();
    unsigned long long usec = 0;
    char status[64] = "";
    ck_assert_int_eq(sscanf(m, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%63[^\n]", &usec, status),
                     2);
    ck_assert_str_eq(status, "reloading (SIGHUP)");
    ck_assert(usec >= before && usec < before + 10000000ull);
}
END_TEST

START_TEST(test_ready_stopping_status)
{
    sdnotify_ready("connecting to %s (bridge %s)", "proxy:6432", "lab");
    ck_assert_str_eq(next_msg(), "READY=1\nSTATUS=connecting to proxy:6432 (bridge lab)");
    sdnotify_stopping("draining (%s): %d sessions open", "SIGTERM", 3);
    ck_assert_str_eq(next_msg(), "STOPPING=1\nSTATUS=draining (SIGTERM): 3 sessions open");
    sdnotify_status("tunnel up");
    ck_assert_str_eq(next_msg(), "STATUS=tunnel up");
}
END_TEST

/* A reason that holds a newline (a file's text in an error) stays inside
 * STATUS: it cannot add an assignment such as READY=1 or STOPPING=1. */
START_TEST(test_status_is_one_line)
{
    sdnotify_status("reload failed: bad line\nREADY=1\r\nSTOPPING=1");
    ck_assert_str_eq(next_msg(), "STATUS=reload failed: bad line READY=1  STOPPING=1");
    char name[] = "x\ny", host[] = "h\nSTOPPING=1";
    struct route r = {.name = name, .host = host, .port = 1};
    struct route *all[] = {&r};
    struct route_table t = {.all = all, .n = 1};
    sdnotify_serving("started", "a:1", &t);
    ck_assert_str_eq(next_msg(), "READY=1\nSTATUS=started: listening on a:1; routes: x y -> h "
                                 "STOPPING=1:1");
}
END_TEST

/* Many routes: the status is cut, never overflows, and still one message. */
START_TEST(test_long_status_is_cut)
{
    enum { N = 200 };
    static struct route r[N];
    static struct route *all[N];
    static char name[] = "some-route-name", host[] = "a.long.host.name";
    for (int i = 0; i < N; i++) {
        r[i] = (struct route){.name = name, .host = host, .port = 5432};
        all[i] = &r[i];
    }
    struct route_table t = {.all = all, .n = N};
    sdnotify_serving("started", "127.0.0.1:5432", &t);
    const char *m = next_msg();
    const char *pfx =
        "READY=1\nSTATUS=started: listening on 127.0.0.1:5432; routes: some-route-name -> "
        "a.long.host.name:5432, some-route-name";
    ck_assert_msg(strncmp(m, pfx, strlen(pfx)) == 0, "got %s", m);
    ck_assert_uint_lt(strlen(m), 600);
    ck_assert_ptr_null(strchr(m + 8, '\n'));
    ck_assert(nothing_pending());
}
END_TEST

START_TEST(test_without_notify_socket_nothing_is_sent)
{
    unsetenv("NOTIFY_SOCKET");
    ck_assert(!sdnotify_enabled());
    sdnotify_ready("x");
    sdnotify_reloading("SIGHUP");
    sdnotify_stopping("y");
    sdnotify_status("z");
    sdnotify_serving("started", "a:1", NULL);
    ck_assert(nothing_pending());
    setenv("NOTIFY_SOCKET", "", 1); /* empty counts as unset */
    ck_assert(!sdnotify_enabled());
    sdnotify_ready("x");
    ck_assert(nothing_pending());
}
END_TEST

static int failed_lines;
static void count_sink(void *arg, enum log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)len;
    if (level == LOG_WARN && strstr(line, "event=sd_notify_failed") != NULL &&
        strstr(line, "nobody-here") != NULL)
        failed_lines++;
}

START_TEST(test_unreachable_socket_warns_once)
{
    char path[192];
    snprintf(path, sizeof(path), "%s/nobody-here", dir);
    setenv("NOTIFY_SOCKET", path, 1);
    failed_lines = 0;
    log_set_sink(count_sink, NULL);
    sdnotify_ready("a");
    sdnotify_status("b");
    sdnotify_stopping("c");
    log_set_sink(NULL, NULL);
    ck_assert_int_eq(failed_lines, 1);
}
END_TEST

Suite *sdnotify_suite(void)
{
    Suite *s = suite_create("sdnotify");
    TCase *tc = tcase_create("sdnotify");
    tcase_add_checked_fixture(tc, receiver_setup, receiver_teardown);
    tcase_add_test(tc, test_serving_names_listen_and_routes);
    tcase_add_test(tc, test_reloading_has_monotonic_usec);
    tcase_add_test(tc, test_ready_stopping_status);
    tcase_add_test(tc, test_status_is_one_line);
    tcase_add_test(tc, test_long_status_is_cut);
    tcase_add_test(tc, test_without_notify_socket_nothing_is_sent);
    tcase_add_test(tc, test_unreachable_socket_warns_once);
    suite_add_tcase(s, tc);
    return s;
}
