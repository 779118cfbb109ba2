"""Stopping: SIGTERM/SIGINT drain, the shutdown timeout, a second signal.

All of these drain connections while workers run, so they are marked
`concurrency` and also run against the ThreadSanitizer build. Waits are
bounded only to catch hangs."""

import hashlib
import os
import re
import signal
import socket
import time

import pytest

from streamclient import Client

pytestmark = pytest.mark.concurrency

HANG = 30  # seconds: only to catch hangs
KIB = 1024
MIB = 1024 * 1024


def sees_eof(sock, timeout=10):
    """True when the peer closes (EOF or reset) within timeout with no data."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def read_to_eof(sock, timeout=HANG):
    """Reads until EOF or reset; returns the byte count."""
    sock.settimeout(timeout)
    n = 0
    try:
        while True:
            data = sock.recv(256 * KIB)
            if not data:
                return n
            n += len(data)
    except ConnectionResetError:
        return n


def wait_exit(d, timeout=HANG):
    """Waits for the daemon to exit; returns (exit status, seconds waited)."""
    start = time.monotonic()
    try:
        rc = d.proc.wait(timeout)
    except Exception:
        raise AssertionError(f"webpoold still running {timeout}s after the signal:\n{d.output()}")
    return rc, time.monotonic() - start


def write_big(root, name, size):
    data = os.urandom(size)
    (root / name).write_bytes(data)
    return data


def start_stalled_download(d, size=32 * MIB):
    """A client that requests a large file, reads the head, then stops
    reading. Its small receive buffer keeps the daemon mid-response."""
    write_big(d.root, "big.bin", size)
    c = Client.connect(d.port, rcvbuf=64 * KIB)
    c.send_get("/big.bin")
    status, headers = c.read_head()
    assert status == 200
    assert headers["content-length"] == str(size)
    time.sleep(0.5)  # the daemon fills the socket and parks the connection
    return c


def throttled_download(d, c, size, chunk, pause, on_progress):
    """Reads the body `chunk` bytes per `pause`; calls on_progress(received)
    after each chunk. Returns the sha256 of the body."""
    h = hashlib.sha256()
    first = c.take_buffered()[:size]
    h.update(first)
    received = len(first)
    while received < size:
        want = min(chunk, size - received)
        got = 0
        while got < want:
            data = c.sock.recv(want - got)
            if not data:
                raise AssertionError(f"connection closed after {received + got} of {size} bytes")
            h.update(data)
            got += len(data)
        received += got
        on_progress(received)
        time.sleep(pause)
    return h.hexdigest()


def test_sigterm_lets_a_throttled_download_finish(make_daemon):
    d = make_daemon()
    size = 32 * MIB
    data = write_big(d.root, "big.bin", size)
    c = Client.connect(d.port, rcvbuf=256 * KIB)
    signalled = {}
    try:
        c.send_get("/big.bin")
        status, headers = c.read_head()
        assert status == 200
        assert headers.get("content-length") == str(size)

        def on_progress(received):
            if "at" not in signalled and received >= MIB:
                d.send_signal(signal.SIGTERM)
                signalled["at"] = received
            elif "at" in signalled and "alive" not in signalled and received >= size // 2:
                signalled["alive"] = d.proc.poll() is None

        digest = throttled_download(d, c, size, 256 * KIB, 0.02, on_progress)
        assert digest == hashlib.sha256(data).hexdigest()
        assert size - signalled["at"] > 8 * MIB, "the signal came too late to test anything"
        assert signalled["alive"], "webpoold exited while a download was in flight"
        assert sees_eof(c.sock), "connection not closed after the drained response"
    finally:
        c.close()
    rc, _ = wait_exit(d)
    assert rc == 0, d.output()
    out = d.output()
    assert "Stopping" in out
    assert "worker thread(s) joined" in out


def test_sigterm_closes_idle_connections_and_exits_promptly(make_daemon):
    d = make_daemon()  # shutdown timeout 30s
    (d.root / "x").write_bytes(b"x" * 100)
    keepalive = [Client.connect(d.port) for _ in range(5)]
    fresh = []
    try:
        for c in keepalive:
            status, headers, body = c.get("/x")
            assert (status, body) == (200, b"x" * 100)
            assert headers.get("connection", "").lower() != "close"
        # Connected, never sent anything.
        fresh = [socket.create_connection(("127.0.0.1", d.port), timeout=HANG) for _ in range(2)]
        time.sleep(0.2)

        d.send_signal(signal.SIGTERM)
        rc, elapsed = wait_exit(d)
        assert rc == 0, d.output()
        assert elapsed < 5, f"took {elapsed:.2f}s to stop with only idle connections"
        for i, c in enumerate(keepalive):
            assert sees_eof(c.sock), f"keep-alive connection {i} not closed"
        for i, s in enumerate(fresh):
            assert sees_eof(s), f"fresh connection {i} not closed"
    finally:
        for c in keepalive:
            c.close()
        for s in fresh:
            s.close()
    assert "worker thread(s) joined" in d.output()


def test_no_new_connection_is_served_after_sigterm(make_daemon):
    d = make_daemon()
    stalled = start_stalled_download(d)
    try:
        d.send_signal(signal.SIGTERM)
        d.wait_for_log("Stopping")
        assert d.proc.poll() is None, "nothing left to drain: the test proves nothing"

        try:
            late = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        except ConnectionRefusedError:
            pass
        else:
            try:
                try:
                    late.sendall(b"GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                assert sees_eof(late), "a connection made after SIGTERM was served or left open"
            finally:
                late.close()
        assert d.proc.poll() is None, "the drain should still be waiting for the download"
    finally:
        stalled.close()  # resets the download; the drain has nothing left
    rc, _ = wait_exit(d)
    assert rc == 0, d.output()


def test_shutdown_timeout_cuts_a_stalled_download(make_daemon):
    d = make_daemon({"timeouts": {"shutdown": "2s"}})
    stalled = start_stalled_download(d)
    try:
        d.send_signal(signal.SIGTERM)
        rc, elapsed = wait_exit(d)
        assert rc == 0, d.output()
        assert elapsed < 10, f"took {elapsed:.2f}s with shutdown = 2s"
        assert elapsed >= 1.5, f"exited after {elapsed:.2f}s, before the 2s shutdown timeout"
        received = len(stalled.take_buffered()) + read_to_eof(stalled.sock)
        assert received < 32 * MIB, "the stalled download was not cut"
    finally:
        stalled.close()
    out = d.output()
    assert re.search(r"^<4>.*cutting 1 remaining connection", out, re.M), out
    assert "worker thread(s) joined" in out


def test_second_sigterm_stops_at_once(make_daemon):
    d = make_daemon()  # shutdown timeout 30s
    stalled = start_stalled_download(d)
    try:
        d.send_signal(signal.SIGTERM)
        d.wait_for_log("Stopping")
        time.sleep(0.3)
        assert d.proc.poll() is None, "exited on the first SIGTERM with a download in flight"

        d.send_signal(signal.SIGTERM)
        rc, elapsed = wait_exit(d)
        assert rc == 0, d.output()
        assert elapsed < 5, f"took {elapsed:.2f}s to stop after a second SIGTERM"
    finally:
        stalled.close()
    out = d.output()
    assert re.search(r"^<4>Second stop signal.*cutting 1 remaining connection", out, re.M), out
    assert "worker thread(s) joined" in out


def test_sigint_drains_like_sigterm(make_daemon):
    d = make_daemon()
    size = 8 * MIB
    data = write_big(d.root, "big.bin", size)
    c = Client.connect(d.port, rcvbuf=256 * KIB)
    signalled = []
    try:
        c.send_get("/big.bin")
        status, headers = c.read_head()
        assert status == 200 and headers.get("content-length") == str(size)

        def on_progress(received):
            if not signalled and received >= MIB:
                d.send_signal(signal.SIGINT)
                signalled.append(received)

        digest = throttled_download(d, c, size, 256 * KIB, 0.02, on_progress)
        assert digest == hashlib.sha256(data).hexdigest()
        assert signalled
        assert sees_eof(c.sock)
    finally:
        c.close()
    rc, _ = wait_exit(d)
    assert rc == 0, d.output()
    out = d.output()
    assert "Stopping" in out
    assert "worker thread(s) joined" in out
