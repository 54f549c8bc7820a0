"""The simulated heat pump on the wire: a Modbus device showing a HeatPumpModel via a profile.

The register map is the same profile file the agent reads (``hpagent_bench_heatpump`` by
default), so every value a test expects can be read off the model. The model advances ``speed``
simulated seconds per real second and the registers follow it every ``tick`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import structlog

from drivers.profile import Profile, load_profile
from drivers.reading import Value
from drivers.tasks import cancel
from hil.heatpump_model import HeatPumpModel
from hil.heatpump_unit import HeatPump
from hil.house import House
from hil.modbus_device import SimulatedModbusDevice
from hil.weather import OutdoorCourse

log = structlog.get_logger("hpagent.hil")

BENCH_PROFILE = "hpagent_bench_heatpump"


def default_model(start: datetime | None = None, seed: int = 1) -> HeatPumpModel:
    """A terraced house on a January day in De Bilt, heated by a 6 kW air-to-water heat pump."""
    return HeatPumpModel(House(), HeatPump(), OutdoorCourse(seed=seed),
                         start or datetime(2026, 1, 15, 6, tzinfo=UTC), seed=seed)


def register_values(model: HeatPumpModel) -> dict[str, Value]:
    """What the bench heat pump's registers show: the model's snapshot and the room setpoint."""
    values: dict[str, Value] = dict(model.snapshot())
    values["room.setpoint"] = model.house.setpoint
    return values


class SimulatedHeatPump(SimulatedModbusDevice):
    """Serves ``model`` over Modbus TCP (``port``) or RTU (``serial_port``) until stopped."""

    def __init__(self, model: HeatPumpModel | None = None, *,
                 profile: str | Profile = BENCH_PROFILE, host: str = "127.0.0.1",
                 port: int = 5020, serial_port: str | None = None, unit: int = 1,
                 speed: float = 1.0, tick: float = 1.0) -> None:
        super().__init__(load_profile(profile) if isinstance(profile, str) else profile,
                         host=host, port=port, serial_port=serial_port, unit=unit)
        self.model = model or default_model()
        self.speed, self.tick = speed, tick
        self._advancing: asyncio.Task[None] | None = None

    def values(self) -> dict[str, Value]:
        return register_values(self.model)

    async def start(self, values: Mapping[str, Value] | None = None) -> None:
        await super().start(values if values is not None else self.values())
        self._advancing = asyncio.create_task(self._advance())

    async def _advance(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            self.model.step((now - last) * self.speed)
            last = now
            await self.show(self.values())

    async def stop(self) -> None:
        await cancel(self._advancing)
        await super().stop()


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
