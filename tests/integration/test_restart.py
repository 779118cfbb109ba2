"""Restart and reload without losing a request.

A restart the way systemd does it with socket activation: the listening
socket belongs to the test (standing in for systemd's .socket unit), which
hands a copy to each instance as fd 3 with LISTEN_FDS/LISTEN_PID/
LISTEN_FDNAMES. The test keeps its own copy open, so a connection that
arrives while no instance is accepting waits in the kernel backlog for the
next one, exactly as it would across `systemctl restart`.

The load client is strict: every request must get a complete, byte-exact
200. The only exception is the one RFC 9112 §9.3.1 allows for idempotent
requests: a request sent on a reused keep-alive connection that the server
closed cleanly as it idled (a FIN, no RST), before a single byte of the
response came back, may be retried on a new connection. Such retries are
counted and reported apart; a reset, even one that follows the FIN, is a
failure and counted on its own, and so is anything else. Reloads must not
close connections at all, so there even retries must be zero.

All tests run workers under load and are marked `concurrency`, so they also
run against the ThreadSanitizer build: loads are sized by time, not by
request count, and the minimums asserted are low enough for it. Waits are
bounded only to catch hangs."""

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from rawhttp import Client as RawClient

pytestmark = pytest.mark.concurrency

HANG = 30  # seconds: only to catch hangs
KIB = 1024
MIB = 1024 * 1024

# Runs as the daemon's parent-to-be: puts the inherited listening socket on
# fd 3, sets the socket-activation variables for its own pid (kept across
# exec) and becomes the daemon. argv: fd, binary, daemon arguments...
LAUNCHER = r"""
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)  # the new fd 3 is inheritable
    os.close(fd)
env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="web")
os.execve(sys.argv[2], sys.argv[2:], env)
"""


# -- helpers ---------------------------------------------------------------

@pytest.fixture
def held_socket():
    """The listening socket systemd would hold: bound, listening, never
    accepted on by the test."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(512)
    yield s
    s.close()


def launch_activated(d, sock, binary):
    """Starts Daemon `d` (from make_daemon(start=False)) on the held socket
    through the launcher, and waits for its startup line. The make_daemon
    fixture still stops it and checks its exit status and sanitizer output."""
    d.write_config()
    d.port = sock.getsockname()[1]
    d.log = open(d.log_path, "wb")
    fd = sock.fileno()
    d.proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(fd), binary, "-c", str(d.conf)],
                              stdout=d.log, stderr=subprocess.STDOUT, pass_fds=(fd,))
    d.wait_ready()
    assert "Socket-activated with 1 socket(s)" in d.output(), d.output()
    return d


def log_count(d, text):
    return d.output().count(text)


def wait_exit(d, timeout=HANG):
    try:
        return d.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"webpoold still running {timeout}s after SIGTERM:\n{d.output()}")


def finish(d):
    """For an instance that exited on its own: records its status (so the
    fixture does not stop it again) and checks for sanitizer reports."""
    rc = d.stop()
    d.check_clean()
    return rc


def served_count(d):
    """The request count of the 'worker thread(s) joined' exit line."""
    m = re.search(r"All \d+ worker thread\(s\) joined; (\d+) request\(s\) served", d.output())
    assert m, f"no 'worker thread(s) joined' line:\n{d.output()}"
    return int(m.group(1))


def recv_nothing_for(sock, seconds):
    """Returns None if nothing arrives within `seconds`, else what did
    arrive: bytes, or 'EOF' / 'RST'."""
    sock.settimeout(seconds)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return None
    except ConnectionResetError:
        return "RST"
    finally:
        sock.settimeout(HANG)
    return data if data else "EOF"


# -- the load client -------------------------------------------------------

class Closed(Exception):
    """The server closed (EOF or reset) after `got` bytes of the response."""

    def __init__(self, got, reset=None):
        super().__init__(got)
        self.got = got
        self.reset = reset  # how a reset showed, None for a clean EOF


TCP_CLOSE_WAIT = 8  # tcpi_state, include/net/tcp_states.h


def reset_after_eof(sock):
    """After the server's FIN, a server that then resets (it closed with the
    request unread, or the request reached a closed socket) leaves the
    client's socket CLOSED with EPIPE pending, where a clean one leaves it
    in CLOSE_WAIT: the EOF already read hides that from recv(). Returns how
    it showed, or None."""
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    if err or state != TCP_CLOSE_WAIT:
        return f"SO_ERROR {err}, tcpi_state {state}"
    return None


class ThreadStats:
    def __init__(self):
        self.requests = 0    # complete, verified 200 responses
        self.retries = 0     # RFC 9112 §9.3.1 retries (reused connection, 0 bytes, FIN)
        self.resets = 0      # also in failures
        self.reconnects = 0  # after a complete response with Connection: close
        self.connects = 0
        self.failures = []


def _recv_into(sock, buf, got):
    try:
        data = sock.recv(256 * KIB)
    except ConnectionResetError as e:
        raise Closed(got, f"recv: {e!r}") from None
    if not data:
        raise Closed(got)
    buf += data
    return len(data)


def read_response(sock, buf):
    """Reads one response framed by Content-Length. Returns (status,
    headers with lower-case names, body). Raises Closed(bytes received)."""
    got = 0
    while (end := buf.find(b"\r\n\r\n")) < 0:
        got += _recv_into(sock, buf, got)
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    version, status = head[0].split(" ", 2)[:2]
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise AssertionError(f"no Content-Length in {head!r}")
    n = int(headers["content-length"])
    while len(buf) - (end + 4) < n:
        got += _recv_into(sock, buf, got)
    body = bytes(buf[end + 4:end + 4 + n])
    del buf[:end + 4 + n]
    return version, int(status), headers, body


class Load:
    """`n` threads, each on one keep-alive connection doing GETs in a loop:
    the small file, and every `big_every`-th request the big one."""

    def __init__(self, port, files, n=50, big_every=10):
        self.port = port
        self.files = files  # [(path, content)]: [small, big]
        self.n = n
        self.big_every = big_every
        self.stop = threading.Event()
        self.stats = [ThreadStats() for _ in range(n)]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]
        self.started = self.ended = None

    def start(self):
        self.started = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def requests(self):
        return sum(s.requests for s in self.stats)

    def wait_requests(self, n, timeout=HANG):
        deadline = time.monotonic() + timeout
        while self.requests() < n:
            assert time.monotonic() < deadline, f"load made only {self.requests()} requests"
            time.sleep(0.02)

    def finish(self):
        self.stop.set()
        deadline = time.monotonic() + HANG
        for i, t in enumerate(self.threads):
            t.join(max(0.1, deadline - time.monotonic()))
            if t.is_alive():
                self.stats[i].failures.append("client thread still waiting for a response at the end")
        self.ended = time.monotonic()
        return self.totals()

    def totals(self):
        failures = [f for s in self.stats for f in s.failures]
        return {
            "requests": self.requests(),
            "retries": sum(s.retries for s in self.stats),
            "resets": sum(s.resets for s in self.stats),
            "reconnects": sum(s.reconnects for s in self.stats),
            "connects": sum(s.connects for s in self.stats),
            "failures": len(failures),
            "first_failures": failures[:10],
            "duration": (self.ended or time.monotonic()) - self.started,
        }

    def _run(self, idx):
        st = self.stats[idx]
        requests = [(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode(), path, body)
                    for path, body in self.files]
        sock = None
        buf = bytearray()
        reused = False  # the connection already carried a complete response
        k = idx         # staggers the big requests across threads

        def drop():
            nonlocal sock
            if sock is not None:
                sock.close()
            sock = None

        while not self.stop.is_set():
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=HANG)
                except OSError as e:
                    st.failures.append(f"connect failed: {e!r}")
                    time.sleep(0.05)
                    continue
                st.connects += 1
                buf.clear()
                reused = False
            req, path, expected = requests[1 if k % self.big_every == 0 else 0]
            if buf:
                st.failures.append(f"stray bytes before a request: {bytes(buf[:100])!r}")
                drop()
                continue
            try:
                try:
                    sock.sendall(req)
                except (BrokenPipeError, ConnectionResetError) as e:
                    raise Closed(0, f"send: {e!r}") from None
                version, status, headers, body = read_response(sock, buf)
            except Closed as e:
                if e.reset is None and e.got == 0 and reused:
                    time.sleep(0.05)  # for a reset sent in answer to the request
                    e.reset = reset_after_eof(sock)
                drop()
                if e.reset is not None:
                    st.resets += 1
                    st.failures.append(f"{path}: reset after {e.got} response bytes ({e.reset}, "
                                       f"{'reused' if reused else 'new'} connection)")
                    k += 1
                    continue
                if e.got == 0 and reused:
                    st.retries += 1  # same request again, on a new connection
                    continue
                st.failures.append(f"{path}: connection closed after {e.got} response bytes "
                                   f"({'reused' if reused else 'new'} connection)")
                k += 1
                continue
            except socket.timeout:
                st.failures.append(f"{path}: no complete response within {HANG}s")
                drop()
                k += 1
                continue
            except Exception as e:  # a malformed response
                st.failures.append(f"{path}: {e!r}")
                drop()
                k += 1
                continue
            k += 1
            if status != 200 or version != "HTTP/1.1":
                st.failures.append(f"{path}: {version} {status}")
                drop()
                continue
            if headers["content-length"] != str(len(expected)) or body != expected:
                st.failures.append(f"{path}: wrong body (Content-Length {headers['content-length']}, "
                                   f"{len(body)} bytes)")
                drop()
                continue
            st.requests += 1
            if "close" in [t.strip().lower() for t in headers.get("connection", "").split(",")]:
                st.reconnects += 1  # normal: the server said so with a complete response
                drop()
            else:
                reused = True
        drop()


def write_load_files(root):
    root.mkdir(exist_ok=True)
    small = os.urandom(1 * KIB)
    big = os.urandom(256 * KIB)
    (root / "small.bin").write_bytes(small)
    (root / "big.bin").write_bytes(big)
    return [("/small.bin", small), ("/big.bin", big)]


def report(name, totals, **extra):
    figures = ", ".join(f"{k}={v}" for k, v in extra.items())
    print(f"\n[{name}] requests={totals['requests']} retries={totals['retries']} "
          f"resets={totals['resets']} failures={totals['failures']} reconnects={totals['reconnects']} "
          f"connects={totals['connects']} duration={totals['duration']:.2f}s"
          + (f" {figures}" if figures else ""))


def assert_no_failures(totals):
    assert totals["failures"] == 0, \
        f"{totals['failures']} failed request(s), first ones: {totals['first_failures']}"


# -- 1. drain with socket activation ---------------------------------------

def test_drain_finishes_downloads_and_leaves_new_connections_to_the_next_instance(
        make_daemon, held_socket, webpoold_bin):
    size = 8 * MIB
    n_downloads = 20
    a = make_daemon(start=False)
    data = os.urandom(size)
    (a.root / "big.bin").write_bytes(data)
    small = os.urandom(1000)
    (a.root / "small.bin").write_bytes(small)
    want = hashlib.sha256(data).hexdigest()
    launch_activated(a, held_socket, webpoold_bin)
    port = a.port

    heads_read = threading.Barrier(n_downloads + 1, timeout=HANG)
    go = threading.Event()
    results = [None] * n_downloads

    def download(i):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KIB)
            s.settimeout(HANG)
            s.connect(("127.0.0.1", port))
        except Exception as e:
            results[i] = f"connect: {e!r}"
            heads_read.abort()
            return
        with s:
            buf = bytearray()
            try:
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: test\r\n\r\n")
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(64 * KIB)
                    if not chunk:
                        raise AssertionError("closed before the response head")
                    buf += chunk
                end = buf.index(b"\r\n\r\n")
                head = bytes(buf[:end]).decode("latin-1").split("\r\n")
                del buf[:end + 4]
                assert head[0].startswith("HTTP/1.1 200 "), head[0]
                lengths = [l.split(":", 1)[1].strip() for l in head[1:]
                           if l.lower().startswith("content-length:")]
                assert lengths == [str(size)], f"Content-Length {lengths}"
            except Exception as e:
                results[i] = f"head: {e!r}"
                heads_read.abort()
                return
            try:
                heads_read.wait()
            except threading.BrokenBarrierError:
                results[i] = "another download failed to start"
                return
            go.wait(HANG)
            # Throttled: 64 KiB per 10 ms, so 8 MiB takes over a second.
            h = hashlib.sha256(bytes(buf[:size]))
            received = min(len(buf), size)
            try:
                while received < size:
                    chunk = s.recv(min(64 * KIB, size - received))
                    if not chunk:
                        raise AssertionError(f"closed after {received} of {size} body bytes")
                    h.update(chunk)
                    received += len(chunk)
                    time.sleep(0.01)
                if h.hexdigest() != want:
                    results[i] = "body differs from the file (sha256)"
                    return
                after = recv_nothing_for(s, 10)
                if after not in ("EOF", "RST"):
                    results[i] = f"after the body, expected the server to close, got {after!r}"
                    return
            except Exception as e:
                results[i] = f"body: {e!r}"
                return
            results[i] = "ok"

    threads = [threading.Thread(target=download, args=(i,), daemon=True) for i in range(n_downloads)]
    for t in threads:
        t.start()
    late = None
    try:
        try:
            heads_read.wait()
        except threading.BrokenBarrierError:
            raise AssertionError(f"downloads did not all start: {results}")
        # All 20 responses are mid-body, parked on full sockets.
        a.send_signal(signal.SIGTERM)
        a.wait_for_log("Stopping")
        assert re.search(r"draining 20 connection\(s\)", a.output()), a.output()

        # A connection attempted after the signal: the kernel completes it on
        # the held socket, but instance A must neither serve nor close it.
        late = socket.create_connection(("127.0.0.1", port), timeout=HANG)
        late.sendall(b"GET /small.bin HTTP/1.1\r\nHost: test\r\n\r\n")
        got = recv_nothing_for(late, 1.0)
        assert a.proc.poll() is None, "A exited with 20 downloads in flight"
        assert got is None, f"the old instance answered a connection made after SIGTERM: {got!r}"

        go.set()
        for t in threads:
            t.join(HANG)
        assert not any(t.is_alive() for t in threads), f"downloads hung: {results}"
        bad = [(i, r) for i, r in enumerate(results) if r != "ok"]
        assert not bad, f"{len(bad)} of {n_downloads} downloads failed: {bad}"

        rc = wait_exit(a)
        assert finish(a) == 0 and rc == 0, f"A exited with {rc}:\n{a.output()}"
        assert "worker thread(s) joined" in a.output(), a.output()
        assert served_count(a) == n_downloads, a.output()

        # A is gone; the late connection is still waiting in the backlog,
        # not reset with A.
        got = recv_nothing_for(late, 0.2)
        assert got is None, f"the waiting connection got {got!r} when A exited"

        # The next instance takes it from the backlog and answers it.
        b = make_daemon(start=False)
        launch_activated(b, held_socket, webpoold_bin)
        c = RawClient(late)
        resp = c.read_response()
        assert resp.status == 200, resp
        assert resp.header("Content-Length") == str(len(small)), resp
        assert resp.body == small
        late = None
        c.close()
    finally:
        go.set()
        if late is not None:
            late.close()


# -- 2. restart under load -------------------------------------------------

def test_restart_under_load_loses_no_request(make_daemon, held_socket, webpoold_bin):
    a = make_daemon(start=False)
    files = write_load_files(a.root)
    launch_activated(a, held_socket, webpoold_bin)
    b = make_daemon(start=False)

    load = Load(a.port, files, n=50).start()
    try:
        load.wait_requests(200)
        time.sleep(max(0.0, 2.5 - (time.monotonic() - load.started)))
        before = load.requests()
        t_signal = time.monotonic()
        a.send_signal(signal.SIGTERM)
        launch_activated(b, held_socket, webpoold_bin)  # "immediately": no wait for A
        t_b_ready = time.monotonic()
        rc_a = wait_exit(a)
        t_a_exit = time.monotonic()
        at_a_exit = load.requests()
        # Load keeps going on B alone.
        time.sleep(max(2.5, 6.0 - (time.monotonic() - load.started)))
    finally:
        totals = load.finish()
    report("restart", totals, before_sigterm=before, at_a_exit=at_a_exit,
           after_a_exit=totals["requests"] - at_a_exit,
           b_ready_after=f"{t_b_ready - t_signal:.2f}s", a_drained_in=f"{t_a_exit - t_signal:.2f}s")

    assert finish(a) == 0 and rc_a == 0, f"A exited with {rc_a}:\n{a.output()}"
    assert "worker thread(s) joined" in a.output(), a.output()
    assert totals["resets"] == 0, f"the restart reset connections: {totals['first_failures']}"
    assert_no_failures(totals)
    assert totals["requests"] >= 1000, totals
    assert totals["requests"] - at_a_exit >= 200, f"B served little of the load: {totals}"

    assert b.proc.poll() is None, b.output()
    with RawClient.connect(b.port) as c:
        c.request("GET", "/small.bin")
        resp = c.read_response()
        assert resp.status == 200 and resp.body == files[0][1], resp
    rc_b = b.stop()
    b.check_clean()
    assert rc_b == 0, b.output()
    served_a, served_b = served_count(a), served_count(b)
    print(f"[restart] served by A={served_a} by B={served_b}")
    assert served_a >= before and served_b > 0
    # Every verified response came from A or B; retried requests were never
    # answered, so nothing is counted twice.
    assert served_a + served_b >= totals["requests"] + 1


# -- 3 and 4. reload under load --------------------------------------------

def reload_under_load(d, files, rewrite, n_reloads, log_text):
    """Runs the load, rewriting the config and sending SIGHUP `n_reloads`
    times, each after the previous one was logged. Returns the totals."""
    load = Load(d.port, files, n=50).start()
    try:
        load.wait_requests(200)
        seen = log_count(d, log_text)
        t0 = time.monotonic()
        for i in range(n_reloads):
            time.sleep(0.6)
            rewrite(i)
            d.send_signal(signal.SIGHUP)
            d.wait_for_log(log_text, seen + i + 1)
            assert d.proc.poll() is None, d.output()
        t_reloads = time.monotonic() - t0
        time.sleep(max(0.5, 6.0 - (time.monotonic() - load.started)))
    finally:
        totals = load.finish()
    totals["reload_span"] = t_reloads
    return totals


def test_reload_under_load_with_a_good_config_drops_nothing(make_daemon):
    d = make_daemon({"timeouts": {"keepalive": "75s"}}, start=False)
    files = write_load_files(d.root)
    d.start()
    n_reloads = 6

    def rewrite(i):
        d.settings["timeouts"]["keepalive"] = ("30s", "45s")[i % 2]
        d.write_config()

    totals = reload_under_load(d, files, rewrite, n_reloads, "Configuration reloaded")
    report("reload-good", totals, reloads=n_reloads, reload_span=f"{totals['reload_span']:.2f}s")
    assert_no_failures(totals)
    assert totals["retries"] == 0, f"a reload closed idle keep-alive connections: {totals}"
    assert totals["reconnects"] == 0, f"a reload made responses say Connection: close: {totals}"
    assert totals["connects"] == 50, totals
    assert totals["requests"] >= 1000, totals
    assert d.proc.poll() is None, d.output()
    assert "Reload failed" not in d.output(), d.output()

    # The new settings are in force: with keepalive = 1s an idle
    # connection is closed soon, where it used to be kept 30s or more.
    d.settings["timeouts"]["keepalive"] = "1s"
    d.write_config()
    seen = log_count(d, "Configuration reloaded")
    d.send_signal(signal.SIGHUP)
    d.wait_for_log("Configuration reloaded", seen + 1)
    with RawClient.connect(d.port) as c:
        c.request("GET", "/small.bin")
        resp = c.read_response()
        assert resp.status == 200 and resp.body == files[0][1], resp
        t = time.monotonic()
        assert c.closed_by_server(timeout=15), "keepalive = 1s from the reload not applied"
        assert time.monotonic() - t < 10


def test_reload_under_load_with_a_bad_config_keeps_serving(make_daemon):
    d = make_daemon({"timeouts": {"keepalive": "75s"}}, start=False)
    files = write_load_files(d.root)
    d.start()
    good = d.conf.read_text()
    n_reloads = 6

    def rewrite(i):
        # Would cut idle connections after 1s if any of it were applied.
        bad = good.replace("keepalive = 75s", "keepalive = 1s")
        assert bad != good
        d.conf.write_text(bad.replace("[server]\n", f"[server]\nno_such_key = {i}\n", 1))

    totals = reload_under_load(d, files, rewrite, n_reloads, "Reload failed")
    report("reload-bad", totals, reloads=n_reloads, reload_span=f"{totals['reload_span']:.2f}s")
    assert_no_failures(totals)
    assert totals["retries"] == 0, f"a failed reload closed idle keep-alive connections: {totals}"
    assert totals["reconnects"] == 0, f"a failed reload made responses say Connection: close: {totals}"
    assert totals["connects"] == 50, totals
    assert totals["requests"] >= 1000, totals
    assert d.proc.poll() is None, d.output()

    out = d.output()
    assert out.count("Reload failed, keeping the running configuration") == n_reloads, out
    assert re.search(r"^<3>Reload failed.*unknown key 'no_such_key'", out, re.M), out
    assert "Configuration reloaded" not in out, out

    # None of the rejected file was applied: keepalive is still 75s.
    with RawClient.connect(d.port) as c:
        c.request("GET", "/small.bin")
        resp = c.read_response()
        assert resp.status == 200 and resp.body == files[0][1], resp
        assert not c.closed_by_server(timeout=2.5), "keepalive = 1s of the rejected config applied"

    # And a good file is taken again afterwards.
    d.conf.write_text(good)
    d.send_signal(signal.SIGHUP)
    d.wait_for_log("Configuration reloaded")
