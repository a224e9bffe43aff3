/*
 * test_connector_flow.c - the connector's streams under pressure, with the
 * harness of connector_fixture.c: backpressure both ways (a target and a
 * proxy that stop reading), and a control connection that dies while a
 * stream keeps working, then a stop that lets the stream finish.
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
#include "connector_int.h" /* peak_queued */

/* A target that reads nothing for a second, then checks BULK bytes of
 * cf_pattern(i) and sends BULK bytes of cf_pattern(i + 1) back. */
#define BULK (5u << 20)

struct slow {
    int lfd;
    pthread_t th;
    bool ok;
};

static void *slow_main(void *arg)
{
    struct slow *t = arg;
    static uint8_t buf[65536];
    int fd = accept(t->lfd, NULL, NULL);
    size_t got = 0;
    bool same = fd >= 0;
    sleep(1); /* everything the proxy sends piles up in front of us */
    while (same && got < BULK) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (ssize_t k = 0; k < n && same; k++)
            same = buf[k] == cf_pattern(got + (size_t)k, 0);
        got += (size_t)n;
    }
    for (size_t off = 0; same && off < BULK;) {
        size_t n = BULK - off < sizeof(buf) ? BULK - off : sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = cf_pattern(off + k, 1);
        ssize_t w = write(fd, buf, n);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    t->ok = same && got == BULK;
    if (fd >= 0)
        close(fd);
    return NULL;
}

/*
 * Backpressure both ways: 5 MB to a target that does not read for a
 * second, 5 MB back to a proxy that does not read for a second. Both
 * arrive byte-exact, and the connector never queued much more than the
 * high-water mark for one side (one read more, TLS framing).
 */
START_TEST(test_backpressure)
{
    uint16_t pport, tport;
    int lfd = cf_listen(&pport);
    struct slow t = {.lfd = cf_listen(&tport)};
    /* Small receive buffers (inherited by the accepted sockets), so that
     * a few MB are enough to fill the kernel's part and reach ours. */
    int small = 32768;
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    setsockopt(t.lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    ck_assert_int_eq(pthread_create(&t.th, NULL, slow_main, &t), 0);
    char target[32], tokhex[2 * BRIDGE_TOKEN_LEN + 1];
    uint8_t token[BRIDGE_TOKEN_LEN] = {1, 2, 3}, got[BRIDGE_TOKEN_LEN];
    snprintf(target, sizeof(target), "127.0.0.1:%u", tport);
    bridge_token_format(token, tokhex);
    struct cf_running r;
    cf_start(&r, pport, target);
    struct cf_peer ctl, data;
    cf_control_up(&ctl, lfd);
    const char *open1[] = {"stream", "00000000000000b1", "token", tokhex, "target", target, NULL};
    cf_peer_send_frame(&ctl, BRIDGE_OPEN, open1);
    cf_peer_accept(&data, lfd, 0xb1);
    cf_peer_read(&data, got, sizeof(got));

    static uint8_t chunk[65536];
    for (size_t off = 0; off < BULK; off += sizeof(chunk)) {
        for (size_t k = 0; k < sizeof(chunk); k++)
            chunk[k] = cf_pattern(off + k, 0);
        ck_assert_int_eq(tlsio_write(&data.t, chunk, sizeof(chunk)), 0);
        cf_peer_flush(&data); /* blocks while the connector holds back */
    }
    sleep(1); /* now we are the slow reader */
    static uint8_t want[sizeof(chunk)];
    for (size_t off = 0; off < BULK; off += sizeof(chunk)) {
        cf_peer_read(&data, chunk, sizeof(chunk));
        for (size_t k = 0; k < sizeof(chunk); k++)
            want[k] = cf_pattern(off + k, 1);
        ck_assert_msg(memcmp(chunk, want, sizeof(chunk)) == 0, "bytes from %zu differ", off);
    }
    pthread_join(t.th, NULL);
    ck_assert(t.ok);
    cf_peer_close(&data);
    connector_stop(r.cn);
    pthread_join(r.th, NULL);
    ck_assert_int_eq(r.rc, 0);
    size_t peak = r.cn->peak_queued;
    connector_free(r.cn);
    connector_opts_free(&r.o);
    cf_peer_close(&ctl);
    close(t.lfd);
    close(lfd);
    ck_assert_msg(peak > CONN_HWM, "peak %zu: the mark was not reached", peak);
    ck_assert_uint_le(peak, CONN_HWM + 2 * CONN_READ_BUF);
}
END_TEST

/*
 * The control connection dies (the proxy stops answering PINGs): the
 * connector counts it dead after 3 heartbeats, reconnects by itself, and
 * the stream already open keeps working all along. Then stop: BYE, and the
 * open stream may still finish before the connector exits.
 */
START_TEST(test_control_loss_keeps_streams)
{
    uint16_t pport, eport;
    int lfd = cf_listen(&pport);
    struct cf_echo e = {.lfd = cf_listen(&eport)};
    ck_assert_int_eq(pthread_create(&e.th, NULL, cf_echo_main, &e), 0);
    char target[32], tokhex[2 * BRIDGE_TOKEN_LEN + 1], payload[BRIDGE_FRAME_MAX + 1], line[2048];
    uint8_t token[BRIDGE_TOKEN_LEN] = {9}, got[BRIDGE_TOKEN_LEN];
    snprintf(target, sizeof(target), "127.0.0.1:%u", eport);
    bridge_token_format(token, tokhex);
    struct cf_running r;
    cf_start(&r, pport, target);
    struct cf_peer ctl, data;
    cf_control_up(&ctl, lfd);
    const char *open1[] = {"stream", "00000000000000c1", "token", tokhex, "target", target, NULL};
    cf_peer_send_frame(&ctl, BRIDGE_OPEN, open1);
    cf_peer_accept(&data, lfd, 0xc1);
    cf_peer_read(&data, got, sizeof(got));
    cf_echo_check(&data, 1000, 3);

    /* Silence: the connector PINGs every second, then gives up. */
    ctl.silent = true;
    int pings = 0;
    uint8_t type;
    while ((type = cf_peer_frame(&ctl, payload, sizeof(payload))) == BRIDGE_PING)
        pings++;
    ck_assert_int_eq(type, 0); /* closed by the connector */
    ck_assert_int_ge(pings, 2);
    cf_peer_close(&ctl);
    ck_assert(cf_log_wait("event=tunnel_dead", "streams_open=1", line, sizeof(line)));
    ck_assert_msg(strstr(line, "open streams keep running") != NULL, "%s", line);
    cf_echo_check(&data, 50000, 4);

    /* Back by itself. */
    cf_control_up(&ctl, lfd);
    cf_echo_check(&data, 2000, 5);

    /* Stop: BYE; the stream still works until it ends, then the exit. */
    connector_stop(r.cn);
    ck_assert_int_eq(cf_peer_frame(&ctl, payload, sizeof(payload)), BRIDGE_BYE);
    cf_payload_is(payload, "reason", "connector shutting down");
    cf_echo_check(&data, 3000, 6);
    cf_peer_close(&data);
    cf_stop(&r);
    cf_peer_close(&ctl);
    pthread_join(e.th, NULL);
    close(e.lfd);
    close(lfd);
    ck_assert(cf_log_find("event=stream_closed", "stream=00000000000000c1", line, sizeof(line)));
    ck_assert_msg(strstr(line, "reason=proxy_closed") != NULL, "%s", line);
}
END_TEST

Suite *connector_flow_suite(void)
{
    Suite *s = suite_create("connector_flow");
    TCase *tc = tcase_create("flow");
    tcase_add_checked_fixture(tc, cf_setup, cf_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_control_loss_keeps_streams);
    suite_add_tcase(s, tc);
    return s;
}
