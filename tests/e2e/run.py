#!/usr/bin/python3
"""webpoold under a real systemd: `make check-e2e` runs this as root.

Boots a Debian bookworm guest (systemd as PID 1 in systemd-nspawn), installs
webpoold into it from its .deb (dpkg -i) the way an administrator would,
and drives it with systemctl, journalctl and HTTP. Prints one
PASS/FAIL line per check and ends with "N passed, N failed"; exits 1 if any
check failed, 2 if the guest could not be set up (a FAIL line too), 130
when interrupted.

Usage: run.py --deb FILE --binary FILE [--only 3,9]"""

import argparse
import os
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True   # nothing left behind in the source tree
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import checks                     # noqa: E402
import rootfs                     # noqa: E402
from container import Container   # noqa: E402
from guest import Guest           # noqa: E402

REPO = HERE.parents[1]
WORK_PARENT = "/var/tmp"


def log(text):
    print(text, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--deb", required=True, help="the webpoold .deb to install")
    p.add_argument("--binary", required=True, help="the built webpoold, for ldd")
    p.add_argument("--only", default="", help="comma-separated group numbers (1-13) to run after the install")
    return p.parse_args()


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_groups(t, only):
    """Each group after the first starts from the baseline; an exception
    ends that group as one failure, and the next one still runs. The
    install (in group 1) always runs; ONLY selects the checks."""
    for number, group in enumerate(checks.GROUPS, 1):
        selected = not only or number in only
        if number > 1 and not selected:
            continue
        start = time.monotonic()
        try:
            if number == 1:
                checks.install(t)
            else:
                if t.small is None:
                    checks.prepare_content(t)
                why = checks.baseline(t)
                if why:
                    t.check(f"{number} {group.__name__}: baseline", False, why)
                    continue
            if selected:
                group(t)
        except Exception as e:   # reported as a failure; KeyboardInterrupt is not caught
            t.check(f"{number} {group.__name__}: ran to the end", False, f"{type(e).__name__}: {e}")
        log(f"      ({group.__name__}: {time.monotonic() - start:.1f} s)")


def boot_guest(container, timings):
    """Extracts the (maybe freshly built) image into the container's root
    and boots it."""
    image, built = rootfs.ensure_image(log)
    timings.append(f"rootfs cold build {built:.1f} s" if built else "rootfs warm (cached image)")
    start = time.monotonic()
    rootfs.extract_image(image, container.root)
    timings.append(f"extract {time.monotonic() - start:.1f} s")
    start = time.monotonic()
    state = container.boot()
    timings.append(f"boot {time.monotonic() - start:.1f} s")
    log(f"guest {container.name} is {state} (systemd as PID 1, host pid {container.pid1})")
    if state != "running":
        log(Guest(container).out("systemctl", "--failed", "--no-legend"))
    container.enter_network()


def main():
    args = parse_args()
    only = {int(n) for n in args.only.split(",") if n}
    if os.geteuid() != 0:
        log("tests/e2e needs root (debootstrap, systemd-nspawn, nsenter)")
        return 2
    # Even where SIGINT came in ignored (a background job): the guest must be
    # powered off and its tree removed whatever ends the run.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    timings, t0 = [], time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="webpoold-e2e.", dir=WORK_PARENT))
    (work / "root").mkdir()
    container = Container(work / "root", f"webpoold-e2e-{os.getpid()}-{secrets.token_hex(2)}",
                          work / "console.log", binds=[(Path(args.deb).resolve().parent, "/e2e")])
    t = checks.Run(Guest(container), REPO, args.binary, Path(args.deb).name)
    status = 2
    try:
        boot_guest(container, timings)
        run_groups(t, only)
        status = 1 if t.failed else 0
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); cleaning up")
        status = 130
    except Exception as e:   # run_groups() keeps its own; this is the setup failing
        t.check("setup: the guest is built, booted and reached", False, f"{type(e).__name__}: {e}")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)   # cleanup runs to its end
        start = time.monotonic()
        container.halt()
        rootfs.remove_tree(work)
        timings.append(f"halt and clean up {time.monotonic() - start:.1f} s")
    timings.append(f"total {time.monotonic() - t0:.1f} s")
    log("timing: " + ", ".join(timings))
    log(t.summary())
    return status


if __name__ == "__main__":
    sys.exit(main())
