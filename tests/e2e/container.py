"""A systemd-nspawn container whose PID 1 is a real systemd, and a way to
run commands inside it.

nspawn runs in the background in its own session (a Ctrl-C on the terminal
reaches this script, which then halts the container, not nspawn directly).
Without a systemd on the host, --keep-unit and --register=no are required;
--private-network gives the guest its own loopback, so port 80 never clashes
with the host or with a parallel run."""

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

GUEST_ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=",
             "SYSTEMD_LOG_COLOR=0"]
BOOT_BOUND = 120   # seconds; booting takes about one
HALT_BOUND = 30
COMMAND_BOUND = 120
CLONE_NEWNET = 0x40000000


class Container:
    def __init__(self, root, name, console_log, binds=()):
        self.root = Path(root)
        self.name = name
        self.console_log = Path(console_log)
        self.binds = list(binds)   # (host path, guest path), read-only
        self.nspawn = None
        self.pid1 = None

    # --- lifecycle ------------------------------------------------------------------

    def boot(self):
        argv = ["systemd-nspawn", "-D", str(self.root), "-M", self.name, "--boot", "--register=no",
                "--keep-unit", "--private-network", "--console=read-only"]
        argv += [f"--bind-ro={host}:{guest}" for host, guest in self.binds]
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        with open(self.console_log, "wb") as log:
            self.nspawn = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           env=env, start_new_session=True)
        self.pid1 = self._wait_for_pid1()
        return self._wait_for_system()

    def _wait_for_pid1(self):
        """The container's systemd: a descendant of nspawn named systemd in
        another pid namespace."""
        host_pidns = os.readlink("/proc/self/ns/pid")
        deadline = time.monotonic() + BOOT_BOUND
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.nspawn.returncode}: {self.console_tail()}")
            for pid in _descendants(self.nspawn.pid):
                try:
                    if (Path(f"/proc/{pid}/comm").read_text().strip() == "systemd"
                            and os.readlink(f"/proc/{pid}/ns/pid") != host_pidns):
                        return pid
                except OSError:
                    pass   # gone meanwhile
            time.sleep(0.05)
        raise RuntimeError(f"no container PID 1 after {BOOT_BOUND}s: {self.console_tail()}")

    def _wait_for_system(self):
        """Waits until boot is over; returns 'running' or 'degraded'. The
        private bus appears a moment after PID 1, hence the retries."""
        deadline = time.monotonic() + BOOT_BOUND
        state = ""
        while time.monotonic() < deadline:
            r = self.run(["systemctl", "is-system-running", "--wait"], timeout=BOOT_BOUND)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.2)
        raise RuntimeError(f"guest never finished booting (last state '{state}'): {self.console_tail()}")

    def halt(self):
        """Powers the guest off: SIGTERM to nspawn asks systemd to halt. Falls
        back to SIGKILL of PID 1, then of nspawn. Safe to call twice."""
        if self.nspawn is None or self.nspawn.poll() is not None:
            self._forget_propagate_dir()
            return
        for pid, sig in [(self.nspawn.pid, signal.SIGTERM), (self.pid1, signal.SIGKILL),
                         (self.nspawn.pid, signal.SIGKILL)]:
            if pid is None:
                continue
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.nspawn.wait(timeout=HALT_BOUND)
                break
            except subprocess.TimeoutExpired:
                continue
        self._forget_propagate_dir()

    def _forget_propagate_dir(self):
        path = Path("/run/systemd/nspawn/propagate") / self.name
        if path.is_dir():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()

    def console_tail(self, lines=20):
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- commands inside --------------------------------------------------------------

    def argv(self, argv):
        """ARGV as run inside the guest, in all its namespaces, with a clean
        environment (nothing of this script's leaks in)."""
        return ["nsenter", "-t", str(self.pid1), "-a", "--", "env", "-i"] + GUEST_ENV + list(argv)

    def run(self, argv, input=None, timeout=COMMAND_BOUND):
        """CompletedProcess of ARGV inside, text output; never raises for a
        non-zero exit (callers judge it)."""
        return subprocess.run(self.argv(argv), input=input, capture_output=True, text=True, timeout=timeout,
                              cwd="/")

    def sh(self, script, *args, input=None, timeout=COMMAND_BOUND):
        return self.run(["sh", "-c", script, "sh"] + list(args), input=input, timeout=timeout)

    def popen(self, argv, **kwargs):
        return subprocess.Popen(self.argv(argv), cwd="/", **kwargs)

    def enter_network(self):
        """Moves this process (its calling thread, and every thread started
        from it afterwards) into the guest's network namespace: the sockets
        it opens from then on reach the guest's 127.0.0.1 and ::1. Commands
        it runs do not care: nsenter enters every namespace anyway."""
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/proc/{self.pid1}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns(network namespace of {self.pid1}): {os.strerror(e)}")
        finally:
            os.close(fd)


def _descendants(pid):
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            seen += children
            todo += children
    return seen
