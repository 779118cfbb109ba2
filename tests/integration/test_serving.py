"""What a client and an administrator see of webpoold serving files:
bodies, headers, directories, connection management, pipelining, path
traversal, special files, error statuses and the ways of listening.

Everything goes through real sockets against the real binary (see
conftest.py); rawhttp reads responses byte by byte so that framing,
pipelining and connection closes can be checked exactly."""

import ctypes
import email.utils
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

from conftest import BIN, daemon_argv, free_port, in_mount_namespace
from rawhttp import Client, build_request, exchange, get

IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} GMT$")

SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT\n"


def media_type(resp):
    value = resp.header("Content-Type")
    assert value is not None, resp
    return value.split(";")[0].strip().lower()


def allow_methods(resp):
    return {m.strip() for v in resp.header_all("Allow") for m in v.split(",") if m.strip()}


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


# --- bodies and headers -----------------------------------------------------

@pytest.mark.parametrize("size", [0, 13, 5 * 1024 * 1024 + 7], ids=["empty", "small", "5MiB"])
def test_body_is_byte_exact(daemon, size):
    data = os.urandom(size)
    write(daemon.root / "f.bin", data)
    with Client.connect(daemon.port) as c:
        c.request("GET", "/f.bin")
        r = c.read_response()
        assert r.status == 200
        assert r.header("Content-Length") == str(size)
        assert r.body == data
        # The connection is still in step: nothing extra was sent.
        c.request("GET", "/f.bin")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == data
        c.no_stray_bytes()


def test_several_large_files_on_one_connection(daemon):
    blobs = [os.urandom(3 * 1024 * 1024 + i) for i in range(3)]
    for i, b in enumerate(blobs):
        write(daemon.root / f"big{i}.bin", b)
    with Client.connect(daemon.port) as c:
        c.send(b"".join(build_request("GET", f"/big{i}.bin") for i in range(3)))
        for b in blobs:
            r = c.read_response()
            assert r.status == 200 and r.body == b


@pytest.mark.parametrize("name", ["page.html", "empty.txt", "data.bin"])
def test_head_matches_get_without_body(daemon, name):
    write(daemon.root / "page.html", "<p>hi</p>\n")
    write(daemon.root / "empty.txt", b"")
    write(daemon.root / "data.bin", os.urandom(100000))
    with Client.connect(daemon.port) as c:
        c.request("GET", "/" + name)
        g = c.read_response()
        c.request("HEAD", "/" + name)
        h = c.read_response(head_request=True)
        assert g.status == h.status == 200
        for field in ("Content-Length", "Content-Type", "Last-Modified"):
            assert h.header(field) == g.header(field), field
        assert h.header("Content-Length") == str(len(g.body))
        # No body bytes followed the HEAD response: the next response on the
        # connection parses from its very first byte.
        c.request("GET", "/page.html")
        nxt = c.read_response()
        assert nxt.status == 200 and nxt.body == b"<p>hi</p>\n"
        c.no_stray_bytes()


def test_head_of_error_has_no_body(daemon):
    with Client.connect(daemon.port) as c:
        c.request("HEAD", "/missing")
        r = c.read_response(head_request=True)
        assert r.status == 404
        assert int(r.header("Content-Length")) > 0
        write(daemon.root / "ok.txt", "ok")
        c.request("GET", "/ok.txt")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"ok"


def test_date_header_is_imf_fixdate_and_current(daemon):
    write(daemon.root / "a.txt", "a")
    for target in ("/a.txt", "/missing"):
        before = time.time()
        r = get(daemon.port, target)
        after = time.time()
        date = r.header("Date")
        assert date is not None and IMF_FIXDATE.match(date), date
        t = email.utils.parsedate_to_datetime(date).timestamp()
        assert before - 2 <= t <= after + 2, (date, before, after)


def test_last_modified_is_file_mtime(daemon):
    p = write(daemon.root / "old.txt", "old")
    mtime = 1_600_000_000  # Sun, 13 Sep 2020 12:26:40 GMT
    os.utime(p, (mtime, mtime))
    r = get(daemon.port, "/old.txt")
    assert r.status == 200
    assert r.header("Last-Modified") == "Sun, 13 Sep 2020 12:26:40 GMT"
    assert r.header("Last-Modified") == email.utils.formatdate(mtime, usegmt=True)
    h = get(daemon.port, "/old.txt", method="HEAD")
    assert h.header("Last-Modified") == "Sun, 13 Sep 2020 12:26:40 GMT"


@pytest.mark.parametrize("name,expected", [
    ("index.html", "text/html"),
    ("style.css", "text/css"),
    ("image.png", "image/png"),
    ("data.json", "application/json"),
    ("notes.txt", "text/plain"),
    ("UPPER.HTML", "text/html"),
    ("archive.unknownext", "application/octet-stream"),
    ("README", "application/octet-stream"),
    ("dir.d/noext", "application/octet-stream"),
])
def test_content_type_from_mime_types(daemon, name, expected):
    write(daemon.root / name, b"x")
    r = get(daemon.port, "/" + name)
    assert r.status == 200
    assert media_type(r) == expected


def test_content_type_agrees_with_etc_mime_types(daemon):
    """Every extension checked here is looked up in the system table itself."""
    text = open("/etc/mime.types").read()  # media-types is a test dependency
    table = {}
    for line in text.splitlines():
        fields = line.split("#")[0].split()
        for ext in fields[1:]:
            table.setdefault(ext, fields[0])
    for ext in ("html", "css", "png", "json", "svg", "js", "pdf", "woff2"):
        if ext not in table:
            continue
        write(daemon.root / f"f.{ext}", b"x")
        r = get(daemon.port, f"/f.{ext}")
        assert r.status == 200
        assert media_type(r) == table[ext].lower(), ext


# --- directories, redirects and errors pages --------------------------------

def test_index_for_root_and_subdirectory(daemon):
    write(daemon.root / "index.html", "root index")
    write(daemon.root / "sub" / "index.html", "sub index")
    r = get(daemon.port, "/")
    assert r.status == 200 and r.body == b"root index" and media_type(r) == "text/html"
    r = get(daemon.port, "/sub/")
    assert r.status == 200 and r.body == b"sub index"
    r = get(daemon.port, "/sub/?q=1")
    assert r.status == 200 and r.body == b"sub index"


def test_custom_index_name(make_daemon):
    d = make_daemon({"server": {"index": "start.htm"}})
    write(d.root / "start.htm", "custom")
    write(d.root / "index.html", "default")
    r = get(d.port, "/")
    assert r.status == 200 and r.body == b"custom"


@pytest.mark.parametrize("target,location", [
    ("/sub", "/sub/"),
    ("/sub?x=1", "/sub/?x=1"),
    ("/a/b", "/a/b/"),
    ("/sp%20dir", "/sp%20dir/"),
    ("http://h/sub", "/sub/"),
])
def test_directory_without_slash_redirects(daemon, target, location):
    write(daemon.root / "sub" / "index.html", "sub index")
    write(daemon.root / "a" / "b" / "index.html", "ab")
    write(daemon.root / "sp dir" / "index.html", "sp")
    with Client.connect(daemon.port) as c:
        c.request("GET", target)
        r = c.read_response()
        assert r.status == 301
        assert r.header("Location") == location
        # The redirect keeps the connection usable.
        c.request("GET", location)
        r2 = c.read_response()
        assert r2.status == 200


@pytest.mark.parametrize("target", [
    "//evil.example/%2e%2e/sub",
    "//sub",
    "///sub",
    "/%2fevil.example/%2e%2e/sub",
    "/\\evil.example/%2e%2e/sub",
    "/./%2F/evil.example/../sub",
], ids=["double-slash-host", "double-slash", "triple-slash", "encoded-slash", "backslash", "dot-encoded-slash"])
def test_redirect_never_points_to_another_host(daemon, target):
    """A Location starting with "//" (or "/\\", which browsers read the
    same way) would send the client to another host: an open redirect."""
    write(daemon.root / "sub" / "index.html", "sub index")
    r = exchange(daemon.port, f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    if r.status != 301:
        assert 400 <= r.status < 500, r
        return
    location = r.header("Location")
    assert location.startswith("/") and location[1:2] not in ("/", "\\"), location
    assert "\\" not in location, location
    assert urllib.parse.urlsplit(urllib.parse.urljoin("http://h/x", location)).netloc == "h", location


def test_directory_without_index_is_forbidden(daemon):
    (daemon.root / "empty").mkdir()
    write(daemon.root / "files" / "a.txt", "a")
    for target in ("/empty/", "/files/"):
        r = get(daemon.port, target)
        assert r.status == 403, target
        assert b"a.txt" not in r.body  # no listing


def test_index_that_is_a_directory_is_not_served(daemon):
    (daemon.root / "d" / "index.html").mkdir(parents=True)
    r = get(daemon.port, "/d/")
    assert r.status in (403, 404)


def test_missing_file_gives_builtin_404(daemon):
    for target in ("/nope.html", "/no/such/dir/file", "/nope/"):
        r = get(daemon.port, target)
        assert r.status == 404, target
        assert media_type(r) == "text/html"
        assert b"404" in r.body and b"Not Found" in r.body
        assert r.header("Content-Length") == str(len(r.body))


def test_file_with_trailing_slash_is_not_found(daemon):
    write(daemon.root / "f.txt", "f")
    assert get(daemon.port, "/f.txt/").status == 404


def test_custom_404_page(make_daemon):
    d = make_daemon({"server": {"error_page_404": "/404.html"}})
    page = b"<h1>custom not found page</h1>\n"
    write(d.root / "404.html", page)
    with Client.connect(d.port) as c:
        c.request("GET", "/missing.txt")
        r = c.read_response()
        assert r.status == 404
        assert r.body == page
        assert media_type(r) == "text/html"
        c.request("HEAD", "/missing.txt")
        h = c.read_response(head_request=True)
        assert h.status == 404 and h.header("Content-Length") == str(len(page))
        # Still usable afterwards.
        c.request("GET", "/404.html")
        assert c.read_response().status == 200


def test_custom_404_page_missing_falls_back_to_builtin(make_daemon):
    d = make_daemon({"server": {"error_page_404": "/404.html"}})
    r = get(d.port, "/missing.txt")
    assert r.status == 404
    assert b"Not Found" in r.body


@pytest.mark.parametrize("target,name", [
    ("/a%20b.txt", "a b.txt"),
    ("/caf%C3%A9.txt", "caf\u00e9.txt"),
    ("/%61.txt", "a.txt"),
    ("/per%25cent.txt", "per%cent.txt"),
    ("/what%3Fnot.txt", "what?not.txt"),
    ("/hash%23tag.txt", "hash#tag.txt"),
    ("/sp%20dir/x%2By.txt", "sp dir/x+y.txt"),
])
def test_percent_encoded_names(daemon, target, name):
    content = f"content of {name}".encode()
    write(daemon.root / name, content)
    r = get(daemon.port, target)
    assert r.status == 200, r
    assert r.body == content


def test_query_string_is_ignored_for_files(daemon):
    write(daemon.root / "q.txt", "q")
    r = get(daemon.port, "/q.txt?v=123&x=%2e%2e")
    assert r.status == 200 and r.body == b"q"


def test_absolute_form_target_is_served(daemon):
    write(daemon.root / "abs.txt", "absolute")
    r = exchange(daemon.port, b"GET http://example.org/abs.txt HTTP/1.1\r\nHost: example.org\r\n\r\n")
    assert r.status == 200 and r.body == b"absolute"


# --- connection management --------------------------------------------------

def test_http11_keep_alive_two_requests(daemon):
    write(daemon.root / "one.txt", "one")
    write(daemon.root / "two.txt", "two")
    with Client.connect(daemon.port) as c:
        c.request("GET", "/one.txt")
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"one"
        assert "close" not in r1.connection_tokens()
        c.request("GET", "/two.txt")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"two"


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "  close  "])
def test_connection_close_is_honoured(daemon, value):
    write(daemon.root / "one.txt", "one")
    with Client.connect(daemon.port) as c:
        c.request("GET", "/one.txt", [("Connection", value)])
        r = c.read_response()
        assert r.status == 200 and r.body == b"one"
        assert "close" in r.connection_tokens()
        assert c.closed_by_server()


def test_connection_close_on_error_response(daemon):
    with Client.connect(daemon.port) as c:
        c.request("GET", "/missing", [("Connection", "close")])
        r = c.read_response()
        assert r.status == 404
        assert "close" in r.connection_tokens()
        assert c.closed_by_server()


def test_http10_closes_by_default(daemon):
    write(daemon.root / "one.txt", "one")
    with Client.connect(daemon.port) as c:
        c.request("GET", "/one.txt", version="HTTP/1.0")
        r = c.read_response()
        assert r.status == 200 and r.body == b"one"
        assert "keep-alive" not in r.connection_tokens()
        assert c.closed_by_server()


def test_http10_keep_alive(daemon):
    write(daemon.root / "one.txt", "one")
    write(daemon.root / "two.txt", "two")
    with Client.connect(daemon.port) as c:
        c.request("GET", "/one.txt", [("Connection", "keep-alive")], version="HTTP/1.0")
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"one"
        assert "keep-alive" in r1.connection_tokens()
        c.request("GET", "/two.txt", [("Connection", "Keep-Alive")], version="HTTP/1.0")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"two"
        assert "keep-alive" in r2.connection_tokens()
        # The last request without keep-alive ends the connection.
        c.request("GET", "/one.txt", version="HTTP/1.0")
        r3 = c.read_response()
        assert r3.body == b"one"
        assert c.closed_by_server()


def test_keepalive_off_in_config_closes(make_daemon):
    d = make_daemon({"timeouts": {"keepalive": "0"}})
    write(d.root / "one.txt", "one")
    with Client.connect(d.port) as c:
        c.request("GET", "/one.txt")
        r = c.read_response()
        assert r.status == 200 and r.body == b"one"
        assert "close" in r.connection_tokens()
        assert c.closed_by_server()


def test_idle_keepalive_connection_is_closed_after_timeout(make_daemon):
    d = make_daemon({"timeouts": {"keepalive": "300ms"}})
    write(d.root / "one.txt", "one")
    with Client.connect(d.port) as c:
        c.request("GET", "/one.txt")
        assert c.read_response().body == b"one"
        start = time.monotonic()
        assert c.closed_by_server(timeout=10)
        assert time.monotonic() - start < 8


# --- pipelining -------------------------------------------------------------

def pipeline_files(root, n=10):
    files = {}
    for i in range(n):
        body = (f"file number {i}\n" * (i * 37 + 1)).encode()
        write(root / f"p{i}.txt", body)
        files[f"/p{i}.txt"] = body
    return files


def test_pipelined_requests_in_one_send(daemon):
    files = pipeline_files(daemon.root)
    order = list(files) + ["/missing", list(files)[3]]
    with Client.connect(daemon.port) as c:
        c.send(b"".join(build_request("HEAD" if i == 4 else "GET", t) for i, t in enumerate(order)))
        for i, target in enumerate(order):
            r = c.read_response(head_request=i == 4)
            if target == "/missing":
                assert r.status == 404
                continue
            assert r.status == 200, (i, target)
            if i == 4:
                assert r.header("Content-Length") == str(len(files[target]))
            else:
                assert r.body == files[target], (i, target)
        c.no_stray_bytes()


def test_many_pipelined_requests(daemon):
    """More requests than one worker turn handles at once."""
    files = pipeline_files(daemon.root, 5)
    order = [f"/p{i % 5}.txt" for i in range(100)]
    with Client.connect(daemon.port) as c:
        c.send(b"".join(build_request("GET", t) for t in order))
        for t in order:
            r = c.read_response()
            assert r.status == 200 and r.body == files[t]


def test_pipelined_requests_larger_than_head_buffer(make_daemon):
    """Together the requests are many times max_header_bytes; each alone fits."""
    d = make_daemon({"server": {"max_header_bytes": "1024"}})
    files = pipeline_files(d.root, 10)
    order = [f"/p{i % 10}.txt" for i in range(60)]
    pad = [("X-Pad", "z" * 300)]
    with Client.connect(d.port) as c:
        c.send(b"".join(build_request("GET", t, pad) for t in order))
        for t in order:
            r = c.read_response()
            assert r.status == 200 and r.body == files[t], t


def test_requests_after_connection_close_are_not_answered(daemon):
    """RFC 9112 §9.6: after a request with "close", no further request on
    the connection is processed."""
    write(daemon.root / "a.txt", "a")
    write(daemon.root / "b.txt", "b")
    with Client.connect(daemon.port) as c:
        c.send(build_request("GET", "/a.txt", [("Connection", "close")]) + build_request("GET", "/b.txt"))
        r = c.read_response()
        assert r.status == 200 and r.body == b"a"
        assert c.closed_by_server()


@pytest.mark.parametrize("chunking", ["odd", "bytewise-head"])
def test_pipelined_requests_split_at_odd_boundaries(daemon, chunking):
    files = pipeline_files(daemon.root)
    order = list(files)
    data = b"".join(build_request("GET", t, [("User-Agent", "split-test")]) for t in order)
    if chunking == "odd":
        sizes = [1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]
    else:
        sizes = [1] * 60 + [97]
    chunks, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        chunks.append(data[pos:pos + n])
        pos += n
        i += 1
    with Client.connect(daemon.port) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for k, chunk in enumerate(chunks):
            c.send(chunk)
            if k % 4 == 0:
                time.sleep(0.002)
        for t in order:
            r = c.read_response()
            assert r.status == 200 and r.body == files[t], t
        c.no_stray_bytes()


def test_bare_lf_and_leading_empty_lines_between_requests(daemon):
    """RFC 9112 §2.2: a server should ignore at least one empty line before
    a request line."""
    write(daemon.root / "a.txt", "a")
    with Client.connect(daemon.port) as c:
        c.send(build_request("GET", "/a.txt") + b"\r\n" + build_request("GET", "/a.txt"))
        assert c.read_response().body == b"a"
        assert c.read_response().body == b"a"


# --- path traversal and symlinks --------------------------------------------

@pytest.fixture
def outside(daemon):
    """Files with known content next to (outside) the document root."""
    parent = daemon.root.parent
    for name in ("secret", "x"):
        write(parent / name, SECRET)
    write(parent / "outside_dir" / "secret.txt", SECRET)
    write(parent / "outside_dir" / "index.html", SECRET)
    (daemon.root / "a").mkdir()
    write(daemon.root / "a" / "inside.txt", "inside")
    return parent


TRAVERSALS = [
    "/../x",
    "/..%2fx",
    "/..%2Fx",
    "/%2e%2e/x",
    "/%2E%2E%2F%2E%2E%2Fsecret",
    "/%2e%2e%2fsecret",
    "/a/../../secret",
    "/a/%2e%2e/%2e%2e/secret",
    "/a/..%2f..%2fsecret",
    "//../secret",
    "/.%2e/secret",
    "/%2e./secret",
    "/./../secret",
    "/a/./../../secret",
    "/..\\secret",
    "/%5c..%5csecret",
    "/../root/../secret",
    "http://h/../secret",
    "http://h/%2e%2e/secret",
    "http://h/a/../../secret",
    "/../outside_dir/secret.txt",
    "/../outside_dir/",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_never_leaves_root(daemon, outside, target):
    r = exchange(daemon.port, f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert r.status != 200 and 400 <= r.status < 500, r
    assert SECRET not in r.raw


def test_traversal_does_not_break_the_server(daemon, outside):
    for target in TRAVERSALS:
        exchange(daemon.port, f"GET {target} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    r = get(daemon.port, "/a/inside.txt")
    assert r.status == 200 and r.body == b"inside"


def test_dot_segments_inside_root_resolve(daemon, outside):
    for target in ("/a/../a/inside.txt", "/./a/./inside.txt", "/a/%2e/inside.txt", "//a//inside.txt"):
        r = get(daemon.port, target)
        assert r.status == 200 and r.body == b"inside", target


def test_symlinks_pointing_outside_are_not_served(daemon, outside):
    root = daemon.root
    os.symlink("../secret", root / "rel_link")
    os.symlink(str(outside / "secret"), root / "abs_link")
    os.symlink("../../secret", root / "a" / "deep_link")
    os.symlink("../outside_dir", root / "rel_dir")
    os.symlink(str(outside / "outside_dir"), root / "abs_dir")
    os.symlink("/", root / "slash")
    os.symlink("/etc/passwd", root / "passwd")
    targets = ["/rel_link", "/abs_link", "/a/deep_link",
               "/rel_dir/secret.txt", "/rel_dir/", "/rel_dir",
               "/abs_dir/secret.txt", "/abs_dir/", "/abs_dir",
               "/slash/etc/passwd", "/passwd"]
    for target in targets:
        for method in ("GET", "HEAD"):
            with Client.connect(daemon.port) as c:
                c.request(method, target)
                r = c.read_response(head_request=method == "HEAD")
            assert r.status in (403, 404), (method, target, r)
            assert SECRET not in r.raw
            assert b"root:" not in r.raw


def test_symlinks_inside_root_are_served(daemon, outside):
    root = daemon.root
    write(root / "real.txt", "real file")
    os.symlink("real.txt", root / "same_dir_link")
    os.symlink("../real.txt", root / "a" / "up_link")
    os.symlink("a", root / "dir_link")
    os.symlink("same_dir_link", root / "chain_link")
    for target, body in [("/same_dir_link", b"real file"), ("/a/up_link", b"real file"),
                         ("/dir_link/inside.txt", b"inside"), ("/chain_link", b"real file")]:
        r = get(daemon.port, target)
        assert r.status == 200 and r.body == body, (target, r)


def test_dangling_and_looping_symlinks(daemon):
    os.symlink("does-not-exist", daemon.root / "dangling")
    os.symlink("loop_b", daemon.root / "loop_a")
    os.symlink("loop_a", daemon.root / "loop_b")
    for target in ("/dangling", "/loop_a"):
        r = get(daemon.port, target)
        assert r.status in (403, 404), (target, r)
    write(daemon.root / "ok.txt", "ok")
    assert get(daemon.port, "/ok.txt").body == b"ok"


# --- special files ----------------------------------------------------------

def test_fifo_is_refused_without_blocking(make_daemon):
    # One worker: a blocking open() would leave nobody to answer anything.
    daemon = make_daemon({"server": {"workers": "1"}})
    os.mkfifo(daemon.root / "fifo")
    write(daemon.root / "ok.txt", "ok")
    start = time.monotonic()
    with Client.connect(daemon.port) as c:
        c.request("GET", "/fifo")
        r = c.read_response()
        assert r.status == 403
        # The same connection, and a new one, are served afterwards.
        c.request("GET", "/ok.txt")
        assert c.read_response().body == b"ok"
    assert get(daemon.port, "/ok.txt").body == b"ok"
    assert time.monotonic() - start < 5


def test_fifo_as_index_is_refused(daemon):
    (daemon.root / "d").mkdir()
    os.mkfifo(daemon.root / "d" / "index.html")
    r = get(daemon.port, "/d/")
    assert r.status == 403
    write(daemon.root / "ok.txt", "ok")
    assert get(daemon.port, "/ok.txt").body == b"ok"


def test_fifo_as_custom_404_page_does_not_hang(make_daemon):
    d = make_daemon({"server": {"error_page_404": "/404.html"}})
    os.mkfifo(d.root / "404.html")
    r = get(d.port, "/missing")
    assert r.status == 404
    write(d.root / "ok.txt", "ok")
    assert get(d.port, "/ok.txt").body == b"ok"


def test_character_device_is_refused(daemon):
    os.mknod(daemon.root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    r = get(daemon.port, "/null")
    assert r.status == 403
    write(daemon.root / "ok.txt", "ok")
    assert get(daemon.port, "/ok.txt").body == b"ok"


def test_unix_socket_file_is_refused(daemon):
    """A socket file in the root is not a document: refused like any other
    non-regular file, not an internal server error."""
    path = daemon.root / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        r = get(daemon.port, "/s.sock")
    assert r.status == 403, r
    write(daemon.root / "ok.txt", "ok")
    assert get(daemon.port, "/ok.txt").body == b"ok"



# A writer that says when open() returns, and whether its write then found
# no reader (EPIPE): what a server that opened the FIFO would do to it.
FIFO_WRITER = r"""
import os, sys
print("opening", flush=True)
fd = os.open(sys.argv[1], os.O_WRONLY)
print("opened", flush=True)
try:
    os.write(fd, b"marker")
except BrokenPipeError:
    print("EPIPE", flush=True)
"""


class BlockedWriter:
    """A local process blocked in open(fifo, O_WRONLY), waiting for a reader.
    Anything that opens the FIFO for reading lets it through."""

    def __init__(self, fifo):
        self.fifo = fifo
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", FIFO_WRITER, str(fifo)],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout.readline() == b"opening\n"
        deadline = time.monotonic() + 10
        while not self._in_open():
            assert time.monotonic() < deadline, "the writer never blocked in open()"
            time.sleep(0.01)

    def _in_open(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{self.proc.pid}/wchan") as f:
            wchan = f.read()
        # "0": a kernel that hides wait channels; asleep is all it shows.
        return state == "S" and wchan in ("wait_for_partner", "fifo_open", "0")

    def still_blocked(self, seconds):
        readable, _, _ = select.select([self.proc.stdout], [], [], seconds)
        return not readable and self.proc.poll() is None

    def release(self):
        """Opens the FIFO for reading, as the writer waits for; returns what
        the writer printed and wrote."""
        fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            out, _ = self.proc.communicate(timeout=10)
            data = os.read(fd, 64)
        finally:
            os.close(fd)
        return out, data

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def test_fifo_is_never_opened(make_daemon):
    """Refusing a FIFO must not open it on the way: that would let a local
    writer blocked in open() through, into EPIPE. Every way a request can
    reach one: by name, through a symlink, as a directory's index, as the
    custom 404 page, and as a precompressed variant."""
    daemon = make_daemon({"server": {"error_page_404": "/404.html", "precompressed": "yes"}})
    fifo = daemon.root / "fifo"
    os.mkfifo(fifo)
    (daemon.root / "d").mkdir()
    write(daemon.root / "page.txt", "plain")
    for link, target in (("l_fifo", "fifo"), ("d/index.html", "../fifo"), ("404.html", "fifo"),
                         ("page.txt.gz", "fifo")):
        os.symlink(target, daemon.root / link)
    with BlockedWriter(fifo) as writer:
        assert get(daemon.port, "/fifo").status == 403
        assert get(daemon.port, "/l_fifo").status == 403
        assert get(daemon.port, "/d/").status == 403
        assert get(daemon.port, "/missing").status == 404
        r = get(daemon.port, "/page.txt", [("Accept-Encoding", "gzip")])
        assert r.status == 200 and r.body == b"plain" and r.header("Content-Encoding") is None, r
        assert writer.still_blocked(1.0), "the server opened the FIFO: the writer's open() returned"
        # The writer was waiting for exactly this: the test sees what it means to.
        assert writer.release() == (b"opened\n", b"marker")


IN_OPEN = 0x20


class OpenWatch:
    """inotify's IN_OPEN on one file: reported for every open() of it by
    anyone, and never for an O_PATH descriptor, which opens nothing."""

    def __init__(self, path):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0, os.strerror(ctypes.get_errno())
        if libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN) < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), "inotify_add_watch", str(path))

    def opened(self):
        try:
            return len(os.read(self.fd, 4096)) > 0
        except BlockingIOError:
            return False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def test_device_node_is_never_opened(daemon):
    """A device's open() is its driver's to act on: refusing one must not
    open it first. inotify sees the server open the regular file, so it
    would see it open the device."""
    os.mknod(daemon.root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    write(daemon.root / "ok.txt", "ok")
    with OpenWatch(daemon.root / "ok.txt") as ok, OpenWatch(daemon.root / "null") as device:
        assert get(daemon.port, "/ok.txt").body == b"ok"
        assert get(daemon.port, "/null").status == 403
        assert ok.opened(), "inotify saw no open of the file served"
        assert not device.opened(), "the server opened the device node"


def need_mount_namespace():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to mount a /proc of its own")
    r = subprocess.run(in_mount_namespace("true"), capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {r.stderr.decode(errors='replace').strip()}")


def test_serves_under_the_units_proc(make_daemon):
    """Files are opened through /proc/self/fd; the shipped unit's
    ProcSubset=pid and ProtectProc=invisible leave the daemon its own."""
    need_mount_namespace()
    d = make_daemon(start=False)
    write(d.root / "ok.txt", "ok")
    write(d.root / "d" / "index.html", "index")
    d.start(wrapper=in_mount_namespace("mount -t proc -o subset=pid,hidepid=invisible proc /proc"))
    assert get(d.port, "/ok.txt").body == b"ok"
    assert get(d.port, "/d/").body == b"index"


def test_refuses_to_start_without_proc(make_daemon):
    """Without /proc every file would be a 500: the daemon says why and
    exits instead, before it listens."""
    need_mount_namespace()
    d = make_daemon(start=False)
    d.write_config()
    r = subprocess.run([*in_mount_namespace("mount -t tmpfs tmpfs /proc"), *daemon_argv(d.conf)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 1, out
    assert "/proc/self/fd" in out and "is /proc mounted?" in out, out
    assert f"serving {d.root}" not in out, out

# --- error statuses ---------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"GET\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nName : v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n folded: v\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  continued\r\n\r\n",
    b"GET / http/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.x\r\nHost: h\r\n\r\n",
    b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
], ids=lambda b: b.decode("latin-1").split("\r\n")[0][:40] + ("..." if b.count(b"\r\n") > 3 else ""))
def test_malformed_requests_get_400(daemon, raw):
    r = exchange(daemon.port, raw)
    assert r.status == 400, (raw, r)


def test_missing_host_in_http11_is_400(daemon):
    write(daemon.root / "index.html", "i")
    r = exchange(daemon.port, b"GET / HTTP/1.1\r\n\r\n")
    assert r.status == 400


def test_http10_without_host_is_served(daemon):
    write(daemon.root / "index.html", "i")
    r = exchange(daemon.port, b"GET / HTTP/1.0\r\n\r\n")
    assert r.status == 200 and r.body == b"i"


def test_two_host_headers_is_400(daemon):
    r = exchange(daemon.port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert r.status == 400


def test_400_closes_connection(daemon):
    with Client.connect(daemon.port) as c:
        c.send(b"GET / HTTP/1.1 junk\r\nHost: h\r\n\r\n")
        r = c.read_response()
        assert r.status == 400
        assert "close" in r.connection_tokens()
        assert c.closed_by_server()


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE"])
def test_other_known_methods_get_405_with_allow(daemon, method):
    write(daemon.root / "f.txt", "f")
    with Client.connect(daemon.port) as c:
        c.request(method, "/f.txt")
        r = c.read_response()
        assert r.status == 405
        assert {"GET", "HEAD"} <= allow_methods(r), r.headers
        assert method not in allow_methods(r)
    assert (daemon.root / "f.txt").read_bytes() == b"f"


def test_post_with_body_gets_405_and_body_is_not_a_request(daemon):
    write(daemon.root / "a.txt", "a")
    write(daemon.root / "b.txt", "b")
    body = build_request("GET", "/b.txt")
    with Client.connect(daemon.port) as c:
        c.send(build_request("POST", "/a.txt", [("Content-Length", str(len(body)))])
               + body + build_request("GET", "/a.txt"))
        r = c.read_response()
        assert r.status == 405
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"a"


@pytest.mark.parametrize("method", ["FOO", "BREW", "get"])
def test_unknown_method_is_501(daemon, method):
    write(daemon.root / "index.html", "i")
    r = exchange(daemon.port, f"{method} / HTTP/1.1\r\nHost: h\r\n\r\n".encode())
    assert r.status == 501


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9"])
def test_unsupported_version_is_505(daemon, version):
    r = exchange(daemon.port, f"GET / {version}\r\nHost: h\r\n\r\n".encode())
    assert r.status == 505


def test_oversized_header_is_431(make_daemon):
    d = make_daemon({"server": {"max_header_bytes": "2048"}})
    write(d.root / "index.html", "i")
    # Just under the limit is fine.
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: "
    tail = b"\r\n\r\n"
    ok = head + b"a" * (2048 - len(head) - len(tail)) + tail
    assert len(ok) == 2048
    r = exchange(d.port, ok)
    assert r.status == 200 and r.body == b"i"
    # Exactly the limit without the end of the head.
    big = head + b"a" * (2048 - len(head))
    r = exchange(d.port, big)
    assert r.status == 431
    # Well over it, in many header lines.
    many = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 50) for i in range(40))
    with Client.connect(d.port) as c:
        c.send(many[:2048])
        r = c.read_response()
        assert r.status == 431
        assert c.closed_by_server()


def test_oversized_header_with_default_limit(daemon):
    write(daemon.root / "index.html", "i")
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + b"a" * 9000
    with Client.connect(daemon.port) as c:
        c.send(head)  # still no end of head: the server must give up on it
        r = c.read_response()
        assert r.status == 431


def test_giant_request_line_is_414(daemon):
    line = b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    with Client.connect(daemon.port) as c:
        c.send(line[:8192])
        r = c.read_response()
        assert r.status == 414
        assert c.closed_by_server()


def test_long_uri_within_limit_is_404_not_error(daemon):
    r = get(daemon.port, "/" + "b" * 4000)
    assert r.status in (404, 414)


def test_get_with_small_body_is_discarded(daemon):
    write(daemon.root / "a.txt", "a")
    write(daemon.root / "b.txt", "b")
    write(daemon.root / "c.txt", "c")
    # A body that looks like a request: it must be skipped, not parsed.
    body = build_request("GET", "/b.txt")
    with Client.connect(daemon.port) as c:
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % len(body)
               + body + build_request("GET", "/c.txt"))
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"a"
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"c"
        c.no_stray_bytes()


def test_get_body_arriving_later_is_discarded(daemon):
    write(daemon.root / "a.txt", "a")
    write(daemon.root / "c.txt", "c")
    with Client.connect(daemon.port) as c:
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n")
        r1 = c.read_response()
        assert r1.body == b"a"
        time.sleep(0.05)
        c.send(b"GET /x.txt")  # 10 bytes of body
        c.send(build_request("GET", "/c.txt"))
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"c"


@pytest.mark.parametrize("value", ["abc", "-1", "1, 2", "+5", "0x10"])
def test_bad_content_length_is_400(daemon, value):
    r = exchange(daemon.port, f"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: {value}\r\n\r\n".encode())
    assert r.status == 400


def test_two_content_lengths_is_400(daemon):
    r = exchange(daemon.port, b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert r.status == 400


def test_huge_declared_body_is_413_and_closes(daemon):
    with Client.connect(daemon.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000\r\n\r\n")
        r = c.read_response()
        assert r.status == 413
        assert "close" in r.connection_tokens()
        assert c.closed_by_server()


def test_incomplete_head_is_dropped_after_header_timeout(make_daemon):
    d = make_daemon({"timeouts": {"header": "200ms"}})
    write(d.root / "a.txt", "a")
    with Client.connect(d.port) as c:
        c.send(b"GET /a.txt HTTP/1.1\r\nHost: h\r\n")
        start = time.monotonic()
        try:
            r = c.read_response()  # a 408 is fine; so is a plain close
            assert r.status == 408, r
        except EOFError:
            pass
        assert time.monotonic() - start < 8
    assert get(d.port, "/a.txt").body == b"a"


def test_chunked_body_is_dropped_and_the_next_request_answered(daemon):
    """RFC 9112 §7.1: a recipient must be able to parse chunked. The body is
    read and dropped, so the pipelined request after it is found."""
    write(daemon.root / "index.html", "i")
    write(daemon.root / "b.txt", "b")
    with Client.connect(daemon.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n13\r\nGET /x HTTP/1.1\r\n\r\n\r\n0\r\nTrailer: t\r\n\r\n"
               b"GET /b.txt HTTP/1.1\r\nHost: h\r\n\r\n")
        first = c.read_response()
        assert first.status == 200 and first.body == b"i"
        second = c.read_response()
        assert second.status == 200 and second.body == b"b"


def test_malformed_chunked_body_closes_after_the_answer(daemon):
    write(daemon.root / "index.html", "i")
    with Client.connect(daemon.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        assert c.read_response().status == 200
        assert c.closed_by_server()


def test_transfer_encoding_not_ending_in_chunked_is_400_and_closes(daemon):
    with Client.connect(daemon.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n")
        r = c.read_response()
        assert r.status == 400
        assert "close" in r.connection_tokens()
        assert c.closed_by_server()


def test_garbage_does_not_hang_or_crash(daemon):
    write(daemon.root / "index.html", "i")
    for raw in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),
                b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n"):
        r = exchange(daemon.port, raw)
        assert r.status == 400
    assert get(daemon.port, "/").body == b"i"


def test_client_disconnect_mid_body_does_not_hurt(daemon):
    write(daemon.root / "big.bin", os.urandom(8 * 1024 * 1024))
    write(daemon.root / "ok.txt", "ok")
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(build_request("GET", "/big.bin"))
        s.recv(1000)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    assert get(daemon.port, "/ok.txt").body == b"ok"


# --- listening --------------------------------------------------------------

def ipv6_loopback_port():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            return s.getsockname()[1]
    except OSError:
        return None


@pytest.fixture
def short_dir():
    """unix socket paths are limited to 107 bytes; pytest's tmp_path may be longer."""
    d = tempfile.mkdtemp(prefix="wp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_listens_on_ipv4_ipv6_and_unix(make_daemon, short_dir):
    port6 = ipv6_loopback_port()
    assert port6 is not None, "no IPv6 loopback on this machine"
    sock_path = os.path.join(short_dir, "web.sock")
    d = make_daemon(start=False)
    d.settings["server"]["listen"] = [f"127.0.0.1:{d.port}", f"[::1]:{port6}", f"unix:{sock_path}"]
    d.start()
    write(d.root / "hi.txt", "hi")

    assert get(d.port, "/hi.txt").body == b"hi"

    with Client(socket.create_connection(("::1", port6), timeout=10)) as c:
        c.request("GET", "/hi.txt")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hi"

    assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock_path)
    with Client(s) as c:
        c.request("GET", "/hi.txt")
        r = c.read_response()
        assert r.status == 200 and r.body == b"hi"
        c.request("GET", "/hi.txt")
        assert c.read_response().body == b"hi"


def test_several_listen_addresses_on_one_line(make_daemon):
    p2 = free_port()
    d = make_daemon(start=False)
    d.settings["server"]["listen"] = f"127.0.0.1:{d.port} 127.0.0.1:{p2}"
    d.start()
    write(d.root / "hi.txt", "hi")
    assert get(d.port, "/hi.txt").body == b"hi"
    assert get(p2, "/hi.txt").body == b"hi"


def test_stale_unix_socket_is_replaced(make_daemon, short_dir):
    sock_path = os.path.join(short_dir, "web.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()  # leaves the socket file behind
    d = make_daemon(start=False)
    d.settings["server"]["listen"] = [f"127.0.0.1:{d.port}", f"unix:{sock_path}"]
    d.start()
    write(d.root / "hi.txt", "hi")
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock_path)
    with Client(s) as c:
        c.request("GET", "/hi.txt")
        assert c.read_response().body == b"hi"


LAUNCHER = r"""
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
env.pop("LISTEN_FDNAMES", None)
os.execve(sys.argv[2], sys.argv[2:], env)
"""


@pytest.mark.parametrize("launcher", ["python", "systemd-socket-activate"])
def test_socket_activation(make_daemon, launcher):
    d = make_daemon(start=False)
    configured_port = d.port  # what listen= says; must stay unused
    d.write_config()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    d.log = open(d.log_path, "wb")
    if launcher == "python":
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(16)
        port = lsock.getsockname()[1]
        cmd = [sys.executable, "-c", LAUNCHER, str(lsock.fileno()), *daemon_argv(d.conf)]
        d.proc = subprocess.Popen(cmd, stdout=d.log, stderr=subprocess.STDOUT, env=env,
                                  pass_fds=(lsock.fileno(),))
        lsock.close()
    else:
        tool = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
        port = free_port()
        cmd = [tool, "-l", f"127.0.0.1:{port}", *daemon_argv(d.conf)]
        d.proc = subprocess.Popen(cmd, stdout=d.log, stderr=subprocess.STDOUT, env=env)
        # The tool starts the program on the first connection, like a
        # systemd socket unit with Accept=no.
        deadline = time.monotonic() + 30
        while "Listening on" not in d.output():
            assert d.proc.poll() is None and time.monotonic() < deadline, d.output()
            time.sleep(0.02)
    write(d.root / "hi.txt", "activated")

    with Client.connect(port) as c:
        d.wait_ready()
        d.port = port
        c.request("GET", "/hi.txt")
        r = c.read_response()
        assert r.status == 200 and r.body == b"activated"
        c.request("GET", "/hi.txt")
        assert c.read_response().body == b"activated"

    out = d.output()
    assert re.search(r"listen=? settings are not used", out), out
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", configured_port), timeout=10).close()
    # Teardown (make_daemon) sends SIGTERM and checks for a clean exit.


def test_sigterm_with_open_idle_connection_exits_cleanly(daemon):
    write(daemon.root / "a.txt", "a")
    c = Client.connect(daemon.port)
    c.request("GET", "/a.txt")
    assert c.read_response().body == b"a"
    assert daemon.stop(signal.SIGTERM) == 0
    assert c.closed_by_server()
    c.close()
    daemon.check_clean()
