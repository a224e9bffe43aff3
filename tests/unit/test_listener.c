/*
 * test_listener.c - unit tests for src/listener.c on a loop of the test's
 * own: a listener accepts every one of N queued clients and closes
 * cleanly (its handles called back, uv_loop_close() == 0); closing twice
 * is harmless; a descriptor it cannot poll is refused and closed;
 * listener_resolve refuses a port somebody else listens on; and out of
 * descriptors (RLIMIT_NOFILE lowered to the next free descriptor) the
 * accept loop pauses and serves the waiting clients once descriptors are
 * free again. That last test changes a process limit, so it runs only in
 * fork mode and not under valgrind (which keeps descriptors of its own
 * above the limit); a note on stderr says when it is skipped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "listener.h"
#include "log.h"
#include "suites.h"

#define NCLIENTS 12

struct acc {
    struct listener l;
    int accepted;
    int want;
    int accepted_at_restore; /* -1 until the limit is restored */
};

static void on_accept(void *arg, int fd)
{
    struct acc *a = arg;
    close(fd);
    if (++a->accepted == a->want)
        listener_close(&a->l);
}

/* A socket bound to 127.0.0.1 on a port of the kernel's choice. */
static int bound_loopback(uint16_t *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* A blocking client connection (completed by the kernel's listen queue). */
static int connect_loopback(uint16_t port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

START_TEST(test_accepts_n_clients)
{
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    struct acc a = {.want = NCLIENTS, .accepted_at_restore = -1};
    snprintf(a.l.name, sizeof(a.l.name), "listener=test");
    uint16_t port;
    int fd = bound_loopback(&port);
    ck_assert_int_eq(listener_open(&loop, &a.l, fd, on_accept, &a), 0);
    ck_assert(a.l.open);
    int cl[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        cl[i] = connect_loopback(port);
    /* runs until the last accept closes the listener and its handles */
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_int_eq(a.accepted, NCLIENTS);
    ck_assert(!a.l.open);
    ck_assert_uint_eq(a.l.closing, 0);
    ck_assert_int_eq(a.l.fd, -1);
    /* each client sees the proxy's side closed */
    for (int i = 0; i < NCLIENTS; i++) {
        char b;
        ck_assert_int_eq(recv(cl[i], &b, 1, 0), 0);
        close(cl[i]);
    }
    listener_close(&a.l); /* idempotent */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_open_bad_fd)
{
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    struct acc a = {.want = 1};
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC); /* not a socket: listen fails */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_lt(listener_open(&loop, &a.l, fd, on_accept, &a), 0);
    ck_assert(!a.l.open);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    ck_assert_uint_eq(a.l.closing, 0);
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* it took the descriptor */
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

START_TEST(test_resolve_port_in_use)
{
    uint16_t port;
    int fd = bound_loopback(&port);
    ck_assert_int_eq(listen(fd, 1), 0);
    struct addrinfo *res = NULL;
    char err[200] = "";
    ck_assert_int_eq(listener_resolve("127.0.0.1", port, &res, err, sizeof(err)), -1);
    ck_assert_ptr_null(res);
    ck_assert_msg(strstr(err, "address already in use") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "127.0.0.1") != NULL, "%s", err);
    close(fd);
    ck_assert_int_eq(listener_resolve("127.0.0.1", port, &res, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(res);
    freeaddrinfo(res);
}
END_TEST

/* ---- out of descriptors: a pause, then every waiting client is served ---- */

static struct rlimit saved_nofile;
static int accept_failed_lines;

static void sink(void *arg, enum log_level level, const char *line, size_t len)
{
    (void)arg;
    (void)level;
    (void)len;
    if (strstr(line, "event=accept_failed") != NULL && strstr(line, "out of file") != NULL)
        accept_failed_lines++;
}

static void restore_cb(uv_timer_t *t)
{
    struct acc *a = t->data;
    a->accepted_at_restore = a->accepted;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
    uv_close((uv_handle_t *)t, NULL);
}

static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p != NULL && strstr(p, "vgpreload") != NULL;
}

START_TEST(test_emfile_pause_then_serve)
{
    const char *ckf = getenv("CK_FORK");
    if ((ckf != NULL && strcmp(ckf, "no") == 0) || under_valgrind()) {
        fprintf(stderr, "listener: the EMFILE pause test is skipped here (CK_FORK=no or "
                        "valgrind: it lowers RLIMIT_NOFILE); the normal run has it\n");
        return;
    }
    uv_loop_t loop;
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    struct acc a = {.want = 4, .accepted_at_restore = -1};
    snprintf(a.l.name, sizeof(a.l.name), "listener=test");
    uint16_t port;
    int fd = bound_loopback(&port);
    ck_assert_int_eq(listener_open(&loop, &a.l, fd, on_accept, &a), 0);
    uv_timer_t restore;
    ck_assert_int_eq(uv_timer_init(&loop, &restore), 0);
    restore.data = &a;
    int cl[4];
    for (int i = 0; i < 4; i++)
        cl[i] = connect_loopback(port);

    /* the next descriptor is the first one over the limit */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
    int next = dup(0);
    ck_assert_int_ge(next, 0);
    close(next);
    struct rlimit low = saved_nofile;
    low.rlim_cur = (rlim_t)next;
    log_set_sink(sink, NULL);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    ck_assert_int_eq(uv_timer_start(&restore, restore_cb, 500, 0), 0);
    ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    log_set_sink(NULL, NULL);

    ck_assert_int_eq(a.accepted_at_restore, 0); /* nothing could be accepted before */
    ck_assert_int_eq(a.accepted, 4);            /* every waiting client, after */
    ck_assert_int_ge(accept_failed_lines, 1);   /* and the operator was told why */
    for (int i = 0; i < 4; i++)
        close(cl[i]);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

Suite *listener_suite(void)
{
    Suite *s = suite_create("listener");
    TCase *tc = tcase_create("listener");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_accepts_n_clients);
    tcase_add_test(tc, test_open_bad_fd);
    tcase_add_test(tc, test_resolve_port_in_use);
    tcase_add_test(tc, test_emfile_pause_then_serve);
    suite_add_tcase(s, tc);
    return s;
}
