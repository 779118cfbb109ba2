#!/usr/bin/python3
"""webpoold side by side with nginx, lighttpd, H2O, Apache httpd (event MPM)
and Caddy, and with a responder that answers every request with the same
bytes as the limit line: same files, same load, same machine, one server
running at a time. `make bench` builds what it needs and runs this.

It prints figures and asserts nothing about speed. It exits non-zero only
when a server cannot be started or serves wrong bytes (that server is then
marked FAILED and not measured; the others still are), so a broken server
is never reported as a fast one.

Order: every server is first started once and each file fetched from it
and checked (status 200, sha256). Then, for each repetition, for each
scenario, for each server: start it on a fresh port, one unrecorded second
of the same load, the measured run, stop it. Alternating servers inside a
repetition spreads whatever else the machine does over all of them, and a
fresh port keeps one run's TIME-WAIT sockets out of the next.

Environment (tests/bench/README.md says more):
  BENCH_QUICK=1     smoke run: 1 repetition, 1 s runs without warm-up, 1000 idle connections
  BENCH_SECONDS     length of a measured wrk run, 1..600 s      (default 5)
  BENCH_REPS        repetitions, 1..20                          (default 3)
  BENCH_IDLE        idle connections for the memory row, 1..20000 (default 10000)
  BENCH_THREADS     wrk threads, 1..64                          (default 2)
  BENCH_SERVERS     which servers, in order (default: all of them)
"""

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
NPROC = os.cpu_count() or 1
NOFILE_WANTED = 65536     # 10,000 idle connections and their files, with room
MAX_CONNECTIONS = 20000   # what every server is configured to accept at once
KEEPALIVE_SECONDS = 75    # idle keep-alive timeout everywhere (webpoold's default)
LISTEN_BACKLOG = 4096     # webpoold's; set wherever a server lets us
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0
WRK_TIMEOUT = "5s"

PAGE, FILE_16K, FILE_1M = "page.html", "16k.bin", "1m.bin"


def note(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    def __init__(self, signo):
        super().__init__(signal.Signals(signo).name)
        self.signo = signo


class Signals:
    """SIGINT, SIGTERM and SIGHUP end the run through Interrupted, except
    inside `held()`, where one waits until the block is left: between
    starting a server and taking note of its PID, nothing may cut in."""
    depth = 0
    pending = None

    @classmethod
    def handler(cls, signo, _frame):
        if cls.depth:
            cls.pending = cls.pending or signo
        else:
            raise Interrupted(signo)

    @classmethod
    @contextlib.contextmanager
    def held(cls):
        cls.depth += 1
        try:
            yield
        finally:
            cls.depth -= 1
            if not cls.depth and cls.pending:
                signo, cls.pending = cls.pending, None
                raise Interrupted(signo)


# ---------------------------------------------------------------- settings

def env_int(name, default, lo, hi):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        sys.exit(f"bench: {name} must be a whole number from {lo} to {hi}")
    return int(raw)


@dataclass
class Settings:
    quick: bool
    seconds: int
    reps: int
    idle: int
    threads: int
    servers: list
    webpoold: Path
    responder: Path
    out: Path

    @classmethod
    def load(cls, args):
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        names = os.environ.get("BENCH_SERVERS", "").replace(",", " ").split() or list(SERVERS)
        unknown = [n for n in names if n not in SERVERS]
        if unknown:
            sys.exit(f"bench: unknown server(s) in BENCH_SERVERS: {' '.join(unknown)}; "
                     f"known: {' '.join(SERVERS)}")
        return cls(quick=quick,
                   seconds=env_int("BENCH_SECONDS", 1 if quick else 5, 1, 600),
                   reps=env_int("BENCH_REPS", 1 if quick else 3, 1, 20),
                   idle=env_int("BENCH_IDLE", 1000 if quick else 10000, 1, MAX_CONNECTIONS),
                   threads=env_int("BENCH_THREADS", 2, 1, 64),
                   servers=list(dict.fromkeys(names)),
                   webpoold=Path(args.webpoold).resolve(),
                   responder=Path(args.responder).resolve(),
                   out=Path(args.out).resolve())


def raise_nofile():
    """Servers and the idle-connection client inherit this. As root the hard
    limit can be raised too; otherwise the soft one goes as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, NOFILE_WANTED) if hard != resource.RLIM_INFINITY else NOFILE_WANTED
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return nofile()


def nofile():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------- servers
# Each configure function writes its server's configuration into `d` and
# returns the command line, and any environment, that runs it in the
# foreground on 127.0.0.1:port serving `root`.

def conf_webpoold(s, d, root, port):
    (d / "webpoold.conf").write_text(f"""\
[server]
listen = 127.0.0.1:{port}
root = {root}
workers = {NPROC}
max_connections = {MAX_CONNECTIONS}

[timeouts]
keepalive = {KEEPALIVE_SECONDS}s

[log]
level = notice
access = off
""")
    return [str(s.webpoold), "-c", str(d / "webpoold.conf")], {}


def conf_nginx(_s, d, root, port):
    (d / "logs").mkdir()
    (d / "nginx.conf").write_text(f"""\
worker_processes {NPROC};
worker_rlimit_nofile {nofile()};
daemon off;
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{
    worker_connections {MAX_CONNECTIONS};
}}
http {{
    types {{ text/html html; application/octet-stream bin; }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout {KEEPALIVE_SECONDS}s;
    keepalive_requests 1000000000;
    client_body_temp_path {d}/body;
    server {{
        listen 127.0.0.1:{port} backlog={LISTEN_BACKLOG};
        root {root};
    }}
}}
""")
    return ["/usr/sbin/nginx", "-p", str(d), "-e", f"{d}/logs/error.log", "-c", str(d / "nginx.conf")], {}


def conf_lighttpd(_s, d, root, port):
    # It refuses more connections than half its descriptors, and says so.
    (d / "lighttpd.conf").write_text(f"""\
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{d}/error.log"
server.network-backend = "sendfile"
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = {KEEPALIVE_SECONDS}
server.max-fds = {nofile()}
server.max-connections = {min(MAX_CONNECTIONS, nofile() // 2)}
server.listen-backlog = {LISTEN_BACKLOG}
mimetype.assign = ( ".html" => "text/html", ".bin" => "application/octet-stream" )
""")
    return ["/usr/sbin/lighttpd", "-D", "-f", str(d / "lighttpd.conf")], {}


def conf_h2o(_s, d, root, port):
    (d / "h2o.conf").write_text(f"""\
listen:
  host: 127.0.0.1
  port: {port}
user: nobody
error-log: {d}/error.log
num-threads: {NPROC}
max-connections: {MAX_CONNECTIONS}
http1-request-timeout: {KEEPALIVE_SECONDS}
file.mime.settypes:
  text/html: .html
  application/octet-stream: .bin
hosts:
  default:
    paths:
      /:
        file.dir: {root}
""")
    return ["/usr/bin/h2o", "-c", str(d / "h2o.conf")], {}


# A thread serves one connection from the first byte of a request to the
# last of its response, and wrk's connections never pause between requests:
# enough threads for the busiest scenario (c=1000) in all, or the listener,
# short of threads, closes keep-alive connections. tests/bench/README.md.
APACHE_BUSY = 1024
APACHE_THREADS_PER_CHILD = -(-APACHE_BUSY // NPROC)


def conf_apache(_s, d, root, port):
    (d / "run").mkdir()
    workers = NPROC * APACHE_THREADS_PER_CHILD
    # Idle keep-alive connections are held by each process's listener thread,
    # up to ThreadsPerChild + AsyncRequestWorkerFactor * idle workers.
    factor = -(-MAX_CONNECTIONS // workers)
    mods = "/usr/lib/apache2/modules"
    (d / "apache2.conf").write_text(f"""\
ServerRoot {d}
DefaultRuntimeDir {d}/run
PidFile {d}/apache2.pid
ErrorLog {d}/error.log
LogLevel warn
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
ListenBacklog {LISTEN_BACKLOG}
User nobody
Group nogroup
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule mime_module {mods}/mod_mime.so
TypesConfig /etc/mime.types
AddType text/html .html
AddType application/octet-stream .bin
StartServers {NPROC}
ServerLimit {NPROC}
ThreadsPerChild {APACHE_THREADS_PER_CHILD}
ThreadLimit {APACHE_THREADS_PER_CHILD}
MaxRequestWorkers {workers}
MinSpareThreads {APACHE_THREADS_PER_CHILD}
MaxSpareThreads {workers}
MaxConnectionsPerChild 0
AsyncRequestWorkerFactor {factor}
EnableSendfile On
EnableMMAP Off
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout {KEEPALIVE_SECONDS}
HostnameLookups Off
DocumentRoot {root}
<Directory />
    Options FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>
""")
    return ["/usr/sbin/apache2", "-DFOREGROUND", "-d", str(d), "-f", str(d / "apache2.conf")], {}


def conf_caddy(_s, d, root, port):
    (d / "Caddyfile").write_text(f"""\
{{
\tadmin off
\tauto_https off
\tlog default {{
\t\toutput stderr
\t\tlevel ERROR
\t}}
\tservers {{
\t\tprotocols h1
\t}}
}}
http://127.0.0.1:{port} {{
\tbind 127.0.0.1
\troot * {root}
\tfile_server
}}
""")
    # Caddy keeps state under XDG directories (by default in $HOME); keep
    # it in the run's directory.
    env = {"XDG_DATA_HOME": str(d / "data"), "XDG_CONFIG_HOME": str(d / "config"),
           "HOME": str(d), "GOMAXPROCS": str(NPROC)}
    return ["/usr/bin/caddy", "run", "--config", str(d / "Caddyfile"), "--adapter", "caddyfile"], env


def conf_responder(s, _d, root, port):
    return [str(s.responder), "127.0.0.1", str(port), str(root / PAGE), str(NPROC)], {}


@dataclass
class Server:
    name: str
    label: str
    binary: str        # None: the path comes from the settings
    configure: object
    notify: bool = False            # sends READY=1 on NOTIFY_SOCKET
    files: tuple = (PAGE, FILE_16K, FILE_1M)

    def path(self, settings):
        if self.binary:
            return Path(self.binary)
        return settings.webpoold if self.name == "webpoold" else settings.responder


SERVERS = {s.name: s for s in (
    Server("webpoold", "webpoold", None, conf_webpoold, notify=True),
    Server("nginx", "nginx", "/usr/sbin/nginx", conf_nginx),
    Server("lighttpd", "lighttpd", "/usr/sbin/lighttpd", conf_lighttpd),
    Server("h2o", "H2O", "/usr/bin/h2o", conf_h2o),
    Server("apache", "Apache", "/usr/sbin/apache2", conf_apache),
    Server("caddy", "Caddy", "/usr/bin/caddy", conf_caddy, notify=True),
    # Serves the page for any path, so only the page can be checked.
    Server("responder", "limit", None, conf_responder, files=(PAGE,)),
)}
LIMIT = "responder"


def versions(settings):
    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except OSError:
            return "not installed"
        out = (r.stdout + r.stderr).strip().splitlines()
        return out[0] if out else "?"

    def field_after(line, prefix):
        return line.split(prefix, 1)[1].split()[0] if prefix in line else line

    git = subprocess.run(["git", "-C", str(TOP), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    return {
        "webpoold": f"{field_after(first_line([str(settings.webpoold), '-V']), 'webpoold ')} ({git})",
        "nginx": field_after(first_line(["/usr/sbin/nginx", "-v"]), "nginx/"),
        "lighttpd": field_after(first_line(["/usr/sbin/lighttpd", "-v"]), "lighttpd/"),
        "h2o": field_after(first_line(["/usr/bin/h2o", "-v"]), "version "),
        "apache": field_after(first_line(["/usr/sbin/apache2", "-v"]), "Apache/"),
        "caddy": first_line(["/usr/bin/caddy", "version"]).split()[0],
        "wrk": field_after(first_line(["wrk", "-v"]), "debian/").split("-")[0],
    }


# ---------------------------------------------------------------- processes

def proc_stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2:].split()  # from field 3 (state) on


def group_pids(pgid):
    """Every live process of the server: it runs in its own process group."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                f = proc_stat_fields(entry)
                if int(f[2]) == pgid and f[0] != "Z":
                    pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def group_cpu_ticks(pgid):
    total = 0
    for pid in group_pids(pgid):
        try:
            f = proc_stat_fields(pid)
            total += int(f[11]) + int(f[12])  # utime, stime of all its threads
        except (OSError, ValueError, IndexError):
            pass
    return total


def group_pss_kib(pgid):
    """Proportional set size summed over the server's processes, so pages
    that nginx's or Apache's processes share are counted once."""
    total = 0
    for pid in group_pids(pgid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def ports_in_use():
    used = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    used.add(int(cols[1].rsplit(":", 1)[1], 16))
                    used.add(int(cols[2].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return used


def free_port():
    """A port no socket uses now, not even in TIME-WAIT, below the kernel's
    ephemeral range so that no client socket of wrk's can be holding it."""
    try:
        lo = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        lo = 32768
    first, last = (10000, lo - 1) if lo > 11000 else (61000, 64999)
    used = ports_in_use()
    for _ in range(200):
        p = random.randint(first, last)
        if p not in used:
            return p
    raise RuntimeError("no free port on 127.0.0.1")


def http_get(port, path, timeout=2.0):
    """One GET on a new connection; returns (status, socket) with the whole
    response read, or raises OSError."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status = read_response(s)
        return status, s
    except BaseException:
        s.close()
        raise


def read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed within a response")
        body += chunk
    return status


@dataclass
class Running:
    server: Server
    proc: subprocess.Popen
    port: int
    dir: Path
    notify: socket.socket      # kept open while it runs: some say STOPPING=1
    exec_ms: float = None      # exec to READY=1
    answer_ms: float = None    # exec to the first 200

    @property
    def pgid(self):
        return self.proc.pid


class StartFailed(Exception):
    pass


class Runner:
    """Starts and stops the servers, one running at a time."""

    def __init__(self, settings, tmp, root):
        self.settings = settings
        self.tmp = tmp
        self.root = root
        self.current = None
        self.starts = 0

    def start(self, server):
        last = None
        for attempt in range(3):  # another program may take the port first
            try:
                return self._start_once(server, free_port())
            except StartFailed as e:
                last = e
                note(f"{server.name}: {e}" + ("; trying another port" if attempt < 2 else ""))
        raise last

    def _start_once(self, server, port):
        self.starts += 1
        d = self.tmp / f"{server.name}.{self.starts}"
        d.mkdir(mode=0o755)
        argv, extra = server.configure(self.settings, d, self.root, port)
        notify_path = d / "notify"
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        ns.bind(str(notify_path))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NOTIFY_SOCKET", "LISTEN_", "WATCHDOG_"))}
        env.update(extra, NOTIFY_SOCKET=str(notify_path))
        r = None
        try:
            with open(d / "output", "wb") as out, Signals.held():
                t0 = time.monotonic()
                # Its own session: a Ctrl-C reaches us, not the server, and
                # we stop it; its process group holds all its processes.
                proc = subprocess.Popen(argv, env=env, cwd=d, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
                self.current = r = Running(server, proc, port, d, ns)
            self._wait_ready(r, t0)
            return r
        except StartFailed:
            self.stop(quiet=True)
            raise
        finally:
            if r is None:
                ns.close()

    def _wait_ready(self, r, t0):
        deadline = t0 + START_TIMEOUT
        while time.monotonic() < deadline:
            if r.proc.poll() is not None:
                raise StartFailed(f"exited with status {r.proc.returncode} before answering:\n"
                                  + tail(r.dir))
            readable, _, _ = select.select([r.notify], [], [], 0.002)
            if readable:
                msg = r.notify.recv(4096).decode(errors="replace").split("\n")
                if "READY=1" in msg and r.exec_ms is None:
                    r.exec_ms = (time.monotonic() - t0) * 1000
            if r.answer_ms is None:
                try:
                    status, s = http_get(r.port, PAGE, timeout=1.0)
                    s.close()
                    if status == 200:
                        r.answer_ms = (time.monotonic() - t0) * 1000
                except (OSError, ValueError, IndexError):
                    pass
            if r.answer_ms is not None and (r.exec_ms is not None or not r.server.notify):
                return
        raise StartFailed(f"did not {'send READY=1 and ' if r.server.notify else ''}"
                          f"answer within {START_TIMEOUT:.0f} s:\n" + tail(r.dir))

    def stop(self, quiet=False, bound=STOP_TIMEOUT):
        """SIGTERM by PID, a bounded wait, then SIGKILL; returns the
        milliseconds from SIGTERM to exit, or None if it had to be killed."""
        r = self.current
        if r is None:
            return None
        took = None
        if r.proc.poll() is None:
            t0 = time.monotonic()
            r.proc.send_signal(signal.SIGTERM)
            try:
                r.proc.wait(timeout=bound)
                took = (time.monotonic() - t0) * 1000
            except subprocess.TimeoutExpired:
                note(f"{r.server.name} still running {bound:.0f} s after SIGTERM; killing it")
                r.proc.kill()
                r.proc.wait()
        elif not quiet:
            note(f"{r.server.name} had exited (status {r.proc.returncode}) before it was stopped")
        # What it forked may take a moment to see it gone (H2O's crash
        # reporter waits for its pipe to close); what outlives that is
        # ours to end as well.
        for _ in range(100):
            leftovers = group_pids(r.pgid)
            if not leftovers:
                break
            time.sleep(0.01)
        if leftovers:
            note(f"{r.server.name} left processes {leftovers} behind; killing them")
            try:
                os.killpg(r.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        r.notify.close()
        self.current = None  # only now: interrupted before, it is stopped again
        return took


def tail(d, n=20):
    text = []
    for p in sorted(d.rglob("*")):
        if p.is_file() and (p.name in ("output", "error.log")):
            lines = p.read_text(errors="replace").splitlines()[-n:]
            text += [f"  {p.name}: {line}" for line in lines]
    return "\n".join(text) or "  (no output)"


# ---------------------------------------------------------------- checks

def verify(runner, r, root):
    """Each file fetched once with curl: status 200 and the same sha256."""
    fetched = runner.tmp / "fetched"
    for name in r.server.files:
        want = hashlib.sha256((root / name).read_bytes()).hexdigest()
        try:
            cp = subprocess.run(["curl", "-s", "--max-time", "10", "-o", str(fetched), "-w", "%{http_code}",
                                 f"http://127.0.0.1:{r.port}/{name}"],
                                capture_output=True, text=True, timeout=20)
            code = cp.stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            code = f"curl failed: {e}"
        got = hashlib.sha256(fetched.read_bytes()).hexdigest() if fetched.exists() else "-"
        fetched.unlink(missing_ok=True)
        if code != "200" or got != want:
            return f"/{name}: status {code}, sha256 {got}, expected {want}"
    return None


# ---------------------------------------------------------------- load

@dataclass
class Scenario:
    key: str
    path: str
    connections: int
    close: bool = False


SCENARIOS = [
    Scenario("ka10", PAGE, 10),
    Scenario("ka100", PAGE, 100),
    Scenario("ka1000", PAGE, 1000),
    Scenario("close50", PAGE, 50, close=True),
    Scenario("f16k", FILE_16K, 50),
    Scenario("f1m", FILE_1M, 20),
]


class Wrk:
    def __init__(self, settings, tmp):
        self.settings = settings
        self.script = HERE / "wrk-report.lua"
        self.proc = None
        self.tmp = tmp

    def run(self, port, sc, seconds, measured=True):
        t = min(self.settings.threads, sc.connections)
        argv = ["wrk", f"-t{t}", f"-c{sc.connections}", f"-d{seconds}s", "--timeout", WRK_TIMEOUT]
        if measured:
            argv += ["--latency", "-s", str(self.script)]
        if sc.close:
            argv += ["-H", "Connection: close"]
        argv.append(f"http://127.0.0.1:{port}/{sc.path}")
        out = self.tmp / "wrk.out"
        with open(out, "wb") as f:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
            try:
                self.proc.wait(timeout=seconds + 60)  # wrk ends itself after -d
            except subprocess.TimeoutExpired:
                pass
            finally:
                self.kill()  # hung, or we are interrupted
        text = out.read_text(errors="replace")
        for line in text.splitlines():
            if line.startswith("BENCH_JSON "):
                return json.loads(line[len("BENCH_JSON "):]), text
        return None, text

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def idle_memory(r, n, path):
    """Opens n keep-alive connections, each after one request, and returns
    (KiB per connection, connections still open when measured, note)."""
    time.sleep(1.0)  # H2O's crash reporter, a perl process, is still starting
    before = group_pss_kib(r.pgid)
    socks, why = [], ""
    try:
        for _ in range(n):
            try:
                status, s = http_get(r.port, path, timeout=5.0)
            except (OSError, ValueError, IndexError) as e:
                why = f"connection {len(socks) + 1} failed: {e}"
                break
            socks.append(s)
            if status != 200:
                why = f"status {status}"
                break
        time.sleep(1.0)
        after = group_pss_kib(r.pgid)
        open_now = sum(1 for s in socks if still_open(s))
    finally:
        for s in socks:
            s.close()
    if open_now < n:
        why = (why + "; " if why else "") + f"{open_now} of {n} open when measured"
    per = (after - before) / open_now if open_now else None
    return per, open_now, why


def still_open(s):
    try:
        s.setblocking(False)
        return s.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- the run

@dataclass
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    digits: str = "rate"


def rows(settings):
    return [
        Row("ka10", "150 B keep-alive, c=10", "req/s", True),
        Row("ka100", "150 B keep-alive, c=100", "req/s", True),
        Row("ka1000", "150 B keep-alive, c=1000", "req/s", True),
        Row("close50", "150 B `Connection: close`, c=50", "req/s", True),
        Row("f16k", "16 KiB keep-alive, c=50", "MB/s", True),
        Row("f1m", "1 MiB keep-alive, c=20", "MB/s", True),
        Row("p99", "p99 latency, 150 B keep-alive, c=100", "ms", False, "fine"),
        Row("cpu", "server CPU per request, 150 B keep-alive, c=100", "µs", False, "fine"),
        Row("idle", f"memory per idle connection, {settings.idle} open", "KiB", False, "fine"),
        Row("ready", "exec to READY=1", "ms", False, "fine"),
        Row("answer", "exec to first answer", "ms", False, "fine"),
        Row("stop", "SIGTERM to exit, idle", "ms", False, "fine"),
    ]


@dataclass
class Results:
    samples: dict = field(default_factory=dict)   # row -> server -> [values]
    errors: dict = field(default_factory=dict)    # (row, server) -> [text]
    failed: dict = field(default_factory=dict)    # server -> why
    notes: list = field(default_factory=list)

    def add(self, row, server, value):
        if value is not None:
            self.samples.setdefault(row, {}).setdefault(server, []).append(value)

    def error(self, row, server, text):
        self.errors.setdefault((row, server), []).append(text)


class Bench:
    def __init__(self, settings, tmp, root, sizes):
        self.s = settings
        self.runner = Runner(settings, tmp, root)
        self.wrk = Wrk(settings, tmp)
        self.root = root
        self.sizes = sizes
        self.res = Results()
        self.hz = os.sysconf("SC_CLK_TCK")

    def live(self):
        return [n for n in self.s.servers if n not in self.res.failed]

    def start(self, name):
        server = SERVERS[name]
        try:
            r = self.runner.start(server)
        except StartFailed as e:
            self.res.failed[name] = f"could not be started: {str(e).splitlines()[0]}"
            return None
        self.res.add("ready", name, r.exec_ms)
        self.res.add("answer", name, r.answer_ms)
        return r

    def stop(self, name, record, what):
        r = self.runner.current
        took = self.runner.stop()
        code = r.proc.returncode if r else 0
        if record:
            self.res.add("stop", name, took)
        if code not in (0, None) and took is not None:
            self.res.notes.append(f"{name} exited with status {code} after SIGTERM, after {what}: "
                                  + " / ".join(tail(r.dir, 2).splitlines()))

    def check_all(self):
        for name in self.s.servers:
            server = SERVERS[name]
            if not os.access(server.path(self.s), os.X_OK):
                self.res.failed[name] = f"{server.path(self.s)} is missing; `make bench` provides it"
                continue
            r = self.start(name)
            if r is None:
                continue
            wrong = verify(self.runner, r, self.root)
            self.stop(name, record=True, what="the check")
            if wrong:
                self.res.failed[name] = f"served wrong bytes: {wrong}"
            else:
                note(f"{name}: {', '.join(server.files)} served byte for byte (sha256 checked)")
        for name, why in self.res.failed.items():
            note(f"{name}: FAILED, {why}")

    def measure(self, name, sc, rep):
        if sc.path not in SERVERS[name].files:
            return
        r = self.start(name)
        if r is None:
            return
        note(f"rep {rep}: {name}: {sc.key}")
        if not self.s.quick:  # a smoke run checks that it works, not how fast
            self.wrk.run(r.port, sc, 1, measured=False)
        cpu0 = group_cpu_ticks(r.pgid)
        got, text = self.wrk.run(r.port, sc, self.s.seconds)
        cpu1 = group_cpu_ticks(r.pgid)
        alive = r.proc.poll() is None
        self.stop(name, record=True, what=sc.key)
        if not alive:
            self.res.failed[name] = f"died during {sc.key}:\n{tail(r.dir)}"
            return
        if got is None or got["requests"] == 0:
            self.res.error(sc.key, name, "wrk gave no figures: " + " / ".join(text.strip().splitlines()[-3:]))
            return
        secs = got["duration_us"] / 1e6
        rps = got["requests"] / secs
        if sc.path == PAGE:
            self.res.add(sc.key, name, rps)
        else:
            self.res.add(sc.key, name, rps * self.sizes[sc.path] / 1e6)
        if sc.key == "ka100":
            self.res.add("p99", name, got["p99_us"] / 1000)
            self.res.add("cpu", name, (cpu1 - cpu0) / self.hz / got["requests"] * 1e6)
        errs = {k: got[k] for k in ("connect", "read", "write", "status", "timeout") if got[k]}
        if errs:
            self.res.error(sc.key, name, ", ".join(f"{v} {k}" for k, v in errs.items())
                           + f" of {got['requests']} requests")

    def measure_idle(self, name, rep):
        r = self.start(name)
        if r is None:
            return
        note(f"rep {rep}: {name}: {self.s.idle} idle connections")
        per, n_open, why = idle_memory(r, self.s.idle, PAGE)
        alive = r.proc.poll() is None
        self.stop(name, record=False, what="idle connections")
        if not alive:
            self.res.failed[name] = f"died holding idle connections:\n{tail(r.dir)}"
            return
        self.res.add("idle", name, per)
        if why:
            self.res.error("idle", name, why)

    def run(self):
        self.check_all()
        for rep in range(1, self.s.reps + 1):
            for sc in SCENARIOS:
                for name in self.live():
                    self.measure(name, sc, rep)
            for name in self.live():
                self.measure_idle(name, rep)


# ---------------------------------------------------------------- report

def fmt(v, digits):
    if digits == "rate":
        if v >= 100000:
            return f"{v / 1000:.0f}k"
        if v >= 1000:
            return f"{v / 1000:.1f}k"
        return f"{v:.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summary(values):
    return statistics.median(values), min(values), max(values)


def cell(values, digits, marked):
    if not values:
        return "–"
    med, lo, hi = summary(values)
    text = fmt(med, digits)
    if len(values) > 1:
        text += f" ({fmt(lo, digits)}–{fmt(hi, digits)})"
    return text + (" *" if marked else "")


def ratios(row, samples, failed):
    med = {n: statistics.median(v) for n, v in samples.items() if v}
    mine = med.get("webpoold")
    peers = {n: v for n, v in med.items() if n not in ("webpoold", LIMIT) and n not in failed}
    if mine is None or not peers:
        best = "–"
    else:
        pick = max if row.higher_is_better else min
        top = pick(peers, key=peers.get)
        best = f"{mine / peers[top]:.2f} ({SERVERS[top].label})" if peers[top] else "–"
    limit = f"{mine / med[LIMIT]:.2f}" if mine is not None and med.get(LIMIT) else "–"
    return best, limit


def table(settings, res):
    names = settings.servers
    head = ["scenario"] + [SERVERS[n].label + (" FAILED" if n in res.failed else "") for n in names]
    head += ["webpoold / best peer", "webpoold / limit"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|--:" * (len(head) - 1) + "|"]
    for row in rows(settings):
        samples = res.samples.get(row.key, {})
        cells = [f"{row.label} ({row.unit}, {'higher' if row.higher_is_better else 'lower'} is better)"]
        for n in names:
            cells.append(cell(samples.get(n, []), row.digits, (row.key, n) in res.errors))
        cells += list(ratios(row, samples, res.failed))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(settings, res, vers, started):
    kernel = os.uname().release
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wall = time.monotonic() - started
    out = [
        f"webpoold benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
        + (" (BENCH_QUICK=1: a smoke run, not figures to quote)" if settings.quick else ""),
        "",
        f"- machine: {NPROC} online CPUs ({cpu}), kernel {kernel}, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB",
        "- versions: " + "; ".join(f"{SERVERS[n].label if n in SERVERS else n} {v}" for n, v in vers.items()
                                   if n in settings.servers or n == "wrk"),
        f"- load: wrk -t{settings.threads}, {settings.seconds} s per measured run"
        + (", " if settings.quick else " after 1 s unrecorded, ") +
        f"{settings.reps} repetition(s), servers alternating within each; client and server share the machine",
        "- cells: median (min–max over the repetitions); `*`: errors, listed below; "
        "`–`: not measured (the limit serves only the page; only some servers send READY=1)",
        f"- run took {wall / 60:.1f} min",
        "",
        table(settings, res),
    ]
    if res.errors:
        out += ["", "Errors (a cell marked `*`):", ""]
        for (row, name), texts in sorted(res.errors.items()):
            for t in texts:
                out.append(f"- {name}, {row}: {t}")
    if res.notes:
        out += [""] + [f"- note: {n}" for n in sorted(set(res.notes))]
    if res.failed:
        out += ["", "FAILED (not measured, or not all of it):", ""]
        out += [f"- {n}: {why.splitlines()[0]}" for n, why in res.failed.items()]
    return "\n".join(out) + "\n"


def chart(settings, res, out_dir):
    """bench.png: throughput bars with min–max error bars, req/s on the
    left, MB/s on the right. Needs gnuplot; without it, says so."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        note("gnuplot not found: no chart")
        return None
    panels = [("req", ["ka10", "ka100", "ka1000", "close50"], "requests/s, 150 B page"),
              ("mbs", ["f16k", "f1m"], "MB/s, 16 KiB and 1 MiB files")]
    labels = {r.key: r.label.replace("`", "").replace("150 B ", "").replace("keep-alive, ", "ka ")
              for r in rows(settings)}
    shown = {}
    for tag, keys, _ in panels:
        shown[tag] = names = [n for n in settings.servers if any(res.samples.get(k, {}).get(n) for k in keys)]
        with open(out_dir / f"bench-{tag}.dat", "w") as f:
            f.write("# scenario " + " ".join(f"{n}_median {n}_min {n}_max" for n in names) + "\n")
            for k in keys:
                cols = [f'"{labels[k]}"']
                for n in names:
                    v = res.samples.get(k, {}).get(n)
                    cols += [f"{x:.3f}" for x in summary(v)] if v else ["-", "-", "-"]
                f.write(" ".join(cols) + "\n")
    if not any(shown.values()):
        return None
    plots = []
    for tag, _, title in panels:
        names = shown[tag] or settings.servers[:1]
        series = ", ".join(
            f"'{out_dir}/bench-{tag}.dat' using {2 + 3 * i}:{3 + 3 * i}:{4 + 3 * i}"
            + (":xtic(1)" if i == 0 else "") + f" title '{SERVERS[n].label}'"
            for i, n in enumerate(names))
        plots.append(f"set title '{title}'\nplot {series}")
    when = datetime.date.today().isoformat()
    script = out_dir / "bench.gp"
    script.write_text(f"""\
set terminal pngcairo size 1400,600 font ',10'
set output '{out_dir}/bench.png'
set datafile missing '-'
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set yrange [0:*]
set grid ytics
set key outside bottom center horizontal
set multiplot layout 1,2 title 'webpoold and peers, {NPROC} CPUs, {when}: median, bars min-max'
{plots[0]}
{plots[1]}
unset multiplot
""")
    r = subprocess.run([gnuplot, str(script)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        note(f"gnuplot failed: {r.stderr.strip()}")
        return None
    return out_dir / "bench.png"


def make_files(root):
    root.mkdir(mode=0o755)
    # 150 bytes exactly: a small HTML page, the common case on the web.
    page = b"<!doctype html>\n<html><head><title>webpoold bench</title></head>\n<body><p>"
    page += b"x" * (150 - len(page) - len(b"</p></body></html>\n")) + b"</p></body></html>\n"
    assert len(page) == 150
    rnd = random.Random(1)
    files = {PAGE: page, FILE_16K: rnd.randbytes(16 * 1024), FILE_1M: rnd.randbytes(1024 * 1024)}
    for name, data in files.items():
        (root / name).write_bytes(data)
        (root / name).chmod(0o644)
    return {name: len(data) for name, data in files.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--webpoold", default=str(TOP / "build" / "webpoold"))
    ap.add_argument("--responder", default=str(TOP / "build" / "bench" / "responder"))
    ap.add_argument("--out", default=str(TOP / "build" / "bench"))
    settings = Settings.load(ap.parse_args())
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, Signals.handler)
    started = time.monotonic()
    nofile = raise_nofile()
    if nofile < settings.idle + 1000:
        note(f"open-file limit {nofile}: the idle-connection row will fall short of {settings.idle}")
    settings.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="webpoold-bench."))
    tmp.chmod(0o755)  # the servers' workers run as nobody and must reach the root
    bench = None
    try:
        sizes = make_files(tmp / "www")
        vers = versions(settings)
        bench = Bench(settings, tmp, tmp / "www", sizes)
        bench.run()
        text = report(settings, bench.res, vers, started)
        (settings.out / "bench.md").write_text(text)
        (settings.out / "bench.json").write_text(json.dumps(
            {"samples": bench.res.samples, "failed": bench.res.failed, "versions": vers,
             "errors": {f"{k[0]} {k[1]}": v for k, v in bench.res.errors.items()}}, indent=1) + "\n")
        png = chart(settings, bench.res, settings.out)
        print(text)
        note(f"wrote {settings.out / 'bench.md'}" + (f" and {png}" if png else ""))
        return 1 if bench.res.failed else 0
    except Interrupted as e:
        note(f"interrupted ({e}): stopping")
        return 128 + e.signo
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if bench is not None:
            bench.wrk.kill()
            bench.runner.stop(quiet=True, bound=5.0)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
