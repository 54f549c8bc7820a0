"""The simulated heat pump on the wire: a pymodbus server showing a HeatPumpModel via a profile.

The register map is the same profile file the agent reads (``hpagent_bench_heatpump`` by
default), encoded with the agent's own codec, so every value a test expects can be read off the
model. Every table gets one contiguous block from its lowest to its highest register, so reads
that span gaps succeed, as on most real devices. The model advances ``speed`` simulated seconds
per real second; read transactions are counted for the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.codec import Decoder
from drivers.profile import Profile, Table, load_profile
from drivers.reading import Value
from hil.heatpump_model import HeatPump, HeatPumpModel, House
from hil.weather import OutdoorCourse

log = structlog.get_logger("hpagent.hil")

BENCH_PROFILE = "hpagent_bench_heatpump"
_TABLE_ORDER = (Table.COIL, Table.DISCRETE, Table.HOLDING, Table.INPUT)  # pymodbus's tuple order


def default_model(start: datetime | None = None, seed: int = 1) -> HeatPumpModel:
    """A terraced house on a January day in De Bilt, heated by a 6 kW air-to-water heat pump."""
    return HeatPumpModel(House(), HeatPump(), OutdoorCourse(seed=seed),
                         start or datetime(2026, 1, 15, 6, tzinfo=UTC), seed=seed)


class RegisterImage:
    """The words of every register, per table, computed from a dict of vocabulary values."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.decoders = [Decoder.compile(r) for r in profile.registers]
        self.spans: dict[Table, tuple[int, int]] = {}
        for dec in self.decoders:
            table = dec.register.table
            assert table is not None
            lo, hi = self.spans.get(table, (0xFFFF, 0))
            self.spans[table] = (min(lo, dec.register.first), max(hi, dec.register.end))

    def writes(self, values: dict[str, Value]) -> list[tuple[Table, int, list[int]]]:
        """``(table, address, words)`` for every register whose quantity is in ``values``."""
        out: list[tuple[Table, int, list[int]]] = []
        for dec in self.decoders:
            if dec.quantity not in values:
                continue
            words = dec.encode(values[dec.quantity])
            table = dec.register.table
            assert table is not None
            pos = 0
            for address, count in dec.spans:
                out.append((table, address, words[pos : pos + count]))
                pos += count
        return out

    def sim_device(self, unit: int, action: Callable[..., Any]) -> SimDevice:
        blocks: list[list[SimData]] = []
        for table in _TABLE_ORDER:
            lo, hi = self.spans.get(table, (0, 1))
            if table.is_bits:
                blocks.append([SimData(lo, count=hi - lo, values=False, datatype=DataType.BITS)])
            else:
                blocks.append([SimData(lo, count=hi - lo, values=0,
                                       datatype=DataType.REGISTERS)])
        return SimDevice(id=unit, simdata=(blocks[0], blocks[1], blocks[2], blocks[3]),
                         action=action)


class SimulatedHeatPump:
    """Serves ``model`` over Modbus TCP (``port``) or RTU (``serial_port``) until stopped."""

    def __init__(self, model: HeatPumpModel | None = None, *,
                 profile: str | Profile = BENCH_PROFILE, host: str = "127.0.0.1",
                 port: int = 5020, serial_port: str | None = None,
                 unit: int = 1, speed: float = 1.0, tick: float = 1.0) -> None:
        self.model = model or default_model()
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        self.image = RegisterImage(self.profile)
        self.host, self.port, self.serial_port = host, port, serial_port
        self.unit, self.speed, self.tick = unit, speed, tick
        self.reads = 0  # read transactions answered
        self.fail_with: ExcCodes | None = None  # answer every read with this exception
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def _on_request(self, _fc: int, _start: int, _address: int, _count: int,
                          _registers: list[int], set_values: list[int] | None) -> ExcCodes | None:
        if set_values is None:  # a client's read (our own updates come with values)
            self.reads += 1
            return self.fail_with
        return None

    def values(self) -> dict[str, Value]:
        snap: dict[str, Value] = dict(self.model.snapshot())
        snap["room.setpoint"] = self.model.house.setpoint
        return snap

    async def publish_state(self) -> None:
        """Write the model's current state into the registers."""
        assert self._server is not None
        for table, address, words in self.image.writes(self.values()):
            await self._server.async_setValues(self.unit, table.function_code, address, words)

    async def start(self) -> None:
        device = self.image.sim_device(self.unit, self._on_request)
        if self.serial_port is not None:
            self._server = ModbusSerialServer(device, framer=FramerType.RTU,
                                              port=self.serial_port, baudrate=9600)
        else:
            self._server = ModbusTcpServer(device, address=(self.host, self.port))
        await self.publish_state()
        self._tasks = [asyncio.create_task(self._server.serve_forever()),
                       asyncio.create_task(self._advance())]
        await asyncio.sleep(0.05)  # let the listener bind before clients connect

    async def _advance(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            self.model.step((now - last) * self.speed)
            last = now
            await self.publish_state()

    async def stop(self) -> None:
        for task in self._tasks[1:]:
            task.cancel()
        if self._server is not None:
            await self._server.shutdown()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []


async def serve_forever(host: str, port: int, *, unit: int = 1, speed: float = 1.0) -> None:
    """``hpagent hil heatpump``: serve until cancelled, logging the model once a minute."""
    hp = SimulatedHeatPump(host=host, port=port, unit=unit, speed=speed)
    await hp.start()
    log.info("hil.heatpump.serving", address=f"{host}:{port}", unit=unit, speed=speed,
             profile=BENCH_PROFILE)
    try:
        while True:
            await asyncio.sleep(60)
            snap = hp.model.snapshot()
            log.info("hil.heatpump.state", sim_time=hp.model.now.isoformat(), reads=hp.reads,
                     **{k: snap[k] for k in ("hp.mode", "hp.outdoor_temp", "hp.supply_temp",
                                             "hp.heat_power", "hp.electric_power")})
    finally:
        await hp.stop()
