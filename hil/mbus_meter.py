"""M-Bus heat meters on a virtual serial line, for the bench and for tests.

:class:`EmulatedMeter` is one meter: it answers SND_NKE with E5 and REQ_UD2 with an RSP_UD long
frame laid out like a Kamstrup MULTICAL's (EN 13757-3 variable data structure, LSB first):
fabrication number, energy (in kWh, Wh, MJ or GJ, as configured), volume, operating hours,
flow and return temperature, temperature difference, power, flow, the date and time, and also
what a driver must *not* take for current values: a maximum power, a tariff 1 energy register
and a historic (storage 1) energy and volume with their target date. It supports primary
addressing and secondary addressing (select with SND_UD CI=0x52 to 0xFD, wildcards, deselect).
The frames are built by hand here, independently of pyMeterBus, so that the driver's decoding
is checked against a second implementation of the standard.

:class:`MbusBus` puts one or more meters on a :class:`hil.ptys.VirtualSerialPort`. When several
meters answer the same request they collide as on a real bus: a slave signals a 0 by drawing
more current, so zeros win and the line carries the bitwise AND of the characters on it; and
slaves answer anywhere from 11 to 330 bit times after the request (EN 13757-2), never in step,
so each further answer is laid one character later. Two E5s arrive as two bytes, two frames as
garbage. Fault injection: corrupt the checksum of the next answers, or stay silent.

Values come in vocabulary units (``heatmeter.energy`` kWh, ``heatmeter.flow`` l/min, ...), fixed
or from a callable; :func:`heatpump_values` takes them from the bench's heat pump model.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final, Literal

from drivers.tasks import cancel
from hil.heatpump_model import HeatPumpModel
from hil.ptys import VirtualSerialPort

EnergyUnit = Literal["Wh", "kWh", "MJ", "GJ"]
Values = Mapping[str, float]

# Energy records per unit: (DIF, VIF bytes, raw units per kWh); EN 13757-3 primary VIFs and the
# extension table after VIF 0xFB.
_ENERGY: Final[dict[str, tuple[int, bytes, float]]] = {
    "Wh": (0x04, b"\x03", 1000.0),  # VIF 03: 1 Wh, 32-bit integer
    "kWh": (0x04, b"\x06", 1.0),  # VIF 06: 10^3 Wh, 32-bit integer
    "MJ": (0x04, b"\x0e", 3.6),  # VIF 0E: 10^6 J, 32-bit integer
    "GJ": (0x0C, b"\xfb\x08", 0.036),  # VIF FB 08: 0.1 GJ, 8-digit BCD
}

FIXED_VALUES: Final[dict[str, float]] = {
    "heatmeter.energy": 12345.0, "heatmeter.volume": 678.9, "heatmeter.flow": 15.0,
    "heatmeter.power": 4200.0, "heatmeter.supply_temp": 35.5, "heatmeter.return_temp": 31.25,
}


def _int(value: int, size: int = 4) -> bytes:
    return value.to_bytes(size, "little", signed=True)


def _bcd(value: int, digits: int = 8) -> bytes:
    text = f"{value:0{digits}d}"[-digits:]
    return bytes(int(text[i:i + 2], 16) for i in range(0, digits, 2))[::-1]


def manufacturer_bytes(letters: str) -> bytes:
    """The header's manufacturer field: ((c1-64)·32 + (c2-64))·32 + (c3-64), LSB first."""
    code = 0
    for ch in letters.upper():
        code = code * 32 + (ord(ch) - 64)
    return code.to_bytes(2, "little")


def _date_g(day: date) -> bytes:
    """Type G date (EN 13757-3 data type G): day, month, and a 7-bit year split over both bytes."""
    y = day.year % 100
    return bytes([day.day | (y & 0x07) << 5, day.month | (y >> 3) << 4])


def _datetime_f(moment: datetime) -> bytes:
    """Type F date and time: minute, hour, then the type G date."""
    return bytes([moment.minute, moment.hour]) + _date_g(moment.date())


def checksum(body: bytes) -> int:
    return sum(body) & 0xFF


def long_frame(c: int, a: int, ci: int, data: bytes) -> bytes:
    body = bytes([c, a, ci]) + data
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([checksum(body), 0x16])


@dataclass
class EmulatedMeter:
    """One heat meter; :meth:`answer` is its reaction to one master frame."""

    primary: int = 0
    ident: int = 12345678  # identification number, 8 BCD digits
    manufacturer: str = "KAM"
    version: int = 0x08
    medium: int = 0x04  # heat, volume measured in the return (outlet)
    energy_unit: EnergyUnit = "kWh"
    values: Values | Callable[[], Values] = field(default_factory=lambda: dict(FIXED_VALUES))
    clock: Callable[[], datetime] = field(default=lambda: datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    selected: bool = False
    access: int = 0  # access number, counts the answers
    status: int = 0  # EN 13757-3 status byte

    def current(self) -> Values:
        return self.values() if callable(self.values) else self.values

    def answer(self, frame: bytes) -> bytes | None:
        """The reply to one checked master frame; None to stay silent."""
        if frame[0] == 0x10:
            c, a = frame[1], frame[2]
            if c == 0x40:  # SND_NKE
                return self._nke(a)
            if c in (0x5B, 0x7B) and self._addressed(a):  # REQ_UD2, either FCB
                return self.rsp_ud()
            return None
        c, a, ci, data = frame[4], frame[5], frame[6], frame[7:-2]
        if c in (0x53, 0x73) and a == 0xFD and ci == 0x52 and len(data) == 8:
            self.selected = self._matches(data)  # a non-matching select deselects
            return b"\xe5" if self.selected else None
        return None

    def _nke(self, a: int) -> bytes | None:
        if a == 0xFD:
            if self.selected:
                self.selected = False  # SND_NKE to 253 deselects
                return b"\xe5"
            return None
        if a == 0xFF:
            return None  # broadcast without reply
        return b"\xe5" if a in (self.primary, 0xFE) else None

    def _addressed(self, a: int) -> bool:
        return a in (self.primary, 0xFE) or (a == 0xFD and self.selected)

    def _matches(self, data: bytes) -> bool:
        """Secondary address match; F nibbles of the ID and FF bytes elsewhere are wildcards."""
        wanted_id = data[3::-1].hex().upper()
        own_id = f"{self.ident:08d}"
        if not all(w in ("F", o) for w, o in zip(wanted_id, own_id, strict=True)):
            return False
        man = manufacturer_bytes(self.manufacturer)
        return ((data[4:6] == b"\xff\xff" or data[4:6] == man)
                and data[6] in (0xFF, self.version) and data[7] in (0xFF, self.medium))

    def rsp_ud(self) -> bytes:
        """RSP_UD (C=0x08, CI=0x72) with the current values."""
        self.access = (self.access + 1) & 0xFF
        v = self.current()
        header = (_bcd(self.ident) + manufacturer_bytes(self.manufacturer)
                  + bytes([self.version, self.medium, self.access, self.status, 0, 0]))
        dif, vif, per_kwh = _ENERGY[self.energy_unit]
        energy_raw = math.floor(v["heatmeter.energy"] * per_kwh)
        energy = _bcd(energy_raw) if dif == 0x0C else _int(energy_raw)
        historic = math.floor(v["heatmeter.energy"] * per_kwh * 0.9)
        now = self.clock()
        flow_lph = round(v["heatmeter.flow"] * 60.0)
        records = b"".join((
            b"\x0c\x78" + _bcd(self.ident),  # fabrication number
            bytes([dif]) + vif + energy,  # energy
            b"\x04\x14" + _int(math.floor(v["heatmeter.volume"] * 100)),  # volume 0.01 m³
            b"\x04\x22" + _int(1234),  # on time, hours
            b"\x04\x59" + _int(round(v["heatmeter.supply_temp"] * 100)),  # flow temp 0.01 °C
            b"\x04\x5d" + _int(round(v["heatmeter.return_temp"] * 100)),  # return temp 0.01 °C
            b"\x04\x61" + _int(round((v["heatmeter.supply_temp"]
                                      - v["heatmeter.return_temp"]) * 100)),  # ΔT 0.01 K
            b"\x04\x2d" + _int(round(v["heatmeter.power"] / 100)),  # power 100 W (0.1 kW)
            b"\x14\x2d" + _int(round(v["heatmeter.power"] / 100) + 25),  # maximum power
            b"\x04\x3b" + _int(flow_lph),  # volume flow l/h
            b"\x04\x6d" + _datetime_f(now),  # date and time
            bytes([dif | 0x80, 0x10]) + vif + (_bcd(0) if dif == 0x0C else _int(0)),  # tariff 1
            bytes([dif | 0x40]) + vif + (_bcd(historic) if dif == 0x0C else _int(historic)),
            b"\x44\x14" + _int(math.floor(v["heatmeter.volume"] * 90)),  # historic volume
            b"\x42\x6c" + _date_g(date(now.year - 1, 12, 31)),  # historic target date
        ))
        return long_frame(0x08, self.primary, 0x72, header + records)


def heatpump_values(model: HeatPumpModel) -> Callable[[], dict[str, float]]:
    """Heat meter values from the heat pump model; volume integrates the flow between calls."""
    volume = 0.0
    last = model.now

    def values() -> dict[str, float]:
        nonlocal volume, last
        volume += model.flow / 1000.0 * (model.now - last).total_seconds() / 60.0
        last = model.now
        return {
            "heatmeter.energy": model.heat_energy_kwh, "heatmeter.volume": volume,
            "heatmeter.flow": model.flow, "heatmeter.power": max(model.heat_power, 0.0),
            "heatmeter.supply_temp": model.supply_temp, "heatmeter.return_temp": model.return_temp,
        }

    return values


class MbusBus:
    """Meters on one virtual serial line; answers the agent until stopped."""

    def __init__(self, port: VirtualSerialPort, meters: Sequence[EmulatedMeter]) -> None:
        self.port = port
        self.meters = list(meters)
        self.silent = False  # fault: nobody answers
        self.corrupt = 0  # fault: the checksum of this many next long answers is wrong
        self.requests: list[bytes] = []  # every well-formed frame the master sent
        self._inbox = bytearray()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def _serve(self) -> None:
        while True:
            self._inbox += await self.port.read()
            for frame in self._frames():
                reply = self.reply(frame)
                if reply is not None:
                    self.port.write(reply)

    def _frames(self) -> list[bytes]:
        """Complete, well-formed master frames from the inbox; noise is skipped."""
        frames = []
        buf = self._inbox
        while buf:
            if buf[0] == 0x10:
                need = 5
            elif buf[0] == 0x68 and len(buf) >= 4:
                need = buf[1] + 6 if buf[1] == buf[2] and buf[3] == 0x68 else 0
            elif buf[0] == 0x68:
                break
            else:
                need = 0
            if need == 0:
                del buf[0]  # not a frame start: a slave resynchronises on the next byte
                continue
            if len(buf) < need:
                break
            frame = bytes(buf[:need])
            body = frame[1:3] if need == 5 else frame[4:-2]
            if frame[-1] == 0x16 and checksum(body) == frame[-2]:
                frames.append(frame)
                del buf[:need]
            else:
                del buf[0]
        return frames

    def reply(self, frame: bytes) -> bytes | None:
        """What the line carries after ``frame``: one answer, a collision, or nothing."""
        self.requests.append(frame)
        replies = [r for r in (m.answer(frame) for m in self.meters) if r is not None]
        if self.silent or not replies:
            return None
        # The line idles at 1 (mark); answer k starts k characters after the first.
        shifted = [b"\xff" * k + r for k, r in enumerate(replies)]
        size = max(len(r) for r in shifted)
        padded = [r.ljust(size, b"\xff") for r in shifted]
        line = bytes(_and(column) for column in zip(*padded, strict=True))
        if self.corrupt and len(line) > 1:
            self.corrupt -= 1
            line = line[:-2] + bytes([line[-2] ^ 0x5A, line[-1]])
        return line


def _and(column: tuple[int, ...]) -> int:
    out = 0xFF
    for byte in column:
        out &= byte
    return out
