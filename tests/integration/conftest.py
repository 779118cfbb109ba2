"""Fixtures that run the real webpoold binary as a black box.

Each daemon gets a temporary document root, a config file and an ephemeral
loopback port, and is stopped (SIGTERM, then SIGKILL after a generous bound)
when the test ends. A daemon that exits non-zero, or prints a sanitizer
report, fails the test that started it."""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

BIN = os.path.abspath(os.environ.get("WEBPOOLD_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "webpoold"))

HANG_BOUND = 30  # seconds; only to catch hangs

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "WARNING: ThreadSanitizer",
                     "ERROR: ThreadSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, base, root, settings=None, extra=""):
        self.root = root
        self.root.mkdir(exist_ok=True)
        tmp_path = base
        self.port = free_port()
        self.conf = tmp_path / "webpoold.conf"
        self.log_path = tmp_path / "stderr.log"
        self.settings = {
            "server": {"listen": f"127.0.0.1:{self.port}", "root": str(self.root)},
            "log": {"level": "info"},
        }
        for section, values in (settings or {}).items():
            self.settings.setdefault(section, {}).update(values)
        self.extra = extra
        self.proc = None
        self.returncode = None

    def write_config(self):
        lines = []
        for section, values in self.settings.items():
            lines.append(f"[{section}]")
            for key, value in values.items():
                for v in (value if isinstance(value, list) else [value]):
                    lines.append(f"{key} = {v}")
        self.conf.write_text("\n".join(lines) + "\n" + self.extra)

    def start(self, env=None, pass_fds=(), wait=True):
        self.write_config()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BIN, "-c", str(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, pass_fds=pass_fds)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + HANG_BOUND
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"webpoold exited with {self.proc.returncode}:\n{self.output()}")
            if "serving" in self.output():
                return
            time.sleep(0.02)
        raise AssertionError("webpoold did not become ready:\n" + self.output())

    def wait_for_log(self, text, count=1, timeout=HANG_BOUND):
        """Waits until `text` appears `count` times in the daemon's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output().count(text) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"log never showed {text!r} {count} time(s):\n{self.output()}")

    def output(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return s

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        """Stops the daemon and returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(HANG_BOUND)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("webpoold did not stop on SIGTERM:\n" + self.output())
        self.returncode = self.proc.returncode
        self.log.close()
        return self.returncode

    def check_clean(self):
        out = self.output()
        for marker in SANITIZER_MARKERS:
            assert marker not in out, out


class NotifySocket:
    """What systemd's end of NOTIFY_SOCKET sees: every datagram, in order,
    each parsed into a list of (key, value) pairs."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _collect(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            pairs = [tuple(line.split("=", 1)) for line in data.decode().split("\n") if "=" in line]
            with self.lock:
                self.messages.append((time.monotonic(), pairs))

    def all(self):
        with self.lock:
            return [pairs for _, pairs in self.messages]

    def timed(self):
        with self.lock:
            return list(self.messages)

    def keys(self):
        """The sequence of state keys (READY, RELOADING, STOPPING, ...) in order,
        ignoring STATUS-only and WATCHDOG messages."""
        seq = []
        for pairs in self.all():
            for k, _ in pairs:
                if k in ("READY", "RELOADING", "STOPPING"):
                    seq.append(k)
        return seq

    def wait_for(self, predicate, timeout=HANG_BOUND, what="a notification"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pairs in self.all():
                if predicate(dict(pairs)):
                    return dict(pairs)
            time.sleep(0.02)
        raise AssertionError(f"no {what} among {self.all()}")

    def count(self, key):
        return sum(1 for pairs in self.all() for k, _ in pairs if k == key)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


@pytest.fixture
def webpoold_bin():
    return BIN


@pytest.fixture
def make_daemon(tmp_path):
    """Returns a factory: make_daemon(settings) -> a started Daemon."""
    started = []

    def factory(settings=None, start=True, extra="", **kwargs):
        base = tmp_path / f"d{len(started)}"
        base.mkdir()
        # Instances of one test share a document root.
        d = Daemon(base, tmp_path / "root", settings, extra)
        started.append(d)
        if start:
            d.start(**kwargs)
        return d

    yield factory
    for d in started:
        if d.proc is not None and d.returncode is None:
            rc = d.stop()
            d.check_clean()
            assert rc == 0, f"webpoold exited with {rc}:\n{d.output()}"


@pytest.fixture
def daemon(make_daemon):
    return make_daemon()
