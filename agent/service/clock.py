"""The wall clock, whether it can be trusted, and the boot it belongs to.

A Raspberry Pi has no real-time clock: until NTP has synchronised it, the time is a guess, and
samples say so. Whether the clock is synchronised is asked, in order, of whoever can tell:

1. the kernel: ``adjtimex`` returns TIME_ERROR, or sets STA_UNSYNC, while the clock is not
   synchronised (what ``timedatectl`` shows as "System clock synchronized"). The service's
   sandbox refuses the call (``ProtectClock=`` filters the @clock system calls, read-only
   ``adjtimex`` included, with EPERM), so under systemd the next two answer;
2. systemd-timesyncd's flag ``/run/systemd/timesync/synchronized``, which it touches at every
   synchronisation (systemd-timesyncd.service(8)): there, the clock has been synchronised in
   this boot. Its absence says nothing: another NTP client (chrony) may keep the clock;
3. ``timedatectl show -p NTPSynchronized --value``: timedated asks the kernel on our behalf,
   over D-Bus. A process each poll would be waste, so its answer is kept for a minute.

When nobody can tell, the clock is taken as unsynchronised: a sample never claims a time that
is not known. Unsynced samples carry the boot id and the time since boot, so they can be placed
in time later; the boot id comes from ``HPAGENT_BOOT_ID`` (the unit passes systemd's ``%b``,
as ``ProcSubset=pid`` hides ``/proc/sys``) or else from the kernel's file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Final

from agent.sample import ClockState

Source = Callable[[], ClockState | None]  # an answer, or None: cannot tell

BOOT_ID_VARIABLE: Final = "HPAGENT_BOOT_ID"
BOOT_ID_FILE: Final = Path("/proc/sys/kernel/random/boot_id")
TIMESYNC_FLAG: Final = Path("/run/systemd/timesync/synchronized")
TIMEDATECTL: Final = ("timedatectl", "show", "--property=NTPSynchronized", "--value")

_TIME_ERROR: Final = 5  # adjtimex return value: clock not synchronised
_STA_UNSYNC: Final = 0x0040


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (Linux); only 'status' is read, the rest is layout.
    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


class KernelClock:
    """The kernel's own answer (adjtimex, read only); None where the call is refused."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._timex = _Timex()

    def __call__(self) -> ClockState | None:
        self._timex.modes = 0  # read only
        rc = self._libc.adjtimex(ctypes.byref(self._timex))
        if rc < 0:  # EPERM under a seccomp filter (ProtectClock=), ENOSYS in some sandboxes
            return None
        if rc == _TIME_ERROR or self._timex.status & _STA_UNSYNC:
            return ClockState.UNSYNCED
        return ClockState.SYNCED


class Timedatectl:
    """timedated's answer through ``timedatectl``, asked at most every ``ask_every`` seconds."""

    def __init__(self, command: Sequence[str] = TIMEDATECTL, ask_every: float = 60.0,
                 timeout: float = 2.0) -> None:
        self.command = list(command)
        self.ask_every = ask_every
        self.timeout = timeout
        self._answer: ClockState | None = None
        self._asked_at: float | None = None

    def __call__(self) -> ClockState | None:
        now = time.monotonic()
        if self._asked_at is None or now - self._asked_at >= self.ask_every:
            self._answer = self._ask()
            self._asked_at = now
        return self._answer

    def _ask(self) -> ClockState | None:
        try:
            done = subprocess.run(self.command, capture_output=True, text=True,
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):  # not installed, no D-Bus, hung
            return None
        answer = done.stdout.strip() if done.returncode == 0 else ""
        return {"yes": ClockState.SYNCED, "no": ClockState.UNSYNCED}.get(answer)


def timesync_flag(path: Path = TIMESYNC_FLAG) -> Source:
    """systemd-timesyncd's flag: synced when it exists, no answer when it does not."""
    return lambda: ClockState.SYNCED if path.exists() else None


def boot_id(environ: Mapping[str, str] = os.environ, path: Path = BOOT_ID_FILE) -> str:
    """This boot's id as a UUID string, from the environment or the kernel; '' if neither."""
    for text in (environ.get(BOOT_ID_VARIABLE, ""), _read(path)):
        try:
            return str(uuid.UUID(text.strip()))  # systemd's %b has no dashes, the kernel's has
        except ValueError:
            continue
    return ""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


class SystemClock:
    """Wall time, its sync state (the first source that can tell), and time since boot."""

    def __init__(self, sources: Sequence[Source] | None = None, boot: str | None = None) -> None:
        if sources is None:
            sources = [KernelClock(), timesync_flag(), Timedatectl()]
        self.sources = list(sources)
        self.boot_id = boot_id() if boot is None else boot

    def now(self) -> float:
        return time.time()

    def uptime(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)

    def state(self) -> ClockState:
        for source in self.sources:
            answer = source()
            if answer is not None:
                return answer
        return ClockState.UNSYNCED
