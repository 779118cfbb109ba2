"""RFC 9110 / RFC 9112 conformance of webpoold, seen from a raw socket.

Conditional requests (RFC 9110 §13), range requests (§14), message framing
and the request line (RFC 9112 §2-§7), the configured request limits, the
header and keep-alive timeouts, path handling, precompressed variants
(Content-Encoding, Vary) and Cache-Control.

Every test drives the real binary through conftest.py's fixtures. Waits are
bounded only to catch hangs; the few timing assertions (a timeout that fired
too early) have wide margins."""

import email.utils
import errno
import gzip
import os
import re
import socket
import time

import pytest

import seccomp
from rawhttp import Client, build_request, exchange, get

MTIME = 1_600_000_000           # 2020-09-13 12:26:40 UTC: well in the past
TEN = b"0123456789"
HANG = 10                       # seconds; only to catch hangs
PROMPT = 3                      # seconds; an answer that needs no timeout to fire

ETAG = re.compile(r'^"[\x21\x23-\x7e\x80-\xff]*"$')   # RFC 9110 §8.8.3, strong
IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} GMT$")


# --- helpers -----------------------------------------------------------------

def put(root, name, data, mtime=MTIME):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def httpdate(t):
    return email.utils.formatdate(t, usegmt=True)


def fetch(port, target, *headers, method="GET"):
    """One request on a fresh connection; headers as (name, value) pairs."""
    return get(port, target, list(headers), method=method)


def closes_after(c, resp):
    """The response announced the close, and the server then closed without
    sending anything more (no answer to whatever was pipelined after)."""
    assert "close" in resp.connection_tokens(), resp
    assert c.closed_by_server(HANG), "connection still open after a closing response"


def content_range(resp):
    return resp.header("Content-Range")


def boundary_of(resp):
    ctype = resp.header("Content-Type")
    m = re.fullmatch(r'\s*multipart/byteranges\s*;\s*boundary=("?)([^";]+)\1\s*', ctype or "", re.I)
    assert m, f"not multipart/byteranges with a boundary: {ctype!r}"
    return m.group(2)


def parse_multipart(resp):
    """Splits a multipart/byteranges body (RFC 9110 §14.6, RFC 2046 §5.1.1)
    into [(headers dict with lower-case names, data)]."""
    delim = b"--" + boundary_of(resp).encode()
    body = resp.body
    # The first delimiter may follow a preamble; later ones follow a CRLF.
    start = body.find(delim)
    assert start == 0 or (start > 0 and body[start - 2:start] == b"\r\n"), body[:200]
    rest = body[start + len(delim):]
    parts = []
    while True:
        if rest.startswith(b"--"):
            assert rest[2:] in (b"", b"\r\n"), f"junk after the close delimiter: {rest[:80]!r}"
            break
        assert rest.startswith(b"\r\n"), f"delimiter not followed by CRLF: {rest[:80]!r}"
        end = rest.find(b"\r\n" + delim)
        assert end >= 0, "part without a following delimiter"
        part = rest[2:end]
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep and head == b"":
            data = b""
        headers = {}
        for line in head.decode("latin-1").split("\r\n") if head else []:
            name, colon, value = line.partition(":")
            assert colon, f"bad part header {line!r}"
            headers[name.strip().lower()] = value.strip()
        parts.append((headers, data))
        rest = rest[end + 2 + len(delim):]
    return parts


@pytest.fixture
def ten(daemon):
    """A daemon serving /ten.txt (b"0123456789", mtime MTIME)."""
    put(daemon.root, "ten.txt", TEN)
    return daemon


def etag_of(port, target="/ten.txt", *headers):
    r = fetch(port, target, *headers)
    assert r.status == 200, r
    return r.header("ETag")


# --- validators (RFC 9110 §8.8, §13) -----------------------------------------

def test_200_has_strong_etag_and_last_modified(ten):
    r = fetch(ten.port, "/ten.txt")
    assert r.status == 200 and r.body == TEN
    etag = r.header("ETag")
    assert etag is not None and ETAG.match(etag), f"not a strong entity-tag: {etag!r}"
    lm = r.header("Last-Modified")
    assert lm is not None and IMF_FIXDATE.match(lm), lm
    assert lm == httpdate(MTIME)


def test_if_none_match_304_has_no_body_and_keeps_the_connection_in_step(ten):
    etag = etag_of(ten.port)
    with Client.connect(ten.port) as c:
        # Pipelined: a body after the 304 would be read as the next response.
        c.send(build_request("GET", "/ten.txt", [("If-None-Match", etag)]) +
               build_request("GET", "/ten.txt"))
        r = c.read_response()
        assert r.status == 304, r
        assert r.header("ETag") == etag
        assert r.header("Last-Modified") == httpdate(MTIME)
        cl = r.header("Content-Length")
        assert cl is None or cl == str(len(TEN)), f"304 with Content-Length {cl} (RFC 9110 §8.6)"
        assert not r.header_all("Transfer-Encoding")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == TEN, r2
        # And right after it, one more on the same connection.
        c.request("GET", "/ten.txt", [("If-None-Match", etag)])
        assert c.read_response().status == 304
        c.no_stray_bytes()


@pytest.mark.parametrize("value", ['"x", {etag}', '"x",{etag} ,"y"', "*", "W/{etag}", '"x"  ,  W/{etag}'],
                         ids=["list", "list-ows", "star", "weak", "weak-in-list"])
def test_if_none_match_forms_give_304(ten, value):
    etag = etag_of(ten.port)
    r = fetch(ten.port, "/ten.txt", ("If-None-Match", value.format(etag=etag)))
    assert r.status == 304, r
    assert r.body == b""


def test_if_none_match_other_tag_gives_200(ten):
    r = fetch(ten.port, "/ten.txt", ("If-None-Match", '"nope", W/"other"'))
    assert r.status == 200 and r.body == TEN


@pytest.mark.parametrize("ims,status", [
    (httpdate(MTIME), 304),
    (httpdate(MTIME + 3600), 304),
    (httpdate(MTIME - 1), 200),
    ("not a date", 200),
    (httpdate(MTIME).replace("GMT", "UTC"), 200),
], ids=["equal", "later", "earlier", "garbage", "bad-zone"])
def test_if_modified_since(ten, ims, status):
    r = fetch(ten.port, "/ten.txt", ("If-Modified-Since", ims))
    assert r.status == status, r
    assert r.body == (TEN if status == 200 else b"")


def test_if_none_match_takes_precedence_over_if_modified_since(ten):
    """RFC 9110 §13.1.3: IMS is ignored when If-None-Match is present."""
    r = fetch(ten.port, "/ten.txt", ("If-None-Match", '"other"'),
              ("If-Modified-Since", httpdate(MTIME)))
    assert r.status == 200 and r.body == TEN


def test_if_match_mismatch_412(ten):
    r = fetch(ten.port, "/ten.txt", ("If-Match", '"nope"'))
    assert r.status == 412, r


def test_if_match_star_200(ten):
    r = fetch(ten.port, "/ten.txt", ("If-Match", "*"))
    assert r.status == 200 and r.body == TEN


def test_if_match_current_etag_200(ten):
    etag = etag_of(ten.port)
    r = fetch(ten.port, "/ten.txt", ("If-Match", f'"x", {etag}'))
    assert r.status == 200 and r.body == TEN


def test_if_match_uses_strong_comparison(ten):
    """RFC 9110 §13.1.1: W/"x" never matches under If-Match."""
    etag = etag_of(ten.port)
    r = fetch(ten.port, "/ten.txt", ("If-Match", "W/" + etag))
    assert r.status == 412, r


def test_if_unmodified_since_earlier_than_mtime_412(ten):
    r = fetch(ten.port, "/ten.txt", ("If-Unmodified-Since", httpdate(MTIME - 60)))
    assert r.status == 412, r
    r = fetch(ten.port, "/ten.txt", ("If-Unmodified-Since", httpdate(MTIME)))
    assert r.status == 200, r


def test_if_match_takes_precedence_over_if_unmodified_since(ten):
    """RFC 9110 §13.2.2 step 2 only applies when If-Match is absent."""
    etag = etag_of(ten.port)
    r = fetch(ten.port, "/ten.txt", ("If-Match", etag),
              ("If-Unmodified-Since", httpdate(MTIME - 60)))
    assert r.status == 200 and r.body == TEN


def test_412_beats_304(ten):
    """§13.2.2: If-Match is evaluated before If-None-Match."""
    etag = etag_of(ten.port)
    r = fetch(ten.port, "/ten.txt", ("If-Match", '"nope"'), ("If-None-Match", etag))
    assert r.status == 412, r


def test_touching_the_file_changes_the_etag(ten):
    old = etag_of(ten.port)
    os.utime(ten.root / "ten.txt", (MTIME + 5, MTIME + 5))
    new = etag_of(ten.port)
    assert new != old
    r = fetch(ten.port, "/ten.txt", ("If-None-Match", old))
    assert r.status == 200 and r.body == TEN
    assert r.header("Last-Modified") == httpdate(MTIME + 5)
    # A change within the same second still changes the tag.
    os.utime(ten.root / "ten.txt", ns=((MTIME + 5) * 10**9 + 1234, (MTIME + 5) * 10**9 + 1234))
    assert etag_of(ten.port) != new


# --- ranges (RFC 9110 §14) ----------------------------------------------------

def test_200_advertises_accept_ranges(ten):
    r = fetch(ten.port, "/ten.txt")
    assert r.status == 200
    assert r.header("Accept-Ranges") == "bytes"


@pytest.mark.parametrize("spec,first,last", [
    ("0-4", 0, 4), ("5-", 5, 9), ("-3", 7, 9), ("0-999999", 0, 9), ("9-9", 9, 9), ("-20", 0, 9),
    (" 2-3 ", 2, 3),
])
def test_single_range(ten, spec, first, last):
    r = fetch(ten.port, "/ten.txt", ("Range", "bytes=" + spec))
    assert r.status == 206, r
    assert content_range(r) == f"bytes {first}-{last}/10"
    assert r.body == TEN[first:last + 1]
    assert r.header("Content-Length") == str(last - first + 1)
    assert r.header("ETag") and r.header("Last-Modified")


KILO = bytes((i * 7 + i // 256) % 256 for i in range(1000))


@pytest.mark.parametrize("spec,expect", [
    ("0-9,500-509,990-", [(0, 9), (500, 509), (990, 999)]),
    ("-5, 0-0", [(995, 999), (0, 0)]),                       # the order asked for (§14.6)
    ("0-9, 5000-6000, 990-", [(0, 9), (990, 999)]),          # unsatisfiable ones left out
])
def test_multiple_ranges_multipart(daemon, spec, expect):
    """Gaps wider than a part's overhead: no coalescing is allowed (§14.6)."""
    put(daemon.root, "kilo.txt", KILO)
    r = fetch(daemon.port, "/kilo.txt", ("Range", "bytes=" + spec))
    assert r.status == 206, r
    assert r.header("Content-Range") is None, "Content-Range on a multipart response (§14.6)"
    assert r.header("Content-Length") == str(len(r.body))
    assert r.header("ETag") and r.header("Last-Modified") and r.header("Accept-Ranges") == "bytes"
    parts = parse_multipart(r)
    assert len(parts) == len(expect)
    for (headers, data), (first, last) in zip(parts, expect):
        assert headers.get("content-type", "").split(";")[0] == "text/plain", headers
        assert headers.get("content-range") == f"bytes {first}-{last}/1000", headers
        assert data == KILO[first:last + 1]


def test_sixteen_ranges_are_served_seventeen_are_ignored(daemon):
    data = os.urandom(17 * 500)
    put(daemon.root, "many.bin", data)
    specs = [f"{500 * i}-{500 * i + 1}" for i in range(17)]   # gaps wider than a part's overhead
    r = fetch(daemon.port, "/many.bin", ("Range", "bytes=" + ",".join(specs[:16])))
    assert r.status == 206, r
    parts = parse_multipart(r)
    assert [p[1] for p in parts] == [data[500 * i:500 * i + 2] for i in range(16)]
    r = fetch(daemon.port, "/many.bin", ("Range", "bytes=" + ",".join(specs)))
    assert r.status == 200 and r.body == data, r
    assert r.header("Content-Range") is None


BOUNDARY = re.compile(r"webpoold-([0-9a-f]{32})")
N_BOUNDARIES = 32


def boundary_bits(port, n=N_BOUNDARIES):
    """The boundaries of n multipart/byteranges responses, each as the
    integer its hex digits spell (whatever their number)."""
    values = []
    for _ in range(n):
        r = fetch(port, "/ten.txt", ("Range", "bytes=0-0,2-2"))
        assert r.status == 206, r
        boundary = boundary_of(r)
        assert [data for _, data in parse_multipart(r)] == [b"0", b"2"], r
        values.append((boundary, int(boundary.rsplit("-", 1)[-1], 16)))
    return values


def constant_bits(values, width):
    return [bit for bit in range(width) if len({v >> bit & 1 for v in values}) == 1]


def test_multipart_boundaries_are_random(make_daemon):
    """A boundary is there to be absent from the parts (RFC 2046 §5.1.1):
    nothing about it may be predictable, and it must tell nothing about the
    process. So every bit varies across the responses of one run, and a
    restart does not replay a sequence: response k of the second run has no
    bit in a fixed relation to response k of the first, as it would if per
    thread state (a counter, an address) went into it. One worker, so that
    such state would be one sequence. With random bits, any one bit is
    constant across 32 values with a chance of 2^-31."""
    runs = []
    for _ in range(2):
        d = make_daemon({"server": {"workers": "1"}}, start=False)
        put(d.root, "ten.txt", TEN)
        d.start()
        runs.append(boundary_bits(d.port))
        assert d.stop() == 0
        d.check_clean()
    boundaries = [b for run in runs for b, _ in run]
    assert len(set(boundaries)) == len(boundaries), boundaries
    width = 4 * max(len(b.rsplit("-", 1)[-1]) for b in boundaries)
    for run in runs:
        fixed = constant_bits([v for _, v in run], width)
        assert not fixed, f"bits {fixed} never change within a run: {[b for b, _ in run][:4]}"
    replayed = constant_bits([a ^ b for (_, a), (_, b) in zip(*runs)], width)
    assert not replayed, (f"bits {replayed} of response k, XORed with response k of the first run, "
                          "are the same for every k: a restart replays them")
    for b in boundaries:
        assert BOUNDARY.fullmatch(b), f"{b!r}: not webpoold- and 128 bits in lower-case hex"


@pytest.mark.parametrize("error", [errno.EAGAIN, errno.ENOSYS])
def test_without_random_bytes_several_ranges_get_the_whole_file(make_daemon, error):
    """getrandom() has nothing to give early at boot (EAGAIN), and a filter
    may refuse it: then no boundary is made up from anything guessable; the
    whole file is sent, as a server may always ignore Range (RFC 9110 §14.2).
    One range needs no boundary, and is still served."""
    d = make_daemon(start=False)
    put(d.root, "ten.txt", TEN)
    d.start(wrapper=seccomp.refusing(seccomp.NR_GETRANDOM[os.uname().machine], error))
    r = fetch(d.port, "/ten.txt", ("Range", "bytes=0-0,2-2"))
    assert r.status == 200 and r.body == TEN and r.header("Content-Range") is None, r
    d.wait_for_log("Failed to get random bytes for a multipart boundary")
    r = fetch(d.port, "/ten.txt", ("Range", "bytes=2-3"))
    assert r.status == 206 and r.body == b"23", r


@pytest.mark.parametrize("spec", ["0-5,3-8", "0-9,5-", "-3,8-9", "1-1,1-1"])
def test_overlapping_ranges_give_full_200(ten, spec):
    r = fetch(ten.port, "/ten.txt", ("Range", "bytes=" + spec))
    assert r.status == 200 and r.body == TEN
    assert r.header("Content-Range") is None


@pytest.mark.parametrize("spec", ["bytes=20-30", "bytes=10-", "bytes=-0", "bytes=10-10, 20-"])
def test_unsatisfiable_range_416(ten, spec):
    with Client.connect(ten.port) as c:
        c.request("GET", "/ten.txt", [("Range", spec)])
        r = c.read_response()
        assert r.status == 416, r
        assert r.header("Content-Range") == "bytes */10"
        assert r.header("Content-Length") == str(len(r.body))
        # Not a framing error: the connection carries on.
        c.request("GET", "/ten.txt")
        assert c.read_response().body == TEN


@pytest.mark.parametrize("value", ["bytes=abc", "items=0-1", "bytes=5-2", "bytes=", "bytes = 0-1",
                                   "bytes=0-1;x", "bytes=1-2-3", "bytes=--1"])
def test_unparsable_range_is_ignored(ten, value):
    r = fetch(ten.port, "/ten.txt", ("Range", value))
    assert r.status == 200 and r.body == TEN
    assert r.header("Content-Range") is None


def test_range_on_head_is_ignored(ten):
    r = fetch(ten.port, "/ten.txt", ("Range", "bytes=0-4"), method="HEAD")
    assert r.status == 200, r
    assert r.header("Content-Length") == "10"
    assert r.header("Content-Range") is None


def test_if_range(ten):
    etag = etag_of(ten.port)
    rng = ("Range", "bytes=0-4")
    r = fetch(ten.port, "/ten.txt", rng, ("If-Range", etag))
    assert r.status == 206 and r.body == TEN[:5]
    for other in ['"other"', "W/" + etag]:
        r = fetch(ten.port, "/ten.txt", rng, ("If-Range", other))
        assert r.status == 200 and r.body == TEN, other
    r = fetch(ten.port, "/ten.txt", rng, ("If-Range", httpdate(MTIME)))
    assert r.status == 206 and r.body == TEN[:5]
    for other in [httpdate(MTIME - 1), httpdate(MTIME + 1), "garbage"]:
        r = fetch(ten.port, "/ten.txt", rng, ("If-Range", other))
        assert r.status == 200 and r.body == TEN, other


def test_if_range_with_an_old_etag_after_a_change(ten):
    old = etag_of(ten.port)
    put(ten.root, "ten.txt", b"abcdefghij", mtime=MTIME + 100)
    r = fetch(ten.port, "/ten.txt", ("Range", "bytes=0-4"), ("If-Range", old))
    assert r.status == 200 and r.body == b"abcdefghij"


def test_range_on_empty_file_416(daemon):
    put(daemon.root, "empty.txt", b"")
    r = fetch(daemon.port, "/empty.txt", ("Range", "bytes=0-0"))
    assert r.status == 416, r
    assert r.header("Content-Range") == "bytes */0"


# --- framing and the request line (RFC 9112) ---------------------------------

BAD_FRAMING = {
    "no-host": b"GET /ten.txt HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "host-with-space": b"GET /ten.txt HTTP/1.1\r\nHost: a b\r\n\r\n",
    "host-with-slash": b"GET /ten.txt HTTP/1.1\r\nHost: a/b\r\n\r\n",
    "host-with-quote": b'GET /ten.txt HTTP/1.1\r\nHost: a"b\r\n\r\n',
    "host-userinfo": b"GET /ten.txt HTTP/1.1\r\nHost: user@a\r\n\r\n",
    "space-before-colon": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
    "tab-before-colon": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n",
    "space-before-colon-on-host": b"GET /ten.txt HTTP/1.1\r\nHost : a\r\n\r\n",
    "obs-fold": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
    "obs-fold-tab": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
    "te-and-cl": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Length: 5\r\n\r\n0\r\n\r\n",
    "two-cl": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl-list": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "cl-negative": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    "cl-plus": b"GET /ten.txt HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
    "http-2.0": b"GET /ten.txt HTTP/2.0\r\nHost: a\r\n\r\n",
    "lowercase-version": b"GET /ten.txt http/1.1\r\nHost: a\r\n\r\n",
    "two-spaces": b"GET  /ten.txt HTTP/1.1\r\nHost: a\r\n\r\n",
}


@pytest.mark.parametrize("name", list(BAD_FRAMING))
def test_framing_error_answers_4xx_or_505_and_closes(ten, name):
    """RFC 9112 §3.2, §5, §6.3, §2.3, and §9.6: a message whose framing cannot
    be trusted is answered and the connection closed; a request pipelined
    behind it is never answered."""
    with Client.connect(ten.port) as c:
        c.send(BAD_FRAMING[name] + build_request("GET", "/ten.txt"))
        r = c.read_response()
        expected = 505 if name == "http-2.0" else 400
        assert r.status == expected, r
        closes_after(c, r)


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/3.0"])
def test_major_version_other_than_1_gives_505(ten, version):
    r = exchange(ten.port, f"GET /ten.txt {version}\r\nHost: a\r\n\r\n".encode())
    assert r.status == 505, r
    assert r.version == "HTTP/1.1"


def test_content_length_body_is_discarded_not_parsed(daemon):
    put(daemon.root, "a.txt", b"AAAA")
    put(daemon.root, "b.txt", b"BBBB")
    put(daemon.root, "c.txt", b"CCCC")
    for body in [b"hello", build_request("GET", "/c.txt")]:
        with Client.connect(daemon.port) as c:
            c.send(build_request("GET", "/a.txt", [("Content-Length", str(len(body)))]) + body +
                   build_request("GET", "/b.txt"))
            r1 = c.read_response()
            assert r1.status == 200 and r1.body == b"AAAA", r1
            r2 = c.read_response()
            assert r2.status == 200 and r2.body == b"BBBB", (body, r2)
            c.no_stray_bytes(0.3)


def test_body_split_across_segments_is_discarded(daemon):
    put(daemon.root, "a.txt", b"AAAA")
    put(daemon.root, "b.txt", b"BBBB")
    body = b"x" * 50
    with Client.connect(daemon.port) as c:
        c.send(build_request("GET", "/a.txt", [("Content-Length", "50")]) + body[:20])
        assert c.read_response().body == b"AAAA"
        time.sleep(0.1)
        c.send(body[20:] + build_request("GET", "/b.txt"))
        assert c.read_response().body == b"BBBB"
        c.no_stray_bytes(0.3)


def test_body_over_max_body_bytes_413_and_close(make_daemon):
    d = make_daemon({"server": {"max_body_bytes": 100}})
    put(d.root, "a.txt", b"AAAA")
    with Client.connect(d.port) as c:   # at the limit: fine
        c.send(build_request("GET", "/a.txt", [("Content-Length", "100")]) + b"x" * 100 +
               build_request("GET", "/a.txt"))
        assert c.read_response().status == 200
        assert c.read_response().status == 200
    with Client.connect(d.port) as c:
        c.send(build_request("GET", "/a.txt", [("Content-Length", "101")]) + b"x" * 101 +
               build_request("GET", "/a.txt"))
        r = c.read_response()
        assert r.status == 413, r
        closes_after(c, r)


CHUNKED_BODIES = {
    "simple": b"5\r\nhello\r\n0\r\n\r\n",
    "extensions-and-trailer": b"5;ext=1\r\nhello\r\n3 ; a=\"b\"\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "request-inside": b"%x\r\n%s\r\n0\r\n\r\n" % (len(build_request("GET", "/c.txt")),
                                                   build_request("GET", "/c.txt")),
    "uppercase-hex": b"A\r\n0123456789\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(CHUNKED_BODIES))
def test_chunked_body_is_refused_and_closed_or_skipped_exactly(daemon, name):
    """RFC 9112 §6.1/§7.1: a server either reads a chunked body to its end or
    refuses it (411, then closes: the body's end is unknown to it). Either
    way, nothing inside the body may be answered as a request."""
    put(daemon.root, "a.txt", b"AAAA")
    put(daemon.root, "b.txt", b"BBBB")
    put(daemon.root, "c.txt", b"CCCC")
    with Client.connect(daemon.port) as c:
        c.send(build_request("GET", "/a.txt", [("Transfer-Encoding", "chunked")]) +
               CHUNKED_BODIES[name] + build_request("GET", "/b.txt"))
        r = c.read_response()
        if 400 <= r.status < 500:
            closes_after(c, r)
            return
        assert r.status == 200 and r.body == b"AAAA", r
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"BBBB", r2
        c.no_stray_bytes(0.3)


@pytest.mark.parametrize("body", [b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n",
                                  b"-5\r\nhello\r\n0\r\n\r\n", b"ffffffffffffffffff\r\n"],
                         ids=["bad-hex", "no-crlf-after-data", "negative", "huge"])
def test_malformed_chunked_body_ends_the_connection(daemon, body):
    """Whatever was answered, a request pipelined behind a chunked body whose
    end cannot be found must not be answered."""
    put(daemon.root, "a.txt", b"AAAA")
    with Client.connect(daemon.port) as c:
        c.send(build_request("GET", "/a.txt", [("Transfer-Encoding", "chunked")]) + body +
               build_request("GET", "/a.txt"))
        c.read_response()
        assert c.closed_by_server(HANG), "connection kept open after a malformed chunked body"


def test_chunked_body_over_max_body_bytes_ends_the_connection(make_daemon):
    d = make_daemon({"server": {"max_body_bytes": 100}})
    put(d.root, "a.txt", b"AAAA")
    # The limit counts the message body as sent, chunk framing included
    # (so extensions cannot carry volume past it): 77 bytes here, fine.
    with Client.connect(d.port) as c:
        c.send(build_request("GET", "/a.txt", [("Transfer-Encoding", "chunked")]) +
               b"1e\r\n" + b"x" * 30 + b"\r\n1e\r\n" + b"y" * 30 + b"\r\n0\r\n\r\n" +
               build_request("GET", "/a.txt"))
        r = c.read_response()
        if 400 <= r.status < 500:
            closes_after(c, r)
        else:
            assert r.status == 200 and c.read_response().status == 200
    with Client.connect(d.port) as c:
        c.send(build_request("GET", "/a.txt", [("Transfer-Encoding", "chunked")]) +
               b"32\r\n" + b"x" * 50 + b"\r\n33\r\n" + b"y" * 51 + b"\r\n0\r\n\r\n" +
               build_request("GET", "/a.txt"))
        r = c.read_response()
        assert r.status in (200, 411, 413), r
        assert c.closed_by_server(HANG), "connection kept open after a chunked body over max_body_bytes"


def test_http10_with_transfer_encoding_closes(ten):
    """RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty
    framing; the server MUST close the connection after processing it, even
    when the client asked for keep-alive."""
    with Client.connect(ten.port) as c:
        c.send(b"GET /ten.txt HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\n" + build_request("GET", "/ten.txt", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status in (200, 400, 411), r
        assert "keep-alive" not in r.connection_tokens(), r
        assert c.closed_by_server(HANG), "HTTP/1.0 request with Transfer-Encoding: connection kept open"


@pytest.mark.parametrize("te", ["gzip", "chunked, gzip", "chunkedx", "identity"])
def test_transfer_coding_other_than_final_chunked_400_and_close(ten, te):
    """RFC 9112 §6.3 item 4: without chunked last, the length is unknown."""
    with Client.connect(ten.port) as c:
        c.send(build_request("GET", "/ten.txt", [("Transfer-Encoding", te)]) + b"abc" +
               build_request("GET", "/ten.txt"))
        r = c.read_response()
        assert 400 <= r.status < 500 and r.status != 404, r
        closes_after(c, r)


# Transfer-Encoding field lines as sent, and the status: 200 for a chunked
# body (read and skipped), otherwise the connection is closed after the
# answer. RFC 9112 §6.1, §6.3 and §7; lists as in RFC 9110 §5.6.1.
TRANSFER_CODINGS = {
    "chunked": (["chunked"], 200),
    "uppercase": (["CHUNKED"], 200),
    "empty-elements": ([", chunked ,"], 200),
    "empty-line-then-chunked": (["", "chunked"], 200),
    "space-separated": (["foo chunked"], 400),
    "unknown-before-chunked": (["cow, chunked"], 501),
    "gzip-before-chunked": (["gzip, chunked"], 501),
    "gzip-line-then-chunked-line": (["gzip", "chunked"], 501),
    "parameter-before-chunked": (['x;a="b, c", chunked'], 501),
    "chunked-not-last": (["chunked, gzip"], 400),
    "chunked-line-then-gzip-line": (["chunked", "gzip"], 400),
    "chunked-twice": (["chunked, chunked"], 400),
    "chunked-line-twice": (["chunked", "chunked"], 400),
    "chunked-with-parameter": (["chunked;a=b"], 400),
    "empty-elements-only": ([", ,"], 400),
    "empty": ([""], 400),
    "quoted": (['"chunked"'], 400),
    "bad-character": (["chunked/1"], 400),
    "unfinished-parameter": (["x;a, chunked"], 400),
}


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
@pytest.mark.parametrize("name", list(TRANSFER_CODINGS))
def test_transfer_codings(ten, name, version):
    """Transfer-Encoding is a list of tokens (all its field lines together):
    chunked, last and once, is the only coding we decode; another before it
    is 501; anything else (chunked not last or twice, chunked with
    parameters, not a list of codings) is 400. A refused request ends the
    connection: a request pipelined behind its body is never answered. In
    HTTP/1.0 the same, and the connection ends even after a 200 (RFC 9112
    §6.1: the framing is to be treated as faulty)."""
    fields, expected = TRANSFER_CODINGS[name]
    head = f"GET /ten.txt {version}\r\nHost: a\r\nConnection: keep-alive\r\n".encode()
    head += b"".join(b"Transfer-Encoding: %s\r\n" % v.encode() for v in fields) + b"\r\n"
    with Client.connect(ten.port) as c:
        c.send(head + b"3\r\nabc\r\n0\r\n\r\n" + build_request("GET", "/ten.txt"))
        r = c.read_response()
        assert r.status == expected, r
        if expected != 200:
            closes_after(c, r)
        elif version == "HTTP/1.0":
            assert c.closed_by_server(HANG), "HTTP/1.0 request with Transfer-Encoding: connection kept open"
        else:
            assert r.body == TEN and c.read_response().body == TEN
            c.no_stray_bytes(0.3)


@pytest.mark.parametrize("te", ["chunked", "gzip, chunked", "foo chunked"])
def test_transfer_encoding_with_content_length_400_and_close(ten, te):
    """Both framings at once is refused as smuggling (RFC 9112 §6.3) before
    the codings are looked at."""
    with Client.connect(ten.port) as c:
        c.send(build_request("GET", "/ten.txt", [("Transfer-Encoding", te), ("Content-Length", "5")]) +
               b"0\r\n\r\n" + build_request("GET", "/ten.txt"))
        r = c.read_response()
        assert r.status == 400, r
        closes_after(c, r)


@pytest.mark.parametrize("lines", [b"\r\n", b"\n" * 8, b"\r\n\n" * 4], ids=["one", "eight-lf", "eight-mixed"])
def test_empty_lines_before_a_request_line_are_ignored(ten, lines):
    """RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a
    request line; we ignore up to 8, at the start of a connection or after a
    request (a client may send a CRLF after a body)."""
    with Client.connect(ten.port) as c:
        c.send(lines + build_request("GET", "/ten.txt", [("Content-Length", "2")]) + b"hi" +
               lines + build_request("GET", "/ten.txt"))
        assert c.read_response().body == TEN
        assert c.read_response().body == TEN
        c.no_stray_bytes(0.3)


@pytest.mark.parametrize("lines", [b"\r\n" * 9, b"\n" * 9, b"\r\n" * 1000],
                         ids=["nine-crlf", "nine-lf", "a-thousand"])
def test_more_empty_lines_than_allowed_400_and_close(ten, lines):
    """Nine empty lines are nobody's habit: 400, without waiting for the
    request line, and the connection is closed."""
    with Client.connect(ten.port) as c:
        c.sock.settimeout(PROMPT)
        c.send(lines)
        r = c.read_response()
        assert r.status == 400, r
        try:
            c.send(build_request("GET", "/ten.txt"))
        except (BrokenPipeError, ConnectionResetError):
            pass
        closes_after(c, r)


def test_higher_minor_version_is_answered_as_1_1(ten):
    with Client.connect(ten.port) as c:
        c.send(b"GET /ten.txt HTTP/1.2\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.version == "HTTP/1.1" and r.status == 200 and r.body == TEN, r
        assert "close" not in r.connection_tokens()
        # Persistent by default, as for 1.1 (RFC 9112 §9.3).
        c.send(b"GET /ten.txt HTTP/1.2\r\nHost: a\r\n\r\n")
        assert c.read_response().body == TEN


@pytest.mark.parametrize("target", ["http://h/ten.txt", "HTTP://h:80/ten.txt", "http://h/ten.txt?q=1"])
def test_absolute_form(ten, target):
    r = fetch(ten.port, target)
    assert r.status == 200 and r.body == TEN, r


def test_options_asterisk(ten):
    r = exchange(ten.port, b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert 200 <= r.status < 300, r
    allow = {m.strip() for v in r.header_all("Allow") for m in v.split(",")}
    assert {"GET", "HEAD"} <= allow, allow


# --- limits ---------------------------------------------------------------------

def line_of(length, method="GET"):
    """A request line of exactly `length` bytes (without CRLF)."""
    pad = length - len(method) - len(" / HTTP/1.1")
    assert pad >= 0
    return f"{method} /{'a' * pad} HTTP/1.1".encode()


def test_request_line_at_the_limit_is_accepted(make_daemon):
    d = make_daemon({"server": {"max_request_line": 300}})
    r = exchange(d.port, line_of(300) + b"\r\nHost: a\r\n\r\n")
    assert r.status == 404, r       # parsed and looked up, not refused


@pytest.mark.parametrize("split", [10, 299, 300, 301], ids=["early", "before-last", "before-cr", "between-cr-lf"])
def test_request_line_at_the_limit_is_accepted_however_it_is_split(make_daemon, split):
    """The limit is on the line (method, target, version), not on its CRLF:
    where TCP happens to cut the bytes must not change the answer."""
    d = make_daemon({"server": {"max_request_line": 300}})
    data = line_of(300) + b"\r\nHost: a\r\n\r\n"
    with Client.connect(d.port) as c:
        c.sock.settimeout(PROMPT)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.send(data[:split])
        time.sleep(0.2)
        try:
            c.send(data[split:])
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 404, f"{r.status} for a {300}-byte request line split after byte {split}"


def test_complete_request_line_over_the_limit_414(make_daemon):
    d = make_daemon({"server": {"max_request_line": 300}})
    with Client.connect(d.port) as c:
        c.sock.settimeout(PROMPT)
        c.send(line_of(301) + b"\r\nHost: a\r\n\r\n")
        r = c.read_response()
        assert r.status == 414, r
        closes_after(c, r)


def test_unfinished_request_line_over_the_limit_414_without_waiting(make_daemon):
    d = make_daemon({"server": {"max_request_line": 300}})
    with Client.connect(d.port) as c:
        c.sock.settimeout(PROMPT)   # the header timeout is 60 s
        c.send(line_of(600)[:500])   # no CRLF yet, and more may follow
        r = c.read_response()
        assert r.status == 414, r
        closes_after(c, r)


def test_unfinished_request_line_over_the_limit_sent_in_pieces_414(make_daemon):
    d = make_daemon({"server": {"max_request_line": 300}})
    with Client.connect(d.port) as c:
        c.sock.settimeout(PROMPT)
        line = line_of(900)
        for i in range(0, 600, 100):
            try:
                c.send(line[i:i + 100])
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.02)
        r = c.read_response()
        assert r.status == 414, r


def test_long_request_line_with_unfinished_header_section_414_without_waiting(make_daemon):
    """The request line is complete and already too long; the rest of the
    head has not come yet. Nothing that follows can make the line acceptable,
    so waiting for the head (up to the 60 s header timeout) serves nobody."""
    d = make_daemon({"server": {"max_request_line": 300}})
    with Client.connect(d.port) as c:
        c.sock.settimeout(PROMPT)
        c.send(line_of(400) + b"\r\nHost: a\r\n")
        try:
            r = c.read_response()
        except socket.timeout:
            pytest.fail(f"no answer within {PROMPT}s to a complete {400}-byte request line "
                        "(max_request_line = 300) while the header section is unfinished")
        assert r.status == 414, r


def test_long_request_line_then_headers_filling_the_buffer_is_414_not_431(make_daemon):
    """RFC 9112 §3: a request-target longer than the server will parse is 414.
    The line is over max_request_line on its own, whatever follows it."""
    d = make_daemon({"server": {"max_request_line": 300, "max_header_bytes": 1024}})
    with Client.connect(d.port) as c:
        c.sock.settimeout(PROMPT)
        try:
            c.send(line_of(400) + b"\r\nHost: a\r\nX-Pad: " + b"p" * 2000 + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 414, r


def test_header_section_over_max_header_bytes_431(make_daemon):
    d = make_daemon({"server": {"max_header_bytes": 1024}})
    put(d.root, "a.txt", b"AAAA")
    r = exchange(d.port, build_request("GET", "/a.txt", [("X-Pad", "p" * 800)]))
    assert r.status == 200, r
    with Client.connect(d.port) as c:
        c.sock.settimeout(PROMPT)
        try:
            c.send(build_request("GET", "/a.txt", [("X-Pad", "p" * 600), ("X-Pad2", "q" * 600)]))
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.read_response()
        assert r.status == 431, r
        closes_after(c, r)


def test_unfinished_header_section_filling_the_buffer_431_without_waiting(make_daemon):
    d = make_daemon({"server": {"max_header_bytes": 1024}})
    with Client.connect(d.port) as c:
        c.sock.settimeout(PROMPT)
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 50)
                                                         for i in range(25)))
        r = c.read_response()
        assert r.status == 431, r
        closes_after(c, r)


def test_more_fields_than_max_header_fields_431(make_daemon):
    d = make_daemon({"server": {"max_header_fields": 10}})
    put(d.root, "a.txt", b"AAAA")
    nine = [(f"X-F{i}", "v") for i in range(9)]           # + Host = 10
    r = exchange(d.port, build_request("GET", "/a.txt", nine))
    assert r.status == 200, r
    with Client.connect(d.port) as c:
        c.send(build_request("GET", "/a.txt", nine + [("X-F9", "v")]) + build_request("GET", "/a.txt"))
        r = c.read_response()
        assert r.status == 431, r
        closes_after(c, r)


def test_half_sent_head_gets_408_and_close(make_daemon):
    d = make_daemon({"timeouts": {"header": "1s"}})
    with Client.connect(d.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nHo")
        start = time.monotonic()
        r = c.read_response()
        elapsed = time.monotonic() - start
        assert r.status == 408, r
        assert elapsed >= 0.5, f"408 after {elapsed:.2f}s, before the 1s header timeout"
        assert "close" in r.connection_tokens(), r
        assert c.closed_by_server(HANG)


def test_silent_connection_is_closed_quietly_at_the_header_timeout(make_daemon):
    d = make_daemon({"timeouts": {"header": "1s"}})
    with Client.connect(d.port) as c:
        start = time.monotonic()
        assert c.closed_by_server(HANG), "silent connection kept past the header timeout"
        elapsed = time.monotonic() - start
        assert elapsed >= 0.5, f"closed after {elapsed:.2f}s, before the 1s header timeout"


def test_idle_keepalive_closed_without_bytes(make_daemon):
    d = make_daemon({"timeouts": {"keepalive": "1s"}})
    put(d.root, "a.txt", b"AAAA")
    with Client.connect(d.port) as c:
        c.request("GET", "/a.txt")
        r = c.read_response()
        assert r.status == 200 and "close" not in r.connection_tokens()
        start = time.monotonic()
        assert c.closed_by_server(HANG), "idle keep-alive connection kept past keepalive = 1s"
        elapsed = time.monotonic() - start
        assert elapsed >= 0.5, f"closed after {elapsed:.2f}s, before the keep-alive timeout"


# --- paths ------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["/%00", "/a%00b", "/ten.txt%00.html", "/%2500%00"])
def test_encoded_nul_400(ten, target):
    r = fetch(ten.port, target)
    assert r.status == 400, r


@pytest.mark.parametrize("target", ["/a/./b//c", "//a//b//c", "/a/x/../b/c", "/a/b/./c", "/x/../a/b/c",
                                    "/a/%2e/b/c", "/a/b/%2E%2E/b/c"])
def test_dot_segments_and_duplicate_slashes_resolve(daemon, target):
    put(daemon.root, "a/b/c", b"ABC")
    r = fetch(daemon.port, target)
    assert r.status == 200 and r.body == b"ABC", r


DOTFILES = ["/.env", "/.git/config", "/dir/.hidden", "/dir/.hidden/inner", "/%2egit/config"]


def make_dotfiles(root):
    put(root, ".env", b"SECRET=1")
    put(root, ".git/config", b"[core]")
    put(root, "dir/.hidden/inner", b"inner")
    put(root, "dir/visible", b"visible")


@pytest.mark.parametrize("target", DOTFILES)
def test_dotfiles_404_by_default(daemon, target):
    make_dotfiles(daemon.root)
    r = fetch(daemon.port, target)
    assert r.status == 404, r
    assert b"SECRET" not in r.body and b"[core]" not in r.body and b"inner" not in r.body


def test_dotfiles_served_with_dotfiles_yes(make_daemon):
    d = make_daemon({"server": {"dotfiles": "yes"}})
    make_dotfiles(d.root)
    assert fetch(d.port, "/.env").body == b"SECRET=1"
    assert fetch(d.port, "/.git/config").body == b"[core]"
    assert fetch(d.port, "/dir/.hidden/inner").body == b"inner"
    assert fetch(d.port, "/dir/visible").body == b"visible"


def test_dotfile_as_a_file_in_a_subdirectory(make_daemon):
    d = make_daemon()
    put(d.root, "dir/.hidden", b"hidden")
    assert fetch(d.port, "/dir/.hidden").status == 404
    d2 = make_daemon({"server": {"dotfiles": "yes"}})
    r = fetch(d2.port, "/dir/.hidden")
    assert r.status == 200 and r.body == b"hidden"


def test_well_known_is_served_by_default(daemon):
    put(daemon.root, ".well-known/x", b"known")
    r = fetch(daemon.port, "/.well-known/x")
    assert r.status == 200 and r.body == b"known"
    put(daemon.root, ".well-known/.secret", b"no")
    assert fetch(daemon.port, "/.well-known/.secret").status == 404


def test_directory_without_index_403(daemon):
    (daemon.root / "noindex").mkdir()
    put(daemon.root, "noindex/file", b"f")
    r = fetch(daemon.port, "/noindex/")
    assert r.status == 403, r
    assert b"file" not in r.body


# --- precompressed variants (RFC 9110 §8.4, §12.5.3) -------------------------------

PAGE = b"<!DOCTYPE html><title>page</title>" + b"<p>hello</p>" * 50
BR = b"BROTLI-STAND-IN:" + os.urandom(40)


@pytest.fixture
def variants(make_daemon):
    """Returns a factory: variants(settings) -> daemon serving /p/page.html
    with page.html.gz and page.html.br beside it."""
    def factory(settings=None, gz_mtime=MTIME, br=True):
        d = make_daemon(settings)
        put(d.root, "p/page.html", PAGE)
        d.gz = gzip.compress(PAGE, mtime=0)
        put(d.root, "p/page.html.gz", d.gz, mtime=gz_mtime)
        if br:
            put(d.root, "p/page.html.br", BR)
        return d
    return factory


def vary_tokens(r):
    return {t.strip().lower() for v in r.header_all("Vary") for t in v.split(",")}


def assert_identity(r):
    assert r.status == 200 and r.body == PAGE, r
    assert r.header("Content-Encoding") is None


def test_gzip_variant(variants):
    d = variants()
    ident = fetch(d.port, "/p/page.html")
    r = fetch(d.port, "/p/page.html", ("Accept-Encoding", "gzip"))
    assert r.status == 200 and r.body == d.gz, r
    assert r.header("Content-Encoding") == "gzip"
    assert "accept-encoding" in vary_tokens(r)
    assert r.header("Content-Type").split(";")[0] == "text/html"
    assert r.header("Content-Length") == str(len(d.gz))
    assert ETAG.match(r.header("ETag"))
    assert r.header("ETag") != ident.header("ETag")
    assert gzip.decompress(r.body) == PAGE


@pytest.mark.parametrize("ae", ["br, gzip", "gzip, br", "gzip;q=0.5, br;q=0.9", "BR"])
def test_br_preferred(variants, ae):
    d = variants()
    r = fetch(d.port, "/p/page.html", ("Accept-Encoding", ae))
    assert r.status == 200 and r.body == BR, r
    assert r.header("Content-Encoding") == "br"
    assert r.header("Content-Type").split(";")[0] == "text/html"
    assert "accept-encoding" in vary_tokens(r)


@pytest.mark.parametrize("ae", ["gzip;q=0", "gzip; q=0.000", "identity", "deflate", "br;q=0, gzip;q=0"])
def test_refused_codings_get_identity(variants, ae):
    d = variants()
    assert_identity(fetch(d.port, "/p/page.html", ("Accept-Encoding", ae)))


def test_no_accept_encoding_gets_identity_with_vary(variants):
    d = variants()
    r = fetch(d.port, "/p/page.html")
    assert_identity(r)
    assert "accept-encoding" in vary_tokens(r)


def test_stale_gz_is_not_used(variants):
    d = variants(gz_mtime=MTIME - 100, br=False)
    assert_identity(fetch(d.port, "/p/page.html", ("Accept-Encoding", "gzip")))


def test_precompressed_no(variants):
    d = variants({"server": {"precompressed": "no"}})
    for ae in ["gzip", "br, gzip", "*"]:
        assert_identity(fetch(d.port, "/p/page.html", ("Accept-Encoding", ae)))


def test_range_on_gzip_variant_applies_to_gz_bytes(variants):
    d = variants(br=False)
    r = fetch(d.port, "/p/page.html", ("Accept-Encoding", "gzip"), ("Range", "bytes=0-3"))
    assert r.status == 206, r
    assert r.body == d.gz[:4]
    assert r.header("Content-Range") == f"bytes 0-3/{len(d.gz)}"
    assert r.header("Content-Encoding") == "gzip"
    r = fetch(d.port, "/p/page.html", ("Accept-Encoding", "gzip"), ("Range", "bytes=-5"))
    assert r.status == 206 and r.body == d.gz[-5:]


def test_if_none_match_with_gzip_etag(variants):
    d = variants(br=False)
    gz_etag = fetch(d.port, "/p/page.html", ("Accept-Encoding", "gzip")).header("ETag")
    r = fetch(d.port, "/p/page.html", ("Accept-Encoding", "gzip"), ("If-None-Match", gz_etag))
    assert r.status == 304, r
    assert r.header("ETag") == gz_etag
    r = fetch(d.port, "/p/page.html", ("If-None-Match", gz_etag))
    assert_identity(r)
    r = fetch(d.port, "/p/page.html", ("Accept-Encoding", "gzip;q=0"), ("If-None-Match", gz_etag))
    assert_identity(r)


# --- Cache-Control ------------------------------------------------------------------

def test_no_cache_control_by_default(ten):
    r = fetch(ten.port, "/ten.txt")
    assert r.status == 200 and r.header("Cache-Control") is None


@pytest.mark.parametrize("value", ["3600", "1h", "60min"])
def test_cache_max_age_on_200_206_304(make_daemon, value):
    d = make_daemon({"server": {"cache_max_age": value}})
    put(d.root, "ten.txt", TEN)
    r = fetch(d.port, "/ten.txt")
    assert r.status == 200 and r.header("Cache-Control") == "max-age=3600", r
    r206 = fetch(d.port, "/ten.txt", ("Range", "bytes=1-2"))
    assert r206.status == 206 and r206.header("Cache-Control") == "max-age=3600", r206
    r304 = fetch(d.port, "/ten.txt", ("If-None-Match", r.header("ETag")))
    assert r304.status == 304 and r304.header("Cache-Control") == "max-age=3600", r304


# --- regressions from review ------------------------------------------------

def test_stalled_body_after_the_answer_gets_no_408(make_daemon):
    """The request was answered; a body that stops coming must not earn a
    408 that the client would take as the answer to its next request."""
    d = make_daemon({"timeouts": {"header": "1s"}})
    put(d.root, "a.txt", b"AAAA")
    with Client.connect(d.port) as c:
        c.send(build_request("GET", "/a.txt", [("Content-Length", "50")]) + b"abc")
        assert c.read_response().status == 200
        c.sock.settimeout(HANG)
        rest = b""
        while True:
            chunk = c.sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        assert rest == b"", rest


def test_a_body_sent_within_the_header_timeout_keeps_the_connection(make_daemon):
    d = make_daemon({"timeouts": {"header": "3s"}})
    put(d.root, "a.txt", b"AAAA")
    with Client.connect(d.port) as c:
        c.send(build_request("GET", "/a.txt", [("Content-Length", "6")]))
        assert c.read_response().status == 200
        for byte in b"abcdef":  # in pieces, but 0.6 s in all
            time.sleep(0.1)
            c.send(bytes([byte]))
        c.send(build_request("GET", "/a.txt"))
        assert c.read_response().body == b"AAAA"


def test_dropping_an_answered_body_is_bounded_from_its_start_not_per_byte(make_daemon):
    """A byte every 0.4 s never lets 1 s pass in silence, yet the whole body
    may only take the header timeout: then the connection ends, with a FIN."""
    d = make_daemon({"timeouts": {"header": "1s"}})
    put(d.root, "a.txt", b"AAAA")
    with Client.connect(d.port) as c:
        c.send(build_request("GET", "/a.txt", [("Content-Length", "100")]))
        assert c.read_response().status == 200
        start = time.monotonic()
        c.sock.settimeout(0.4)
        closed = None
        while closed is None and time.monotonic() - start < 20:
            try:
                c.send(b"x")
                closed = c.sock.recv(1) == b""
            except socket.timeout:
                continue
            except OSError:
                closed = False
        assert closed is True, "the trickled body was never cut, or the cut was a reset"
        assert time.monotonic() - start < 10


def test_drain_does_not_wait_for_the_body_of_an_answered_request(make_daemon):
    import signal
    d = make_daemon({"timeouts": {"shutdown": "20s"}})
    put(d.root, "a.txt", b"AAAA")
    with Client.connect(d.port) as c:
        c.send(build_request("GET", "/a.txt", [("Transfer-Encoding", "chunked")]) + b"5\r\nhel")
        assert c.read_response().status == 200
        time.sleep(0.3)
        start = time.monotonic()
        assert d.stop(signal.SIGTERM) == 0
        assert time.monotonic() - start < 5, d.output()


def test_last_modified_is_never_later_than_date(daemon):
    future = time.time() + 3600
    put(daemon.root, "f.txt", b"future", mtime=future)
    r = get(daemon.port, "/f.txt")
    assert r.status == 200
    lm = email.utils.parsedate_to_datetime(r.header("Last-Modified")).timestamp()
    date = email.utils.parsedate_to_datetime(r.header("Date")).timestamp()
    assert lm <= date


@pytest.mark.parametrize("accept, expected", [
    ("br;q=0.1, gzip;q=1", "gzip"),
    ("gzip;foo=1;q=0, br;q=0", None),
    ("gzip;q=", None),            # malformed qvalue: element ignored
    ("*;q=0.5, br;q=0", "gzip"),
    ("br, gzip", "br"),
    ("identity", None),
])
def test_accept_encoding_qvalues_choose_the_variant(daemon, accept, expected):
    put(daemon.root, "v.txt", b"plain text " * 20)
    put(daemon.root, "v.txt.gz", gzip.compress(b"plain text " * 20))
    put(daemon.root, "v.txt.br", b"not really brotli")
    r = get(daemon.port, "/v.txt", headers=[("Accept-Encoding", accept)])
    assert r.status == 200
    assert r.header("Content-Encoding") == expected
