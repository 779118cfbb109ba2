"""The documentation keeps up with the parser: every key src/config.c
accepts is documented, in its section, in man/webpoold.conf.5 and in
conf/webpoold.conf, and nothing else is; each manual entry gives its
default; both manual pages pass `mandoc -Tlint`."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def parser_keys():
    text = (REPO / "src" / "config.c").read_text()
    keys = set(re.findall(r'KEY\("(\w+)", "(\w+)"', text))
    assert len(keys) > 10, "cannot read the key table in src/config.c"
    return keys


def manual_entries():
    """{(section, key): text of its entry} from webpoold.conf.5."""
    entries, section, key = {}, None, None
    lines = (REPO / "man" / "webpoold.conf.5").read_text().splitlines()
    for prev, line in zip([""] + lines, lines):
        m = re.match(r"^\.SH \[(\w+)\]", line)
        if m:
            section, key = m[1], None
        elif line.startswith(".SH"):
            section, key = None, None
        elif section and prev == ".TP" and re.match(r"^\.B \w+$", line):
            key = line.split()[1]
            entries[(section, key)] = ""
        elif section and key:
            entries[(section, key)] += line + "\n"
    return entries


def example_keys():
    """(section, key) of every line of conf/webpoold.conf that sets a key,
    or shows it commented out (a key whose default cannot be written)."""
    keys, section = set(), None
    for line in (REPO / "conf" / "webpoold.conf").read_text().splitlines():
        m = re.match(r"^\[(\w+)\]", line)
        if m:
            section = m[1]
            continue
        m = re.match(r"^(?:[#;] ?)?(\w+) = ", line)
        if m and section:
            keys.add((section, m[1]))
    return keys


def test_the_manual_documents_exactly_the_parsers_keys():
    documented = set(manual_entries())
    keys = parser_keys()
    assert documented == keys, (f"undocumented: {sorted(keys - documented)}, "
                                f"not parsed: {sorted(documented - keys)}")


def test_the_example_file_shows_exactly_the_parsers_keys():
    shown = example_keys()
    keys = parser_keys()
    assert shown == keys, f"missing: {sorted(keys - shown)}, not parsed: {sorted(shown - keys)}"


@pytest.mark.parametrize("section,key", sorted(parser_keys()))
def test_each_manual_entry_gives_its_default(section, key):
    entry = manual_entries().get((section, key), "")
    assert re.search(r"default", entry, re.I), f"[{section}] {key}: no default in\n{entry}"


@pytest.mark.parametrize("page", ["webpoold.8", "webpoold.conf.5"])
def test_manual_pages_pass_mandoc_lint(page):
    mandoc = shutil.which("mandoc")
    assert mandoc, "mandoc not found: install the Debian package 'mandoc' (make test-deps does)"
    r = subprocess.run([mandoc, "-Tlint", "-W", "warning", str(REPO / "man" / page)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr
