"""The access log, as an administrator reads it: a combined-format file that
logrotate can rotate (SIGUSR1), or one journal entry per request with
fields journalctl can match on."""
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BIN, HANG_BOUND
from rawhttp import get

COMBINED = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<ua>[^"]*)"$')


def wait_lines(path, n):
    deadline = time.monotonic() + HANG_BOUND
    while time.monotonic() < deadline:
        if path.exists():
            lines = path.read_text().splitlines()
            if len(lines) >= n:
                return lines
        time.sleep(0.02)
    raise AssertionError(f"expected {n} lines in {path}")


def request(port, raw):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk


def test_file_log_is_combined_format(make_daemon, tmp_path):
    log = tmp_path / "access.log"
    d = make_daemon({"log": {"access": str(log)}})
    (d.root / "a.txt").write_bytes(b"12345")
    request(d.port, b"GET /a.txt?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: probe/1\r\n"
                    b"Referer: http://r/\r\nConnection: close\r\n\r\n")
    request(d.port, b"HEAD /missing HTTP/1.0\r\n\r\n")
    lines = wait_lines(log, 2)
    first, second = (COMBINED.match(line) for line in lines[:2])
    assert first and second, lines
    assert first["addr"] == "127.0.0.1"
    assert first["request"] == "GET /a.txt?x=1 HTTP/1.1"
    assert (first["status"], first["bytes"]) == ("200", "5")
    assert (first["referer"], first["ua"]) == ("http://r/", "probe/1")
    assert second["request"] == "HEAD /missing HTTP/1.0"
    assert (second["status"], second["bytes"], second["referer"], second["ua"]) == ("404", "0", "-", "-")


def test_client_cannot_forge_log_lines(make_daemon, tmp_path):
    log = tmp_path / "access.log"
    d = make_daemon({"log": {"access": str(log)}})
    request(d.port, b'GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: x" 200 1 "\xff\r\nConnection: close\r\n\r\n')
    lines = wait_lines(log, 1)
    assert len(lines) == 1
    m = COMBINED.match(lines[0])
    assert m, lines[0]
    assert m["ua"].lower() == r"x\x22 200 1 \x22\xff"


def test_unparsable_request_is_logged_as_400(make_daemon, tmp_path):
    log = tmp_path / "access.log"
    d = make_daemon({"log": {"access": str(log)}})
    request(d.port, b"\x16\x03\x01 not http\r\n\r\n")
    m = COMBINED.match(wait_lines(log, 1)[0])
    assert m and m["request"] == "-" and m["status"] == "400"


def test_sigusr1_reopens_after_rotation(make_daemon, tmp_path):
    log = tmp_path / "access.log"
    d = make_daemon({"log": {"access": str(log)}})
    (d.root / "a.txt").write_bytes(b"a")
    assert get(d.port, "/a.txt").status == 200
    wait_lines(log, 1)
    rotated = tmp_path / "access.log.1"
    os.rename(log, rotated)
    assert get(d.port, "/a.txt?still-old").status == 200  # before the signal: old file
    wait_lines(rotated, 2)
    d.send_signal(signal.SIGUSR1)
    d.wait_for_log("Access log reopened")
    assert get(d.port, "/a.txt?new").status == 200
    assert "?new" in wait_lines(log, 1)[0]
    assert all("?new" not in line for line in rotated.read_text().splitlines())


def test_access_log_is_off_by_default(daemon, tmp_path):
    (daemon.root / "a.txt").write_bytes(b"a")
    assert get(daemon.port, "/a.txt").status == 200
    assert daemon.stop() == 0
    assert "GET /a.txt" not in daemon.output()


# --- journal ---------------------------------------------------------------

def parse_native(data):
    """The journal's native protocol: FIELD=value lines, or for values with
    newlines FIELD\\n, a 64-bit little-endian length, the value and \\n."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            fields[k.decode()] = v.decode(errors="replace")
            i = nl + 1
        else:
            (size,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            fields[line.decode()] = data[nl + 9:nl + 9 + size].decode(errors="replace")
            i = nl + 9 + size + 1
    return fields


class StubJournal:
    def __init__(self, directory):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(os.path.join(directory, "socket"))
        self.sock.settimeout(0.1)
        self.entries, self.running = [], True
        self.thread = threading.Thread(target=self.collect, daemon=True)
        self.thread.start()

    def collect(self):
        while self.running:
            try:
                self.entries.append(parse_native(self.sock.recv(1 << 20)))
            except socket.timeout:
                continue

    def requests(self):
        return [e for e in self.entries if "HTTP_STATUS" in e]

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture
def stub_journal():
    directory = tempfile.mkdtemp(prefix="wpj")
    journal = StubJournal(directory)
    yield directory, journal
    journal.close()
    os.unlink(os.path.join(directory, "socket"))
    os.rmdir(directory)


def test_journal_entry_per_request_with_fields(make_daemon, stub_journal):
    """The daemon runs in a private mount namespace where the journal's socket
    is ours, so sd_journal_send() really sends and we read what it sent."""
    directory, journal = stub_journal
    os.makedirs("/run/systemd/journal", exist_ok=True)
    d = make_daemon({"log": {"access": "journal"}}, start=False)
    (d.root / "page.html").write_bytes(b"<p>hi</p>")
    d.write_config()
    d.log = open(d.log_path, "wb")
    d.proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$1" /run/systemd/journal && exec "$2" -c "$3"', "sh",
         directory, BIN, str(d.conf)],
        stdout=d.log, stderr=subprocess.STDOUT)
    d.wait_ready()
    get(d.port, "/page.html", headers=[("User-Agent", "probe/2")])
    get(d.port, "/missing")
    deadline = time.monotonic() + HANG_BOUND
    while len(journal.requests()) < 2:
        assert time.monotonic() < deadline, journal.entries
        time.sleep(0.02)
    # Two workers may each log theirs first: tell the entries apart by path.
    by_path = {e.get("HTTP_PATH"): e for e in journal.requests()}
    ok, missing = by_path["/page.html"], by_path["/missing"]
    assert ok["HTTP_METHOD"] == "GET" and ok["HTTP_PATH"] == "/page.html"
    assert ok["HTTP_STATUS"] == "200" and ok["HTTP_BYTES"] == "9"
    assert ok["REMOTE_ADDR"] == "127.0.0.1" and ok["HTTP_USER_AGENT"] == "probe/2"
    assert int(ok["HTTP_DURATION_USEC"]) >= 0
    assert ok["PRIORITY"] == "6" and "page.html" in ok["MESSAGE"]
    assert missing["HTTP_STATUS"] == "404"
