"""A sample: everything one poll of one device produced, stamped with when it was taken.

The unit of storage and of publication. ``clock`` records whether the wall clock was known to be
right when the sample was taken (a Raspberry Pi has no real-time clock); ``boot`` and ``uptime``
let a recipient, or a later correction, place an unsynced sample in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from drivers.reading import Event, Quality, Reading, Value


class ClockState(StrEnum):
    SYNCED = "synced"
    UNSYNCED = "unsynced"


@dataclass(frozen=True, slots=True)
class Sample:
    source: str
    t: float  # Unix time, seconds (wall clock when the poll started)
    clock: ClockState
    readings: tuple[Reading, ...]
    boot: str = ""  # kernel boot id
    uptime: float = 0.0  # seconds since boot (CLOCK_BOOTTIME), immune to clock steps
    events: tuple[Event, ...] = ()  # state changes since the previous sample, in order

    @property
    def values(self) -> dict[str, Value]:
        return {r.quantity: r.value for r in self.readings
                if r.quality is Quality.GOOD and r.value is not None}

    @property
    def qualities(self) -> dict[str, str]:
        """Quantities without a good value, and why."""
        return {r.quantity: r.quality.value for r in self.readings if r.quality is not Quality.GOOD}

    @property
    def measured_at(self) -> dict[str, str]:
        """Device timestamps of quantities that carry one (gas meters), RFC 3339 UTC."""
        return {r.quantity: rfc3339(r.measured_at.timestamp()) for r in self.readings
                if r.measured_at is not None and r.quality is Quality.GOOD}


    @property
    def timeline(self) -> list[list[object]]:
        """``events`` as ``[RFC 3339 time, quantity, value]`` rows, for storage and messages."""
        return [[rfc3339(e.at.timestamp()), e.quantity, e.value] for e in self.events]


def rfc3339(t: float) -> str:
    """``2026-11-25T22:14:03.120Z``: UTC, millisecond precision."""
    dt = datetime.fromtimestamp(t, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    """Unix time of an RFC 3339 timestamp; ValueError if it carries no offset."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone offset")
    return dt.timestamp()
