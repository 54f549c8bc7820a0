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
value; :class:`Counts` counts them instead.

Frame layout (OpenTherm Protocol Specification v2.2, "frame format")::

    bit 31 P (even parity over all 32 bits) | 30-28 MSG-TYPE | 27-24 spare | 23-16 DATA-ID
    | 15-8 HB (data value high byte) | 7-0 LB (low byte)

The message set is one table, :data:`DATA_IDS`, with compact type codes documented once below
(the model is ESPHome's ``components/opentherm/schema.py``).
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Final, Literal

from drivers.reading import Event, Value

# -- frames ---------------------------------------------------------------------------------------


class MsgType(IntEnum):
    """MSG-TYPE, bits 30-28: 0-3 master to slave, 4-7 slave to master (spec: message types)."""

    READ_DATA = 0
    WRITE_DATA = 1
    INVALID_DATA = 2
    RESERVED = 3
    READ_ACK = 4
    WRITE_ACK = 5
    DATA_INVALID = 6
    UNKNOWN_DATAID = 7

    @property
    def label(self) -> str:
        """The spec's spelling: ``READ-ACK``."""
        return self.name.replace("_", "-")

    @property
    def from_master(self) -> bool:
        return self < MsgType.READ_ACK


Side = Literal["master", "slave"]

# Which side wrote a line: T and R carry master requests, B and A slave answers.
SOURCE_SIDE: Final[dict[str, Side]] = {"T": "master", "R": "master", "B": "slave", "A": "slave"}
SOURCE_NAMES: Final = {"T": "thermostat", "B": "boiler", "R": "gateway to boiler",
                       "A": "gateway to thermostat", "E": "bad frame"}


def parity_ok(raw: int) -> bool:
    """Even parity over all 32 bits, parity bit included (the spec's P bit makes it even)."""
    return raw.bit_count() % 2 == 0


def with_parity(raw: int) -> int:
    """``raw`` (bit 31 ignored) with the parity bit set so that the frame's parity is even."""
    body = raw & 0x7FFF_FFFF
    return body | (0x8000_0000 if body.bit_count() % 2 else 0)


@dataclass(frozen=True, slots=True)
class Frame:
    """One 32-bit OpenTherm frame as the gateway reported it."""

    source: str  # T, B, R or A
    raw: int

    @property
    def msg_type(self) -> MsgType:
        return MsgType((self.raw >> 28) & 0x7)

    @property
    def data_id(self) -> int:
        return (self.raw >> 16) & 0xFF

    @property
    def hb(self) -> int:
        return (self.raw >> 8) & 0xFF

    @property
    def lb(self) -> int:
        return self.raw & 0xFF

    @property
    def u16(self) -> int:
        return self.raw & 0xFFFF

    @property
    def parity_ok(self) -> bool:
        return parity_ok(self.raw)

    @property
    def side(self) -> Side:
        return SOURCE_SIDE[self.source]

    @property
    def direction_ok(self) -> bool:
        """T/R lines carry master message types, B/A lines slave message types."""
        return self.msg_type.from_master == (self.side == "master")

    @property
    def spec(self) -> DataId | None:
        return DATA_IDS.get(self.data_id)

    @property
    def carries_value(self) -> bool:
        """Whether the data field means anything: a READ-DATA asks with an empty one (except
        the status exchange's master flags), DATA-INVALID and UNKNOWN-DATAID just echo it."""
        kind = self.msg_type
        if kind is MsgType.READ_DATA:
            spec = self.spec
            return spec is not None and spec.access == "S"
        return kind in (MsgType.WRITE_DATA, MsgType.READ_ACK, MsgType.WRITE_ACK)

    @property
    def text(self) -> str:
        return f"{self.source}{self.raw:08X}"

    @classmethod
    def build(cls, source: str, msg_type: MsgType, data_id: int, value: int) -> Frame:
        """A frame with correct parity (for the bench's gateway emulator and for tests)."""
        body = (int(msg_type) << 28) | ((data_id & 0xFF) << 16) | (value & 0xFFFF)
        return cls(source, with_parity(body))


# -- the message table ----------------------------------------------------------------------------
#
# Type codes (the spec's data types). A byte pair is written "HB/LB", a 16-bit type alone:
#   flag8   eight single-bit flags; bit 0 is the least significant. Named bits are listed in
#           ``hb``/``lb`` (bit 0 first, "" for a reserved bit).
#   u8, s8  unsigned / two's-complement signed byte
#   u16     unsigned 16-bit integer over HB:LB
#   s16     two's-complement signed 16-bit integer over HB:LB
#   f88     signed fixed point with 8 fractional bits: s16 / 256 (48.5 = 0x3080, -6.5 = 0xF980)
#
# Access (the spec's "Msg" column, who supplies the value):
#   R  the master reads it: the slave's READ-ACK carries it (B or A lines)
#   W  the master writes it: the master's WRITE-DATA carries it (T or R lines)
#   RW either: a READ-ACK from the slave or a WRITE-DATA from the master
#   S  status exchange (ids 0, 70): the master's flags ride in the HB of its READ-DATA, the
#      slave's flags in the LB of the READ-ACK.
#
# ``quantity`` is the vocabulary quantity of the whole value; ``bits`` maps named flag bits to
# vocabulary quantities. Ids without either are decoded for the technician only.

TYPES: Final = frozenset({"flag8/flag8", "flag8/u8", "u8/u8", "s8/s8", "u16", "s16", "f88"})
Access = Literal["R", "W", "RW", "S"]


@dataclass(frozen=True, slots=True)
class DataId:
    id: int
    name: str
    type: str
    access: Access
    quantity: str | None = None
    hb: tuple[str, ...] = ()
    lb: tuple[str, ...] = ()
    bits: tuple[tuple[str, str], ...] = ()  # (bit name, vocabulary quantity)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"data-id {self.id}: unknown type code {self.type!r}")
        if self.bits and self.access != "S":
            raise ValueError(f"data-id {self.id}: flag quantities are mapped for status ids only")

    def value(self, u16: int) -> float | int | tuple[int, int]:
        """The data value: a number for 16-bit types, ``(HB, LB)`` for byte pairs."""
        if self.type == "f88":
            return _s16(u16) / 256
        if self.type == "u16":
            return u16
        if self.type == "s16":
            return _s16(u16)
        hb, lb = u16 >> 8, u16 & 0xFF
        if self.type == "s8/s8":
            return _s8(hb), _s8(lb)
        return hb, lb

    def flags(self, u16: int, byte: Literal["hb", "lb"]) -> dict[str, bool]:
        """The named flag bits of one byte (empty unless that byte is a flag8)."""
        names = self.hb if byte == "hb" else self.lb
        bits = u16 >> 8 if byte == "hb" else u16 & 0xFF
        return {name: bool(bits >> i & 1) for i, name in enumerate(names) if name}

    def as_json(self, u16: int) -> float | int | dict[str, object]:
        """The value for machine-readable output: a number, or ``{"hb": …, "lb": …}`` whose
        flag bytes are ``{bit name: bool}`` (all eight bits as ``bit<n>`` when none is named)."""
        if self.type in ("f88", "u16", "s16"):
            value = self.value(u16)
            assert not isinstance(value, tuple)
            return value
        hb_code, lb_code = self.type.split("/")
        parts: tuple[tuple[Literal["hb", "lb"], str, int], ...] = (
            ("hb", hb_code, u16 >> 8), ("lb", lb_code, u16 & 0xFF))
        out: dict[str, object] = {}
        for byte, code, raw in parts:
            if code == "flag8":
                named = self.flags(u16, byte)
                out[byte] = named or {f"bit{i}": bool(raw >> i & 1) for i in range(8)}
            else:
                out[byte] = _s8(raw) if code == "s8" else raw
        return out

    def show(self, u16: int) -> str:
        """The value as a technician reads it: ``48.50``, ``ch_enable dhw_enable / 00000000``
        (a flag byte without a set named bit shows its eight bits)."""
        if self.type == "f88":
            return f"{_s16(u16) / 256:.2f}"
        if self.type in ("u16", "s16"):
            return str(self.value(u16))
        hb_code, lb_code = self.type.split("/")
        return " / ".join((self._show_byte("hb", hb_code, u16 >> 8, u16),
                           self._show_byte("lb", lb_code, u16 & 0xFF, u16)))

    def _show_byte(self, byte: Literal["hb", "lb"], code: str, raw: int, u16: int) -> str:
        if code == "flag8":
            on = [name for name, value in self.flags(u16, byte).items() if value]
            return " ".join(on) if on else f"{raw:08b}"
        return str(_s8(raw) if code == "s8" else raw)


def _s16(u16: int) -> int:
    return u16 - 0x10000 if u16 & 0x8000 else u16


def _s8(u8: int) -> int:
    return u8 - 0x100 if u8 & 0x80 else u8


_MASTER_STATUS = ("ch_enable", "dhw_enable", "cooling_enable", "otc_active", "ch2_enable")
_SLAVE_STATUS = ("fault", "ch_active", "dhw_active", "flame", "cooling_active", "ch2_active",
                 "diagnostic")

# OpenTherm Protocol Specification v2.2, data-id overview map and data classes; the Msg column
# checked against v4.2 (id 27 may be written by a thermostat with its own outdoor sensor).
DATA_IDS: Final[dict[int, DataId]] = {d.id: d for d in (
    DataId(0, "status", "flag8/flag8", "S", hb=_MASTER_STATUS, lb=_SLAVE_STATUS, bits=(
        ("ch_enable", "boiler.ch_enabled"), ("dhw_enable", "boiler.dhw_enabled"),
        ("fault", "boiler.fault"), ("ch_active", "boiler.ch_active"),
        ("dhw_active", "boiler.dhw_active"), ("flame", "boiler.flame"))),
    DataId(1, "control_setpoint", "f88", "W", "boiler.control_setpoint"),
    DataId(2, "master_config", "flag8/u8", "W"),
    DataId(3, "slave_config", "flag8/u8", "R", hb=(
        "dhw_present", "on_off_control", "cooling_supported", "dhw_storage",
        "master_low_off_pump", "ch2_present")),
    DataId(4, "command", "u8/u8", "W"),
    DataId(5, "fault_flags", "flag8/u8", "R", hb=(
        "service_request", "lockout_reset", "low_water_pressure", "gas_flame_fault",
        "air_pressure_fault", "water_overtemp")),
    DataId(6, "remote_parameter_flags", "flag8/flag8", "R", hb=("dhw_setpoint", "max_ch_setpoint"),
           lb=("dhw_setpoint", "max_ch_setpoint")),
    DataId(7, "cooling_control", "f88", "W"),
    DataId(8, "control_setpoint_ch2", "f88", "W"),
    DataId(9, "remote_override_setpoint", "f88", "R"),
    DataId(10, "tsp_count", "u8/u8", "R"),
    DataId(11, "tsp_entry", "u8/u8", "R"),
    DataId(12, "fault_buffer_size", "u8/u8", "R"),
    DataId(13, "fault_buffer_entry", "u8/u8", "R"),
    DataId(14, "max_modulation_setting", "f88", "W"),
    DataId(15, "max_capacity_min_modulation", "u8/u8", "R"),
    DataId(16, "room_setpoint", "f88", "W", "room.setpoint"),
    DataId(17, "relative_modulation", "f88", "R", "boiler.modulation"),
    DataId(18, "ch_pressure", "f88", "R", "boiler.pressure"),
    DataId(19, "dhw_flow", "f88", "R", "boiler.dhw_flow"),
    DataId(20, "day_time", "u8/u8", "W"),
    DataId(21, "date", "u8/u8", "W"),
    DataId(22, "year", "u16", "W"),
    DataId(23, "room_setpoint_ch2", "f88", "W"),
    DataId(24, "room_temp", "f88", "W", "room.temp"),
    DataId(25, "boiler_water_temp", "f88", "R", "boiler.supply_temp"),
    DataId(26, "dhw_temp", "f88", "R", "boiler.dhw_temp"),
    DataId(27, "outside_temp", "f88", "RW", "boiler.outdoor_temp"),
    DataId(28, "return_water_temp", "f88", "R", "boiler.return_temp"),
    DataId(29, "solar_storage_temp", "f88", "R"),
    DataId(30, "solar_collector_temp", "f88", "R"),
    DataId(31, "flow_temp_ch2", "f88", "R"),
    DataId(32, "dhw2_temp", "f88", "R"),
    DataId(33, "exhaust_temp", "s16", "R"),
    DataId(48, "dhw_setpoint_bounds", "s8/s8", "R"),
    DataId(49, "max_ch_setpoint_bounds", "s8/s8", "R"),
    DataId(50, "otc_ratio_bounds", "s8/s8", "R"),
    DataId(56, "dhw_setpoint", "f88", "R"),
    DataId(57, "max_ch_setpoint", "f88", "R"),
    DataId(58, "otc_ratio", "f88", "R"),
    DataId(70, "ventilation_status", "flag8/flag8", "S"),
    DataId(100, "remote_override_function", "flag8/u8", "R"),
    DataId(115, "oem_diagnostic_code", "u16", "R"),
    DataId(116, "burner_starts", "u16", "R", "boiler.burner_starts"),
    DataId(117, "ch_pump_starts", "u16", "R"),
    DataId(118, "dhw_pump_starts", "u16", "R"),
    DataId(119, "dhw_burner_starts", "u16", "R", "boiler.dhw_burner_starts"),
    DataId(120, "burner_hours", "u16", "R", "boiler.burner_hours"),
    DataId(121, "ch_pump_hours", "u16", "R"),
    DataId(122, "dhw_pump_hours", "u16", "R"),
    DataId(123, "dhw_burner_hours", "u16", "R", "boiler.dhw_burner_hours"),
    DataId(124, "master_opentherm_version", "f88", "W"),
    DataId(125, "slave_opentherm_version", "f88", "R"),
    DataId(126, "master_product_version", "u8/u8", "W"),
    DataId(127, "slave_product_version", "u8/u8", "R"),
)}


def _quantity_sides() -> dict[str, Side]:
    sides: dict[str, Side] = {}
    for d in DATA_IDS.values():
        if d.quantity is not None:
            sides[d.quantity] = "master" if d.access == "W" else "slave"
        for bit, quantity in d.bits:
            sides[quantity] = "master" if bit in d.hb and d.access == "S" else "slave"
    return sides


# Every quantity this module can produce, and which side of the link supplies it.
QUANTITY_SIDES: Final[dict[str, Side]] = _quantity_sides()

# The state changes a ledger needs to apportion gas between heating and hot water: the burner,
# the mode it burns for, and the modulation that sets the gas rate.
TIMELINE: Final = ("boiler.flame", "boiler.ch_active", "boiler.dhw_active", "boiler.modulation")


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
