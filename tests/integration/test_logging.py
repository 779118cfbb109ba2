"""What the daemon tells the administrator: a "<N>" priority prefix only on
journald's stream, and no silent failure: every 5xx logged with its cause
at err, a 403 from file permissions at notice, both rate-limited."""

import errno
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import seccomp
from conftest import BIN, HANG_BOUND, Daemon, as_journal_stream
from rawhttp import get

BAD_CONF = "[server]\nroot = /nonexistent-webpoold-root\nworkers = 1\n\n[nope]\nkey = 1\n"


def check_config(tmp_path, env):
    conf = tmp_path / "bad.conf"
    conf.write_text(BAD_CONF)
    log = open(tmp_path / "out.log", "wb")
    with log:
        rc = subprocess.run([BIN, "-t", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                            env=env(log), timeout=HANG_BOUND).returncode
    return rc, (tmp_path / "out.log").read_text()


def test_lines_are_plain_off_the_journal(tmp_path):
    """A terminal, a file or a pipe reads plain lines: no JOURNAL_STREAM, or
    one naming another stream (inherited from a service's shell), means no
    prefix."""
    plain = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    for env in (lambda log: plain, lambda log: {**plain, "JOURNAL_STREAM": "1:2"}):
        rc, out = check_config(tmp_path, env)
        assert rc == 78, out
        assert out.startswith(f"{tmp_path}/bad.conf:"), out
        assert not re.search(r"^<\d>", out, re.M), out


def test_lines_carry_the_priority_on_the_journal(tmp_path):
    rc, out = check_config(tmp_path, lambda log: as_journal_stream(log))
    assert rc == 78, out
    assert out.startswith(f"<3>{tmp_path}/bad.conf:"), out


def test_lines_are_plain_on_a_terminal(tmp_path):
    """`webpoold -t` typed at a terminal prints what a person reads."""
    conf = tmp_path / "bad.conf"
    conf.write_text(BAD_CONF)
    script = shutil.which("script")
    if script is None:
        pytest.fail("util-linux's script(1) is needed to give the daemon a terminal")
    r = subprocess.run([script, "-qec", f"{BIN} -t -c {conf}", "/dev/null"], capture_output=True,
                       text=True, timeout=HANG_BOUND, env={k: v for k, v in os.environ.items()
                                                           if k != "JOURNAL_STREAM"})
    assert r.returncode == 78, r
    assert f"{conf}:" in r.stdout and "<3>" not in r.stdout, r.stdout


def priority_lines(out, priority):
    return [line for line in out.splitlines() if line.startswith(f"<{priority}>")]


class FaultyDaemon(Daemon):
    """A daemon whose every openat2() fails with EIO: the fault a broken
    disk or a filter returns, which the server cannot answer but with 500."""

    def start(self, env=None, pass_fds=(), wait=True):
        self.write_config()
        self.log = open(self.log_path, "wb")
        argv = seccomp.without_openat2([BIN, "-c", str(self.conf)], errno.EIO)
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=as_journal_stream(self.log))
        self.wait_ready()
        return self


def test_every_5xx_is_logged_at_err_with_its_cause_rate_limited(tmp_path):
    d = FaultyDaemon(tmp_path, tmp_path / "root")
    (d.root / "page.html").write_text("never read")
    d.start()
    try:
        for _ in range(40):
            assert get(d.port, "/page.html").status == 500
        assert get(d.port, "/").status == 500
    finally:
        assert d.stop() == 0, d.output()
    d.check_clean()
    errors = [l for l in priority_lines(d.output(), 3) if "answering 500" in l]
    assert errors, d.output()
    assert "/page.html" in errors[0] and str(d.root) in errors[0], errors[0]
    assert "Input/output error" in errors[0], errors[0]
    # 41 faults in well under the limiter's window: at most its burst.
    assert len(errors) <= 10, errors


@pytest.fixture
def reachable_dir():
    """A directory an unprivileged user can reach (tmp_path's parents are
    private to the user running the tests)."""
    d = Path(tempfile.mkdtemp(prefix="webpoold-log-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


NOBODY = 65534


def test_permission_denied_is_a_403_logged_at_notice(reachable_dir):
    """Run as an unprivileged user (the tests run as root, like CI), the
    daemon meets a file it may not read."""
    d = Daemon(reachable_dir, reachable_dir / "root")
    d.write_config()
    os.chmod(d.root, 0o755)
    os.chmod(d.conf, 0o644)
    (d.root / "open.txt").write_text("readable")
    (d.root / "closed.txt").write_text("private")
    os.chmod(d.root / "open.txt", 0o644)
    os.chmod(d.root / "closed.txt", 0o600)
    # The user must reach the binary, wherever the checkout lives.
    binary = reachable_dir / "webpoold"
    shutil.copy(BIN, binary)
    os.chmod(binary, 0o755)
    d.log = open(d.log_path, "wb")
    d.proc = subprocess.Popen([str(binary), "-c", str(d.conf)], stdout=d.log, stderr=subprocess.STDOUT,
                              env=as_journal_stream(d.log), user=NOBODY, group=NOBODY,
                              extra_groups=[])
    try:
        d.wait_ready()
        assert get(d.port, "/open.txt").body == b"readable"
        for _ in range(30):
            assert get(d.port, "/closed.txt").status == 403
    finally:
        assert d.stop() == 0, d.output()
    d.check_clean()
    notices = [l for l in priority_lines(d.output(), 5) if "/closed.txt" in l]
    assert notices and "Permission denied" in notices[0] and "403" in notices[0], d.output()
    assert len(notices) <= 10, notices
    assert not priority_lines(d.output(), 3), d.output()
