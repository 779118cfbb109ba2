"""The README's commands and the install target, run as a user would."""
import os
import signal
import socket
import subprocess
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def clean_env():
    # Under `make check` we inherit the parent make's variables (BUILD,
    # SANFLAGS...); a user typing the command would not have them.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return env


def test_install_honours_destdir_and_prefix(tmp_path):
    dest = tmp_path / "dest"
    out = subprocess.run(["make", "-s", "-C", REPO, "install", f"DESTDIR={dest}", "PREFIX=/opt/wp"],
                         capture_output=True, text=True, env=clean_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    binary = dest / "opt/wp/sbin/webpoold"
    assert os.access(binary, os.X_OK)
    assert (dest / "opt/wp/share/man/man8/webpoold.8").is_file()
    assert (dest / "opt/wp/share/man/man5/webpoold.conf.5").is_file()
    assert (dest / "etc/webpoold.conf").read_text() == open(os.path.join(REPO, "conf/webpoold.conf")).read()
    unit = (dest / "opt/wp/lib/systemd/system/webpoold.service").read_text()
    assert "ExecStart=/opt/wp/sbin/webpoold -c /etc/webpoold.conf" in unit
    assert (dest / "opt/wp/lib/systemd/system/webpoold.socket").is_file()
    assert (dest / "opt/wp/lib/sysusers.d/webpoold.conf").read_text() == \
        open(os.path.join(REPO, "systemd/webpoold.sysusers")).read()
    page = open(os.path.join(REPO, "conf/default-site/index.html")).read()
    assert (dest / "opt/wp/share/webpoold/html/index.html").read_text() == page
    # The document root did not exist: the default page is put there.
    assert (dest / "var/www/html/index.html").read_text() == page
    version = subprocess.run([str(binary), "-V"], capture_output=True, text=True, timeout=10)
    assert version.returncode == 0 and version.stdout.startswith("webpoold ")


def test_install_keeps_an_edited_config(tmp_path):
    dest = tmp_path / "dest"
    (dest / "etc").mkdir(parents=True)
    (dest / "etc/webpoold.conf").write_text("# mine\n")
    out = subprocess.run(["make", "-s", "-C", REPO, "install", f"DESTDIR={dest}"],
                         capture_output=True, text=True, env=clean_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert (dest / "etc/webpoold.conf").read_text() == "# mine\n"


def test_install_leaves_an_existing_document_root_alone(tmp_path):
    dest = tmp_path / "dest"
    (dest / "var/www/html").mkdir(parents=True)
    out = subprocess.run(["make", "-s", "-C", REPO, "install", f"DESTDIR={dest}"],
                         capture_output=True, text=True, env=clean_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert list((dest / "var/www/html").iterdir()) == []


def wait_for_demo(proc, deadline):
    while time.monotonic() < deadline:
        assert proc.poll() is None, "make run exited early"
        try:
            with urllib.request.urlopen("http://127.0.0.1:8080/", timeout=5) as r:
                return r.status, r.read()
        except OSError:
            time.sleep(0.1)
    raise AssertionError("make run did not serve http://127.0.0.1:8080/ in time")


def test_make_run_serves_the_demo_and_stops_on_ctrl_c():
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", 8080)) != 0, "port 8080 is busy: cannot test make run"
    # Ctrl-C reaches the whole foreground process group; do the same.
    proc = subprocess.Popen(["make", "-s", "-C", REPO, "run"], env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        status, body = wait_for_demo(proc, time.monotonic() + 300)
        assert status == 200
        assert b"webpoold" in body
        with urllib.request.urlopen("http://127.0.0.1:8080/404.html", timeout=5) as r:
            page_404 = r.read()
        try:
            urllib.request.urlopen("http://127.0.0.1:8080/missing", timeout=5)
            raise AssertionError("missing page served")
        except urllib.error.HTTPError as e:
            assert e.code == 404
            assert e.read() == page_404
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert "worker thread(s) joined" in out, out
