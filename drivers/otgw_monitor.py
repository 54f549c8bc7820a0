"""OpenTherm as an OpenTherm Gateway (OTGW) reports it: lines -> frames -> facts and a timeline.

Pure: no I/O and no clock. :mod:`drivers.otgw` reads the gateway's serial or TCP stream and hands
each line here with the time it arrived. The gateway sits between thermostat (master) and boiler
(slave) and prints every frame it relays as ``<letter><8 hex digits>``:

====== ===========================================================================
letter frame
====== ===========================================================================
``T``  the thermostat's request (master -> gateway)
``B``  the boiler's answer (boiler -> gateway)
``R``  a request the gateway itself sent to the boiler (modified or inserted)
``A``  an answer the gateway itself gave the thermostat
``E``  a frame the gateway received with a parity or stop-bit error
====== ===========================================================================

Only what the boiler answered is a fact about the boiler: slave values come from the READ-ACKs
of ``B`` and ``A`` lines, master values (the thermostat's enable flags, setpoints, room
temperature) from the READ-DATA/WRITE-DATA of ``T`` and ``R`` lines; the outside temperature
may come from either, as a thermostat with its own sensor writes it. A frame whose parity fails,
an ``E`` line, an ``Error 0x`` report and a DATA-INVALID or UNKNOWN-DATAID answer never yield a
value; :class:`Counts` counts them instead. What each frame means is :mod:`drivers.opentherm`.
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from drivers.opentherm import TIMELINE, DataId, Frame, MsgType
from drivers.reading import Event, Value

# -- lines ----------------------------------------------------------------------------------------


class LineKind(StrEnum):
    FRAME = "frame"  # <T|B|R|A><8 hex>
    BAD_FRAME = "bad_frame"  # E<8 hex>: received with a parity or stop-bit error
    BUS_ERROR = "bus_error"  # "Error 0x": the gateway's report of a bus error
    REPLY = "reply"  # "XX: value" or an error code: the answer to a command
    GARBAGE = "garbage"


@dataclass(frozen=True, slots=True)
class Line:
    kind: LineKind
    text: str
    frame: Frame | None = None


_FRAME = re.compile(r"([TBRAE])([0-9A-Fa-f]{8})")
_BUS_ERROR = re.compile(r"Error 0[0-9A-Fa-f]")
# OTGW firmware command replies: "PR: A=OpenTherm Gateway 5.1", "AA: 28", or an error code
# (NG no such command, SE syntax error, BV bad value, OR out of range, NS no space, NF not
# found, OE overrun error).
_REPLY = re.compile(r"[A-Z]{2}: .*|NG|SE|BV|OR|NS|NF|OE")


def classify(text: str) -> Line:
    """What one line from the gateway is; never raises."""
    text = text.strip()
    m = _FRAME.fullmatch(text)
    if m:
        raw = int(m[2], 16)
        if m[1] == "E":
            return Line(LineKind.BAD_FRAME, text)
        return Line(LineKind.FRAME, text, Frame(m[1], raw))
    if _BUS_ERROR.fullmatch(text):
        return Line(LineKind.BUS_ERROR, text)
    if _REPLY.fullmatch(text):
        return Line(LineKind.REPLY, text)
    return Line(LineKind.GARBAGE, text)


class LineBuffer:
    """Bytes in, complete lines out (CR, LF or CRLF); bounded, so noise cannot exhaust memory.

    The stream may have been joined mid-line, so the first line after (re)connecting is dropped
    unless it is a complete line (pyotgw drops a partial first line too).
    """

    MAX_LINE: Final = 128  # the longest OTGW line (a PS=1 summary) is well below this

    def __init__(self) -> None:
        self._buf = bytearray()
        self._joined_mid_line = True

    def feed(self, data: bytes) -> list[str]:
        self._buf += data
        lines: list[str] = []
        while True:
            cut = min((i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0),
                      default=-1)
            if cut < 0:
                break
            raw = bytes(self._buf[:cut])
            del self._buf[: cut + 1]
            if not raw:
                continue
            text = raw.decode("ascii", errors="replace")
            if self._joined_mid_line:
                self._joined_mid_line = False
                if classify(text).kind is LineKind.GARBAGE:
                    continue  # the tail of a line sent before we connected
            lines.append(text)
        if len(self._buf) > self.MAX_LINE:
            lines.append(bytes(self._buf).decode("ascii", errors="replace"))
            self._buf.clear()
        return lines

    def restart(self) -> None:
        """A new connection: forget the partial line; the next one may be a tail."""
        self._buf.clear()
        self._joined_mid_line = True


# -- the monitor ----------------------------------------------------------------------------------


@dataclass
class Counts:
    """What the monitor saw; problems are counted, never turned into values."""

    lines: int = 0
    frames: int = 0  # frames with good parity
    parity_errors: int = 0  # T/B/R/A lines whose 32 bits fail even parity
    bad_frames: int = 0  # E lines
    bus_errors: int = 0  # "Error 0x" lines
    data_invalid: int = 0  # DATA-INVALID answers
    unknown_ids: int = 0  # UNKNOWN-DATAID answers
    misdirected: int = 0  # a master message type on a slave line or the other way round
    replies: int = 0
    garbage: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class OpenThermMonitor:
    """Latest values and a timeline of state changes, from gateway lines and their arrival times.

    ``feed(line, at)`` with ``at`` in Unix seconds. :attr:`values` holds the latest value per
    quantity (from the right side of the link only, see the module docstring); every change of a
    :data:`TIMELINE` quantity, its first value included, becomes an :class:`Event` stamped with
    the arrival time, collected until :meth:`take_events`. ``max_events`` bounds the backlog if
    nobody takes them; :attr:`dropped_events` counts what that discarded.
    """

    max_events: int = 100_000
    values: dict[str, Value] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    unsupported: set[int] = field(default_factory=set)  # data-ids answered UNKNOWN-DATAID
    dropped_events: int = 0
    _events: deque[Event] = field(init=False)

    def __post_init__(self) -> None:
        self._events = deque(maxlen=self.max_events)

    def feed(self, text: str, at: float) -> Line:
        line = classify(text)
        c = self.counts
        c.lines += 1
        if line.kind is LineKind.BAD_FRAME:
            c.bad_frames += 1
        elif line.kind is LineKind.BUS_ERROR:
            c.bus_errors += 1
        elif line.kind is LineKind.REPLY:
            c.replies += 1
        elif line.kind is LineKind.GARBAGE:
            c.garbage += 1
        else:
            assert line.frame is not None
            self._frame(line.frame, at)
        return line

    def _frame(self, frame: Frame, at: float) -> None:
        c = self.counts
        if not frame.parity_ok:
            c.parity_errors += 1
            return
        if not frame.direction_ok:
            c.misdirected += 1
            return
        c.frames += 1
        kind = frame.msg_type
        if kind is MsgType.DATA_INVALID:
            c.data_invalid += 1
            return
        if kind is MsgType.UNKNOWN_DATAID:
            c.unknown_ids += 1
            self.unsupported.add(frame.data_id)
            return
        spec = frame.spec
        if spec is None:
            return
        for quantity, value in _facts(spec, frame):
            self._set(quantity, value, at)

    def _set(self, quantity: str, value: Value, at: float) -> None:
        previous = self.values.get(quantity)
        self.values[quantity] = value
        if quantity in TIMELINE and (previous is None or previous != value):
            if len(self._events) == self._events.maxlen:
                self.dropped_events += 1
            self._events.append(Event(quantity, value, datetime.fromtimestamp(at, UTC)))

    def take_events(self) -> list[Event]:
        events = list(self._events)
        self._events.clear()
        return events

    def forget(self) -> None:
        """Drop the latest values (the link was down): the next value of each is news again."""
        self.values.clear()


def _facts(spec: DataId, frame: Frame) -> list[tuple[str, Value]]:
    """The vocabulary values one well-formed, correctly directed frame establishes."""
    kind = frame.msg_type
    if spec.access == "S":
        # Status exchange: master flags from the READ-DATA's HB, slave flags from the READ-ACK.
        if kind is MsgType.READ_DATA:
            flags = spec.flags(frame.u16, "hb")
        elif kind is MsgType.READ_ACK:
            flags = spec.flags(frame.u16, "lb")
        else:
            return []
        return [(q, flags[bit]) for bit, q in spec.bits if bit in flags]
    wanted = {"R": (MsgType.READ_ACK,), "W": (MsgType.WRITE_DATA,),
              "RW": (MsgType.READ_ACK, MsgType.WRITE_DATA)}[spec.access]
    if kind not in wanted or spec.quantity is None:
        return []
    value = spec.value(frame.u16)
    assert not isinstance(value, tuple), "vocabulary ids carry a single number"
    return [(spec.quantity, value)]
