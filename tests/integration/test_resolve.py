"""Path resolution beneath the root: symlink shapes and renames racing the
lookup. `make check` runs this file twice: with openat2() as the kernel
offers it, and under a seccomp filter that answers openat2() with ENOSYS
(WEBPOOLD_TEST_NO_OPENAT2=1), which makes the daemon walk paths itself. The
two must agree on every case, and neither may ever send a byte from outside
the root."""

import os
import threading
import time

import pytest

from conftest import NO_OPENAT2
from rawhttp import Client, get

SECRET = b"OUTSIDE-THE-ROOT"


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


@pytest.fixture
def tree(daemon):
    """root/ with sub/f.txt, and next to it outside/ with the secret."""
    root = daemon.root
    write(root.parent / "outside" / "f.txt", SECRET)
    write(root.parent / "outside" / "index.html", SECRET)
    write(root.parent / "secret", SECRET)
    write(root / "sub" / "f.txt", "inside sub")
    write(root / "top.txt", "inside top")
    return root


def status_and_body(port, target):
    r = get(port, target)
    assert SECRET not in r.raw, (target, r)
    return r.status, r.body


def test_the_expected_resolver_serves(daemon):
    """The startup line names the resolver, and under the filter it is not
    openat2(): the second run of this file really tests the walk."""
    line = next(l for l in daemon.output().splitlines() if "serving" in l)
    if NO_OPENAT2:
        assert "openat(O_NOFOLLOW)" in line and "Function not implemented" in line, line
    else:
        assert "openat2(RESOLVE_BENEATH)" in line, line


INSIDE = [
    # (symlink path, its target, request, expected body)
    ("l_same", "top.txt", "/l_same", b"inside top"),
    ("sub/l_up", "../top.txt", "/sub/l_up", b"inside top"),
    ("l_dir", "sub", "/l_dir/f.txt", b"inside sub"),
    ("l_dir_slash", "sub/", "/l_dir_slash/f.txt", b"inside sub"),
    ("l_dot", "./sub/./f.txt", "/l_dot", b"inside sub"),
    ("sub/l_updown", "../sub/../sub/f.txt", "/sub/l_updown", b"inside sub"),
    ("sub/l_selfdir", ".", "/sub/l_selfdir/f.txt", b"inside sub"),
    ("l_double_slash", "sub//f.txt", "/l_double_slash", b"inside sub"),
    ("sub/l_dotdot_dir", "..", "/sub/l_dotdot_dir/top.txt", b"inside top"),  # ".." of sub: the root
]


@pytest.mark.parametrize("link,target,request_path,body", INSIDE, ids=[i[0] for i in INSIDE])
def test_symlinks_that_stay_inside_are_followed(daemon, tree, link, target, request_path, body):
    os.symlink(target, tree / link)
    assert status_and_body(daemon.port, request_path) == (200, body)


OUTSIDE = [
    # Leaving the root is refused even when the path comes back into it.
    ("l_out_in", "../root/top.txt", "/l_out_in"),
    ("sub/l_out", "../../secret", "/sub/l_out"),
    ("l_out_dir", "../outside", "/l_out_dir/f.txt"),
    ("l_out_dir2", "../outside", "/l_out_dir2/"),
    ("l_abs", "/etc/passwd", "/l_abs"),
    ("l_abs_inside", "ROOT/top.txt", "/l_abs_inside"),  # absolute, to a file inside
    ("l_proc", "/proc/self/root/etc/passwd", "/l_proc"),
    ("l_root_parent", "..", "/l_root_parent/secret"),
]


@pytest.mark.parametrize("link,target,request_path", OUTSIDE, ids=[o[0] for o in OUTSIDE])
def test_symlinks_that_leave_are_refused(daemon, tree, link, target, request_path):
    target = target.replace("ROOT", str(tree))
    os.symlink(target, tree / link)
    status, body = status_and_body(daemon.port, request_path)
    assert status == 403, (link, target, status)
    assert b"root:" not in body


def test_symlink_chains_stop_at_the_kernels_limit(daemon, tree):
    """40 links are followed, as the kernel follows them; 41 are a loop."""
    for n in (40, 41):
        previous = "top.txt"
        for i in range(n):
            name = f"c{n}_{i}"
            os.symlink(previous, tree / name)
            previous = name
        status, body = status_and_body(daemon.port, "/" + previous)
        if n == 40:
            assert (status, body) == (200, b"inside top")
        else:
            assert status == 403, (n, status)


def test_loops_and_dangling_links(daemon, tree):
    os.symlink("self", tree / "self")
    os.symlink("nowhere", tree / "dangling")
    assert status_and_body(daemon.port, "/self")[0] == 403
    assert status_and_body(daemon.port, "/self/x")[0] == 403
    assert status_and_body(daemon.port, "/dangling")[0] == 404


def test_a_file_named_as_a_directory_is_not_found(daemon, tree):
    os.symlink("top.txt", tree / "flink")
    for target in ("/top.txt/x", "/flink/x", "/flink/"):
        assert status_and_body(daemon.port, target)[0] == 404, target


def test_directory_symlink_serves_its_index(daemon, tree):
    write(tree / "sub" / "index.html", "sub index")
    os.symlink("sub", tree / "l_index")
    assert status_and_body(daemon.port, "/l_index/") == (200, b"sub index")
    os.symlink("../outside", tree / "l_out_index")
    assert status_and_body(daemon.port, "/l_out_index/")[0] == 403


# --- renames racing the lookup ---------------------------------------------

RACE_SECONDS = 2.0  # bounded loops; a hang is caught by the socket timeouts


def hammer(port, targets, seconds):
    """GETs targets on keep-alive connections until time is up; returns
    {status: count} and fails on any byte from outside."""
    seen = {}
    deadline = time.monotonic() + seconds
    with Client.connect(port) as c:
        while time.monotonic() < deadline:
            for target in targets:
                c.request("GET", target)
                r = c.read_response()
                assert SECRET not in r.raw, (target, r)
                seen[r.status] = seen.get(r.status, 0) + 1
    return seen


def flip(stop, name, shapes):
    """Renames each of shapes to name and back, over and over, so that name
    is in turn each of them (and briefly absent)."""
    while not stop.is_set():
        for shape in shapes:
            os.rename(shape, name)
            os.rename(name, shape)


def race(daemon, targets, name, shapes):
    stop = threading.Event()
    t = threading.Thread(target=flip, args=(stop, name, shapes), daemon=True)
    t.start()
    try:
        seen = hammer(daemon.port, targets, RACE_SECONDS)
    finally:
        stop.set()
        t.join()
    return seen


def test_a_directory_swapped_with_an_escaping_symlink(daemon, tree):
    """root/race is in turn a real directory and a symlink out of the root
    (relative and absolute): the outside file is never sent."""
    root = tree
    write(root / "race_dir" / "f.txt", "inside race")
    os.symlink("../outside", root / "race_rel")
    os.symlink(str(root.parent / "outside"), root / "race_abs")
    seen = race(daemon, ["/race/f.txt", "/race/"], root / "race",
                [root / "race_dir", root / "race_rel", root / "race_abs"])
    assert set(seen) <= {200, 403, 404}, seen
    assert seen.get(200, 0) > 0, seen  # the race did run through the real directory
    assert status_and_body(daemon.port, "/race_dir/f.txt") == (200, b"inside race")


def test_a_directory_moved_up_while_a_symlink_climbs(daemon, tree):
    """Symlinks in y climb two levels; while lookups run, y moves between
    root/x/y and root/y, where the same climb would end above the root. A
    lookup is refused or lands inside, never outside."""
    root = tree
    (root / "x" / "y").mkdir(parents=True)
    os.symlink("../../top.txt", root / "x" / "y" / "link")
    os.symlink("../../secret", root / "x" / "y" / "deeper")
    seen = race(daemon, ["/x/y/link", "/y/link", "/x/y/deeper", "/y/deeper"], root / "y",
                [root / "x" / "y"])
    assert set(seen) <= {200, 403, 404}, seen
    assert status_and_body(daemon.port, "/x/y/link") == (200, b"inside top")
