"""Concurrency, parking and timeouts, seen from clients of the real binary.

Every test here also runs against the ThreadSanitizer build (marker
`concurrency`), so loads are sized to pass there too. Waits are bounded only
to catch hangs, except the one 1 s latency requirement of
test_new_client_served_within_1s_despite_idle_and_partial_connections."""

import hashlib
import os
import resource
import select
import socket
import threading
import time

import pytest

from streamclient import Client

pytestmark = pytest.mark.concurrency

HANG = 30  # seconds: only to catch hangs
KIB = 1024
MIB = 1024 * 1024


def closed_by_peer(sock, timeout):
    """Waits up to timeout for the peer to close; returns (closed, data read)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True, data
            data += chunk
    except ConnectionResetError:
        return True, data
    except socket.timeout:
        return False, data


def write_file(root, name, size, seed=0):
    data = hashlib.sha256(f"{name}{seed}".encode()).digest()
    data = (data * (size // len(data) + 1))[:size]
    if size > 4096:  # mostly random, so a misplaced chunk cannot compare equal
        data = os.urandom(size)
    (root / name).write_bytes(data)
    return data


def raise_nofile_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def alarming_lines(output):
    """Log lines at warning or worse (the daemon prefixes "<PRIORITY>")."""
    return [line for line in output.splitlines()
            if line[:3] in ("<0>", "<1>", "<2>", "<3>", "<4>")]


def test_new_client_served_within_1s_despite_idle_and_partial_connections(make_daemon):
    soft = raise_nofile_limit()
    assert soft == resource.RLIM_INFINITY or soft >= 700, \
        f"RLIMIT_NOFILE hard limit {soft} is too low for 600 connections"
    d = make_daemon({"server": {"workers": 2}})
    body = write_file(d.root, "x", 3000)

    idle, partial = [], []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", d.port), timeout=HANG))
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=HANG)
            s.sendall(b"GET /x HTTP/1.1\r\nHo")
            partial.append(s)
        time.sleep(0.5)  # let the daemon take them all in and read the halves

        start = time.monotonic()
        c = Client.connect(d.port, timeout=HANG)
        try:
            status, headers, got = c.get("/x")
        finally:
            c.close()
        elapsed = time.monotonic() - start

        assert status == 200
        assert got == body
        assert elapsed < 1.0, f"new client waited {elapsed:.3f}s behind 600 parked connections"

        # The parked connections were not answered or dropped meanwhile.
        poller = select.poll()  # not select(): these descriptors may pass 1024
        for s in idle + partial:
            poller.register(s, select.POLLIN)
        ready = poller.poll(0)
        assert ready == [], f"{len(ready)} parked connection(s) got data or EOF"
        assert d.proc.poll() is None
    finally:
        for s in idle + partial:
            s.close()


def test_many_concurrent_keepalive_clients_get_exact_bodies(make_daemon):
    d = make_daemon({"server": {"workers": 4}})
    files = {}
    for i, size in enumerate((0, 1, 100, 1500, 4096, 70000)):
        files[f"/small{i}.bin"] = write_file(d.root, f"small{i}.bin", size, seed=i)
    files["/big.bin"] = write_file(d.root, "big.bin", MIB + 17)
    names = sorted(files)
    n_threads, n_requests = 32, 50
    errors = []
    done = [0] * n_threads

    def client(t):
        try:
            c = Client.connect(d.port, timeout=HANG)
            try:
                for i in range(n_requests):
                    name = names[(t * 3 + i) % len(names)]
                    status, headers, body = c.get(name)
                    if status != 200:
                        errors.append(f"thread {t} request {i} {name}: status {status}")
                        return
                    if body != files[name]:
                        errors.append(f"thread {t} request {i} {name}: body differs "
                                      f"({len(body)} bytes, expected {len(files[name])})")
                        return
                    if headers.get("connection", "").lower() == "close":
                        errors.append(f"thread {t} request {i}: server closed keep-alive")
                        return
                    done[t] += 1
            finally:
                c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"thread {t}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 4 * HANG
    for t in threads:
        t.join(max(0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"clients hung; done per thread: {done}"
    assert errors == []
    assert sum(done) == n_threads * n_requests
    assert d.proc.poll() is None


def test_slow_readers_do_not_starve_other_clients(make_daemon):
    d = make_daemon({"server": {"workers": 2}})
    big = write_file(d.root, "big16.bin", 16 * MIB)
    small = write_file(d.root, "small.txt", 2000)
    mid = write_file(d.root, "mid.bin", MIB)

    stop = threading.Event()
    received = [0] * 4
    heads = [None] * 4
    got_head = [threading.Event() for _ in range(4)]
    errors = []

    def slow_reader(i, c):
        try:
            c.send_get("/big16.bin")
            heads[i] = c.read_head()
            received[i] = len(c.buf)
            got_head[i].set()
            while not stop.is_set():
                data = c.sock.recv(1024)
                if not data:
                    break
                received[i] += len(data)
                time.sleep(0.05)
        except Exception as e:  # noqa: BLE001
            if not stop.is_set():
                errors.append(f"slow reader {i}: {type(e).__name__}: {e}")
            got_head[i].set()

    slow = [Client.connect(d.port, timeout=HANG, rcvbuf=4096) for _ in range(4)]
    threads = [threading.Thread(target=slow_reader, args=(i, c)) for i, c in enumerate(slow)]
    try:
        for t in threads:
            t.start()
        for e in got_head:
            assert e.wait(HANG), "a slow reader got no response head"
        assert errors == []
        for h in heads:
            assert h[0] == 200 and h[1]["content-length"] == str(len(big)), h
        time.sleep(0.3)  # the server has filled their sockets by now

        start = time.monotonic()
        c = Client.connect(d.port, timeout=HANG)
        try:
            status1, _, body1 = c.get("/small.txt")
            status2, _, body2 = c.get("/mid.bin")
        finally:
            c.close()
        elapsed = time.monotonic() - start
        assert (status1, status2) == (200, 200)
        assert body1 == small and body2 == mid
        assert elapsed < 5, f"fast client took {elapsed:.2f}s behind 4 slow readers"
        # The slow readers were really still downloading.
        assert all(0 < r < len(big) for r in received), received
        assert errors == []
    finally:
        stop.set()
        for c in slow:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread
            except OSError:
                pass
        for t in threads:
            t.join(HANG)
        for c in slow:
            c.close()


def test_header_timeout_disconnects_a_stalled_request_head(make_daemon):
    d = make_daemon({"timeouts": {"header": "1s"}})
    write_file(d.root, "x", 10)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=HANG)
    try:
        s.sendall(b"GET /x HTTP/1.1\r\nHo")
        start = time.monotonic()
        closed, data = closed_by_peer(s, 10)
        elapsed = time.monotonic() - start
    finally:
        s.close()
    assert closed, "stalled request head still open after 10s with header = 1s"
    assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data
    assert elapsed >= 0.5, f"closed after {elapsed:.2f}s, before the header timeout"
    assert d.proc.poll() is None


def test_header_timeout_counts_from_the_first_byte_not_the_last(make_daemon):
    """A client trickling its head a byte at a time is cut all the same."""
    d = make_daemon({"timeouts": {"header": "1s"}})
    s = socket.create_connection(("127.0.0.1", d.port), timeout=HANG)
    request = b"GET /x HTTP/1.1\r\nX-Slow: " + b"a" * 200
    start = time.monotonic()
    closed = False
    try:
        for byte in request:
            try:
                s.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            readable, _, _ = select.select([s], [], [], 0.1)
            if readable:
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data
                closed = True
                break
            if time.monotonic() - start > 10:
                break
    finally:
        s.close()
    elapsed = time.monotonic() - start
    assert closed, f"trickled head still open after {elapsed:.1f}s with header = 1s"
    assert elapsed < 10
    assert d.proc.poll() is None


def test_header_timeout_applies_to_a_second_request_on_keepalive(make_daemon):
    """After one response, a half-sent second head is cut by the header
    timeout, not kept for the (longer) keep-alive timeout."""
    d = make_daemon({"timeouts": {"header": "1s", "keepalive": "60s"}})
    body = write_file(d.root, "x", 300)
    c = Client.connect(d.port)
    try:
        assert c.get("/x")[::2] == (200, body)
        c.sock.sendall(b"GET /x HTTP/1.1\r\nHo")
        start = time.monotonic()
        closed, data = closed_by_peer(c.sock, 10)
        elapsed = time.monotonic() - start
    finally:
        c.close()
    assert closed, "half-sent second request still open after 10s with header = 1s"
    assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data
    assert elapsed >= 0.5, f"closed after {elapsed:.2f}s, before the header timeout"


def test_keepalive_timeout_closes_idle_connection(make_daemon):
    d = make_daemon({"timeouts": {"keepalive": "1s"}})
    body = write_file(d.root, "x", 500)
    c = Client.connect(d.port)
    try:
        status, headers, got = c.get("/x")
        assert (status, got) == (200, body)
        assert headers.get("connection", "").lower() != "close"
        start = time.monotonic()
        closed, data = closed_by_peer(c.sock, 10)
        elapsed = time.monotonic() - start
    finally:
        c.close()
    assert closed, "idle keep-alive connection still open after 10s with keepalive = 1s"
    assert data == b""
    assert elapsed >= 0.5, f"closed after {elapsed:.2f}s, before the keep-alive timeout"
    assert d.proc.poll() is None


def test_keepalive_connection_survives_shorter_idle(make_daemon):
    d = make_daemon({"timeouts": {"keepalive": "10s"}})
    body = write_file(d.root, "x", 500)
    c = Client.connect(d.port)
    try:
        assert c.get("/x")[::2] == (200, body)
        time.sleep(2)
        ready, _, _ = select.select([c.sock], [], [], 0)
        assert ready == [], "server sent data or closed an idle keep-alive connection"
        status, _, got = c.get("/x")
        assert (status, got) == (200, body)
    finally:
        c.close()


def test_max_connections_holds_the_next_client_in_the_backlog(make_daemon):
    d = make_daemon({"server": {"max_connections": 10}})
    body = write_file(d.root, "x", 700)
    idle = [socket.create_connection(("127.0.0.1", d.port), timeout=HANG) for _ in range(9)]
    for s in idle:  # mid-request: neither idle nor silent ones would keep their slot
        s.sendall(b"GET /x HTTP/1.1\r\n")
    tenth = Client.connect(d.port)
    eleventh = None
    try:
        # Accepting is FIFO: the 10th being answered means all 10 are in.
        assert tenth.get("/x")[::2] == (200, body)
        # Mid-request, so not idle: an idle one would be ended for a newcomer.
        tenth.sock.sendall(b"GET /x HTTP/1.1\r\n")

        eleventh = Client.connect(d.port, timeout=HANG)  # completes in the backlog
        eleventh.send_get("/x")
        eleventh.sock.settimeout(1.5)
        with pytest.raises(socket.timeout):
            eleventh.read_head()  # not served while 10 are open

        idle.pop(0).close()
        eleventh.sock.settimeout(HANG)
        status, _, got = eleventh.read_response()
        assert (status, got) == (200, body)

        # Still running, still serving the others, and nothing alarming said.
        tenth.sock.sendall(b"Host: t\r\n\r\n")
        assert tenth.read_response()[::2] == (200, body)
        assert d.proc.poll() is None
        assert alarming_lines(d.output()) == []
    finally:
        for s in idle:
            s.close()
        tenth.close()
        if eleventh:
            eleventh.close()
