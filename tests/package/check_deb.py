"""Checks the built .deb the way a Debian reviewer would: lintian reports
no error and no warning, the package holds exactly the files it should,
/etc/webpoold.conf is a conffile, the maintainer scripts create the user,
enable and start the socket only, and the binary's version is the
package's. Prints a PASS/FAIL line per check and a closing count.

Usage: check_deb.py PATH.deb"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from counted import Counted  # noqa: E402  (tests/counted.py)

EXPECTED_FILES = {
    "etc/webpoold.conf",
    "lib/systemd/system/webpoold.service",
    "lib/systemd/system/webpoold.socket",
    "usr/lib/sysusers.d/webpoold.conf",
    "usr/sbin/webpoold",
    "usr/share/doc/webpoold/changelog.gz",
    "usr/share/doc/webpoold/copyright",
    "usr/share/man/man5/webpoold.conf.5.gz",
    "usr/share/man/man8/webpoold.8.gz",
    "usr/share/webpoold/html/index.html",
}


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600)


def lintian(t, deb):
    changes = deb.with_name(deb.name.replace(".deb", ".changes"))
    target = changes if changes.exists() else deb
    r = run("lintian", "--pedantic", "--display-info", "--fail-on", "error,warning", str(target))
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWIPXO]: ", line)]
    for line in tags:
        print(f"      lintian: {line}")
    serious = [line for line in tags if line[0] in "EW"]
    t.check("lintian reports no error and no warning", r.returncode == 0 and not serious,
            f"exit {r.returncode}; {serious or r.stderr.strip()[:300]}")


def contents(t, deb):
    r = run("dpkg-deb", "-c", str(deb))
    files = {line.split()[-1].lstrip("./") for line in r.stdout.splitlines() if not line.startswith("d")}
    t.check("the package holds exactly its files", r.returncode == 0 and files == EXPECTED_FILES,
            f"missing {sorted(EXPECTED_FILES - files)}, unexpected {sorted(files - EXPECTED_FILES)}")
    t.check("nothing under /var is shipped (the document root is the administrator's)",
            not any(f.startswith("var/") for f in files), sorted(files))


def control(t, deb, tmp):
    r = run("dpkg-deb", "-e", str(deb), str(tmp / "control"))
    assert r.returncode == 0, r.stderr
    conffiles = (tmp / "control" / "conffiles").read_text().split()
    t.check("/etc/webpoold.conf is a conffile", conffiles == ["/etc/webpoold.conf"], conffiles)
    postinst = (tmp / "control" / "postinst").read_text()
    prerm = (tmp / "control" / "prerm").read_text()
    t.check("postinst creates the system user (systemd-sysusers webpoold.conf)",
            re.search(r"systemd-sysusers .*webpoold\.conf", postinst), "no systemd-sysusers call")
    starts = re.findall(r"deb-systemd-invoke (\S+) '?([\w.@-]+)'?", postinst)
    t.check("postinst starts the socket, not the service, and restarts the service only on upgrade",
            ("start", "webpoold.socket") in starts and ("start", "webpoold.service") not in starts
            and ("try-restart", "webpoold.service") in starts, starts)
    preinst = tmp / "control" / "preinst"
    stops_on_upgrade = preinst.exists() and "stop" in preinst.read_text()
    t.check("an upgrade never stops the socket (connections wait in its backlog)",
            not stops_on_upgrade and re.search(r'"\$1" = remove', prerm), "preinst stops units on upgrade")


def version(t, deb, tmp):
    info = run("dpkg-deb", "-f", str(deb), "Version").stdout.strip()
    root = tmp / "root"
    run("dpkg-deb", "-x", str(deb), str(root))
    r = run(str(root / "usr/sbin/webpoold"), "-V")
    t.check("webpoold -V prints the package's version", r.stdout.strip() == f"webpoold {info}",
            f"{r.stdout.strip()!r} vs package {info!r}")


def main():
    deb = Path(sys.argv[1]).resolve()
    t = Counted()
    if t.check(f"{deb.name} was built", deb.is_file(), "no such file"):
        with tempfile.TemporaryDirectory(prefix="webpoold-deb-") as d:
            tmp = Path(d)
            lintian(t, deb)
            contents(t, deb)
            control(t, deb, tmp)
            version(t, deb, tmp)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
