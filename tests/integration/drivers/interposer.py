"""A TLS interposer between the proxy and PostgreSQL, for tests/integration/auth.sh.

    python3 interposer.py LISTEN_PORT UPSTREAM_PORT CERT KEY CA

Accepts on 127.0.0.1:LISTEN_PORT. A client's SSLRequest is answered 'S' and
TLS is terminated with CERT/KEY (a certificate for "localhost" from the
same CA as PostgreSQL's, so a verify-full client trusts it, but a different
certificate, so its tls-server-end-point hash differs). The interposer then
opens its own SSLRequest + TLS connection to 127.0.0.1:UPSTREAM_PORT
(verifying PostgreSQL's certificate against CA) and relays bytes both ways.
This is the man in the middle that channel binding exists to catch: a SCRAM
exchange bound to CERT fails at PostgreSQL, one bound to nothing passes.
Prints "listening" once ready, and one line per connection it relayed.
"""

import socket
import ssl
import struct
import sys
import threading

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


def recv_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("peer closed")
        data += chunk
    return data


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for sock in (src, dst):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client, front_ctx, back_ctx, upstream_port):
    upstream = None
    try:
        client.settimeout(30)
        head = recv_exact(client, 8)
        length, code = struct.unpack("!II", head)
        if code == GSSENC_REQUEST:
            client.sendall(b"N")
            head = recv_exact(client, 8)
            length, code = struct.unpack("!II", head)
        upstream = socket.create_connection(("127.0.0.1", upstream_port), timeout=30)
        if code == SSL_REQUEST and length == 8:
            client.sendall(b"S")
            client = front_ctx.wrap_socket(client, server_side=True)
            upstream.sendall(struct.pack("!II", 8, SSL_REQUEST))
            if recv_exact(upstream, 1) != b"S":
                raise ConnectionError("upstream refused TLS")
            upstream = back_ctx.wrap_socket(upstream, server_hostname="localhost")
            kind = "tls"
        else:  # a plaintext CancelRequest or StartupMessage: relayed as it is
            upstream.sendall(head)
            kind = "plaintext"
        client.settimeout(None)
        upstream.settimeout(None)
        print("relaying %s" % kind, flush=True)
        other = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        other.start()
        pump(client, upstream)
        other.join()
    except (OSError, ConnectionError, ssl.SSLError) as exc:
        print("connection ended: %s" % exc, flush=True)
    finally:
        for sock in (client, upstream):
            if sock is not None:
                sock.close()


def main():
    if len(sys.argv) != 6:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    listen_port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    front_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    front_ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    back_ctx = ssl.create_default_context(cafile=sys.argv[5])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", listen_port))
    listener.listen(64)
    print("listening", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(
            target=serve, args=(client, front_ctx, back_ctx, upstream_port), daemon=True
        ).start()


if __name__ == "__main__":
    sys.exit(main())
