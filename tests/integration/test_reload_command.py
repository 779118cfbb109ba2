"""`webpoold -r PID`, the unit's ExecReload=: it checks the file, asks the
daemon to reload and returns only once the daemon has answered, so the
request that follows `systemctl reload` already sees the new file."""

import os
import signal
import subprocess
import time

from conftest import BIN, HANG_BOUND
from rawhttp import get


def reload_command(d):
    return subprocess.run([BIN, "-c", str(d.conf), "-r", str(d.proc.pid)], capture_output=True,
                          text=True, timeout=HANG_BOUND)


def test_the_next_request_sees_the_new_root(make_daemon, tmp_path):
    roots = []
    for i in range(2):
        root = tmp_path / f"site{i}"
        root.mkdir()
        (root / "index.html").write_text(f"site {i}\n")
        roots.append(root)
    d = make_daemon({"server": {"root": str(roots[0])}})
    assert get(d.port, "/").body == b"site 0\n"
    for n in range(1, 21):  # the command and the reload race if not tied
        d.settings["server"]["root"] = str(roots[n % 2])
        d.write_config()
        r = reload_command(d)
        assert r.returncode == 0, r
        assert get(d.port, "/").body == f"site {n % 2}\n".encode(), n
    assert d.proc.poll() is None


def test_an_invalid_file_fails_without_signalling(make_daemon):
    d = make_daemon()
    (d.root / "index.html").write_text("old\n")
    reloads_before = d.output().count("Reloading") + d.output().count("reloaded")
    d.conf.write_text(d.conf.read_text() + "no_such_key = 1\n")
    r = reload_command(d)
    assert r.returncode == 78, r
    assert f"{d.conf}:" in r.stderr and "no_such_key" in r.stderr, r.stderr
    time.sleep(0.2)  # a SIGHUP, had one been sent, would be logged by now
    assert d.output().count("Reloading") + d.output().count("reloaded") == reloads_before, d.output()
    assert get(d.port, "/").body == b"old\n"


def test_a_refusal_by_the_daemon_fails_the_command(make_daemon, tmp_path):
    """A file that passes the check but that the daemon cannot take: here
    its new root is removed between the check and the daemon's reading, the
    way a file edited in between would be. Done by stopping the daemon
    (SIGSTOP) while the command checks, so the order is certain."""
    d = make_daemon()
    (d.root / "index.html").write_text("old\n")
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    d.settings["server"]["root"] = str(doomed)
    d.write_config()
    os.kill(d.proc.pid, signal.SIGSTOP)
    try:
        cmd = subprocess.Popen([BIN, "-c", str(d.conf), "-r", str(d.proc.pid)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + HANG_BOUND
        while not sighup_pending(d.proc.pid):
            assert time.monotonic() < deadline and cmd.poll() is None, cmd.communicate()
            time.sleep(0.01)
        doomed.rmdir()
    finally:
        os.kill(d.proc.pid, signal.SIGCONT)
    out, _ = cmd.communicate(timeout=HANG_BOUND)
    assert cmd.returncode == 1, out
    assert "did not reload" in out, out
    assert get(d.port, "/").body == b"old\n"
    assert "Reload failed" in d.output() and "No such file" in d.output(), d.output()


def sighup_pending(pid):
    """Whether a SIGHUP waits for the (stopped) process pid: the command
    has checked the file and sent its request."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("ShdPnd:"):
                return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    return False


def test_no_such_process(tmp_path, make_daemon):
    d = make_daemon()
    r = subprocess.run([BIN, "-c", str(d.conf), "-r", "999999999"], capture_output=True, text=True,
                       timeout=HANG_BOUND)
    assert r.returncode in (1, 64), r
    assert r.stderr, r
