"""A small HTTP/1.1 client on raw sockets, strict enough to notice a wrong
or truncated response, and the two loads the checks need: keep-alive
connections hammering one file, and slow downloads.

Errors are kept apart the way RFC 9112 section 9.3.1 does: a server may
close an idle keep-alive connection at any time, so a clean close (EOF)
before any byte of the response on a reused connection is a retry on a new
connection, not a failure. A reset (ECONNRESET, or EPIPE after one) never
is: it means the server dropped a request it had received."""

import errno
import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field

ADDRESSES = {4: ("127.0.0.1", 80), 6: ("::1", 80)}
IO_BOUND = 60          # seconds a socket may wait; only catches hangs
MAX_HEAD = 65536


class PeerClosed(Exception):
    """EOF from the server; `received` bytes of this response had arrived."""

    def __init__(self, received):
        super().__init__(f"connection closed by the server after {received} byte(s) of the response")
        self.received = received


class BadResponse(Exception):
    pass


def is_reset(e):
    return isinstance(e, OSError) and e.errno in (errno.ECONNRESET, errno.EPIPE)


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    @property
    def closes(self):
        return "close" in self.headers.get("connection", "").lower()

    def text(self):
        return self.body.decode("utf-8", "replace")


def connect(family=4, rcvbuf=None, timeout=IO_BOUND):
    host, port = ADDRESSES[family]
    s = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except BaseException:
        s.close()
        raise
    return s


class Connection:
    """One keep-alive connection; get() may be called again after a response."""

    def __init__(self, family=4, rcvbuf=None):
        self.family = family
        self.sock = connect(family, rcvbuf)
        self.buf = b""
        self.used = 0   # responses received on it

    def close(self):
        self.sock.close()

    def send_get(self, path, close=False):
        host = "[::1]" if self.family == 6 else "127.0.0.1"
        head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: webpoold-e2e\r\n"
        if close:
            head += "Connection: close\r\n"
        self.sock.sendall((head + "\r\n").encode())

    def _fill(self, received):
        data = self.sock.recv(65536)
        if not data:
            raise PeerClosed(received)
        self.buf += data

    def read_head(self):
        """(status, headers) of the next response; the body stays in buf."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD:
                raise BadResponse("response head too long")
            self._fill(len(self.buf))
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or parts[0] != "HTTP/1.1" or not parts[1].isdigit():
            raise BadResponse(f"bad status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise BadResponse(f"bad header line {line!r}")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def read_body(self, headers, sink=None):
        """The body (framed by Content-Length, which a static server always
        sends); with SINK, chunks go to it and b'' is returned."""
        length = headers.get("content-length")
        if length is None or not length.isdigit():
            raise BadResponse(f"no usable Content-Length: {headers}")
        want, got, kept = int(length), 0, []
        while got < want:
            if not self.buf:
                self._fill(got + 1)   # +1: the head had arrived already
            chunk, self.buf = self.buf[:want - got], self.buf[want - got:]
            got += len(chunk)
            if sink:
                sink(chunk)
            else:
                kept.append(chunk)
        return b"".join(kept)

    def get(self, path, close=False):
        self.send_get(path, close)
        status, headers = self.read_head()
        body = self.read_body(headers)
        self.used += 1
        return Response(status, headers, body)


def fetch(path, family=4):
    """One request on a new connection; raises on any transport error."""
    c = Connection(family)
    try:
        return c.get(path, close=True)
    finally:
        c.close()


def try_fetch(path, family=4):
    """(Response or None, error text)."""
    try:
        return fetch(path, family), ""
    except (OSError, PeerClosed, BadResponse) as e:
        return None, f"{type(e).__name__}: {e}"


# --- keep-alive load ---------------------------------------------------------------

@dataclass
class LoadStats:
    requests: int = 0    # complete, valid responses
    failures: int = 0
    resets: int = 0
    retries: int = 0
    examples: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what, example=None):
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)
            if example and len(self.examples) < 5:
                self.examples.append(f"{what}: {example}")

    def figures(self):
        return (f"{self.requests} requests, {self.failures} failures, {self.resets} resets, "
                f"{self.retries} retries")


class KeepAliveLoad:
    """N threads, each with one keep-alive connection requesting PATH as
    fast as it is answered and checking every response against BODY. A
    connection the server closes is replaced by a new one."""

    def __init__(self, path, body, n=50, family=4):
        self.path, self.body, self.n, self.family = path, body, n, family
        self.stats = LoadStats()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(n)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(IO_BOUND + 5)

    def _worker(self):
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None:
                    conn = Connection(self.family)
                r = conn.get(self.path)
                if r.status != 200 or r.body != self.body:
                    self.stats.add("failures", f"status {r.status}, {len(r.body)} body bytes")
                else:
                    self.stats.add("requests")
                if r.closes:
                    conn = _drop(conn)
            except PeerClosed as e:
                if conn.used > 0 and e.received == 0:
                    self.stats.add("retries")   # the same GET goes out again on a new connection
                else:
                    self.stats.add("failures", str(e))
                conn = _drop(conn)
            except OSError as e:
                self.stats.add("resets" if is_reset(e) else "failures", f"{type(e).__name__}: {e}")
                conn = _drop(conn)
            except BadResponse as e:
                self.stats.add("failures", str(e))
                conn = _drop(conn)
        _drop(conn)


def _drop(conn):
    if conn is not None:
        conn.close()
    return None


# --- slow downloads -----------------------------------------------------------------

class SlowDownload(threading.Thread):
    """Downloads PATH at about RATE bytes/s through a small receive window,
    so the server has to keep the response in flight for seconds. `progress`
    is set once THRESHOLD body bytes have arrived."""

    def __init__(self, path, rate, threshold, rcvbuf=16384):
        super().__init__(daemon=True)
        self.path, self.rate, self.threshold, self.rcvbuf = path, rate, threshold, rcvbuf
        self.progress = threading.Event()
        self.received = 0
        self.status = None
        self.sha256 = None
        self.error = None

    def run(self):
        digest = hashlib.sha256()
        start = time.monotonic()

        def sink(chunk):
            digest.update(chunk)
            self.received += len(chunk)
            if self.received >= self.threshold:
                self.progress.set()
            delay = start + self.received / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        try:
            c = Connection(4, rcvbuf=self.rcvbuf)
            try:
                c.send_get(self.path, close=True)
                self.status, headers = c.read_head()
                c.read_body(headers, sink)
                self.sha256 = digest.hexdigest()
            finally:
                c.close()
        except (OSError, PeerClosed, BadResponse) as e:
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.progress.set()   # never leave the caller waiting
