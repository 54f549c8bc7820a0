"""M-Bus frames (EN 13757-2 link layer) and heat meter data (EN 13757-3 application layer): pure.

The only module that imports pyMeterBus. Bytes in, records out; no I/O and no clock (the line,
its transactions and scanning are :mod:`drivers.mbus`). pyMeterBus builds the request frames
(SND_NKE, REQ_UD2, the secondary-address select) and splits an RSP_UD into its data records
(DIF/DIFE/VIF/VIFE, storage number, tariff, subunit). Everything else is ours, for reasons worth
knowing:

* Framing is checked here before pyMeterBus sees a byte: start and stop bytes, both L fields and
  the checksum. A frame that fails any of them never yields a value.
* Values are scaled by :data:`VIF_QUANTITIES` from the raw integer or BCD number, exactly, in
  :class:`~decimal.Decimal`. pyMeterBus multiplies by float factors (its volume of the Kamstrup
  frame is ``Decimal('561.0800000000000409…')``) and has no unit for the GJ energy VIFs
  (``FB 08``/``FB 09`` are "Reserved" in its table).
* Only current values feed the vocabulary: instantaneous function, storage 0, tariff 0,
  subunit 0, and a VIF without extension. Historic (storage >= 1), tariff, pulse-input
  (subunit >= 1) and maximum values are decoded for the technician and marked as ignored.
  A meter that spreads its data over several telegrams (DIF 0x1F) is read from the first one,
  where heat meters put their current values.

Addresses: primary 0-250; secondary 16 hex digits (8 BCD digits of the identification number,
manufacturer, version, medium), where an ``F`` digit of a mask is a wildcard.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from decimal import Context, Decimal
from types import ModuleType
from typing import Any, Final

from drivers.units import factor
from drivers.vocabulary import VOCABULARY


def _import_meterbus() -> ModuleType:
    """``import meterbus``, undoing its side effect on logging.

    pyMeterBus 0.8.5 calls ``logging.basicConfig(level=logging.INFO)`` at import time
    (meterbus/serial.py): it installs a root handler and turns the root logger to INFO for every
    library, before (or behind the back of) the agent's own logging set-up. Restore the root
    logger's handlers and level as they were.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        import meterbus
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    module: ModuleType = meterbus
    return module


meterbus = _import_meterbus()

# -- frames (EN 13757-2, link layer) -------------------------------------------------------------

ACK: Final = 0xE5
SHORT_START: Final = 0x10
LONG_START: Final = 0x68
STOP: Final = 0x16
CI_RSP_UD: Final = (0x72, 0x76)  # variable data response, LSB / MSB first (EN 13757-3 CI codes)
CI_ERROR: Final = 0x70  # report of an application error
ADDRESS_SELECTED: Final = 0xFD  # 253: the slave chosen by a secondary-address select
MAX_PRIMARY: Final = 250
MAX_FRAME: Final = 255 + 6


class FrameError(ValueError):
    """Bytes that are not one well-formed M-Bus frame (start, length, checksum or stop wrong)."""


def frame_length(head: bytes) -> int | None:
    """The length of the frame that starts ``head`` (None: more bytes needed); FrameError."""
    if not head:
        return None
    first = head[0]
    if first == ACK:
        return 1
    if first == SHORT_START:
        return 5
    if first != LONG_START:
        raise FrameError(f"0x{first:02X} starts no M-Bus frame")
    if len(head) < 4:
        return None
    if head[1] != head[2] or head[3] != LONG_START:
        raise FrameError(f"long frame header {head[:4].hex(' ').upper()} is not 68 L L 68")
    if head[1] < 3:
        raise FrameError(f"long frame with L={head[1]} (at least C, A and CI are needed)")
    return head[1] + 6


def check_frame(frame: bytes) -> None:
    """Raise :class:`FrameError` unless ``frame`` is exactly one well-formed frame."""
    need = frame_length(frame)
    if need is None or len(frame) != need:
        raise FrameError(f"length: got {len(frame)} bytes, the header announces {need}")
    if need == 1:
        return
    if frame[-1] != STOP:
        raise FrameError(f"stop byte is 0x{frame[-1]:02X}, not 0x16")
    body = frame[1:3] if frame[0] == SHORT_START else frame[4:-2]
    if sum(body) & 0xFF != frame[-2]:
        raise FrameError(f"checksum: frame says 0x{frame[-2]:02X}, bytes sum to "
                         f"0x{sum(body) & 0xFF:02X}")


class _Sink:
    """Collects what pyMeterBus's send_* helpers write: they are its frame builders."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytearray) -> None:
        self.data += bytes(data)


def snd_nke(address: int) -> bytes:
    """SND_NKE (C=0x40): link reset; the slave answers E5."""
    sink = _Sink()
    meterbus.send_ping_frame(sink, address)
    return sink.data


def req_ud2(address: int) -> bytes:
    """REQ_UD2 (C=0x5B): request class 2 data; the slave answers RSP_UD."""
    sink = _Sink()
    meterbus.send_request_frame(sink, address)
    return sink.data


def select_frame(secondary: str) -> bytes:
    """SND_UD (C=0x73) to 0xFD with CI=0x52 and the secondary address (mask) to select."""
    sink = _Sink()
    meterbus.send_select_frame(sink, secondary)
    return sink.data


# -- addresses ------------------------------------------------------------------------------------

_SECONDARY = re.compile(r"[0-9F]{8}[0-9A-F]{8}")


def parse_address(text: str) -> int | str:
    """A primary address (``"5"``) or a secondary address (``"12345678FFFFFFFF"``); ValueError."""
    text = text.strip()
    if text.isdigit():
        primary = int(text)
        if not 0 <= primary <= MAX_PRIMARY:
            raise ValueError(f"primary address {primary} is outside 0..{MAX_PRIMARY}")
        return primary
    secondary = text.upper()
    if not _SECONDARY.fullmatch(secondary):
        raise ValueError(f"{text!r} is neither a primary address (0..{MAX_PRIMARY}) nor a "
                         "secondary address (8 ID digits 0-9 or F, then 8 hex digits)")
    return secondary


def matches(secondary: str, mask: str) -> bool:
    """Whether ``secondary`` fits ``mask``, where an ``F`` digit of the mask matches anything."""
    return len(secondary) == len(mask) and all(
        m in ("F", s) for s, m in zip(secondary.upper(), mask.upper(), strict=True))


# -- decoding an RSP_UD (EN 13757-3) --------------------------------------------------------------

MEDIA: Final = {  # EN 13757-3 medium codes of the fixed header
    0x00: "other", 0x01: "oil", 0x02: "electricity", 0x03: "gas",
    0x04: "heat (outlet)", 0x05: "steam", 0x06: "warm water", 0x07: "water",
    0x08: "heat cost allocator", 0x09: "compressed air", 0x0A: "cooling (outlet)",
    0x0B: "cooling (inlet)", 0x0C: "heat (inlet)", 0x0D: "heat / cooling",
    0x0E: "bus / system component", 0x0F: "unknown", 0x15: "hot water", 0x16: "cold water",
    0x17: "dual water",
}
HEAT_MEDIA: Final = frozenset({0x04, 0x0C, 0x0D})
# Status byte of the fixed header (EN 13757-3); bits 5-7 are manufacturer specific.
_STATUS_APPLICATION = {1: "application busy", 2: "application error", 3: "abnormal condition"}
STATUS_POWER_LOW: Final = 0x04
STATUS_PERMANENT_ERROR: Final = 0x08
STATUS_TEMPORARY_ERROR: Final = 0x10
# EN 13757-3 application error codes: the data byte of a CI=0x70 report.
_APPLICATION_ERRORS = {0: "unspecified error", 1: "unimplemented CI field",
                       2: "buffer too long, truncated", 3: "too many records",
                       4: "premature end of record", 5: "more than 10 DIFEs",
                       6: "more than 10 VIFEs", 8: "application too busy", 9: "too many readouts"}
_FUNCTIONS = ("instantaneous", "maximum", "minimum", "during error")  # DIF bits 4-5
_UNIT_TEXT = {"m^3": "m³", "m^3/h": "m³/h", "m^3/min": "m³/min", "m^3/s": "m³/s", "C": "°C",
              "seconds": "s", "none": "", "None": ""}  # pyMeterBus's unit strings, for display

_Vif = tuple[str, str, int]  # (vocabulary quantity, unit of the raw value, decimal exponent)


def _span(first: int, count: int, quantity: str, unit: str, exponent: int
          ) -> dict[tuple[int, ...], _Vif]:
    return {(first + n,): (quantity, unit, exponent + n) for n in range(count)}


# The VIBs of a heat meter's current values: VIF bytes -> (quantity, unit, exponent), so that the
# value is raw · 10^exponent unit. EN 13757-3 primary VIF codes (E = extension bit 0) and the
# VIF extension table that follows VIF 0xFB.
VIF_QUANTITIES: Final[dict[tuple[int, ...], _Vif]] = {
    **_span(0x00, 8, "heatmeter.energy", "Wh", -3),  # E000 0nnn energy 10^(nnn-3) Wh
    **_span(0x08, 8, "heatmeter.energy", "MJ", -6),  # E000 1nnn energy 10^nnn J
    **_span(0x10, 8, "heatmeter.volume", "m³", -6),  # E001 0nnn volume 10^(nnn-6) m³
    **_span(0x28, 8, "heatmeter.power", "W", -3),  # E010 1nnn power 10^(nnn-3) W
    **_span(0x38, 8, "heatmeter.flow", "m³/h", -6),  # E011 1nnn volume flow 10^(nnn-6) m³/h
    **_span(0x40, 8, "heatmeter.flow", "l/min", -4),  # E100 0nnn volume flow 10^(nnn-7) m³/min
    **_span(0x48, 8, "heatmeter.flow", "l/s", -6),  # E100 1nnn volume flow 10^(nnn-9) m³/s
    **_span(0x58, 4, "heatmeter.supply_temp", "°C", -3),  # E101 10nn flow temp. 10^(nn-3) °C
    **_span(0x5C, 4, "heatmeter.return_temp", "°C", -3),  # E101 11nn return temp. 10^(nn-3) °C
    (0xFB, 0x00): ("heatmeter.energy", "MWh", -1),  # FB E000 000n energy 10^(n-1) MWh
    (0xFB, 0x01): ("heatmeter.energy", "MWh", 0),
    (0xFB, 0x08): ("heatmeter.energy", "GJ", -1),  # FB E000 100n energy 10^(n-1) GJ
    (0xFB, 0x09): ("heatmeter.energy", "GJ", 0),
    (0xFB, 0x10): ("heatmeter.volume", "m³", 2),  # FB E001 000n volume 10^(n+2) m³
    (0xFB, 0x11): ("heatmeter.volume", "m³", 3),
    (0xFB, 0x28): ("heatmeter.power", "MW", -1),  # FB E010 100n power 10^(n-1) MW
    (0xFB, 0x29): ("heatmeter.power", "MW", 0),
}
HEATMETER_QUANTITIES: Final = tuple(sorted({v[0] for v in VIF_QUANTITIES.values()}))


class DecodeError(ValueError):
    """A well-framed answer whose content is not a readable RSP_UD."""


class ApplicationError(DecodeError):
    """The meter answered with an application error report (CI=0x70)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One data record, for the technician and for the vocabulary.

    ``value`` and ``unit`` are as the meter states them (for records we do not scale, as
    pyMeterBus decodes them). ``quantity`` is set on the one record that supplies a vocabulary
    quantity, with ``reading`` in the vocabulary's unit (None if the record holds no number).
    ``note`` says why a record of a vocabulary kind is not used, or what is wrong with it.
    """

    index: int
    dib: str  # DIF and DIFEs, hex
    vib: str  # VIF and VIFEs, hex
    description: str
    function: str
    storage: int
    tariff: int
    subunit: int
    value: str
    unit: str
    quantity: str | None = None
    reading: float | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded RSP_UD: the fixed header and every record."""

    address: int  # the A field of the answer
    ident: str  # identification number, 8 digits
    manufacturer: str  # three letters, the EN 62056-21 manufacturer flag
    manufacturer_code: int  # the 16-bit field the letters come from
    version: int
    medium: int
    access: int  # access number, counts the meter's answers
    status: int
    records: tuple[Record, ...]

    @property
    def secondary_address(self) -> str:
        """ID, manufacturer (low byte first, as on the wire), version, medium: what a select
        frame carries."""
        code = self.manufacturer_code
        return f"{self.ident}{code & 0xFF:02X}{code >> 8:02X}{self.version:02X}{self.medium:02X}"

    @property
    def medium_name(self) -> str:
        return MEDIA.get(self.medium, f"reserved (0x{self.medium:02X})")

    @property
    def status_text(self) -> str:
        """The status byte in words (``"ok"`` when nothing is flagged)."""
        words = []
        if self.status & 0x03:
            words.append(_STATUS_APPLICATION[self.status & 0x03])
        if self.status & STATUS_POWER_LOW:
            words.append("power low")
        if self.status & STATUS_PERMANENT_ERROR:
            words.append("permanent error")
        if self.status & STATUS_TEMPORARY_ERROR:
            words.append("temporary error")
        if self.status & 0xE0:
            words.append(f"manufacturer flags 0x{self.status & 0xE0:02X}")
        return ", ".join(words) or "ok"

    @property
    def values(self) -> dict[str, float]:
        """The vocabulary values this answer supplies."""
        return {r.quantity: r.reading for r in self.records
                if r.quantity is not None and r.reading is not None}

    @property
    def invalid(self) -> dict[str, str]:
        """Vocabulary quantities whose record holds no number, and why."""
        return {r.quantity: r.note or "no number" for r in self.records
                if r.quantity is not None and r.reading is None}


def decode_response(frame: bytes) -> Response:
    """Check and decode an RSP_UD long frame; FrameError, ApplicationError or DecodeError."""
    check_frame(frame)
    if frame[0] != LONG_START:
        raise FrameError(f"expected an RSP_UD long frame, got {frame[:1].hex().upper()}")
    c_field, ci = frame[4], frame[6]
    if c_field & 0xCF != 0x08:  # RSP_UD: 0000 1000 plus the ACD and DFC bits
        raise DecodeError(f"C field 0x{c_field:02X} is not an RSP_UD")
    if ci == CI_ERROR:
        code = frame[7] if len(frame) > 9 else 0
        raise ApplicationError(f"meter reports an application error: "
                               f"{_APPLICATION_ERRORS.get(code, f'code {code}')}")
    if ci not in CI_RSP_UD:
        raise DecodeError(f"CI 0x{ci:02X} is not a variable data response (0x72)")
    if frame[1] < 15:
        raise DecodeError(f"L={frame[1]} is too short for the 12-byte fixed data header")
    try:
        telegram = meterbus.TelegramLong(list(frame))
        return _response(frame[5], telegram)
    except DecodeError:
        raise
    except Exception as exc:  # pyMeterBus raises IndexError, KeyError, ... on malformed records
        raise DecodeError(f"records cannot be decoded: {type(exc).__name__}: {exc}") from None


def _response(address: int, telegram: Any) -> Response:
    header = telegram.body.bodyHeader
    records: list[Record] = []
    used: dict[str, int] = {}
    for index, rec in enumerate(telegram.records):
        record = _record(index, rec)
        quantity = record.quantity
        if quantity is not None:
            if quantity in used:
                record = dataclasses.replace(record, quantity=None, reading=None,
                                             note=f"duplicate of record {used[quantity]}")
            else:
                used[quantity] = index
        records.append(record)
    low, high = header.manufacturer_field.parts  # low byte first (pyMeterBus orders it so)
    return Response(
        address=address,
        ident="".join(f"{b:02X}" for b in header.id_nr),
        manufacturer=str(header.manufacturer_field.decodeManufacturer),
        manufacturer_code=int(low) | int(high) << 8,
        version=int(header.version_field.parts[0]),
        medium=int(header.measure_medium_field.parts[0]),
        access=int(header.acc_nr_field.parts[0]),
        status=int(header.status_field.parts[0]),
        records=tuple(records))


def _record(index: int, rec: Any) -> Record:
    dib: list[int] = list(rec.dib.parts)
    vib: list[int] = list(rec.vib.parts)
    dif = dib[0]
    special = dif & 0x0F == 0x0F  # manufacturer specific data / more records follow
    storage, tariff, subunit = rec.dib.parse_dife()
    function = "manufacturer specific" if special else _FUNCTIONS[(dif >> 4) & 0x03]
    description, value, unit = _as_stated(rec)
    if special:
        description = "more records follow" if dif == 0x1F else "manufacturer specific data"
    base = Record(index=index, dib=bytes(dib).hex(" ").upper(), vib=bytes(vib).hex(" ").upper(),
                  description=description, function=function, storage=storage,
                  tariff=tariff or 0, subunit=subunit or 0, value=value, unit=unit)
    if special:
        return base
    vif = VIF_QUANTITIES.get(tuple(vib))
    if vif is None:
        extended = vib and vib[0] not in (0xFB, 0xFD) and vib[0] & 0x80
        if extended and (vib[0] & 0x7F,) in VIF_QUANTITIES:
            vife = bytes(vib[1:]).hex(" ").upper()
            return dataclasses.replace(base, note=f"VIF extension {vife} changes its meaning")
        return base
    quantity, vif_unit, exponent = vif
    why_not = _why_not_current(base)
    if why_not is not None:
        return dataclasses.replace(base, note=why_not)
    raw, problem = _raw_number(rec, dif)
    if raw is None:
        return dataclasses.replace(base, quantity=quantity, note=problem)
    scaled = raw.scaleb(exponent)
    reading = _to_vocabulary(scaled, vif_unit, exponent, quantity)
    return dataclasses.replace(base, value=_plain(scaled), unit=vif_unit, quantity=quantity,
                               reading=reading)


def _why_not_current(record: Record) -> str | None:
    if record.function != "instantaneous":
        return f"{record.function} value"
    if record.storage:
        return f"historic value (storage {record.storage})"
    if record.tariff:
        return f"tariff {record.tariff}"
    if record.subunit:
        return f"subunit {record.subunit} (e.g. a pulse input)"
    return None


def _raw_number(rec: Any, dif: int) -> tuple[Decimal | None, str]:
    """The record's number before scaling (the DIF's data field coding, EN 13757-3)."""
    coding = dif & 0x0F
    parts: list[int] = list(rec.dataField.parts)
    sizes = {0x1: 1, 0x2: 2, 0x3: 3, 0x4: 4, 0x5: 4, 0x6: 6, 0x7: 8,
             0x9: 1, 0xA: 2, 0xB: 3, 0xC: 4, 0xE: 6}
    if coding not in sizes:
        return None, f"data field coding 0x{coding:X} holds no number"
    if len(parts) != sizes[coding]:
        return None, f"data field has {len(parts)} of {sizes[coding]} bytes"
    if coding == 0x5:
        real = float(rec.dataField.decodeReal)
        if not math.isfinite(real):
            return None, f"32-bit real {real} is not a number"
        return Decimal(f"{real:.7g}"), ""  # a 32-bit real carries 7 significant digits
    if coding in (0x9, 0xA, 0xB, 0xC, 0xE):
        nibbles = [n for b in parts for n in (b & 0x0F, b >> 4)]
        # A top digit 0xF is a minus sign (Type A); any other non-decimal digit flags an error.
        if any(n > 9 for n in nibbles[:-1]) or nibbles[-1] not in (*range(10), 0xF):
            return None, f"BCD value {bytes(parts[::-1]).hex().upper()} has non-decimal digits"
        return Decimal(int(rec.dataField.decodeBCD)), ""
    return Decimal(int(rec.dataField.decodeInt)), ""


def _as_stated(rec: Any) -> tuple[str, str, str]:
    """pyMeterBus's own description, value and unit of a record (for the technician)."""
    try:
        info = rec.interpreted
        description = str(info["type"]).split(".")[-1]
        value, unit = info["value"], rec.unit
    except Exception as exc:  # an odd record must not hide the others
        return "undecodable", f"({type(exc).__name__})", ""
    if isinstance(value, Decimal | float):
        value = _plain(Context(prec=12).create_decimal(value))
    unit_text = _UNIT_TEXT.get(str(unit), str(unit)) if unit is not None else ""
    return description, "" if value is None else str(value), unit_text


def _plain(value: Decimal) -> str:
    """``561.08``, ``37351000``: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def _to_vocabulary(value: Decimal, unit: str, exponent: int, quantity: str) -> float:
    """Convert with :func:`drivers.units.factor`, rounded to 3 digits below the resolution.

    The meter's resolution is 10^exponent in its unit; float arithmetic in the conversion adds
    noise far below that, which the rounding removes (0.543 m³/h -> 9.05 l/min, not
    9.050000000000001).
    """
    canonical = VOCABULARY[quantity].unit
    f = factor(unit, canonical)
    resolution = 10.0 ** exponent * f
    places = max(0, 3 - math.floor(math.log10(resolution)))
    return round(float(value) * f, places)
