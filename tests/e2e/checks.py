"""The checks, in the order of the issue. Each group is a function of a
Run; each states its own PASS/FAIL lines through Run.check(). Every group
but the first starts from a baseline (see baseline()): the shipped
configuration, no drop-in, webpoold.socket listening and the service
freshly started by a request, so a failure does not spill into the next.

Expectations follow the specification, not the current code: a check fails
until the behaviour it describes is there."""

import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from counted import Counted  # noqa: E402  (tests/counted.py)

from guest import ini_set, wait_for
from webclient import KeepAliveLoad, SlowDownload, fetch, try_fetch

CONF = "/etc/webpoold.conf"
ROOT = "/var/www/html"
WELCOME = "<title>Welcome to webpoold</title>"
# Files the checks serve, beside the default page.
SMALL = "/e2e/small.txt"
BIG = "/e2e/big.bin"
BIG_BYTES = 20 * 1024 * 1024
DROPIN_DIR = "/run/systemd/system/webpoold.service.d"
UNITS = ["webpoold.socket", "webpoold.service"]

# After a configuration error the socket re-triggers the service until the
# start limit is hit and webpoold.socket fails (service-start-limit-hit).
# The check runs exactly the commands README.md gives the administrator for
# it (the indented block after "bring both back with"), so the two cannot
# drift apart.
README_RECOVERY_INTRO = "bring both back with"


def readme_recovery(repo):
    """The recovery commands from README.md, each as an argv."""
    text = (Path(repo) / "README.md").read_text()
    at = text.find(README_RECOVERY_INTRO)
    if at < 0:
        raise RuntimeError(f"README.md has no '{README_RECOVERY_INTRO}' block")
    lines = text[at:].split("\n")[1:]
    while lines and not lines[0].strip():
        lines.pop(0)
    commands = []
    while lines and lines[0].startswith("    ") and lines[0].strip():
        commands.append(lines.pop(0).split())
    if not commands or any(c[0] != "systemctl" for c in commands):
        raise RuntimeError(f"README.md's recovery block is not systemctl commands: {commands}")
    return commands


STATUS_RE = re.compile(r"Serving: (\d+) connection\(s\), (\d+) request\(s\) served \((\d+) 4xx, (\d+) 5xx\)")
EXPOSURE_RE = re.compile(r"Overall exposure level for \S+: ([0-9.]+)")
MAX_EXPOSURE = 0.5
README_EXPOSURE_RE = re.compile(r"overall exposure level ([0-9.]+)")


class Run(Counted):
    """What every check needs: the guest, the results, and what the install
    put in place (the configuration as installed, the test files)."""

    def __init__(self, guest, repo, binary, deb):
        super().__init__()
        self.g = guest
        self.deb = "/e2e/" + deb    # the package, as the guest sees it
        self.files_before = None    # the guest's files before the install
        self.repo = Path(repo)
        self.binary = Path(binary)
        self.conf = None        # /etc/webpoold.conf as installed
        self.small = None       # body of SMALL
        self.big_sha = None

def _rc(r):
    detail = (r.stderr or r.stdout).strip().replace("\n", " | ")
    return f"exit {r.returncode}" + (f": {detail[:300]}" if detail else "")


def _body_is(resp, want):
    return resp is not None and resp.status == 200 and resp.body == want


def _describe(resp, err):
    if resp is None:
        return err
    return f"status {resp.status}, {len(resp.body)} bytes: {resp.text()[:80]!r}"


# --- install and the baseline --------------------------------------------------------

def install(t):
    """What an administrator does with the package: dpkg -i. Its maintainer
    scripts create the user, enable and start the socket."""
    g = t.g
    t.files_before = guest_files(g)
    r = g.run("dpkg", "-i", t.deb)
    t.check("install: dpkg -i of the package succeeds", r.returncode == 0, _rc(r))
    t.conf = g.read(CONF)
    conffiles = g.out("dpkg-query", "-W", "-f=${Conffiles}", "webpoold")
    t.check("install: /etc/webpoold.conf is installed, as a conffile",
            t.conf is not None and CONF in conffiles, f"conffiles: {conffiles!r}")
    enabled = g.out("systemctl", "is-enabled", "webpoold.socket")
    t.check("install: webpoold.socket is enabled", enabled == "enabled", enabled)
    check_libraries(t)
    check_units_as_shipped(t)


# What the checks themselves create (test content, a site under /home) and
# what the system keeps changing on its own are left out of the comparison
# of the guest's files before install and after purge.
UNTRACKED = ["/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/e2e", "/var/www", "/srv", "/home",
             "/var/lib/dpkg", "/var/lib/apt", "/var/cache", "/var/log", "/var/lib/systemd",
             "/etc/ld.so.cache", "/root",
             # backups the shadow tools make of the user databases
             "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-"]


def guest_files(g):
    prune = " -o ".join(f"-path {p}" for p in UNTRACKED)
    r = g.sh(f"find / -xdev \\( {prune} \\) -prune -o -print")
    return set(r.stdout.splitlines())


def check_libraries(t):
    host = subprocess.run(["ldd", str(t.binary)], capture_output=True, text=True).stdout
    names = [line.split()[0] for line in host.splitlines() if line.strip() and "vdso" not in line]
    r = t.g.run("ldd", "/usr/sbin/webpoold")
    missing = [n for n in names if n not in r.stdout] + (["not found"] if "not found" in r.stdout else [])
    t.check("install: every library ldd lists for the binary resolves in the guest",
            r.returncode == 0 and names and not missing, f"{_rc(r)}; missing {missing}")


def check_units_as_shipped(t):
    for unit in UNITS:
        path = t.g.show(unit, "FragmentPath")
        text = t.g.read(path) if path else None
        shipped = (t.repo / "systemd" / unit).read_text()
        t.check(f"install: {unit} loaded from {path or '?'} is the one in systemd/", text == shipped,
                "missing" if text is None else "differs from systemd/" + unit)


def prepare_content(t):
    """Test files under the shipped root, made once."""
    t.small = ("webpoold e2e " + secrets.token_hex(8) + "\n").encode() * 600
    t.g.write(ROOT + SMALL, t.small.decode())
    r = t.g.sh('head -c "$2" /dev/urandom > "$1" && sha256sum "$1"', ROOT + BIG, str(BIG_BYTES))
    if r.returncode != 0:
        raise RuntimeError(f"cannot create {BIG}: {_rc(r)}")
    t.big_sha = r.stdout.split()[0]


def baseline(t):
    """The shipped configuration, no drop-in, the socket listening and the
    service freshly started by a request. Returns '' or what went wrong."""
    g = t.g
    if t.conf is None:
        return f"no {CONF} was installed"
    g.write(CONF, t.conf)
    if g.exists(DROPIN_DIR):
        g.run("rm", "-rf", DROPIN_DIR)
        g.systemctl("daemon-reload")
    if g.main_pid():
        g.run("kill", "-CONT", str(g.main_pid()))   # in case a check left it stopped
    g.systemctl("stop", "webpoold.service")
    # Checks start the service often; a fresh start budget for each group
    # keeps one group's restarts from hitting the start limit in the next.
    g.systemctl("reset-failed", *UNITS)
    if g.is_active("webpoold.socket") != "active":
        t.note(f"baseline: webpoold.socket was {g.is_active('webpoold.socket')}; started it")
        g.systemctl("start", "webpoold.socket")
    resp = wait_for(lambda: try_fetch(SMALL)[0], 15)
    if not _body_is(resp, t.small):
        return f"not serving {SMALL} with the installed configuration: {_describe(resp, 'no answer')}"
    return ""


# --- 1 socket activation -------------------------------------------------------------

def check_activation(t):
    g = t.g
    states = [g.is_active(u) for u in UNITS]
    t.check("1 activation: after install the socket is active, the service inactive",
            states == ["active", "inactive"], f"socket {states[0]}, service {states[1]}")
    for family in (4, 6):
        resp, err = try_fetch("/", family)
        t.check(f"1 activation: the first request over IPv{family} gets the default page",
                resp is not None and resp.status == 200 and WELCOME in resp.text(), _describe(resp, err))
    t.check("1 activation: the request started the service", g.is_active("webpoold.service") == "active",
            g.is_active("webpoold.service"))

    r = g.systemctl("stop", "webpoold.socket", "webpoold")
    stopped = [g.is_active(u) for u in UNITS]
    t.check("1 activation: `systemctl stop webpoold.socket webpoold` stops both",
            r.returncode == 0 and stopped == ["inactive", "inactive"], f"{_rc(r)}; now {stopped}")
    r = g.systemctl("start", "webpoold")
    states = [g.is_active(u) for u in UNITS]
    answers = [try_fetch("/", f) for f in (4, 6)]
    serving = all(resp is not None and resp.status == 200 and WELCOME in resp.text() for resp, _ in answers)
    t.check("1 activation: `systemctl start webpoold` brings back the socket and the site (IPv4, IPv6)",
            r.returncode == 0 and states == ["active", "active"] and serving,
            f"{_rc(r)}; socket {states[0]}, service {states[1]}; "
            + "; ".join(_describe(resp, err) for resp, err in answers))


# --- 2 status ------------------------------------------------------------------------

def _settled_counters(t):
    """(requests, 4xx) from StatusText once no connection is open and two
    readings over more than the daemon's 1 s update interval agree."""
    def probe():
        first = STATUS_RE.search(t.g.show("webpoold.service", "StatusText"))
        time.sleep(1.2)
        second = STATUS_RE.search(t.g.show("webpoold.service", "StatusText"))
        if first and second and first.groups() == second.groups() and second.group(1) == "0":
            return int(second.group(2)), int(second.group(3))
        return None
    return wait_for(probe, 20)


def check_status(t):
    before = _settled_counters(t)
    if not t.check("2 status: StatusText shows the request counters",
                   before, f"StatusText={t.g.show('webpoold.service', 'StatusText')!r}"):
        return
    ok_answers = [fetch(SMALL).status for _ in range(3)]
    missing_answers = [fetch(f"/e2e/no-such-file-{i}").status for i in range(4)]
    after = _settled_counters(t)
    moved = after and (after[0] - before[0], after[1] - before[1])
    t.check("2 status: counters move with traffic: +7 requests, +4 4xx for 3 x 200 and 4 x 404",
            ok_answers == [200] * 3 and missing_answers == [404] * 4 and moved == (7, 4),
            f"answers {ok_answers + missing_answers}; before {before}, after {after}")


# --- 3 reload ------------------------------------------------------------------------

def check_reload(t):
    g = t.g
    page = f"reloaded root {secrets.token_hex(8)}\n"
    g.write("/srv/e2e-reload/index.html", page)
    pid = g.main_pid()
    good, _ = ini_set(t.conf, "server", "root", "/srv/e2e-reload")
    g.write(CONF, good)
    r = g.systemctl("reload", "webpoold")
    resp, err = try_fetch("/")   # at once: reload must return only once the daemon has reloaded
    t.check("3 reload: `systemctl reload` with a new root exits 0", r.returncode == 0, _rc(r))
    t.check("3 reload: the first request after it is served from the new root", _body_is(resp, page.encode()),
            _describe(resp, err))
    t.check("3 reload: same MainPID", g.main_pid() == pid, f"{pid} -> {g.main_pid()}")
    check_rejected_reload(t, good, page, pid)
    check_rejected_sighup(t, good, page, pid)


def _still_serving(t, page, pid):
    resp, err = try_fetch("/")
    ok = _body_is(resp, page.encode()) and t.g.main_pid() == pid
    return ok, f"{_describe(resp, err)}; MainPID {pid} -> {t.g.main_pid()}"


def _err_names(t, mark, where):
    """journalctl -u webpoold -p err after CURSOR mentions WHERE (waited for)."""
    return wait_for(lambda: [m for m in t.g.messages(mark, "-u", "webpoold", "-p", "err") if where in m], 15)


def check_rejected_reload(t, good, page, pid):
    g = t.g
    broken, line = ini_set(good, "server", "e2e_no_such_key", "1")
    where = f"{CONF}:{line}"
    mark = g.mark()
    g.write(CONF, broken)
    r = g.systemctl("reload", "webpoold")
    # systemctl only says the job failed and points at `systemctl status`,
    # whose journal excerpt must then give the reason.
    status = wait_for(lambda: where in g.out("systemctl", "status", "--no-pager", "-n", "20", "webpoold"), 15)
    t.check(f"3 reload: with an unknown key, `systemctl reload` exits non-zero and `systemctl status` names {where}",
            r.returncode != 0 and r.stderr.strip() and status, f"{_rc(r)}; status names {where}: {bool(status)}")
    if r.returncode != 0:
        t.note("systemctl said: " + r.stderr.strip().replace("\n", " | ")[:200])
    ok, why = _still_serving(t, page, pid)
    t.check("3 reload: after the rejected reload the old configuration keeps serving", ok, why)
    t.check(f"3 reload: journalctl -u webpoold -p err names {where}", _err_names(t, mark, where),
            f"no err line with {where}")


def check_rejected_sighup(t, good, page, pid):
    """The daemon's own defence: a file that broke after ExecReload= checked it."""
    g = t.g
    broken, line = ini_set(good, "server", "max_connections", "0")
    mark = g.mark()
    g.write(CONF, broken)
    r = g.systemctl("kill", "-s", "HUP", "webpoold")
    where = f"{CONF}:{line}"
    named = _err_names(t, mark, where)
    ok, why = _still_serving(t, page, pid)
    t.check("3 reload: SIGHUP with a bad value keeps the old configuration serving",
            r.returncode == 0 and ok, f"{_rc(r)}; {why}")
    t.check(f"3 reload: after that SIGHUP, journalctl -u webpoold -p err names {where}", named,
            f"no err line with {where}")


# --- 4 restart under load ------------------------------------------------------------

def check_restart_under_load(t):
    g = t.g
    pids, bad, stalls = [g.main_pid()], [], 0
    with KeepAliveLoad(SMALL, t.small, n=50) as load:
        stalls += not wait_for(lambda: load.stats.requests >= 500, 30)
        for _ in range(3):
            r = g.systemctl("restart", "webpoold")
            if r.returncode != 0:
                bad.append(_rc(r))
            pids.append(g.main_pid())
            done = load.stats.requests
            stalls += not wait_for(lambda: load.stats.requests >= done + 500, 30)
    s = load.stats
    t.note(f"load: 50 keep-alive connections, 3 restarts: {s.figures()}")
    for example in s.examples:
        t.note(example)
    t.check("4 restart: 3 restarts under load succeed, each with a new MainPID that carries the load",
            not bad and len(set(pids)) == 4 and 0 not in pids and stalls == 0,
            f"failed restarts {bad}; MainPIDs {pids}; {stalls} time(s) no progress within 30 s")
    t.check("4 restart: no failed request", s.failures == 0, s.figures())
    t.check("4 restart: no connection reset", s.resets == 0, s.figures())


# --- 5 stop drains downloads ---------------------------------------------------------

def check_stop_drains(t):
    g = t.g
    rate, threshold = 5 * 1024 * 1024, 1024 * 1024   # about 4 s per download
    downloads = [SlowDownload(BIG, rate, threshold) for _ in range(5)]
    for d in downloads:
        d.start()
    for d in downloads:
        d.progress.wait(60)
    at_stop = [d.received for d in downloads]
    r = g.systemctl("stop", "webpoold", timeout=180)
    for d in downloads:
        d.join(120)
    in_flight = all(threshold <= n < BIG_BYTES for n in at_stop)
    exact = all(d.status == 200 and d.received == BIG_BYTES and d.sha256 == t.big_sha for d in downloads)
    t.note(f"at `systemctl stop` the downloads had {', '.join(f'{n / 2**20:.1f}' for n in at_stop)} MiB of 20")
    t.check("5 stop: 5 throttled 20 MiB downloads in flight at `systemctl stop` complete byte-exact",
            in_flight and exact,
            "; ".join(f"status {d.status}, {d.received} bytes, {'hash ok' if d.sha256 == t.big_sha else 'hash wrong'}"
                      + (f", {d.error}" if d.error else "") for d in downloads))
    result = g.show("webpoold.service", "Result")
    t.check("5 stop: `systemctl stop webpoold` exits 0 with Result=success",
            r.returncode == 0 and result == "success", f"{_rc(r)}; Result={result}")


# --- 6 watchdog ----------------------------------------------------------------------

def check_watchdog(t):
    g = t.g
    shipped = g.show("webpoold.service", "WatchdogUSec")
    t.check("6 watchdog: WatchdogUSec is set as shipped", shipped not in ("", "0", "infinity"),
            f"WatchdogUSec={shipped}")
    g.write(f"{DROPIN_DIR}/e2e-watchdog.conf", "[Service]\nWatchdogSec=2s\n")
    g.systemctl("daemon-reload")
    r = g.systemctl("restart", "webpoold")
    pid, restarts = g.main_pid(), g.show("webpoold.service", "NRestarts")
    time.sleep(7)   # three and a half intervals
    resp, err = try_fetch(SMALL)
    now = (g.show("webpoold.service", "WatchdogUSec"), g.main_pid(), g.show("webpoold.service", "NRestarts"))
    t.check("6 watchdog: with WatchdogSec=2s a healthy daemon outlives 3 intervals",
            r.returncode == 0 and now == ("2s", pid, restarts) and _body_is(resp, t.small),
            f"{_rc(r)}; WatchdogUSec, MainPID, NRestarts {('2s', pid, restarts)} -> {now}; {_describe(resp, err)}")
    check_watchdog_kills(t, pid)


def check_watchdog_kills(t, pid):
    g = t.g
    mark = g.mark()
    g.run("kill", "-STOP", str(pid))
    try:
        new = wait_for(lambda: g.main_pid() not in (0, pid) and g.is_active("webpoold.service") == "active", 60)
    finally:
        g.run("kill", "-CONT", str(pid))   # harmless if it is gone
    said = [m for m in g.messages(mark, "-u", "webpoold") if "watchdog" in m.lower()]
    resp, err = try_fetch(SMALL)
    t.check("6 watchdog: a SIGSTOPped daemon is killed by the watchdog and restarted, serving",
            new and said and _body_is(resp, t.small),
            f"MainPID {pid} -> {g.main_pid()}, {g.is_active('webpoold.service')}; "
            f"journal on the watchdog: {said[:2]}; {_describe(resp, err)}")
    if said:
        t.note(f"journal: {' / '.join(said[:3])}")


# --- 7 sandbox -----------------------------------------------------------------------

# Run as the daemon's uid/gid in all its namespaces (mount, user, ...): what
# can that user do in the file system the daemon sees? The two positive
# probes show the probes themselves work.
PROBE = """
id -u
test -r /etc/shadow && echo shadow=readable || echo shadow=unreadable
test -r /etc/webpoold.conf && echo conf=readable || echo conf=unreadable
if (: > "$1/.e2e-probe") 2>/dev/null; then rm -f "$1/.e2e-probe"; echo root=writable; else echo root=read-only; fi
if (: > /var/log/webpoold/.e2e-probe) 2>/dev/null; then rm -f /var/log/webpoold/.e2e-probe; echo logs=writable; \
else echo logs=read-only; fi
"""
PROBE_WANT = ["shadow=unreadable", "conf=readable", "root=read-only", "logs=writable"]


def _proc_status(t, pid):
    text = t.g.read(f"/proc/{pid}/status") or ""
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def check_sandbox(t):
    g = t.g
    pid = g.main_pid()
    st = _proc_status(t, pid)
    uids, gid = st.get("Uid", "").split(), st.get("Gid", "0").split()[0]
    others = [line for line in g.out("ps", "-e", "-o", "uid=,unit=,comm=").splitlines()
              if uids and line.split()[0] == uids[0] and line.split()[1] != "webpoold.service"]
    t.check("7 sandbox: runs as a non-root user of its own",
            len(set(uids)) == 1 and uids[0] not in ("0", "65534") and not others,
            f"Uid: {' '.join(uids)}; other processes with that uid: {others}")
    caps = {k: st.get(k, "").strip() for k in ("CapEff", "CapBnd")}
    t.check("7 sandbox: no capabilities (CapEff, CapBnd)", set(caps.values()) == {"0000000000000000"}, str(caps))
    check_file_access(t, pid, uids[0] if uids else "0", gid)
    check_exposure(t)


def check_file_access(t, pid, uid, gid):
    r = t.g.run("nsenter", "-t", str(pid), "-a", "-S", uid, "-G", gid, "sh", "-c", PROBE, "sh", ROOT)
    lines = r.stdout.split()
    t.check(f"7 sandbox: as uid {uid} in the daemon's namespaces: /etc/shadow unreadable, {ROOT} read-only "
            "(while the config is readable and /var/log/webpoold writable)",
            r.returncode == 0 and lines[:1] == [uid] and lines[1:] == PROBE_WANT,
            f"{_rc(r)}; got {lines}, want {[uid] + PROBE_WANT}")


def check_exposure(t):
    r = t.g.run("systemd-analyze", "security", "--no-pager", "webpoold.service")
    m = EXPOSURE_RE.search(r.stdout)
    if m:
        t.note(f"systemd-analyze security webpoold.service: exposure {m.group(1)}")
    t.check(f"7 sandbox: systemd-analyze security rates the exposure <= {MAX_EXPOSURE}",
            m and float(m.group(1)) <= MAX_EXPOSURE, m.group(0) if m else _rc(r))
    readme = README_EXPOSURE_RE.search((t.repo / "README.md").read_text())
    t.check("7 sandbox: the exposure inside is the figure README.md states",
            m and readme and float(readme.group(1)) == float(m.group(1)),
            f"README says {readme and readme.group(1)}, systemd-analyze inside says {m and m.group(1)}")


# --- 8 journal -----------------------------------------------------------------------

def check_journal(t):
    check_clean_journal(t)
    check_access_journal(t)
    check_access_file(t)


def check_clean_journal(t):
    """A clean start, some traffic and a stop leave nothing above notice."""
    g = t.g
    g.systemctl("stop", "webpoold")
    mark = g.mark()
    answers = [try_fetch(SMALL)[0], try_fetch("/e2e/no-such-file")[0]]
    pid = g.main_pid()
    clamp = _nofile_clamp(t, pid)
    r = g.systemctl("stop", "webpoold")
    # The daemon's last words are in once its startup line is and journald
    # has settled; "nothing above notice" cannot be waited for.
    started = wait_for(lambda: [e for e in g.journal(mark, "-u", "webpoold", f"_PID={pid}")
                                if "serving" in e["MESSAGE"]], 15)
    g.run("journalctl", "--sync")
    time.sleep(1)
    loud = [f"<{e.get('PRIORITY')}> {e['MESSAGE']}" for e in g.journal(mark, "-u", "webpoold", "-p", "warning")]
    t.check("8 journal: a clean start/serve/stop logs nothing above notice (journalctl -u webpoold -p warning)",
            [a and a.status for a in answers] == [200, 404] and r.returncode == 0 and not loud,
            f"answers {[a and a.status for a in answers]}; {_rc(r)}; {loud[:3]}")
    if loud and clamp:
        t.note(clamp)
    t.check("8 journal: the startup line (\"serving\") is at info priority",
            started and all(e.get("PRIORITY") == "6" for e in started),
            f"{[(e.get('PRIORITY'), e['MESSAGE'][:80]) for e in started] if started else 'no startup line'}")


def _nofile_clamp(t, pid):
    """Why the daemon may warn about its open-file limit here: nspawn cannot
    grant a service more than the host's hard limit (raising it needs
    CAP_SYS_RESOURCE on the host). '' when the unit got what it asked for."""
    asked = t.g.show("webpoold.service", "LimitNOFILE")
    limits = t.g.read(f"/proc/{pid}/limits") or ""
    m = re.search(r"^Max open files\s+\S+\s+(\S+)", limits, re.M)
    if m and asked.isdigit() and m.group(1).isdigit() and int(m.group(1)) < int(asked):
        return (f"note: the unit asks LimitNOFILE={asked} but the guest grants {m.group(1)}, "
                "the host's hard limit (nspawn cannot raise it)")
    return ""


def _restart_with(t, key, value):
    conf, _ = ini_set(t.conf, "log", key, value)
    t.g.write(CONF, conf)
    r = t.g.systemctl("restart", "webpoold")
    return r.returncode == 0, _rc(r)


def check_access_journal(t):
    g = t.g
    ok, why = _restart_with(t, "access", "journal")
    mark = g.mark()
    path = f"/e2e-missing-{secrets.token_hex(6)}"
    resp, err = try_fetch(path)
    found = wait_for(lambda: [e for e in g.journal(mark, "-u", "webpoold", "HTTP_STATUS=404")
                              if e.get("HTTP_PATH") == path], 15)
    t.check("8 journal: with access = journal, a 404 is found with journalctl -u webpoold HTTP_STATUS=404",
            ok and resp is not None and resp.status == 404 and found,
            f"restart: {why}; {_describe(resp, err)}; no entry with HTTP_PATH={path}")


def check_access_file(t):
    g = t.g
    log = "/var/log/webpoold/access.log"
    ok, why = _restart_with(t, "access", log)
    before, after = (f"/e2e-{w}-{secrets.token_hex(6)}" for w in ("before", "after"))
    try_fetch(before)
    logged = wait_for(lambda: before in (g.read(log) or ""), 15)
    moved = g.run("mv", log, log + ".1")
    r = g.systemctl("kill", "-s", "USR1", "webpoold")
    reopened = wait_for(lambda: g.exists(log), 15)
    try_fetch(after)
    in_new = wait_for(lambda: after in (g.read(log) or ""), 15)
    in_old = after in (g.read(log + ".1") or "")
    t.check(f"8 journal: with access = {log}, requests are logged there", ok and logged,
            f"restart: {why}; {before} not in {log}")
    t.check("8 journal: after the file is moved away, SIGUSR1 reopens it and new requests land in a new file",
            moved.returncode == 0 and r.returncode == 0 and reopened and in_new and not in_old,
            f"mv {_rc(moved)}; kill {_rc(r)}; recreated {bool(reopened)}; in new {bool(in_new)}; in old {in_old}")


# --- 9 configuration error and recovery ----------------------------------------------

def check_config_error(t):
    g = t.g
    missing = f"/srv/e2e-missing-{secrets.token_hex(4)}"
    conf, _ = ini_set(t.conf, "server", "root", missing)
    mark = g.mark()
    g.write(CONF, conf)
    r = g.systemctl("restart", "webpoold")
    result, status = g.show("webpoold.service", "Result"), g.show("webpoold.service", "ExecMainStatus")
    t.check("9 config error: with a missing root the service fails (exit 78)",
            r.returncode != 0 and result == "exit-code" and status == "78",
            f"{_rc(r)}; Result={result}, ExecMainStatus={status}")
    said = wait_for(lambda: [m for m in g.messages(mark, "-u", "webpoold", "-p", "err") if missing in m], 15)
    t.check("9 config error: journalctl -u webpoold -p err says why, naming the root", said,
            f"no err line naming {missing}")
    if said:
        t.note(f"journal: {said[0][:160]}")
    # Requests keep re-triggering the service until the start limit is hit.
    wait_for(lambda: try_fetch("/")[0] is None and g.show("webpoold.socket", "Result") != "success", 20)
    t.note(f"webpoold.socket is {g.is_active('webpoold.socket')}, Result={g.show('webpoold.socket', 'Result')}")
    check_recovery(t)


def check_recovery(t):
    g = t.g
    g.write(CONF, t.conf)
    recovery = readme_recovery(t.repo)
    rcs = [(cmd, g.run(*cmd)) for cmd in recovery]
    bad = [f"{' '.join(cmd)}: {_rc(r)}" for cmd, r in rcs if r.returncode != 0]
    answers = [try_fetch(SMALL, family) for family in (4, 6)]
    t.check("9 config error: once fixed, README's `" + " && ".join(" ".join(c) for c in recovery)
            + "` brings the site back (IPv4, IPv6)",
            not bad and all(_body_is(resp, t.small) for resp, _ in answers),
            "; ".join(bad + [_describe(resp, err) for resp, err in answers]))


# --- 11 path resolution --------------------------------------------------------------

OPENAT2 = "openat2(RESOLVE_BENEATH)"
WALK = "openat(O_NOFOLLOW)"


def _startup_line(t, mark):
    lines = wait_for(lambda: [m for m in t.g.messages(mark, "-u", "webpoold") if " serving " in m], 15)
    return lines[-1] if lines else ""


def _confinement(t, label):
    """Symlinks out of the root are refused, symlinks inside followed, and
    no encoded climb reaches a file outside."""
    secret = "e2e-secret-" + secrets.token_hex(6)
    g = t.g
    g.write("/srv/e2e-outside/secret.txt", secret + "\n")
    g.sh(f'cd {ROOT}/e2e && ln -sfn ../../../../srv/e2e-outside out_rel && '
         f'ln -sfn /srv/e2e-outside out_abs && ln -sfn small.txt in_link')
    refused = {p: try_fetch(p)[0] for p in ("/e2e/out_rel/secret.txt", "/e2e/out_abs/secret.txt",
                                            "/%2e%2e/%2e%2e/srv/e2e-outside/secret.txt")}
    leaked = [p for p, r in refused.items() if r is None or r.status < 400 or secret.encode() in r.body]
    inside = try_fetch("/e2e/in_link")[0]
    t.check(f"11 resolution ({label}): symlinks and climbs out of the root are refused, links inside served",
            not leaked and _body_is(inside, t.small),
            f"leaked or unanswered: {leaked}; inside link: {_describe(inside, '')}; "
            + ", ".join(f"{p} -> {r and r.status}" for p, r in refused.items()))


def check_resolution(t):
    """Under the shipped unit the kernel confines paths (openat2); with the
    seccomp filter an administrator adds with RestrictSUIDSGID=yes (which
    DynamicUser=yes implies) the daemon's own walk serves, just as safely."""
    g = t.g
    mark = g.mark()
    g.systemctl("restart", "webpoold")
    line = _startup_line(t, mark)
    t.check(f"11 resolution: under the shipped unit paths are resolved by {OPENAT2}", OPENAT2 in line,
            line or "no startup line")
    _confinement(t, "shipped unit")

    g.write(f"{DROPIN_DIR}/e2e-suid.conf", "[Service]\nRestrictSUIDSGID=yes\n")
    g.systemctl("daemon-reload")
    mark = g.mark()
    r = g.systemctl("restart", "webpoold")
    line = _startup_line(t, mark)
    t.check("11 resolution: with RestrictSUIDSGID=yes the walk serves (openat2: ENOSYS)",
            r.returncode == 0 and WALK in line and "Function not implemented" in line,
            f"{_rc(r)}; {line or 'no startup line'}")
    _confinement(t, "RestrictSUIDSGID=yes")
    home = try_fetch("/")[0]
    t.check("11 resolution: with RestrictSUIDSGID=yes the default page is served",
            home is not None and home.status == 200 and WELCOME in home.text(), _describe(home, ""))


# --- 12 a root the sandbox hides ------------------------------------------------------

def check_root_under_home(t):
    """`webpoold -t` run outside the sandbox approves /home/..., which the
    unit hides (ProtectHome=yes): the reload's check runs inside it and
    says so; README's drop-in makes the root usable."""
    g = t.g
    site = "/home/e2e-site"
    body = "from home " + secrets.token_hex(6) + "\n"
    g.write(f"{site}/index.html", body)
    conf, _ = ini_set(t.conf, "server", "root", site)
    g.write(CONF, conf)
    plain = g.run("webpoold", "-t", "-c", CONF)
    mark = g.mark()
    r = g.systemctl("reload", "webpoold")
    said = wait_for(lambda: [m for m in g.messages(mark, "-u", "webpoold", "-p", "err") if site in m], 15)
    still = try_fetch(SMALL)[0]
    t.check("12 home: a root under /home passes `webpoold -t` outside, but `systemctl reload` fails naming it",
            plain.returncode == 0 and r.returncode != 0 and said and _body_is(still, t.small),
            f"-t outside: {_rc(plain)}; reload: {_rc(r)}; err lines naming {site}: {said}; "
            f"old site: {_describe(still, '')}")
    g.write(f"{DROPIN_DIR}/e2e-home.conf", "[Service]\nProtectHome=read-only\n")
    g.systemctl("daemon-reload")
    r = g.systemctl("restart", "webpoold")
    home = try_fetch("/")[0]
    t.check("12 home: with README's drop-in (ProtectHome=read-only) it is served",
            r.returncode == 0 and home is not None and home.status == 200 and home.body == body.encode(),
            f"{_rc(r)}; {_describe(home, '')}")


# --- 13 the package's life: upgrade, remove, purge ---------------------------------

def newer_package(t):
    """The same package with a higher version, as the next release would
    be: what an upgrade installs."""
    r = t.g.sh('rm -rf /tmp/up && dpkg-deb -R "$1" /tmp/up && '
               'sed -i "s/^Version: .*/&+e2e1/" /tmp/up/DEBIAN/control && '
               'dpkg-deb -b /tmp/up /tmp/webpoold-newer.deb >/dev/null', t.deb)
    if r.returncode != 0:
        raise RuntimeError(f"cannot make a newer package: {_rc(r)}")
    return "/tmp/webpoold-newer.deb"


def check_upgrade(t):
    g = t.g
    newer = newer_package(t)
    edited = t.conf + "\n# edited by the administrator\n"
    g.write(CONF, edited)
    pid = g.main_pid()
    with KeepAliveLoad(SMALL, t.small, n=50) as load:
        started = wait_for(lambda: load.stats.requests >= 500, 30)
        r = g.run("dpkg", "-i", newer, timeout=300)
        done = load.stats.requests
        went_on = wait_for(lambda: load.stats.requests >= done + 500, 30)
    stats = load.stats
    t.note(f"load during the upgrade: {stats.figures()}")
    version = g.out("dpkg-query", "-W", "-f=${Version}", "webpoold")
    new_pid = g.main_pid()
    t.check("13 package: an upgrade over the running instance succeeds and restarts it",
            r.returncode == 0 and version.endswith("+e2e1") and new_pid not in (0, pid)
            and started and went_on,
            f"{_rc(r)}; version {version}; MainPID {pid} -> {new_pid}; load before {bool(started)}, "
            f"after {bool(went_on)}")
    t.check("13 package: no failed request and no reset during the upgrade",
            stats.requests > 0 and stats.failures == 0 and stats.resets == 0, stats.figures())
    t.check("13 package: the edited /etc/webpoold.conf is kept", g.read(CONF) == edited,
            "the conffile was replaced")
    t.check("13 package: the socket stayed up through the upgrade (never restarted)",
            g.show("webpoold.socket", "ActiveEnterTimestampMonotonic") == t.socket_since,
            "webpoold.socket was restarted")


def check_remove_and_purge(t):
    g = t.g
    r = g.run("apt-get", "remove", "-y", "webpoold", timeout=300)
    states = [g.is_active(u) for u in UNITS]
    answer = try_fetch("/")[0]
    t.check("13 package: apt-get remove stops the socket and the service",
            r.returncode == 0 and states == ["inactive", "inactive"] and answer is None,
            f"{_rc(r)}; {states}; {_describe(answer, 'refused')}")
    r = g.run("apt-get", "purge", "-y", "webpoold", timeout=300)
    left = sorted(guest_files(g) - t.files_before)
    units = g.out("systemctl", "list-unit-files", "--no-legend", "webpoold*")
    user = g.run("getent", "passwd", "webpoold").stdout.strip()
    dirs = [d for d in ("/var/log/webpoold", "/var/lib/webpoold", CONF) if g.exists(d)]
    t.check("13 package: purge leaves no file, unit, user or directory behind",
            r.returncode == 0 and not left and not units and not user and not dirs,
            f"{_rc(r)}; files {left[:8]}; units {units!r}; user {user!r}; {dirs}")


def check_package_life(t):
    t.socket_since = t.g.show("webpoold.socket", "ActiveEnterTimestampMonotonic")
    check_upgrade(t)
    check_remove_and_purge(t)


# --- 10 manual pages -----------------------------------------------------------------

def check_manuals(t):
    g = t.g
    excluded = g.sh("grep -rhs '^path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d/").stdout.strip()
    if excluded:
        t.note(f"dpkg excludes manual pages in this image ({excluded}); ours are installed by make install")
    for page, section in (("webpoold", "8"), ("webpoold.conf", "5")):
        r = g.run("man", "-P", "cat", page)
        text = re.sub(r".\x08", "", r.stdout)   # overstrike bold/underline
        t.check(f"10 manual: `man {page}` renders ({page}({section}), NAME section)",
                r.returncode == 0 and "NAME" in text and f"{page.upper()}({section})" in text.upper(),
                f"{_rc(r)}; {text[:120]!r}")


GROUPS = [check_activation, check_status, check_reload, check_restart_under_load, check_stop_drains,
          check_watchdog, check_sandbox, check_journal, check_config_error, check_manuals,
          check_resolution, check_root_under_home, check_package_life]
