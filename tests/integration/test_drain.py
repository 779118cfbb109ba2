"""Closing idle keep-alive connections without a reset.

A server that closes an idle keep-alive connection races the client's next
request. If that request is in the server's receive queue when it calls
close(), or arrives after it, the kernel answers with RST, and an RST tells
the client nothing safe: it may even destroy a response already received.
What RFC 9112 §9.3.1 lets a client retry is a clean FIN before any byte of
the response. So a request that crosses the close must end in one of two
ways:

  answered:  a complete response (with `Connection: close` once the server
             is stopping), then a clean EOF;
  retry:     a clean EOF before any response byte; the request, sent again
             on a new connection, is answered.

Anything else fails: a reset (counted on its own: ECONNRESET or EPIPE on
send or receive, or one that came after the FIN, which the EOF hides from
recv() but not from the socket's state), a partial response, a wrong one,
or a hang.

The tests open the window on purpose, many times over: at the instant the
drain begins (SIGTERM, with the next instance taking over the held socket,
as under `systemctl restart`), and at the instant a keep-alive timeout
expires, every idle connection writes its next request. A self-test first
shows that the client does tell a reset from a clean close, and a last test
that ending connections this way keeps a drain short.

The kernel's own counters of resets sent for unread data (TcpExt
TCPAbortOnClose, TCPAbortOnData) are printed too, for information only:
they are shared by everything running on the machine."""

import collections
import random
import selectors
import signal
import socket
import threading
import time

import pytest

from test_restart import finish, launch_activated, reset_after_eof, wait_exit

HANG = 30  # seconds: only to catch hangs
N_CONNS = 64
DRAIN_ROUNDS = 24
EXPIRY_ROUNDS = 12
KEEPALIVE_MSEC = 250
BODY = b"0123456789abcdef" * 64
REQUEST = b"GET /small.bin HTTP/1.1\r\nHost: test\r\n\r\n"


# -- the client --------------------------------------------------------------

def parse_response(buf):
    """Returns (status, headers with lower-case names, body, bytes used), or
    None while the response is incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    n = int(headers.get("content-length", "0"))
    if len(buf) < end + 4 + n:
        return None
    return int(lines[0].split(" ", 2)[1]), headers, bytes(buf[end + 4:end + 4 + n]), end + 4 + n


def says_close(headers):
    return "close" in [t.strip().lower() for t in headers.get("connection", "").split(",")]


class Tally:
    def __init__(self):
        self.requests = 0
        self.answered_close = 0      # complete, Connection: close, then EOF
        self.answered_keepalive = 0  # complete, keep-alive, later a clean EOF
        self.retries = 0             # clean EOF before any response byte
        self.retried_ok = 0          # ... and answered when sent again
        self.resets = 0
        self.reset_kinds = collections.Counter()  # how each reset showed
        self.failures = []

    def add(self, other):
        for k in ("requests", "answered_close", "answered_keepalive", "retries", "retried_ok", "resets"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.reset_kinds += other.reset_kinds
        self.failures += other.failures

    def line(self):
        return (f"requests={self.requests} answered={self.answered_close + self.answered_keepalive} "
                f"(close={self.answered_close} keep-alive={self.answered_keepalive}) "
                f"retries={self.retries} (answered again={self.retried_ok}) "
                f"resets={self.resets} ({', '.join(f'{k}={v}' for k, v in sorted(self.reset_kinds.items()))}) "
                f"failures={len(self.failures)}")


def prime(port, n):
    """n keep-alive connections, each having had one complete response.
    Returns [(socket, monotonic time the response was complete)]."""
    conns = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=HANG)
            conns.append([s, None])
            s.sendall(REQUEST)
        for c in conns:
            buf = bytearray()
            while (r := parse_response(buf)) is None:
                data = c[0].recv(65536)
                assert data, "closed while priming"
                buf += data
            status, headers, body, used = r
            assert (status, body, used) == (200, BODY, len(buf)), (status, headers)
            assert not says_close(headers), headers
            c[1] = time.monotonic()
    except BaseException:
        for c in conns:
            c[0].close()
        raise
    return [tuple(c) for c in conns]


def send_request(s, tally, st):
    """Writes the next request. A reset already there is counted."""
    tally.requests += 1
    try:
        s.sendall(REQUEST)
    except (BrokenPipeError, ConnectionResetError) as e:
        st["outcome"], st["kind"] = "reset", "on send"
        st["detail"] = f"on send: {e!r}"


def collect(socks, states, tally, timeout=HANG):
    """Reads every connection to its end (EOF or error) and classifies it.
    Returns the sockets whose request may be retried."""
    sel = selectors.DefaultSelector()
    for s, st in zip(socks, states):
        st.setdefault("buf", bytearray())
        st.setdefault("response", None)
        if "outcome" not in st:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, st)
    deadline = time.monotonic() + timeout
    while sel.get_map():
        left = deadline - time.monotonic()
        if left <= 0:
            for key in list(sel.get_map().values()):
                key.data["outcome"] = "failure"
                key.data["detail"] = f"no end within {timeout}s, got {bytes(key.data['buf'][:80])!r}"
                sel.unregister(key.fileobj)
            break
        for key, _ in sel.select(left):
            st = key.data
            try:
                data = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError as e:
                st["outcome"] = "reset"
                st["kind"] = "after the response" if st["response"] else "waiting for the response"
                st["detail"] = f"{st['kind']}: {e!r}"
                sel.unregister(key.fileobj)
                continue
            if data:
                if st["response"]:
                    st["outcome"], st["detail"] = "failure", f"bytes after the response: {data[:80]!r}"
                    sel.unregister(key.fileobj)
                    continue
                st["buf"] += data
                st["response"] = parse_response(st["buf"])
                continue
            sel.unregister(key.fileobj)
            if st["response"]:
                st["outcome"] = "answered"
            elif not st["buf"]:
                st["outcome"] = "retry"
            else:
                st["outcome"], st["detail"] = "failure", f"EOF after a partial response: {bytes(st['buf'][:80])!r}"
    sel.close()
    time.sleep(0.05)  # for a reset sent in answer to the request
    for s, st in zip(socks, states):
        if st["outcome"] in ("answered", "retry") and (why := reset_after_eof(s)):
            st["outcome"], st["kind"], st["detail"] = "reset", "after the EOF", f"after the EOF ({why})"

    retry = []
    for s, st in zip(socks, states):
        outcome = st["outcome"]
        if outcome == "answered":
            status, headers, body, used = st["response"]
            if status != 200 or body != BODY or used != len(st["buf"]):
                tally.failures.append(f"wrong response: {status} {headers} {len(body)} bytes")
            elif says_close(headers):
                tally.answered_close += 1
            else:
                tally.answered_keepalive += 1
        elif outcome == "retry":
            tally.retries += 1
            retry.append(s)
        elif outcome == "reset":
            tally.resets += 1
            tally.reset_kinds[st["kind"]] += 1
            tally.failures.append(f"reset {st['detail']}")
        else:
            tally.failures.append(st["detail"])
    return retry


def retry_requests(port, n, tally):
    """Sends n retried requests, each on a new connection."""
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=HANG) as s:
            s.sendall(REQUEST)
            buf = bytearray()
            while (r := parse_response(buf)) is None:
                data = s.recv(65536)
                if not data:
                    break
                buf += data
            if r and r[0] == 200 and r[2] == BODY:
                tally.retried_ok += 1
            else:
                tally.failures.append(f"retried request not answered: {bytes(buf[:80])!r}")


def race_stop(conns, stop, rng, tally, at=None):
    """Writes a request on every connection, in random order, calling stop()
    before write number `at` (at random if None; after the last one if it
    is their number), then classifies every outcome. Returns the sockets
    whose request may be retried."""
    socks = [s for s, _ in conns]
    states = [{} for _ in socks]
    order = list(range(len(socks)))
    rng.shuffle(order)
    if at is None:
        at = rng.randrange(len(order) + 1)
    spin = rng.random() * 0.001  # after the signal, before the rest
    for j, i in enumerate(order):
        if j == at:
            stop()
            until = time.perf_counter() + spin
            while time.perf_counter() < until:
                pass
        send_request(socks[i], tally, states[i])
    if at == len(order):
        stop()
    return collect(socks, states, tally)


def tcp_aborts():
    """TcpExt TCPAbortOnClose + TCPAbortOnData: resets this host's kernel sent
    because a socket was closed with, or then received, unread data."""
    with open("/proc/net/netstat") as f:
        lines = [line.split() for line in f if line.startswith("TcpExt:")]
    values = dict(zip(lines[0][1:], lines[1][1:]))
    return int(values.get("TCPAbortOnClose", 0)) + int(values.get("TCPAbortOnData", 0))


def close_all(socks):
    for s in socks:
        s.close()


# -- 0. the client tells a reset from a clean close ----------------------------

class TinyServer:
    """Answers the first request on each connection (keep-alive); then
    stop() ends every connection in one of three ways: "rst" (SO_LINGER 0),
    "close" (a plain close(), as the naive server does), "fin" (shutdown
    SHUT_WR, then reading to the client's EOF before closing)."""

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)

    def __init__(self, how):
        self.how = how
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                s, _ = self.listener.accept()
            except OSError:
                return
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            # Listed before answering: the client may call stop() as soon
            # as it has the answer, and a connection stop() missed would
            # never end.
            self.conns.append(s)
            s.sendall(self.RESPONSE)

    def stop(self):
        for s in self.conns:
            if self.how == "rst":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            if self.how == "fin":
                s.shutdown(socket.SHUT_WR)
            else:
                s.close()
        if self.how == "fin":
            threading.Thread(target=self._read_to_eof, daemon=True).start()

    def _read_to_eof(self):
        for s in self.conns:
            s.settimeout(HANG)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()


@pytest.mark.parametrize("how", ["rst", "close", "fin"])
def test_the_client_tells_a_reset_from_a_clean_close(how):
    """Three rounds: the server ends the connections before the requests are
    written, halfway through, and after they all arrived."""
    tally = Tally()
    for at in (0, 8, 16):
        server = TinyServer(how)
        conns = prime(server.port, 16)
        try:
            race_stop(conns, server.stop, random.Random(1), tally, at)
        finally:
            close_all(s for s, _ in conns)
            server.close()
    print(f"\n[self-test {how}] {tally.line()}")
    if how == "fin":
        assert tally.resets == 0 and tally.retries == 48 and not tally.failures, tally.line()
    else:
        assert tally.resets == 48 and tally.retries == 0, tally.line()


# -- 1. requests written as the drain begins ----------------------------------

@pytest.mark.concurrency
def test_requests_crossing_the_drain_get_an_answer_or_a_clean_close(make_daemon, webpoold_bin):
    """DRAIN_ROUNDS restarts on one held socket; at each, N_CONNS idle
    keep-alive connections write a request at the instant of SIGTERM."""
    held = socket.create_server(("127.0.0.1", 0), backlog=512)
    rng = random.Random()
    total = Tally()
    drain_times = []
    aborts_before = tcp_aborts()
    t0 = time.monotonic()
    try:
        current = make_daemon(start=False)
        (current.root / "small.bin").write_bytes(BODY)  # one root for every instance
        launch_activated(current, held, webpoold_bin)
        for _ in range(DRAIN_ROUNDS):
            tally = Tally()
            conns = prime(current.port, N_CONNS)
            try:
                time.sleep(0.02)  # every connection is parked idle again
                signalled = []

                def stop():
                    current.send_signal(signal.SIGTERM)
                    signalled.append(time.monotonic())

                retry = race_stop(conns, stop, rng, tally)
                # The next instance takes over the held socket; the old one
                # no longer accepts, so retries can only reach the new one.
                nxt = launch_activated(make_daemon(start=False), held, webpoold_bin)
                retry_requests(nxt.port, len(retry), tally)
            finally:
                close_all(s for s, _ in conns)
            rc = wait_exit(current)
            drain_times.append(time.monotonic() - signalled[0])
            assert finish(current) == 0 and rc == 0, f"exited with {rc}:\n{current.output()}"
            total.add(tally)
            current = nxt
    finally:
        held.close()
    aborts = tcp_aborts() - aborts_before
    duration = time.monotonic() - t0
    print(f"\n[drain] rounds={DRAIN_ROUNDS} connections={N_CONNS} {total.line()} "
          f"drain_max={max(drain_times):.3f}s host_tcp_aborts={aborts} duration={duration:.1f}s")
    assert total.resets == 0, f"{total.resets} reset(s): {total.failures[:10]}"
    assert not total.failures, total.failures[:10]
    assert total.retried_ok == total.retries
    # The window was open: some requests were answered and some were
    # refused with a FIN around the same instants.
    assert total.answered_close > 0 and total.retries > 0, total.line()


# -- 2. requests written as a keep-alive timeout expires ----------------------

@pytest.mark.concurrency
def test_requests_crossing_the_keepalive_timeout_get_an_answer_or_a_clean_close(make_daemon):
    d = make_daemon({"timeouts": {"keepalive": f"{KEEPALIVE_MSEC}ms"}}, start=False)
    (d.root / "small.bin").write_bytes(BODY)
    d.start()
    rng = random.Random()
    total = Tally()
    aborts_before = tcp_aborts()
    t0 = time.monotonic()
    for _ in range(EXPIRY_ROUNDS):
        tally = Tally()
        conns = prime(d.port, N_CONNS)
        try:
            states = [{} for _ in conns]
            # The server's deadline counts from a little after the client
            # had the response: aim around it, mostly just after.
            plan = sorted((t + KEEPALIVE_MSEC / 1000 + rng.uniform(-0.002, 0.003), i)
                          for i, (_, t) in enumerate(conns))
            for when, i in plan:
                while (left := when - time.monotonic()) > 0.0005:
                    time.sleep(left - 0.0005)
                while time.monotonic() < when:
                    pass
                send_request(conns[i][0], tally, states[i])
            retry = collect([s for s, _ in conns], states, tally)
            retry_requests(d.port, len(retry), tally)
        finally:
            close_all(s for s, _ in conns)
        total.add(tally)
    aborts = tcp_aborts() - aborts_before
    print(f"\n[keepalive expiry] rounds={EXPIRY_ROUNDS} connections={N_CONNS} {total.line()} "
          f"host_tcp_aborts={aborts} duration={time.monotonic() - t0:.1f}s")
    assert total.resets == 0, f"{total.resets} reset(s): {total.failures[:10]}"
    assert not total.failures, total.failures[:10]
    assert total.retried_ok == total.retries
    assert total.answered_keepalive > 0 and total.retries > 0, total.line()


# -- 3. a drain still ends promptly -------------------------------------------

@pytest.mark.concurrency
def test_a_drain_waits_for_idle_clients_only_briefly(make_daemon):
    """With nobody connected a SIGTERM exits at once. Idle clients that
    never read our FIN hold the drain for the short lingering bound only,
    and the close that ends it is still clean."""
    d = make_daemon()
    t = time.monotonic()
    d.send_signal(signal.SIGTERM)
    rc = wait_exit(d)
    alone = time.monotonic() - t
    assert finish(d) == 0 and rc == 0, d.output()

    d = make_daemon()
    (d.root / "small.bin").write_bytes(BODY)
    conns = prime(d.port, 8)
    try:
        t = time.monotonic()
        d.send_signal(signal.SIGTERM)
        rc = wait_exit(d)
        idle = time.monotonic() - t
        assert finish(d) == 0 and rc == 0, d.output()
        for s, _ in conns:
            s.settimeout(HANG)
            assert s.recv(4096) == b""
            assert reset_after_eof(s) is None
    finally:
        close_all(s for s, _ in conns)
    print(f"\n[prompt drain] alone={alone * 1000:.0f}ms with_8_idle={idle:.2f}s")
    assert alone < 1, f"{alone:.2f}s to stop with no connection"
    assert idle < 3, f"{idle:.2f}s to stop with 8 idle connections"
