"""A first end-to-end request against the real binary."""
import http.client


def test_serves_a_file_and_stops_cleanly(daemon):
    (daemon.root / "hello.txt").write_bytes(b"hello\n")
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request("GET", "/hello.txt")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read() == b"hello\n"
    assert resp.getheader("Content-Type") == "text/plain"
    conn.close()
    assert daemon.stop() == 0
    assert "worker thread(s) joined" in daemon.output()
