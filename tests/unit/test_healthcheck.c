/*
 * test_healthcheck.c - unit tests for src/healthcheck.c (the image's
 * HEALTHCHECK subcommand) against real loopback listeners: a thread that
 * accepts one connection and answers with a canned reply (200, 503,
 * garbage, or nothing), a closed port, and the address rules (wildcards
 * probed on loopback, no variable means healthy).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adminaddr.h"
#include "healthcheck.h"
#include "suites.h"

struct server {
    int lfd;
    unsigned port;
    const char *reply; /* NULL: accept, read, then stay silent until told */
    char request[512];
    int quit[2]; /* a pipe: the test writes to end a silent server */
    pthread_t thread;
};

static void *serve(void *arg)
{
    struct server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, s->request, sizeof(s->request) - 1);
    s->request[n > 0 ? n : 0] = '\0';
    if (s->reply != NULL) {
        ssize_t w = write(fd, s->reply, strlen(s->reply));
        (void)w;
    } else {
        char c;
        ssize_t r = read(s->quit[0], &c, 1);
        (void)r;
    }
    close(fd);
    return NULL;
}

static void server_start(struct server *s, const char *reply)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    memset(s, 0, sizeof(*s));
    s->reply = reply;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(s->lfd, 0);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s->lfd, 4), 0);
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    ck_assert_int_eq(pipe(s->quit), 0);
    ck_assert_int_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
    ssize_t w = write(s->quit[1], "x", 1);
    (void)w;
    shutdown(s->lfd, SHUT_RDWR); /* wakes an accept that never got a client */
    pthread_join(s->thread, NULL);
    close(s->lfd);
    close(s->quit[0]);
    close(s->quit[1]);
}

/* Probe "127.0.0.1:PORT" through healthcheck_target: the probe's result. */
static int probe_port(unsigned port, int timeout_ms, char *why, size_t whylen)
{
    char addr[32], err[256];
    struct sockaddr_storage ss;
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    ck_assert_msg(healthcheck_target(addr, &ss, err, sizeof(err)) == 0, "%s", err);
    return healthcheck_probe(&ss, timeout_ms, why, whylen);
}

START_TEST(test_probe_200)
{
    struct server s;
    char why[256] = "";
    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
    ck_assert_msg(probe_port(s.port, 3000, why, sizeof(why)) == 0, "%s", why);
    server_stop(&s);
    ck_assert_msg(strncmp(s.request, "GET /healthz HTTP/1.0\r\n", 23) == 0, "request: %s",
                  s.request);
}
END_TEST

START_TEST(test_probe_503)
{
    struct server s;
    char why[256] = "";
    server_start(&s, "HTTP/1.1 503 Service Unavailable\r\n\r\nshutting down\n");
    ck_assert_int_eq(probe_port(s.port, 3000, why, sizeof(why)), -1);
    server_stop(&s);
    ck_assert_msg(strstr(why, "answered 503, not 200") != NULL, "why: %s", why);
}
END_TEST

START_TEST(test_probe_not_http)
{
    struct server s;
    char why[256] = "";
    server_start(&s, "R\0\0\0\x08\0\0\0\0"); /* a PostgreSQL port, say */
    ck_assert_int_eq(probe_port(s.port, 3000, why, sizeof(why)), -1);
    server_stop(&s);
    ck_assert_msg(strstr(why, "not an HTTP status line") != NULL, "why: %s", why);
}
END_TEST

/* Status lines that are not "HTTP/1.x NNN": refused, never read as 200. */
START_TEST(test_probe_bad_status_lines)
{
    static const char *const replies[] = {
        "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/2 200\r\n\r\n",      "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",   "http/1.1 200 OK\r\n\r\n", "HTTP/1.1 +20 OK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        struct server s;
        char why[256] = "";
        server_start(&s, replies[i]);
        ck_assert_int_eq(probe_port(s.port, 3000, why, sizeof(why)), -1);
        server_stop(&s);
        ck_assert_msg(strstr(why, "not an HTTP status line") != NULL, "%s: why: %s", replies[i],
                      why);
    }
}
END_TEST

START_TEST(test_probe_silent_times_out)
{
    struct server s;
    char why[256] = "";
    server_start(&s, NULL);
    ck_assert_int_eq(probe_port(s.port, 200, why, sizeof(why)), -1);
    server_stop(&s);
    ck_assert_msg(strstr(why, "no HTTP answer in time") != NULL, "why: %s", why);
}
END_TEST

START_TEST(test_probe_refused)
{
    struct server s;
    char why[256] = "";
    server_start(&s, "HTTP/1.0 200 OK\r\n\r\n");
    unsigned port = s.port;
    server_stop(&s); /* the port is closed now */
    ck_assert_int_eq(probe_port(port, 3000, why, sizeof(why)), -1);
    ck_assert_msg(strstr(why, "connect to 127.0.0.1:") != NULL && strstr(why, "refused") != NULL,
                  "why: %s", why);
}
END_TEST

/* A wildcard listener is probed on the loopback address of its family. */
START_TEST(test_target_wildcards)
{
    static const struct {
        const char *in, *text;
    } cases[] = {
        {"0.0.0.0:9187", "127.0.0.1:9187"}, {"[::]:9187", "[::1]:9187"}, {"9187", "127.0.0.1:9187"},
        {"10.1.2.3:80", "10.1.2.3:80"},     {"[::1]:5", "[::1]:5"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        char err[256] = "", text[64];
        ck_assert_msg(healthcheck_target(cases[i].in, &ss, err, sizeof(err)) == 0, "%s: %s",
                      cases[i].in, err);
        adminaddr_text(&ss, text, sizeof(text));
        ck_assert_str_eq(text, cases[i].text);
    }
}
END_TEST

/* healthcheck_main with an environment: its exit status and what it says. */
static int run_main(char **argv, int argc, char **envp, char *msg, size_t msglen)
{
    FILE *out = tmpfile(), *err = tmpfile();
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(err);
    int rc = healthcheck_main(argc, argv, envp, out, err);
    rewind(err);
    size_t n = fread(msg, 1, msglen - 1, err);
    msg[n] = '\0';
    fclose(out);
    fclose(err);
    return rc;
}

START_TEST(test_main_env)
{
    struct server s;
    /* Writable strings, as main's argv and environ are. */
    char msg[512], admin[64], health[64], cmd[] = "healthcheck", bogus[] = "--bogus";
    char path[] = "PATH=/usr/bin", badaddr[] = "PG_TLS_PROXY_ADMIN_ADDRESS=nowhere:x";
    char *argv[] = {cmd, NULL};
    char *none[] = {path, NULL};
    ck_assert_int_eq(run_main(argv, 1, none, msg, sizeof(msg)), 0);
    ck_assert_str_eq(msg, "");

    server_start(&s, "HTTP/1.0 200 OK\r\n\r\n");
    snprintf(admin, sizeof(admin), "PG_TLS_PROXY_ADMIN_ADDRESS=0.0.0.0:%u", s.port);
    char *env_admin[] = {path, admin, NULL};
    ck_assert_int_eq(run_main(argv, 1, env_admin, msg, sizeof(msg)), 0);
    server_stop(&s);
    /* The same address again, closed now: 1 and one line naming it. */
    ck_assert_int_eq(run_main(argv, 1, env_admin, msg, sizeof(msg)), 1);
    ck_assert_msg(strstr(msg, "unhealthy: connect to 127.0.0.1:") != NULL, "%s", msg);
    ck_assert_msg(strchr(msg, '\n') == msg + strlen(msg) - 1, "one line: %s", msg);

    /* The connector's variable, when there is no admin address. */
    server_start(&s, "HTTP/1.0 503 Service Unavailable\r\n\r\n");
    snprintf(health, sizeof(health), "PG_TLS_PROXY_HEALTH_ADDRESS=127.0.0.1:%u", s.port);
    char *env_health[] = {health, NULL};
    ck_assert_int_eq(run_main(argv, 1, env_health, msg, sizeof(msg)), 1);
    server_stop(&s);
    ck_assert_msg(strstr(msg, "answered 503") != NULL, "%s", msg);

    char *bad[] = {badaddr, NULL};
    ck_assert_int_eq(run_main(argv, 1, bad, msg, sizeof(msg)), 1);
    ck_assert_msg(strstr(msg, "(from PG_TLS_PROXY_ADMIN_ADDRESS)") != NULL, "%s", msg);

    char *usage[] = {cmd, bogus, NULL};
    ck_assert_int_eq(run_main(usage, 2, none, msg, sizeof(msg)), 1);
    ck_assert_msg(strstr(msg, "usage: pg-tls-proxy healthcheck") != NULL, "%s", msg);
}
END_TEST

Suite *healthcheck_suite(void)
{
    Suite *s = suite_create("healthcheck");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_probe_200);
    tcase_add_test(tc, test_probe_503);
    tcase_add_test(tc, test_probe_not_http);
    tcase_add_test(tc, test_probe_bad_status_lines);
    tcase_add_test(tc, test_probe_silent_times_out);
    tcase_add_test(tc, test_probe_refused);
    tcase_add_test(tc, test_target_wildcards);
    tcase_add_test(tc, test_main_env);
    suite_add_tcase(s, tc);
    return s;
}
