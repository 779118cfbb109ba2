"""The guest's root file system: a Debian minbase tree with systemd, built
once with debootstrap and kept as a zstd tarball in CACHE_DIR, keyed by a
hash of everything that shapes it. Every run extracts a fresh copy, so no
run sees another's leftovers and the cached image is never written to."""

import fcntl
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

CACHE_DIR = Path("/var/cache/webpoold-e2e")
SUITE = "bookworm"
# webpoold's runtime libraries (libsystemd0, libinih1, media-types for
# /etc/mime.types) and what the checks run inside the guest.
PACKAGES = ["systemd", "systemd-sysv", "dbus", "libsystemd0", "curl", "libinih1", "media-types",
            "procps", "python3", "man-db", "iproute2"]
# Units that would otherwise wake up during a run and write to the journal.
QUIET_UNITS = ["apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer",
               "systemd-tmpfiles-clean.timer", "man-db.timer", "console-getty.service"]
# Bump when prepare_tree() changes, so an old image is not reused.
IMAGE_REVISION = 1

# Owners by number (the host's names are not the guest's) and file capabilities.
TAR_FLAGS = ["--numeric-owner", "--xattrs", "--xattrs-include=*"]
BUILD_BOUND = 1800  # seconds; debootstrap takes about two minutes


def image_key():
    text = "\n".join([SUITE, "minbase", ",".join(sorted(PACKAGES)), ",".join(QUIET_UNITS), str(IMAGE_REVISION)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def image_path():
    return CACHE_DIR / f"rootfs-{SUITE}-{image_key()}.tar.zst"


# --- the mirror --------------------------------------------------------------------

def _deb822_stanzas(text):
    for block in re.split(r"\n\s*\n", text):
        fields, last = {}, None
        for line in block.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and last:
                fields[last] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            last = key.strip().lower()
            fields[last] = value.strip()
        yield fields


def _mirrors_deb822(path):
    for f in _deb822_stanzas(Path(path).read_text()):
        if f.get("enabled", "yes").lower() == "no" or "deb" not in f.get("types", "").split():
            continue
        if SUITE in f.get("suites", "").split() and "main" in f.get("components", "").split():
            yield from f.get("uris", "").split()


def _mirrors_oneline(path):
    for line in Path(path).read_text().splitlines():
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0])
        words = line.split()
        if len(words) >= 4 and words[0] == "deb" and words[2] == SUITE and "main" in words[3:]:
            yield words[1]


def find_mirror():
    """The Debian mirror this machine's apt already uses for SUITE main; no
    other host is reachable. Files renamed *.disabled* are not apt's."""
    candidates = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
        if ".disabled" in os.path.basename(path) or not os.path.isfile(path):
            continue
        if path.endswith(".sources"):
            candidates += _mirrors_deb822(path)
        elif path.endswith(".list"):
            candidates += _mirrors_oneline(path)
    if not candidates:
        raise RuntimeError(f"no apt source for '{SUITE} main' in /etc/apt: cannot run debootstrap")
    return candidates[0]


# --- building and extracting ---------------------------------------------------------

def prepare_tree(root):
    """Quieten and shrink a fresh debootstrap tree."""
    subprocess.run(["systemctl", f"--root={root}", "mask", "--quiet"] + QUIET_UNITS, check=True)
    for pattern in ["var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*",
                    "var/log/journal/*", "var/log/*.log", "var/log/apt/*"]:
        for p in glob.glob(os.path.join(root, pattern)):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            elif os.path.basename(p) != "lock":
                os.unlink(p)
    # An empty machine-id: each boot gets a new transient one, and the first
    # boot is not treated as "first boot" (no presets applied).
    Path(root, "etc/machine-id").write_text("")


def build_image(target, log):
    mirror = find_mirror()
    log(f"rootfs: building {target.name} with debootstrap from {mirror} (a few minutes, once)")
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=CACHE_DIR))
    try:
        tree = work / "tree"
        _run_group(["debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(tree), mirror])
        prepare_tree(tree)
        partial = work / "image.tar.zst"
        with open(partial, "wb") as out:
            _pipe(["tar", "-C", str(tree)] + TAR_FLAGS + ["-cf", "-", "."], ["zstd", "-q", "-T0"], stdout=out)
        os.rename(partial, target)  # atomic: a reader sees a whole image or none
    finally:
        remove_tree(work)


def _run_group(argv):
    """ARGV in a process group of its own, all of which is killed if the wait
    is interrupted: debootstrap leaves dpkg and chroot children behind."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        rc = p.wait(timeout=BUILD_BOUND)
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    if rc != 0:
        raise RuntimeError(f"{argv[0]} failed with exit status {rc}")


def _mounts_below(path):
    prefix = os.path.realpath(path) + "/"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def remove_tree(path):
    """rm -rf PATH, but never through a mount point: an interrupted
    debootstrap leaves /proc, /sys and maybe the host's /dev mounted inside
    its target. They are unmounted first; if one stays, the tree stays."""
    for point in _mounts_below(path):
        subprocess.run(["umount", "-l", point], check=False)
    left = _mounts_below(path)
    if left:
        print(f"not removing {path}: still mounted inside it: {', '.join(left)}", flush=True)
        return
    shutil.rmtree(path, ignore_errors=True)


def ensure_image(log):
    """The cached image, built first if missing. Returns (path, seconds spent
    building or 0). A lock serialises concurrent runs that all find it missing."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    target = image_path()
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target, 0.0
        start = time.monotonic()
        build_image(target, log)
        return target, time.monotonic() - start


def extract_image(image, dest):
    _pipe(["zstd", "-q", "-dc", str(image)], ["tar", "-C", str(dest)] + TAR_FLAGS + ["-xpf", "-"])


def _pipe(first, second, stdout=None):
    """FIRST | SECOND, both killed if anything (such as Ctrl-C) interrupts the
    wait: a shell's pipeline would leave them running when the shell is killed."""
    a = subprocess.Popen(first, stdout=subprocess.PIPE)
    b = subprocess.Popen(second, stdin=a.stdout, stdout=stdout)
    a.stdout.close()   # b holds the only reader now
    try:
        rcs = [b.wait(timeout=BUILD_BOUND), a.wait(timeout=BUILD_BOUND)]
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()
    if rcs != [0, 0]:
        raise RuntimeError(f"{' '.join(first)} | {' '.join(second)} failed: exit statuses {rcs[::-1]}")
