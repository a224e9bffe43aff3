/*
 * rawclient.c - a raw PostgreSQL wire client (and fake upstream) for the
 * integration tests.
 *
 * libpq hides what the proxy actually put on the wire: the SQLSTATE of a
 * connection-time error, whether a reply came at all, whether the proxy
 * answered 'S' to an SSLRequest with pipelined bytes behind it. This tool
 * speaks the start-up protocol by hand, prints one line per thing it saw,
 * and exits. It links only OpenSSL. Every socket has a receive and send
 * timeout, so no subcommand can hang.
 *
 *   rawclient error HOST PORT [CONNECT-OPTIONS] [--malformed] [--minor N] [--no-startup]
 *                    [--startup-after FILE]   SQLSTATE/auth code after start-up (the
 *                                             StartupMessage waits for FILE to exist)
 *   rawclient session HOST PORT [CONNECT-OPTIONS] [--plus] [--query SQL]... [--pipeline]
 *                                             SCRAM login, BackendKeyData, queries (up
 *                                             to 4: each sent the moment the last is
 *                                             answered, or all in one write)
 *   rawclient cancel HOST PORT PID KEYHEX [--tls|--direct] [--from ADDR] [--proxy-v2 ADDR]
 *                                             CancelRequest (any key length), await close
 *   rawclient cancel-storm HOST PORT PID KEYHEX N SECONDS [--from ADDR] [--random]
 *                                             up to N plaintext CancelRequests, one
 *                                             connection each (send, close, no wait),
 *                                             as fast as possible for at most SECONDS;
 *                                             --random: a random key each time
 *   rawclient peer-cancel HOST PORT PID KEYHEX SECRETFILE [--origin N] [--hops N]
 *                    [--age-ms N] [--twice] [--plaintext]
 *                                             a PeerCancelRequest as another
 *                                             pg-tls-proxy instance sends it (inside
 *                                             TLS; --twice: the same bytes again on a
 *                                             second connection, a replay), await close
 *   rawclient inject HOST PORT                SSLRequest + pipelined bytes
 *   rawclient garbage HOST PORT N             N random bytes, then read
 *   rawclient half HOST PORT                  half a StartupMessage, close
 *   rawclient vanish HOST PORT                half a ClientHello, close
 *   rawclient idle HOST PORT SECONDS          connect, send nothing, await close
 *   rawclient stall HOST PORT NBYTES SECONDS  first NBYTES (1..7) of an SSLRequest, await close
 *   rawclient flood HOST PORT TOTAL CONCURRENCY KIND[,KIND...] WAIT
 *                                             many misbehaving connections at once
 *                                             (epoll); per kind: how and when closed
 *   rawclient good HOST PORT N SECONDS        N well-behaved clients (SCRAM, a query
 *                                             every 100 ms, re-login every 20), timed
 *   rawclient hold HOST PORT N SECONDS [PER_SECOND]
 *                                             N silent connections that never read,
 *                                             PER_SECOND more each second; how many
 *                                             the server closed
 *   rawclient keyupdate HOST PORT STAGE SECONDS [CONNECT-OPTIONS]
 *                                             TLS 1.3; at STAGE (startup: before the
 *                                             StartupMessage, auth: after it, login:
 *                                             logged in) KeyUpdate(update_requested)
 *                                             records for SECONDS, never reading
 *   rawclient notices HOST PORT SQL SECONDS   log in, send SQL, read nothing for
 *                                             SECONDS; then drain: did the proxy close?
 *   rawclient fake-upstream PORT MODE [CERT KEY]
 *             MODE: refuse-tls|bytes-after-s|silent, or direct-tls (needs CERT KEY)
 *
 * CONNECT-OPTIONS: --plaintext (no TLS), --direct (PG17 direct TLS: ClientHello
 * first, ALPN "postgresql" unless --alpn/--no-alpn), --alpn P1[,P2...],
 * --no-alpn, --pipeline-hello (SSLRequest and ClientHello in one write),
 * --gssenc (GSSENCRequest first, then SSLRequest), --from ADDR (source
 * address), --proxy-v1 SRC / --proxy-v2 SRC (a PROXY protocol header that
 * claims the client is SRC, port 40001, sent before anything else and, as
 * a load balancer does, in the same segment as the first message; SRC
 * LOCAL with --proxy-v2: a LOCAL header, as health checks send),
 * --proxy-split (the header in two writes 50 ms apart, then the first
 * message on its own), --hello-size N (a ClientHello padded to N bytes by a
 * private extension, sent in one write, behind the SSLRequest unless
 * --direct), --tls13 (TLS 1.3 only), --database NAME (the StartupMessage's
 * database, "app" by default: the routing tests pick a route by it). With
 * any of --direct, --alpn, --no-alpn, --pipeline-hello or --gssenc, each
 * negotiation step is printed on its own line first.
 *
 * error --no-startup: negotiate (TLS) but send no StartupMessage; print
 * "tls-up" (or "connected" with --plaintext), then what the proxy says or
 * "eof"/"reset", then "after=<seconds since connect>".
 *
 * session reads the password for user "app" from $PGPASSFILE (never argv)
 * and prints the backend key it was given, for the cancel tests.
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
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <poll.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define IO_TIMEOUT_SEC 30    /* per read/write; above the proxy's own upstream timeouts */
#define WAIT_CLOSE_SEC 5     /* how long we wait for the proxy to close */
#define UPSTREAM_IDLE_SEC 30 /* a fake-upstream child gives up after this */
#define MAX_MSG (1024 * 1024)
#define PG_STARTUP_MAX_FAKE 10000
#define SSLREQUEST_CODE 80877103u
#define CANCELREQUEST_CODE 80877102u
#define GSSENCREQUEST_CODE 80877104u
#define TLS_HANDSHAKE_BYTE 0x16
#define CANCEL_KEY_MAX 256   /* protocol 3.2 */
#define PROXY_SRC_PORT 40001 /* the source port PROXY protocol headers claim */

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

/* Bind fd to the IP address FROM (port 0), e.g. 127.0.0.2: any 127/8 address
 * is local on Linux, so a test can be "another client" on loopback. */
static void bind_source(int fd, int family, const char *from)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        if (inet_pton(AF_INET, from, &sin->sin_addr) != 1)
            die("--from %s: not an IPv4 address (the target is IPv4)", from);
        sl = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, from, &sin6->sin6_addr) != 1)
            die("--from %s: not an IPv6 address (the target is IPv6)", from);
        sl = sizeof *sin6;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0)
        die("bind %s: %s", from, strerror(errno));
}

/* Connect to HOST:PORT (from source address FROM unless NULL); SO_SNDTIMEO
 * also bounds connect(2) on Linux. */
/* keyupdate, notices: a small receive buffer, as an attacker would set, so
 * that the kernel's buffers do not hide for minutes what the proxy holds. */
static int small_rcvbuf;

static int tcp_connect_from(const char *host, const char *port, const char *from)
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
        if (small_rcvbuf > 0 &&
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small_rcvbuf, sizeof small_rcvbuf) != 0)
            die("SO_RCVBUF: %s", strerror(errno));
        if (from != NULL)
            bind_source(fd, ai->ai_family, from);
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

static int tcp_connect(const char *host, const char *port)
{
    return tcp_connect_from(host, port, NULL);
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

/* The StartupMessage's database (--database NAME, for the routing tests:
 * the proxy picks a route by it when the client sends no SNI). One per
 * process, like the options it comes with; the default is "app". */
static const char *startup_database = "app";

/*
 * Build a protocol 3.0 StartupMessage for user=app and startup_database.
 * With malformed set, the last value lacks its NUL and the list its
 * terminator: the length word is consistent, the contents are not.
 */
static size_t build_startup_minor(uint8_t *out, size_t cap, int malformed, uint32_t minor)
{
    char params[512];
    int n =
        snprintf(params, sizeof params, "user%capp%cdatabase%c%s%capplication_name%crawclient%c", 0,
                 0, 0, startup_database, 0, 0, 0);
    if (n < 0 || (size_t)n >= sizeof params)
        die("--database: name too long");
    /* n counts the last value's NUL; snprintf's own NUL at params[n] is the
     * list terminator. Malformed: as before this option, three bytes short. */
    size_t plen = malformed ? (size_t)n - 2 : (size_t)n + 1;
    size_t len = 8 + plen;
    if (len > cap)
        die("startup buffer too small");
    put_u32(out, (uint32_t)len);
    put_u32(out + 4, (3u << 16) | minor);
    memcpy(out + 8, params, plen);
    return len;
}

static size_t build_startup(uint8_t *out, size_t cap, int malformed)
{
    return build_startup_minor(out, cap, malformed, 0);
}

static void build_sslrequest(uint8_t out[8])
{
    put_u32(out, 8);
    put_u32(out + 4, SSLREQUEST_CODE);
}

/* An ErrorResponse body as "sqlstate=... severity=... message=... [hint=...]"
 * on one line, into out. */
static void format_error_fields(const uint8_t *body, size_t len, char *out, size_t cap)
{
    const char *sqlstate = "", *message = "", *severity = "", *hint = NULL;
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
        else if (field == 'H')
            hint = val;
    }
    snprintf(out, cap, "sqlstate=%s severity=%s message=%s%s%s", sqlstate, severity, message,
             hint != NULL ? " hint=" : "", hint != NULL ? hint : "");
    for (char *c = out; *c != '\0'; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

/* Print an ErrorResponse body as "sqlstate=... message=... [hint=...]" on
 * one line. */
static void print_error_fields(const uint8_t *body, size_t len)
{
    char line[2048];
    format_error_fields(body, len, line, sizeof line);
    puts(line);
}

/* NegotiateProtocolVersion: the newest minor version the server speaks and
 * the protocol options it did not recognise. */
static void print_negotiate(const uint8_t *body, size_t len)
{
    if (len < 8) {
        printf("negotiate-protocol=malformed\n");
        return;
    }
    printf("negotiate-protocol=3.%u unrecognized-options=%u\n", get_u32(body) & 0xffff,
           get_u32(body + 4));
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
        if (hdr[0] == 'v') {
            print_negotiate(body, len - 4);
            continue; /* the server goes on with authentication */
        }
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

/* How to open a connection: the options every connecting subcommand takes. */
struct conn_opts {
    int plaintext;         /* no TLS at all */
    int direct;            /* PG17 sslnegotiation=direct: ClientHello first */
    const char *alpn;      /* comma-separated ALPN list; NULL: none */
    int pipeline_hello;    /* SSLRequest and ClientHello in one write */
    int gssenc;            /* GSSENCRequest first, expect 'N', then SSLRequest */
    int steps;             /* print each negotiation step */
    const char *from;      /* source address, or NULL */
    int proxy_version;     /* 1 or 2: send a PROXY protocol header first; 0: none */
    const char *proxy_src; /* the client address that header claims */
    int proxy_split;       /* header in two writes, apart from the first message */
    char sni[256];         /* --sni HEX: the SNI bytes to send instead of HOST */
    size_t hello_size;     /* pad the ClientHello to this many bytes, sent in one write */
    int tls13;             /* TLS 1.3 only */
};

/* Parse a CONNECT-OPTION at argv[*i]; returns 0 if it is not one. */
static int parse_conn_opt(struct conn_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--plaintext") == 0) {
        o->plaintext = 1;
    } else if (strcmp(a, "--direct") == 0) {
        o->direct = o->steps = 1;
        if (o->alpn == NULL)
            o->alpn = "postgresql"; /* as libpq 17 */
    } else if (strcmp(a, "--no-alpn") == 0) {
        o->alpn = "";
        o->steps = 1;
    } else if (strcmp(a, "--alpn") == 0 && *i + 1 < argc) {
        o->alpn = argv[++*i];
        o->steps = 1;
    } else if (strcmp(a, "--pipeline-hello") == 0) {
        o->pipeline_hello = o->steps = 1;
    } else if (strcmp(a, "--gssenc") == 0) {
        o->gssenc = o->steps = 1;
    } else if (strcmp(a, "--from") == 0 && *i + 1 < argc) {
        o->from = argv[++*i];
    } else if ((strcmp(a, "--proxy-v1") == 0 || strcmp(a, "--proxy-v2") == 0) && *i + 1 < argc) {
        o->proxy_version = a[9] - '0';
        o->proxy_src = argv[++*i];
    } else if (strcmp(a, "--proxy-split") == 0) {
        o->proxy_split = 1;
    } else if (strcmp(a, "--sni") == 0 && *i + 1 < argc) {
        /* Hex, so that any byte but NUL can be sent (hostile SNIs). */
        const char *hex = argv[++*i];
        size_t n = strlen(hex);
        if (n == 0 || n % 2 != 0 || n / 2 >= sizeof(o->sni))
            die("--sni %s: expected an even number of hex digits, at most 510", hex);
        for (size_t k = 0; k < n / 2; k++) {
            unsigned v;
            if (sscanf(hex + 2 * k, "%2x", &v) != 1 || v == 0)
                die("--sni %s: not hex, or a NUL byte", hex);
            o->sni[k] = (char)v;
        }
        o->sni[n / 2] = '\0';
    } else if (strcmp(a, "--hello-size") == 0 && *i + 1 < argc) {
        o->hello_size = strtoul(argv[++*i], NULL, 10);
        if (o->hello_size < 512 || o->hello_size > 60000)
            die("--hello-size: 512..60000");
        o->steps = 1;
    } else if (strcmp(a, "--tls13") == 0) {
        o->tls13 = 1;
    } else if (strcmp(a, "--database") == 0 && *i + 1 < argc) {
        startup_database = argv[++*i];
        if (startup_database[0] == '\0' || strlen(startup_database) > 63)
            die("--database: 1..63 bytes");
    } else {
        return 0;
    }
    return 1;
}

/*
 * Send a PROXY protocol header (HAProxy's spec, v1 text or v2 binary) as a
 * load balancer would: the claimed client SRC:40001, and as destination
 * the address and port this socket is connected to. SRC must be of the
 * same family as that destination; "LOCAL" (v2 only) sends the LOCAL
 * command without addresses. Unless split, MSG_MORE holds the header back
 * until the first message is sent: both leave in one segment, as from AWS
 * NLB, so the proxy must hand the bytes after the header to the start-up.
 * Split: the first 5 bytes, 50 ms, the rest, 50 ms.
 */
static void send_proxy_header(int fd, int version, const char *src, int split)
{
    struct sockaddr_storage peer;
    socklen_t pl = sizeof peer;
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0)
        die("getpeername: %s", strerror(errno));
    int v6 = peer.ss_family == AF_INET6;
    uint8_t srcaddr[16], dstaddr[16];
    size_t alen = v6 ? 16 : 4;
    uint16_t dport;
    if (v6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&peer;
        memcpy(dstaddr, &sin6->sin6_addr, 16);
        dport = ntohs(sin6->sin6_port);
    } else {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&peer;
        memcpy(dstaddr, &sin->sin_addr, 4);
        dport = ntohs(sin->sin_port);
    }
    int local = version == 2 && strcmp(src, "LOCAL") == 0;
    if (!local && inet_pton(v6 ? AF_INET6 : AF_INET, src, srcaddr) != 1)
        die("--proxy-v%d %s: not an %s address (the target is %s)", version, src,
            v6 ? "IPv6" : "IPv4", v6 ? "IPv6" : "IPv4");
    uint8_t hdr[128];
    size_t n;
    if (version == 1) {
        char dst[INET6_ADDRSTRLEN];
        inet_ntop(v6 ? AF_INET6 : AF_INET, dstaddr, dst, sizeof dst);
        int w = snprintf((char *)hdr, sizeof hdr, "PROXY %s %s %s %d %u\r\n", v6 ? "TCP6" : "TCP4",
                         src, dst, PROXY_SRC_PORT, dport);
        if (w < 0 || (size_t)w >= sizeof hdr)
            die("PROXY v1 header too long");
        n = (size_t)w;
    } else {
        static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                        0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
        memcpy(hdr, sig, sizeof sig);
        hdr[12] = local ? 0x20 : 0x21;             /* version 2, LOCAL or PROXY */
        hdr[13] = local ? 0x00 : v6 ? 0x21 : 0x11; /* UNSPEC, AF_INET6 / AF_INET over STREAM */
        size_t blen = local ? 0 : 2 * alen + 4;
        hdr[14] = (uint8_t)(blen >> 8);
        hdr[15] = (uint8_t)blen;
        memcpy(hdr + 16, srcaddr, alen);
        memcpy(hdr + 16 + alen, dstaddr, alen);
        uint8_t *p = hdr + 16 + 2 * alen;
        p[0] = (uint8_t)(PROXY_SRC_PORT >> 8);
        p[1] = (uint8_t)PROXY_SRC_PORT;
        p[2] = (uint8_t)(dport >> 8);
        p[3] = (uint8_t)dport;
        n = 16 + blen;
    }
    if (split) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000};
        if (send_all(fd, hdr, 5) != RD_OK)
            die("sending the PROXY header failed");
        nanosleep(&pause, NULL);
        if (send_all(fd, hdr + 5, n - 5) != RD_OK)
            die("sending the PROXY header failed");
        nanosleep(&pause, NULL);
        return;
    }
    if (send(fd, hdr, n, MSG_MORE | MSG_NOSIGNAL) != (ssize_t)n)
        die("sending the PROXY header failed: %s", strerror(errno));
}

/* Offer the comma-separated ALPN list (empty or NULL: no ALPN extension). */
static void set_alpn(SSL *ssl, const char *list)
{
    if (list == NULL || *list == '\0')
        return;
    uint8_t wire[256];
    size_t n = 0;
    const char *p = list;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if (len == 0 || len > 255 || n + 1 + len > sizeof wire)
            die("bad ALPN list '%s'", list);
        wire[n++] = (uint8_t)len;
        memcpy(wire + n, p, len);
        n += len;
        p += len;
        if (*p == ',')
            p++;
    }
    if (SSL_set_alpn_protos(ssl, wire, (unsigned)n) != 0)
        die("SSL_set_alpn_protos failed");
}

static void alpn_selected(const SSL *ssl, char *out, size_t cap)
{
    const unsigned char *p = NULL;
    unsigned n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    if (n == 0)
        snprintf(out, cap, "none");
    else
        snprintf(out, cap, "%.*s", (int)n, (const char *)p);
}

/* Read the one-byte answer to an SSLRequest or GSSENCRequest. Prints what
 * went wrong and returns the exit code, or 0 with *answer set. */
static int read_answer_byte(struct stream *s, uint8_t *answer)
{
    enum rd_result r = stream_read_exact(s, answer, 1);
    if (r != RD_OK) {
        printf("%s\n", rd_name(r));
        return 6;
    }
    if (*answer == 'E') {
        /* An ErrorResponse instead of 'S'/'N' (what pre-7.3 servers did;
         * a proxy must not do this, CVE-2024-10977): report it. */
        uint8_t lenb[4], buf[512];
        uint32_t len = 0;
        printf("sslresponse=E ");
        if (stream_read_exact(s, lenb, 4) == RD_OK && (len = get_u32(lenb)) >= 4 &&
            len - 4 <= sizeof buf && stream_read_exact(s, buf, len - 4) == RD_OK)
            print_error_fields(buf, len - 4);
        else
            printf("malformed\n");
        return 3;
    }
    return 0;
}

static int tls_failed(void)
{
    char err[256];
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(err, sizeof err, "%s", errno != 0 ? strerror(errno) : "connection closed");
    else
        ERR_error_string_n(e, err, sizeof err);
    printf("tls-handshake-failed=%s\n", err);
    return 4;
}

/* --hello-size: a private-use extension (RFC 8446's range is open; the
 * server ignores what it does not know) carrying hello_pad zero bytes, so
 * that the ClientHello is as large as post-quantum key shares make them. */
#define PAD_EXT_TYPE 0xff77
static size_t hello_pad;
static int pad_added;

static int pad_add_cb(SSL *ssl, unsigned ext_type, unsigned context, const unsigned char **out,
                      size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    static const unsigned char zeros[65535];
    (void)ssl, (void)ext_type, (void)context, (void)x, (void)chainidx, (void)al, (void)arg;
    *out = zeros;
    *outlen = hello_pad;
    return 1;
}

/* A new SSL for ctx whose ClientHello is produced through memory BIOs:
 * returns it, with the ClientHello's bytes in *hello (freed by the caller). */
static SSL *make_hello(SSL_CTX *ctx, const char *host, const char *alpn, uint8_t **hello,
                       size_t *hlen)
{
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (ssl == NULL || rbio == NULL || wbio == NULL)
        die("SSL_new/BIO_new failed");
    SSL_set_tlsext_host_name(ssl, host);
    set_alpn(ssl, alpn);
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl); /* wants to read: the ClientHello is in wbio */
    char *p = NULL;
    long n = BIO_get_mem_data(wbio, &p);
    if (n <= 0 || (*hello = malloc((size_t)n)) == NULL)
        die("no ClientHello produced");
    memcpy(*hello, p, (size_t)n);
    *hlen = (size_t)n;
    return ssl;
}

/* make_hello, padded until the ClientHello is o->hello_size bytes (a
 * hello over 16 KB takes more records, each with its own header). */
static SSL *make_sized_hello(SSL_CTX *ctx, const char *host, const struct conn_opts *o,
                             uint8_t **hello, size_t *hlen)
{
    SSL *ssl = make_hello(ctx, host, o->alpn, hello, hlen);
    for (int i = 0; i < 4 && o->hello_size > 0 && *hlen != o->hello_size; i++) {
        long want = (long)hello_pad + (long)o->hello_size - (long)*hlen - (pad_added ? 0 : 4);
        if (want < 0 || want > 65535)
            die("--hello-size %zu cannot be reached (base %zu bytes)", o->hello_size, *hlen);
        if (!pad_added && SSL_CTX_add_custom_ext(ctx, PAD_EXT_TYPE, SSL_EXT_CLIENT_HELLO,
                                                 pad_add_cb, NULL, NULL, NULL, NULL) != 1)
            die("SSL_CTX_add_custom_ext failed");
        pad_added = 1;
        hello_pad = (size_t)want;
        SSL_free(ssl);
        free(*hello);
        ssl = make_hello(ctx, host, o->alpn, hello, hlen);
    }
    return ssl;
}

/*
 * Connect and negotiate as the options say. On success returns 0 with s
 * (and *ctxp, if TLS) set up; otherwise it has printed what it saw and
 * returns the exit code.
 */
static int open_conn(const char *host, const char *port, const struct conn_opts *o,
                     struct stream *s, SSL_CTX **ctxp)
{
    uint8_t req[8], answer = 0;
    int rc;

    s->fd = tcp_connect_from(host, port, o->from);
    s->ssl = NULL;
    *ctxp = NULL;
    if (o->proxy_version != 0)
        send_proxy_header(s->fd, o->proxy_version, o->proxy_src, o->proxy_split);
    if (o->plaintext)
        return 0;
    if (o->gssenc) {
        put_u32(req, 8);
        put_u32(req + 4, GSSENCREQUEST_CODE);
        if (send_all(s->fd, req, 8) != RD_OK)
            die("send GSSENCRequest failed");
        if ((rc = read_answer_byte(s, &answer)) != 0)
            return rc;
        printf("gssresponse=%c\n", answer);
        if (answer != 'N')
            return 3;
    }
    SSL_CTX *ctx = client_ctx();
    *ctxp = ctx;
    if (o->tls13 && SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
        die("TLS 1.3 not available");
    if (o->pipeline_hello || o->hello_size > 0) {
        /* Produce the ClientHello through memory BIOs and send it in one
         * write (behind the SSLRequest, unless direct), then go on over
         * the socket: the proxy's first read holds all of it. */
        uint8_t *hello = NULL, *buf;
        size_t hlen = 0, off = o->direct ? 0 : 8;
        s->ssl = make_sized_hello(ctx, host, o, &hello, &hlen);
        if ((buf = malloc(off + hlen)) == NULL)
            die("out of memory");
        if (!o->direct)
            build_sslrequest(buf);
        memcpy(buf + off, hello, hlen);
        if (o->hello_size > 0)
            printf("hello_bytes=%zu first_write=%zu\n", hlen, off + hlen);
        if (send_all(s->fd, buf, off + hlen) != RD_OK)
            die("send SSLRequest+ClientHello failed");
        free(buf);
        free(hello);
        if (!o->direct) {
            struct stream plain = {.fd = s->fd, .ssl = NULL};
            if ((rc = read_answer_byte(&plain, &answer)) != 0)
                return rc;
            printf("sslresponse=%c\n", answer);
            if (answer != 'S')
                return 3;
        }
        if (SSL_set_fd(s->ssl, s->fd) != 1) /* frees the memory BIOs */
            die("SSL_set_fd failed");
    } else {
        if ((s->ssl = SSL_new(ctx)) == NULL)
            die("SSL_new failed");
        /* --sni HEX replaces the host name (the macro casts, unparenthesised) */
        char *sni = (char *)(o->sni[0] != '\0' ? o->sni : host);
        SSL_set_tlsext_host_name(s->ssl, sni);
        set_alpn(s->ssl, o->alpn);
        if (!o->direct) {
            struct stream plain = {.fd = s->fd, .ssl = NULL};
            build_sslrequest(req);
            if (send_all(s->fd, req, 8) != RD_OK)
                die("send SSLRequest failed");
            if ((rc = read_answer_byte(&plain, &answer)) != 0)
                return rc;
            if (o->steps)
                printf("sslresponse=%c\n", answer);
            if (answer != 'S') {
                if (!o->steps)
                    printf("sslresponse=%c\n", answer);
                return 3;
            }
        }
        if (SSL_set_fd(s->ssl, s->fd) != 1)
            die("SSL_set_fd failed");
    }
    errno = 0;
    if (SSL_connect(s->ssl) != 1)
        return tls_failed();
    if (o->steps) {
        char alpn[64];
        alpn_selected(s->ssl, alpn, sizeof alpn);
        printf("tls=%s alpn=%s\n", SSL_get_version(s->ssl), alpn);
    }
    return 0;
}

static void close_conn(struct stream *s, SSL_CTX *ctx)
{
    if (s->ssl != NULL) {
        SSL_shutdown(s->ssl);
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    SSL_CTX_free(ctx);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* Send everything, inside TLS if the stream has it. */
static enum rd_result stream_write(struct stream *s, const void *buf, size_t len)
{
    if (s->ssl == NULL)
        return send_all(s->fd, buf, len);
    size_t written = 0;
    if (SSL_write_ex(s->ssl, buf, len, &written) != 1 || written != len)
        return RD_ERR;
    return RD_OK;
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_error(const char *host, const char *port, const struct conn_opts *o, int malformed,
                     uint32_t minor, int no_startup, const char *startup_after)
{
    struct stream s;
    SSL_CTX *ctx = NULL;
    uint8_t buf[512];

    double t0 = now_sec();
    int rc = open_conn(host, port, o, &s, &ctx);
    if (rc != 0) {
        close_conn(&s, ctx);
        return rc;
    }
    if (no_startup) {
        /* What a client that never sends its StartupMessage is told. The
         * first line says the handshake is done (tests wait for it). */
        printf("%s\n", s.ssl != NULL ? "tls-up" : "connected");
        rc = read_until_error_or_auth(&s);
        printf("after=%.1f\n", now_sec() - t0);
        close_conn(&s, ctx);
        return rc;
    }
    /* Direct TLS without ALPN "postgresql": PostgreSQL 17 (and the proxy)
     * answer with an error straight after the handshake; read it rather
     * than race it with our StartupMessage. */
    if (startup_after != NULL) {
        /* Handshake done ("tls-up"); the StartupMessage waits until the
         * test creates the file (e.g. once it has restarted the database). */
        printf("%s\n", s.ssl != NULL ? "tls-up" : "connected");
        for (int i = 0; i < 1200 && access(startup_after, F_OK) != 0; i++)
            usleep(50 * 1000);
    }
    char alpn[64] = "none";
    if (s.ssl != NULL)
        alpn_selected(s.ssl, alpn, sizeof alpn);
    if (!(o->direct && strcmp(alpn, "postgresql") != 0)) {
        size_t len = build_startup_minor(buf, sizeof buf, malformed, minor);
        if (stream_write(&s, buf, len) != RD_OK)
            die("sending the StartupMessage failed");
    }
    rc = read_until_error_or_auth(&s);
    close_conn(&s, ctx);
    return rc;
}

/*
 * Read until the peer closes (or wait_sec passes) and print
 * "bytes=N [first=<hex>] end=<eof|reset|timeout>".
 */
static enum rd_result drain_stream(struct stream *s, int wait_sec, size_t *total_out)
{
    set_timeouts(s->fd, wait_sec);
    uint8_t first[16];
    size_t nfirst = 0, total = 0;
    enum rd_result r;
    for (;;) {
        uint8_t buf[4096];
        size_t got = 0;
        r = stream_read(s, buf, sizeof buf, &got);
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

static enum rd_result drain_and_report(int fd, int wait_sec, size_t *total_out)
{
    struct stream s = {.fd = fd, .ssl = NULL};
    return drain_stream(&s, wait_sec, total_out);
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

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Hex digits to bytes; returns the length, or 0 if malformed. */
static size_t from_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return 0;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

/*
 * Send a CancelRequest with the given pid and key (KEYHEX: 4 bytes in
 * protocol 3.0, up to 256 in 3.2): in plaintext as libpq's PQcancel does,
 * or inside TLS as libpq 17's PQcancelCreate does (after an SSLRequest, or
 * with direct TLS). Then wait for the close: the answer is always nothing.
 * A cancel carries no credentials but the key: a wrong key must cancel
 * nothing.
 */
static int cmd_cancel(const char *host, const char *port, const char *pidstr, const char *keyhex,
                      const struct conn_opts *o)
{
    char *end = NULL;
    unsigned long pid = strtoul(pidstr, &end, 10);
    uint8_t msg[12 + CANCEL_KEY_MAX];
    size_t keylen = from_hex(keyhex, msg + 12, CANCEL_KEY_MAX);
    if (end == pidstr || *end != '\0' || pid > 0xffffffffUL || keylen == 0)
        die("cancel: PID must be an unsigned 32-bit number and KEYHEX 1..256 bytes in hex");
    put_u32(msg, (uint32_t)(12 + keylen));
    put_u32(msg + 4, CANCELREQUEST_CODE);
    put_u32(msg + 8, (uint32_t)pid);
    struct stream s;
    SSL_CTX *ctx = NULL;
    int rc = open_conn(host, port, o, &s, &ctx);
    if (rc == 0) {
        if (stream_write(&s, msg, 12 + keylen) != RD_OK)
            die("sending the CancelRequest failed");
        size_t total = 0;
        rc = drain_stream(&s, WAIT_CLOSE_SEC, &total) == RD_TIMEOUT ? 1 : 0;
    }
    OPENSSL_cleanse(msg, sizeof msg);
    close_conn(&s, ctx);
    return rc;
}

/*
 * A PeerCancelRequest, written here from its description in the proxy's
 * include/peermsg.h (not from its code, so that the two agree by the
 * format, not by sharing a bug): length, code 1234.7070, version 1, hops,
 * origin, 0, the time in ms (minus age_ms), a random nonce, the
 * CancelRequest's length and bytes, HMAC-SHA256 with the secret in
 * SECRETFILE (a trailing newline dropped) over all that. A wrong secret
 * is a forgery.
 */
static int cmd_peer_cancel(const char *host, const char *port, const char *pidstr,
                           const char *keyhex, const char *secretfile, unsigned origin,
                           unsigned hops, long long age_ms, int twice, const struct conn_opts *o)
{
    uint8_t secret[4096], msg[38 + 12 + CANCEL_KEY_MAX + 32], key[CANCEL_KEY_MAX];
    char *end = NULL;
    unsigned long pid = strtoul(pidstr, &end, 10);
    size_t keylen = from_hex(keyhex, key, CANCEL_KEY_MAX);
    if (end == pidstr || *end != '\0' || pid > 0xffffffffUL || keylen < 4)
        die("peer-cancel: PID must be an unsigned 32-bit number and KEYHEX 4..256 bytes in hex");
    FILE *f = fopen(secretfile, "rb");
    if (f == NULL)
        die("peer-cancel: cannot open %s", secretfile);
    size_t slen = fread(secret, 1, sizeof secret, f);
    fclose(f);
    while (slen > 0 && (secret[slen - 1] == '\n' || secret[slen - 1] == '\r'))
        slen--;
    size_t clen = 12 + keylen, total = 38 + clen + 32;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u - (uint64_t)age_ms;
    put_u32(msg, (uint32_t)total);
    put_u32(msg + 4, (1234u << 16) | 7070u);
    msg[8] = 1;
    msg[9] = (uint8_t)hops;
    msg[10] = (uint8_t)origin;
    msg[11] = 0;
    put_u32(msg + 12, (uint32_t)(now >> 32));
    put_u32(msg + 16, (uint32_t)now);
    if (RAND_bytes(msg + 20, 16) != 1)
        die("RAND_bytes failed");
    msg[36] = (uint8_t)(clen >> 8);
    msg[37] = (uint8_t)clen;
    put_u32(msg + 38, (uint32_t)clen);
    put_u32(msg + 42, CANCELREQUEST_CODE);
    put_u32(msg + 46, (uint32_t)pid);
    memcpy(msg + 50, key, keylen);
    unsigned int mlen = 0;
    if (HMAC(EVP_sha256(), secret, (int)slen, msg, 38 + clen, msg + 38 + clen, &mlen) == NULL ||
        mlen != 32)
        die("HMAC failed");
    OPENSSL_cleanse(secret, sizeof secret);
    int rc = 0;
    for (int round = 0; round < (twice ? 2 : 1) && rc == 0; round++) {
        struct stream s;
        SSL_CTX *ctx = NULL;
        rc = open_conn(host, port, o, &s, &ctx);
        if (rc == 0) {
            if (stream_write(&s, msg, total) != RD_OK)
                die("sending the PeerCancelRequest failed");
            size_t got = 0; /* drain_stream prints bytes= and end= */
            rc = drain_stream(&s, WAIT_CLOSE_SEC, &got) == RD_TIMEOUT ? 1 : 0;
        }
        close_conn(&s, ctx);
    }
    OPENSSL_cleanse(msg, sizeof msg);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/*
 * A cancel flood, as an attacker sends it: a CancelRequest per connection,
 * closed at once without waiting for the answer (there is none). With a
 * valid key it tests amplification (how many upstream connections the
 * proxy opens for it), with --random keys it is key guessing. Prints
 * "sent=N failed=N elapsed=S per_s=R".
 */
static int cmd_cancel_storm(const char *host, const char *port, const char *pidstr,
                            const char *keyhex, const char *nstr, const char *secstr,
                            const char *from, int random_keys)
{
    char *end = NULL, *end2 = NULL, *end3 = NULL;
    unsigned long pid = strtoul(pidstr, &end, 10);
    long n = strtol(nstr, &end2, 10);
    double secs = strtod(secstr, &end3);
    uint8_t msg[12 + CANCEL_KEY_MAX];
    size_t keylen = from_hex(keyhex, msg + 12, CANCEL_KEY_MAX);
    if (*end != '\0' || pid > 0xffffffffUL || keylen == 0 || *end2 != '\0' || n < 1 ||
        *end3 != '\0' || secs <= 0 || secs > 600)
        die("cancel-storm: PID KEYHEX N SECONDS");
    put_u32(msg, (uint32_t)(12 + keylen));
    put_u32(msg + 4, CANCELREQUEST_CODE);
    put_u32(msg + 8, (uint32_t)pid);
    double t0 = now_sec();
    long sent = 0, failed = 0;
    while (sent + failed < n && now_sec() - t0 < secs) {
        if (random_keys && RAND_bytes(msg + 12, (int)keylen) != 1)
            die("RAND_bytes failed");
        int fd = tcp_connect_from(host, port, from);
        if (send_all(fd, msg, 12 + keylen) == RD_OK)
            sent++;
        else
            failed++;
        close(fd);
    }
    OPENSSL_cleanse(msg, sizeof msg);
    double el = now_sec() - t0;
    printf("sent=%ld failed=%ld elapsed=%.2f per_s=%.0f\n", sent, failed, el,
           el > 0 ? (double)sent / el : 0.0);
    return 0;
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

/*
 * Send the first NBYTES of an SSLRequest and stall: the start-up timeout
 * must close the connection. Prints "bytes=N end=... after=<seconds>".
 */
static int cmd_stall(const char *host, const char *port, const char *nstr, const char *secstr)
{
    char *end = NULL, *end2 = NULL;
    long nbytes = strtol(nstr, &end, 10), secs = strtol(secstr, &end2, 10);
    if (end == nstr || *end != '\0' || nbytes < 1 || nbytes > 7)
        die("stall: NBYTES must be 1..7");
    if (end2 == secstr || *end2 != '\0' || secs < 1 || secs > 3600)
        die("stall: SECONDS must be 1..3600");
    uint8_t req[8];
    build_sslrequest(req);
    int fd = tcp_connect(host, port);
    double t0 = now_sec();
    if (send_all(fd, req, (size_t)nbytes) != RD_OK)
        die("send failed");
    size_t total = 0;
    enum rd_result r = drain_and_report(fd, (int)secs, &total);
    close(fd);
    printf("after=%.1f\n", now_sec() - t0);
    return r == RD_TIMEOUT ? 1 : 0;
}

/* ---- session: a SCRAM-SHA-256 login by hand ---- */

/* A frontend message: type, length, body. */
static enum rd_result send_msg(struct stream *s, uint8_t type, const void *body, size_t len)
{
    uint8_t *m = malloc(5 + len);
    if (m == NULL)
        die("out of memory");
    m[0] = type;
    put_u32(m + 1, (uint32_t)(4 + len));
    if (len > 0)
        memcpy(m + 5, body, len);
    enum rd_result r = stream_write(s, m, 5 + len);
    OPENSSL_cleanse(m, 5 + len); /* may hold a SCRAM proof */
    free(m);
    return r;
}

/* One backend message into body (MAX_MSG bytes); prints what went wrong. */
static enum rd_result read_msg(struct stream *s, uint8_t *type, uint8_t *body, size_t *len)
{
    uint8_t hdr[5];
    enum rd_result r = stream_read_exact(s, hdr, sizeof hdr);
    if (r != RD_OK) {
        printf("%s\n", rd_name(r));
        return r;
    }
    uint32_t l = get_u32(hdr + 1);
    if (l < 4 || l - 4 > MAX_MSG) {
        printf("bad-length type=%c len=%u\n", hdr[0], l);
        return RD_ERR;
    }
    r = stream_read_exact(s, body, l - 4);
    if (r != RD_OK) {
        printf("truncated-%s type=%c\n", rd_name(r), hdr[0]);
        return r;
    }
    *type = hdr[0];
    *len = l - 4;
    return RD_OK;
}

/* The password of USER from $PGPASSFILE (host:port:db:user:password, '\'
 * escapes), as libpq would find it. Never from argv. */
static void read_password(const char *user, char *out, size_t cap)
{
    const char *path = getenv("PGPASSFILE");
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    if (f == NULL)
        die("session: set PGPASSFILE to a readable passfile");
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        char *field[5], *w = line;
        int nf = 0;
        field[nf++] = w;
        for (char *r = line; *r != '\0' && *r != '\n'; r++) {
            if (*r == '\\' && r[1] != '\0' && r[1] != '\n') {
                *w++ = *++r;
            } else if (*r == ':' && nf < 5) {
                *w++ = '\0';
                field[nf++] = w;
            } else {
                *w++ = *r;
            }
        }
        *w = '\0';
        if (nf == 5 && (strcmp(field[3], user) == 0 || strcmp(field[3], "*") == 0) &&
            strlen(field[4]) < cap) {
            snprintf(out, cap, "%s", field[4]);
            found = 1;
        }
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    if (!found)
        die("session: no password for %s in PGPASSFILE", user);
}

static size_t b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    if (4 * ((n + 2) / 3) + 1 > cap)
        die("base64 buffer too small");
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Returns the decoded length, or 0 on error. */
static size_t b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n == 0 || n % 4 != 0 || 3 * (n / 4) > cap)
        return 0;
    int k = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (k < 0)
        return 0;
    size_t pad = (in[n - 1] == '=') + (in[n - 2] == '=');
    return (size_t)k - pad;
}

static void hmac256(const uint8_t *key, size_t klen, const void *data, size_t dlen,
                    uint8_t out[SHA256_DIGEST_LENGTH])
{
    unsigned int n = 0;
    if (HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &n) == NULL ||
        n != SHA256_DIGEST_LENGTH)
        die("HMAC failed");
}

/* tls-server-end-point (RFC 5929): the hash of the certificate the client
 * sees, with the certificate's own signature hash (SHA-256 for MD5/SHA-1).
 * Through a TLS-terminating proxy that is the proxy's certificate. */
static size_t tls_server_end_point(SSL *ssl, uint8_t *out)
{
    X509 *cert = SSL_get1_peer_certificate(ssl);
    int mdnid = NID_undef;
    if (cert == NULL || X509_get_signature_info(cert, &mdnid, NULL, NULL, NULL) != 1)
        die("no peer certificate for channel binding");
    const EVP_MD *md = mdnid == NID_md5 || mdnid == NID_sha1 || mdnid == NID_undef
                           ? EVP_sha256()
                           : EVP_get_digestbynid(mdnid);
    unsigned int n = 0;
    if (md == NULL || X509_digest(cert, md, out, &n) != 1)
        die("X509_digest failed");
    X509_free(cert);
    return n;
}

struct scram {
    char password[256];
    const char *gs2; /* GS2 header: "n,," or "p=tls-server-end-point,," */
    uint8_t cbind[EVP_MAX_MD_SIZE];
    size_t cbind_len;
    char nonce[64];
    char first_bare[128];
    uint8_t salted[SHA256_DIGEST_LENGTH];
    char auth_msg[2048];
};

/* "x=value" attribute of a SCRAM message (comma-separated). */
static int scram_attr(const char *msg, char name, char *out, size_t cap)
{
    for (const char *p = msg; p != NULL && *p != '\0';
         p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (p[0] == name && p[1] == '=') {
            size_t n = strcspn(p + 2, ",");
            if (n >= cap)
                return -1;
            memcpy(out, p + 2, n);
            out[n] = '\0';
            return 0;
        }
    }
    return -1;
}

/* AuthenticationSASL: print the mechanisms, send SASLInitialResponse. */
static int scram_start(struct stream *s, struct scram *sc, const uint8_t *body, size_t len,
                       int plus)
{
    const char *want = plus ? "SCRAM-SHA-256-PLUS" : "SCRAM-SHA-256";
    int offered = 0;
    printf("mechanisms=");
    for (size_t i = 4; i < len && body[i] != '\0';) {
        const char *mech = (const char *)body + i;
        size_t n = strnlen(mech, len - i);
        if (n == len - i)
            break;
        printf("%s%s", i > 4 ? "," : "", mech);
        offered |= strcmp(mech, want) == 0;
        i += n + 1;
    }
    putchar('\n');
    if (!offered) {
        printf("mechanism-not-offered=%s\n", want);
        return 1;
    }
    uint8_t rnd[18];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        die("RAND_bytes failed");
    b64_encode(rnd, sizeof rnd, sc->nonce, sizeof sc->nonce);
    /* PostgreSQL takes the user from the StartupMessage: "n=" stays empty,
     * as libpq sends it. */
    snprintf(sc->first_bare, sizeof sc->first_bare, "n=,r=%s", sc->nonce);
    if (plus) {
        if (s->ssl == NULL)
            die("--plus needs TLS");
        sc->gs2 = "p=tls-server-end-point,,";
        sc->cbind_len = tls_server_end_point(s->ssl, sc->cbind);
    } else {
        sc->gs2 = "n,,"; /* as libpq with channel_binding=disable */
    }
    char first[256];
    int flen = snprintf(first, sizeof first, "%s%s", sc->gs2, sc->first_bare);
    uint8_t msg[512];
    size_t mlen = strlen(want) + 1;
    memcpy(msg, want, mlen);
    put_u32(msg + mlen, (uint32_t)flen);
    memcpy(msg + mlen + 4, first, (size_t)flen);
    if (send_msg(s, 'p', msg, mlen + 4 + (size_t)flen) != RD_OK)
        die("sending SASLInitialResponse failed");
    return 0;
}

/* AuthenticationSASLContinue: the server-first-message; send the proof. */
static int scram_continue(struct stream *s, struct scram *sc, const uint8_t *body, size_t len)
{
    char server_first[1024], rnonce[256], salt64[256], iters[32];
    if (len - 4 >= sizeof server_first)
        die("server-first-message too long");
    memcpy(server_first, body + 4, len - 4);
    server_first[len - 4] = '\0';
    uint8_t salt[192];
    size_t saltlen = 0;
    long iterations = 0;
    if (scram_attr(server_first, 'r', rnonce, sizeof rnonce) != 0 ||
        scram_attr(server_first, 's', salt64, sizeof salt64) != 0 ||
        scram_attr(server_first, 'i', iters, sizeof iters) != 0 ||
        strncmp(rnonce, sc->nonce, strlen(sc->nonce)) != 0 ||
        (saltlen = b64_decode(salt64, strlen(salt64), salt, sizeof salt)) == 0 ||
        (iterations = strtol(iters, NULL, 10)) < 1 || iterations > 10000000) {
        printf("scram-error=bad server-first-message\n");
        return 1;
    }
    if (PKCS5_PBKDF2_HMAC(sc->password, (int)strlen(sc->password), salt, (int)saltlen,
                          (int)iterations, EVP_sha256(), sizeof sc->salted, sc->salted) != 1)
        die("PBKDF2 failed");
    uint8_t client_key[SHA256_DIGEST_LENGTH], stored_key[SHA256_DIGEST_LENGTH];
    uint8_t sig[SHA256_DIGEST_LENGTH], proof[SHA256_DIGEST_LENGTH];
    hmac256(sc->salted, sizeof sc->salted, "Client Key", 10, client_key);
    SHA256(client_key, sizeof client_key, stored_key);

    uint8_t cbind_input[64 + EVP_MAX_MD_SIZE];
    size_t glen = strlen(sc->gs2);
    memcpy(cbind_input, sc->gs2, glen);
    memcpy(cbind_input + glen, sc->cbind, sc->cbind_len);
    char c64[256], proof64[64], final[1024];
    b64_encode(cbind_input, glen + sc->cbind_len, c64, sizeof c64);
    int wlen = snprintf(final, sizeof final, "c=%s,r=%s", c64, rnonce);
    int alen = snprintf(sc->auth_msg, sizeof sc->auth_msg, "%s,%s,%s", sc->first_bare, server_first,
                        final);
    if (wlen < 0 || (size_t)wlen >= sizeof final - 64 || alen < 0 ||
        (size_t)alen >= sizeof sc->auth_msg)
        die("SCRAM messages too long");
    hmac256(stored_key, sizeof stored_key, sc->auth_msg, (size_t)alen, sig);
    for (size_t i = 0; i < sizeof proof; i++)
        proof[i] = client_key[i] ^ sig[i];
    b64_encode(proof, sizeof proof, proof64, sizeof proof64);
    int flen = snprintf(final + wlen, sizeof final - (size_t)wlen, ",p=%s", proof64);
    enum rd_result r = send_msg(s, 'p', final, (size_t)wlen + (size_t)flen);
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(proof, sizeof proof);
    if (r != RD_OK)
        die("sending SASLResponse failed");
    return 0;
}

/* AuthenticationSASLFinal: check the server's signature (it knew the key). */
static int scram_final(struct scram *sc, const uint8_t *body, size_t len)
{
    char server_final[256], v64[128];
    uint8_t server_key[SHA256_DIGEST_LENGTH], want[SHA256_DIGEST_LENGTH], got[64];
    if (len - 4 >= sizeof server_final)
        die("server-final-message too long");
    memcpy(server_final, body + 4, len - 4);
    server_final[len - 4] = '\0';
    hmac256(sc->salted, sizeof sc->salted, "Server Key", 10, server_key);
    hmac256(server_key, sizeof server_key, sc->auth_msg, strlen(sc->auth_msg), want);
    if (scram_attr(server_final, 'v', v64, sizeof v64) != 0 ||
        b64_decode(v64, strlen(v64), got, sizeof got) != sizeof want ||
        CRYPTO_memcmp(got, want, sizeof want) != 0) {
        printf("scram-error=bad server signature\n");
        return 1;
    }
    return 0;
}

/* A simple query; prints rows as "row=a|b" and "query-end sqlstate=..". */
static int run_query(struct stream *s, const char *sql, uint8_t *body)
{
    char state[8] = "none";
    double t0 = now_sec();
    if (sql != NULL) { /* NULL: sent already (--pipeline); read its result */
        printf("query-sent\n");
        if (send_msg(s, 'Q', sql, strlen(sql) + 1) != RD_OK)
            die("sending the query failed");
    }
    for (;;) {
        uint8_t type = 0;
        size_t len = 0;
        if (read_msg(s, &type, body, &len) != RD_OK)
            return 6;
        if (type == 'Z')
            break;
        if (type == 'E') {
            printf("query-error ");
            print_error_fields(body, len);
            for (size_t i = 0; i + 7 < len && body[i] != 0;) {
                if (body[i] == 'C') {
                    snprintf(state, sizeof state, "%s", (const char *)body + i + 1);
                    break;
                }
                const void *nul = memchr(body + i + 1, 0, len - i - 1);
                if (nul == NULL)
                    break;
                i = (size_t)((const uint8_t *)nul - body) + 1;
            }
        } else if (type == 'D' && len >= 2) {
            unsigned cols = (unsigned)body[0] << 8 | body[1];
            size_t i = 2;
            printf("row=");
            for (unsigned c = 0; c < cols && i + 4 <= len; c++) {
                uint32_t n = get_u32(body + i);
                i += 4;
                if (c > 0)
                    putchar('|');
                if (n == 0xffffffffu)
                    continue; /* NULL */
                if (n > len - i)
                    break;
                printf("%.*s", (int)n, (const char *)body + i);
                i += n;
            }
            putchar('\n');
        } /* T, C, N, S, A: nothing to show */
    }
    printf("query-end sqlstate=%s after=%.2f\n", state, now_sec() - t0);
    return 0;
}

/*
 * Log in as app/app with SCRAM-SHA-256 (or -PLUS with --plus), print the
 * offered mechanisms and "login=ok pid=N key=HEX" (the BackendKeyData, for
 * the cancel tests), then run one query if asked. Any ErrorResponse during
 * start-up is printed as by "error", with its SQLSTATE and hint.
 */
/*
 * After the StartupMessage: answer SCRAM until ReadyForQuery. Prints what
 * cmd_session shows (unless quiet); an ErrorResponse's fields also go to
 * err. Returns 0 once logged in, else the exit code.
 */
static int session_login(struct stream *s, struct scram *sc, int plus, uint8_t *body, uint32_t *pid,
                         uint8_t *key, size_t *keylen, char *err, size_t errlen)
{
    int rc = 0;
    for (;;) {
        uint8_t type = 0;
        size_t len = 0;
        if (read_msg(s, &type, body, &len) != RD_OK) {
            snprintf(err, errlen, "connection lost during login");
            return 6;
        }
        if (type == 'E') {
            format_error_fields(body, len, err, errlen);
            print_error_fields(body, len);
            return 1;
        } else if (type == 'v') {
            print_negotiate(body, len);
        } else if (type == 'K' && len >= 8 && len - 4 <= CANCEL_KEY_MAX) {
            *pid = get_u32(body);
            *keylen = len - 4;
            memcpy(key, body + 4, *keylen);
        } else if (type == 'R' && len >= 4) {
            uint32_t code = get_u32(body);
            if (code == 10)
                rc = scram_start(s, sc, body, len, plus);
            else if (code == 11)
                rc = scram_continue(s, sc, body, len);
            else if (code == 12)
                rc = scram_final(sc, body, len);
            else if (code != 0) {
                printf("auth=%u unsupported\n", code);
                rc = 1;
            }
            if (rc != 0) {
                snprintf(err, errlen, "authentication failed (request %u)", code);
                return rc;
            }
        } else if (type == 'Z') {
            return 0;
        } /* S (ParameterStatus), N (notice): nothing to show */
    }
}

/*
 * Log in as app/app with SCRAM-SHA-256 (or -PLUS with --plus), print the
 * offered mechanisms and "login=ok pid=N key=HEX" (the BackendKeyData, for
 * the cancel tests), then run one query if asked. Any ErrorResponse during
 * start-up is printed as by "error", with its SQLSTATE and hint.
 */
#define SESSION_QUERIES_MAX 4

/* Queries sent in one write (--pipeline), then their results read. */
static int run_pipeline(struct stream *s, const char *const *sql, int n, uint8_t *body)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(sql[i]) + 1;
        if (len + 5 + k > MAX_MSG)
            die("--pipeline: queries too long");
        body[len] = 'Q';
        put_u32(body + len + 1, (uint32_t)(4 + k));
        memcpy(body + len + 5, sql[i], k);
        len += 5 + k;
    }
    printf("query-sent\n");
    if (stream_write(s, body, len) != RD_OK)
        die("sending the queries failed");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = run_query(s, NULL, body);
    return rc;
}

static int cmd_session(const char *host, const char *port, const struct conn_opts *o, int plus,
                       const char *const *sql, int nsql, int pipeline)
{
    struct scram sc;
    memset(&sc, 0, sizeof sc);
    read_password("app", sc.password, sizeof sc.password);
    struct stream s;
    SSL_CTX *ctx = NULL;
    int rc = open_conn(host, port, o, &s, &ctx);
    uint8_t *body = malloc(MAX_MSG);
    if (body == NULL)
        die("out of memory");
    if (rc == 0) {
        size_t len = build_startup(body, MAX_MSG, 0);
        if (stream_write(&s, body, len) != RD_OK)
            die("sending the StartupMessage failed");
    }
    uint32_t pid = 0;
    uint8_t key[CANCEL_KEY_MAX];
    size_t keylen = 0;
    char err[512];
    if (rc == 0) {
        rc = session_login(&s, &sc, plus, body, &pid, key, &keylen, err, sizeof err);
        if (rc == 0) {
            printf("login=ok pid=%u key=", pid);
            for (size_t i = 0; i < keylen; i++)
                printf("%02x", key[i]);
            putchar('\n');
        }
    }
    OPENSSL_cleanse(&sc, sizeof sc);
    if (rc == 0 && pipeline)
        rc = run_pipeline(&s, sql, nsql, body);
    for (int i = 0; rc == 0 && !pipeline && i < nsql; i++)
        rc = run_query(&s, sql[i], body); /* each sent as soon as the last is answered */
    if (rc == 0)
        send_msg(&s, 'X', NULL, 0);
    free(body);
    close_conn(&s, ctx);
    return rc;
}

/* ---- hostile readers: KeyUpdate storm, tiny writes never read ---- */

/* After the attack: read the raw socket (never through TLS) until the
 * proxy closes it or `wait` seconds pass; prints what the client saw. */
static void drain_report(int fd, int wait)
{
    size_t total = 0;
    double t0 = now_sec();
    enum rd_result r = drain_and_report(fd, wait, &total);
    printf("drained=%zu end=%s after=%.1f\n", total, rd_name(r), now_sec() - t0);
}

/* Log in (or not, per stage) on a TLS 1.3 connection. 0 or exit code. */
static int hostile_open(const char *host, const char *port, const char *stage, struct conn_opts *o,
                        struct stream *s, SSL_CTX **ctx, uint8_t *body)
{
    o->tls13 = 1;
    small_rcvbuf = 4096;
    int rc = open_conn(host, port, o, s, ctx);
    if (rc != 0 || strcmp(stage, "startup") == 0)
        return rc;
    size_t len = build_startup(body, MAX_MSG, 0);
    if (stream_write(s, body, len) != RD_OK)
        die("sending the StartupMessage failed");
    if (strcmp(stage, "auth") == 0)
        return 0;
    struct scram sc;
    memset(&sc, 0, sizeof sc);
    read_password("app", sc.password, sizeof sc.password);
    uint32_t pid = 0;
    uint8_t key[CANCEL_KEY_MAX];
    size_t keylen = 0;
    char err[512];
    rc = session_login(s, &sc, 0, body, &pid, key, &keylen, err, sizeof err);
    OPENSSL_cleanse(&sc, sizeof sc);
    if (rc == 0)
        printf("login=ok pid=%u\n", pid);
    return rc;
}

/*
 * keyupdate: TLS 1.3, then (stage startup: no StartupMessage; auth: after
 * it, not logged in; login: logged in) KeyUpdate(update_requested) records
 * as fast as they go, for SECONDS, never reading: each makes the proxy owe
 * a KeyUpdate of its own. The records are made KU_BATCH at a time into a
 * memory BIO and sent in one write (a syscall per 27-byte record would
 * make this client, not the proxy, the bottleneck); a blocked send is
 * retried (1 s send timeout) until the deadline. Prints the count and why
 * it stopped, then drains.
 */
#define KU_BATCH 256

static int cmd_keyupdate(const char *host, const char *port, const char *stage, const char *secs,
                         struct conn_opts *o)
{
    struct stream s;
    SSL_CTX *ctx = NULL;
    uint8_t *body = malloc(MAX_MSG);
    if (body == NULL)
        die("out of memory");
    int rc = hostile_open(host, port, stage, o, &s, &ctx, body);
    free(body);
    if (rc != 0)
        return rc;
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem == NULL)
        die("BIO_new failed");
    SSL_set0_wbio(s.ssl, mem); /* the socket BIO stays for reading, never used */
    printf("storm-start\n");
    set_timeouts(s.fd, 1);
    double t0 = now_sec(), deadline = t0 + atof(secs);
    unsigned long n = 0;
    const char *stopped = "deadline";
    while (now_sec() < deadline && strcmp(stopped, "deadline") == 0) {
        for (int k = 0; k < KU_BATCH; k++) {
            if (SSL_key_update(s.ssl, SSL_KEY_UPDATE_REQUESTED) != 1 ||
                SSL_do_handshake(s.ssl) != 1)
                die("KeyUpdate failed");
        }
        char *p = NULL;
        long len = BIO_get_mem_data(mem, &p);
        size_t off = 0;
        while (off < (size_t)len) {
            ssize_t w = send(s.fd, p + off, (size_t)len - off, MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                if (now_sec() >= deadline)
                    break; /* the proxy is not reading: retried until then */
            } else {
                stopped = errno == ECONNRESET || errno == EPIPE ? "reset" : "error";
                break;
            }
        }
        if (off == (size_t)len)
            n += KU_BATCH;
        (void)BIO_reset(mem);
    }
    printf("keyupdates=%lu stopped=%s after=%.1f\n", n, stopped, now_sec() - t0);
    drain_report(s.fd, 10);
    SSL_free(s.ssl);
    SSL_CTX_free(ctx);
    close(s.fd);
    return 0;
}

/*
 * notices: log in, send SQL (one that makes the server send many small
 * messages), then read nothing for SECONDS; then drain and report whether
 * the proxy had closed the session.
 */
static int cmd_notices(const char *host, const char *port, const char *sql, const char *secs,
                       struct conn_opts *o)
{
    struct stream s;
    SSL_CTX *ctx = NULL;
    uint8_t *body = malloc(MAX_MSG);
    if (body == NULL)
        die("out of memory");
    int rc = hostile_open(host, port, "login", o, &s, &ctx, body);
    if (rc == 0 && send_msg(&s, 'Q', sql, strlen(sql) + 1) != RD_OK)
        die("sending the query failed");
    free(body);
    if (rc != 0)
        return rc;
    printf("query-sent\n");
    struct timespec ts = {.tv_sec = (time_t)atoi(secs), .tv_nsec = 0};
    nanosleep(&ts, NULL);
    drain_report(s.fd, 10);
    SSL_free(s.ssl);
    SSL_CTX_free(ctx);
    close(s.fd);
    return 0;
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

/* ALPN for the direct-TLS fake upstream: "postgresql" or nothing, and the
 * connection logs which (PostgreSQL 17 refuses direct TLS without it). */
static int fake_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                        const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char pg[] = "\x0apostgresql";
    unsigned char *sel = NULL;
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, pg, sizeof pg - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *fake_server_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        die("fake-upstream: cannot load %s / %s", cert, key);
    SSL_CTX_set_alpn_select_cb(ctx, fake_alpn_cb, NULL);
    return ctx;
}

/*
 * A PostgreSQL 17 stand-in for --client-direct-tls: the first byte must be
 * a TLS handshake record (0x16), not an SSLRequest; ALPN must be
 * "postgresql"; then it reads the StartupMessage and answers
 * AuthenticationOk, BackendKeyData and ReadyForQuery. Logs each step.
 */
static void fake_direct_tls_conn(int fd, SSL_CTX *ctx, unsigned id)
{
    uint8_t first = 0, req[8];
    ssize_t n = recv(fd, &first, 1, MSG_PEEK);
    if (n != 1) {
        printf("conn=%u first-read=%s\n", id, n == 0 ? "eof" : strerror(errno));
        return;
    }
    if (first != TLS_HANDSHAKE_BYTE) {
        struct stream plain = {.fd = fd, .ssl = NULL};
        int sslreq = stream_read_exact(&plain, req, sizeof req) == RD_OK && get_u32(req) == 8 &&
                     get_u32(req + 4) == SSLREQUEST_CODE;
        printf("conn=%u %s (expected a TLS ClientHello)\n", id,
               sslreq ? "got SSLRequest" : "got a non-TLS first byte");
        return;
    }
    printf("conn=%u first-byte=0x16 no-sslrequest\n", id);
    struct stream s = {.fd = fd, .ssl = SSL_new(ctx)};
    if (s.ssl == NULL || SSL_set_fd(s.ssl, fd) != 1)
        die("SSL_new/SSL_set_fd failed");
    if (SSL_accept(s.ssl) != 1) {
        char err[256];
        ERR_error_string_n(ERR_get_error(), err, sizeof err);
        printf("conn=%u tls-handshake-failed=%s\n", id, err);
        SSL_free(s.ssl);
        return;
    }
    char alpn[64];
    alpn_selected(s.ssl, alpn, sizeof alpn);
    const char *sni = SSL_get_servername(s.ssl, TLSEXT_NAMETYPE_host_name);
    printf("conn=%u tls=%s alpn=%s sni=%s\n", id, SSL_get_version(s.ssl), alpn,
           sni != NULL ? sni : "none");
    uint8_t lenb[4], body[PG_STARTUP_MAX_FAKE];
    uint32_t len = 0;
    if (strcmp(alpn, "postgresql") != 0) {
        printf("conn=%u refused: direct TLS without ALPN postgresql\n", id);
    } else if (stream_read_exact(&s, lenb, 4) != RD_OK || (len = get_u32(lenb)) < 8 ||
               len > sizeof body || stream_read_exact(&s, body, len - 4) != RD_OK) {
        printf("conn=%u startup=unreadable\n", id);
    } else {
        uint32_t version = get_u32(body);
        const char *user = "?";
        body[len - 4] = '\0'; /* len <= sizeof body: the parameters end in a NUL */
        for (const char *k = (const char *)body + 4; *k != '\0';) {
            const char *v = k + strlen(k) + 1;
            if (v >= (const char *)body + len - 4)
                break;
            if (strcmp(k, "user") == 0)
                user = v;
            k = v + strlen(v) + 1;
        }
        printf("conn=%u startup protocol=%u.%u user=%s\n", id, version >> 16, version & 0xffff,
               user);
        /* AuthenticationOk, BackendKeyData (pid 4242, key 01020304), ReadyForQuery */
        /* clang-format off */
        static const uint8_t answer[] = {
            'R', 0, 0, 0, 8, 0, 0, 0, 0,
            'K', 0, 0, 0, 12, 0, 0, 0x10, 0x92, 1, 2, 3, 4,
            'Z', 0, 0, 0, 5, 'I'};
        /* clang-format on */
        size_t w = 0;
        if (SSL_write_ex(s.ssl, answer, sizeof answer, &w) == 1)
            printf("conn=%u answered AuthenticationOk+ReadyForQuery\n", id);
        fflush(stdout);
        size_t total = 0, got = 0;
        uint8_t buf[4096];
        enum rd_result r;
        while ((r = stream_read(&s, buf, sizeof buf, &got)) == RD_OK)
            total += got;
        printf("conn=%u bytes-after-answer=%zu end=%s\n", id, total, rd_name(r));
    }
    SSL_shutdown(s.ssl);
    SSL_free(s.ssl);
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

static int cmd_fake_upstream(const char *port, const char *mode, const char *cert, const char *key)
{
    SSL_CTX *ctx = NULL;
    if (strcmp(mode, "direct-tls") == 0) {
        if (cert == NULL || key == NULL)
            die("fake-upstream: direct-tls needs CERT and KEY");
        ctx = fake_server_ctx(cert, key);
    } else if ((strcmp(mode, "refuse-tls") != 0 && strcmp(mode, "bytes-after-s") != 0 &&
                strcmp(mode, "silent") != 0) ||
               cert != NULL) {
        die("fake-upstream: MODE must be refuse-tls, bytes-after-s, silent or direct-tls CERT KEY");
    }
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
            if (ctx != NULL) {
                set_timeouts(fd, UPSTREAM_IDLE_SEC);
                fake_direct_tls_conn(fd, ctx, id);
            } else {
                fake_upstream_conn(fd, mode, id);
            }
            fflush(stdout);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
}

/* ---- flood: many misbehaving connections at once (slowloris, garbage) ---- */

/*
 * Each connection behaves one way (its kind). The "slow" kinds stop part
 * way through the start-up and wait for the proxy to close them; the others
 * send something broken and wait for the close (or vanish with a reset).
 */
enum fkind {
    FK_NONE,         /* connect, send nothing */
    FK_HALF_SSLREQ,  /* 4 of the 8 bytes of an SSLRequest */
    FK_HALF_STARTUP, /* half a plaintext StartupMessage */
    FK_HALF_HELLO,   /* SSLRequest, 'S', half a ClientHello */
    FK_TLS_IDLE,     /* a whole TLS handshake, then nothing */
    FK_TLS_HALF,     /* TLS, then half a StartupMessage inside it */
    FK_RANDOM,       /* 8..2047 random bytes (never a plausible first packet) */
    FK_OVERSIZED,    /* a start-up length word of 2^31-1, 10001 or 7 */
    FK_TRUNC,        /* SSLRequest, 'S', a TLS record header promising 16 KB, 100 bytes, FIN */
    FK_ALERT,        /* SSLRequest, 'S', a TLS fatal alert record */
    FK_HELLO_RST,    /* SSLRequest, 'S', a whole ClientHello, then RST */
    FK_DIRECT_JUNK,  /* direct TLS: a handshake record of random bytes */
    FK_TLS_JUNK,     /* SSLRequest, 'S', ClientHello, the server's answer, random records */
    FK_COUNT
};

static const char *const fkind_names[FK_COUNT] = {
    "none",      "half-sslrequest", "half-startup", "half-hello",       "tls-idle",
    "tls-half",  "random",          "oversized",    "truncated-record", "alert",
    "hello-rst", "direct-junk",     "tls-junk"};

enum fstep { FS_CONNECTING, FS_WANT_S, FS_TLS, FS_WAIT_CLOSE, FS_SERVER_HELLO, FS_DONE };

struct fconn {
    int fd;
    enum fkind kind;
    enum fstep step;
    SSL *ssl;
    double t0;
    uint8_t got[512]; /* the first bytes received (plaintext once TLS is up) */
    size_t ngot;
    size_t total;
};

struct fstats {
    unsigned n, eof, reset, timeout, failed, errors, answered;
    double min_s, max_s, sum_s;
    char first_error[600];
};

static uint8_t flood_hello[4096]; /* a real ClientHello, replayed */
static size_t flood_hello_len;

static void flood_make_hello(SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (ssl == NULL || rbio == NULL || wbio == NULL)
        die("SSL/BIO allocation failed");
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl);
    char *hello = NULL;
    long n = BIO_get_mem_data(wbio, &hello);
    if (n <= 1 || (size_t)n > sizeof flood_hello)
        die("no ClientHello produced");
    memcpy(flood_hello, hello, (size_t)n);
    flood_hello_len = (size_t)n;
    SSL_free(ssl);
}

static void fsend(struct fconn *fc, const void *buf, size_t len)
{
    /* Small writes into an empty socket buffer: they go whole or the peer
     * is gone (then the read side reports it). */
    (void)send(fc->fd, buf, len, MSG_NOSIGNAL);
}

static void flood_random(struct fconn *fc, size_t len)
{
    uint8_t buf[2048];
    if (len > sizeof buf)
        len = sizeof buf;
    if (RAND_bytes(buf, (int)len) != 1)
        die("RAND_bytes failed");
    buf[0] |= 0x80; /* a length word that is never plausible */
    fsend(fc, buf, len);
}

static void flood_close(int ep, struct fconn *fc, struct fstats *st, enum rd_result r, double now)
{
    (void)ep;
    if (fc->step == FS_DONE)
        return;
    struct fstats *k = &st[fc->kind];
    if (r == RD_EOF)
        k->eof++;
    else if (r == RD_RESET)
        k->reset++;
    else if (r == RD_TIMEOUT)
        k->timeout++;
    else
        k->failed++;
    double d = now - fc->t0;
    if (r == RD_EOF || r == RD_RESET) {
        if (k->min_s == 0 || d < k->min_s)
            k->min_s = d;
        if (d > k->max_s)
            k->max_s = d;
        k->sum_s += d;
    }
    /* answered: the proxy sent something besides 'S' (a TLS record, or an
     * ErrorResponse: plaintext, or inside TLS once it is up). */
    size_t off =
        fc->ngot > 0 && fc->got[0] == 'S' && fc->ssl == NULL && fc->kind >= FK_HALF_HELLO ? 1 : 0;
    if (fc->total > off)
        k->answered++;
    if (fc->ngot >= off + 5 && fc->got[off] == 'E') {
        uint32_t len = get_u32(fc->got + off + 1);
        k->errors++;
        if (k->first_error[0] == '\0' && len >= 4 && len - 4 <= fc->ngot - off - 5)
            format_error_fields(fc->got + off + 5, len - 4, k->first_error, sizeof k->first_error);
    }
    if (fc->ssl != NULL)
        SSL_free(fc->ssl);
    fc->ssl = NULL;
    close(fc->fd);
    fc->fd = -1;
    fc->step = FS_DONE;
}

static void flood_keep(struct fconn *fc, const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n && fc->ngot < sizeof fc->got; i++)
        fc->got[fc->ngot++] = buf[i];
    fc->total += n;
}

/* Drive the TLS handshake (and then reads) of a tls-* connection. */
static enum rd_result flood_tls(struct fconn *fc)
{
    if (fc->step == FS_TLS) {
        ERR_clear_error();
        int r = SSL_connect(fc->ssl);
        if (r != 1) {
            int e = SSL_get_error(fc->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return RD_OK;
            return RD_ERR;
        }
        fc->step = FS_WAIT_CLOSE;
        fc->ngot = fc->total = 0; /* count what comes inside TLS */
        if (fc->kind == FK_TLS_HALF) {
            uint8_t buf[512];
            size_t len = build_startup(buf, sizeof buf, 0), w = 0;
            (void)SSL_write_ex(fc->ssl, buf, len / 2, &w);
        }
    }
    for (;;) {
        uint8_t buf[4096];
        size_t n = 0;
        ERR_clear_error();
        if (SSL_read_ex(fc->ssl, buf, sizeof buf, &n) == 1) {
            flood_keep(fc, buf, n);
            continue;
        }
        int e = SSL_get_error(fc->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return RD_OK;
        if (e == SSL_ERROR_ZERO_RETURN)
            return RD_EOF;
        if (e == SSL_ERROR_SYSCALL)
            return errno == 0 ? RD_EOF : errno_result(errno);
        return RD_EOF; /* e.g. a truncated close: the proxy closed */
    }
}

/* The socket is connected: send what this kind sends first. */
static void flood_start(struct fconn *fc)
{
    uint8_t buf[512];
    size_t len;
    switch (fc->kind) {
    case FK_NONE:
        break;
    case FK_HALF_SSLREQ:
        build_sslrequest(buf);
        fsend(fc, buf, 4);
        break;
    case FK_HALF_STARTUP:
        len = build_startup(buf, sizeof buf, 0);
        fsend(fc, buf, len / 2);
        break;
    case FK_RANDOM: {
        uint8_t l[2];
        if (RAND_bytes(l, 2) != 1)
            die("RAND_bytes failed");
        /* At least 8 bytes: fewer would be an incomplete packet, for which
         * the proxy rightly waits (the slowloris kinds cover that). */
        flood_random(fc, 8 + ((size_t)l[0] << 8 | l[1]) % 2040);
        break;
    }
    case FK_OVERSIZED: {
        static const uint32_t lens[] = {0x7fffffffu, 10001, 7};
        static unsigned next;
        put_u32(buf, lens[next++ % 3]);
        put_u32(buf + 4, 3u << 16);
        memset(buf + 8, 'x', 100);
        fsend(fc, buf, 108);
        break;
    }
    case FK_DIRECT_JUNK: {
        /* A whole record holding a whole ClientHello of random contents,
         * so the proxy need not wait for more. The handshake header is
         * fixed: a random one says "ClientHello of up to 128 KB" about once
         * in 33,000 tries, and then the proxy rightly waits for the rest
         * until its handshake timeout (CI saw it: one flood timed out). */
        uint8_t rec[300] = {TLS_HANDSHAKE_BYTE, 0x03, 0x01, 0x01, 0x27, 0x01, 0x00, 0x01, 0x23};
        if (RAND_bytes(rec + 9, sizeof rec - 9) != 1)
            die("RAND_bytes failed");
        fsend(fc, rec, sizeof rec);
        break;
    }
    default: /* every other kind starts with an SSLRequest */
        build_sslrequest(buf);
        fsend(fc, buf, 8);
        fc->step = FS_WANT_S;
        return;
    }
    fc->step = FS_WAIT_CLOSE;
}

/* 'S' arrived: the TLS part of this kind. Returns RD_OK to keep waiting. */
static enum rd_result flood_after_s(struct fconn *fc, SSL_CTX *ctx)
{
    static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
    uint8_t rec[105] = {0x16, 0x03, 0x01, 0x40, 0x00};
    fc->step = FS_WAIT_CLOSE;
    switch (fc->kind) {
    case FK_HALF_HELLO:
        fsend(fc, flood_hello, flood_hello_len / 2);
        break;
    case FK_TLS_IDLE:
    case FK_TLS_HALF:
        fc->ssl = SSL_new(ctx);
        if (fc->ssl == NULL || SSL_set_fd(fc->ssl, fc->fd) != 1)
            die("SSL_new failed");
        SSL_set_tlsext_host_name(fc->ssl, "localhost");
        fc->step = FS_TLS;
        return flood_tls(fc);
    case FK_TRUNC:
        if (RAND_bytes(rec + 5, 100) != 1)
            die("RAND_bytes failed");
        fsend(fc, rec, sizeof rec);
        shutdown(fc->fd, SHUT_WR);
        break;
    case FK_ALERT:
        fsend(fc, alert, sizeof alert);
        break;
    case FK_HELLO_RST: {
        fsend(fc, flood_hello, flood_hello_len);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        return RD_RESET; /* we reset it: counted as closed by us */
    }
    case FK_TLS_JUNK:
        fsend(fc, flood_hello, flood_hello_len);
        fc->step = FS_SERVER_HELLO;
        break;
    default:
        break;
    }
    return RD_OK;
}

static int flood_open(int ep, struct fconn *fc, const struct sockaddr_in *sin, double now)
{
    fc->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fc->fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fc->t0 = now;
    fc->ssl = NULL;
    fc->ngot = fc->total = 0;
    fc->step = FS_CONNECTING;
    if (connect(fc->fd, (const struct sockaddr *)sin, sizeof *sin) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fc->fd);
        fc->fd = -1;
        return -e;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = fc};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fc->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    return 0;
}

/* One event on fc. */
static void flood_event(int ep, struct fconn *fc, uint32_t events, SSL_CTX *ctx, struct fstats *st,
                        double now)
{
    if (fc->step == FS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fc->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            st[fc->kind].failed++;
            if (st[fc->kind].first_error[0] == '\0')
                snprintf(st[fc->kind].first_error, sizeof st[fc->kind].first_error, "connect: %s",
                         strerror(err));
            close(fc->fd);
            fc->fd = -1;
            fc->step = FS_DONE;
            return;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = fc};
        epoll_ctl(ep, EPOLL_CTL_MOD, fc->fd, &ev);
        flood_start(fc);
        return;
    }
    if (fc->ssl != NULL) {
        enum rd_result r = flood_tls(fc);
        if (r != RD_OK)
            flood_close(ep, fc, st, r, now);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    for (;;) {
        uint8_t buf[4096];
        ssize_t n = recv(fc->fd, buf, sizeof buf, 0);
        if (n == 0) {
            flood_close(ep, fc, st, RD_EOF, now);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                flood_close(ep, fc, st, errno_result(errno), now);
            return;
        }
        flood_keep(fc, buf, (size_t)n);
        if (fc->step == FS_WANT_S) {
            if (buf[0] != 'S') {
                flood_close(ep, fc, st, RD_ERR, now);
                return;
            }
            enum rd_result r = flood_after_s(fc, ctx);
            if (r != RD_OK) {
                flood_close(ep, fc, st, r, now);
                return;
            }
            if (fc->ssl != NULL)
                return;
            continue;
        }
        if (fc->step == FS_SERVER_HELLO) {
            /* The server answered our ClientHello: now junk records. */
            uint8_t junk[200] = {0x17, 0x03, 0x03, 0x00, 0xc3};
            if (RAND_bytes(junk + 5, sizeof junk - 5) != 1)
                die("RAND_bytes failed");
            fsend(fc, junk, sizeof junk);
            fc->step = FS_WAIT_CLOSE;
        }
    }
}

/*
 * rawclient flood HOST PORT TOTAL CONCURRENCY KINDS WAIT: TOTAL connections
 * to an IPv4 HOST, at most CONCURRENCY open at once, kinds round-robin from
 * the comma-separated KINDS; each waits up to WAIT seconds for the proxy to
 * close it. Prints per kind "kind=K n= eof= reset= timeout= failed=
 * answered= errors= min_s= avg_s= max_s=" (close times from connect),
 * "kind=K error=<first ErrorResponse>", and a last line "flood total=
 * closed= timeout= failed= elapsed_s= per_s=".
 */
static int cmd_flood(const char *host, const char *port, const char *totals, const char *concs,
                     const char *kinds, const char *waits)
{
    char *end = NULL;
    long total = strtol(totals, &end, 10);
    if (end == totals || *end != '\0' || total < 1 || total > 1000000)
        die("flood: TOTAL must be 1..1000000");
    long conc = strtol(concs, &end, 10);
    if (end == concs || *end != '\0' || conc < 1 || conc > 100000)
        die("flood: CONCURRENCY must be 1..100000");
    double wait = strtod(waits, &end);
    if (end == waits || *end != '\0' || wait <= 0 || wait > 3600)
        die("flood: WAIT must be a number of seconds");
    enum fkind list[64];
    size_t nlist = 0;
    for (const char *p = kinds; *p != '\0' && nlist < 64;) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (int k = 0; k < FK_COUNT; k++)
            if (strlen(fkind_names[k]) == len && strncmp(p, fkind_names[k], len) == 0) {
                list[nlist++] = (enum fkind)k;
                found = 1;
            }
        if (!found)
            die("flood: unknown kind '%.*s'", (int)len, p);
        p += len;
        if (*p == ',')
            p++;
    }
    if (nlist == 0)
        die("flood: no kinds");
    struct sockaddr_in sin = {.sin_family = AF_INET};
    long pn = strtol(port, &end, 10);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || *end != '\0' || pn < 1 || pn > 65535)
        die("flood: HOST must be an IPv4 address and PORT a port");
    sin.sin_port = htons((uint16_t)pn);
    SSL_CTX *ctx = client_ctx();
    flood_make_hello(ctx);
    struct fconn *fcs = calloc((size_t)conc, sizeof *fcs);
    struct fstats st[FK_COUNT];
    memset(st, 0, sizeof st);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (fcs == NULL || ep < 0)
        die("flood: cannot set up");
    for (long i = 0; i < conc; i++) {
        fcs[i].fd = -1;
        fcs[i].step = FS_DONE;
    }
    long started = 0, open_now = 0;
    double t0 = now_sec();
    struct epoll_event evs[256];
    for (;;) {
        double now = now_sec();
        /* Reap connections past their wait; start new ones in free slots
         * (at most 64 per round, so that events are served in between). */
        int budget = 64;
        for (long i = 0; i < conc; i++) {
            struct fconn *fc = &fcs[i];
            if (fc->step != FS_DONE && now - fc->t0 > wait) {
                flood_close(ep, fc, st, RD_TIMEOUT, now);
                open_now--;
            }
            if (fc->step == FS_DONE && started < total && budget > 0) {
                fc->kind = list[started % (long)nlist];
                st[fc->kind].n++;
                started++;
                budget--;
                int r = flood_open(ep, fc, &sin, now);
                if (r < 0) {
                    st[fc->kind].failed++;
                    if (st[fc->kind].first_error[0] == '\0')
                        snprintf(st[fc->kind].first_error, sizeof st[fc->kind].first_error,
                                 "socket/connect: %s", strerror(-r));
                } else {
                    open_now++;
                }
            }
        }
        if (started >= total && open_now == 0)
            break;
        int n = epoll_wait(ep, evs, 256, 20);
        now = now_sec();
        for (int i = 0; i < n; i++) {
            struct fconn *fc = evs[i].data.ptr;
            if (fc->step == FS_DONE)
                continue;
            flood_event(ep, fc, evs[i].events, ctx, st, now);
            if (fc->step == FS_DONE)
                open_now--;
        }
    }
    double elapsed = now_sec() - t0;
    unsigned closed = 0, timeouts = 0, failed = 0;
    for (int k = 0; k < FK_COUNT; k++) {
        struct fstats *s = &st[k];
        if (s->n == 0)
            continue;
        unsigned done = s->eof + s->reset;
        printf("kind=%s n=%u eof=%u reset=%u timeout=%u failed=%u answered=%u errors=%u "
               "min_s=%.2f avg_s=%.2f max_s=%.2f\n",
               fkind_names[k], s->n, s->eof, s->reset, s->timeout, s->failed, s->answered,
               s->errors, s->min_s, done ? s->sum_s / done : 0.0, s->max_s);
        if (s->first_error[0] != '\0')
            printf("kind=%s error=%s\n", fkind_names[k], s->first_error);
        closed += done;
        timeouts += s->timeout;
        failed += s->failed;
    }
    printf("flood total=%ld closed=%u timeout=%u failed=%u elapsed_s=%.1f per_s=%.0f\n", total,
           closed, timeouts, failed, elapsed, (double)total / elapsed);
    close(ep);
    free(fcs);
    SSL_CTX_free(ctx);
    return timeouts == 0 && failed == 0 ? 0 : 1;
}

/* ---- hold: silent connections that are never read ---- */

/* Is fd still open at the other end? We never read, so a FIN or a reset is
 * all there is to see. */
static int hold_open(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

static int hold_connect(const struct sockaddr_in *sin)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)sin, sizeof *sin) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Until every fd of fds[0..n) has connected or failed (10 s at most); a
 * failed one is closed and set to -1. Returns how many connected. */
static long hold_wait(int *fds, long n)
{
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    if (p == NULL)
        die("out of memory");
    long pending = 0, ok = 0;
    for (long i = 0; i < n; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLOUT;
        pending += fds[i] >= 0;
    }
    double deadline = now_sec() + 10;
    while (pending > 0 && now_sec() < deadline) {
        if (poll(p, (nfds_t)n, 100) < 0 && errno != EINTR)
            die("poll: %s", strerror(errno));
        for (long i = 0; i < n; i++) {
            if (p[i].fd < 0 || p[i].revents == 0)
                continue;
            int err = 0;
            socklen_t el = sizeof err;
            getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &err, &el);
            if (err == 0) {
                ok++;
            } else {
                close(fds[i]);
                fds[i] = -1;
            }
            p[i].fd = -1; /* poll ignores negative descriptors */
            pending--;
        }
    }
    free(p);
    return ok;
}

/*
 * rawclient hold HOST PORT N SECONDS [PER_SECOND]: N connections to an IPv4
 * HOST that send nothing and never read, PER_SECOND more opened each second
 * (a trickle), all kept for SECONDS. Prints "held=N" once the first N are
 * connected, then "hold opened= connected= closed_by_peer= still_open=": a
 * server that times silent clients out closes them; one that leaves them
 * open does not.
 */
static int cmd_hold(const char *host, const char *port, const char *ns, const char *secs,
                    const char *rates)
{
    char *end = NULL;
    long n = strtol(ns, &end, 10);
    if (end == ns || *end != '\0' || n < 1 || n > 100000)
        die("hold: N must be 1..100000");
    double dur = strtod(secs, &end);
    if (end == secs || *end != '\0' || dur <= 0 || dur > 3600)
        die("hold: SECONDS must be a number of seconds");
    long rate = 0;
    if (rates != NULL && ((rate = strtol(rates, &end, 10)) < 0 || rate > 10000 || *end != '\0'))
        die("hold: PER_SECOND must be 0..10000");
    struct sockaddr_in sin = {.sin_family = AF_INET};
    long pn = strtol(port, &end, 10);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 || *end != '\0' || pn < 1 || pn > 65535)
        die("hold: HOST must be an IPv4 address and PORT a port");
    sin.sin_port = htons((uint16_t)pn);
    long cap = n + (long)(rate * (dur + 1)) + 1;
    int *fds = calloc((size_t)cap, sizeof *fds);
    if (fds == NULL)
        die("out of memory");
    long opened = 0;
    for (; opened < n; opened++)
        fds[opened] = hold_connect(&sin);
    long connected = hold_wait(fds, n);
    printf("held=%ld\n", connected);
    double t0 = now_sec(), next = t0;
    while (now_sec() < t0 + dur) {
        if (rate > 0 && now_sec() >= next && opened < cap) {
            fds[opened++] = hold_connect(&sin);
            next += 1.0 / (double)rate;
            continue;
        }
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (opened > n)
        connected += hold_wait(fds + n, opened - n);
    long closed = 0, open_now = 0;
    for (long i = 0; i < opened; i++) {
        if (fds[i] < 0)
            continue;
        if (hold_open(fds[i]))
            open_now++;
        else
            closed++;
        close(fds[i]);
    }
    printf("hold opened=%ld connected=%ld closed_by_peer=%ld still_open=%ld\n", opened, connected,
           closed, open_now);
    free(fds);
    return 0;
}

/* ---- good: well-behaved clients, timed, while others misbehave ---- */

struct good_report {
    int failed;
    unsigned sessions, queries;
    double max_login_ms, max_query_ms;
    char err[512];
};

/* "SELECT k": true if the one row says k. */
static int good_query(struct stream *s, long k, uint8_t *body, char *err, size_t errlen)
{
    char sql[64], want[32];
    snprintf(sql, sizeof sql, "SELECT %ld", k);
    snprintf(want, sizeof want, "%ld", k);
    if (send_msg(s, 'Q', sql, strlen(sql) + 1) != RD_OK) {
        snprintf(err, errlen, "sending a query failed");
        return 0;
    }
    int rows_ok = 0;
    for (;;) {
        uint8_t type = 0;
        size_t len = 0;
        if (read_msg(s, &type, body, &len) != RD_OK) {
            snprintf(err, errlen, "connection lost during a query");
            return 0;
        }
        if (type == 'E') {
            format_error_fields(body, len, err, errlen);
            rows_ok = -1;
        } else if (type == 'D' && len >= 6 && rows_ok == 0) {
            uint32_t n = get_u32(body + 2);
            rows_ok = n == strlen(want) && n <= len - 6 && memcmp(body + 6, want, n) == 0;
            if (!rows_ok)
                snprintf(err, errlen, "SELECT %ld returned something else", k);
        } else if (type == 'Z') {
            if (rows_ok == 0 && err[0] == '\0')
                snprintf(err, errlen, "SELECT %ld returned no row", k);
            return rows_ok == 1;
        }
    }
}

/* One client: log in, 20 queries 100 ms apart, log out, again, until the
 * deadline. The report goes to fd out in one write. */
static void good_client(const char *host, const char *port, double deadline, int out)
{
    struct good_report rep;
    memset(&rep, 0, sizeof rep);
    uint8_t *body = malloc(MAX_MSG);
    if (body == NULL)
        die("out of memory");
    struct conn_opts o;
    memset(&o, 0, sizeof o);
    long k = 0;
    while (!rep.failed && now_sec() < deadline) {
        struct scram sc;
        memset(&sc, 0, sizeof sc);
        read_password("app", sc.password, sizeof sc.password);
        struct stream s;
        SSL_CTX *ctx = NULL;
        double t = now_sec();
        int rc = open_conn(host, port, &o, &s, &ctx);
        if (rc != 0) {
            snprintf(rep.err, sizeof rep.err, "TLS set-up failed (rc=%d)", rc);
        } else {
            size_t len = build_startup(body, MAX_MSG, 0);
            if (stream_write(&s, body, len) != RD_OK) {
                snprintf(rep.err, sizeof rep.err, "sending the StartupMessage failed");
                rc = 6;
            }
        }
        uint32_t pid = 0;
        uint8_t key[CANCEL_KEY_MAX];
        size_t keylen = 0;
        if (rc == 0)
            rc = session_login(&s, &sc, 0, body, &pid, key, &keylen, rep.err, sizeof rep.err);
        OPENSSL_cleanse(&sc, sizeof sc);
        double ms = (now_sec() - t) * 1000;
        if (ms > rep.max_login_ms)
            rep.max_login_ms = ms;
        if (rc != 0) {
            rep.failed = 1;
            close_conn(&s, ctx);
            break;
        }
        rep.sessions++;
        for (int q = 0; q < 20 && now_sec() < deadline; q++) {
            t = now_sec();
            if (!good_query(&s, k++, body, rep.err, sizeof rep.err)) {
                rep.failed = 1;
                break;
            }
            ms = (now_sec() - t) * 1000;
            if (ms > rep.max_query_ms)
                rep.max_query_ms = ms;
            rep.queries++;
            struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
        if (!rep.failed)
            send_msg(&s, 'X', NULL, 0);
        close_conn(&s, ctx);
    }
    free(body);
    if (write(out, &rep, sizeof rep) != (ssize_t)sizeof rep)
        _exit(4);
}

/*
 * rawclient good HOST PORT N SECONDS: N well-behaved clients (processes)
 * for SECONDS: each logs in over TLS with SCRAM, runs "SELECT k" every
 * 100 ms checking the answer, and after 20 queries logs out and in again.
 * Prints "good clients=N ok= sessions= queries= max_login_ms=
 * max_query_ms=" and the first failure. Exit 0 if no client failed.
 */
static int cmd_good(const char *host, const char *port, const char *ns, const char *secs)
{
    char *end = NULL;
    long n = strtol(ns, &end, 10);
    if (end == ns || *end != '\0' || n < 1 || n > 1000)
        die("good: N must be 1..1000");
    double seconds = strtod(secs, &end);
    if (end == secs || *end != '\0' || seconds <= 0 || seconds > 3600)
        die("good: SECONDS must be a number of seconds");
    int pfd[2];
    if (pipe(pfd) != 0)
        die("pipe: %s", strerror(errno));
    fflush(stdout);
    double deadline = now_sec() + seconds;
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            close(pfd[0]);
            /* What session_login prints is not for the test's eyes. */
            if (freopen("/dev/null", "w", stdout) == NULL)
                _exit(4);
            good_client(host, port, deadline, pfd[1]);
            _exit(0);
        }
    }
    close(pfd[1]);
    struct good_report sum;
    memset(&sum, 0, sizeof sum);
    long reports = 0, ok = 0;
    struct good_report rep;
    while (read(pfd[0], &rep, sizeof rep) == (ssize_t)sizeof rep) {
        reports++;
        ok += !rep.failed;
        sum.sessions += rep.sessions;
        sum.queries += rep.queries;
        if (rep.max_login_ms > sum.max_login_ms)
            sum.max_login_ms = rep.max_login_ms;
        if (rep.max_query_ms > sum.max_query_ms)
            sum.max_query_ms = rep.max_query_ms;
        if (rep.failed && sum.err[0] == '\0')
            snprintf(sum.err, sizeof sum.err, "%s", rep.err);
    }
    close(pfd[0]);
    while (wait(NULL) > 0)
        ;
    printf("good clients=%ld ok=%ld sessions=%u queries=%u max_login_ms=%.0f max_query_ms=%.0f\n",
           n, ok, sum.sessions, sum.queries, sum.max_login_ms, sum.max_query_ms);
    if (reports < n)
        printf("good-error %ld clients exited without a report\n", n - reports);
    if (sum.err[0] != '\0')
        printf("good-error %s\n", sum.err);
    return ok == n ? 0 : 1;
}

static void usage(void)
{
    fputs("usage: rawclient error HOST PORT [CONNECT-OPTIONS] [--malformed] [--minor N]\n"
          "                      [--no-startup] [--startup-after FILE]\n"
          "       rawclient session HOST PORT [CONNECT-OPTIONS] [--plus] [--query SQL]...\n"
          "                         [--pipeline]\n"
          "       rawclient cancel HOST PORT PID KEYHEX [--tls|--direct] [--from ADDR] "
          "[--proxy-v1|--proxy-v2 ADDR]\n"
          "       rawclient cancel-storm HOST PORT PID KEYHEX N SECONDS [--from ADDR] [--random]\n"
          "       rawclient peer-cancel HOST PORT PID KEYHEX SECRETFILE [--origin N] [--hops N] "
          "[--age-ms N] [--twice] [--plaintext]\n"
          "       rawclient inject HOST PORT\n"
          "       rawclient garbage HOST PORT N\n"
          "       rawclient half HOST PORT\n"
          "       rawclient vanish HOST PORT\n"
          "       rawclient idle HOST PORT SECONDS\n"
          "       rawclient stall HOST PORT NBYTES SECONDS\n"
          "       rawclient flood HOST PORT TOTAL CONCURRENCY KIND[,KIND...] WAIT\n"
          "       rawclient good HOST PORT N SECONDS\n"
          "       rawclient hold HOST PORT N SECONDS [PER_SECOND]\n"
          "       rawclient keyupdate HOST PORT startup|auth|login SECONDS [CONNECT-OPTIONS]\n"
          "       rawclient notices HOST PORT SQL SECONDS [CONNECT-OPTIONS]\n"
          "       rawclient fake-upstream PORT refuse-tls|bytes-after-s|silent\n"
          "       rawclient fake-upstream PORT direct-tls CERT KEY\n"
          "CONNECT-OPTIONS: --plaintext --direct --alpn P1[,P2] --no-alpn --pipeline-hello\n"
          "                 --gssenc --from ADDR --proxy-v1 SRC --proxy-v2 SRC|LOCAL\n"
          "                 --proxy-split --sni HEX --hello-size N --tls13 --database NAME\n",
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
    struct conn_opts o = {0};
    if (strcmp(cmd, "error") == 0 && argc >= 4) {
        int malformed = 0, no_startup = 0;
        const char *startup_after = NULL;
        long minor = 0;
        for (int i = 4; i < argc; i++) {
            char *end = NULL;
            if (parse_conn_opt(&o, argc, argv, &i))
                continue;
            if (strcmp(argv[i], "--malformed") == 0)
                malformed = 1;
            else if (strcmp(argv[i], "--no-startup") == 0)
                no_startup = 1;
            else if (strcmp(argv[i], "--startup-after") == 0 && i + 1 < argc)
                startup_after = argv[++i];
            else if (strcmp(argv[i], "--minor") == 0 && i + 1 < argc &&
                     (minor = strtol(argv[++i], &end, 0)) >= 0 && minor <= 0xffff && *end == '\0')
                continue;
            else
                usage();
        }
        return cmd_error(argv[2], argv[3], &o, malformed, (uint32_t)minor, no_startup,
                         startup_after);
    }
    if (strcmp(cmd, "session") == 0 && argc >= 4) {
        int plus = 0, nsql = 0, pipeline = 0;
        const char *sql[SESSION_QUERIES_MAX];
        for (int i = 4; i < argc; i++) {
            if (parse_conn_opt(&o, argc, argv, &i))
                continue;
            if (strcmp(argv[i], "--plus") == 0)
                plus = 1;
            else if (strcmp(argv[i], "--pipeline") == 0)
                pipeline = 1;
            else if (strcmp(argv[i], "--query") == 0 && i + 1 < argc && nsql < SESSION_QUERIES_MAX)
                sql[nsql++] = argv[++i];
            else
                usage();
        }
        return cmd_session(argv[2], argv[3], &o, plus, sql, nsql, pipeline);
    }
    if (strcmp(cmd, "cancel") == 0 && argc >= 6) {
        o.plaintext = 1; /* as libpq's PQcancel */
        for (int i = 6; i < argc; i++) {
            if (strcmp(argv[i], "--tls") == 0)
                o.plaintext = 0;
            else if (strcmp(argv[i], "--direct") == 0)
                o.plaintext = 0, o.direct = 1, o.alpn = "postgresql";
            else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
                o.from = argv[++i];
            else if ((strcmp(argv[i], "--proxy-v1") == 0 || strcmp(argv[i], "--proxy-v2") == 0) &&
                     i + 1 < argc)
                parse_conn_opt(&o, argc, argv, &i); /* behind a PROXY-protocol balancer */
            else
                usage();
        }
        return cmd_cancel(argv[2], argv[3], argv[4], argv[5], &o);
    }
    if (strcmp(cmd, "peer-cancel") == 0 && argc >= 7) {
        unsigned origin = 1, hops = 2;
        long long age = 0;
        int twice = 0;
        for (int i = 7; i < argc; i++) {
            if (strcmp(argv[i], "--origin") == 0 && i + 1 < argc)
                origin = (unsigned)atoi(argv[++i]);
            else if (strcmp(argv[i], "--hops") == 0 && i + 1 < argc)
                hops = (unsigned)atoi(argv[++i]);
            else if (strcmp(argv[i], "--age-ms") == 0 && i + 1 < argc)
                age = atoll(argv[++i]);
            else if (strcmp(argv[i], "--twice") == 0)
                twice = 1;
            else if (strcmp(argv[i], "--plaintext") == 0)
                o.plaintext = 1;
            else
                usage();
        }
        return cmd_peer_cancel(argv[2], argv[3], argv[4], argv[5], argv[6], origin, hops, age,
                               twice, &o);
    }
    if (strcmp(cmd, "cancel-storm") == 0 && argc >= 8) {
        const char *from = NULL;
        int random_keys = 0;
        for (int i = 8; i < argc; i++) {
            if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
                from = argv[++i];
            else if (strcmp(argv[i], "--random") == 0)
                random_keys = 1;
            else
                usage();
        }
        return cmd_cancel_storm(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7], from,
                                random_keys);
    }
    if ((strcmp(cmd, "keyupdate") == 0 || strcmp(cmd, "notices") == 0) && argc >= 6) {
        for (int i = 6; i < argc; i++)
            if (!parse_conn_opt(&o, argc, argv, &i))
                usage();
        if (strcmp(cmd, "notices") == 0)
            return cmd_notices(argv[2], argv[3], argv[4], argv[5], &o);
        if (strcmp(argv[4], "startup") != 0 && strcmp(argv[4], "auth") != 0 &&
            strcmp(argv[4], "login") != 0)
            usage();
        return cmd_keyupdate(argv[2], argv[3], argv[4], argv[5], &o);
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
    if (strcmp(cmd, "stall") == 0 && argc == 6)
        return cmd_stall(argv[2], argv[3], argv[4], argv[5]);
    if (strcmp(cmd, "flood") == 0 && argc == 8)
        return cmd_flood(argv[2], argv[3], argv[4], argv[5], argv[6], argv[7]);
    if (strcmp(cmd, "hold") == 0 && (argc == 6 || argc == 7))
        return cmd_hold(argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL);
    if (strcmp(cmd, "good") == 0 && argc == 6)
        return cmd_good(argv[2], argv[3], argv[4], argv[5]);
    if (strcmp(cmd, "fake-upstream") == 0 && (argc == 4 || argc == 6))
        return cmd_fake_upstream(argv[2], argv[3], argc == 6 ? argv[4] : NULL,
                                 argc == 6 ? argv[5] : NULL);
    usage();
}
