"""Whether the clock is synchronised, asked of whoever can tell under the service's sandbox.

The sources are real: a flag file in a temporary directory, a ``timedatectl`` stand-in that is
a real executable (it prints what timedatectl prints and counts its calls), the kernel's own
answer, and that answer under the seccomp filter that the unit's ``ProtectClock=`` installs.
"""

from __future__ import annotations

import ctypes.util
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.sample import ClockState
from agent.service.clock import (
    BOOT_ID_VARIABLE,
    KernelClock,
    SystemClock,
    Timedatectl,
    boot_id,
    timesync_flag,
)


def refused() -> ClockState | None:
    """The kernel under ProtectClock=: adjtimex is filtered, so it says nothing."""
    return None


def fake_timedatectl(tmp_path: Path, answer: str, code: int = 0) -> tuple[list[str], Path]:
    """An executable that answers like ``timedatectl show -p NTPSynchronized --value``."""
    calls = tmp_path / "calls"
    script = tmp_path / "timedatectl"
    script.write_text(f"#!/bin/sh\necho called >> '{calls}'\necho '{answer}'\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return [str(script), "show", "--property=NTPSynchronized", "--value"], calls


def times_called(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def test_timesyncd_flag_says_synced_when_the_kernel_cannot(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    command, calls = fake_timedatectl(tmp_path, "no")
    clock = SystemClock([refused, timesync_flag(flag), Timedatectl(command, ask_every=0)],
                        boot="b")
    assert clock.state() is ClockState.UNSYNCED, "no flag: timedated's 'no' decides"
    flag.touch()  # what systemd-timesyncd does at a synchronisation
    assert clock.state() is ClockState.SYNCED
    assert times_called(calls) == 1, "the flag answers first: timedatectl is not asked"


@pytest.mark.parametrize(("answer", "code", "expected"), [
    ("yes", 0, ClockState.SYNCED),
    ("no", 0, ClockState.UNSYNCED),
    # in a container without systemd timedatectl fails: nobody can tell, so unsynced
    ("System has not been booted with systemd as init system (PID 1).", 1, ClockState.UNSYNCED),
])
def test_timedatectl_answers_where_there_is_no_flag(tmp_path: Path, answer: str, code: int,
                                                    expected: ClockState) -> None:
    command, _ = fake_timedatectl(tmp_path, answer, code)
    clock = SystemClock([refused, timesync_flag(tmp_path / "absent"), Timedatectl(command)],
                        boot="b")
    assert clock.state() is expected


def test_timedatectl_is_asked_once_a_period_not_once_a_poll(tmp_path: Path) -> None:
    command, calls = fake_timedatectl(tmp_path, "yes")
    kept = Timedatectl(command, ask_every=3600)
    assert [kept() for _ in range(5)] == [ClockState.SYNCED] * 5
    assert times_called(calls) == 1
    every = Timedatectl(command, ask_every=0)
    for _ in range(3):
        every()
    assert times_called(calls) == 4


def test_missing_timedatectl_is_no_answer(tmp_path: Path) -> None:
    assert Timedatectl([str(tmp_path / "no-such-program")])() is None


def test_the_first_source_with_an_answer_wins(tmp_path: Path) -> None:
    flag = tmp_path / "synchronized"
    flag.touch()
    def kernel_unsynced() -> ClockState | None:
        return ClockState.UNSYNCED
    # where the kernel answers (outside the sandbox) it is believed: it sees chrony and ntpd too,
    # and a clock that lost its synchronisation after timesyncd's flag was made
    assert SystemClock([kernel_unsynced, timesync_flag(flag)], boot="b").state() \
        is ClockState.UNSYNCED
    assert SystemClock([], boot="b").state() is ClockState.UNSYNCED, "nobody knows: unsynced"


def test_the_kernel_answers_here_without_a_sandbox() -> None:
    """This process has no seccomp filter: adjtimex answers, synced or not."""
    assert KernelClock()() in (ClockState.SYNCED, ClockState.UNSYNCED)


# What ProtectClock= does (systemd's @clock set, refused with EPERM), through libseccomp, then
# the clock's sources as the service has them: the kernel, and timesyncd's flag (argv[1]).
UNDER_PROTECT_CLOCK = """\
import ctypes, ctypes.util, errno, sys
from pathlib import Path
seccomp = ctypes.CDLL(ctypes.util.find_library("seccomp"))
seccomp.seccomp_init.restype = ctypes.c_void_p
context = ctypes.c_void_p(seccomp.seccomp_init(ctypes.c_uint32(0x7FFF0000)))  # SCMP_ACT_ALLOW
refuse = ctypes.c_uint32(0x00050000 | errno.EPERM)  # SCMP_ACT_ERRNO(EPERM)
for name in (b"adjtimex", b"clock_adjtime", b"clock_settime", b"settimeofday"):
    number = seccomp.seccomp_syscall_resolve_name(name)
    assert seccomp.seccomp_rule_add(context, refuse, number, 0) == 0
assert seccomp.seccomp_load(context) == 0
from agent.service.clock import KernelClock, SystemClock, timesync_flag
kernel = KernelClock()
print(kernel(), SystemClock([kernel, timesync_flag(Path(sys.argv[1]))], boot="b").state())
"""


def test_under_protect_clock_the_kernel_is_silent_and_timesyncd_answers(tmp_path: Path) -> None:
    if ctypes.util.find_library("seccomp") is None:
        pytest.skip("libseccomp is not installed (Debian's libseccomp2, which systemd needs)")
    flag = tmp_path / "synchronized"
    flag.touch()
    done = subprocess.run([sys.executable, "-c", UNDER_PROTECT_CLOCK, str(flag)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "synced"]


BOOT = "6f1e0c3a-2b7d-4c55-9a1e-3d2f7b8c9e01"


@pytest.mark.parametrize(("environ", "kernel_file", "expected"), [
    # under the unit: systemd's %b (32 hex digits) in the environment, /proc/sys hidden
    ({BOOT_ID_VARIABLE: BOOT.replace("-", "")}, None, BOOT),
    # outside systemd: the kernel's file, already dashed
    ({}, BOOT + "\n", BOOT),
    # a variable that is not a boot id is ignored, the kernel's file still answers
    ({BOOT_ID_VARIABLE: "%b"}, BOOT + "\n", BOOT),
    ({}, None, ""),
])
def test_boot_id(tmp_path: Path, environ: dict[str, str], kernel_file: str | None,
                 expected: str) -> None:
    path = tmp_path / "boot_id"
    if kernel_file is not None:
        path.write_text(kernel_file)
    assert boot_id(environ, path) == expected


def test_system_clock_reads_this_boot() -> None:
    clock = SystemClock()
    assert clock.boot_id == boot_id()
    assert clock.uptime() > 0
