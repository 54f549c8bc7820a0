"""The wall clock, and whether it can be trusted.

A Raspberry Pi has no real-time clock: until NTP has synchronised it, the time is a guess. The
kernel knows (adjtimex reports TIME_ERROR while the clock is unsynchronised); that is what
``timedatectl`` shows as "System clock synchronized". Samples carry the answer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from pathlib import Path
from typing import Final

from agent.sample import ClockState

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


class SystemClock:
    """Wall time, its sync state (from the kernel), and time since boot."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._timex = _Timex()
        try:
            self.boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        except OSError:
            self.boot_id = ""

    def now(self) -> float:
        return time.time()

    def uptime(self) -> float:
        return time.clock_gettime(time.CLOCK_BOOTTIME)

    def state(self) -> ClockState:
        self._timex.modes = 0  # read only
        rc = self._libc.adjtimex(ctypes.byref(self._timex))
        if rc < 0 or rc == _TIME_ERROR or self._timex.status & _STA_UNSYNC:
            return ClockState.UNSYNCED
        return ClockState.SYNCED
