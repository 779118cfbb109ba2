import subprocess


def test_version(webpoold_bin):
    out = subprocess.run([webpoold_bin, "-V"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    assert out.stdout.startswith("webpoold ")


def test_unknown_option_is_usage_error(webpoold_bin):
    out = subprocess.run([webpoold_bin, "-Z"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 64
