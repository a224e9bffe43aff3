/*
 * session_peers.c - the two peers of the session harness (session_fixture.h):
 * the test's blocking TLS client and the fake upstream's script helpers.
 * Plain sockets and OpenSSL only, nothing of the proxy's own code, so that
 * what they see is what a real client and a real server would see.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>

#include "pgmsg.h"
#include "pgproto.h"
#include "session_fixture.h"

/* ---- byte I/O shared by the client and the upstream ---- */

/* Write all of buf, through TLS when ssl is set. 0 or -1. */
static int io_write(int fd, SSL *ssl, const void *buf, size_t len)
{
    if (ssl != NULL)
        return SSL_write(ssl, buf, (int)len) == (int)len ? 0 : -1;
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Read exactly len bytes. 1: done; 0: EOF first (*close_notify set if TLS
 * ended with one; *fin once the socket itself has reached EOF); -1: error
 * or timeout.
 */
static int io_read(int fd, SSL *ssl, void *buf, size_t len, bool *close_notify, bool *fin)
{
    uint8_t *p = buf;
    while (len > 0) {
        int n;
        if (ssl != NULL) {
            n = SSL_read(ssl, p, (int)len);
            if (n <= 0) {
                int e = SSL_get_error(ssl, n);
                ERR_clear_error();
                if (e == SSL_ERROR_ZERO_RETURN)
                    *close_notify = true;
                /* the TCP FIN: recv() reads 0 (after close_notify, or instead) */
                uint8_t b;
                struct pollfd pf = {.fd = fd, .events = POLLIN};
                if (poll(&pf, 1, SFX_IO_TIMEOUT_MS) == 1 && recv(fd, &b, 1, 0) == 0)
                    *fin = true;
                return e == SSL_ERROR_ZERO_RETURN || *fin ? 0 : -1;
            }
        } else {
            ssize_t r = recv(fd, p, len, 0);
            if (r == 0) {
                *fin = true;
                return 0;
            }
            if (r < 0)
                return -1;
            n = (int)r;
        }
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One typed message into buf (header included): its type, 0 at EOF, -1 otherwise. */
static int io_read_msg(int fd, SSL *ssl, uint8_t *buf, size_t cap, size_t *len, bool *cn, bool *fin)
{
    int r = io_read(fd, ssl, buf, 5, cn, fin);
    if (r <= 0)
        return r;
    uint32_t n = get32(buf + 1);
    if (n < 4 || n + 1 > cap)
        return -1;
    if (n > 4 && io_read(fd, ssl, buf + 5, n - 4, cn, fin) != 1)
        return -1;
    *len = n + 1;
    return buf[0];
}

/* A typed message of body parts (NUL-ended strings when s, else raw). */
static size_t build_msg(uint8_t *out, uint8_t type, const void *body, size_t blen)
{
    out[0] = type;
    put32(out + 1, (uint32_t)(blen + 4));
    if (blen > 0)
        memcpy(out + 5, body, blen);
    return blen + 5;
}

/* ---- the client ---- */

struct sfx_client *sfx_client_connect(struct sfx *f)
{
    struct sfx_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->f = f;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(f->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (c->fd < 0 || sfx_socket_timeouts(c->fd) != 0 ||
        connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        sfx_client_free(c);
        return NULL;
    }
    return c;
}

void sfx_client_free(struct sfx_client *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

int sfx_client_send_raw(struct sfx_client *c, const void *buf, size_t len)
{
    return io_write(c->fd, NULL, buf, len);
}

int sfx_client_tls(struct sfx_client *c)
{
    uint8_t req[8], reply;
    put32(req, 8);
    put32(req + 4, PG_SSLREQUEST_CODE);
    bool cn = false, fin = false;
    if (io_write(c->fd, NULL, req, sizeof(req)) != 0 ||
        io_read(c->fd, NULL, &reply, 1, &cn, &fin) != 1 || reply != 'S')
        return -1;
    c->ssl = SSL_new(c->f->cli_ctx);
    if (c->ssl == NULL)
        return -1;
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    int r = SSL_connect(c->ssl);
    ERR_clear_error();
    return r == 1 && SSL_get_verify_result(c->ssl) == X509_V_OK ? 0 : -1;
}

int sfx_client_startup(struct sfx_client *c, const char *user, const char *database)
{
    uint8_t pkt[512];
    size_t o = 8;
    const char *kv[] = {"user", user, "database", database, "application_name", "unit"};
    for (size_t i = 0; i < 6; i++) {
        size_t n = strlen(kv[i]) + 1;
        if (o + n + 1 > sizeof(pkt))
            return -1;
        memcpy(pkt + o, kv[i], n);
        o += n;
    }
    pkt[o++] = 0;
    put32(pkt, (uint32_t)o);
    put32(pkt + 4, 196608); /* protocol 3.0 */
    return io_write(c->fd, c->ssl, pkt, o);
}

int sfx_client_read_msg(struct sfx_client *c, uint8_t *buf, size_t cap, size_t *len)
{
    bool fin = false;
    int t = io_read_msg(c->fd, c->ssl, buf, cap, len, &c->close_notify, &fin);
    if (t == 0)
        c->eof = true;
    return t;
}

/* Replies until 'Z' or 'E' (see sfx_client_login). */
static int client_replies(struct sfx_client *c)
{
    uint8_t buf[8192];
    size_t len;
    for (;;) {
        int t = sfx_client_read_msg(c, buf, sizeof(buf), &len);
        if (t <= 0)
            return t;
        if (t == 'K' && pg_parse_backend_key(buf, len, &c->pid, c->key, &c->keylen) != 0)
            return -1;
        if (t == 'C') {
            size_t n = len - 5 < sizeof(c->tag) - 1 ? len - 5 : sizeof(c->tag) - 1;
            memcpy(c->tag, buf + 5, n);
            c->tag[n] = '\0';
        }
        if (t == 'E') {
            struct pg_error_fields ef;
            if (pg_parse_error(buf, len, &ef) != 0)
                return -1;
            memcpy(c->sqlstate, ef.sqlstate, sizeof(c->sqlstate));
            memcpy(c->severity, ef.severity, sizeof(c->severity));
            memcpy(c->message, ef.message, sizeof(c->message));
            return 'E';
        }
        if (t == 'Z')
            return 'Z';
    }
}

int sfx_client_login(struct sfx_client *c)
{
    return client_replies(c);
}

int sfx_client_query(struct sfx_client *c, const char *sql)
{
    uint8_t buf[1024];
    size_t n = strlen(sql) + 1;
    if (n + 5 > sizeof(buf))
        return -1;
    size_t len = build_msg(buf, 'Q', sql, n);
    if (io_write(c->fd, c->ssl, buf, len) != 0)
        return -1;
    return client_replies(c);
}

int sfx_client_cancel(struct sfx_client *c, uint32_t pid, const uint8_t *key, size_t keylen)
{
    uint8_t pkt[12 + PG_CANCEL_KEY_MAX];
    size_t n = pg_build_cancel(pkt, sizeof(pkt), pid, key, keylen);
    return n > 0 ? io_write(c->fd, c->ssl, pkt, n) : -1;
}

long sfx_client_wait_eof(struct sfx_client *c, unsigned timeout_ms)
{
    uint64_t start = uv_hrtime();
    uint8_t buf[4096];
    for (;;) {
        long ms = (long)((uv_hrtime() - start) / 1000000);
        if (ms > (long)timeout_ms)
            return -1;
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        if ((c->ssl == NULL || SSL_pending(c->ssl) == 0) &&
            poll(&pf, 1, (int)((long)timeout_ms - ms)) != 1)
            continue;
        int n;
        if (c->ssl != NULL && !c->close_notify) {
            n = SSL_read(c->ssl, buf, sizeof(buf));
            if (n <= 0) {
                int e = SSL_get_error(c->ssl, n);
                ERR_clear_error();
                if (e == SSL_ERROR_ZERO_RETURN) {
                    c->close_notify = true;
                    continue; /* then the FIN */
                }
                n = (int)recv(c->fd, buf, 1, 0);
                if (n != 0)
                    return -1;
            }
        } else {
            n = (int)recv(c->fd, buf, sizeof(buf), 0);
            if (n < 0)
                return -1;
        }
        if (n == 0) {
            c->eof = true;
            return (long)((uv_hrtime() - start) / 1000000);
        }
    }
}

bool sfx_client_quiet(struct sfx_client *c, unsigned ms)
{
    if (c->ssl != NULL && SSL_pending(c->ssl) > 0)
        return false;
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    return poll(&pf, 1, (int)ms) == 0;
}

void sfx_client_close(struct sfx_client *c, bool notify)
{
    if (notify && c->ssl != NULL)
        SSL_shutdown(c->ssl);
    ERR_clear_error();
    shutdown(c->fd, SHUT_WR);
}

/* ---- the fake upstream ---- */

int sfx_up_sslrequest(struct sfx_up *u, char reply)
{
    uint8_t req[8];
    bool cn = false;
    if (io_read(u->fd, NULL, req, sizeof(req), &cn, &u->fin) != 1 || get32(req) != 8 ||
        get32(req + 4) != PG_SSLREQUEST_CODE)
        return -1;
    u->got_sslrequest = true;
    return io_write(u->fd, NULL, &reply, 1);
}

int sfx_up_tls(struct sfx_up *u)
{
    if (sfx_up_sslrequest(u, 'S') != 0)
        return -1;
    u->ssl = SSL_new(u->f->up_ctx);
    if (u->ssl == NULL)
        return -1;
    SSL_set_fd(u->ssl, u->fd);
    int r = SSL_accept(u->ssl);
    ERR_clear_error();
    u->tls_up = r == 1;
    return u->tls_up ? 0 : -1;
}

int sfx_up_first_packet(struct sfx_up *u)
{
    uint8_t pkt[1024];
    if (io_read(u->fd, u->ssl, pkt, 4, &u->close_notify, &u->fin) != 1)
        return -1;
    uint32_t n = get32(pkt);
    if (n < 8 || n > sizeof(pkt) ||
        io_read(u->fd, u->ssl, pkt + 4, n - 4, &u->close_notify, &u->fin) != 1)
        return -1;
    if (get32(pkt + 4) == PG_CANCELREQUEST_CODE) {
        uint8_t key[PG_CANCEL_KEY_MAX];
        size_t keylen;
        if (pg_parse_cancel(pkt, n, &u->cancel_pid, key, &keylen) != 0 ||
            keylen > sizeof(u->cancel_key))
            return -1;
        memcpy(u->cancel_key, key, keylen);
        u->cancel_keylen = keylen;
        u->got_cancel = true;
        return 0;
    }
    if (get32(pkt + 4) != 196608)
        return -1;
    u->got_startup = true;
    for (size_t o = 8; o < n && pkt[o] != 0;) { /* name\0value\0 pairs */
        const char *k = (const char *)pkt + o;
        size_t kl = strnlen(k, n - o);
        const char *v = k + kl + 1;
        if (o + kl + 1 >= n)
            break;
        size_t vl = strnlen(v, n - o - kl - 1);
        if (strcmp(k, "user") == 0)
            snprintf(u->user, sizeof(u->user), "%.*s", (int)vl, v);
        o += kl + vl + 2;
    }
    return 0;
}

int sfx_up_login_ok(struct sfx_up *u)
{
    uint8_t out[256], body[64];
    size_t o = 0;
    put32(body, 0);
    o += build_msg(out + o, 'R', body, 4);
    static const char ps[] = "server_version\0"
                             "17.0";
    o += build_msg(out + o, 'S', ps, sizeof(ps));
    put32(body, SFX_UP_PID);
    for (int i = 0; i < 4; i++) /* a key, not a string */
        body[4 + i] = (uint8_t)SFX_UP_KEY[i];
    o += build_msg(out + o, 'K', body, 8);
    o += build_msg(out + o, 'Z', "I", 1);
    return io_write(u->fd, u->ssl, out, o);
}

int sfx_up_error(struct sfx_up *u, const char *sqlstate, const char *msg)
{
    uint8_t out[512];
    size_t n = pg_build_error(out, sizeof(out), "FATAL", sqlstate, msg, NULL);
    return n > 0 ? io_write(u->fd, u->ssl, out, n) : -1;
}

void sfx_up_serve(struct sfx_up *u)
{
    sfx_up_serve_n(u, 0);
}

void sfx_up_serve_n(struct sfx_up *u, unsigned n)
{
    uint8_t buf[4096], out[4200];
    size_t len;
    for (;;) {
        int t = io_read_msg(u->fd, u->ssl, buf, sizeof(buf), &len, &u->close_notify, &u->fin);
        if (t <= 0)
            return;
        if (t == 'X') {
            u->got_terminate = true;
            sfx_up_wait_eof(u);
            return;
        }
        if (t != 'Q')
            continue;
        u->queries++;
        size_t o = build_msg(out, 'C', buf + 5, len - 5); /* the query as the tag */
        o += build_msg(out + o, 'Z', "I", 1);
        if (io_write(u->fd, u->ssl, out, o) != 0 || u->queries == n)
            return;
    }
}

void sfx_up_wait_eof(struct sfx_up *u)
{
    uint8_t b[512];
    while (io_read(u->fd, u->ssl, b, 1, &u->close_notify, &u->fin) == 1)
        ;
}

void sfx_up_close(struct sfx_up *u, bool notify)
{
    if (notify && u->ssl != NULL)
        SSL_shutdown(u->ssl);
    ERR_clear_error();
    shutdown(u->fd, SHUT_WR);
}

void sfx_up_drop(struct sfx_up *u, size_t n)
{
    uint8_t buf[512];
    ssize_t got = recv(u->fd, buf, n < sizeof(buf) ? n : sizeof(buf), 0);
    (void)got;
    close(u->fd);
    u->fd = -1;
}

void sfx_up_login_echo(struct sfx_up *u)
{
    if (sfx_up_tls(u) != 0 || sfx_up_first_packet(u) != 0)
        return;
    if (u->got_cancel) { /* PostgreSQL answers nothing; the proxy closes */
        sfx_up_wait_eof(u);
        return;
    }
    if (sfx_up_login_ok(u) != 0)
        return;
    sfx_up_serve(u);
}
