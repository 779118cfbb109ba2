"""What systemd sees of webpoold: sd_notify() messages on NOTIFY_SOCKET
(READY, RELOADING with MONOTONIC_USEC, STOPPING, STATUS, WATCHDOG,
EXTEND_TIMEOUT_USEC), reloads on SIGHUP, and socket activation with
descriptors passed the way systemd passes them.

Every daemon runs the real binary with NOTIFY_SOCKET pointing at the
`notify_socket` fixture, which records each datagram with the time it
arrived (CLOCK_MONOTONIC, the clock the daemon uses). Tests that signal a
daemon while it has clients are marked `concurrency` and also run against
the ThreadSanitizer build, so loads stay small."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from conftest import BIN, as_journal_stream, free_port
from rawhttp import Client, get

HANG = 30  # seconds: only to catch hangs
MIB = 1024 * 1024
USEC = 1_000_000
STATE_KEYS = ("READY", "RELOADING", "STOPPING")
STATUS_RE = re.compile(r"^(Serving|Stopping, draining): (\d+) connection\(s\), (\d+) request\(s\) served "
                       r"\((\d+) 4xx, (\d+) 5xx\), (\d+) queued(; last reload failed, running the previous "
                       r"configuration)?$")


# ---------------------------------------------------------------- helpers

def clean_env(ns=None, **extra):
    """The test's environment without anything systemd-ish inherited, plus
    NOTIFY_SOCKET (when ns is given) and `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NOTIFY_SOCKET", "WATCHDOG_", "LISTEN_"))}
    if ns is not None:
        env["NOTIFY_SOCKET"] = ns.path
    env.update(extra)
    return env


def wait_until(predicate, what, timeout=HANG, ns=None, d=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    detail = ""
    if ns is not None:
        detail += f"\nnotifications: {ns.all()}"
    if d is not None:
        detail += f"\nlog:\n{d.output()}"
    raise AssertionError(f"timed out waiting for {what}{detail}")


def n_ready(ns):
    return ns.keys().count("READY")


def wait_ready_count(ns, n, d=None, timeout=HANG):
    wait_until(lambda: n_ready(ns) >= n, f"READY=1 #{n}", timeout, ns, d)


def messages_with(ns, key):
    """[(arrival time, dict)] of the datagrams holding `key`, in order."""
    return [(t, dict(pairs)) for t, pairs in ns.timed() if key in dict(pairs)]


def status_only(ns):
    """[(arrival time, STATUS text)] of datagrams that carry STATUS= alone."""
    out = []
    for t, pairs in ns.timed():
        keys = [k for k, _ in pairs]
        if keys == ["STATUS"]:
            out.append((t, dict(pairs)["STATUS"]))
    return out


def state_messages(ns):
    """[dict] of the datagrams carrying READY, RELOADING or STOPPING."""
    return [dict(pairs) for pairs in ns.all() if any(k in STATE_KEYS for k, _ in pairs)]


def body_of(port, path):
    r = get(port, path)
    assert r.status == 200, r
    return r.body


def reload_with(d, ns, n_ready_before, **server):
    """Rewrites the config with `server` settings changed, sends SIGHUP and
    waits for the READY=1 that ends the reload. Returns that message."""
    d.settings["server"].update(server)
    d.write_config()
    d.send_signal(signal.SIGHUP)
    wait_ready_count(ns, n_ready_before + 1, d)
    return state_messages(ns)[-1]


def make_root(tmp_path, name, content):
    root = tmp_path / name
    root.mkdir()
    (root / "page.txt").write_bytes(content)
    return root


def log_lines(d, prefix):
    return [line for line in d.output().splitlines() if line.startswith(prefix)]


# ----------------------------------------------------------------- start

def test_first_message_is_ready_with_status_and_listeners_already_accept(make_daemon, notify_socket):
    ns = notify_socket
    d = make_daemon({"server": {"workers": 3}}, start=False)
    (d.root / "page.txt").write_bytes(b"up\n")
    d.start(env=clean_env(ns), wait=False)

    wait_until(lambda: ns.all() or d.proc.poll() is not None, "the first notification", ns=ns, d=d)
    # The moment anything arrives, a client must get in at once.
    with socket.create_connection(("127.0.0.1", d.port), timeout=1) as s:
        s.sendall(b"GET /page.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        c = Client(s)
        r = c.read_response()
        assert (r.status, r.body) == (200, b"up\n")

    first = dict(ns.all()[0])
    assert first.get("READY") == "1", f"first datagram is not READY=1: {ns.all()}"
    assert "STATUS" in first, first
    assert f"127.0.0.1:{d.port}" in first["STATUS"], first
    assert re.search(r"\b3 worker", first["STATUS"]), first
    assert ns.keys() == ["READY"]
    assert "serving" in d.output()


# ---------------------------------------------------------------- reload

def test_good_reload_sends_reloading_with_monotonic_usec_then_ready(make_daemon, notify_socket, tmp_path):
    ns = notify_socket
    d = make_daemon(start=False)
    (d.root / "page.txt").write_bytes(b"old\n")
    new_root = make_root(tmp_path, "root2", b"new\n")
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)
    assert body_of(d.port, "/page.txt") == b"old\n"

    sent_at = time.clock_gettime(time.CLOCK_MONOTONIC)
    reload_with(d, ns, 1, root=str(new_root))
    received_at = time.clock_gettime(time.CLOCK_MONOTONIC)

    assert ns.keys() == ["READY", "RELOADING", "READY"], ns.all()
    reloading = messages_with(ns, "RELOADING")
    assert len(reloading) == 1, f"expected exactly one RELOADING datagram: {ns.all()}"
    msg = reloading[0][1]
    assert msg["RELOADING"] == "1", msg
    assert "MONOTONIC_USEC" in msg, f"RELOADING=1 without MONOTONIC_USEC= in the same datagram: {msg}"
    assert msg["MONOTONIC_USEC"].isdigit(), msg
    stamp = int(msg["MONOTONIC_USEC"]) / USEC
    assert sent_at - 0.5 <= stamp <= received_at + 0.5, \
        f"MONOTONIC_USEC={stamp:.3f}s is not CLOCK_MONOTONIC now ({sent_at:.3f}..{received_at:.3f})"
    ready = state_messages(ns)[-1]
    assert ready.get("READY") == "1" and "reloaded" in ready.get("STATUS", ""), ready
    assert "failed" not in ready["STATUS"].lower(), ready

    assert body_of(d.port, "/page.txt") == b"new\n"
    assert "Configuration reloaded" in d.output()


def test_bad_reload_keeps_old_config_reports_file_line_then_good_reload_clears(
        make_daemon, notify_socket, tmp_path):
    ns = notify_socket
    d = make_daemon(start=False)
    (d.root / "page.txt").write_bytes(b"old\n")
    new_root = make_root(tmp_path, "root2", b"new\n")
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)

    # A new root and an unknown key: nothing of this file may be applied.
    d.extra = "bogus_key = 1\n"
    reload_with(d, ns, 1, root=str(new_root))
    lines = d.conf.read_text().splitlines()
    bad_line = lines.index("bogus_key = 1") + 1
    where = f"{d.conf}:{bad_line}"

    assert ns.keys() == ["READY", "RELOADING", "READY"], ns.all()
    ready = state_messages(ns)[-1]
    assert ready.get("READY") == "1", ready
    status = ready.get("STATUS", "")
    assert "failed" in status.lower() and where in status, \
        f"STATUS after a failed reload should say so and name {where}: {status!r}"
    errors = [l for l in log_lines(d, "<3>") if "Reload failed" in l]
    assert errors and where in errors[0] and "bogus_key" in errors[0], d.output()
    assert body_of(d.port, "/page.txt") == b"old\n", "a rejected config was (partly) applied"
    ns.wait_for(lambda m: list(m) == ["STATUS"] and "last reload failed" in m["STATUS"],
                timeout=3, what="a STATUS= that still mentions the failed reload")

    # Fixed: the same new root, without the bad key.
    d.extra = ""
    n_before = len(ns.all())
    reload_with(d, ns, 2)
    ready = state_messages(ns)[-1]
    assert ready.get("READY") == "1" and "failed" not in ready.get("STATUS", "failed").lower(), ready
    assert body_of(d.port, "/page.txt") == b"new\n"

    def cleared():
        later = [dict(p) for p in ns.all()[n_before:]]
        return any(list(m) == ["STATUS"] for m in later)
    wait_until(cleared, "a STATUS= after the good reload", timeout=3, ns=ns, d=d)
    later = [dict(p)["STATUS"] for p in ns.all()[n_before:] if [k for k, _ in p] == ["STATUS"]]
    assert all("failed" not in s for s in later), f"the good reload did not clear the failure: {later}"
    assert ns.keys() == ["READY", "RELOADING", "READY", "RELOADING", "READY"]


def test_reload_changing_workers_warns_restart_needed_and_keeps_serving(make_daemon, notify_socket, tmp_path):
    ns = notify_socket
    d = make_daemon({"server": {"workers": 2}}, start=False)
    (d.root / "page.txt").write_bytes(b"old\n")
    new_root = make_root(tmp_path, "root2", b"new\n")
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)

    ready = reload_with(d, ns, 1, workers=3, root=str(new_root))
    assert "failed" not in ready.get("STATUS", "").lower(), ready
    warnings = [l for l in log_lines(d, "<4>") if "workers" in l]
    assert warnings, f"no warning naming workers:\n{d.output()}"
    assert "restart" in warnings[0], warnings
    # The rest of the file applies; the daemon keeps serving.
    assert body_of(d.port, "/page.txt") == b"new\n"
    assert d.stop() == 0
    assert "All 2 worker thread(s) joined" in d.output(), d.output()


def test_reload_changing_listen_keeps_the_old_address(make_daemon, notify_socket):
    ns = notify_socket
    d = make_daemon(start=False)
    (d.root / "page.txt").write_bytes(b"x\n")
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)
    old_port, other = d.port, free_port()

    reload_with(d, ns, 1, listen=f"127.0.0.1:{other}")
    warnings = [l for l in log_lines(d, "<4>") if "listen" in l]
    assert warnings and "restart" in warnings[0], d.output()
    assert body_of(old_port, "/page.txt") == b"x\n"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", other), timeout=2).close()


def test_full_sequence_start_reload_bad_reload_stop(make_daemon, notify_socket, tmp_path):
    ns = notify_socket
    d = make_daemon(start=False)
    (d.root / "page.txt").write_bytes(b"old\n")
    new_root = make_root(tmp_path, "root2", b"new\n")
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)

    reload_with(d, ns, 1, root=str(new_root))
    d.extra = "[nosuchsection]\n"
    reload_with(d, ns, 2)
    assert body_of(d.port, "/page.txt") == b"new\n"

    assert d.stop() == 0, d.output()
    assert ns.keys() == ["READY", "RELOADING", "READY", "RELOADING", "READY", "STOPPING"], ns.all()
    stopping = state_messages(ns)[-1]
    assert stopping.get("STOPPING") == "1", stopping
    assert re.search(r"drain|stopping", stopping.get("STATUS", ""), re.I), stopping


# ---------------------------------------------------------------- STATUS

def test_status_counts_requests_rate_limited_and_silent_when_idle(make_daemon, notify_socket):
    ns = notify_socket
    d = make_daemon(start=False)
    (d.root / "page.txt").write_bytes(b"p\n")
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)

    # 7 found, 3 not found, spread over ~2 s so the counters change often.
    missing = {2, 5, 8}
    for i in range(10):
        r = get(d.port, "/missing.txt" if i in missing else "/page.txt")
        assert r.status == (404 if i in missing else 200), r
        time.sleep(0.2)
    last_request = time.monotonic()

    final = None
    deadline = last_request + 3
    while time.monotonic() < deadline and final is None:
        for t, s in status_only(ns):
            if "10 request(s)" in s and "3 4xx" in s and s.startswith("Serving: 0 connection(s)"):
                final = (t, s)
        time.sleep(0.02)
    assert final, f"no STATUS= with 10 request(s) and 3 4xx within 3 s: {status_only(ns)}"
    m = STATUS_RE.match(final[1])
    assert m and m.group(3) == "10" and m.group(4) == "3" and m.group(5) == "0", final

    # Idle: nothing changes, so nothing is sent.
    n_status = len(status_only(ns))
    time.sleep(3)
    statuses = status_only(ns)
    assert len(statuses) == n_status, \
        f"STATUS= sent while nothing changed: {statuses[n_status:]}"

    for t, s in statuses:
        assert STATUS_RE.match(s), f"unexpected STATUS format: {s!r}"
    gaps = [b[0] - a[0] for a, b in zip(statuses, statuses[1:])]
    assert len(statuses) >= 2, f"expected several STATUS= updates during 2 s of traffic: {statuses}"
    assert all(g >= 0.9 for g in gaps), \
        f"STATUS= sent more often than once a second: gaps {[round(g, 3) for g in gaps]}"
    assert ns.count("WATCHDOG") == 0, "WATCHDOG=1 sent without WATCHDOG_USEC"
    assert ns.keys() == ["READY"]


# -------------------------------------------------------------- watchdog

LAUNCHER = r"""
import fcntl, json, os, sys
binary, conf, env_json, fds_json = sys.argv[1:5]
fds = json.loads(fds_json)
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
targets = list(range(3, 3 + len(fds)))
for fd in fds:
    if fd not in targets:
        os.close(fd)
for h, target in zip(high, targets):
    os.dup2(h, target, inheritable=True)
    os.close(h)
env = dict(os.environ)
for k, v in json.loads(env_json).items():
    if v is None:
        env.pop(k, None)
    else:
        env[k] = v.replace("$PID", str(os.getpid()))
os.execve(binary, [binary, "-c", conf], env)
"""


def launch(d, env, env_updates, fds=(), wait=True):
    """Starts the daemon through a python launcher that moves `fds` to 3, 4,
    ... and execs the binary (same pid), with `env_updates` applied; "$PID"
    in a value becomes that pid, as systemd writes LISTEN_PID/WATCHDOG_PID."""
    d.write_config()
    d.log = open(d.log_path, "wb")
    d.proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, BIN, str(d.conf), json.dumps(env_updates),
         json.dumps([f for f in fds])],
        stdout=d.log, stderr=subprocess.STDOUT, env=as_journal_stream(d.log, env), pass_fds=tuple(fds))
    if wait:
        d.wait_ready()
    return d


def watchdog_times(ns, since):
    return [t for t, m in messages_with(ns, "WATCHDOG") if t >= since]


@pytest.mark.parametrize("how", ["no WATCHDOG_PID", "WATCHDOG_PID = own pid"])
def test_watchdog_pings_at_half_the_interval(make_daemon, notify_socket, how):
    ns = notify_socket
    d = make_daemon(start=False)
    if how == "no WATCHDOG_PID":
        d.start(env=clean_env(ns, WATCHDOG_USEC="500000"))
    else:
        launch(d, clean_env(ns), {"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "$PID"})
    wait_ready_count(ns, 1, d)

    t0 = time.monotonic()
    time.sleep(3)
    times = [t for t in watchdog_times(ns, t0) if t <= t0 + 3]
    assert 8 <= len(times) <= 16, f"{len(times)} WATCHDOG=1 in 3 s with WATCHDOG_USEC=500000 (expected ~12)"
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < 0.5, f"a gap of {max(gaps):.3f}s would let systemd's 500ms watchdog fire"
    for _, m in messages_with(ns, "WATCHDOG"):
        assert m == {"WATCHDOG": "1"}, m


def test_watchdog_pid_of_another_process_means_no_pings(make_daemon, notify_socket):
    ns = notify_socket
    d = make_daemon(start=False)
    d.start(env=clean_env(ns, WATCHDOG_USEC="500000", WATCHDOG_PID=str(os.getpid())))
    wait_ready_count(ns, 1, d)
    time.sleep(1.5)
    assert ns.count("WATCHDOG") == 0, "pinged a watchdog meant for another process"


# ----------------------------------------------------------------- drain

@pytest.mark.concurrency
def test_drain_extends_the_stop_timeout_about_once_a_second(make_daemon, notify_socket):
    ns = notify_socket
    shutdown = 3
    d = make_daemon({"timeouts": {"shutdown": f"{shutdown}s"}}, start=False)
    size = 16 * MIB
    (d.root / "big.bin").write_bytes(b"\xa5" * size)
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)

    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(HANG)
    s.connect(("127.0.0.1", d.port))
    try:
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            data = s.recv(4096)
            assert data, "closed before the response head"
            head += data
        assert head.startswith(b"HTTP/1.1 200"), head[:100]
        time.sleep(0.5)  # the daemon fills the socket and parks the connection

        signalled = time.monotonic()
        d.send_signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(HANG)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"did not exit within {HANG}s of SIGTERM:\n{d.output()}")
        elapsed = time.monotonic() - signalled
    finally:
        s.close()
    assert rc == 0, d.output()
    assert shutdown - 0.5 <= elapsed <= shutdown + 5, \
        f"exited {elapsed:.2f}s after SIGTERM with shutdown = {shutdown}s"

    assert ns.keys() == ["READY", "STOPPING"], ns.all()
    extends = messages_with(ns, "EXTEND_TIMEOUT_USEC")
    assert len(extends) >= 2, f"expected EXTEND_TIMEOUT_USEC= about once a second over {shutdown}s: {ns.all()}"
    stopping_at = messages_with(ns, "STOPPING")[0][0]
    limit = (shutdown + 5) * USEC
    for t, m in extends:
        assert t >= stopping_at, "EXTEND_TIMEOUT_USEC= before STOPPING=1"
        v = m["EXTEND_TIMEOUT_USEC"]
        assert v.isdigit() and 0 < int(v) <= limit, f"EXTEND_TIMEOUT_USEC={v} (limit {limit})"
        # What is left of the drain plus the 5 s margin.
        expected = (signalled + shutdown - t + 5) * USEC
        assert abs(int(v) - expected) <= 0.6 * USEC, f"EXTEND_TIMEOUT_USEC={v}, expected ~{expected:.0f}"
    gaps = [b[0] - a[0] for a, b in zip(extends, extends[1:])]
    assert all(0.8 <= g <= 2.2 for g in gaps), f"EXTEND_TIMEOUT_USEC= gaps {[round(g, 3) for g in gaps]}"
    assert "cutting 1 remaining connection" in d.output()


# ------------------------------------------------------ socket activation

@pytest.fixture
def short_dir():
    path = tempfile.mkdtemp(prefix="wpd")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_socket_activation_with_two_named_sockets(make_daemon, notify_socket, short_dir):
    ns = notify_socket
    d = make_daemon(start=False)
    (d.root / "page.txt").write_bytes(b"activated\n")
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    tcp_port = tcp.getsockname()[1]
    unix_path = os.path.join(short_dir, "s.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(unix_path)
    unix.listen(16)
    try:
        launch(d, clean_env(ns), {"LISTEN_FDS": "2", "LISTEN_PID": "$PID", "LISTEN_FDNAMES": "web:local"},
               fds=[tcp.fileno(), unix.fileno()])
        wait_ready_count(ns, 1, d)
    finally:
        tcp.close()  # the daemon holds its own copies now
        unix.close()

    assert "listen= settings are not used" in d.output(), d.output()
    assert body_of(tcp_port, "/page.txt") == b"activated\n"
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(10)
    u.connect(unix_path)
    with Client(u) as c:
        c.request("GET", "/page.txt")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"activated\n")
        c.request("GET", "/nope")
        assert c.read_response().status == 404

    status = state_messages(ns)[0].get("STATUS", "")
    assert f"127.0.0.1:{tcp_port}" in status and unix_path in status, status
    # The config's own address is not bound.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
    assert d.stop() == 0, d.output()
    assert ns.keys() == ["READY", "STOPPING"]


def _pipe_fds():
    r, w = os.pipe()
    return [r], [r, w], 3


def _unlistened_fds():
    s = socket.socket()
    return [s.fileno()], [s], 3


def _bound_unlistened_fds():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return [s.fileno()], [s], 3


def _udp_fds():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return [s.fileno()], [s], 3


def _good_then_pipe_fds():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    r, w = os.pipe()
    return [s.fileno(), r], [s, r, w], 4


@pytest.mark.parametrize("make_fds", [_pipe_fds, _unlistened_fds, _bound_unlistened_fds, _udp_fds,
                                      _good_then_pipe_fds],
                         ids=["pipe", "unconnected socket", "bound not listening", "udp socket",
                              "second fd a pipe"])
def test_passed_fd_that_is_not_a_listening_socket_is_refused(make_daemon, notify_socket, make_fds):
    ns = notify_socket
    d = make_daemon(start=False)
    fds, keep, bad = make_fds()
    try:
        launch(d, clean_env(ns), {"LISTEN_FDS": str(len(fds)), "LISTEN_PID": "$PID"}, fds=fds, wait=False)
        wait_until(lambda: d.proc.poll() is not None or ns.keys() or "serving" in d.output(),
                   "webpoold to exit", timeout=10, ns=ns, d=d)
        assert d.proc.poll() is not None and not ns.keys(), \
            f"webpoold started on a passed fd that is not a listener:\n{d.output()}"
    finally:
        for k in keep:
            k.close() if hasattr(k, "close") else os.close(k)
    rc = d.returncode = d.proc.wait()
    d.log.close()
    out = d.output()
    assert rc != 0, out
    assert f"descriptor {bad} is not a listening" in out, out
    assert re.search(r"^<3>", out, re.M), out
    assert "READY" not in ns.keys(), ns.all()
    d.check_clean()


# ---------------------------------------------------- reload and clients

@pytest.mark.concurrency
def test_keepalive_connection_opened_before_reload_is_served_from_new_root(make_daemon, notify_socket, tmp_path):
    ns = notify_socket
    d = make_daemon(start=False)
    (d.root / "page.txt").write_bytes(b"old\n")
    new_root = make_root(tmp_path, "root2", b"new\n")
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)

    with Client.connect(d.port) as c:
        c.request("GET", "/page.txt")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"old\n")
        assert "close" not in r.connection_tokens()

        reload_with(d, ns, 1, root=str(new_root))

        c.request("GET", "/page.txt")
        r = c.read_response()
        assert (r.status, r.body) == (200, b"new\n"), r
        c.request("GET", "/page.txt")
        assert c.read_response().body == b"new\n"
    assert ns.keys() == ["READY", "RELOADING", "READY"]


@pytest.mark.concurrency
def test_reloads_under_load_serve_one_root_or_the_other(make_daemon, notify_socket, tmp_path):
    ns = notify_socket
    d = make_daemon({"server": {"workers": 3}}, start=False)
    root_a = make_root(tmp_path, "ra", b"A" * 3000)
    root_b = make_root(tmp_path, "rb", b"B" * 5000)
    d.settings["server"]["root"] = str(root_a)
    d.start(env=clean_env(ns))
    wait_ready_count(ns, 1, d)

    stop = threading.Event()
    seen, errors = [], []

    def client():
        try:
            with Client.connect(d.port) as c:
                while not stop.is_set():
                    c.request("GET", "/page.txt")
                    r = c.read_response()
                    seen.append((r.status, r.body[:1], len(r.body)))
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        roots = [root_b, root_a] * 3
        for i, root in enumerate(roots):
            reload_with(d, ns, 1 + i, root=str(root))
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(HANG)
    assert not errors, errors
    assert seen and set(seen) <= {(200, b"A", 3000), (200, b"B", 5000)}, set(seen)
    assert body_of(d.port, "/page.txt") == b"A" * 3000
    assert ns.keys() == ["READY"] + ["RELOADING", "READY"] * len(roots), ns.keys()
    assert d.stop() == 0, d.output()
