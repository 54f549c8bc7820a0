"""A sample: everything one poll of one device produced, stamped with when it was taken.

The unit of storage and of publication. ``clock`` records whether the wall clock was known to be
right when the sample was taken (a Raspberry Pi has no real-time clock); ``boot`` and ``uptime``
let a recipient, or a later correction, place an unsynced sample in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from drivers.reading import Event, Quality, Reading, Value
from drivers.recording import Record
from drivers.timestamps import rfc3339


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

    def record(self) -> Record:
        """This sample as a line of a recording (the format ``hpagent record`` writes)."""
        return Record(self.t, self.values, self.source,
                      {r.quantity: r.measured_at.timestamp() for r in self.readings
                       if r.measured_at is not None and r.good},
                      tuple((e.at.timestamp(), e.quantity, e.value) for e in self.events))
