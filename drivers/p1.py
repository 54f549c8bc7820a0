"""The P1 port of a Dutch (or Belgian, Luxembourg, ...) smart meter, as a driver.

:class:`P1Meter` implements :class:`drivers.reading.Driver`. A background task keeps the serial
port (or TCP connection of a network P1 dongle / ser2net) open, waits on the stream, detects the
line settings on serial, keeps the latest valid telegram, and reopens the port with back-off when
it vanishes (a cable pulled) or the peer hangs up. ``read`` only hands out what the task has
received. Telegrams are cut, checked and decoded by :mod:`drivers.p1_telegram` (pure).

**Silence:** ``read`` returns the readings of the latest valid telegram; when no valid telegram
arrived for ``silence`` seconds (port gone, meter silent, every telegram failing its CRC) every
reading is ``UNAVAILABLE`` with a detail naming the port and what was seen instead.

**Spec detection** (``spec="auto"``) is per telegram, from its contents
(:func:`~drivers.p1_telegram.detect_spec`); the variant of the valid telegrams is logged once
(``p1.detected``) and again only if it changes (a meter swapped). **Line detection** on serial (no
``line`` pinned) tries 115200 8N1, 115200 7E1 and 9600 7E1 in turn (the last one that worked
first) until a valid telegram arrives within ``detect_window`` seconds; settings the port refuses
(a pty refuses parity) are skipped.

Faults are logged once per transition, never per telegram: ``p1.unavailable`` (port cannot be
opened or vanished), ``p1.silent``, ``p1.crc_errors``, ``p1.parse_errors``, ``p1.garbage``, and
``p1.recovered`` when good telegrams are back (after ``recover_after`` seconds without that fault
for the data faults, at once for silence and port faults).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final, Literal

import structlog

from drivers.links import SerialLink, TcpLink
from drivers.p1_telegram import CORE_QUANTITIES, Counters, CrcError, P1Decoder, P1Telegram
from drivers.reading import Quality, Reading
from drivers.serialport import ByteStream, SerialStream, StreamClosed, TcpStream, open_stream
from drivers.tasks import cancel

log = structlog.get_logger("hpagent.p1")

Parity = Literal["N", "E", "O"]
Line = tuple[int, int, Parity]  # (baudrate, bytesize, parity); always one stop bit on P1

# Serial settings to try, in order: DSMR 4/5 (115200 8N1), DSMR 4 as dsmr-parser configures it
# (115200 7E1), DSMR 2.2/3 (9600 7E1).
DETECT_LINES: Final[tuple[Line, ...]] = ((115200, 8, "N"), (115200, 7, "E"), (9600, 7, "E"))


def format_line(line: Line) -> str:
    return f"{line[0]} {line[1]}{line[2]}1"


_REOPEN_MIN: Final = 0.25  # s, first back-off step after the port vanished
_OPEN_LINE: Final[Line] = (115200, 8, "N")
_DATA_FAULTS: Final = ("crc_errors", "parse_errors", "garbage")


class P1Meter:
    """A smart meter's P1 port on a serial line or a TCP socket; a :class:`Driver`.

    ``line`` pins the serial settings (baudrate, bytesize, parity); without it they are
    detected, trying ``detect_lines`` in turn (the SerialLink's own settings are not used).
    """

    def __init__(self, name: str, link: SerialLink | TcpLink, *, spec: str = "auto",
                 line: Line | None = None, silence: float = 30.0,
                 detect_lines: Sequence[Line] = DETECT_LINES, detect_window: float = 12.0,
                 recover_after: float = 60.0, reopen_max: float = 30.0) -> None:
        if line is not None and isinstance(link, TcpLink):
            raise ValueError(f"{link}: line settings apply to a serial port only")
        if not detect_lines:
            raise ValueError("detect_lines is empty")
        self.name = name
        self.link = link
        self.spec = spec
        self.silence = silence
        self.detect_window = detect_window  # one DSMR 4 interval (10 s) and a telegram at 9600
        self.recover_after = recover_after
        self.reopen_max = reopen_max
        self.counters = Counters()
        self.decoder = P1Decoder(spec, self.counters)  # ValueError for an unknown spec
        self.latest: P1Telegram | None = None
        self.last_error: str | None = None
        self._pinned = line
        self._lines = list(detect_lines)
        self.line: Line | None = line  # the serial settings in use (detected or pinned)
        self._latest_at: float | None = None  # loop time of the latest valid telegram
        self._started_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._detecting = False
        self._silent = False
        self._faults: dict[str, float] = {}  # active fault kind -> loop time of last occurrence
        self._announced: tuple[str, Line | None] | None = None
        self._notes_logged: set[str] = set()
        self._garbage_seen = 0
        self._refused: set[Line] = set()  # line settings the serial port refused
        self._accepted: set[Line] = {_OPEN_LINE}
        self._tick = asyncio.Event()
        # A serial link's own line settings are not the ones in use: name the port alone.
        self.where = f"serial {link.port}" if isinstance(link, SerialLink) else str(link)
        self._log = log.bind(source=name, link=self.where)

    # Driver protocol -------------------------------------------------------------------------

    async def open(self) -> None:
        """Start the reader task; never raises for a missing port (the task retries)."""
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            self._started_at = loop.time()
            self._task = asyncio.create_task(self._run(), name=f"p1 {self.name}")

    async def close(self) -> None:
        await cancel(self._task)
        self._task = None

    async def read(self) -> list[Reading]:
        now = asyncio.get_running_loop().time()
        if self.latest is not None and self._latest_at is not None \
                and now - self._latest_at < self.silence:
            return self.latest.readings()
        quantities = tuple(self.latest.values) if self.latest is not None else CORE_QUANTITIES
        detail = self._silence_detail(now)
        return [Reading(q, None, Quality.UNAVAILABLE, detail=detail) for q in quantities]

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name, "driver": "p1", "link": self.where,
            "spec": self.decoder.detected or (None if self.spec == "auto" else self.spec),
            "spec_setting": self.spec,
            "line": format_line(self.line) if self.line is not None else None,
            "line_setting": (None if isinstance(self.link, TcpLink)
                             else "pinned" if self._pinned else "detect"),
            "meter": self.latest.header if self.latest is not None else None,
            "counters": self.counters.as_dict(),
            "last_error": self.last_error,
        }

    # Waiting for the reader (CLI, tests) ------------------------------------------------------

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; it is re-checked whenever the reader made progress
        (bytes received, a telegram, a fault, an open attempt)."""
        while not predicate():
            await self._tick.wait()

    async def next_telegram(self) -> P1Telegram:
        """The next valid telegram to arrive."""
        seen = self.counters.telegrams
        await self.wait_until(lambda: self.counters.telegrams > seen)
        assert self.latest is not None
        return self.latest

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    # The reader task --------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = _REOPEN_MIN
        first = True
        while True:
            try:
                stream = await self._open_stream()
            except OSError as exc:
                self.counters.open_failures += 1
                self._port_fault(str(exc))
                await asyncio.sleep(delay)
                delay = min(2 * delay, self.reopen_max)
                continue
            if not first:
                self.counters.reopens += 1
            first = False
            good_before = self.counters.telegrams
            self.decoder.reset()
            try:
                await self._receive(stream)
            except (StreamClosed, OSError) as exc:
                self._port_fault(str(exc))
            except Exception:  # a bug must not end the reading for good: log it, reopen
                self._log.exception("p1.reader_failed")
                self._port_fault("reader failed (see p1.reader_failed)")
            else:  # a line setting was refused: open afresh at once (not counted as a reopen)
                first = True
                continue
            finally:
                await stream.close()
            if self.counters.telegrams > good_before:
                delay = _REOPEN_MIN
            await asyncio.sleep(delay)  # a port that vanished is not back at once
            delay = min(2 * delay, self.reopen_max)

    async def _open_stream(self) -> ByteStream:
        if isinstance(self.link, TcpLink):
            return await open_stream(self.link)
        # Every serial port takes 8N1; detection then changes the line with set_line.
        return SerialStream.open(self._serial(self._pinned or _OPEN_LINE))

    def _serial(self, line: Line) -> SerialLink:
        assert isinstance(self.link, SerialLink)
        return SerialLink(self.link.port, baudrate=line[0], parity=line[2], stopbits=1,
                          bytesize=line[1])

    async def _receive(self, stream: ByteStream) -> None:
        """Read the opened stream until it closes (StreamClosed); detect the line settings on
        an unpinned serial port. Returns only when the port refused a line setting: pyserial
        then keeps the refused value and fails every later change, so the port is reopened."""
        if not isinstance(stream, SerialStream) or self._pinned is not None:
            self.line = self._pinned
            await self._pump(stream, None)
            return
        order = [self.line] if self.line is not None else []
        order += [ln for ln in self._lines if ln != self.line]
        current = _OPEN_LINE
        for line in order:  # which settings does this port take at all? (once per setting)
            if line == current or line in self._refused or line in self._accepted:
                continue
            try:
                stream.set_line(*line)
            except OSError as exc:  # a pty refuses parity
                self._refused.add(line)
                self._log.debug("p1.line_refused", line=format_line(line), reason=str(exc))
                return
            self._accepted.add(line)
            current = line
        lines = [ln for ln in order if ln not in self._refused]
        if not lines:
            raise OSError(f"{stream.link.port} refuses every P1 line setting "
                          f"({', '.join(format_line(ln) for ln in order)})")
        window = self.detect_window if len(lines) > 1 else None
        while True:  # _pump returns only when a window passed without a valid telegram
            for line in lines:
                if line != current:
                    stream.set_line(*line)  # accepted before; an OSError now is a port fault
                    current = line
                self.line = line
                self.decoder.reset()
                await self._pump(stream, window)

    async def _pump(self, stream: ByteStream, window: float | None) -> None:
        """Receive until the stream closes (StreamClosed). With a ``window``, return if no
        valid telegram arrived within it: the caller then tries the next line setting."""
        loop = asyncio.get_running_loop()
        opened = loop.time()
        self._detecting = window is not None
        while True:
            deadlines = [opened + window] if self._detecting and window is not None else []
            if not self._silent:
                ref = self._latest_at if self._latest_at is not None else self._started_at
                deadlines.append(max(ref, opened) + self.silence)
            try:
                async with asyncio.timeout_at(min(deadlines) if deadlines else None):
                    data = await stream.read()
            except TimeoutError:
                now = loop.time()
                if self._detecting and window is not None and now >= opened + window:
                    return
                self._silence(now)
                if isinstance(stream, TcpStream):  # a half-open connection never says so
                    raise StreamClosed(f"{self.where}: silent for {self.silence:g} s") from None
                continue
            for result in self.decoder.feed(data):
                if isinstance(result, P1Telegram):
                    self._accept(result, loop.time())
                else:
                    self._fault("crc_errors" if isinstance(result, CrcError) else "parse_errors",
                                reason=str(result))
            if self._garbage_seen != self.counters.garbage_bytes:
                self._garbage_seen = self.counters.garbage_bytes
                self._fault("garbage")
            self._notify()

    def _accept(self, telegram: P1Telegram, now: float) -> None:
        self.latest, self._latest_at = telegram, now
        self._detecting = False
        self._silent = False
        self.last_error = None
        line = None if isinstance(self.link, TcpLink) else self.line
        if self._announced != (telegram.spec, line):
            self._announced = (telegram.spec, line)
            self._log.info("p1.detected", spec=telegram.spec, meter=telegram.header,
                           line=format_line(line) if line is not None else None,
                           pinned_spec=self.spec != "auto", pinned_line=self._pinned is not None)
        for note in telegram.notes:
            if note not in self._notes_logged and len(self._notes_logged) < 64:
                self._notes_logged.add(note)
                self._log.warning("p1.value_skipped", reason=note)
        cleared = [k for k, last in self._faults.items()
                   if k not in _DATA_FAULTS or now - last >= self.recover_after]
        if cleared:
            for kind in cleared:
                del self._faults[kind]
            self._log.info("p1.recovered", faults=sorted(cleared), **self.counters.as_dict())

    def _fault(self, kind: str, **facts: object) -> None:
        if self._detecting and kind in _DATA_FAULTS:
            return  # on a line setting under test, garbage is expected: counted, not logged
        now = asyncio.get_running_loop().time()
        if kind not in self._faults:
            self._log.warning(f"p1.{kind}", **facts, **self.counters.as_dict())
        self._faults[kind] = now

    def _port_fault(self, reason: str) -> None:
        self.last_error = reason
        self._fault("unavailable", reason=reason)
        self._notify()

    def _silence(self, now: float) -> None:
        self._silent = True
        self.counters.silences += 1
        self._fault("silent", seconds=self.silence, detail=self._silence_detail(now))
        self._notify()

    def _silence_detail(self, now: float) -> str:
        if self._latest_at is None:
            what = "no valid telegram yet"
        else:
            what = f"no valid telegram for {now - self._latest_at:.1f} s"
        c = self.counters
        seen = [f"{n} {label}" for n, label in ((c.crc_errors, "CRC errors"),
                (c.parse_errors, "unparseable"), (c.garbage_bytes, "garbage bytes")) if n]
        parts = [f"{self.where}: {what}", *seen]
        if self.last_error:
            parts.append(self.last_error)
        return "; ".join(parts)
