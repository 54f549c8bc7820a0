"""The bench's smart meter: DSMR telegrams on a virtual serial port or a TCP port.

:class:`SimulatedP1Meter` writes the telegrams of a Dutch smart meter (DSMR 2.2, 4.2, 5.0) or a
Belgian Fluvius meter (e-MUCS, "5B") with valid CRCs, at the meter's own rate (1 s for DSMR 5
and Fluvius, 10 s for DSMR 4 and 2.2) divided by ``speed``. Simulated time advances exactly one
interval per telegram, so a run is deterministic whatever the host's load.

Electricity is a seeded household load profile (:class:`HouseholdLoad`), plus a pluggable heat
pump (``heat_pump``: a callable giving watts, e.g. ``lambda: model.electric_power``). Gas is a
pluggable use (``gas_use``: m³/h, e.g. ``lambda: boiler.gas_rate_m3_per_h``; by default a small
deterministic cooking and hot-water pattern), or, for an exact ground truth, a pluggable index
(``gas_index``: m³ burnt so far, e.g. ``lambda: boiler.gas_m3``, added to the meter's initial
index). The gas meter is read on the M-Bus like a real one: its index is *captured* every 5
minutes (DSMR 5, Fluvius) or on the hour (DSMR 4, 2.2) and shown with that capture time, in
local time with the S/W (summer/winter) suffix (DSMR 2.2: without suffix, as real 2.2 meters
send it).

Every telegram written is kept in :attr:`SimulatedP1Meter.sent` with the values it carries in
the vocabulary, so a test compares what the agent read with what the meter wrote. Faults:
:meth:`corrupt_crc`, :meth:`truncate`, :meth:`garbage` and :meth:`silence`. :meth:`step` makes
the next telegram without any I/O (for benchmarks and cadence checks).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from drivers.p1_telegram import crc16
from drivers.tasks import cancel
from hil.ptys import VirtualSerialPort

AMSTERDAM: Final = ZoneInfo("Europe/Amsterdam")  # DSMR timestamps are Dutch/Belgian local time

VERSIONS: Final = ("2.2", "4", "5", "5B")
INTERVAL_S: Final = {"2.2": 10.0, "4": 10.0, "5": 1.0, "5B": 1.0}
GAS_CAPTURE_S: Final = {"2.2": 3600, "4": 3600, "5": 300, "5B": 300}
HEADERS: Final = {"2.2": "/HPA5 BENCHP1-22", "4": "/HPA5BENCH-P1-42", "5": "/HPA5\\2BENCH-P1-50",
                  "5B": "/FLU5\\253769484_A"}
GARBAGE: Final = b"\x00\xff\xfe line noise \x80\x81\r\n"  # no '/' in it: not a telegram start
_EQUIPMENT_ID: Final = b"HPAGENT-BENCH-P1".hex().upper()
_GAS_ID: Final = b"HPAGENT-BENCH-GAS".hex().upper()
_WATER_ID: Final = b"HPAGENT-BENCH-H2O".hex().upper()
_PHASE_SHARE: Final = (0.5, 0.3, 0.2)  # household load per phase on a three-phase connection


def dsmr_time(t: datetime, suffix: bool = True) -> str:
    """``YYMMDDhhmmss`` in Dutch local time, plus ``S`` (summer) or ``W`` (winter)."""
    local = t.astimezone(AMSTERDAM)
    text = local.strftime("%y%m%d%H%M%S")
    return text + ("S" if local.dst() else "W") if suffix else text


@dataclass(frozen=True, slots=True)
class HouseholdLoad:
    """A household's electricity use in W: daily shape plus seeded appliance runs.

    A pure function of (time, seed): base load, morning and evening peaks in local time, and in
    each 10-minute slot a seeded chance of an appliance (kettle, washing machine, oven).
    """

    seed: int = 1
    base_w: float = 150.0

    def __call__(self, t: datetime) -> float:
        local = t.astimezone(AMSTERDAM)
        hour = local.hour + local.minute / 60
        shape = (350.0 if 6.5 <= hour < 9 else 600.0 if 17 <= hour < 22
                 else 250.0 if hour >= 22 else 100.0 if hour >= 9 else 0.0)
        slot = int(t.timestamp()) // 600
        rng = random.Random((self.seed << 32) ^ slot)
        fridge = 80.0 if rng.random() < 0.5 else 0.0
        appliance = rng.choice((2000.0, 1200.0, 800.0)) if rng.random() < 0.12 else 0.0
        return self.base_w + shape + fridge + appliance


def default_gas_use(t: datetime) -> float:
    """m³/h: a shower at 07:00-07:15 and cooking at 18:00-18:30 local, a pilot-free rest."""
    local = t.astimezone(AMSTERDAM)
    minutes = local.hour * 60 + local.minute
    if 7 * 60 <= minutes < 7 * 60 + 15:
        return 1.5
    if 18 * 60 <= minutes < 18 * 60 + 30:
        return 0.3
    return 0.0


@dataclass(frozen=True, slots=True)
class SentTelegram:
    index: int
    meter_time: datetime  # the meter's clock (UTC) when it wrote the telegram
    data: bytes  # exactly what went on the wire (b"" while silent)
    values: dict[str, float]  # what the telegram carries, in vocabulary names and units
    measured_at: dict[str, datetime] = field(default_factory=dict)  # M-Bus capture times
    fault: str | None = None  # "crc", "truncated", "silent" or None


@dataclass(slots=True)
class _Capture:
    at: datetime
    litres: int  # index in litres (0.001 m³), as shown


class SimulatedP1Meter:
    """Writes telegrams to ``port`` (a VirtualSerialPort) and/or TCP clients on ``tcp_port``."""

    def __init__(self, version: str = "5", *, port: VirtualSerialPort | None = None,
                 tcp_port: int | None = None, host: str = "127.0.0.1", speed: float = 1.0,
                 start: datetime | None = None, seed: int = 1, phases: int = 3,
                 household: Callable[[datetime], float] | None = None,
                 heat_pump: Callable[[], float] | None = None,
                 gas_use: Callable[[], float] | None = None,
                 gas_index: Callable[[], float] | None = None, gas: bool = True,
                 water_use: Callable[[], float] | None = None,
                 import_kwh: tuple[float, float] = (1234.567, 2345.678),
                 export_kwh: tuple[float, float] = (123.456, 234.567),
                 gas_m3: float = 1500.0, water_m3: float = 300.0, keep: int = 4096) -> None:
        if version not in VERSIONS:
            raise ValueError(f"unknown DSMR version {version!r} (allowed: {', '.join(VERSIONS)})")
        if phases not in (1, 3):
            raise ValueError(f"phases must be 1 or 3, not {phases}")
        if speed <= 0:
            raise ValueError(f"speed must be positive, not {speed}")
        if gas_use is not None and gas_index is not None:
            raise ValueError("give gas_use (m³/h) or gas_index (m³), not both")
        self.version = version
        self.port = port
        self.tcp_port, self.host = tcp_port, host
        self.speed = speed
        self.interval = INTERVAL_S[version]
        self.now = start or datetime(2026, 1, 15, 5, 58, tzinfo=UTC)  # 06:58 CET
        self.phases = phases
        self.household = household or HouseholdLoad(seed)
        self.heat_pump = heat_pump
        self.gas_use, self.gas_index, self.water_use = gas_use, gas_index, water_use
        self.has_gas = gas
        self.sent: deque[SentTelegram] = deque(maxlen=keep)
        self._import_wh = [x * 1000 for x in import_kwh]
        self._export_wh = [x * 1000 for x in export_kwh]
        self._gas_l = self._gas_start_l = gas_m3 * 1000
        self._water_l = water_m3 * 1000
        self._phase_w: tuple[float, ...] = ()
        self._gas_rate = self._water_rate = 0.0
        self._gas_capture: _Capture | None = None
        self._water_capture: _Capture | None = None
        self._index = 0
        self._bad_crc = self._truncate = 0
        self._silent_until: datetime | None = None
        self._garbage = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    # Faults -----------------------------------------------------------------------------------

    def corrupt_crc(self, count: int = 1) -> None:
        """The next ``count`` telegrams carry a wrong CRC (DSMR 4+ only)."""
        if self.version == "2.2":
            raise ValueError("DSMR 2.2 telegrams have no CRC to corrupt")
        self._bad_crc += count

    def truncate(self, count: int = 1) -> None:
        """The next ``count`` telegrams break off half way (no '!' line)."""
        self._truncate += count

    def garbage(self, data: bytes = GARBAGE) -> None:
        """Line noise before the next telegram."""
        self._garbage += data

    def silence(self, seconds: float) -> None:
        """Send nothing for ``seconds`` of simulated time (the meter keeps counting)."""
        self._silent_until = self.now + timedelta(seconds=seconds)

    # Running ----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.tcp_port is not None:
            self._server = await asyncio.start_server(self._connected, self.host, self.tcp_port)
        self._task = asyncio.create_task(self._run(), name=f"p1 meter {self.version}")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None
        for writer in list(self._clients):
            writer.close()
        self._clients.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            self._send(self.step())
            due += self.interval / self.speed
            await asyncio.sleep(max(0.0, due - loop.time()))

    def _send(self, telegram: SentTelegram) -> None:
        data = bytes(self._garbage) + telegram.data
        self._garbage.clear()
        if not data:
            return
        if self.port is not None:
            self.port.write(data)
        for writer in list(self._clients):
            if writer.is_closing() or writer.transport.get_write_buffer_size() > 1 << 20:
                writer.close()  # gone, or not reading: a real dongle drops it too
                self._clients.discard(writer)
            else:
                writer.write(data)

    # The meter --------------------------------------------------------------------------------

    def step(self) -> SentTelegram:
        """Advance one interval (the first call shows the start) and make that telegram."""
        if self._index:
            self._integrate(self.interval)
            self.now += timedelta(seconds=self.interval)
        self._index += 1
        self._measure()
        values, measured_at, text = self._telegram()
        fault: str | None = None
        if self._silent_until is not None and self.now < self._silent_until:
            data, fault = b"", "silent"
        else:
            self._silent_until = None
            body = text + "!"
            crc = crc16(body)
            if self._truncate:
                self._truncate -= 1
                data, fault = body[: len(body) // 2].encode("ascii"), "truncated"
            else:
                if self._bad_crc:
                    self._bad_crc -= 1
                    crc, fault = crc ^ 0x5A5A, "crc"
                tail = "" if self.version == "2.2" else f"{crc:04X}"
                data = (body + tail + "\r\n").encode("ascii")
        sent = SentTelegram(self._index, self.now, data, values, measured_at, fault)
        self.sent.append(sent)
        return sent

    def _integrate(self, dt: float) -> None:
        net = sum(self._phase_w)
        tariff = self._tariff() - 1
        if net >= 0:
            self._import_wh[tariff] += net * dt / 3600
        else:
            self._export_wh[tariff] -= net * dt / 3600
        self._gas_l += self._gas_rate * dt / 3.6  # m³/h -> l/s
        self._water_l += self._water_rate * dt / 3.6

    def _measure(self) -> None:
        """Powers and flows at ``now``, held until the next telegram; captures of M-Bus meters."""
        house = self.household(self.now)
        hp = self.heat_pump() if self.heat_pump is not None else 0.0
        if self.phases == 3:
            self._phase_w = tuple(house * s + hp / 3 for s in _PHASE_SHARE)
        else:
            self._phase_w = (house + hp,)
        if self.gas_index is not None:
            self._gas_l, self._gas_rate = self._gas_start_l + self.gas_index() * 1000, 0.0
        else:
            self._gas_rate = (self.gas_use() if self.gas_use is not None
                              else default_gas_use(self.now))
        self._water_rate = self.water_use() if self.water_use is not None else 0.0
        period = GAS_CAPTURE_S[self.version]
        boundary = datetime.fromtimestamp(self.now.timestamp() // period * period, UTC)
        if self._gas_capture is None or boundary > self._gas_capture.at:
            # The M-Bus meter's value at its capture time (to within one telegram interval).
            self._gas_capture = _Capture(boundary, int(self._gas_l))
            self._water_capture = _Capture(boundary, int(self._water_l))

    def _tariff(self) -> int:
        """1 or 2, as the meter numbers them. NL: 1 = low (nights 23-07, weekends), 2 = normal;
        BE (Fluvius): 1 = day (weekdays 07-22), 2 = night."""
        local = self.now.astimezone(AMSTERDAM)
        weekend = local.weekday() >= 5
        if self.version == "5B":
            return 2 if weekend or not 7 <= local.hour < 22 else 1
        return 1 if weekend or not 7 <= local.hour < 23 else 2

    def _telegram(self) -> tuple[dict[str, float], dict[str, datetime], str]:
        v = self.version
        imp = [math.floor(x) for x in self._import_wh]  # meters truncate to the shown digit
        exp = [math.floor(x) for x in self._export_wh]
        phase_w = [round(p) for p in self._phase_w]
        net_w = sum(phase_w)
        plus_w, minus_w = max(net_w, 0), max(-net_w, 0)
        if v == "2.2":  # 2.2 shows kW with 2 decimals: 10 W steps
            plus_w, minus_w = round(plus_w, -1), round(minus_w, -1)
        values: dict[str, float] = {
            "grid.import_energy": (imp[0] + imp[1]) / 1000,
            "grid.export_energy": (exp[0] + exp[1]) / 1000,
            "grid.import_energy_t1": imp[0] / 1000, "grid.import_energy_t2": imp[1] / 1000,
            "grid.export_energy_t1": exp[0] / 1000, "grid.export_energy_t2": exp[1] / 1000,
            "grid.power": float(plus_w - minus_w),
        }
        lines = [HEADERS[v], ""]
        if v == "5B":
            lines += ["0-0:96.1.4(50217)", f"0-0:96.1.1({_EQUIPMENT_ID})",
                      f"0-0:1.0.0({dsmr_time(self.now)})"]
        elif v in ("4", "5"):
            lines += [f"1-3:0.2.8({'42' if v == '4' else '50'})",
                      f"0-0:1.0.0({dsmr_time(self.now)})", f"0-0:96.1.1({_EQUIPMENT_ID})"]
        else:
            lines += [f"0-0:96.1.1({_EQUIPMENT_ID})"]
        digits = 5 if v == "2.2" else 6
        lines += [f"1-0:1.8.1({_fixed(imp[0], 3, digits)}*kWh)",
                  f"1-0:1.8.2({_fixed(imp[1], 3, digits)}*kWh)",
                  f"1-0:2.8.1({_fixed(exp[0], 3, digits)}*kWh)",
                  f"1-0:2.8.2({_fixed(exp[1], 3, digits)}*kWh)"]
        if v == "5B":
            lines += [f"1-0:1.4.0({_fixed(plus_w, 3, 2)}*kW)",
                      f"1-0:1.6.0({dsmr_time(self.now.replace(day=1, hour=7))})"
                      f"({_fixed(plus_w, 3, 2)}*kW)"]
        lines.append(f"0-0:96.14.0({self._tariff():04d})")
        if v == "2.2":
            lines += [f"1-0:1.7.0({_fixed(plus_w // 10, 2, 4)}*kW)",
                      f"1-0:2.7.0({_fixed(minus_w // 10, 2, 4)}*kW)",
                      "0-0:96.13.1()", "0-0:96.13.0()"]
        else:
            lines += [f"1-0:1.7.0({_fixed(plus_w, 3, 2)}*kW)",
                      f"1-0:2.7.0({_fixed(minus_w, 3, 2)}*kW)"]
            if v in ("4", "5"):
                lines += ["0-0:96.7.21(00004)", "0-0:96.7.9(00002)",
                          "1-0:99.97.0(1)(0-0:96.7.19)(251102143512W)(0000000240*s)"]
                lines += [f"1-0:{c}2.32.0(00000)" for c in "357"[: self.phases]]
                lines += [f"1-0:{c}2.36.0(00000)" for c in "357"[: self.phases]]
                lines += ["0-0:96.13.0()"]
            lines += self._phases(values, phase_w)
        measured_at: dict[str, datetime] = {}
        if self.has_gas:
            assert self._gas_capture is not None
            gas = self._gas_capture
            values["gas.volume"] = gas.litres / 1000
            measured_at["gas.volume"] = gas.at
            if v == "2.2":  # the two-line 24.3.0 format of DSMR 2.2/3, time without S/W
                lines += ["0-1:24.1.0(3)", f"0-1:96.1.0({_GAS_ID})",
                          f"0-1:24.3.0({dsmr_time(gas.at, suffix=False)})(00)(60)(1)"
                          "(0-1:24.2.1)(m3)", f"({_fixed(gas.litres, 3, 5)})"]
            elif v == "5B":  # Belgium: the not temperature-corrected volume, 0-n:24.2.3
                lines += ["0-1:24.1.0(003)", f"0-1:96.1.1({_GAS_ID})", "0-1:24.4.0(1)",
                          f"0-1:24.2.3({dsmr_time(gas.at)})({_fixed(gas.litres, 3, 5)}*m3)"]
            else:
                lines += ["0-1:24.1.0(003)", f"0-1:96.1.0({_GAS_ID})",
                          f"0-1:24.2.1({dsmr_time(gas.at)})({_fixed(gas.litres, 3, 5)}*m3)"]
        if self.water_use is not None and v in ("5", "5B"):
            assert self._water_capture is not None
            water = self._water_capture
            values["water.volume"] = water.litres / 1000
            measured_at["water.volume"] = water.at
            ident = "96.1.1" if v == "5B" else "96.1.0"
            lines += ["0-2:24.1.0(007)", f"0-2:{ident}({_WATER_ID})",
                      f"0-2:24.2.1({dsmr_time(water.at)})({_fixed(water.litres, 3, 5)}*m3)"]
        return values, measured_at, "\r\n".join(lines) + "\r\n"

    def _phases(self, values: dict[str, float], phase_w: list[int]) -> list[str]:
        """Per-phase lines: voltages (DSMR 5, Fluvius), currents and +P/-P per phase.

        OBIS per phase L1/L2/L3: voltage 32/52/72.7.0, current 31/51/71.7.0, +P 21/41/61.7.0,
        -P 22/42/62.7.0.
        """
        v = self.version
        volts: list[str] = []
        amps: list[str] = []
        plus: list[str] = []
        minus: list[str] = []
        for i, p in enumerate(phase_w):
            n, c, cp = i + 1, "357"[i], "246"[i]
            decivolts = 2320 - abs(p) // 50  # a little sag under load
            values[f"grid.power_l{n}"] = float(p)
            plus.append(f"1-0:{cp}1.7.0({_fixed(max(p, 0), 3, 2)}*kW)")
            minus.append(f"1-0:{cp}2.7.0({_fixed(max(-p, 0), 3, 2)}*kW)")
            if v != "4":  # DSMR 4.2 meters (and dsmr-parser's V4) have no voltage lines
                values[f"grid.voltage_l{n}"] = decivolts / 10
                volts.append(f"1-0:{c}2.7.0({_fixed(decivolts, 1, 3)}*V)")
            if v == "5B":  # Fluvius: A with 2 decimals
                centiamps = round(abs(p) * 1000 / decivolts)
                values[f"grid.current_l{n}"] = centiamps / 100
                amps.append(f"1-0:{c}1.7.0({_fixed(centiamps, 2, 3)}*A)")
            else:  # DSMR 4/5: whole A
                whole = round(abs(p) * 10 / decivolts)
                values[f"grid.current_l{n}"] = float(whole)
                amps.append(f"1-0:{c}1.7.0({whole:03d}*A)")
        return volts + amps + plus + minus


def _fixed(units: int, decimals: int, digits: int) -> str:
    """``units`` of 10^-decimals as DSMR's fixed-point text: _fixed(4426, 3, 6) = '000004.426'."""
    scale = 10**decimals
    return f"{units // scale:0{digits}d}.{units % scale:0{decimals}d}"
