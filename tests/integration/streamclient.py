"""A raw HTTP/1.1 client on one socket, for tests that stream large bodies
or need control of the receive buffer (slow readers, drains)."""
import socket

HANG = 30  # seconds: only to catch hangs
KIB = 1024


class Client:
    """A raw HTTP/1.1 client on one socket, keeping what it read ahead."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    @classmethod
    def connect(cls, port, timeout=HANG, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        return cls(s)

    def close(self):
        self.sock.close()

    def _fill(self, n=256 * KIB):
        data = self.sock.recv(n)
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    def send_get(self, path, extra=""):
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode())

    def read_head(self):
        """Returns (status, headers with lower-case names)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0] == "HTTP/1.1", lines[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill(max(n - len(self.buf), 64 * KIB))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def take_buffered(self):
        """What was read ahead, handed over and forgotten."""
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def read_response(self):
        status, headers = self.read_head()
        assert "content-length" in headers, headers
        return status, headers, self.read_exact(int(headers["content-length"]))

    def get(self, path, extra=""):
        self.send_get(path, extra)
        return self.read_response()
