"""DSMR telegrams of a smart meter's P1 port -> readings in the vocabulary: pure.

The only module that imports dsmr-parser; no I/O and no clock (the port is :mod:`drivers.p1`).
:class:`TelegramBuffer` cuts complete telegrams (``/`` ... ``!CRC`` CR LF) out of arbitrary byte
chunks, skipping garbage and abandoning truncated telegrams; :func:`detect_spec` names the DSMR
variant from a telegram's own contents; :func:`decode` parses one telegram with dsmr-parser's
specification for that variant (which checks the CRC) and maps it onto the vocabulary as a
:class:`P1Telegram`. :class:`P1Decoder` strings these together with counters; it is what the
benchmark times ("telegram to readings").

Rules that keep a wrong number out of the ledger:

* A telegram that carries a CRC is always checked against it, whatever the configured
  specification, and never yields a value when it fails (DSMR 4+: CRC16/ARC over ``/`` ... ``!``).
* A telegram without a CRC is accepted only for the variants that have none (DSMR 2.2/3, the
  EasyMeter Q3D), only when it is plain printable ASCII, only when it has none of the lines that
  DSMR 4+ meters send (``1-3:0.2.8`` version, ``0-0:1.0.0`` timestamp, ``0-0:96.1.4`` e-MUCS
  version: such a telegram lost its CRC on the way), and only when every line parses.
* A telegram without any electricity import register is not a meter reading.

Gas (and water, district heat) values carry the M-Bus device's own capture timestamp in
``Reading.measured_at``. **Gas de-duplication:** the driver emits ``gas.volume`` in every sample
together with that capture time, so every sample shows the latest meter index; the same capture
time arriving in many samples (a DSMR 5 meter re-sends a 5-minute value every second, DSMR 4 an
hourly one every 10 s) is *one* measurement, and the ledger deduplicates on ``measured_at``.

dsmr-parser itself logs every line it cannot parse, on every telegram; a filter on its logger
lets each distinct message through once.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from dsmr_parser import telegram_specifications as ts
from dsmr_parser.exceptions import InvalidChecksumError, ParseError
from dsmr_parser.parsers import TelegramParser

from drivers.reading import Reading
from drivers.units import factor
from drivers.vocabulary import VOCABULARY

# dsmr-parser's telegram specifications by the names that config and CLI use (the same names as
# dsmr-parser's own ``create_dsmr_reader`` versions). "2.2" also reads DSMR 3 (dsmr-parser: V3 =
# V2_2). The Sagemcom T210-D-r's plain telegram (1-3:0.2.8(50), Wh units, 1-0:1.8.0 totals) is
# read by "5": dsmr-parser's SAGEMCOM_T210_D_R spec expects the DLMS-encrypted frame instead.
SPECS: Final[Mapping[str, dict[str, Any]]] = {
    "2.2": ts.V2_2,
    "4": ts.V4,
    "5": ts.V5,
    "5B": ts.BELGIUM_FLUVIUS,
    "5L": ts.LUXEMBOURG_SMARTY,
    "5S": ts.SWEDEN,
    "Q3D": ts.Q3D,
}
SPEC_CHOICES: Final = ("auto", *SPECS)

MAX_TELEGRAM_BYTES: Final = 16384  # a DSMR 5 telegram with 4 M-Bus devices and text is ~2 kB
CORE_QUANTITIES: Final = ("grid.import_energy", "grid.export_energy", "grid.power")
_NO_METER_DATA_BEFORE: Final = 2000  # an empty M-Bus channel reads 700101010000W (1970)


def crc16(text: str) -> int:
    """CRC16/ARC (reflected 0xA001, initial 0) of ``text``, as DSMR 4+ puts it after ``!``:
    computed over ``/`` through ``!`` inclusive. For the bench meter and test fixtures."""
    return int(TelegramParser.crc16(text))




class TelegramError(ValueError):
    """A telegram that yields no values."""


class CrcError(TelegramError):
    """The telegram's CRC does not match its contents."""


class MalformedTelegram(TelegramError):
    """Truncated, garbled, or not a meter reading at all."""


# After '!': up to 4 hex digits of CRC (DSMR 4+, unpadded allowed), nothing for DSMR 2.2/3;
# some gateways add a NUL (dsmr-parser's buffer tolerates it too); then CR LF.
_CRC_LINE: Final = re.compile(rb"[0-9A-Fa-f]{0,4}\x00?\r?")
_CRC_LINE_MAX: Final = 8  # bytes after '!' before a line end must have come


class TelegramBuffer:
    """Cuts complete telegrams out of a byte stream, chunk by chunk.

    A telegram runs from ``/`` to the line end after ``!`` (plus its CRC). Bytes outside
    telegrams are garbage (``garbage_bytes``; bytes before the first ``/`` after a reset are
    merely ``skipped_bytes``: we joined mid-telegram). A telegram interrupted by a new ``/``
    before its ``!``, a telegram longer than :data:`MAX_TELEGRAM_BYTES` and a ``!`` followed by
    anything but a CRC are abandoned and counted in ``truncated``. Frames are returned as text
    decoded byte for byte (latin-1), so the CRC is checked over exactly the bytes received.
    Limitation shared with dsmr-parser's own buffer: a ``/`` inside a telegram (no DSMR line
    contains one) would split it.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._synced = False
        self.garbage_bytes = 0
        self.skipped_bytes = 0
        self.truncated = 0

    def feed(self, data: bytes) -> list[str]:
        """Append ``data``; return the telegrams it completed, oldest first."""
        self._buf += data
        frames: list[str] = []
        buf = self._buf
        while buf:
            start = buf.find(b"/")
            if start < 0:
                self._discard(len(buf))
                break
            if start:
                self._discard(start)
            self._synced = True
            end = buf.find(b"!", 1)
            restart = buf.find(b"/", 1, end if end >= 0 else len(buf))
            if restart >= 0:  # a new telegram began before this one ended
                self.truncated += 1
                del buf[:restart]
                continue
            if end < 0:
                if len(buf) > MAX_TELEGRAM_BYTES:
                    self.truncated += 1
                    buf.clear()
                break
            newline = buf.find(b"\n", end + 1, end + 2 + _CRC_LINE_MAX)
            if newline < 0:
                if len(buf) - end > _CRC_LINE_MAX:
                    self.truncated += 1
                    del buf[: end + 1]
                    continue
                break
            if not _CRC_LINE.fullmatch(buf, end + 1, newline):
                self.truncated += 1
                del buf[: end + 1]
                continue
            frames.append(buf[: newline + 1].decode("latin-1"))
            del buf[: newline + 1]
        return frames

    def _discard(self, n: int) -> None:
        if self._synced:
            self.garbage_bytes += n
        else:
            self.skipped_bytes += n
        del self._buf[:n]


_VERSION: Final = re.compile(r"^\d-\d:0\.2\.8\((\d+)\)", re.MULTILINE)  # 1-3:0.2.8 P1 version
_HAS_CRC: Final = re.compile(r"![0-9A-Fa-f]{1,4}\x00?\r?\n?\Z")
# Lines that only DSMR 4+ telegrams carry; a telegram with one of these must have a CRC.
_MODERN: Final = re.compile(r"^\d-\d:(?:0\.2\.8|1\.0\.0|96\.1\.4)\(", re.MULTILINE)
_PRINTABLE: Final = re.compile(r"[\x20-\x7e\r\n]*\Z")


def detect_spec(text: str) -> str:
    """The DSMR variant of a telegram, from its contents (a key of :data:`SPECS`)."""
    if "0-0:96.1.4(" in text:  # e-MUCS version information: Belgian Fluvius
        return "5B"
    if "0-0:42.0.0(" in text:  # COSEM logical device name: Luxembourg Smarty
        return "5L"
    version = _VERSION.search(text)
    if version:  # 1-3:0.2.8(42) -> DSMR 4.2, (50) -> DSMR 5.0
        return "4" if int(version[1]) < 50 else "5"
    if _HAS_CRC.search(text):
        # A CRC but no version line: Swedish meters send totals (1-0:1.8.0) only.
        return "5S" if re.search(r"^1-0:1\.8\.0\(", text, re.MULTILINE) else "5"
    if text.startswith("/ESY"):  # EasyMeter Q3D (Germany), no CRC
        return "Q3D"
    return "2.2"  # no CRC, no version line: DSMR 2.2 / 3


@dataclass(frozen=True, slots=True)
class P1Telegram:
    """One valid telegram in the vocabulary: values in the vocabulary's units."""

    spec: str
    header: str  # the identification line, e.g. "/ISk5\2MT382-1000"
    meter_time: datetime | None  # 0-0:1.0.0, the meter's clock, UTC (None for DSMR 2.2)
    values: Mapping[str, float]  # vocabulary name -> value
    measured_at: Mapping[str, datetime] = field(default_factory=dict)  # M-Bus capture times
    notes: tuple[str, ...] = ()  # values present in the telegram that could not be used, why

    def readings(self) -> list[Reading]:
        return [Reading(q, v, measured_at=self.measured_at.get(q)) for q, v in self.values.items()]


_PARSERS: dict[str, TelegramParser] = {}


def _parser(spec: str) -> TelegramParser:
    parser = _PARSERS.get(spec)
    if parser is None:  # compiling a specification's regular expressions costs ~1 ms
        parser = _PARSERS[spec] = TelegramParser(SPECS[spec], apply_checksum_validation=False)
    return parser


def decode(text: str, spec: str) -> P1Telegram:
    """Parse one complete telegram (``/`` ... ``!CRC`` CR LF) with ``spec`` and map it.

    :class:`CrcError` if its CRC does not match, :class:`MalformedTelegram` if it cannot be
    trusted or holds no electricity import register; ValueError for an unknown ``spec``.
    """
    if spec not in SPECS:
        raise ValueError(f"unknown DSMR specification {spec!r} (allowed: {', '.join(SPECS)})")
    has_crc = _HAS_CRC.search(text) is not None
    if SPECS[spec]["checksum_support"] or has_crc:
        if not has_crc:
            raise MalformedTelegram(f"DSMR {spec} telegram without a CRC")
        try:
            TelegramParser.validate_checksum(text)
        except InvalidChecksumError as exc:
            raise CrcError(str(exc)) from None
        except ParseError as exc:
            raise MalformedTelegram(str(exc)) from None
    elif not _PRINTABLE.match(text):
        raise MalformedTelegram("telegram without a CRC holds non-printable bytes")
    elif _MODERN.search(text):
        raise MalformedTelegram("DSMR 4+ telegram that has lost its CRC")
    try:
        # Without a CRC, a line that does not parse means line noise: reject the telegram.
        # With a valid CRC it is a format quirk of the meter: skip that line, keep the rest.
        telegram = _parser(spec).parse(text, throw_ex=not has_crc)
    except Exception as exc:  # dsmr-parser lets coercion errors of a garbled line escape as-is
        raise MalformedTelegram(f"unparseable line: {exc}") from None
    return _map(telegram, spec, text[: text.find("\r")] if "\r" in text else text[:40])


# Energy registers: (dsmr-parser attribute, quantity), OBIS codes per DSMR P1 5.0.2 §6.12.
_TARIFFS: Final = (
    ("ELECTRICITY_USED_TARIFF_1", "grid.import_energy_t1"),  # 1-0:1.8.1
    ("ELECTRICITY_USED_TARIFF_2", "grid.import_energy_t2"),  # 1-0:1.8.2
    ("ELECTRICITY_DELIVERED_TARIFF_1", "grid.export_energy_t1"),  # 1-0:2.8.1
    ("ELECTRICITY_DELIVERED_TARIFF_2", "grid.export_energy_t2"),  # 1-0:2.8.2
)
# Totals: the sum of the tariff registers, or the meter's total register where it has no tariffs.
_TOTALS: Final = (
    ("grid.import_energy", ("grid.import_energy_t1", "grid.import_energy_t2"),
     "ELECTRICITY_IMPORTED_TOTAL"),  # 1-0:1.8.0
    ("grid.export_energy", ("grid.export_energy_t1", "grid.export_energy_t2"),
     "ELECTRICITY_EXPORTED_TOTAL"),  # 1-0:2.8.0
)
# Net power = delivered to the client (+P) minus received from the client (-P).
_POWER: Final = (
    ("grid.power", "CURRENT_ELECTRICITY_USAGE", "CURRENT_ELECTRICITY_DELIVERY"),  # 1.7.0, 2.7.0
    ("grid.power_l1", "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE",  # 1-0:21.7.0
     "INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE"),  # 1-0:22.7.0
    ("grid.power_l2", "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE",  # 1-0:41.7.0
     "INSTANTANEOUS_ACTIVE_POWER_L2_NEGATIVE"),  # 1-0:42.7.0
    ("grid.power_l3", "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE",  # 1-0:61.7.0
     "INSTANTANEOUS_ACTIVE_POWER_L3_NEGATIVE"),  # 1-0:62.7.0
)
_GAUGES: Final = (
    ("INSTANTANEOUS_VOLTAGE_L1", "grid.voltage_l1"),  # 1-0:32.7.0
    ("INSTANTANEOUS_VOLTAGE_L2", "grid.voltage_l2"),  # 1-0:52.7.0
    ("INSTANTANEOUS_VOLTAGE_L3", "grid.voltage_l3"),  # 1-0:72.7.0
    ("INSTANTANEOUS_CURRENT_L1", "grid.current_l1"),  # 1-0:31.7.0
    ("INSTANTANEOUS_CURRENT_L2", "grid.current_l2"),  # 1-0:51.7.0
    ("INSTANTANEOUS_CURRENT_L3", "grid.current_l3"),  # 1-0:71.7.0
)
# M-Bus device types (0-n:24.1.0, EN 13757-3 table 3) -> the quantity of their meter reading.
_MBUS_TYPES: Final = {3: "gas.volume", 7: "water.volume", 4: "district_heat.energy"}
# The device type and reading attribute names differ per spec: V5/Fluvius/5L MBUS_*, V4
# DEVICE_TYPE + HOURLY_GAS_METER_READING (0-n:24.2.1), V2.2 DEVICE_TYPE + GAS_METER_READING
# (the two-line 0-n:24.3.0). Belgian gas is 0-n:24.2.3, parsed as MBUS_METER_READING.
_MBUS_TYPE_ATTRS: Final = ("MBUS_DEVICE_TYPE", "DEVICE_TYPE")
_MBUS_READING_ATTRS: Final = ("MBUS_METER_READING", "HOURLY_GAS_METER_READING", "GAS_METER_READING")


def _canonical(value: Decimal, unit: str | None, quantity: str) -> Decimal:
    """``value`` in the vocabulary's unit of ``quantity``, without inventing digits.

    The result keeps the telegram's resolution: as many decimals as the telegram gave, shifted
    by the conversion's power of ten (Wh -> kWh: 3 more; kW -> W: 3 fewer; GJ -> kWh: 2 fewer).
    ValueError if the unit is missing or cannot be converted.
    """
    if unit is None:
        raise ValueError("no unit")
    f = factor(unit, VOCABULARY[quantity].unit)
    exponent = value.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) else 0
    places = max(decimals - round(math.log10(f)), 0)
    return round(value * Decimal(repr(f)), places)


def _number(value: Decimal) -> float:
    return float(value) + 0.0  # + 0.0 turns a -0.0 into 0.0


def _map(telegram: Any, spec: str, header: str) -> P1Telegram:
    found: dict[str, Decimal] = {}
    notes: list[str] = []

    def take(attr: str, quantity: str) -> Decimal | None:
        obj = getattr(telegram, attr, None)
        if obj is None or not isinstance(obj.value, Decimal):
            return None
        try:
            return _canonical(obj.value, obj.unit, quantity)
        except ValueError as exc:
            notes.append(f"{attr} ({obj.value} {obj.unit}) as {quantity}: {exc}")
            return None

    for attr, quantity in _TARIFFS:
        if (v := take(attr, quantity)) is not None:
            found[quantity] = v
    for quantity, parts, total_attr in _TOTALS:
        tariffs = [found[p] for p in parts if p in found]
        total = sum(tariffs, Decimal(0)) if tariffs else take(total_attr, quantity)
        if total is not None:
            found[quantity] = total
    if "grid.import_energy" not in found:
        raise MalformedTelegram("no electricity import register (1-0:1.8.x)")
    for quantity, plus_attr, minus_attr in _POWER:
        plus, minus = take(plus_attr, quantity), take(minus_attr, quantity)
        if plus is not None or minus is not None:
            found[quantity] = (plus or Decimal(0)) - (minus or Decimal(0))
    for attr, quantity in _GAUGES:
        if (v := take(attr, quantity)) is not None:
            found[quantity] = v
    measured_at = _mbus(telegram, found, notes)
    meter_time = getattr(getattr(telegram, "P1_MESSAGE_TIMESTAMP", None), "value", None)
    ordered = {q: _number(found[q]) for q in VOCABULARY if q in found}
    return P1Telegram(spec, header, meter_time if isinstance(meter_time, datetime) else None,
                      ordered, measured_at, tuple(notes))


def _mbus(telegram: Any, found: dict[str, Decimal], notes: list[str]) -> dict[str, datetime]:
    """Gas, water and heat from the M-Bus channels, chosen by device type, never by position."""
    measured_at: dict[str, datetime] = {}
    devices = sorted(getattr(telegram, "MBUS_DEVICES", []), key=lambda d: d.channel_id)
    for device in devices:
        quantity = _MBUS_TYPES.get(_device_type(device) or -1)
        reading = _first_attr(device, _MBUS_READING_ATTRS)
        if quantity is None or reading is None or quantity in found:
            continue  # another medium, a channel without reading, or a 2nd meter of this kind
        when, value, unit = reading.datetime, reading.value, reading.unit
        if not isinstance(value, Decimal) or unit is None:
            continue  # empty channel: 0-n:24.2.1(700101010000W)(00000000)
        if not isinstance(when, datetime) or when.year < _NO_METER_DATA_BEFORE:
            notes.append(f"M-Bus channel {device.channel_id}: no valid capture time for "
                         f"{quantity}")
            continue
        try:
            found[quantity] = _canonical(value, unit, quantity)
        except ValueError as exc:
            notes.append(f"M-Bus channel {device.channel_id} ({value} {unit}) as {quantity}: "
                         f"{exc}")
            continue
        measured_at[quantity] = when
    return measured_at


def _first_attr(obj: Any, names: Sequence[str]) -> Any:
    return next((v for v in (getattr(obj, n, None) for n in names) if v is not None), None)


def _device_type(device: Any) -> int | None:
    obj = _first_attr(device, _MBUS_TYPE_ATTRS)
    try:
        return int(obj.value)  # an int, or "3" / "003" in DSMR 2.2
    except (AttributeError, TypeError, ValueError):
        return None


@dataclass(slots=True)
class Counters:
    telegrams: int = 0  # valid telegrams
    crc_errors: int = 0
    parse_errors: int = 0  # truncated, garbled, unparseable
    garbage_bytes: int = 0  # bytes outside telegrams (not counting the start-up partial one)
    silences: int = 0  # times the link stayed silent for ``silence`` seconds
    reopens: int = 0  # times the port was opened again after it vanished or closed
    open_failures: int = 0  # attempts to open the port (connect) that failed

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class P1Decoder:
    """Bytes in, telegrams (or the reason each failed) out; counts as it goes. Pure.

    ``spec="auto"`` detects the variant of each telegram with :func:`detect_spec`. This is the
    whole pure path, telegram bytes to readings, as the benchmark times it::

        decoder = P1Decoder("auto")
        for chunk in chunks:
            for result in decoder.feed(chunk):
                if isinstance(result, P1Telegram):
                    readings = result.readings()
    """

    def __init__(self, spec: str = "auto", counters: Counters | None = None) -> None:
        if spec not in SPEC_CHOICES:
            raise ValueError(f"unknown DSMR specification {spec!r} "
                             f"(allowed: {', '.join(SPEC_CHOICES)})")
        self.spec = spec
        self.counters = counters if counters is not None else Counters()
        self.detected: str | None = None  # the variant of the latest valid telegram
        self._buffer = TelegramBuffer()
        self._truncated = 0
        self._garbage = 0

    def reset(self) -> None:
        """Forget a partial telegram (after a reopen or a change of line settings)."""
        self._buffer = TelegramBuffer()
        self._truncated = self._garbage = 0

    def feed(self, data: bytes) -> list[P1Telegram | TelegramError]:
        frames = self._buffer.feed(data)
        results: list[P1Telegram | TelegramError] = []
        truncated = self._buffer.truncated - self._truncated
        self._truncated = self._buffer.truncated
        for _ in range(truncated):
            results.append(MalformedTelegram("truncated telegram"))
        self.counters.parse_errors += truncated
        self.counters.garbage_bytes += self._buffer.garbage_bytes - self._garbage
        self._garbage = self._buffer.garbage_bytes
        for text in frames:
            try:
                telegram = decode(text, detect_spec(text) if self.spec == "auto" else self.spec)
            except CrcError as exc:
                self.counters.crc_errors += 1
                results.append(exc)
            except MalformedTelegram as exc:
                self.counters.parse_errors += 1
                results.append(exc)
            else:
                self.counters.telegrams += 1
                self.detected = telegram.spec
                results.append(telegram)
        return results


class _OncePerMessage(logging.Filter):
    """dsmr-parser logs an unparseable line on every telegram (at ERROR, with a traceback)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self._seen:
            return False
        if len(self._seen) < 256:
            self._seen.add(message)
        return True


logging.getLogger("dsmr_parser.parsers").addFilter(_OncePerMessage())
