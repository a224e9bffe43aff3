/*
 * session_fixture.c - the in-process session harness (session_fixture.h):
 * certificates, configuration, contexts and a worker built the way main.c
 * builds them, a fake upstream, a blocking TLS client and the log capture.
 * Owns everything it makes; sfx_stop frees it all and reports whether the
 * worker's loop closed cleanly.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <check.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "listener.h"
#include "pgproto.h"
#include "session_fixture.h"

/* ---- certificates: a private CA and a leaf for localhost / 127.0.0.1 ---- */

static void add_ext(X509 *issuer, X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ck_assert_ptr_nonnull(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial)
{
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : n);
    X509 *iss = issuer != NULL ? issuer : x;
    if (issuer == NULL) {
        add_ext(iss, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(iss, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(iss, x, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(iss, x, NID_key_usage, "critical,digitalSignature");
        add_ext(iss, x, NID_ext_key_usage, "serverAuth");
        add_ext(iss, x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    }
    add_ext(iss, x, NID_subject_key_identifier, "hash");
    ck_assert_int_gt(X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha256()), 0);
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    if (cert != NULL)
        ck_assert_int_eq(PEM_write_X509(fp, cert), 1);
    if (key != NULL)
        ck_assert_int_eq(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
    ck_assert_int_eq(fclose(fp), 0);
}

static void make_pki(struct sfx *f)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(ca_key);
    f->ca = make_cert(ca_key, "pg-tls-proxy unit CA", NULL, NULL, 1);
    f->leaf_key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(f->leaf_key);
    f->leaf = make_cert(f->leaf_key, "localhost", f->ca, ca_key, 2);
    EVP_PKEY_free(ca_key); /* nothing more is signed */

    snprintf(f->dir, sizeof(f->dir), "/tmp/pgtp-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->ca_path, sizeof(f->ca_path), "%s/ca.pem", f->dir);
    snprintf(f->cert_path, sizeof(f->cert_path), "%s/leaf.pem", f->dir);
    snprintf(f->key_path, sizeof(f->key_path), "%s/leaf.key", f->dir);
    write_pem(f->ca_path, f->ca, NULL);
    write_pem(f->cert_path, f->leaf, NULL);
    write_pem(f->key_path, NULL, f->leaf_key);

    /* The fake upstream serves the same leaf; the client trusts the CA. */
    f->up_ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate(f->up_ctx, f->leaf), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(f->up_ctx, f->leaf_key), 1);
    f->cli_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(f->cli_ctx, SSL_VERIFY_PEER, NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(f->cli_ctx), f->ca);
}

/* ---- the log ---- */

static void sink(void *arg, enum log_level level, const char *line, size_t len)
{
    struct sfx *f = arg;
    (void)level;
    if (f->log_hook != NULL)
        f->log_hook(line, len);
    uv_mutex_lock(&f->log_lock);
    if (f->log_len + len + 2 > f->log_cap) {
        size_t cap = (f->log_cap + len + 2) * 2;
        char *p = realloc(f->log, cap);
        if (p == NULL) {
            uv_mutex_unlock(&f->log_lock);
            return;
        }
        f->log = p;
        f->log_cap = cap;
    }
    memcpy(f->log + f->log_len, line, len);
    f->log_len += len;
    f->log[f->log_len++] = '\n';
    f->log[f->log_len] = '\0';
    uv_cond_broadcast(&f->log_cond);
    uv_mutex_unlock(&f->log_lock);
    if (getenv("SFX_VERBOSE") != NULL)
        fprintf(stderr, "%s\n", line);
}

/* Does [line, end) contain every needle of the NULL-ended list? */
static bool line_has_all(const char *line, const char *end, const char *const *needles)
{
    for (; *needles != NULL; needles++) {
        size_t n = strlen(*needles);
        bool found = false;
        for (const char *p = line; p + n <= end && !found; p++)
            found = memcmp(p, *needles, n) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Wait on the log's condition until deadline (ms, uv_hrtime based); false when it passed. */
static bool log_wait_until(struct sfx *f, uint64_t deadline_ms)
{
    uint64_t now = uv_hrtime() / 1000000;
    if (now >= deadline_ms)
        return false;
    uv_cond_timedwait(&f->log_cond, &f->log_lock, (deadline_ms - now) * 1000000);
    return true;
}

bool sfx_log_wait_all(struct sfx *f, unsigned timeout_ms, const char *const *needles)
{
    uint64_t deadline = uv_hrtime() / 1000000 + timeout_ms;
    uv_mutex_lock(&f->log_lock);
    for (;;) {
        const char *p = f->log != NULL ? f->log : "";
        while (*p != '\0') {
            const char *end = strchr(p, '\n');
            if (line_has_all(p, end, needles)) {
                uv_mutex_unlock(&f->log_lock);
                return true;
            }
            p = end + 1;
        }
        if (!log_wait_until(f, deadline))
            break;
    }
    uv_mutex_unlock(&f->log_lock);
    return false;
}

unsigned sfx_log_count(struct sfx *f, const char *needle)
{
    const char *needles[2] = {needle, NULL};
    unsigned count = 0;
    uv_mutex_lock(&f->log_lock);
    for (const char *p = f->log != NULL ? f->log : ""; *p != '\0';) {
        const char *end = strchr(p, '\n');
        count += line_has_all(p, end, needles);
        p = end + 1;
    }
    uv_mutex_unlock(&f->log_lock);
    return count;
}

unsigned long long sfx_log_conn(struct sfx *f, unsigned nth, unsigned timeout_ms)
{
    uint64_t deadline = uv_hrtime() / 1000000 + timeout_ms;
    unsigned long long id = 0;
    uv_mutex_lock(&f->log_lock);
    do {
        unsigned seen = 0;
        for (const char *p = f->log != NULL ? f->log : ""; *p != '\0' && id == 0;) {
            const char *end = strchr(p, '\n');
            const char *a = strstr(p, "event=accepted conn=");
            if (a != NULL && a < end && seen++ == nth)
                id = strtoull(a + strlen("event=accepted conn="), NULL, 10);
            p = end + 1;
        }
    } while (id == 0 && log_wait_until(f, deadline));
    uv_mutex_unlock(&f->log_lock);
    return id;
}

const char *sfx_log_seq(struct sfx *f, unsigned long long id, const char *const *seq,
                        unsigned timeout_ms)
{
    char tag[40];
    size_t taglen = (size_t)snprintf(tag, sizeof(tag), "conn=%llu", id);
    uint64_t deadline = uv_hrtime() / 1000000 + timeout_ms;
    const char *missing;
    uv_mutex_lock(&f->log_lock);
    do {
        const char *const *want = seq;
        for (const char *p = f->log != NULL ? f->log : ""; *p != '\0' && *want != NULL;) {
            const char *end = strchr(p, '\n');
            const char *t = strstr(p, tag);
            /* this connection's line: "conn=N" followed by a space or the end */
            bool mine = t != NULL && t < end && (t[taglen] == ' ' || t + taglen == end);
            /* several entries may match one line ("event=closed", "outcome=x") */
            while (mine && *want != NULL &&
                   line_has_all(p, end, (const char *const[]){*want, NULL}))
                want++;
            p = end + 1;
        }
        missing = *want;
    } while (missing != NULL && log_wait_until(f, deadline));
    uv_mutex_unlock(&f->log_lock);
    return missing;
}

void sfx_log_dump(struct sfx *f)
{
    uv_mutex_lock(&f->log_lock);
    fprintf(stderr, "---- captured log ----\n%s----\n", f->log != NULL ? f->log : "");
    uv_mutex_unlock(&f->log_lock);
}

/* ---- running things on the worker's loop ---- */

static void call_cb(uv_async_t *a)
{
    struct sfx *f = a->data;
    if (f->call_fn != NULL)
        f->call_fn(f, f->call_arg);
    f->call_fn = NULL;
    uv_sem_post(&f->call_done);
}

void sfx_call(struct sfx *f, void (*fn)(struct sfx *f, void *arg), void *arg)
{
    f->call_fn = fn;
    f->call_arg = arg;
    uv_async_send(&f->call);
    uv_sem_wait(&f->call_done);
}

static void read_nconns(struct sfx *f, void *arg)
{
    *(size_t *)arg = f->w->nconns;
}

size_t sfx_nconns(struct sfx *f)
{
    size_t n = 0;
    sfx_call(f, read_nconns, &n);
    return n;
}

bool sfx_wait_nconns(struct sfx *f, size_t n, unsigned timeout_ms)
{
    for (unsigned waited = 0;; waited += 10) {
        if (sfx_nconns(f) == n)
            return true;
        if (waited >= timeout_ms)
            return false;
        usleep(10 * 1000);
    }
}

static void close_call(struct sfx *f, void *arg)
{
    (void)arg;
    uv_close((uv_handle_t *)&f->call, NULL);
}

/* ---- the fake upstream's acceptor ---- */

int sfx_socket_timeouts(int fd)
{
    struct timeval tv = {.tv_sec = SFX_IO_TIMEOUT_MS / 1000, .tv_usec = 0};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) |
           setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void up_conn_thread(void *arg)
{
    struct sfx_up *u = arg;
    sfx_up_script script = u->f->scripts[u->index];
    (script != NULL ? script : sfx_up_login_echo)(u);
    ERR_clear_error();
    OPENSSL_thread_stop();
}

static void up_accept_thread(void *arg)
{
    struct sfx *f = arg;
    while (!atomic_load(&f->up_stop)) {
        struct pollfd p = {.fd = f->up_fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(f->up_fd, NULL, NULL);
        if (fd < 0)
            continue;
        int i = atomic_load(&f->nups);
        if (i >= SFX_MAX_UP) {
            close(fd);
            continue;
        }
        struct sfx_up *u = &f->ups[i];
        u->f = f;
        u->index = i;
        u->fd = fd;
        sfx_socket_timeouts(fd);
        ck_assert_int_eq(uv_thread_create(&u->thread, up_conn_thread, u), 0);
        atomic_store(&u->started, true);
        atomic_store(&f->nups, i + 1);
    }
}

static int listen_loopback(uint16_t *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

struct sfx_up *sfx_up_join(struct sfx *f, int i)
{
    for (unsigned waited = 0; atomic_load(&f->nups) <= i; waited += 10) {
        if (waited >= SFX_IO_TIMEOUT_MS)
            return NULL;
        usleep(10 * 1000);
    }
    struct sfx_up *u = &f->ups[i];
    if (!u->joined) {
        uv_thread_join(&u->thread);
        u->joined = true;
    }
    return u;
}

/* ---- start and stop ---- */

/* The PEM files are needed only while tlsctx_build reads them. Idempotent. */
static void remove_files(struct sfx *f)
{
    const char *paths[] = {f->ca_path, f->cert_path, f->key_path};
    for (size_t i = 0; i < 3; i++)
        if (paths[i][0] != '\0')
            unlink(paths[i]);
    if (f->dir[0] != '\0')
        rmdir(f->dir);
    f->dir[0] = f->ca_path[0] = f->cert_path[0] = f->key_path[0] = '\0';
}

/* The auth file of a scram-mode test: its own temporary file, since the
 * PEM directory is removed before the routes read it. */
static void write_auth_file(struct sfx *f, const char *text)
{
    snprintf(f->auth_path, sizeof(f->auth_path), "/tmp/pgtp-unit-auth-XXXXXX");
    int fd = mkstemp(f->auth_path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    ck_assert_int_eq(close(fd), 0);
}

static void remove_auth_file(struct sfx *f)
{
    if (f->auth_path[0] != '\0')
        unlink(f->auth_path);
    f->auth_path[0] = '\0';
}

unsigned sfx_time_scale(void)
{
    const char *pre = getenv("LD_PRELOAD");
    if (pre != NULL && strstr(pre, "vgpreload") != NULL)
        return 5;
    const char *s = getenv("SFX_TIME_SCALE");
    long v = s != NULL ? strtol(s, NULL, 10) : 1;
    return v >= 1 && v <= 100 ? (unsigned)v : 1;
}

void sfx_start(struct sfx *f, const struct sfx_opts *o)
{
    char err[1024], portstr[8], upport[8];
    memset(f, 0, sizeof(*f));
    f->up_fd = -1;
    f->started = true;
    ck_assert_int_eq(uv_mutex_init(&f->log_lock), 0);
    ck_assert_int_eq(uv_cond_init(&f->log_cond), 0);
    /* As main.c: a write to a peer that has gone is an error, not a signal
     * (the proxy's legs, and the client's and upstream's close_notify). */
    signal(SIGPIPE, SIG_IGN);
    f->saved_level = log_min_level;
    log_min_level = LOG_DEBUG; /* the transition lines are at debug level */
    f->log_hook = o->log_hook; /* before any thread logs */
    log_set_sink(sink, f);
    for (int i = 0; i < SFX_MAX_UP; i++)
        f->scripts[i] = o->up[i];
    make_pki(f);

    /* The fake upstream listens first: its port goes into the options. */
    f->up_fd = listen_loopback(&f->up_port);
    snprintf(upport, sizeof(upport), "%u", f->up_port);
    if (o->no_upstream) { /* the port was just free: now it refuses */
        close(f->up_fd);
        f->up_fd = -1;
    }
    snprintf(portstr, sizeof(portstr), "%u", 5432u); /* unused: the fixture binds port 0 */
    const char *opts[][2] = {
        {"--server-certificate-path", f->cert_path},
        {"--server-private-key-path", f->key_path},
        {"--server-host", "127.0.0.1"},
        {"--server-port", portstr},
        {"--client-connection-host-or-ip", "127.0.0.1"},
        {"--client-connection-port", upport},
        {"--client-ca-roots-path", f->ca_path},
        {"--workers", "1"},
    };
    enum { NOPTS = sizeof(opts) / sizeof(opts[0]) };
    char *argv[2 * NOPTS + 6];
    int argc = 0;
    argv[argc++] = (char *)(uintptr_t) "pg-tls-proxy"; /* config_parse does not write them */
    for (size_t i = 0; i < NOPTS; i++) {
        argv[argc++] = (char *)(uintptr_t)opts[i][0];
        argv[argc++] = (char *)(uintptr_t)opts[i][1];
    }
    if (o->auth_mode != NULL) {
        argv[argc++] = (char *)(uintptr_t) "--auth-mode";
        argv[argc++] = (char *)(uintptr_t)o->auth_mode;
    }
    if (o->auth_file != NULL) {
        write_auth_file(f, o->auth_file);
        argv[argc++] = (char *)(uintptr_t) "--auth-file";
        argv[argc++] = f->auth_path;
    }
    argv[argc] = NULL;
    ck_assert_msg(config_parse(&f->cfg, argc, argv, NULL, stdout, err, sizeof(err)) == CONFIG_OK,
                  "config: %s", err);
    /* As main.c makes it, with the fixture's short timeouts in milliseconds. */
    f->rt.cfg = &f->cfg;
    unsigned scale = sfx_time_scale();
    f->rt.startup_timeout_ms = (o->startup_timeout_ms ? o->startup_timeout_ms : 3000) * scale;
    f->rt.write_stall_ms = f->cfg.write_stall_s * 1000;
    int built = tlsctx_build(&f->cfg, &f->ctx, err, sizeof(err));
    remove_files(f); /* loaded: a failing test (its process ends at once) leaves no key behind */
    ck_assert_msg(built == 0, "tlsctx: %s", err);
    f->routes = route_table_build(&f->cfg, f->ctx.front, f->ctx.back, err, sizeof(err));
    remove_auth_file(f); /* read by the route (scram mode) */
    ck_assert_msg(f->routes != NULL, "routes: %s", err);
    /* Not yet shared with the worker: the one moment a route may change. */
    f->routes->dflt->connect_timeout_ms =
        (o->connect_timeout_ms ? o->connect_timeout_ms : 3000) * scale;
    if (o->bridge != NULL) {
        f->routes->dflt->bridge = strdup(o->bridge);
        ck_assert_ptr_nonnull(f->routes->dflt->bridge);
    }

    f->w = calloc(1, sizeof(*f->w));
    ck_assert_ptr_nonnull(f->w);
    ck_assert_int_eq(worker_init(f->w, 0, &f->rt, f->routes, NULL), 0);
    f->worker_made = true;
    struct addrinfo *addrs = NULL;
    char bound[128];
    ck_assert_msg(listener_resolve("127.0.0.1", 0, &addrs, err, sizeof(err)) == 0, "%s", err);
    ck_assert_msg(listener_start(f->w, addrs, false, bound, sizeof(bound), err, sizeof(err)) == 0,
                  "%s", err);
    freeaddrinfo(addrs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    ck_assert_int_eq(getsockname(f->w->listeners[0].fd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);

    ck_assert_int_eq(uv_sem_init(&f->call_done, 0), 0);
    f->sem_made = true;
    ck_assert_int_eq(uv_async_init(f->w->loop, &f->call, call_cb), 0);
    f->call.data = f;
    f->call_open = true;
    if (f->up_fd >= 0) {
        ck_assert_int_eq(uv_thread_create(&f->up_thread, up_accept_thread, f), 0);
        f->up_running = true;
    }
    ck_assert_int_eq(uv_thread_create(&f->w->thread, worker_thread, f->w), 0);
    f->running = true;
}

int sfx_stop(struct sfx *f)
{
    int closed = -1;
    if (f->running) {
        if (f->call_open)
            sfx_call(f, close_call, NULL);
        f->call_open = false;
        if (!atomic_load(&f->w->finished)) /* a test may have stopped it already */
            worker_command(f->w, WORKER_DRAIN);
        for (unsigned waited = 0; !atomic_load(&f->w->finished); waited += 10) {
            if (waited == 3000) { /* a session the test left open */
                f->stop_killed = true;
                worker_command(f->w, WORKER_KILL);
            }
            usleep(10 * 1000);
        }
        uv_thread_join(&f->w->thread);
        f->running = false;
    }
    atomic_store(&f->up_stop, true);
    if (f->up_running)
        uv_thread_join(&f->up_thread);
    for (int i = 0; i < atomic_load(&f->nups); i++) {
        struct sfx_up *u = &f->ups[i];
        if (!u->joined)
            uv_thread_join(&u->thread);
        SSL_free(u->ssl);
        if (u->fd >= 0) /* a script may have closed it (sfx_up_drop) */
            close(u->fd);
    }
    /* (If sfx_start failed before the thread ran, the loop still has its
     * handles: uv_loop_close fails, as the failed test already has.) */
    if (f->worker_made)
        closed = worker_destroy(f->w);
    free(f->w);
    if (f->sem_made)
        uv_sem_destroy(&f->call_done);
    log_set_sink(NULL, NULL);
    log_min_level = f->saved_level;
    if (f->up_fd >= 0)
        close(f->up_fd);
    route_table_unref(f->routes);
    f->routes = NULL;
    tlsctx_contexts_free(&f->ctx);
    config_free(&f->cfg);
    SSL_CTX_free(f->up_ctx);
    SSL_CTX_free(f->cli_ctx);
    X509_free(f->ca);
    X509_free(f->leaf);
    EVP_PKEY_free(f->leaf_key);
    remove_files(f);
    remove_auth_file(f);
    free(f->log);
    uv_cond_destroy(&f->log_cond);
    uv_mutex_destroy(&f->log_lock);
    f->started = false;
    return closed;
}
