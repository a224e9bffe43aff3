/*
 * test_connector_loop.c - the connector's real loop on its own thread
 * against a fake proxy and an echo target on loopback (connector_fixture.c):
 *   - control: preamble (stream 0), verify-full TLS with ALPN, HELLO fields,
 *     WELCOME; PINGs answered;
 *   - OPEN to the echo target: data connection with the stream's preamble,
 *     the token first, then 200 KB echoed back byte-exact, and one
 *     stream_closed line with both byte counts;
 *   - OPEN to a target not on --allow: FAIL not_allowed; to a closed port
 *     on the list: FAIL unreachable;
 *   - REJECT: logged as tunnel_rejected, and the connector comes back;
 *   - a certificate for another name: refused, the name in the log;
 *   - /healthz, /readyz, /metrics follow the tunnel;
 *   - stop: BYE on the control connection, run returns 0 (loop closed).
 * Backpressure and a lost control connection: test_connector_flow.c.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connector_fixture.h"
#include "suites.h"

START_TEST(test_open_echo_and_refusals)
{
    uint16_t pport, eport, dport;
    int lfd = cf_listen(&pport);
    struct cf_echo e = {.lfd = cf_listen(&eport)};
    int dead = cf_listen(&dport);
    close(dead); /* nothing listens there any more: connection refused */
    ck_assert_int_eq(pthread_create(&e.th, NULL, cf_echo_main, &e), 0);

    char allow[64], target[32], dtarget[32], payload[BRIDGE_FRAME_MAX + 1], line[2048];
    snprintf(target, sizeof(target), "127.0.0.1:%u", eport);
    snprintf(dtarget, sizeof(dtarget), "127.0.0.1:%u", dport);
    snprintf(allow, sizeof(allow), "%s,%s", target, dtarget);
    struct cf_running r;
    cf_start(&r, pport, allow);

    struct cf_peer ctl, data;
    cf_control_up(&ctl, lfd);

    /* An allowed target: a data connection with the stream's preamble, the token. */
    uint8_t token[BRIDGE_TOKEN_LEN];
    char tokhex[2 * BRIDGE_TOKEN_LEN + 1];
    for (size_t i = 0; i < sizeof(token); i++)
        token[i] = (uint8_t)(i * 7 + 1);
    bridge_token_format(token, tokhex);
    const char *open1[] = {"stream", "00000000000000a1", "token", tokhex, "target", target, NULL};
    cf_peer_send_frame(&ctl, BRIDGE_OPEN, open1);
    cf_peer_accept(&data, lfd, 0xa1);
    uint8_t got[BRIDGE_TOKEN_LEN];
    cf_peer_read(&data, got, sizeof(got));
    ck_assert_mem_eq(got, token, sizeof(token));

    /* 200 KB through, echoed back byte-exact. */
    static uint8_t big[200000], back[200000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 31 + (i >> 9));
    ck_assert_int_eq(tlsio_write(&data.t, big, sizeof(big)), 0);
    cf_peer_flush(&data);
    cf_peer_read(&data, back, sizeof(back));
    ck_assert_mem_eq(back, big, sizeof(big));

    /* Over --max-streams (1 from here on; the loop reads it only when an OPEN
     * comes, after this write): FAIL, while a1 stays open. */
    r.o.max_streams = 1;
    const char *open4[] = {"stream", "00000000000000a4", "token", tokhex, "target", target, NULL};
    cf_peer_send_frame(&ctl, BRIDGE_OPEN, open4);
    ck_assert_int_eq(cf_peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_FAIL);
    cf_payload_is(payload, "stream", "00000000000000a4");
    cf_payload_is(payload, "code", "error");
    ck_assert_msg(strstr(payload, "its --max-streams limit") != NULL, "%s", payload);
    r.o.max_streams = 1000;
    cf_peer_close(&data);

    /* Not on the list. */
    const char *open2[] = {"stream", "00000000000000a2", "token", tokhex,
                           "target", "127.0.0.1:1",      NULL};
    cf_peer_send_frame(&ctl, BRIDGE_OPEN, open2);
    ck_assert_int_eq(cf_peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_FAIL);
    cf_payload_is(payload, "stream", "00000000000000a2");
    cf_payload_is(payload, "code", "not_allowed");
    cf_payload_is(payload, "message", "127.0.0.1:1 is not on this connector's --allow list");

    /* On the list, nobody listening. */
    const char *open3[] = {"stream", "00000000000000a3", "token", tokhex, "target", dtarget, NULL};
    cf_peer_send_frame(&ctl, BRIDGE_OPEN, open3);
    ck_assert_int_eq(cf_peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_FAIL);
    cf_payload_is(payload, "stream", "00000000000000a3");
    cf_payload_is(payload, "code", "unreachable");
    ck_assert_msg(strstr(payload, "connection refused") != NULL, "%s", payload);
    ck_assert_msg(strstr(payload, dtarget) != NULL, "%s", payload);

    /* Stop: BYE, then the end of the control connection. */
    connector_stop(r.cn);
    ck_assert_int_eq(cf_peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_BYE);
    cf_stop(&r);
    cf_peer_close(&ctl);
    pthread_join(e.th, NULL);
    close(e.lfd);
    close(lfd);

    ck_assert(cf_log_find("event=tunnel_up", "connector=unit-conn", line, sizeof(line)));
    ck_assert_msg(strstr(line, "bridge=unit-bridge") && strstr(line, "connector_number=3"), "%s",
                  line);
    ck_assert(cf_log_find("event=stream_open", "stream=00000000000000a1", line, sizeof(line)));
    ck_assert(cf_log_wait("event=stream_closed", "stream=00000000000000a1", line, sizeof(line)));
    ck_assert_msg(strstr(line, "bytes_to_target=200000 bytes_from_target=200000"), "%s", line);
    ck_assert(cf_log_find("event=stream_refused", "code=not_allowed", line, sizeof(line)));
    ck_assert(cf_log_find("event=stream_failed", "code=unreachable", line, sizeof(line)));
    /* The secret never reaches the log. */
    ck_assert(!cf_log_has("unit-s3cret"));
}
END_TEST

/* REJECT is logged with its reason and the connector tries again. */
START_TEST(test_reject_then_reconnect)
{
    uint16_t pport;
    int lfd = cf_listen(&pport);
    char payload[BRIDGE_FRAME_MAX + 1], line[2048];
    struct cf_running r;
    cf_start(&r, pport, "127.0.0.1:5432");
    struct cf_peer ctl;
    cf_peer_accept(&ctl, lfd, 0);
    ck_assert_int_eq(cf_peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_HELLO);
    const char *kv[] = {"reason", "unknown bridge id or wrong secret", NULL};
    cf_peer_send_frame(&ctl, BRIDGE_REJECT, kv);
    cf_peer_close(&ctl);
    /* Back within the backoff (0.25..0.5 s for the first retry). */
    cf_control_up(&ctl, lfd);
    ck_assert(cf_log_wait("event=tunnel_up", NULL, line, sizeof(line)));
    cf_stop(&r);
    cf_peer_close(&ctl);
    close(lfd);
    ck_assert(cf_log_find("event=tunnel_rejected", "unknown bridge id or wrong secret", line,
                          sizeof(line)));
    ck_assert(cf_log_find("event=tunnel_up", NULL, line, sizeof(line)));
}
END_TEST

/* A certificate for another name: refused, and the log says which name. */
START_TEST(test_wrong_name_refused)
{
    uint16_t pport;
    int lfd = cf_listen(&pport);
    char line[2048], err[512], addr[32];
    struct cf_running r;
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", pport);
    const char *argv[] = {"connector",
                          "--bridge-address",
                          addr,
                          "--bridge-id",
                          "b",
                          "--bridge-ca-path",
                          cf_ca_file,
                          "--allow",
                          "127.0.0.1:5432",
                          "--bridge-secret",
                          "x",
                          NULL};
    FILE *out = fopen("/dev/null", "w");
    ck_assert_int_eq(connector_opts_parse(&r.o, sizeof(argv) / sizeof(argv[0]) - 1, (char **)argv,
                                          NULL, out, err, sizeof(err)),
                     CONNECTOR_RUN);
    fclose(out);
    r.cn = connector_new(&r.o, false, err, sizeof(err));
    ck_assert_ptr_nonnull(r.cn);
    ck_assert_int_eq(pthread_create(&r.th, NULL, cf_run_main, &r), 0);
    /* The connector checks 127.0.0.1; the certificate says localhost. */
    int fd = cf_accept_within(lfd, CF_IO_MS);
    struct cf_peer p = {.fd = fd};
    uint8_t pre[BRIDGE_PREAMBLE_LEN];
    cf_read_exact(fd, pre, sizeof(pre));
    ck_assert_int_eq(tlsio_init(&p.t, cf_srv_ctx, true, err, sizeof(err)), 0);
    for (int i = 0; i < 10 && tlsio_handshake(&p.t) == TLS_WANT; i++) {
        cf_peer_flush(&p);
        if (!cf_peer_recv(&p))
            break;
    }
    tlsio_free(&p.t);
    close(fd);
    (void)cf_log_wait("event=tunnel_failed", "verify", line, sizeof(line));
    cf_stop(&r);
    close(lfd);
    ck_assert(cf_log_find("event=tunnel_failed", "certificate verify failed", line, sizeof(line)));
    ck_assert_msg(strstr(line, "name checked: 127.0.0.1") != NULL, "%s", line);
}
END_TEST

/* One HTTP GET to 127.0.0.1:port; the whole response into out. */
static void http_get(uint16_t port, const char *path, char *out, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    size_t got = 0;
    ssize_t r;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    while (got + 1 < cap && poll(&pf, 1, CF_IO_MS) == 1 &&
           (r = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    out[got] = '\0';
    close(fd);
}

/* --health-address: 503 with the reason until WELCOME, then 200 "ok". */
START_TEST(test_health_endpoint)
{
    uint16_t pport, hport;
    int lfd = cf_listen(&pport);
    int h = cf_listen(&hport);
    close(h); /* a free port for the endpoint */
    char addr[32], hp[16], err[512], body[2048];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", pport);
    snprintf(hp, sizeof(hp), "%u", hport);
    struct cf_running r;
    const char *argv[] = {"connector",
                          "--bridge-address",
                          addr,
                          "--bridge-id",
                          "unit-bridge",
                          "--bridge-ca-path",
                          cf_ca_file,
                          "--bridge-tls-validation-host",
                          "localhost",
                          "--allow",
                          "127.0.0.1:5432",
                          "--connector-name",
                          "unit-conn",
                          "--health-address",
                          hp,
                          "--bridge-secret",
                          "unit-s3cret",
                          NULL};
    FILE *out = fopen("/dev/null", "w");
    ck_assert_int_eq(connector_opts_parse(&r.o, sizeof(argv) / sizeof(argv[0]) - 1, (char **)argv,
                                          NULL, out, err, sizeof(err)),
                     CONNECTOR_RUN);
    fclose(out);
    r.cn = connector_new(&r.o, false, err, sizeof(err));
    ck_assert_msg(r.cn != NULL, "%s", err);
    ck_assert_int_eq(pthread_create(&r.th, NULL, cf_run_main, &r), 0);

    http_get(hport, "/healthz", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 503 ", 13) == 0, "%s", body);
    ck_assert_msg(strstr(body, "\r\n\r\ntunnel down: ") != NULL, "%s", body);

    struct cf_peer ctl;
    cf_control_up(&ctl, lfd);
    char line[2048];
    ck_assert(cf_log_wait("event=tunnel_up", NULL, line, sizeof(line)));
    http_get(hport, "/healthz", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 200 ", 13) == 0, "%s", body);
    ck_assert_msg(strstr(body, "\r\n\r\nok\n") != NULL, "%s", body);
    http_get(hport, "/readyz", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 200 ", 13) == 0, "%s", body);
    http_get(hport, "/metrics", body, sizeof(body));
    ck_assert_msg(strstr(body, "\npgtp_connector_tunnel_up 1\n") != NULL, "%s", body);
    http_get(hport, "/nope", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 404 ", 13) == 0, "%s", body);

    /* The proxy goes away: 503 again, with why. */
    cf_peer_close(&ctl);
    ck_assert(cf_log_wait("event=tunnel_down", NULL, line, sizeof(line)));
    http_get(hport, "/healthz", body, sizeof(body));
    ck_assert_msg(strncmp(body, "HTTP/1.1 503 ", 13) == 0, "%s", body);
    ck_assert_msg(strstr(body, "tunnel down: ") != NULL, "%s", body);
    cf_stop(&r);
    close(lfd);
}
END_TEST

Suite *connector_loop_suite(void)
{
    Suite *s = suite_create("connector_loop");
    TCase *tc = tcase_create("loop");
    tcase_add_checked_fixture(tc, cf_setup, cf_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_open_echo_and_refusals);
    tcase_add_test(tc, test_reject_then_reconnect);
    tcase_add_test(tc, test_wrong_name_refused);
    tcase_add_test(tc, test_health_endpoint);
    suite_add_tcase(s, tc);
    return s;
}
