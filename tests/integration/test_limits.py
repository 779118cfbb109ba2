"""Holding the daemon's connection slots, as a hostile or careless client
would, with small limits so each attack takes seconds: idle keep-alive
connections are reclaimed at max_connections, the body of an answered
request is dropped within one bound however slowly it comes, and the
connection limit stays within what the descriptor limit can serve.

Timing bounds here are generous: each is far below what the attack used
to cost and far above what the fixed daemon needs."""

import os
import re
import resource
import socket
import subprocess
import threading
import time

from conftest import BIN, HANG_BOUND, as_journal_stream, free_port

PAGE = b"<p>limits</p>\n"
REQUEST = b"GET /page.html HTTP/1.1\r\nHost: t\r\n\r\n"


def recv_response(sock, timeout=HANG_BOUND):
    """(status, body) of one response framed by Content-Length."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {buf!r}")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        body += chunk
    return int(head.split(b" ")[1]), body


def keep_alive_client(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=HANG_BOUND)
    s.sendall(REQUEST)
    assert recv_response(s) == (200, PAGE)
    return s


def timed_get(port):
    """Seconds until a new client's GET is answered, and the answer."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_BOUND) as s:
        s.sendall(REQUEST)
        answer = recv_response(s)
    return time.monotonic() - start, answer


def closed_cleanly(sock, timeout=HANG_BOUND):
    """True when the server closed with FIN (EOF), False on a reset; raises
    socket.timeout if the connection stays open."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return False


def still_open(sock):
    sock.settimeout(0.2)
    try:
        sock.recv(1)
    except socket.timeout:
        return True
    except OSError:
        return False
    return False


# --- idle keep-alive connections at max_connections ------------------------

KEEPALIVE = 20  # seconds: what a new client used to wait


def test_a_new_client_is_served_at_once_by_ending_the_oldest_idle_connection(make_daemon):
    d = make_daemon({"server": {"max_connections": 3, "workers": 2},
                     "timeouts": {"keepalive": f"{KEEPALIVE}s"}})
    (d.root / "page.html").write_bytes(PAGE)
    idle = []
    try:
        for _ in range(3):
            idle.append(keep_alive_client(d.port))
            time.sleep(0.05)  # so that "oldest" is well defined
        waited, answer = timed_get(d.port)
        print(f"\na fourth client with 3 idle keep-alive connections at max_connections = 3: "
              f"served after {waited:.2f}s (keepalive = {KEEPALIVE}s)")
        assert answer == (200, PAGE)
        assert waited < KEEPALIVE / 2, f"the fourth client waited {waited:.1f}s for a slot"
        # The one idle longest was ended, with a FIN, not a reset ...
        assert closed_cleanly(idle[0]), "the reclaimed connection was reset"
        # ... and the others keep serving.
        for s in idle[1:]:
            assert still_open(s)
        idle[2].sendall(REQUEST)
        assert recv_response(idle[2]) == (200, PAGE)
    finally:
        for s in idle:
            s.close()


def test_connections_mid_request_are_not_reclaimed(make_daemon):
    """Only idle connections are ended: with every slot holding a request in
    progress, a new client waits (in the backlog, not refused) until one is
    answered and goes idle."""
    d = make_daemon({"server": {"max_connections": 2, "workers": 2},
                     "timeouts": {"keepalive": f"{KEEPALIVE}s", "header": "30s"}})
    (d.root / "page.html").write_bytes(PAGE)
    partial = [socket.create_connection(("127.0.0.1", d.port), timeout=HANG_BOUND) for _ in range(2)]
    waiting = None
    try:
        for s in partial:
            s.sendall(b"GET /page.html HTTP/1.1\r\nHost: t\r\n")  # no end of head yet
        time.sleep(0.3)
        waiting = socket.create_connection(("127.0.0.1", d.port), timeout=HANG_BOUND)
        waiting.sendall(REQUEST)
        waiting.settimeout(1.5)
        try:
            data = waiting.recv(1)
            raise AssertionError(f"a connection mid-request was ended for a new client (got {data!r})")
        except socket.timeout:
            pass
        for s in partial:
            assert still_open(s), "a connection mid-request was closed"
        partial[0].sendall(b"\r\n")
        assert recv_response(partial[0]) == (200, PAGE)
        # partial[0] is idle now: the waiting client gets its slot.
        assert recv_response(waiting) == (200, PAGE)
        assert closed_cleanly(partial[0])
    finally:
        for s in partial + ([waiting] if waiting else []):
            s.close()


def test_a_burst_of_keep_alive_clients_beyond_the_limit_is_served_in_turn(make_daemon):
    """200 clients at once with max_connections = 20, each sending one GET
    and staying open: each is answered, those ended to make room see a clean
    close after their response, never a reset."""
    d = make_daemon({"server": {"max_connections": 20, "workers": 2},
                     "timeouts": {"keepalive": f"{KEEPALIVE}s"}})
    (d.root / "page.html").write_bytes(PAGE)
    socks, results = [], []
    try:
        start = time.monotonic()
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=HANG_BOUND)
            s.sendall(REQUEST)
            socks.append(s)
        for s in socks:
            results.append(recv_response(s))
        elapsed = time.monotonic() - start
        print(f"\n200 keep-alive clients, max_connections = 20: all answered in {elapsed:.2f}s")
        assert results == [(200, PAGE)] * 200
        assert elapsed < KEEPALIVE / 2
        ended = [s for s in socks[:150] if not still_open(s)]
        assert len(ended) >= 150 - 20, f"only {len(ended)} of the first 150 were ended"
        resets = sum(1 for s in ended if not closed_cleanly(s, timeout=1))
        assert resets == 0, f"{resets} ended connections saw a reset"
    finally:
        for s in socks:
            s.close()


# --- dropping the body of an answered request -----------------------------------

def trickle_body(port, stop, closed_at, start):
    """POSTs a 1 MB body one byte every 1.5 s until stop is set or the
    server closes; records when the server closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=HANG_BOUND) as s:
        s.sendall(b"POST /page.html HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        s.settimeout(0.1)
        while not stop.is_set():
            try:
                s.sendall(b"x")
                data = s.recv(65536)
                while data:
                    data = s.recv(65536)
                closed_at.append(time.monotonic() - start)
                return
            except socket.timeout:
                pass
            except OSError:
                closed_at.append(time.monotonic() - start)
                return
            stop.wait(1.5)


ATTACK = 15  # seconds the attackers go on for


def test_a_trickled_body_holds_a_slot_for_a_bounded_time(make_daemon):
    d = make_daemon({"server": {"max_connections": 3, "workers": 2}, "timeouts": {"header": "2s"}})
    (d.root / "page.html").write_bytes(PAGE)
    stop, closed_at = threading.Event(), []
    start = time.monotonic()
    attackers = [threading.Thread(target=trickle_body, args=(d.port, stop, closed_at, start))
                 for _ in range(3)]
    for t in attackers:
        t.start()
    ender = threading.Timer(ATTACK, stop.set)
    ender.start()
    try:
        time.sleep(0.5)
        waited, answer = timed_get(d.port)
        assert answer == (200, PAGE)
        for t in attackers:
            t.join(ATTACK + HANG_BOUND)
    finally:
        stop.set()
        ender.cancel()
    print(f"\na fourth client with 3 slots dropping trickled bodies: served after {waited:.2f}s; "
          f"the attackers were closed after {sorted(round(t, 1) for t in closed_at)} s of {ATTACK}")
    assert waited < ATTACK / 2, f"the fourth client waited {waited:.1f}s"
    assert len(closed_at) == 3 and max(closed_at) < ATTACK / 2, closed_at


# --- the descriptor budget ---------------------------------------------------------

def start_with_nofile(d, limit, extra_listen=None):
    if extra_listen:
        d.settings["server"]["listen"] = [d.settings["server"]["listen"], extra_listen]
    d.write_config()
    d.log = open(d.log_path, "wb")
    d.proc = subprocess.Popen(
        [BIN, "-c", str(d.conf)], stdout=d.log, stderr=subprocess.STDOUT, env=as_journal_stream(d.log),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)))
    d.wait_ready()
    return d


def startup_line(d):
    return next(l for l in d.output().splitlines() if " serving " in l)


def test_connections_are_capped_to_what_the_descriptor_limit_can_serve(make_daemon):
    """RLIMIT_NOFILE 40 and max_connections = 1000: 60 idle clients used to
    take every descriptor, and clients then got 500 for every file. Each
    of them, and one after them asking for several, must get the file."""
    d = start_with_nofile(make_daemon({"server": {"max_connections": 1000, "workers": 2}}, start=False), 40)
    (d.root / "page.html").write_bytes(PAGE)
    idle = []
    established = None
    try:
        for _ in range(60):
            idle.append(keep_alive_client(d.port))
        established = keep_alive_client(d.port)
        for _ in range(5):
            established.sendall(REQUEST)
            assert recv_response(established) == (200, PAGE)
        line = startup_line(d)
        assert line.startswith("<5>") and "capped by the open-file limit of 40" in line, line
        assert d.output().count("open-file limit") == 1, d.output()
        assert "Failed to accept" not in d.output(), d.output()
        assert "Too many open files" not in d.output(), d.output()
    finally:
        for s in idle + ([established] if established else []):
            s.close()


def test_no_cap_and_no_word_of_it_when_the_limit_is_ample(make_daemon):
    """The default max_connections under a hard limit of 20000, as a
    container often grants: nothing to say at start."""
    d = start_with_nofile(make_daemon(start=False), 20000)
    line = startup_line(d)
    assert line.startswith("<6>") and "at most 10000 connections" in line, line
    notices = [l for l in d.output().splitlines() if l[:3] in ("<3>", "<4>", "<5>")]
    assert notices == [], notices


def test_out_of_descriptors_for_files_is_a_503_to_retry_not_a_500(make_daemon):
    """Slow readers of a large file each hold it open; when they outnumber
    the descriptors kept for files, the next one is told to come back
    (503 with Retry-After), and once they leave the daemon serves again."""
    d = start_with_nofile(make_daemon({"server": {"workers": 2}}, start=False), 48)
    (d.root / "page.html").write_bytes(PAGE)
    with open(d.root / "big.bin", "wb") as f:
        f.truncate(64 << 20)  # far more than the socket buffers take
    readers, statuses, retry_after = [], [], set()
    try:
        for _ in range(24):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=HANG_BOUND)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            readers.append(s)
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(1)
            statuses.append(int(head.split(b" ")[1]))
            if statuses[-1] != 200:
                retry_after.update(l for l in head.split(b"\r\n") if l.lower().startswith(b"retry-after:"))
                break  # out of descriptors: accepting pauses now too
        print(f"\nslow readers of a 64 MiB file under a limit of 48 descriptors: "
              f"{statuses.count(200)} x 200, then {statuses[-1]}")
        assert set(statuses) <= {200, 503}, statuses
        assert 503 in statuses, "the file descriptors never ran out: the test shows nothing"
        assert retry_after == {b"Retry-After: 1"}, retry_after
    finally:
        for s in readers:
            s.close()
    waited, answer = timed_get(d.port)
    assert answer == (200, PAGE)


# --- who gives up a slot -----------------------------------------------------------

def test_silent_slot_holders_are_ended_before_a_real_clients_keep_alive(make_daemon):
    """Connections that never send a byte, at max_connections: a newcomer is
    served by ending the oldest of them (once silent for a moment), not the
    keep-alive connection of a client that is using it."""
    d = make_daemon({"server": {"max_connections": 3, "workers": 2},
                     "timeouts": {"keepalive": f"{KEEPALIVE}s", "header": f"{KEEPALIVE}s"}})
    (d.root / "page.html").write_bytes(PAGE)
    client = keep_alive_client(d.port)
    silent = [socket.create_connection(("127.0.0.1", d.port), timeout=HANG_BOUND) for _ in range(2)]
    try:
        time.sleep(1.5)  # a connection only just opened may have its request on the way
        waited, answer = timed_get(d.port)
        print(f"\na newcomer with 2 silent connections and 1 keep-alive client at max_connections = 3: "
              f"served after {waited:.2f}s")
        assert answer == (200, PAGE)
        assert waited < KEEPALIVE / 2, f"the newcomer waited {waited:.1f}s"
        assert closed_cleanly(silent[0]), "the oldest silent connection was reset"
        assert still_open(client), "the keep-alive client lost its connection to a slot holder"
        client.sendall(REQUEST)
        assert recv_response(client) == (200, PAGE)
    finally:
        for s in silent + [client]:
            s.close()


def test_the_socket_cap_holds_with_two_listeners(make_daemon):
    """RLIMIT_NOFILE 40, listeners on two addresses, attackers on both
    making lingering connections (a bad request, then holding on): the
    sockets held stay within the cap, so files can still be opened."""
    port2 = free_port()
    d = start_with_nofile(make_daemon({"server": {"workers": 2}}, start=False), 40, extra_listen=f"127.0.0.1:{port2}")
    (d.root / "page.html").write_bytes(PAGE)
    cap = int(re.search(r"at most (\d+) connections", startup_line(d))[1])
    stop, peak = threading.Event(), [0]

    def attack(port):
        held = []
        while not stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                s.sendall(b"BAD\r\n\r\n")
                held.append(s)
            except OSError:
                time.sleep(0.01)
            if len(held) > 40:
                held.pop(0).close()
        for s in held:
            s.close()

    attackers = [threading.Thread(target=attack, args=(p,)) for p in (d.port, port2, d.port, port2)]
    for t in attackers:
        t.start()
    statuses = []
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            peak[0] = max(peak[0], count_sockets(d.proc.pid))
            time.sleep(0.02)
        s = keep_alive_client_or_status(d.port, statuses)
        if s:
            s.close()
    finally:
        stop.set()
        for t in attackers:
            t.join(HANG_BOUND)
    listeners, other = 2, 3  # besides clients: the listeners, and the journal and notify sockets at most
    print(f"\ntwo listeners under attack, cap {cap}: at most {peak[0]} sockets held; a client got {statuses}")
    assert peak[0] <= cap + 1 + listeners + other, f"{peak[0]} sockets held, cap {cap}"
    assert "Too many open files" not in d.output(), d.output()


def count_sockets(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass  # closed meanwhile
    return n


def keep_alive_client_or_status(port, statuses):
    s = socket.create_connection(("127.0.0.1", port), timeout=HANG_BOUND)
    s.sendall(REQUEST)
    statuses.append(recv_response(s)[0])
    return s


def test_a_pipelined_body_gets_its_own_bound(make_daemon):
    """Two requests with bodies in one segment: the second body's bound runs
    from when it began, not from the first one's."""
    d = make_daemon({"timeouts": {"header": "3s"}})
    (d.root / "page.html").write_bytes(PAGE)
    with socket.create_connection(("127.0.0.1", d.port), timeout=HANG_BOUND) as s:
        first = b"GET /page.html HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n"
        s.sendall(first + b"x")
        assert recv_response(s) == (200, PAGE)
        time.sleep(2.0)  # most of the first body's 3 s
        s.sendall(b"xxx" + first + b"x")
        assert recv_response(s) == (200, PAGE)
        time.sleep(1.5)  # past the first bound, within the second
        s.sendall(b"xxx" + REQUEST)
        assert recv_response(s) == (200, PAGE)
