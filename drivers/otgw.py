"""The OpenTherm Gateway (OTGW) as a driver: a passive monitor of thermostat-boiler traffic.

The gateway prints every OpenTherm frame it relays, unasked, about one a second, on a serial line
(9600 8N1) or a TCP port (network gateways, ser2net). A background task reads those lines
through :mod:`drivers.serialport`, stamps each with its arrival time and feeds the pure
:class:`drivers.otgw_monitor.OpenThermMonitor`; :meth:`OtgwMonitor.read` hands out the latest
values and :meth:`OtgwMonitor.take_events` the burner/mode timeline seen since the last call, so
short burns between two polls are not lost.

Passive by default: the monitor never writes to the gateway, so it can share the gateway with
OTmonitor or Home Assistant, and it can never change the heating. With ``allow_commands`` it
sends exactly two kinds of command: ``PR=A`` (which firmware) and ``AA=<id>`` for each of
``alternatives`` (let the gateway ask the boiler for, e.g., the return temperature, id 28, in
place of an id the boiler does not support). It never sends ``PS=1``, which would stop the
gateway's reporting for everyone.

A pulled cable or a hung-up TCP peer closes the stream; the task reopens it with back-off. When
no frame arrives for ``silence`` seconds every value turns UNAVAILABLE with a detail naming the
link; when only one side of the link falls silent, only that side's quantities do. Transitions
are logged once: ``source.unavailable``/``source.recovered``, ``otgw.parity_errors`` and
``otgw.bus_errors`` when they start and ``*_stopped`` when a poll interval is clean again, and
``otgw.unsupported_data_id`` once per id the boiler refuses.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import Final

import structlog

from drivers.links import SerialLink, TcpLink
from drivers.opentherm import QUANTITY_SIDES, Side
from drivers.otgw_monitor import LineBuffer, LineKind, OpenThermMonitor
from drivers.reading import Event, Outage, Quality, Reading
from drivers.serialport import ByteStream, StreamClosed, open_stream
from drivers.tasks import cancel

log = structlog.get_logger("hpagent.otgw")

RECONNECT_MIN_S: Final = 0.25
RECONNECT_MAX_S: Final = 30.0
_SIDE_NAMES: Final = {"master": "thermostat", "slave": "boiler"}
_ERROR_CODES: Final = {"NG": "no such command", "SE": "syntax error", "BV": "bad value",
                       "OR": "out of range", "NS": "no space", "NF": "not found",
                       "OE": "overrun error"}


class OtgwMonitor:
    """Implements :class:`drivers.reading.Driver` and :class:`drivers.reading.EventSource`."""

    def __init__(self, name: str, link: SerialLink | TcpLink, *, allow_commands: bool = False,
                 alternatives: tuple[int, ...] = (), silence: float = 60.0) -> None:
        if alternatives and not allow_commands:
            raise ValueError(f"{name}: alternatives {list(alternatives)} need allow_commands "
                             "(AA= is a command to the gateway)")
        bad = [a for a in alternatives if not 1 <= a <= 255]
        if bad:
            raise ValueError(f"{name}: alternative data-ids must be 1..255, got {bad}")
        if not silence > 0:
            raise ValueError(f"{name}: silence must be positive, got {silence!r}")
        self.name = name
        self.link = link
        self.allow_commands = allow_commands
        self.alternatives = alternatives
        self.silence = silence
        self.monitor = OpenThermMonitor()
        self.firmware: str | None = None
        self._buffer = LineBuffer()
        self._task: asyncio.Task[None] | None = None
        self._link_error: str | None = f"{link}: not opened"
        self._connected_at = 0.0  # monotonic
        self._last_seen: dict[Side, float] = {}  # monotonic time of the last good frame per side
        self._known: set[str] = set()  # every quantity ever seen, to report as unavailable
        self._pending: deque[str] = deque()  # commands sent, awaiting their reply in order
        self._error_counts: dict[str, int] = {}
        self._noisy: set[str] = set()
        self._logged_ids: set[int] = set()
        self._log = log.bind(source=name, link=str(link))
        self.outage = Outage(self._log)

    # -- Driver ---------------------------------------------------------------------------------

    async def open(self) -> None:
        """Start the background reader (it connects, and reconnects, by itself)."""
        if self._task is None:
            self._connected_at = time.monotonic()
            self._link_error = f"{self.link}: connecting"
            self._task = asyncio.create_task(self._run(), name=f"otgw {self.name}")

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None
        self._link_error = f"{self.link}: closed"

    @property
    def connected(self) -> bool:
        """Whether the gateway's stream is open (frames may still be absent)."""
        return self._link_error is None

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name, "driver": "otgw", "link": str(self.link),
            "connected": self.connected,
            "allow_commands": self.allow_commands, "alternatives": list(self.alternatives),
            "firmware": self.firmware, "counts": self.monitor.counts.as_dict(),
            "unsupported_data_ids": sorted(self.monitor.unsupported),
            "dropped_events": self.monitor.dropped_events,
        }

    async def read(self) -> list[Reading]:
        now = time.monotonic()
        self._note_line_errors()
        self._note_unsupported()
        reason = self._unavailable(now)
        if reason is not None:
            self.outage.down(reason)
            self.monitor.forget()  # stale values must not come back as news
            wanted = sorted(self._known or QUANTITY_SIDES)
            return [Reading(q, None, Quality.UNAVAILABLE, detail=reason) for q in wanted]
        if max(self._last_seen.values(), default=-math.inf) < self._connected_at:
            return []  # (re)connected moments ago and no frame yet: nothing to say either way
        self.outage.up()
        readings = []
        values = self.monitor.values
        for quantity in sorted(self._known):
            side = QUANTITY_SIDES[quantity]
            seen = max(self._last_seen.get(side, -math.inf), self._connected_at)
            if now - seen > self.silence:
                detail = (f"{self.link}: no OpenTherm frame from the {_SIDE_NAMES[side]} for "
                          f"{self.silence:g} s")
                readings.append(Reading(quantity, None, Quality.UNAVAILABLE, detail=detail))
            elif quantity in values:
                readings.append(Reading(quantity, values[quantity]))
        return readings

    def take_events(self) -> list[Event]:
        return self.monitor.take_events()

    # -- state ----------------------------------------------------------------------------------

    def _unavailable(self, now: float) -> str | None:
        if self._link_error is not None:
            return self._link_error
        last = max([self._connected_at, *self._last_seen.values()])
        if now - last > self.silence:
            return f"{self.link}: no OpenTherm frame for {self.silence:g} s"
        return None

    def _note_line_errors(self) -> None:
        """Log when parity or bus errors start to appear, and when a poll interval is clean."""
        c = self.monitor.counts
        for event, total in (("otgw.parity_errors", c.parity_errors + c.bad_frames),
                             ("otgw.bus_errors", c.bus_errors)):
            new = total - self._error_counts.get(event, 0)
            self._error_counts[event] = total
            if new and event not in self._noisy:
                self._noisy.add(event)
                self._log.warning(event, since_last_poll=new, total=total)
            elif not new and event in self._noisy:
                self._noisy.discard(event)
                self._log.info(f"{event}_stopped", total=total)

    def _note_unsupported(self) -> None:
        for data_id in sorted(self.monitor.unsupported - self._logged_ids):
            self._logged_ids.add(data_id)
            self._log.info("otgw.unsupported_data_id", data_id=data_id,
                           hint="the boiler answers UNKNOWN-DATAID; with allow_commands an "
                                "alternative (AA=) can take its place")

    # -- the reader task ------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            try:
                stream = await open_stream(self.link)
            except OSError as exc:
                self._link_error = str(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            delay = RECONNECT_MIN_S
            self._buffer.restart()
            self._pending.clear()
            self.monitor.forget()  # whatever happened meanwhile, values start afresh
            self._connected_at = time.monotonic()
            self._link_error = None
            self._log.debug("otgw.connected")
            try:
                if self.allow_commands:
                    await self._send_commands(stream)
                while True:
                    for text in self._buffer.feed(await stream.read()):
                        self._line(text)
            except StreamClosed as exc:
                self._link_error = f"{self.link}: connection lost: {exc}"
            finally:
                await stream.close()
            await asyncio.sleep(delay)

    async def _send_commands(self, stream: ByteStream) -> None:
        commands = ["PR=A", *(f"AA={data_id}" for data_id in self.alternatives)]
        for command in commands:
            # Invariant: only reports and alternatives; PS=1 would silence the gateway.
            assert command.startswith(("PR=", "AA=")), command
            self._pending.append(command)
            await stream.write(f"{command}\r\n".encode("ascii"))

    def _line(self, text: str) -> None:
        line = self.monitor.feed(text, time.time())
        if line.kind is LineKind.FRAME:
            assert line.frame is not None
            if line.frame.parity_ok:
                self._last_seen[line.frame.side] = time.monotonic()
                self._known.update(self.monitor.values)
        elif line.kind is LineKind.REPLY:
            self._reply(line.text)

    def _reply(self, text: str) -> None:
        command = self._pending.popleft() if self._pending else None
        if text in _ERROR_CODES:
            self._log.warning("otgw.command_refused", command=command, reply=text,
                              meaning=_ERROR_CODES[text])
        elif text.startswith("PR: A="):
            self.firmware = text.removeprefix("PR: A=")
            self._log.info("otgw.firmware", firmware=self.firmware)
        elif text.startswith("AA: "):
            self._log.info("otgw.alternative_added", data_id=text.removeprefix("AA: "))
