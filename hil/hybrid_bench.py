"""A hybrid installation on the wire, as a gateway in a Dutch house meets it.

One :class:`hil.hybrid.HybridInstallation` (house, heat pump, combi boiler, household) advanced
``speed`` times real time, shown through every device the agent reads:

* the heat pump over Modbus TCP (the bench profile, unit 1) with an Eastron SDM120 sub-meter on
  its heat pump circuit as unit 2 of the same line (a Modbus TCP gateway to RS-485);
* the boiler through an OpenTherm Gateway on a serial port (a pty);
* a heat meter on the heat pump's output, on M-Bus (a pty; primary address 1);
* the smart meter's P1 port (DSMR 5, a pty): the household, heat pump and boiler electricity,
  and the boiler's gas.

:meth:`HybridBench.devices` gives the agent's ``devices:`` config for it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drivers.profile import load_profile
from drivers.tasks import cancel
from hil.broker import free_port
from hil.heatpump_server import register_values
from hil.hybrid import HybridInstallation
from hil.mbus_meter import EmulatedMeter, MbusBus, heatpump_values
from hil.modbus_device import SimulatedModbusDevice
from hil.otgw import OtgwEmulator
from hil.p1_meter import SimulatedP1Meter
from hil.ptys import VirtualSerialPort
from hil.weather import OutdoorCourse

HEATPUMP_PROFILE = "hpagent_bench_heatpump"
SUBMETER_PROFILE = "eastron_sdm120"


class HybridBench:
    def __init__(self, workdir: Path, *, speed: float = 60.0, tick: float = 0.5,
                 start: datetime | None = None, seed: int = 1) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.speed, self.tick = speed, tick
        start = start or datetime(2026, 1, 15, 6, tzinfo=UTC)
        self.installation = inst = HybridInstallation(outdoor=OutdoorCourse(seed=seed),
                                                      start=start, seed=seed)
        self.modbus = SimulatedModbusDevice(load_profile(HEATPUMP_PROFILE), port=free_port())
        self.modbus.add_unit(load_profile(SUBMETER_PROFILE), 2)
        self.otgw_port = VirtualSerialPort(workdir / "ttyOTGW")
        self.otgw = OtgwEmulator(inst.boiler, serial=self.otgw_port)
        self.mbus_port = VirtualSerialPort(workdir / "ttyMBUS")
        self.mbus = MbusBus(self.mbus_port,
                            [EmulatedMeter(primary=1, values=heatpump_values(inst.heatpump))])
        self.p1_port = VirtualSerialPort(workdir / "ttyP1")
        self.p1 = SimulatedP1Meter(
            "5", port=self.p1_port, speed=speed, start=start, seed=seed,
            heat_pump=lambda: inst.heatpump.electric_power + inst.boiler_electric_w,
            gas_index=lambda: inst.boiler.gas_m3)
        self._task: asyncio.Task[None] | None = None

    def heatpump_values(self) -> dict[str, Any]:
        return register_values(self.installation.heatpump)

    def submeter_values(self) -> dict[str, Any]:
        hp = self.installation.heatpump
        return {"submeter.import_energy": hp.electric_energy_kwh, "submeter.export_energy": 0.0,
                "submeter.power": hp.electric_power, "submeter.voltage": 230.0,
                "submeter.current": hp.electric_power / 230.0}

    async def _show(self) -> None:
        await self.modbus.show(self.heatpump_values(), unit=1)
        await self.modbus.show(self.submeter_values(), unit=2)

    async def start(self) -> None:
        await self.modbus.start()
        await self._show()
        await self.otgw.start()
        await self.mbus.start()
        await self.p1.start()
        self._task = asyncio.create_task(self._advance())

    async def _advance(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            self.installation.step((now - last) * self.speed)
            self.installation.take_events()  # the OTGW shows the state; the agent times changes
            last = now
            await self._show()
            self.otgw.write_cycle()

    async def stop(self) -> None:
        await cancel(self._task)
        await self.p1.stop()
        await self.mbus.stop()
        await self.otgw.stop()
        await self.modbus.stop()
        for port in (self.otgw_port, self.mbus_port, self.p1_port):
            port.close()

    @property
    def reads(self) -> int:
        return self.modbus.reads

    def devices(self, interval: float) -> list[dict[str, Any]]:
        """The agent's ``devices:`` for this bench (ptys are 8N1: they refuse parity)."""
        tcp = {"host": "127.0.0.1", "port": self.modbus.port}
        return [
            {"kind": "modbus", "name": "heatpump", "profile": HEATPUMP_PROFILE, "tcp": tcp,
             "unit": 1, "interval": interval},
            {"kind": "modbus", "name": "submeter", "profile": SUBMETER_PROFILE, "tcp": tcp,
             "unit": 2, "interval": interval},
            {"kind": "otgw", "name": "boiler", "serial": {"port": self.otgw_port.path},
             "interval": interval},
            {"kind": "mbus", "name": "heatmeter", "address": 1, "interval": interval,
             "serial": {"port": self.mbus_port.path, "baudrate": 2400, "parity": "N"}},
            {"kind": "p1", "name": "p1", "serial": {"port": self.p1_port.path},
             "interval": interval},
        ]
