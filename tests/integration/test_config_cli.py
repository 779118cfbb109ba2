"""The command line and configuration checking, as an administrator meets
them: `webpoold -t` accepts a good file and rejects a bad one with exit
status 78 (EX_CONFIG) and one precise "FILE:LINE: section.key: message" line;
the daemon itself refuses to start on a bad file."""

import http.client
import os
import re
import socket
import subprocess

import pytest

from conftest import BIN, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
EX_CONFIG = 78
LOG_PREFIX = re.compile(r"^<\d>")


def run(*args, timeout=30):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def error_lines(stderr):
    return [LOG_PREFIX.sub("", line) for line in stderr.splitlines() if line.strip()]


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "www"
    r.mkdir()
    return r


def good_config(root, port=None):
    return (f"[server]\n"
            f"listen = 127.0.0.1:{port or free_port()}\n"
            f"root = {root}\n"
            f"index = index.html\n"
            f"workers = 2\n"
            f"max_connections = 100\n"
            f"max_header_bytes = 4096\n"
            f"\n"
            f"[timeouts]\n"
            f"header = 10s\n"
            f"keepalive = 500ms\n"
            f"send = 2min\n"
            f"shutdown = 1h\n"
            f"\n"
            f"[log]\n"
            f"level = debug\n")


def test_good_config_passes(tmp_path, root):
    conf = tmp_path / "good.conf"
    conf.write_text(good_config(root))
    out = run("-t", "-c", str(conf))
    assert out.returncode == 0, out.stderr
    assert not any("err" in line.lower() for line in error_lines(out.stderr)), out.stderr


def test_good_config_with_every_listen_form(tmp_path, root):
    conf = tmp_path / "good.conf"
    conf.write_text(f"[server]\n"
                    f"listen = 127.0.0.1:8080 *:8081 8082\n"
                    f"listen = [::1]:8080 [::]:8081\n"
                    f"listen = unix:/run/webpoold-test.sock /run/webpoold-test2.sock unix:rel.sock\n"
                    f"  127.0.0.2:8080\n"
                    f"root = {root}\n")
    out = run("-t", "-c", str(conf))
    assert out.returncode == 0, out.stderr


def test_relative_root_is_next_to_config(tmp_path, root):
    conf = tmp_path / "rel.conf"
    conf.write_text("[server]\nroot = www\n")
    out = run("-t", "-c", str(conf))
    assert out.returncode == 0, out.stderr
    # Run from somewhere else: still resolved against the file's directory.
    out = subprocess.run([BIN, "-t", "-c", str(conf)], capture_output=True, text=True,
                         timeout=30, cwd="/")
    assert out.returncode == 0, out.stderr


# (name, config text with {root}, line, key or None, what the message names)
BAD_CONFIGS = [
    ("unknown-section", "[server]\nroot = {root}\n[bogus]\nx = 1\n", 3, None, "bogus"),
    ("unknown-key", "[server]\nroot = {root}\nfrobnicate = 1\n", 3, "server.frobnicate", "frobnicate"),
    ("key-in-wrong-section", "[server]\nroot = {root}\n[log]\nworkers = 2\n", 4, "log.workers", "workers"),
    ("workers-not-a-number", "[server]\nroot = {root}\nworkers = ten\n", 3, "server.workers", "ten"),
    ("workers-negative", "[server]\nroot = {root}\nworkers = -1\n", 3, "server.workers", "-1"),
    ("workers-float", "[server]\nroot = {root}\nworkers = 1.5\n", 3, "server.workers", "1.5"),
    ("workers-too-many", "[server]\nroot = {root}\nworkers = 5000\n", 3, "server.workers", "5000"),
    ("workers-overflow", "[server]\nroot = {root}\nworkers = 99999999999999999999999\n", 3,
     "server.workers", "99999999999999999999999"),
    ("max-connections-zero", "[server]\nroot = {root}\nmax_connections = 0\n", 3,
     "server.max_connections", "0"),
    ("header-bytes-too-small", "[server]\nroot = {root}\nmax_header_bytes = 100\n", 3,
     "server.max_header_bytes", "100"),
    ("header-bytes-too-big", "[server]\nroot = {root}\nmax_header_bytes = 2000000\n", 3,
     "server.max_header_bytes", "2000000"),
    ("duration-bad-unit", "[server]\nroot = {root}\n[timeouts]\nheader = 10 parsecs\n", 4,
     "timeouts.header", "10 parsecs"),
    ("duration-too-long", "[server]\nroot = {root}\n[timeouts]\nsend = 25h\n", 4, "timeouts.send", "25h"),
    ("duration-zero", "[server]\nroot = {root}\n[timeouts]\nheader = 0\n", 4, "timeouts.header", "0"),
    ("log-level", "[server]\nroot = {root}\n[log]\nlevel = chatty\n", 4, "log.level", "chatty"),
    ("listen-bad-ipv4", "[server]\nroot = {root}\nlisten = 999.1.1.1:80\n", 3, "server.listen", "999.1.1.1:80"),
    ("listen-bad-port", "[server]\nroot = {root}\nlisten = 127.0.0.1:99999\n", 3, "server.listen",
     "127.0.0.1:99999"),
    ("listen-port-zero", "[server]\nroot = {root}\nlisten = 127.0.0.1:0\n", 3, "server.listen", "127.0.0.1:0"),
    ("listen-hostname", "[server]\nroot = {root}\nlisten = localhost:80\n", 3, "server.listen", "localhost:80"),
    ("listen-ipv6-no-port", "[server]\nroot = {root}\nlisten = [::1]\n", 3, "server.listen", "[::1]"),
    ("listen-ipv6-unbracketed", "[server]\nroot = {root}\nlisten = ::1:80\n", 3, "server.listen", "::1:80"),
    ("listen-second-word-bad", "[server]\nroot = {root}\nlisten = 127.0.0.1:80 nonsense\n", 3,
     "server.listen", "nonsense"),
    ("listen-unix-too-long", "[server]\nroot = {root}\nlisten = unix:/" + "s" * 120 + "\n", 3,
     "server.listen", "unix:/sss"),
    ("listen-duplicate", "[server]\nroot = {root}\nlisten = 127.0.0.1:80\nlisten = 127.0.0.1:80\n", 4,
     "server.listen", "127.0.0.1:80"),
    ("root-missing", "[server]\nlisten = 127.0.0.1:8080\nroot = {root}/does/not/exist\n", 3,
     "server.root", "does/not/exist"),
    ("root-is-a-file", "[server]\nlisten = 127.0.0.1:8080\nroot = {root}/file.txt\n", 3,
     "server.root", "file.txt"),
    ("index-with-slash", "[server]\nroot = {root}\nindex = sub/index.html\n", 3, "server.index",
     "sub/index.html"),
    ("error-page-relative", "[server]\nroot = {root}\nerror_page_404 = 404.html\n", 3,
     "server.error_page_404", "404.html"),
    ("error-page-dotdot", "[server]\nroot = {root}\nerror_page_404 = /../404.html\n", 3,
     "server.error_page_404", "/../404.html"),
    ("key-set-twice", "[server]\nroot = {root}\nworkers = 2\nworkers = 3\n", 4, "server.workers", "line 3"),
    ("empty-value", "[server]\nroot = {root}\nworkers =\n", 3, "server.workers", None),
    ("indented-continuation", "[server]\nroot = {root}\nworkers = 2\n  3\n", 4, "server.workers", None),
]


@pytest.mark.parametrize("name,text,line,key,mention", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_rejected_with_one_precise_line(tmp_path, root, name, text, line, key, mention):
    (root / "file.txt").write_text("not a directory")
    conf = tmp_path / "bad.conf"
    conf.write_text(text.format(root=root))
    out = run("-t", "-c", str(conf))
    assert out.returncode == EX_CONFIG, (out.returncode, out.stdout, out.stderr)
    lines = error_lines(out.stderr)
    assert len(lines) == 1, out.stderr
    prefix = f"{conf}:{line}: " + (f"{key}: " if key else "")
    assert lines[0].startswith(prefix), (prefix, lines[0])
    assert len(lines[0]) > len(prefix), "the message explains nothing"
    if mention:
        assert mention in lines[0], lines[0]
    assert "is valid" not in out.stdout


def test_syntax_error_line_is_reported(tmp_path, root):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"[server]\nroot = {root}\nthis line has no equals sign\n")
    out = run("-t", "-c", str(conf))
    assert out.returncode == EX_CONFIG
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"{conf}:3: "), out.stderr


def test_only_the_first_error_is_reported(tmp_path, root):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"[server]\nroot = {root}\nworkers = many\nmax_connections = none\n"
                    f"[nonsense]\n")
    out = run("-t", "-c", str(conf))
    assert out.returncode == EX_CONFIG
    lines = error_lines(out.stderr)
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"{conf}:3: server.workers: "), lines[0]


def test_bad_config_daemon_exits_78_without_binding(tmp_path, root):
    port = free_port()
    conf = tmp_path / "bad.conf"
    conf.write_text(f"[server]\nlisten = 127.0.0.1:{port}\nroot = {root}\nworkers = 5000\n")
    out = run("-c", str(conf))
    assert out.returncode == EX_CONFIG, out.stderr
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"{conf}:4: server.workers: "), out.stderr
    assert "serving" not in out.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


def test_bad_root_daemon_exits_78_without_binding(tmp_path):
    port = free_port()
    conf = tmp_path / "bad.conf"
    conf.write_text(f"[server]\nlisten = 127.0.0.1:{port}\nroot = {tmp_path}/nowhere\n")
    out = run("-c", str(conf))
    assert out.returncode == EX_CONFIG, out.stderr
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"{conf}:3: server.root: "), out.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()


@pytest.mark.parametrize("flags", [["-t"], []], ids=["check", "start"])
def test_missing_config_file(tmp_path, flags):
    missing = tmp_path / "no-such.conf"
    out = run(*flags, "-c", str(missing))
    assert out.returncode == EX_CONFIG, out.stderr
    lines = error_lines(out.stderr)
    assert len(lines) == 1, out.stderr
    assert str(missing) in lines[0]
    assert "No such file or directory" in lines[0], lines[0]


def test_config_that_is_a_directory(tmp_path):
    out = run("-t", "-c", str(tmp_path))
    assert out.returncode == EX_CONFIG, out.stderr
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and str(tmp_path) in lines[0], out.stderr


def test_help(tmp_path):
    out = run("-h")
    assert out.returncode == 0
    assert "Usage" in out.stdout or "usage" in out.stdout
    for option in ("-c", "-t", "-r", "-h", "-V"):
        assert option in out.stdout, option


def test_version_matches_makefile():
    out = run("-V")
    assert out.returncode == 0
    m = re.fullmatch(r"webpoold (\d+\.\d+\.\d+\S*)\n", out.stdout)
    assert m, out.stdout
    # One source of truth: the newest entry of the Debian changelog, which
    # the Makefile reads.
    changelog = open(os.path.join(SOURCE_DIR, "packaging", "debian", "changelog")).readline()
    version = re.match(r"webpoold \(([^)]+)\)", changelog)
    assert version, changelog
    assert m.group(1) == version.group(1)


def test_extra_argument_is_usage_error(tmp_path):
    out = run("-t", "-c", "/dev/null", "surplus")
    assert out.returncode == 64
    assert "surplus" in out.stderr


def test_shipped_config_passes_with_existing_root(tmp_path, root):
    shipped = os.path.join(SOURCE_DIR, "conf", "webpoold.conf")
    text = open(shipped).read()
    assert re.search(r"^root = /var/www/html$", text, re.M), "shipped root line changed"
    conf = tmp_path / "webpoold.conf"
    conf.write_text(re.sub(r"^root = .*$", f"root = {root}", text, flags=re.M))
    out = run("-t", "-c", str(conf))
    assert out.returncode == 0, out.stderr
    # With a root that does not exist, it fails on the root line.
    missing_root = tmp_path / "gone"
    conf.write_text(re.sub(r"^root = .*$", f"root = {missing_root}", text, flags=re.M))
    out = run("-t", "-c", str(conf))
    assert out.returncode == EX_CONFIG
    root_line = text.splitlines().index("root = /var/www/html") + 1
    lines = error_lines(out.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"{conf}:{root_line}: server.root: "), out.stderr


def test_daemon_runs_with_shipped_config(make_daemon):
    """The shipped file, with only listen and root changed, starts a daemon
    that serves."""
    text = open(os.path.join(SOURCE_DIR, "conf", "webpoold.conf")).read()
    d = make_daemon(start=False)
    text = re.sub(r"^listen = .*\n", "", text, flags=re.M)
    text = re.sub(r"^root = .*$", f"listen = 127.0.0.1:{d.port}\nroot = {d.root}", text, flags=re.M)
    d.write_config = lambda: d.conf.write_text(text)
    d.start()
    (d.root / "index.html").write_text("shipped settings")
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 200 and r.read() == b"shipped settings"
    c.close()
