"""What a driver hands over: one value of one vocabulary quantity, with its quality.

A device fault never raises out of a driver's ``read``; it becomes a :class:`Reading` whose
``quality`` says what went wrong and whose ``detail`` names the port, unit and register, so that
the sampler can store what it did get and the technician can see what it did not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

Value = float | int | bool | str


class Quality(StrEnum):
    GOOD = "good"
    UNAVAILABLE = "unavailable"  # no answer: timeout, connection refused, port gone
    DEVICE_ERROR = "device_error"  # the device answered with an exception or an error flag
    INVALID = "invalid"  # the device answered, but with its "not available" value or nonsense


@dataclass(frozen=True, slots=True)
class Reading:
    quantity: str
    value: Value | None
    quality: Quality = Quality.GOOD
    measured_at: datetime | None = None  # the device's own timestamp, where it has one (gas)
    detail: str | None = None  # for a bad quality: what failed, naming port/unit/register

    @property
    def good(self) -> bool:
        return self.quality is Quality.GOOD


@dataclass(frozen=True, slots=True)
class Event:
    """A state change seen between polls, with the time it happened (e.g. the boiler's flame).

    Sampling a state every few seconds loses short burns; drivers that see every change (the
    OpenTherm monitor) report each one, so the ledger can rebuild the exact timeline.
    """

    quantity: str
    value: Value
    at: datetime


class Driver(Protocol):
    """The four things every driver does. ``read`` never raises for a device fault."""

    name: str

    async def open(self) -> None: ...

    async def read(self) -> list[Reading]: ...

    async def close(self) -> None: ...

    def describe(self) -> dict[str, object]: ...


@runtime_checkable
class EventSource(Protocol):
    """A driver that also reports the state changes it saw since the last call."""

    def take_events(self) -> list[Event]: ...


class Outage:
    """A source's availability: logged once when it goes and once when it is back."""

    def __init__(self, log: Any) -> None:
        self._log = log
        self._since: float | None = None

    def down(self, reason: str | None) -> None:
        if self._since is None:
            self._since = time.monotonic()
            self._log.warning("source.unavailable", reason=reason)

    def up(self) -> None:
        if self._since is not None:
            self._log.info("source.recovered", after_s=round(time.monotonic() - self._since, 1))
            self._since = None
