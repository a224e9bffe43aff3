/*
 * rawclient.c - a raw PostgreSQL wire client (and fake upstream) for the
 * integration tests.
 *
 * libpq hides what the proxy actually put on the wire: the SQLSTATE of a
 * connection-time error, whether a reply came at all, whether the proxy
 * answered 'S' to an SSLRequest with pipelined bytes behind it. This tool
 * speaks the start-up protocol by hand, prints one line that says what it
 * saw, and exits. It links only OpenSSL. Every socket has a receive and send
 * timeout, so no subcommand can hang.
 *
 *   rawclient error HOST PORT [--plaintext] [--malformed]
 *                                             SQLSTATE/auth code after start-up
 *   rawclient inject HOST PORT                SSLRequest + pipelined bytes
 *   rawclient garbage HOST PORT N             N random bytes, then read
 *   rawclient half HOST PORT                  half a StartupMessage, close
 *   rawclient vanish HOST PORT                half a ClientHello, close
 *   rawclient idle HOST PORT SECONDS          connect, send nothing, await close
 *   rawclient cancel HOST PORT PID KEY        plaintext CancelRequest, await close
 *   rawclient fake-upstream PORT MODE         MODE: refuse-tls|bytes-after-s|silent
 *
 * It never verifies certificates: it is a probe, not a client to trust.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#define IO_TIMEOUT_SEC 30    /* per read/write; above the proxy's own upstream timeouts */
#define WAIT_CLOSE_SEC 5     /* how long we wait for the proxy to close */
#define UPSTREAM_IDLE_SEC 30 /* a fake-upstream child gives up after this */
#define MAX_MSG (1024 * 1024)
#define SSLREQUEST_CODE 80877103u
#define CANCELREQUEST_CODE 80877102u

enum rd_result { RD_OK = 0, RD_EOF, RD_RESET, RD_TIMEOUT, RD_ERR };

static const char *rd_name(enum rd_result r)
{
    switch (r) {
    case RD_OK:
        return "ok";
    case RD_EOF:
        return "eof";
    case RD_RESET:
        return "reset";
    case RD_TIMEOUT:
        return "timeout";
    default:
        return "error";
    }
}

/* A connection, plaintext (ssl == NULL) or TLS. */
struct stream {
    int fd;
    SSL *ssl;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("rawclient: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void set_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        die("setsockopt: %s", strerror(errno));
}

/* Connect to HOST:PORT; SO_SNDTIMEO also bounds connect(2) on Linux. */
static int tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        die("getaddrinfo %s:%s: %s", host, port, gai_strerror(rc));
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        set_timeouts(fd, IO_TIMEOUT_SEC);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        printf("connect-failed=%s\n", strerror(err));
        exit(3);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static enum rd_result errno_result(int e)
{
    if (e == EAGAIN || e == EWOULDBLOCK)
        return RD_TIMEOUT;
    if (e == ECONNRESET || e == EPIPE)
        return RD_RESET;
    return RD_ERR;
}

/* Send everything or report why not. */
static enum rd_result send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno_result(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return RD_OK;
}

/* Read some bytes (at most cap); *got is set on RD_OK. */
static enum rd_result stream_read(struct stream *s, void *buf, size_t cap, size_t *got)
{
    if (s->ssl == NULL) {
        for (;;) {
            ssize_t n = recv(s->fd, buf, cap, 0);
            if (n > 0) {
                *got = (size_t)n;
                return RD_OK;
            }
            if (n == 0)
                return RD_EOF;
            if (errno != EINTR)
                return errno_result(errno);
        }
    }
    size_t n = 0;
    if (SSL_read_ex(s->ssl, buf, cap, &n) == 1) {
        *got = n;
        return RD_OK;
    }
    int e = errno;
    switch (SSL_get_error(s->ssl, 0)) {
    case SSL_ERROR_ZERO_RETURN:
        return RD_EOF;
    case SSL_ERROR_SYSCALL:
        /* An EOF without close_notify is still an EOF for our purposes. */
        return e == 0 ? RD_EOF : errno_result(e);
    default:
        return RD_ERR;
    }
}

static enum rd_result stream_read_exact(struct stream *s, uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t got = 0;
        enum rd_result r = stream_read(s, buf + done, len - done, &got);
        if (r != RD_OK)
            return r;
        done += got;
    }
    return RD_OK;
}

/*
 * Build a protocol 3.0 StartupMessage for user=app database=app. With
 * malformed set, the last value lacks its NUL and the list its terminator:
 * the length word is consistent, the contents are not.
 */
static size_t build_startup(uint8_t *out, size_t cap, int malformed)
{
    static const char params[] = "user\0app\0database\0app\0application_name\0rawclient\0";
    /* sizeof includes the final NUL, the list terminator */
    size_t plen = malformed ? sizeof params - 3 : sizeof params;
    size_t len = 8 + plen;
    if (len > cap)
        die("startup buffer too small");
    put_u32(out, (uint32_t)len);
    put_u32(out + 4, 3u << 16);
    memcpy(out + 8, params, plen);
    return len;
}

static void build_sslrequest(uint8_t out[8])
{
    put_u32(out, 8);
    put_u32(out + 4, SSLREQUEST_CODE);
}

/* Print an ErrorResponse body as "sqlstate=... message=..." on one line. */
static void print_error_fields(const uint8_t *body, size_t len)
{
    const char *sqlstate = "", *message = "", *severity = "";
    size_t i = 0;
    while (i < len && body[i] != 0) {
        uint8_t field = body[i++];
        const char *val = (const char *)body + i;
        const void *nul = memchr(body + i, 0, len - i);
        if (nul == NULL)
            break;
        i = (size_t)((const uint8_t *)nul - body) + 1;
        if (field == 'C')
            sqlstate = val;
        else if (field == 'M')
            message = val;
        else if (field == 'V')
            severity = val;
    }
    printf("sqlstate=%s severity=%s message=", sqlstate, severity);
    for (const char *c = message; *c != '\0'; c++)
        putchar(*c == '\n' || *c == '\r' ? ' ' : *c);
    putchar('\n');
}

/*
 * Read messages until an ErrorResponse or an AuthenticationRequest and
 * print what it was. Returns the exit code.
 */
static int read_until_error_or_auth(struct stream *s)
{
    uint8_t *body = malloc(MAX_MSG);
    if (body == NULL)
        die("out of memory");
    int rc = 5;
    for (;;) {
        uint8_t hdr[5];
        enum rd_result r = stream_read_exact(s, hdr, sizeof hdr);
        if (r != RD_OK) {
            printf("%s\n", rd_name(r));
            rc = 6;
            break;
        }
        uint32_t len = get_u32(hdr + 1);
        if (len < 4 || len > MAX_MSG) {
            printf("bad-length type=%c len=%u\n", hdr[0], len);
            break;
        }
        r = stream_read_exact(s, body, len - 4);
        if (r != RD_OK) {
            printf("truncated-%s type=%c\n", rd_name(r), hdr[0]);
            rc = 6;
            break;
        }
        if (hdr[0] == 'E') {
            print_error_fields(body, len - 4);
            rc = 0;
            break;
        }
        if (hdr[0] == 'R' && len >= 8) {
            printf("auth=%u\n", get_u32(body));
            rc = 0;
            break;
        }
        if (hdr[0] == 'N')
            continue; /* NoticeResponse: keep reading */
        printf("unexpected=%c\n", hdr[0]);
        break;
    }
    free(body);
    return rc;
}

static SSL_CTX *client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        die("SSL_CTX_new failed");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

static int cmd_error(const char *host, const char *port, int plaintext, int malformed)
{
    struct stream s = {.fd = tcp_connect(host, port), .ssl = NULL};
    SSL_CTX *ctx = NULL;
    uint8_t buf[512];

    if (!plaintext) {
        build_sslrequest(buf);
        if (send_all(s.fd, buf, 8) != RD_OK)
            die("send SSLRequest failed");
        uint8_t answer;
        enum rd_result r = stream_read_exact(&s, &answer, 1);
        if (r != RD_OK) {
            printf("%s\n", rd_name(r));
            close(s.fd);
            return 6;
        }
        if (answer == 'E') {
            /* An ErrorResponse instead of 'S'/'N' (what pre-7.3 servers did;
             * a proxy must not do this, CVE-2024-10977): report it. */
            uint8_t lenb[4];
            uint32_t len = 0;
            printf("sslresponse=E ");
            if (stream_read_exact(&s, lenb, 4) == RD_OK && (len = get_u32(lenb)) >= 4 &&
                len - 4 <= sizeof buf && stream_read_exact(&s, buf, len - 4) == RD_OK)
                print_error_fields(buf, len - 4);
            else
                printf("malformed\n");
            close(s.fd);
            return 3;
        }
        if (answer != 'S') {
            printf("sslresponse=%c\n", answer);
            close(s.fd);
            return 3;
        }
        ctx = client_ctx();
        s.ssl = SSL_new(ctx);
        if (s.ssl == NULL || SSL_set_fd(s.ssl, s.fd) != 1)
            die("SSL_new/SSL_set_fd failed");
        SSL_set_tlsext_host_name(s.ssl, host);
        if (SSL_connect(s.ssl) != 1) {
            char err[256];
            ERR_error_string_n(ERR_get_error(), err, sizeof err);
            printf("tls-handshake-failed=%s\n", err);
            SSL_free(s.ssl);
            SSL_CTX_free(ctx);
            close(s.fd);
            return 4;
        }
    }
    size_t len = build_startup(buf, sizeof buf, malformed);
    int rc;
    if (s.ssl != NULL) {
        size_t written = 0;
        if (SSL_write_ex(s.ssl, buf, len, &written) != 1 || written != len)
            die("SSL_write StartupMessage failed");
    } else if (send_all(s.fd, buf, len) != RD_OK) {
        die("send StartupMessage failed");
    }
    rc = read_until_error_or_auth(&s);
    if (s.ssl != NULL) {
        SSL_shutdown(s.ssl);
        SSL_free(s.ssl);
    }
    SSL_CTX_free(ctx);
    close(s.fd);
    return rc;
}

/*
 * Read until the peer closes (or wait_sec passes) and print
 * "bytes=N [first=<hex>] end=<eof|reset|timeout>".
 */
static enum rd_result drain_and_report(int fd, int wait_sec, size_t *total_out)
{
    set_timeouts(fd, wait_sec);
    struct stream s = {.fd = fd, .ssl = NULL};
    uint8_t first[16];
    size_t nfirst = 0, total = 0;
    enum rd_result r;
    for (;;) {
        uint8_t buf[4096];
        size_t got = 0;
        r = stream_read(&s, buf, sizeof buf, &got);
        if (r != RD_OK)
            break;
        for (size_t i = 0; i < got && nfirst < sizeof first; i++)
            first[nfirst++] = buf[i];
        total += got;
    }
    printf("bytes=%zu", total);
    if (nfirst > 0) {
        printf(" first=");
        for (size_t i = 0; i < nfirst; i++)
            printf("%02x", first[i]);
    }
    printf(" end=%s\n", rd_name(r));
    *total_out = total;
    return r;
}

/*
 * CVE-2021-23214: bytes pipelined behind an SSLRequest were read before the
 * TLS handshake and later treated as if they had come over TLS. The proxy
 * must close without answering 'S'. Prints "eof"/"reset" when it closed
 * without sending a byte, otherwise what came back.
 */
static int cmd_inject(const char *host, const char *port)
{
    int fd = tcp_connect(host, port);
    uint8_t buf[512];
    build_sslrequest(buf);
    size_t len = 8 + build_startup(buf + 8, sizeof buf - 8, 0);
    if (send_all(fd, buf, len) != RD_OK)
        die("send failed");
    size_t total = 0;
    /* drain_and_report prints the details; the short verdict comes last. */
    enum rd_result r = drain_and_report(fd, WAIT_CLOSE_SEC, &total);
    close(fd);
    if (total == 0 && (r == RD_EOF || r == RD_RESET)) {
        printf("%s\n", rd_name(r));
        return 0;
    }
    printf("answered\n");
    return 1;
}

static int cmd_garbage(const char *host, const char *port, const char *count)
{
    char *end = NULL;
    long n = strtol(count, &end, 10);
    if (end == count || *end != '\0' || n < 1 || n > 16 * 1024 * 1024)
        die("garbage: N must be 1..16777216");
    uint8_t *buf = malloc((size_t)n);
    if (buf == NULL)
        die("out of memory");
    if (RAND_bytes(buf, (int)n) != 1)
        die("RAND_bytes failed");
    /* Never 0x16 (direct TLS) and never a small length word: this is
     * meant to be garbage, not by chance a plausible packet. */
    buf[0] |= 0x80;
    int fd = tcp_connect(host, port);
    enum rd_result w = send_all(fd, buf, (size_t)n);
    free(buf);
    if (w != RD_OK && w != RD_RESET)
        die("send failed: %s", rd_name(w));
    size_t total = 0;
    /* A reset while sending means the proxy already closed: fine. */
    enum rd_result r = drain_and_report(fd, WAIT_CLOSE_SEC, &total);
    close(fd);
    return r == RD_TIMEOUT ? 1 : 0;
}

static int cmd_half(const char *host, const char *port)
{
    uint8_t buf[512];
    size_t len = build_startup(buf, sizeof buf, 0);
    int fd = tcp_connect(host, port);
    if (send_all(fd, buf, len / 2) != RD_OK)
        die("send failed");
    close(fd);
    printf("sent=%zu of %zu\n", len / 2, len);
    return 0;
}

/*
 * Send a CancelRequest (protocol 3.0: 16 bytes) with the given pid and key,
 * in plaintext as libpq does, and wait for the close. A cancel carries no
 * credentials but the key: a wrong key must cancel nothing.
 */
static int cmd_cancel(const char *host, const char *port, const char *pidstr, const char *keystr)
{
    char *end1 = NULL, *end2 = NULL;
    unsigned long pid = strtoul(pidstr, &end1, 10), key = strtoul(keystr, &end2, 10);
    if (end1 == pidstr || *end1 != '\0' || end2 == keystr || *end2 != '\0' || pid > 0xffffffffUL ||
        key > 0xffffffffUL)
        die("cancel: PID and KEY must be unsigned 32-bit numbers");
    uint8_t msg[16];
    put_u32(msg, 16);
    put_u32(msg + 4, CANCELREQUEST_CODE);
    put_u32(msg + 8, (uint32_t)pid);
    put_u32(msg + 12, (uint32_t)key);
    int fd = tcp_connect(host, port);
    if (send_all(fd, msg, sizeof msg) != RD_OK)
        die("send failed");
    size_t total = 0;
    enum rd_result r = drain_and_report(fd, WAIT_CLOSE_SEC, &total);
    close(fd);
    return r == RD_TIMEOUT ? 1 : 0;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Connect and send nothing: a proxy must not keep such a connection (and
 * its slot) forever. Prints "... end=<eof|reset|timeout> after=<seconds>".
 */
static int cmd_idle(const char *host, const char *port, const char *secstr)
{
    char *end = NULL;
    long secs = strtol(secstr, &end, 10);
    if (end == secstr || *end != '\0' || secs < 1 || secs > 3600)
        die("idle: SECONDS must be 1..3600");
    int fd = tcp_connect(host, port);
    double t0 = now_sec();
    size_t total = 0;
    enum rd_result r = drain_and_report(fd, (int)secs, &total);
    close(fd);
    printf("after=%.1f\n", now_sec() - t0);
    return r == RD_TIMEOUT ? 1 : 0;
}

/* Produce a real ClientHello through memory BIOs, send half of it, vanish. */
static int cmd_vanish(const char *host, const char *port)
{
    int fd = tcp_connect(host, port);
    struct stream s = {.fd = fd, .ssl = NULL};
    uint8_t req[8], answer = 0;
    build_sslrequest(req);
    if (send_all(fd, req, sizeof req) != RD_OK)
        die("send failed");
    enum rd_result r = stream_read_exact(&s, &answer, 1);
    if (r != RD_OK || answer != 'S') {
        printf("sslresponse=%s\n", r == RD_OK ? "not-S" : rd_name(r));
        close(fd);
        return 1;
    }
    SSL_CTX *ctx = client_ctx();
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (ssl == NULL || rbio == NULL || wbio == NULL)
        die("SSL/BIO allocation failed");
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_tlsext_host_name(ssl, host);
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl); /* wants to read: the ClientHello is in wbio */
    char *hello = NULL;
    long hlen = BIO_get_mem_data(wbio, &hello);
    if (hlen <= 1)
        die("no ClientHello produced");
    size_t half = (size_t)hlen / 2;
    if (send_all(fd, hello, half) != RD_OK)
        die("send failed");
    close(fd);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    printf("sent=%zu of %ld\n", half, hlen);
    return 0;
}

/* One accepted upstream connection, in a forked child. Logs on stdout. */
static void fake_upstream_conn(int fd, const char *mode, unsigned id)
{
    struct stream s = {.fd = fd, .ssl = NULL};
    uint8_t req[8];
    set_timeouts(fd, UPSTREAM_IDLE_SEC);
    enum rd_result r = stream_read_exact(&s, req, sizeof req);
    if (r != RD_OK) {
        printf("conn=%u first-read=%s\n", id, rd_name(r));
        return;
    }
    if (get_u32(req) != 8 || get_u32(req + 4) != SSLREQUEST_CODE) {
        printf("conn=%u first-packet=not-sslrequest\n", id);
        return;
    }
    if (strcmp(mode, "refuse-tls") == 0) {
        send_all(fd, "N", 1);
    } else if (strcmp(mode, "bytes-after-s") == 0) {
        /* CVE-2021-23222: 'S' and, in the same segment, a plaintext
         * message a man in the middle could have injected. */
        static const uint8_t evil[] = {'S', 'R', 0, 0, 0, 8, 0, 0, 0, 0};
        send_all(fd, evil, sizeof evil);
    } /* silent: answer nothing */
    printf("conn=%u answered mode=%s\n", id, mode);
    fflush(stdout);
    /* Whatever arrives now was sent after our answer. After 'N' the proxy
     * must send nothing (no plaintext start-up packet); it should close. */
    size_t total = 0;
    for (;;) {
        uint8_t buf[4096];
        size_t got = 0;
        r = stream_read(&s, buf, sizeof buf, &got);
        if (r != RD_OK)
            break;
        total += got;
    }
    printf("conn=%u bytes-after-answer=%zu end=%s\n", id, total, rd_name(r));
}

static int cmd_fake_upstream(const char *port, const char *mode)
{
    if (strcmp(mode, "refuse-tls") != 0 && strcmp(mode, "bytes-after-s") != 0 &&
        strcmp(mode, "silent") != 0)
        die("fake-upstream: MODE must be refuse-tls, bytes-after-s or silent");
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (end == port || *end != '\0' || p < 1 || p > 65535)
        die("fake-upstream: bad port %s", port);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(lfd, 64) != 0)
        die("bind/listen 127.0.0.1:%ld: %s", p, strerror(errno));
    signal(SIGCHLD, SIG_IGN); /* children are reaped automatically */
    printf("listening port=%ld mode=%s\n", p, mode);
    fflush(stdout);
    for (unsigned id = 1;; id++) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            die("accept: %s", strerror(errno));
        }
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(lfd);
            prctl(PR_SET_PDEATHSIG, SIGTERM); /* die with the server */
            fake_upstream_conn(fd, mode, id);
            fflush(stdout);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
}

static void usage(void)
{
    fputs("usage: rawclient error HOST PORT [--plaintext] [--malformed]\n"
          "       rawclient inject HOST PORT\n"
          "       rawclient garbage HOST PORT N\n"
          "       rawclient half HOST PORT\n"
          "       rawclient vanish HOST PORT\n"
          "       rawclient idle HOST PORT SECONDS\n"
          "       rawclient cancel HOST PORT PID KEY\n"
          "       rawclient fake-upstream PORT refuse-tls|bytes-after-s|silent\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "error") == 0 && argc >= 4 && argc <= 6) {
        int plaintext = 0, malformed = 0;
        for (int i = 4; i < argc; i++) {
            if (strcmp(argv[i], "--plaintext") == 0)
                plaintext = 1;
            else if (strcmp(argv[i], "--malformed") == 0)
                malformed = 1;
            else
                usage();
        }
        return cmd_error(argv[2], argv[3], plaintext, malformed);
    }
    if (strcmp(cmd, "inject") == 0 && argc == 4)
        return cmd_inject(argv[2], argv[3]);
    if (strcmp(cmd, "garbage") == 0 && argc == 5)
        return cmd_garbage(argv[2], argv[3], argv[4]);
    if (strcmp(cmd, "half") == 0 && argc == 4)
        return cmd_half(argv[2], argv[3]);
    if (strcmp(cmd, "vanish") == 0 && argc == 4)
        return cmd_vanish(argv[2], argv[3]);
    if (strcmp(cmd, "idle") == 0 && argc == 5)
        return cmd_idle(argv[2], argv[3], argv[4]);
    if (strcmp(cmd, "cancel") == 0 && argc == 6)
        return cmd_cancel(argv[2], argv[3], argv[4], argv[5]);
    if (strcmp(cmd, "fake-upstream") == 0 && argc == 4)
        return cmd_fake_upstream(argv[2], argv[3]);
    usage();
}
