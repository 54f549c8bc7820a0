"""OpenTherm frames and the message set: what a frame between thermostat and boiler says. Pure.

Frame layout (OpenTherm Protocol Specification v2.2, "frame format")::

    bit 31 P (even parity over all 32 bits) | 30-28 MSG-TYPE | 27-24 spare | 23-16 DATA-ID
    | 15-8 HB (data value high byte) | 7-0 LB (low byte)

The message set is one table, :data:`DATA_IDS`, with compact type codes documented once below
(the model is ESPHome's ``components/opentherm/schema.py``). How an OpenTherm Gateway's lines
become frames, facts and a timeline is :mod:`drivers.otgw_monitor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Literal

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
