"""Runs a command under a real seccomp filter that answers openat2() with
ENOSYS, the rule systemd's RestrictSUIDSGID= (implied by DynamicUser=)
installs because it cannot look inside struct open_how; Docker's default
profile and kernels before 5.6 refuse the call the same way. Another system
call can be refused likewise, with any errno.

The filter is installed by a small launcher that then execs the command, so
the command keeps the launcher's pid (LISTEN_PID= still matches) and every
descriptor passed to it."""

import os
import struct
import sys

# openat2 has one number on every architecture of the common syscall table.
NR_OPENAT2 = 437
# getrandom predates that table: one number per architecture.
NR_GETRANDOM = {"x86_64": 318, "aarch64": 278, "ppc64le": 359, "s390x": 349, "riscv64": 278}
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "ppc64le": 0xC0000015,
              "s390x": 0x80000016, "riscv64": 0xC00000F3}
LD_W_ABS, JEQ, RET = 0x20, 0x15, 0x06
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
ENOSYS = 38


def program(error=ENOSYS, nr=NR_OPENAT2):
    """struct sock_filter[] answering system call nr (openat2()) with error:
    other architectures pass untouched (as systemd's per-architecture
    filters do for ones they do not cover)."""
    arch = AUDIT_ARCH[os.uname().machine]
    ins = [
        (LD_W_ABS, 0, 0, 4),                 # seccomp_data.arch
        (JEQ, 0, 3, arch),
        (LD_W_ABS, 0, 0, 0),                 # seccomp_data.nr
        (JEQ, 0, 1, nr),
        (RET, 0, 0, RET_ERRNO | error),
        (RET, 0, 0, RET_ALLOW),
    ]
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in ins)


LAUNCHER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
def prctl(*args):
    if libc.prctl(*args, *[0] * (5 - len(args))) != 0:
        sys.exit("seccomp launcher: prctl%r: %s" % (args, os.strerror(ctypes.get_errno())))
code = bytes.fromhex(sys.argv[1])
buf = ctypes.create_string_buffer(code, len(code))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(len(code) // 8, ctypes.addressof(buf))
prctl(38, 1)                              # PR_SET_NO_NEW_PRIVS
prctl(22, 2, ctypes.addressof(prog))      # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
os.execv(sys.argv[2], sys.argv[2:])
"""


def refusing(nr, error):
    """A command prefix that runs its command with system call nr failing
    with error."""
    return [sys.executable, "-I", "-c", LAUNCHER, program(error, nr).hex()]


def without_openat2(argv, error=ENOSYS):
    """argv that runs argv with openat2() failing with error (ENOSYS, as
    systemd's filter answers; another errno to inject a fault)."""
    return [*refusing(NR_OPENAT2, error), *argv]
