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

import seccomp

BIN = os.path.abspath(os.environ.get("WEBPOOLD_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "webpoold"))

HANG_BOUND = 30  # seconds; only to catch hangs

# WEBPOOLD_TEST_NO_OPENAT2=1 starts every Daemon under a seccomp filter that
# answers openat2() with ENOSYS, as systemd's RestrictSUIDSGID= does, so the
# suite runs against the daemon's other path resolver.
NO_OPENAT2 = os.environ.get("WEBPOOLD_TEST_NO_OPENAT2") == "1"
RESOLVER_MARK = "openat(O_NOFOLLOW)" if NO_OPENAT2 else "openat2(RESOLVE_BENEATH)"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "WARNING: ThreadSanitizer",
                     "ERROR: ThreadSanitizer")


def daemon_argv(conf):
    """The command that starts the daemon on conf (under the filter when
    the suite runs against the walking resolver)."""
    argv = [BIN, "-c", str(conf)]
    return seccomp.without_openat2(argv) if NO_OPENAT2 else argv


def in_mount_namespace(setup):
    """A command prefix that runs its command in a mount namespace of its
    own, once the shell command setup has run there (as root: to mount)."""
    return ["unshare", "--mount", "--propagation", "private",
            "sh", "-c", setup + ' && exec "$@"', "sh"]


def as_journal_stream(log, env=None):
    """env (default: ours) saying that log is journald's stream, as systemd
    says it with JOURNAL_STREAM=, so the daemon prefixes each line with its
    priority ("<3>...") the way journald reads it."""
    env = dict(os.environ if env is None else env)
    st = os.fstat(log.fileno())
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    return env


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

    def start(self, env=None, pass_fds=(), wait=True, wrapper=()):
        """wrapper: a command that execs the daemon's (see in_mount_namespace)."""
        self.write_config()
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([*wrapper, *daemon_argv(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=as_journal_stream(self.log, env),
                                     pass_fds=pass_fds)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        deadline = time.monotonic() + HANG_BOUND
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"webpoold exited with {self.proc.returncode}:\n{self.output()}")
            out = self.output()
            if "serving" in out:
                # The resolver the suite meant to test is the one serving.
                startup = next(line for line in out.splitlines() if "serving" in line)
                assert RESOLVER_MARK in startup, startup
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
