"""Many sessions through pg-tls-proxy: a stub upstream and a many-session client.

Used by scripts/bench-conns.sh (memory per session) and by the load section
of the integration tests (tests/integration/load.sh).

    conns.py stub   --port P --cert C --key K --pg-port P --relay-user U
    conns.py client --port P --ca CA --ctl DIR --stages full:M,stub:K,pre:J|front:F
                    [--user U --db D --password-file F] [--conc C] [--auto] [--ping]

One process, one selectors loop, one generator per session: a session
costs its socket, its OpenSSL object and a few KB of Python, so 10,000 of
them fit in one small process.

stub: answers SSLRequest with 'S', completes TLS with C/K, reads the
StartupMessage. For user U it connects to PostgreSQL on 127.0.0.1:pg-port
(plaintext, loopback) and relays both ways, so SCRAM runs end to end
between the client and PostgreSQL. Any other user gets AuthenticationOk,
ParameterStatus, BackendKeyData and ReadyForQuery, and an empty
CommandComplete for each Query: a session that costs no backend.

client: opens the stages one after another (at most --conc handshakes in
flight, 30 s per session), each session SSLRequest + verified TLS
(server name localhost, CA --ca), then
    full   StartupMessage for --user/--db, SCRAM-SHA-256 without channel
           binding, SELECT 1
    stub   StartupMessage for user "stub" (answered by the stub)
    front  nothing more: TLS up, no StartupMessage
    pre    no TLS yet: TCP up and the first 4 of the 8 bytes of SSLRequest
           sent, then parked (the proxy holds one descriptor and no upstream
           leg for it); a pre session that hears anything from the proxy
           while parked counts as closed by the peer
After each stage it writes DIR/<stage>.done (key=value lines) and waits for
DIR/<stage>.go; then it waits for DIR/release (with --auto it waits for
nothing), optionally pings every session (--ping: a Query, answered by
ReadyForQuery), writes DIR/final and closes everything but the pre sessions. If there are any,
it then writes DIR/others.closed, waits for DIR/pre.resume, and every pre
session finishes its start-up as a stub session (rest of SSLRequest, TLS,
StartupMessage) and sends a Query that must be answered by ReadyForQuery;
DIR/final-pre says how many were answered, then all are closed. DIR/status
is rewritten every second. Every wait is bounded (--max-wait seconds).
"""
import argparse
import base64
import errno
import hashlib
import hmac
import os
import resource
import selectors
import signal
import socket
import ssl
import statistics
import struct
import sys
import time

R, W = selectors.EVENT_READ, selectors.EVENT_WRITE
SSL_REQUEST_CODE = 80877103
RESUME = "resume"  # what a parked pre session is woken with
OPEN_TIMEOUT = 30.0


class Closed(Exception):
    """The peer closed the connection."""


def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ---------------------------------------------------------------- event loop
class Loop:
    """Runs generators that yield lists of (socket, event) to wait for."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.waits = {}
        self.done = {}

    def spawn(self, gen, done):
        self.done[gen] = done
        self._step(gen, None)

    def _step(self, gen, val):
        try:
            want = gen.send(val)
        except StopIteration:
            self._finish(gen, None)
            return
        except Exception as e:  # noqa: BLE001 - reported per session
            self._finish(gen, e)
            return
        socks = []
        for sock, ev in want:
            self.sel.register(sock, ev, gen)
            socks.append(sock)
        self.waits[gen] = socks

    def _finish(self, gen, exc):
        cb = self.done.pop(gen, None)
        if cb is not None:
            cb(exc)

    def _unwait(self, gen):
        for s in self.waits.pop(gen, ()):
            try:
                self.sel.unregister(s)
            except (KeyError, ValueError):
                pass

    def resume(self, gen, val):
        """Wake a parked generator with VAL, whatever it was waiting for."""
        if gen not in self.done:
            return
        self._unwait(gen)
        self._step(gen, val)

    def kill(self, gen, why):
        if gen not in self.done:
            return
        self._unwait(gen)
        gen.close()
        self._finish(gen, Closed(why))

    def run(self, timeout):
        for key, _ in self.sel.select(timeout):
            gen = key.data
            if callable(gen):  # a listener
                gen()
                continue
            if gen not in self.waits:
                continue
            self._unwait(gen)
            self._step(gen, key.fileobj)


# ---------------------------------------------------------------- I/O helpers
def connect(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        rc = s.connect_ex(("127.0.0.1", port))
        if rc not in (0, errno.EINPROGRESS):
            raise OSError(rc, os.strerror(rc))
        if rc:
            yield [(s, W)]
            rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if rc:
                raise OSError(rc, os.strerror(rc))
    except BaseException:
        s.close()
        raise
    return s


def send_all(sock, data):
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except (BlockingIOError, ssl.SSLWantWriteError):
            yield [(sock, W)]
        except ssl.SSLWantReadError:
            yield [(sock, R)]


def recv_some(sock):
    while True:
        try:
            b = sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError):
            yield [(sock, R)]
            continue
        except ssl.SSLWantWriteError:
            yield [(sock, W)]
            continue
        if not b:
            raise Closed("connection closed by peer")
        return b


def handshake(ss):
    while True:
        try:
            ss.do_handshake()
            return
        except ssl.SSLWantReadError:
            yield [(ss, R)]
        except ssl.SSLWantWriteError:
            yield [(ss, W)]


class Buf:
    def __init__(self, sock, data=b""):
        self.sock = sock
        self.b = bytearray(data)

    def need(self, n):
        while len(self.b) < n:
            self.b += yield from recv_some(self.sock)

    def msg(self):
        """One typed protocol message: (type, body)."""
        yield from self.need(5)
        ln = struct.unpack_from("!I", self.b, 1)[0]
        if ln < 4 or ln > 1 << 24:
            raise ValueError("bad message length %d" % ln)
        yield from self.need(1 + ln)
        t, body = chr(self.b[0]), bytes(self.b[5:1 + ln])
        del self.b[:1 + ln]
        return t, body

    def startup(self):
        """One untyped start-up packet, length included."""
        yield from self.need(4)
        ln = struct.unpack_from("!I", self.b)[0]
        if ln < 8 or ln > 10000:
            raise ValueError("bad start-up packet length %d" % ln)
        yield from self.need(ln)
        pkt = bytes(self.b[:ln])
        del self.b[:ln]
        return pkt


def pg_msg(t, body):
    return t.encode() + struct.pack("!I", len(body) + 4) + body


def startup_packet(params):
    body = struct.pack("!I", 196608)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def error_text(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return "%s %s" % (fields.get("C", "?"), fields.get("M", ""))


# ---------------------------------------------------------------- SCRAM
class Scram:
    salted = {}  # (password, salt, iterations) -> SaltedPassword: PBKDF2 once

    def __init__(self, password):
        self.pw = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = "n=,r=" + self.nonce
        self.auth = self.server_key = None

    def first(self):
        return ("n,," + self.bare).encode()

    def final(self, data):
        server_first = data.decode()
        a = dict(x.split("=", 1) for x in server_first.split(","))
        if not a["r"].startswith(self.nonce):
            raise RuntimeError("SCRAM: server nonce does not extend ours")
        salt, it = base64.b64decode(a["s"]), int(a["i"])
        key = (self.pw, salt, it)
        if key not in Scram.salted:
            Scram.salted[key] = hashlib.pbkdf2_hmac("sha256", self.pw, salt, it)
        salted = Scram.salted[key]
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + a["r"]  # biws = base64("n,,"): no channel binding
        self.auth = ",".join((self.bare, server_first, without_proof)).encode()
        sig = hmac.new(stored_key, self.auth, "sha256").digest()
        proof = bytes(x ^ y for x, y in zip(client_key, sig))
        self.server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify(self, data):
        v = dict(x.split("=", 1) for x in data.decode().split(","))["v"]
        want = hmac.new(self.server_key, self.auth, "sha256").digest()
        if not hmac.compare_digest(base64.b64decode(v), want):
            raise RuntimeError("SCRAM: wrong server signature")


def login(ss, buf, password):
    sc = None
    while True:
        t, body = yield from buf.msg()
        if t == "E":
            raise RuntimeError(error_text(body))
        if t == "Z":
            return
        if t != "R":
            continue  # ParameterStatus, BackendKeyData, NoticeResponse
        code = struct.unpack_from("!I", body)[0]
        if code == 0:
            continue
        if code == 10:
            if password is None or b"SCRAM-SHA-256" not in body[4:].split(b"\0"):
                raise RuntimeError("server wants SASL %r" % body[4:])
            sc = Scram(password)
            first = sc.first()
            yield from send_all(ss, pg_msg("p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
        elif code == 11 and sc is not None:
            yield from send_all(ss, pg_msg("p", sc.final(body[4:])))
        elif code == 12 and sc is not None:
            sc.verify(body[4:])
        else:
            raise RuntimeError("unsupported authentication request %d" % code)


# ---------------------------------------------------------------- stub upstream
def stub_main(a):
    hard = raise_nofile()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    loop = Loop()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.port))
    lsock.listen(4096)
    lsock.setblocking(False)
    counts = {"accepted": 0, "relayed": 0, "stubbed": 0, "errors": 0}
    next_pid = [100000]

    def pump(ss, pg, pending):
        if pending:
            yield from send_all(pg, pending)
        while True:
            got = yield [(ss, R), (pg, R)]
            if got is ss:
                while True:  # everything OpenSSL holds, not just one record
                    try:
                        data = ss.recv(65536)
                    except (ssl.SSLWantReadError, BlockingIOError):
                        break
                    if not data:
                        return
                    yield from send_all(pg, data)
            else:
                try:
                    data = pg.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    return
                yield from send_all(ss, data)

    def session(conn):
        socks = [conn]
        try:
            buf = Buf(conn)
            pkt = yield from buf.startup()
            if struct.unpack_from("!I", pkt, 4)[0] != SSL_REQUEST_CODE or buf.b:
                raise RuntimeError("expected a lone SSLRequest")
            yield from send_all(conn, b"S")
            ss = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            socks = [ss]
            yield from handshake(ss)
            buf = Buf(ss)
            pkt = yield from buf.startup()
            parts = pkt[8:].split(b"\0")
            params = dict(zip(parts[0::2], parts[1::2]))
            if params.get(b"user", b"").decode() == a.relay_user:
                counts["relayed"] += 1
                pg = yield from connect(a.pg_port)
                socks.append(pg)
                yield from pump(ss, pg, pkt + bytes(buf.b))
                return
            counts["stubbed"] += 1
            next_pid[0] += 1
            out = pg_msg("R", struct.pack("!I", 0))
            for k, v in ((b"server_version", b"15.0 (bench-conns stub)"), (b"client_encoding", b"UTF8"),
                         (b"DateStyle", b"ISO, MDY"), (b"integer_datetimes", b"on")):
                out += pg_msg("S", k + b"\0" + v + b"\0")
            out += pg_msg("K", struct.pack("!I", next_pid[0]) + os.urandom(4))
            out += pg_msg("Z", b"I")
            yield from send_all(ss, out)
            while True:
                t, _ = yield from buf.msg()
                if t == "X":
                    return
                if t == "Q":
                    yield from send_all(ss, pg_msg("C", b"SELECT 0\0") + pg_msg("Z", b"I"))
        finally:
            for s in socks:
                s.close()

    def done(exc):
        if exc is not None and not isinstance(exc, Closed):
            counts["errors"] += 1
            if counts["errors"] <= 5:
                print("stub: session error: %r" % exc, file=sys.stderr, flush=True)

    def accept():
        for _ in range(256):
            try:
                conn, _ = lsock.accept()
            except BlockingIOError:
                return
            except OSError as e:  # EMFILE and friends: report, keep serving
                print("stub: accept: %s" % e, file=sys.stderr, flush=True)
                return
            conn.setblocking(False)
            counts["accepted"] += 1
            loop.spawn(session(conn), done)

    loop.sel.register(lsock, R, accept)
    print("stub: listening on 127.0.0.1:%d (RLIMIT_NOFILE %d)" % (a.port, hard), flush=True)
    last = time.monotonic()
    while True:
        loop.run(1.0)
        if time.monotonic() - last >= 10:
            last = time.monotonic()
            print("stub: %s" % counts, flush=True)


# ---------------------------------------------------------------- client
class Sess:
    __slots__ = ("kind", "sock", "gen", "state", "t0", "t_open", "t_closed", "err", "ping", "pong")

    def __init__(self, kind):
        self.kind, self.sock, self.gen, self.state = kind, None, None, "opening"
        self.t0 = time.monotonic()
        self.t_open = self.t_closed = self.err = None
        self.ping = self.pong = False


def client_main(a):
    raise_nofile()
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=a.ca)
    password = None
    if a.password_file:
        with open(a.password_file) as f:
            password = f.read().strip()
    loop = Loop()
    sessions = []
    stages = []
    for part in a.stages.split(","):
        kind, n = part.split(":")
        if kind not in ("full", "stub", "front", "pre"):
            raise SystemExit("unknown stage kind %r" % kind)
        stages.append((kind, int(n)))

    def session(st):
        s = yield from connect(a.port)
        st.sock = s
        if st.kind == "pre":
            yield from send_all(s, struct.pack("!I", 8))
            st.state, st.t_open = "open", time.monotonic()
            got = yield [(s, R)]  # parked until resumed
            if got is not RESUME:
                b = s.recv(4096)
                raise Closed("pre session: the proxy %s while it waited for the rest of SSLRequest"
                             % ("closed it" if not b else "sent %r" % b[:60]))
            yield from send_all(s, struct.pack("!I", SSL_REQUEST_CODE))
        else:
            yield from send_all(s, struct.pack("!II", 8, SSL_REQUEST_CODE))
        b = yield from recv_some(s)
        if b != b"S":
            raise RuntimeError("answer to SSLRequest: %r" % b[:40])
        ss = ctx.wrap_socket(s, server_hostname="localhost", do_handshake_on_connect=False)
        st.sock = ss
        yield from handshake(ss)
        buf = Buf(ss)
        if st.kind != "front":
            user, db = (a.user, a.db) if st.kind == "full" else ("stub", "stub")  # pre too
            yield from send_all(ss, startup_packet({"user": user, "database": db,
                                                    "application_name": "bench-conns"}))
            yield from login(ss, buf, password if st.kind == "full" else None)
            if st.kind == "full":
                yield from send_all(ss, pg_msg("Q", b"SELECT 1\0"))
                yield from login(ss, buf, None)  # reads up to ReadyForQuery
        if st.kind == "pre":
            yield from send_all(ss, pg_msg("Q", b"SELECT 1\0"))
            yield from login(ss, buf, None)
            st.pong = True
        else:
            st.state, st.t_open = "open", time.monotonic()
        while True:  # idle: only answers to our pings, or the proxy's goodbye
            t, body = yield from buf.msg()
            if t == "E":
                st.err = error_text(body)
            elif t == "Z" and st.ping:
                st.pong = True

    def make_done(st):
        def done(exc):
            if st.state == "opening":
                st.state, st.err = "failed", st.err or repr(exc)
            elif st.state == "open":
                st.state, st.t_closed = "closed", time.monotonic()
                if st.kind == "pre" and exc is not None and not st.err:
                    st.err = str(exc) or repr(exc)
            if st.sock is not None:
                st.sock.close()
        return done

    def counts():
        c = {}
        for st in sessions:
            k = st.kind + "_" + st.state
            c[k] = c.get(k, 0) + 1
        return c

    last_status = [0.0]

    def tick(timeout=0.2):
        loop.run(timeout)
        now = time.monotonic()
        if now - last_status[0] >= 1.0:
            last_status[0] = now
            write_kv("status", counts())

    def write_kv(name, d):
        path = os.path.join(a.ctl, name)
        with open(path + ".tmp", "w") as f:
            for k, v in d.items():
                f.write("%s=%s\n" % (k, v))
        os.replace(path + ".tmp", path)

    def wait_until(deadline, cond):
        """Run the loop until cond() or the deadline. cond walks every
        session, so it is checked every 0.1 s, not after every event."""
        while time.monotonic() < deadline:
            if cond():
                return
            until = time.monotonic() + 0.1
            while time.monotonic() < until:
                tick(0.05)

    def wait_file(name):
        deadline = time.monotonic() + a.max_wait
        while not a.auto and not os.path.exists(os.path.join(a.ctl, name)):
            if time.monotonic() > deadline:
                print("client: gave up waiting for %s" % name, file=sys.stderr, flush=True)
                return
            tick()

    for kind, n in stages:
        t0 = time.monotonic()
        todo, inflight, mine = n, [], []
        deadline = t0 + max(120.0, n / 20.0)
        while (todo > 0 or inflight) and time.monotonic() < deadline:
            while todo > 0 and len(inflight) < a.conc:
                st = Sess(kind)
                st.gen = session(st)
                sessions.append(st)
                mine.append(st)
                inflight.append(st)
                todo -= 1
                loop.spawn(st.gen, make_done(st))
            tick(0.05)
            now = time.monotonic()
            for st in inflight:
                if st.state == "opening" and now - st.t0 > OPEN_TIMEOUT:
                    st.err = "no session after %.0f s" % OPEN_TIMEOUT
                    loop.kill(st.gen, st.err)
            inflight = [st for st in inflight if st.state == "opening"]
        for st in inflight:
            st.err = st.err or "stage timed out"
            loop.kill(st.gen, st.err)
        opened = [st for st in mine if st.t_open is not None]
        errors = [st.err for st in mine if st.state == "failed"]
        setup = sorted(st.t_open - st.t0 for st in opened)
        write_kv(kind + ".done", {
            "wanted": n, "opened": len(opened), "failed": len(errors),
            "seconds": "%.2f" % (time.monotonic() - t0),
            "setup_ms_median": "%.1f" % (1000 * statistics.median(setup)) if setup else "-",
            "first_error": (errors[0] if errors else "").replace("\n", " ")[:300],
        })
        print("client: stage %s: %d/%d open in %.1f s%s" % (
            kind, len(opened), n, time.monotonic() - t0,
            "; first error: %s" % errors[0] if errors else ""), flush=True)
        wait_file(kind + ".go")

    wait_file("release")
    final = counts()
    if a.ping:
        live = [st for st in sessions if st.state == "open" and st.kind not in ("front", "pre")]
        for st in live:
            try:
                st.sock.send(pg_msg("Q", b"SELECT 1\0"))
                st.ping = True
            except (OSError, ssl.SSLError):
                pass
        deadline = time.monotonic() + 30
        wait_until(deadline, lambda: not any(st.ping and not st.pong and st.state == "open" for st in live))
        for kind in ("full", "stub"):
            final[kind + "_answered_ping"] = sum(1 for st in live if st.kind == kind and st.pong)
    closed = [st for st in sessions if st.state == "closed"]
    for kind in ("full", "stub", "front", "pre"):
        ages = sorted(st.t_closed - st.t_open for st in closed if st.kind == kind)
        if ages:
            final[kind + "_closed_by_peer"] = len(ages)
            final[kind + "_closed_after_s"] = "%.1f/%.1f/%.1f" % (ages[0], statistics.median(ages), ages[-1])
            msgs = sorted({st.err for st in closed if st.kind == kind and st.err})
            final[kind + "_close_message"] = (msgs[0] if msgs else "(none)")[:300]
    write_kv("final", final)
    for st in sessions:
        if st.state == "open" and st.kind != "pre":
            loop.kill(st.gen, "released")  # make_done closes the socket (FIN to the proxy)
    print("client: done: %s" % final, flush=True)
    pre = [st for st in sessions if st.kind == "pre" and st.state == "open"]
    if any(st.kind == "pre" for st in sessions):
        write_kv("others.closed", {"pre_open": len(pre)})
        wait_file("pre.resume")
        for st in pre:
            loop.resume(st.gen, RESUME)
        deadline = time.monotonic() + max(60.0, len(pre) / 20.0)
        wait_until(deadline, lambda: not any(st.state == "open" and not st.pong for st in pre))
        errs = sorted({st.err for st in pre if st.err})
        fin = {"pre_resumed": len(pre), "pre_answered": sum(1 for st in pre if st.pong),
               "pre_first_error": (errs[0] if errs else "").replace("\n", " ")[:300]}
        write_kv("final-pre", fin)
        for st in pre:
            if st.state == "open":
                loop.kill(st.gen, "released")
        print("client: pre sessions: %s" % fin, flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("stub")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--pg-port", type=int, required=True)
    s.add_argument("--relay-user", required=True)
    c = sub.add_parser("client")
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--ca", required=True)
    c.add_argument("--ctl", required=True)
    c.add_argument("--stages", required=True)
    c.add_argument("--user", default="bench")
    c.add_argument("--db", default="bench")
    c.add_argument("--password-file")
    c.add_argument("--conc", type=int, default=64)
    c.add_argument("--max-wait", type=float, default=600)
    c.add_argument("--auto", action="store_true")
    c.add_argument("--ping", action="store_true")
    a = p.parse_args()
    # SIGTERM is how the scripts stop us: a clean exit (status 0), like a daemon.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if a.mode == "stub":
        stub_main(a)
    else:
        client_main(a)


if __name__ == "__main__":
    main()
