/*
 * healthcheck.c - `pg-tls-proxy healthcheck [HOST:PORT]` (see
 * healthcheck.h): what the container image's HEALTHCHECK runs, so that the
 * image needs no shell, curl or /dev/tcp at run time.
 *
 * A separate short-lived process: it must never touch the running proxy's
 * state, only its admin endpoint over TCP, and it prints one line on
 * failure (orchestrators show the last lines of a failed check). Liveness
 * only: /healthz (200 while listening), never /readyz, which also fails
 * when the database is down and would get a healthy proxy restarted.
 */
#include "healthcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "adminaddr.h"

static const char request[] =
    "GET /healthz HTTP/1.0\r\nUser-Agent: pg-tls-proxy-healthcheck\r\n\r\n";

static void usage(FILE *f)
{
    fprintf(f, "usage: pg-tls-proxy healthcheck [HOST:PORT]\n"
               "  GET /healthz on the admin endpoint; exit 0 on status 200, else 1 with the\n"
               "  reason on stderr. The address: HOST:PORT, else PG_TLS_PROXY_ADMIN_ADDRESS,\n"
               "  else PG_TLS_PROXY_HEALTH_ADDRESS (the connector's); 0.0.0.0 and :: are\n"
               "  probed on loopback. Neither set: nothing to probe, exit 0.\n");
}

int healthcheck_target(const char *addr, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    if (adminaddr_parse(addr, ss, err, errlen) < 0)
        return -1;
    if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            s6->sin6_addr = in6addr_loopback;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
            s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Non-blocking connect bounded by the deadline. 0, or -1 with why filled. */
static int connect_by(int fd, const struct sockaddr_storage *ss, long long deadline,
                      const char *where, char *why, size_t whylen)
{
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    int soerr = 0;
    if (connect(fd, (const struct sockaddr *)ss, len) == 0)
        return 0;
    if (errno != EINPROGRESS) {
        soerr = errno;
    } else {
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r == 0) {
            snprintf(why, whylen, "connect to %s: no answer in time", where);
            return -1;
        }
        socklen_t sl = sizeof(soerr);
        if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
    }
    if (soerr == 0)
        return 0;
    snprintf(why, whylen, "connect to %s: %s", where, strerror(soerr));
    return -1;
}

/* "HTTP/1.0 NNN ..." or "HTTP/1.1 NNN ...": NNN (100..599), else -1: not
 * our admin endpoint. Digit by digit: no sscanf, whose %d cannot report
 * an overflow. */
static int parse_status(const char *line)
{
    static const char prefix[] = "HTTP/1.";
    if (strncmp(line, prefix, sizeof(prefix) - 1) != 0)
        return -1;
    const char *p = line + sizeof(prefix) - 1;
    if ((p[0] != '0' && p[0] != '1') || p[1] != ' ')
        return -1;
    p += 2;
    int code = 0;
    for (int i = 0; i < 3; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        code = code * 10 + (p[i] - '0');
    }
    if (p[3] != ' ' && p[3] != '\r' && p[3] != '\n' && p[3] != '\0')
        return -1;
    return code >= 100 && code <= 599 ? code : -1;
}

/* Reads until the status line is complete (or the peer closes): its code. */
static int read_status(int fd, long long deadline, const char *where, char *why, size_t whylen)
{
    char buf[256] = {0}; /* initialised for cppcheck: memchr reads none of it while got is 0 */
    size_t got = 0;
    while (got < sizeof(buf) - 1 && memchr(buf, '\n', got) == NULL) {
        int r = wait_fd(fd, POLLIN, deadline);
        if (r == 0) {
            snprintf(why, whylen, "%s: no HTTP answer in time", where);
            return -1;
        }
        ssize_t n = r < 0 ? -1 : read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    int code = parse_status(buf);
    if (code < 0) {
        snprintf(why, whylen, "%s: not an HTTP status line (%s)", where,
                 got == 0 ? "connection closed" : "unexpected bytes");
        return -1;
    }
    return code;
}

int healthcheck_probe(const struct sockaddr_storage *ss, int timeout_ms, char *why, size_t whylen)
{
    char where[64];
    long long deadline = now_ms() + timeout_ms;
    adminaddr_text(ss, where, sizeof(where));
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whylen, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = -1;
    if (connect_by(fd, ss, deadline, where, why, whylen) < 0)
        goto out;
    /* The request is far below any socket buffer: one send, no loop. */
    if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(request) - 1)) {
        snprintf(why, whylen, "%s: cannot send the request: %s", where, strerror(errno));
        goto out;
    }
    int code = read_status(fd, deadline, where, why, whylen);
    if (code == 200)
        rc = 0;
    else if (code > 0)
        snprintf(why, whylen, "%s: GET /healthz answered %d, not 200", where, code);
out:
    close(fd);
    return rc;
}

static const char *env_get(char **envp, const char *name)
{
    size_t nl = strlen(name);
    for (char **e = envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, nl) == 0 && (*e)[nl] == '=')
            return *e + nl + 1;
    return NULL;
}

int healthcheck_main(int argc, char **argv, char **envp, FILE *out, FILE *err)
{
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        bool help = argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
        usage(help ? out : err);
        return help ? 0 : 1;
    }
    const char *addr = argc == 2 ? argv[1] : NULL;
    const char *from = "argument";
    if (addr == NULL && (addr = env_get(envp, "PG_TLS_PROXY_ADMIN_ADDRESS")) != NULL)
        from = "PG_TLS_PROXY_ADMIN_ADDRESS";
    if (addr == NULL && (addr = env_get(envp, "PG_TLS_PROXY_HEALTH_ADDRESS")) != NULL)
        from = "PG_TLS_PROXY_HEALTH_ADDRESS";
    if (addr == NULL || addr[0] == '\0')
        return 0; /* no endpoint configured: nothing can be probed */
    struct sockaddr_storage ss;
    char why[256];
    if (healthcheck_target(addr, &ss, why, sizeof(why)) < 0) {
        fprintf(err, "pg-tls-proxy healthcheck: %s (from %s)\n", why, from);
        return 1;
    }
    if (healthcheck_probe(&ss, HEALTHCHECK_TIMEOUT_MS, why, sizeof(why)) < 0) {
        fprintf(err, "pg-tls-proxy healthcheck: unhealthy: %s\n", why);
        return 1;
    }
    return 0;
}
