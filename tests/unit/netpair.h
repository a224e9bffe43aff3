/* netpair.h - a connected loopback TCP pair for the unit tests that need real sockets. */
#ifndef PGTP_TEST_NETPAIR_H
#define PGTP_TEST_NETPAIR_H

/* fds[0]: the connecting side (blocking); fds[1]: the accepted side, made
 * with accept4's flags (SOCK_CLOEXEC, plus SOCK_NONBLOCK where a loop or
 * the bridge thread would hand it over). Fails the test on any error. */
void netpair_tcp(int fds[2], int accept_flags);

#endif
