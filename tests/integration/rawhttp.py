"""A raw-socket HTTP/1.1 client for black-box tests.

http.client hides exactly what these tests look at (pipelining, the exact
bytes on the wire, whether the server closed the connection), so responses
are read here by hand: a status line, header fields, and a body framed by
Content-Length (or by the end of the connection when there is none)."""

import socket

TIMEOUT = 10  # seconds; only to catch hangs


class Response:
    def __init__(self, version, status, reason, headers, body, raw):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] in order, names as sent
        self.body = body
        self.raw = raw          # every byte of the response, head and body

    def header_all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def header(self, name, default=None):
        values = self.header_all(name)
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else default

    def connection_tokens(self):
        tokens = set()
        for v in self.header_all("Connection"):
            tokens.update(t.strip().lower() for t in v.split(",") if t.strip())
        return tokens

    def __repr__(self):
        return f"<Response {self.status} {self.reason} {self.headers} body={self.body[:80]!r}>"


class Client:
    """One connection; read_response() may be called once per request sent,
    in order, whatever was pipelined."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(TIMEOUT)
        self.buf = b""

    @classmethod
    def connect(cls, port, host="127.0.0.1", timeout=TIMEOUT):
        return cls(socket.create_connection((host, port), timeout=timeout))

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def request(self, method, target, headers=None, version="HTTP/1.1", host="test"):
        """Sends one request; Host is added for HTTP/1.1 unless host is None."""
        self.send(build_request(method, target, headers, version, host))

    def _recv(self):
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError:
            data = b""
        return data

    def _fill(self):
        data = self._recv()
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    def read_response(self, head_request=False):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        raw_head = head + b"\r\n\r\n"
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        assert version in ("HTTP/1.0", "HTTP/1.1"), f"bad status line {lines[0]!r}"
        status = int(status)
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            assert sep and name and name == name.strip(), f"bad header line {line!r}"
            headers.append((name, value.strip(" \t")))
        resp = Response(version, status, reason, headers, b"", raw_head)

        lengths = resp.header_all("Content-Length")
        if head_request or status in (204, 304) or 100 <= status < 200:
            return resp
        if lengths:
            assert len(set(lengths)) == 1, lengths
            n = int(lengths[0])
            while len(self.buf) < n:
                self._fill()
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            assert not resp.header_all("Transfer-Encoding"), "chunked responses are not expected"
            while True:
                data = self._recv()
                if not data:
                    break
                self.buf += data
            resp.body, self.buf = self.buf, b""
        resp.raw = raw_head + resp.body
        return resp

    def closed_by_server(self, timeout=TIMEOUT):
        """True when the server closes the connection (EOF or reset) with no
        further bytes; False when it is still open after timeout. Extra bytes
        fail the assertion: they would be a stray body or response."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(TIMEOUT)
        assert self.buf + data == b"", f"unexpected bytes after the response: {(self.buf + data)[:200]!r}"
        return True

    def no_stray_bytes(self, wait=0.1):
        """Asserts that nothing more arrives for a short while."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            data = b""
        finally:
            self.sock.settimeout(TIMEOUT)
        assert self.buf + data == b"", f"unexpected bytes: {(self.buf + data)[:200]!r}"


def build_request(method, target, headers=None, version="HTTP/1.1", host="test"):
    lines = [f"{method} {target} {version}"]
    if host is not None and version == "HTTP/1.1":
        lines.append(f"Host: {host}")
    for name, value in (headers or []):
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def exchange(port, data, head_request=False, host="127.0.0.1"):
    """Sends raw bytes on a new connection and reads one response."""
    with Client.connect(port, host) as c:
        c.send(data)
        return c.read_response(head_request)


def get(port, target, headers=None, version="HTTP/1.1", method="GET"):
    with Client.connect(port) as c:
        c.request(method, target, headers, version)
        return c.read_response(head_request=method == "HEAD")

