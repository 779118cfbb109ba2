"""Checks the RPM `make rpm` builds: its files, /etc/webpoold.conf as
%config(noreplace), the systemd scriptlets (socket started on install, the
service restarted on upgrade, both stopped on erase), and its version.
Prints counted PASS/FAIL lines; rpmlint's findings, where it is installed,
are printed as notes (Debian's rpmlint judges by another distribution's
rules: group tags, signatures, its own manual-page folders).

Usage: check_rpm.py PATH.rpm VERSION"""

import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from counted import Counted  # noqa: E402  (tests/counted.py)

EXPECTED = {
    "/etc/webpoold.conf", "/usr/sbin/webpoold",
    "/usr/lib/systemd/system/webpoold.service", "/usr/lib/systemd/system/webpoold.socket",
    "/usr/lib/sysusers.d/webpoold.conf", "/usr/share/webpoold/html/index.html",
}


def rpm_query(path, *args):
    return subprocess.run(["rpm", "-qp", *args, str(path)], capture_output=True, text=True).stdout


def main():
    path, version = Path(sys.argv[1]), sys.argv[2]
    t = Counted()
    files = set(rpm_query(path, "-l").split())
    t.check("the RPM holds the binary, units, sysusers entry, config and default page",
            EXPECTED <= files, sorted(EXPECTED - files))
    t.check("the manual pages are in it", any("man8/webpoold.8" in f for f in files)
            and any("man5/webpoold.conf.5" in f for f in files), sorted(files))
    configs = rpm_query(path, "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]")
    t.check("/etc/webpoold.conf is %config(noreplace)",
            any(line.split()[:1] == ["/etc/webpoold.conf"] and "n" in line.split()[-1]
                for line in configs.splitlines() if len(line.split()) == 2), configs[:200])
    scripts = rpm_query(path, "--scripts")
    t.check("install enables and starts the socket; erase stops both units; upgrade restarts the service",
            "enable --now webpoold.socket" in scripts
            and "disable --now webpoold.socket webpoold.service" in scripts
            and "try-restart webpoold.service" in scripts, scripts[:400])
    t.check("the user is created before the files are unpacked", "systemd-sysusers" in scripts, "no sysusers")
    got = rpm_query(path, "--qf", "%{VERSION}")
    t.check("the RPM's version is the project's", got == version, f"{got!r} vs {version!r}")
    if shutil.which("rpmlint"):
        r = subprocess.run(["rpmlint", str(path)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            if ": E: " in line or ": W: " in line:
                t.note(f"rpmlint: {line}")
    else:
        t.note("rpmlint is not installed")
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
