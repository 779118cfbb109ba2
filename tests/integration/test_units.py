"""The systemd units in systemd/: they load cleanly, carry the settings the
daemon relies on, score as sandboxed by `systemd-analyze security`, and the
daemon really runs inside that sandbox as far as it can be reproduced
without systemd as PID 1.

systemd-analyze verify checks that the ExecStart= binary exists, so it runs
on copies of the units whose /usr/sbin/webpoold is the binary under test
(WEBPOOLD_BIN, see conftest.py). The sandbox test starts that binary the way
the service would: socket-activated with two listeners, NOTIFY_SOCKET and
WATCHDOG_USEC set, as an unprivileged user with an empty capability bounding
set, no_new_privs, the unit's UMask= and LimitNOFILE=, and a seccomp filter
built from the unit's SystemCallFilter=, SystemCallErrorNumber=,
SystemCallArchitectures=native, RestrictAddressFamilies= and
MemoryDenyWriteExecute=. The mount, user and network namespaces
(ProtectSystem=, PrivateUsers=, PrivateNetwork=, ...) need systemd itself
and are left to tests/e2e."""

import errno
import json
import os
import re
import resource
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN, HANG_BOUND, Daemon
from rawhttp import Client, get

REPO = Path(__file__).resolve().parents[2]
SERVICE = REPO / "systemd" / "webpoold.service"
SOCKET = REPO / "systemd" / "webpoold.socket"
README = REPO / "README.md"
DEFAULT_CONF = REPO / "conf" / "webpoold.conf"

# `make install` rewrites exactly these strings in webpoold.service.
INSTALLED_BIN = "/usr/sbin/webpoold"
INSTALLED_CONF = "/etc/webpoold.conf"

MAX_EXPOSURE = 1.5
NOBODY = 65534


def tool(name, package):
    path = shutil.which(name) or shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    assert path, (f"{name} not found: install the Debian package '{package}' "
                  f"(`make test-deps` does)")
    return path


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=HANG_BOUND, **kwargs)


# --- reading unit files --------------------------------------------------------

def parse_unit(path):
    """[(section, key, value)] in file order. Repeated keys are kept: systemd
    accumulates list settings line by line, and an empty value resets them."""
    entries, section, pending = [], None, ""
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep and section, f"{path}: not a setting: {raw!r}"
        entries.append((section, key.strip(), value.strip()))
    return entries


def values(entries, section, key):
    return [v for s, k, v in entries if s == section and k == key]


def last(entries, section, key):
    found = values(entries, section, key)
    assert found, f"{key}= is not set in [{section}]"
    return found[-1]


def boolean(value):
    v = value.lower()
    assert v in ("1", "yes", "y", "true", "t", "on", "0", "no", "n", "false", "f", "off"), value
    return v in ("1", "yes", "y", "true", "t", "on")


def accumulated(assignments):
    """Items of a list setting in effect: an empty assignment resets."""
    items = []
    for value in assignments:
        items = [] if not value else items + value.split()
    return items


SPAN_UNITS = {"us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "": 1, "s": 1, "sec": 1,
              "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
              "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}


def seconds(span):
    """A systemd (or webpoold) time span, e.g. 45s or 1min 30s, in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span.strip().lower())
    assert parts and re.fullmatch(r"(\s*\d+(\.\d+)?\s*[a-z]*)+\s*", span.lower()), span
    return sum(float(n) * SPAN_UNITS[u] for n, u in parts)


def exec_argv(command, mainpid=None, conf=INSTALLED_CONF, binary=BIN):
    """An Exec*= command line as the argv the test runs: the installed paths
    replaced by the binary under test and the given config."""
    assert command[:1] not in ("-", "@", "+", "!", ":"), f"unexpected prefix: {command}"
    argv = shlex.split(command)
    out = []
    for arg in argv:
        arg = arg.replace(INSTALLED_BIN, str(binary)).replace(INSTALLED_CONF, str(conf))
        if mainpid is not None:
            arg = arg.replace("$MAINPID", str(mainpid)).replace("${MAINPID}", str(mainpid))
        out.append(arg)
    return out


@pytest.fixture(scope="module")
def service():
    return parse_unit(SERVICE)


@pytest.fixture(scope="module")
def socket_unit():
    return parse_unit(SOCKET)


# --- systemd-analyze ------------------------------------------------------------

@pytest.fixture(scope="module")
def analyze():
    return tool("systemd-analyze", "systemd")


@pytest.fixture
def staged_units(tmp_path):
    """Copies of both units, the service's binary being the one under test."""
    assert os.access(BIN, os.X_OK), f"{BIN} is not built (run make, or set WEBPOOLD_BIN)"
    d = tmp_path / "units"
    d.mkdir()
    text = SERVICE.read_text()
    assert INSTALLED_BIN in text
    binary = BIN if " " not in BIN else '"' + BIN + '"'
    (d / SERVICE.name).write_text(text.replace(INSTALLED_BIN, binary))
    shutil.copy(SOCKET, d / SOCKET.name)
    return d


def about_units(stderr):
    return [line for line in stderr.splitlines() if "webpoold" in line]


def test_units_verify_cleanly(analyze, staged_units):
    # Documentation= pages are checked by test_documentation_pages_exist
    # instead: they are not installed here, and man(1) may not be either.
    r = run([analyze, "verify", "--man=no",
             str(staged_units / SOCKET.name), str(staged_units / SERVICE.name)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert about_units(r.stderr) == [], r.stderr


def test_verify_would_report_a_mistake(analyze, staged_units):
    """The check above is not vacuous: a misspelt setting is reported on
    stderr (verify still exits 0 for it)."""
    service = staged_units / SERVICE.name
    service.write_text(service.read_text().replace("PrivateNetwork=", "PrivateNetwrok="))
    r = run([analyze, "verify", "--man=no", str(staged_units / SOCKET.name), str(service)])
    assert any("PrivateNetwrok" in line for line in about_units(r.stderr)), r.stderr


def test_documentation_pages_exist(service, socket_unit):
    for entries in (service, socket_unit):
        for doc in " ".join(values(entries, "Unit", "Documentation")).split():
            m = re.fullmatch(r"man:([\w.-]+)\((\d)\)", doc)
            assert m, f"unexpected Documentation= entry {doc}"
            assert (REPO / "man" / f"{m[1]}.{m[2]}").is_file(), doc


@pytest.fixture(scope="module")
def exposure(analyze):
    r = run([analyze, "security", "--offline=true", "--no-pager", str(SERVICE)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert about_units(r.stderr) == [], r.stderr
    m = re.search(r"Overall exposure level for webpoold\.service: (\d+\.\d+) (\S+)", r.stdout)
    assert m, r.stdout
    return float(m[1]), m[2], r.stdout


def test_security_exposure_is_low(exposure):
    level, verdict, report = exposure
    assert level <= MAX_EXPOSURE, report


def test_readme_records_the_exposure_level(exposure):
    level, verdict, _ = exposure
    section = re.search(r"^## Under systemd\n(.*?)(?=^## )", README.read_text(), re.M | re.S)
    assert section, "README.md has no 'Under systemd' section"
    recorded = re.search(r"exposure level[^0-9]*(\d+\.\d+)(?: ([A-Z]+))?", section[1])
    assert recorded, "README.md's 'Under systemd' section does not record the exposure level"
    assert float(recorded[1]) == level, (
        f"README.md records {recorded[1]}, systemd-analyze says {level} {verdict}: update it")


# --- what the service must say ----------------------------------------------------

def test_install_paths_are_literal(service):
    # The Makefile's install target rewrites these two strings with sed.
    start = last(service, "Service", "ExecStart")
    assert shlex.split(start)[0] == INSTALLED_BIN
    assert f"-c {INSTALLED_CONF}" in start


def test_type_notify_and_socket_activation(service):
    assert last(service, "Service", "Type") == "notify"
    assert "webpoold.socket" in " ".join(values(service, "Unit", "Requires")).split()
    assert "webpoold.socket" in " ".join(values(service, "Unit", "After")).split()


def test_reload_checks_the_file_then_waits_for_the_daemon(service):
    """systemd 252 returns from `systemctl reload` when ExecReload= exits, so
    the one command both checks the file and waits for the daemon's answer
    (`webpoold -r`, tested in test_reload_command.py)."""
    reloads = [shlex.split(v) for v in values(service, "Service", "ExecReload")]
    assert reloads == [[INSTALLED_BIN, "-c", INSTALLED_CONF, "-r", "$MAINPID"]], reloads


def test_restart_watchdog_and_stop_timeout(service):
    assert last(service, "Service", "Restart") == "on-failure"
    assert seconds(last(service, "Service", "WatchdogSec")) > 0
    # The daemon drains for [timeouts] shutdown (30s by default) and extends
    # systemd's stop timeout while it does; the unit's own bound must still
    # let the default drain finish.
    conf = DEFAULT_CONF.read_text()
    default = re.search(r"^\[timeouts\][^\[]*?^shutdown\s*=\s*(\S+)", conf, re.M | re.S)
    assert default, "conf/webpoold.conf documents no [timeouts] shutdown"
    assert seconds(last(service, "Service", "TimeoutStopSec")) > seconds(default[1])
    # A configuration error (exit 78) is not retried.
    assert "78" in " ".join(values(service, "Service", "RestartPreventExitStatus")).split()


SYSUSERS = REPO / "systemd" / "webpoold.sysusers"


def test_a_system_user_of_its_own(service):
    """User= names the user the sysusers.d file creates, not root."""
    user = last(service, "Service", "User")
    assert user and user != "root", user
    assert last(service, "Service", "Group") == user
    entries = [line.split() for line in SYSUSERS.read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert any(e[:2] == ["u", user] for e in entries), entries


def test_no_capabilities_no_sockets_of_its_own(service):
    assert accumulated(values(service, "Service", "CapabilityBoundingSet")) == []
    assert values(service, "Service", "CapabilityBoundingSet"), "CapabilityBoundingSet= missing"
    assert accumulated(values(service, "Service", "AmbientCapabilities")) == []
    assert boolean(last(service, "Service", "PrivateNetwork"))
    assert accumulated(values(service, "Service", "RestrictAddressFamilies")) == ["AF_UNIX"]
    assert accumulated(values(service, "Service", "IPAddressDeny")) == ["any"]


def test_system_call_filter(service):
    filters = accumulated(values(service, "Service", "SystemCallFilter"))
    assert filters and not filters[0].startswith("~"), "SystemCallFilter= must be an allow list"
    assert "@system-service" in filters
    assert last(service, "Service", "SystemCallErrorNumber") == "EPERM"
    assert last(service, "Service", "SystemCallArchitectures") == "native"


@pytest.mark.parametrize("key,expected", [
    ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"), ("PrivateUsers", "yes"), ("PrivateMounts", "yes"),
    ("ProtectClock", "yes"), ("ProtectHostname", "yes"), ("ProtectKernelLogs", "yes"),
    ("ProtectKernelModules", "yes"), ("ProtectKernelTunables", "yes"),
    ("ProtectControlGroups", "yes"), ("ProtectProc", "invisible"), ("ProcSubset", "pid"),
    ("RestrictNamespaces", "yes"), ("RestrictRealtime", "yes"),
    ("LockPersonality", "yes"), ("NoNewPrivileges", "yes"), ("MemoryDenyWriteExecute", "yes"),
    ("RemoveIPC", "yes"), ("UMask", "0077"), ("DevicePolicy", "closed"),
    ("KeyringMode", "private"),
])
def test_sandbox_setting(service, key, expected):
    value = last(service, "Service", key)
    if expected == "yes":
        assert boolean(value), f"{key}={value}"
    else:
        assert value == expected, f"{key}={value}"


def test_socket_listens_on_port_80_ipv4_and_ipv6(socket_unit):
    listens = accumulated(values(socket_unit, "Socket", "ListenStream"))
    bind_v6_only = (values(socket_unit, "Socket", "BindIPv6Only") or ["default"])[-1]
    ipv4 = ipv6 = False
    for addr in listens:
        if re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}:80", addr):
            ipv4 = True
        elif re.fullmatch(r"\[[0-9a-fA-F:.]+\]:80", addr):
            ipv6 = True
            # [::]:80 also takes IPv4 unless the socket is IPv6-only.
            ipv4 |= addr == "[::]:80" and bind_v6_only == "both"
        elif addr == "80":  # [::]:80, with IPv4 unless BindIPv6Only=ipv6-only
            ipv6 = True
            ipv4 |= bind_v6_only != "ipv6-only"
    assert ipv4 and ipv6, listens
    # Both addresses can be held at once: the IPv6 one does not claim IPv4
    # when an IPv4 one is listed too.
    if any(re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}:80", a) for a in listens) and \
            any(a in ("[::]:80", "80") for a in listens):
        assert bind_v6_only == "ipv6-only", "the IPv4 and IPv6 wildcards would collide"
    # Same name, so it activates webpoold.service.
    assert values(socket_unit, "Socket", "Service") in ([], ["webpoold.service"])
    assert not boolean((values(socket_unit, "Socket", "Accept") or ["no"])[-1])


# --- running under the unit's seccomp filter -------------------------------------

def syscall_groups(analyze):
    """{"@group": [entries]} from `systemd-analyze syscall-filter`."""
    groups, current = {}, None
    for line in run([analyze, "syscall-filter", "--no-pager"]).stdout.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.startswith("    ") and not line.strip().startswith("#"):
            current.append(line.strip())
        elif not line.strip():
            current = None
    assert "@system-service" in groups and "@default" in groups, "cannot read syscall-filter"
    return groups


def expand(name, groups):
    if not name.startswith("@"):
        return {name}
    assert name in groups, f"unknown system call group {name}"
    out = set()
    for entry in groups[name]:
        out |= expand(entry, groups)
    return out


def allowed_syscalls(service, analyze):
    """The allow list systemd builds from the unit: @default, then each
    SystemCallFilter= line adding (or, with ~, removing) names."""
    groups = syscall_groups(analyze)
    allowed = expand("@default", groups)
    for value in values(service, "Service", "SystemCallFilter"):
        if not value:
            allowed = expand("@default", groups)
            continue
        remove = value.startswith("~")
        for item in value.lstrip("~").split():
            names = expand(item.split(":")[0], groups)
            allowed = allowed - names if remove else allowed | names
    return allowed


def syscall_numbers():
    """{name: number} for this machine's native ABI, from the C headers."""
    cc = shutil.which(os.environ.get("CC", "cc")) or tool("gcc", "gcc")
    r = run([cc, "-dM", "-E", "-x", "c", "-"], input="#include <sys/syscall.h>\n")
    assert r.returncode == 0, r.stderr
    macros = dict(re.findall(r"^#define (__NR\w*) (\S+)$", r.stdout, re.M))

    def value(v, depth=0):
        if re.fullmatch(r"\d+", v):
            return int(v)
        m = re.fullmatch(r"\((\w+) \+ (\d+)\)", v)
        if m and depth < 5:
            base = value(macros.get(m[1], m[1]), depth + 1)
            return None if base is None else base + int(m[2])
        return value(macros[v], depth + 1) if v in macros and depth < 5 else None

    numbers = {}
    for name, v in macros.items():
        if name.startswith("__NR_"):
            n = value(v)
            if n is not None:
                numbers[name[len("__NR_"):]] = n
    assert "read" in numbers and "socket" in numbers and "mmap" in numbers, "no syscall table"
    return numbers


AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "ppc64le": 0xC0000015,
              "s390x": 0x80000016, "riscv64": 0xC00000F3}

# Classic BPF, as seccomp runs it.
LD_W_ABS, JEQ, JGE, JSET, AND, RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
PROT_WRITE, PROT_EXEC = 0x2, 0x4
AF_UNIX, EAFNOSUPPORT = 1, 97


def setting(service, key, default="no"):
    found = values(service, "Service", key)
    return found[-1] if found else default


def restricts_suid_sgid(service):
    return boolean(setting(service, "RestrictSUIDSGID")) or boolean(setting(service, "DynamicUser"))


def seccomp_filter(service, analyze):
    """The unit's system call restrictions as one seccomp program (bytes of
    struct sock_filter), returning errors the way systemd's filters do."""
    machine = os.uname().machine
    assert machine in AUDIT_ARCH, f"no seccomp architecture known for {machine}"
    numbers = syscall_numbers()
    deny = RET_ERRNO | getattr(errno, last(service, "Service", "SystemCallErrorNumber"))
    little = sys.byteorder == "little"

    def arg(i):  # offset of the low 32 bits of seccomp_data.args[i]
        return 16 + 8 * i + (0 if little else 4)

    prog = []

    def ins(code, k=0, jt=0, jf=0):
        prog.append(struct.pack("=HBBI", code, jt, jf, k))

    # SystemCallArchitectures=native
    ins(LD_W_ABS, 4)
    ins(JEQ, AUDIT_ARCH[machine], 1, 0)
    ins(RET, RET_KILL_PROCESS)
    ins(LD_W_ABS, 0)
    if machine == "x86_64":  # the x32 ABI
        ins(JGE, 0x40000000, 0, 1)
        ins(RET, deny)
    # RestrictAddressFamilies=AF_UNIX
    families = accumulated(values(service, "Service", "RestrictAddressFamilies"))
    assert families == ["AF_UNIX"], families
    ins(JEQ, numbers["socket"], 0, 4)
    ins(LD_W_ABS, arg(0))
    ins(JEQ, AF_UNIX, 1, 0)
    ins(RET, RET_ERRNO | EAFNOSUPPORT)
    ins(LD_W_ABS, 0)
    # MemoryDenyWriteExecute=yes
    if boolean(last(service, "Service", "MemoryDenyWriteExecute")):
        ins(JEQ, numbers["mmap"], 0, 5)
        ins(LD_W_ABS, arg(2))
        ins(AND, PROT_WRITE | PROT_EXEC)
        ins(JEQ, PROT_WRITE | PROT_EXEC, 0, 1)
        ins(RET, RET_ERRNO | 1)  # EPERM
        ins(LD_W_ABS, 0)
        for name in ("mprotect", "pkey_mprotect"):
            if name in numbers:
                ins(JEQ, numbers[name], 0, 4)
                ins(LD_W_ABS, arg(2))
                ins(JSET, PROT_EXEC, 0, 1)
                ins(RET, RET_ERRNO | 1)
                ins(LD_W_ABS, 0)
    # RestrictSUIDSGID=, which DynamicUser= implies: systemd's filter cannot
    # look inside struct open_how, so it answers every openat2() with ENOSYS.
    if restricts_suid_sgid(service):
        ins(JEQ, numbers["openat2"], 0, 1)
        ins(RET, RET_ERRNO | errno.ENOSYS)
    # SystemCallFilter= and SystemCallErrorNumber=
    for n in sorted({numbers[s] for s in allowed_syscalls(service, analyze) if s in numbers}):
        ins(JEQ, n, 0, 1)
        ins(RET, RET_ALLOW)
    ins(RET, deny)
    assert len(prog) < 4096
    return b"".join(prog)


# Runs in a fresh interpreter: moves the listening sockets to 3, 4, ...,
# becomes the service's user, applies the limits, installs the filter and
# execs the command. Its pid is the command's, as LISTEN_PID= requires.
LAUNCHER = r"""
import ctypes, fcntl, json, os, resource, sys
cfg = json.loads(sys.argv[1])
high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in cfg["fds"]]
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i, inheritable=True)
    os.close(fd)
env = dict(cfg["env"])
for key in cfg["pid_env"]:
    env[key] = str(os.getpid())
if cfg["nofile"]:
    resource.setrlimit(resource.RLIMIT_NOFILE, tuple(cfg["nofile"]))
os.umask(cfg["umask"])
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
def prctl(*args):
    if libc.prctl(*args, *[0] * (5 - len(args))) != 0:
        sys.exit("launcher: prctl%r: %s" % (args, os.strerror(ctypes.get_errno())))
if cfg["user"] is not None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        for cap in range(int(f.read()) + 1):
            prctl(24, cap)                       # PR_CAPBSET_DROP
    os.setgroups([])
    os.setresgid(cfg["user"], cfg["user"], cfg["user"])
    os.setresuid(cfg["user"], cfg["user"], cfg["user"])
prctl(38, 1)                                     # PR_SET_NO_NEW_PRIVS
code = bytes.fromhex(cfg["filter"])
buf = ctypes.create_string_buffer(code, len(code))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(len(code) // 8, ctypes.addressof(buf))
argv = cfg["argv"]
prctl(22, 2, ctypes.addressof(prog))             # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
os.execve(argv[0], argv, env)
"""


class Sandbox:
    """Starts commands the way webpoold.service would (see the docstring)."""

    def __init__(self, service, analyze):
        self.service = service
        self.filter = seccomp_filter(service, analyze).hex()
        self.user = NOBODY if os.geteuid() == 0 else None
        self.umask = int(last(service, "Service", "UMask"), 8)
        limit = last(service, "Service", "LimitNOFILE")
        hard = int(limit.split(":")[-1])
        hard = min(hard, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        # systemd would set soft = hard; start lower so that raising the
        # soft limit (prlimit64) is exercised under the filter.
        self.nofile = [min(1024, hard), hard]

    def env(self):
        keep = ("PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        # For an ASan build: LeakSanitizer needs ptrace(), which the unit
        # rightly forbids; leaks are checked by the other tests.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
        return env

    def popen(self, argv, env=None, fds=(), pid_env=(), **kwargs):
        cfg = {"fds": [f.fileno() for f in fds], "env": env or self.env(), "pid_env": list(pid_env),
               "nofile": self.nofile, "umask": self.umask, "user": self.user,
               "filter": self.filter, "argv": argv}
        return subprocess.Popen([sys.executable, "-c", LAUNCHER, json.dumps(cfg)],
                                pass_fds=[f.fileno() for f in fds], cwd="/", **kwargs)

    def run(self, argv):
        p = self.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out, _ = p.communicate(timeout=HANG_BOUND)
        return p.returncode, out




@pytest.fixture
def shared_dir():
    """A directory the service's unprivileged user can read (tmp_path's
    parents are private to the user running the tests)."""
    d = Path(tempfile.mkdtemp(prefix="webpoold-units-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def open_to_all(path):
    for dirpath, dirnames, filenames in os.walk(path):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def proc_nofile(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open file limit")


class Notifications:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o777)  # the service's user sends to it
        self.messages = []

    def wait_for(self, line, bound=HANG_BOUND):
        deadline = time.monotonic() + bound
        while not any(line in m.split("\n") for m in self.messages):
            left = deadline - time.monotonic()
            assert left > 0, f"no {line} in {self.messages}"
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return self.messages

    def close(self):
        self.sock.close()


DENIAL_MARKERS = ("Operation not permitted", "Address family not supported",
                  "Bad system call", "Permission denied")


def test_the_filter_denies_what_the_unit_forbids(service, analyze):
    """The emulated sandbox is not a no-op: under it an Internet socket,
    a writable+executable mapping and a @resources call all fail."""
    probe = r"""
import errno, json, mmap, os, socket
out = {}
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    out["inet"] = 0
except OSError as e:
    out["inet"] = e.errno
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).close()
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    out["wx"] = 0
except OSError as e:
    out["wx"] = e.errno
try:
    os.sched_setaffinity(0, os.sched_getaffinity(0))
    out["affinity"] = 0
except OSError as e:
    out["affinity"] = e.errno
out["uid"] = os.getuid()
print(json.dumps(out))
"""
    box = Sandbox(service, analyze)
    rc, out = box.run([sys.executable, "-I", "-c", probe])
    assert rc == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["inet"] == errno.EAFNOSUPPORT, result
    assert result["wx"] == errno.EPERM, result
    assert result["affinity"] == errno.EPERM, result
    if box.user is not None:
        assert result["uid"] == box.user


def test_daemon_runs_in_the_units_sandbox(service, analyze, shared_dir):
    """Socket-activated under the unit's filter, user, limits and umask, the
    daemon reports READY=1, raises its open-file limit, serves both sockets,
    survives the unit's ExecReload= commands and stops cleanly on SIGTERM."""
    box = Sandbox(service, analyze)
    d = Daemon(shared_dir, shared_dir / "root", {"log": {"level": "debug"}})
    d.write_config()
    (d.root / "index.html").write_text("sandboxed\n")
    big = os.urandom(3 * 1024 * 1024 + 11)
    (d.root / "big.bin").write_bytes(big)
    # The service's user must reach the binary: the checkout may sit in a
    # private directory (a home, mktemp -d), as BIN's does on many machines.
    binary = shared_dir / "webpoold"
    shutil.copy(BIN, binary)
    open_to_all(shared_dir)
    os.chmod(binary, 0o755)

    listeners = []
    for _ in range(2):  # webpoold.socket passes two (IPv4 and IPv6)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        listeners.append(s)
    notify = Notifications(shared_dir / "notify")
    env = box.env()
    env.update(LISTEN_FDS=str(len(listeners)),
               LISTEN_FDNAMES=":".join(["webpoold.socket"] * len(listeners)),
               NOTIFY_SOCKET=notify.path,
               WATCHDOG_USEC=str(int(seconds(last(service, "Service", "WatchdogSec")) * 1e6)))
    argv = exec_argv(last(service, "Service", "ExecStart"), conf=d.conf, binary=binary)
    d.log = open(d.log_path, "wb")
    try:
        d.proc = box.popen(argv, env=env, fds=listeners, pid_env=("LISTEN_PID", "WATCHDOG_PID"),
                           stdout=d.log, stderr=subprocess.STDOUT)
        ports = [s.getsockname()[1] for s in listeners]
        for s in listeners:
            s.close()
        d.port = ports[0]
        d.wait_ready()
        notify.wait_for("READY=1")
        # Under the shipped unit the kernel itself confines paths.
        startup = next(line for line in d.output().splitlines() if "serving" in line)
        assert "openat2(RESOLVE_BENEATH)" in startup, startup

        status = proc_status(d.proc.pid)
        assert status["Seccomp"].strip() == "2" and status["NoNewPrivs"].strip() == "1", status
        if box.user is not None:
            assert status["Uid"].split()[0] == str(box.user), status
            assert int(status["CapBnd"], 16) == 0 and int(status["CapEff"], 16) == 0, status
        soft, hard = proc_nofile(d.proc.pid)
        assert soft == hard == box.nofile[1], (soft, hard, d.output())

        for port in ports:
            r = get(port, "/")
            assert r.status == 200 and r.body == b"sandboxed\n", r
        with Client.connect(ports[1]) as c:  # openat2 + sendfile, several writes
            c.request("GET", "/big.bin")
            assert c.read_response().body == big
            c.request("GET", "/absent")
            assert c.read_response().status == 404

        # `systemctl reload`: the unit's ExecReload= commands, in order, in
        # the same sandbox.
        logged = len(d.output())
        for command in values(service, "Service", "ExecReload"):
            rc, out = box.run(exec_argv(command, mainpid=d.proc.pid, conf=d.conf, binary=binary))
            assert rc == 0, f"ExecReload={command} failed ({rc}):\n{out}"
        deadline = time.monotonic() + 5  # the daemon logs what SIGHUP did
        while len(d.output()) == logged and time.monotonic() < deadline:
            time.sleep(0.02)
        assert d.proc.poll() is None, d.output()
        assert get(ports[0], "/").body == b"sandboxed\n"

        assert d.stop() == 0, d.output()
        notify.wait_for("STOPPING=1", bound=1)
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        d.log.close()
        notify.close()
    out = d.output()
    d.check_clean()
    for marker in DENIAL_MARKERS:
        assert marker not in out, out
