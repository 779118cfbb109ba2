"""Checks `make dist`'s tarball: it holds every file git tracks (under one
webpoold-VERSION/ directory) and nothing built, and unpacked in a
temporary directory it builds warning-free, passes its unit tests, and
says its version. Prints counted PASS/FAIL lines.

Usage: check_dist.py webpoold-VERSION.tar.gz VERSION"""

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from counted import Counted  # noqa: E402  (tests/counted.py)

REPO = Path(__file__).resolve().parents[2]


def tracked_files():
    r = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True)
    return set(r.stdout.split("\n")) - {""} if r.returncode == 0 else None


def contents(t, tarball, version):
    top = f"webpoold-{version}/"
    with tarfile.open(tarball) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile() or m.issym()]
    t.check(f"every entry is under {top}", all(n.startswith(top) for n in names), names[:5])
    files = {n[len(top):] for n in names}
    built = [f for f in files if f.startswith("build/") or f.endswith((".o", ".tar.gz", ".pyc"))]
    t.check("nothing built is in it", not built, built[:5])
    tracked = tracked_files()
    if tracked is not None:
        t.check("it holds exactly the files git tracks", files == tracked,
                f"missing {sorted(tracked - files)[:5]}, extra {sorted(files - tracked)[:5]}")


def builds(t, tarball, version):
    with tempfile.TemporaryDirectory(prefix="webpoold-dist-") as d:
        subprocess.run(["tar", "-C", d, "-xzf", str(tarball)], check=True)
        tree = Path(d) / f"webpoold-{version}"
        r = subprocess.run(["make", "-C", str(tree), "WERROR=-Werror", "all", "check-unit"],
                           capture_output=True, text=True, timeout=900,
                           env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
        t.check("unpacked elsewhere it builds warning-free and passes its unit tests", r.returncode == 0,
                (r.stdout + r.stderr)[-600:])
        v = subprocess.run([str(tree / "build" / "webpoold"), "-V"], capture_output=True, text=True)
        t.check("its webpoold -V prints the version", v.stdout.strip() == f"webpoold {version}", v.stdout)


def main():
    tarball, version = Path(sys.argv[1]).resolve(), sys.argv[2]
    t = Counted()
    if t.check(f"{tarball.name} exists", tarball.is_file(), "not made"):
        contents(t, tarball, version)
        builds(t, tarball, version)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
