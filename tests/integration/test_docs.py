"""The documentation keeps up with the parser: every key src/config.c
accepts is documented, in its section, in man/webpoold.conf.5 and in
conf/webpoold.conf, and nothing else is; each manual entry gives its type,
default and what a reload does with it, and the parser and the daemon agree
with what it says; both manual pages pass `mandoc -Tlint`."""

import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, free_port

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


# ------------------------------------------------- type, range and reload

ENTRY_FIELDS = ("Type:", "Default:", "Reload:")


def entry_field(entry, label):
    """The text of a "Label: ..." line of a manual entry, roff removed."""
    lines = entry.split(".br\n")
    for chunk in lines:
        text = re.sub(r"^\.\w+ ?", "", chunk, flags=re.M).replace("\n", " ").strip()
        if text.startswith(label):
            return text[len(label):].strip()
    return None


def documented_restart_keys():
    return {key for key, entry in manual_entries().items()
            if (entry_field(entry, "Reload:") or "").startswith("needs a restart")}


@pytest.mark.parametrize("section,key", sorted(parser_keys()))
def test_each_manual_entry_gives_type_default_and_reload(section, key):
    entry = manual_entries().get((section, key), "")
    for label in ENTRY_FIELDS:
        assert entry_field(entry, label), f"[{section}] {key}: no '{label}' line in\n{entry}"
    reload = entry_field(entry, "Reload:")
    assert reload.startswith(("applied", "needs a restart")), f"[{section}] {key}: {reload}"


def example_comment_blocks():
    """{(section, key): the comment lines above it in conf/webpoold.conf,
    with the comment block that opens its section}."""
    blocks, section, opening, pending = {}, None, "", []
    for line in (REPO / "conf" / "webpoold.conf").read_text().splitlines():
        m = re.match(r"^\[(\w+)\]", line)
        if m:
            section, opening, pending = m[1], None, []
            continue
        m = re.match(r"^(?:[#;] ?)?(\w+) = ", line)
        if m and section:
            blocks.setdefault((section, m[1]), (opening or "") + "\n".join(pending))
            pending = []
        elif line.startswith("#"):
            pending.append(line)
        elif not line.strip() and section and opening is None:
            opening, pending = "\n".join(pending), []
    return blocks


def test_the_example_file_says_what_a_reload_does_with_each_key():
    restart = documented_restart_keys()
    for (section, key), comment in example_comment_blocks().items():
        assert "Reload:" in comment, f"[{section}] {key}: no 'Reload:' in its comment:\n{comment}"
        says_restart = "Reload: needs a restart" in comment
        assert says_restart == ((section, key) in restart), \
            f"[{section}] {key}: the example file and the manual disagree on reload"


NUMERIC_RANGE = re.compile(r"^(number|size), (\d+) to (\d+)\.$")
DURATION_RANGE = re.compile(r"^duration, (0|1ms) to 24h\.$")


def documented_ranges():
    for (section, key), entry in sorted(manual_entries().items()):
        kind = entry_field(entry, "Type:")
        m = NUMERIC_RANGE.match(kind)
        if m:
            lo, hi = int(m[2]), int(m[3])
            yield section, key, [lo, hi], [hi + 1] + ([lo - 1] if lo > 0 else [])
            continue
        m = DURATION_RANGE.match(kind)
        if m:
            yield section, key, [m[1], "24h"], [f"{24 * 3600 + 1}s"] + (["0"] if m[1] == "1ms" else [])


def check_value(tmp_path, section, key, value):
    root = tmp_path / "www"
    root.mkdir(exist_ok=True)
    base = {"server": {"listen": "127.0.0.1:1", "root": str(root)}, "timeouts": {}, "log": {}}
    if (section, key) == ("server", "max_request_line"):
        base["server"]["max_header_bytes"] = "1048576"
    base[section][key] = str(value)
    conf = tmp_path / "check.conf"
    conf.write_text("".join(f"[{s}]\n" + "".join(f"{k} = {v}\n" for k, v in kv.items())
                            for s, kv in base.items()))
    return subprocess.run([BIN, "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)


def test_the_documented_ranges_are_the_parsers(tmp_path):
    ranges = list(documented_ranges())
    assert len(ranges) >= 10, ranges
    for section, key, accepted, refused in ranges:
        for value in accepted:
            r = check_value(tmp_path, section, key, value)
            assert r.returncode == 0, f"[{section}] {key} = {value} documented valid: {r.stderr}"
        for value in refused:
            r = check_value(tmp_path, section, key, value)
            assert r.returncode == 78, f"[{section}] {key} = {value} documented out of range, accepted"


def reload_values(tmp_path):
    """A valid value for each key, other than the base configuration's."""
    other_root = tmp_path / "other-root"
    other_root.mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    return {
        ("server", "listen"): f"127.0.0.1:{free_port()}", ("server", "root"): str(other_root),
        ("server", "index"): "home.html", ("server", "error_page_404"): "/404.html",
        ("server", "workers"): "3", ("server", "max_connections"): "50",
        ("server", "max_header_bytes"): "4096", ("server", "max_request_line"): "1024",
        ("server", "max_header_fields"): "20", ("server", "max_body_bytes"): "1000",
        ("server", "dotfiles"): "yes", ("server", "precompressed"): "no",
        ("server", "cache_max_age"): "60", ("timeouts", "header"): "5s",
        ("timeouts", "keepalive"): "3s", ("timeouts", "send"): "7s", ("timeouts", "shutdown"): "9s",
        ("log", "level"): "debug", ("log", "access"): str(logs / "access.log"),
    }


def test_a_reload_warns_of_exactly_the_keys_documented_to_need_a_restart(make_daemon, tmp_path):
    """Each key is changed alone and reloaded; the daemon's warnings name the
    key when, and only when, the manual says it needs a restart."""
    values = reload_values(tmp_path)
    assert set(values) == parser_keys(), "the table of values needs updating"
    d = make_daemon({"server": {"workers": "2"}, "timeouts": {}, "log": {"access": "off"}}, start=False)
    base = {s: dict(kv) for s, kv in d.settings.items()}
    d.start()
    restart, warned = documented_restart_keys(), set()
    for n, ((section, key), value) in enumerate(sorted(values.items()), start=1):
        d.settings = {s: dict(kv) for s, kv in base.items()}
        d.settings[section][key] = value
        before = len(d.output())
        d.write_config()
        d.send_signal(signal.SIGHUP)
        d.wait_for_log("Configuration reloaded", count=n)
        warnings = [l for l in d.output()[before:].splitlines() if l.startswith("<4>")]
        if any(key in w and "restart" in w for w in warnings):
            warned.add((section, key))
    assert warned == restart, f"warned of {sorted(warned)}, the manual says {sorted(restart)}"


# ------------------------------------------------------------------ README

def readme_table():
    """{(section, key): reload column} of README.md's configuration table."""
    rows, section = {}, None
    for line in (REPO / "README.md").read_text().splitlines():
        m = re.match(r"^\| (`\[(\w+)\]`)? *\| `(\w+)` \| .*? \| (applied|restart) \|", line)
        if m:
            section = m[2] or section
            rows[(section, m[3])] = m[4]
    return rows


def test_the_readme_table_lists_every_key_and_what_a_reload_does():
    rows = readme_table()
    keys = parser_keys()
    assert set(rows) == keys, f"missing: {sorted(keys - set(rows))}, not parsed: {sorted(set(rows) - keys)}"
    restart = {k for k, v in rows.items() if v == "restart"}
    assert restart == documented_restart_keys(), "README.md and the manual disagree on reload"


def test_the_readme_points_only_inside_the_repository():
    text = (REPO / "README.md").read_text()
    outside = re.findall(r"\.\./\S*", text)
    assert not outside, f"README.md points outside the repository: {outside}"
    for path in re.findall(r"`((?:src|conf|systemd|man|packaging|tests)/[\w./-]*)`", text):
        assert (REPO / path).exists(), f"README.md names {path}, which is not in the repository"
