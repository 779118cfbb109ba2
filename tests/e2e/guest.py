"""What the checks ask of the guest: systemctl properties, files, the
journal, and waiting for something to become true. Thin wrappers over
Container.run(); none of them judges a result."""

import json
import re
import time

WAIT_BOUND = 30   # seconds; generous, only catches hangs


def wait_for(probe, bound=WAIT_BOUND, interval=0.2):
    """PROBE()'s first truthy value, or its last falsy one after BOUND s."""
    deadline = time.monotonic() + bound
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Guest:
    def __init__(self, container):
        self.c = container

    def run(self, *argv, input=None, timeout=None):
        kwargs = {"timeout": timeout} if timeout else {}
        return self.c.run(list(argv), input=input, **kwargs)

    def sh(self, script, *args, input=None):
        return self.c.sh(script, *args, input=input)

    def out(self, *argv):
        return self.run(*argv).stdout.strip()

    def ok(self, *argv):
        return self.run(*argv).returncode == 0

    # --- units ------------------------------------------------------------------

    def systemctl(self, *args, timeout=None):
        return self.run("systemctl", *args, timeout=timeout)

    def show(self, unit, prop):
        return self.out("systemctl", "show", "-p", prop, "--value", unit)

    def is_active(self, unit):
        return self.out("systemctl", "is-active", unit)

    def main_pid(self):
        pid = self.show("webpoold.service", "MainPID")
        return int(pid) if pid.isdigit() else 0

    # --- files ------------------------------------------------------------------

    def read(self, path):
        r = self.run("cat", path)
        return r.stdout if r.returncode == 0 else None

    def write(self, path, text):
        r = self.sh('mkdir -p "$(dirname "$1")" && cat > "$1"', path, input=text)
        if r.returncode != 0:
            raise RuntimeError(f"cannot write {path} in the guest: {r.stderr.strip()}")

    def exists(self, path):
        return self.ok("test", "-e", path)

    # --- journal ----------------------------------------------------------------

    def mark(self):
        """The time (realtime µs) of the newest journal entry: later queries
        see only what came after it. Not a cursor: systemd 252's
        --after-cursor finds nothing once a field match (-p, FIELD=) is added."""
        entries = self._journal(["-n", "1"])
        return int(entries[-1]["__REALTIME_TIMESTAMP"]) if entries else 0

    def journal(self, mark, *args):
        """Entries (dicts, MESSAGE as text) of this boot after MARK matching ARGS."""
        return self._journal([f"--since=@{(mark + 1) / 1e6:.6f}"] + list(args))

    def messages(self, mark, *args):
        return [e["MESSAGE"] for e in self.journal(mark, *args)]

    def _journal(self, args):
        r = self.run("journalctl", "-q", "-b", "--no-pager", "-o", "json", *args)
        entries = []
        for line in r.stdout.splitlines():
            e = json.loads(line)
            msg = e.get("MESSAGE", "")
            if isinstance(msg, list):   # journalctl's form for non-UTF-8 bytes
                msg = bytes(msg).decode("utf-8", "replace")
            e["MESSAGE"] = msg
            entries.append(e)
        return entries


# --- configuration text --------------------------------------------------------------

def ini_set(text, section, key, value):
    """TEXT with KEY of SECTION set to VALUE, replacing its first active line
    or adding one right after the section header. Returns (text, line number
    of KEY, counting from 1)."""
    lines = text.splitlines()
    current, header = None, None
    for i, line in enumerate(lines):
        m = re.match(r"\[(.+)\]\s*$", line)
        if m:
            current = m.group(1).strip()
            if current == section and header is None:
                header = i
            continue
        if current == section and re.match(rf"{re.escape(key)}\s*=", line):
            lines[i] = f"{key} = {value}"
            return "\n".join(lines) + "\n", i + 1
    if header is None:
        lines += ["", f"[{section}]"]
        header = len(lines) - 1
    lines.insert(header + 1, f"{key} = {value}")
    return "\n".join(lines) + "\n", header + 2
