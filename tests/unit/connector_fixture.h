/*
 * connector_fixture.h - the connector's loop tests' harness (connector_fixture.c):
 * a fake proxy side over blocking sockets and tlsio, an echo target, the
 * connector run on its own thread, and the connector's log captured. Used
 * by test_connector_loop.c and test_connector_flow.c. Loopback only; the
 * certificate is made in-process and only its public half is written.
 */
#ifndef PGTP_CONNECTOR_FIXTURE_H
#define PGTP_CONNECTOR_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "connector.h"
#include "tlsio.h"

#define CF_IO_MS 10000 /* the longest any single wait for the connector may take */

extern SSL_CTX *cf_srv_ctx; /* the fake proxy's TLS server context */
extern char cf_ca_file[64]; /* its certificate, for --bridge-ca-path */

/* Checked fixture of every loop test case: log sink, certificate, SIGPIPE. */
void cf_setup(void);
void cf_teardown(void);

/* The first captured log line holding a and b (b may be NULL), into out;
 * cf_log_wait waits up to CF_IO_MS for it. */
bool cf_log_find(const char *a, const char *b, char *out, size_t cap);
bool cf_log_wait(const char *a, const char *b, char *out, size_t cap);
/* The whole captured log holds s. */
bool cf_log_has(const char *s);

int cf_listen(uint16_t *port);
int cf_accept_within(int lfd, int ms);
void cf_read_exact(int fd, void *buf, size_t n);

/* An echo target: accepts one connection, echoes until EOF. */
struct cf_echo {
    int lfd;
    pthread_t th;
};
void *cf_echo_main(void *arg);

/* One connection of the fake proxy. */
struct cf_peer {
    int fd;
    bool silent; /* PINGs are returned to the caller, not answered */
    struct tlsio t;
    uint8_t in[BRIDGE_FRAME_HDR + BRIDGE_FRAME_MAX];
    size_t inlen;
};
void cf_peer_flush(struct cf_peer *p);
bool cf_peer_recv(struct cf_peer *p);
/* Accept, check the preamble's stream id, TLS as the server. */
void cf_peer_accept(struct cf_peer *p, int lfd, uint64_t stream);
void cf_peer_close(struct cf_peer *p);
void cf_peer_read(struct cf_peer *p, void *buf, size_t n);
void cf_peer_send_frame(struct cf_peer *p, uint8_t type, const char *const *kv);
uint8_t cf_peer_frame(struct cf_peer *p, char *payload, size_t cap);
void cf_payload_is(const char *payload, const char *key, const char *want);

/* The connector on its own thread. */
struct cf_running {
    struct connector_opts o;
    struct connector *cn;
    pthread_t th;
    int rc;
};
void *cf_run_main(void *arg);
void cf_start(struct cf_running *r, uint16_t proxy_port, const char *allow);
void cf_stop(struct cf_running *r);
/* Accept the control connection, check HELLO, send WELCOME. */
void cf_control_up(struct cf_peer *ctl, int lfd);

/* Test bytes, and n of them echoed through an open data connection. */
uint8_t cf_pattern(size_t i, unsigned salt);
void cf_echo_check(struct cf_peer *data, size_t n, unsigned salt);

#endif
