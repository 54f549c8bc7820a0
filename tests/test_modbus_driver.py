"""The Modbus driver against real pymodbus servers: faults become qualities, never crashes.

TCP and RTU (over a pty pair); exception responses name link, unit and register; a device that
refuses reads across gaps gets gap-free reads; a silent or absent device is logged once when it
goes and once when it is back; the technician's ``hpagent modbus read`` shows it all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.constants import ExcCodes

from drivers.links import SerialLink, TcpLink
from drivers.modbus import ModbusBus, ModbusDevice, TransactionError
from drivers.profile import Profile, Table, load_profile
from drivers.reading import Quality, Value
from hil.modbus_device import SimulatedModbusDevice
from hil.ptys import PtyPair
from tests.support import LogEvents, events, hpagent, hpagent_async

VALUES: dict[str, Value] = {"hp.supply_temp": 35.5, "hp.return_temp": 30.2, "hp.outdoor_temp": -3.4,
          "hp.mode": "heating", "hp.heat_energy": 1234.56, "hp.electric_energy": 345.678,
          "hp.heat_power": 4200.0}


@pytest.fixture
def profile() -> Profile:
    return load_profile("hpagent_bench_heatpump")


@pytest.fixture
async def server(profile: Profile, port: int) -> AsyncIterator[SimulatedModbusDevice]:
    dev = SimulatedModbusDevice(profile, port=port)
    await dev.start(VALUES)
    yield dev
    await dev.stop()


def device(profile: Profile, port: int, **bus: float) -> ModbusDevice:
    return ModbusDevice("heatpump", ModbusBus(TcpLink("127.0.0.1", port), timeout=0.3,
                                              retries=int(bus.get("retries", 0))), 1, profile)


async def test_tcp_values(profile: Profile, server: SimulatedModbusDevice) -> None:
    dev = device(profile, server.port)
    got = {r.quantity: r.value for r in await dev.read()}
    await dev.close()
    for quantity, value in VALUES.items():
        assert got[quantity] == value
    assert server.reads == 3


async def test_rtu_over_a_pty_pair(profile: Profile) -> None:
    pair = PtyPair()
    await pair.start()
    server = SimulatedModbusDevice(profile, serial_port=pair.port_a)
    await server.start(VALUES)
    try:
        dev = ModbusDevice("heatpump", ModbusBus(SerialLink(pair.port_b, 9600), timeout=1.0),
                           1, profile)
        got = {r.quantity: r.value for r in await dev.read()}
        await dev.close()
    finally:
        await server.stop()
        await pair.stop()
    assert got["hp.supply_temp"] == 35.5
    assert got["hp.electric_energy"] == 345.678


async def test_exception_response_names_link_unit_and_register(
        profile: Profile, server: SimulatedModbusDevice, logs: LogEvents) -> None:
    server.fail_with = ExcCodes.DEVICE_FAILURE
    dev = device(profile, server.port)
    readings = await dev.read()
    await dev.read()  # a second failing poll logs nothing new
    bad = {r.quantity: r for r in readings}
    supply = bad["hp.supply_temp"]
    assert supply.quality is Quality.DEVICE_ERROR
    assert supply.value is None
    assert supply.detail == (f"tcp 127.0.0.1:{server.port} unit 1 input:0+24: exception 4 "
                             "DEVICE FAILURE reading input:1 (doc 2) 'Flow temperature'")
    failed = events(logs, "register.failed")
    assert len(failed) == len(readings), "each register's fault is logged once"
    server.fail_with = None
    good = await dev.read()
    await dev.close()
    assert all(r.quality is Quality.GOOD for r in good)
    assert len(events(logs, "register.recovered")) == len(readings)
    assert not events(logs, "source.unavailable"), "the device answered: it is not down"


async def test_a_device_that_refuses_gaps_gets_gap_free_reads(
        profile: Profile, port: int, logs: LogEvents) -> None:
    """Addresses inside a read's gaps are undefined on this device: exception 2, then split."""
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    from hil.modbus_device import RegisterImage

    image = RegisterImage(profile)
    writes = {(t, a): w for t, a, w in image.writes(VALUES)}
    blocks: dict[str, list[SimData]] = {"coil": [], "discrete": [], "holding": [], "input": []}
    for dec in image.decoders:
        table = dec.register.table
        assert table is not None
        for address, count in dec.spans:
            words = writes.get((table, address), [0] * count)
            blocks[table.value].append(SimData(address, values=words,
                                               datatype=DataType.REGISTERS))
    blocks["coil"] = [SimData(0, values=False, datatype=DataType.BITS)]
    blocks["discrete"] = [SimData(0, values=False, datatype=DataType.BITS)]
    server = ModbusTcpServer(SimDevice(id=1, simdata=(blocks["coil"], blocks["discrete"],
                                                      blocks["holding"], blocks["input"])),
                             address=("127.0.0.1", port))
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.1)
    try:
        dev = device(profile, port)
        planned = len(dev.reads)
        readings = await dev.read()
        again = await dev.read()
        await dev.close()
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
        task.cancel()
    assert all(r.quality is Quality.GOOD for r in readings + again)
    assert {r.quantity: r.value for r in readings}["hp.heat_power"] == 4200.0
    assert len(dev.reads) > planned
    assert len(events(logs, "modbus.gap_refused")) >= 1


async def test_a_silent_device_times_out_and_is_logged_once(profile: Profile, port: int,
                                                            logs: LogEvents) -> None:
    """A TCP listener that accepts but never answers: like an RS-485 slave that is off."""
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        dev = device(profile, port, retries=1)
        first = await dev.read()
        await dev.read()
        await dev.close()
    finally:
        silent.close()
    assert all(r.quality is Quality.UNAVAILABLE for r in first)
    assert "no answer within 0.3 s" in (first[0].detail or "")
    assert len(events(logs, "source.unavailable")) == 1
    assert not events(logs, "register.failed"), "an outage is one device event, not 17"


async def test_a_silent_device_is_retried_with_back_off(profile: Profile, port: int) -> None:
    """retries=2: three requests, the second 0.1 s and the third 0.2 s after a timeout."""
    seen: list[float] = []

    async def listen(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(12):  # one Modbus TCP read request, never answered
            seen.append(asyncio.get_running_loop().time())

    silent = await asyncio.start_server(listen, "127.0.0.1", port)
    try:
        bus = ModbusBus(TcpLink("127.0.0.1", port), timeout=0.3, retries=2)
        with pytest.raises(TransactionError, match="no answer"):
            await bus.read(Table.HOLDING, 0, 1, 1)
        bus.close()
    finally:
        silent.close()
    assert len(seen) == 3
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert gaps[0] >= 0.3 + 0.1 and gaps[1] >= 0.3 + 0.2


async def test_a_device_that_comes_back_is_logged_once(profile: Profile, port: int,
                                                      logs: LogEvents) -> None:
    dev = device(profile, port)
    down = await dev.read()
    assert all(r.quality is Quality.UNAVAILABLE for r in down)
    assert "cannot connect" in (down[0].detail or "")
    server = SimulatedModbusDevice(profile, port=port)
    await server.start(VALUES)
    try:
        dev.bus._next_connect = 0.0  # skip the back-off: the test does not wait a second
        up = await dev.read()
    finally:
        await dev.close()
        await server.stop()
    assert all(r.quality is Quality.GOOD for r in up)
    assert len(events(logs, "source.unavailable")) == 1
    assert len(events(logs, "source.recovered")) == 1


async def test_cli_modbus_read(server: SimulatedModbusDevice) -> None:
    code, out, err = await hpagent_async(
        "modbus", "read", "--profile", "hpagent_bench_heatpump",
        "--tcp", f"127.0.0.1:{server.port}", "--json", "--raw")
    assert code == 0, err
    report = json.loads(out)
    rows = {r["quantity"]: r for r in report["registers"]}
    assert rows["hp.supply_temp"]["value"] == 35.5
    assert rows["hp.supply_temp"]["raw"] == [355]
    assert rows["hp.electric_energy"]["raw"] == [678, 345, 0]
    assert report["reads"] == 3


def test_cli_modbus_read_on_a_dead_port_fails_clearly(port: int, tmp_path: Path) -> None:
    result = hpagent("modbus", "read", "--profile", "eastron_sdm120", "--tcp",
                     f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"tcp 127.0.0.1:{port}: cannot connect" in result.stdout
