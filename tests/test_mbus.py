"""The M-Bus line: meters read, addressed and scanned over a real pty, and the mbus commands.

The emulated meters build their frames independently of pyMeterBus, and talk to the driver over
a real pty.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.commands import inspect_mbus
from drivers.links import SerialLink
from drivers.mbus import (
    MbusMaster,
    MbusMeter,
    Probe,
    ScanStep,
    answer_window,
    scan_primary,
    scan_secondary,
    secondary_search,
)
from drivers.mbus_frames import (
    Response,
    matches,
    req_ud2,
    select_frame,
    snd_nke,
)
from drivers.reading import Quality, Reading
from hil.heatpump_server import default_model
from hil.mbus_meter import (
    FIXED_VALUES,
    EmulatedMeter,
    EnergyUnit,
    MbusBus,
    heatpump_values,
)
from hil.ptys import VirtualSerialPort
from tests.support import LogEvents, events


def test_answer_window_follows_en_13757_2() -> None:
    # 330 bit times + 50 ms + one 11-bit character at 2400 baud
    assert answer_window(SerialLink("/dev/ttyUSB0", 2400, "E")) == pytest.approx(
        330 / 2400 + 0.05 + 11 / 2400)


# -- against emulated meters ----------------------------------------------------------------------

Bus = Callable[[Sequence[EmulatedMeter]], AbstractAsyncContextManager[MbusBus]]
CURRENT = {"heatmeter.energy": 12345.0, "heatmeter.volume": 678.9, "heatmeter.flow": 15.0,
           "heatmeter.power": 4200.0, "heatmeter.supply_temp": 35.5,
           "heatmeter.return_temp": 31.25}


@pytest.fixture
def bus() -> Bus:
    @asynccontextmanager
    async def running(meters: Sequence[EmulatedMeter]) -> AsyncIterator[MbusBus]:
        port = VirtualSerialPort()
        line = MbusBus(port, meters)
        await line.start()
        try:
            yield line
        finally:
            await line.stop()
            port.close()

    return running


def link(line: MbusBus) -> SerialLink:
    return SerialLink(line.port.path, 2400, "N")  # a pty refuses parity: 8N1 on the bench


def values(readings: list[Reading]) -> dict[str, float]:
    assert all(r.good for r in readings), readings
    out: dict[str, float] = {}
    for r in readings:
        assert isinstance(r.value, float)
        out[r.quantity] = r.value
    return out


async def test_primary_address(bus: Bus) -> None:
    assert FIXED_VALUES == CURRENT
    async with bus([EmulatedMeter(primary=5)]) as line:
        meter = MbusMeter("heat", link(line), address=5, timeout=0.5)
        try:
            assert values(await meter.read()) == CURRENT  # not the historic 90 %, nor tariff 1
            assert line.requests == [snd_nke(5), req_ud2(5)]  # SND_NKE before the first read
            assert values(await meter.read()) == CURRENT
            assert line.requests[2:] == [req_ud2(5)]
            assert meter.describe()["secondary_address"] == "123456782D2C0804"
        finally:
            await meter.close()


async def test_secondary_addresses_tell_meters_at_the_factory_address_apart(bus: Bus) -> None:
    other = {**CURRENT, "heatmeter.energy": 500.0, "heatmeter.volume": 12.5}
    meters = [EmulatedMeter(primary=0, ident=12345678),
              EmulatedMeter(primary=0, ident=12349999, manufacturer="SLB", values=other)]
    async with bus(meters) as line:
        master = MbusMaster(link(line), timeout=0.3)
        first = MbusMeter("a", link(line), secondary="123456782D2C0804", master=master)
        second = MbusMeter("b", link(line), secondary="12349999FFFFFFFF", master=master)
        try:
            assert values(await first.read()) == CURRENT
            assert values(await second.read()) == other
            assert line.requests[:3] == [snd_nke(0xFD), select_frame("123456782D2C0804"),
                                         req_ud2(0xFD)]
            assert values(await second.read()) == other
            assert line.requests[-2:] == [select_frame("12349999FFFFFFFF"), req_ud2(0xFD)]
            both = MbusMeter("both", link(line), secondary="1234FFFFFFFFFFFF", master=master)
            readings = await both.read()  # two meters acknowledge at once
            assert {r.quality for r in readings} == {Quality.UNAVAILABLE}
            assert (readings[0].detail or "").startswith(
                f"serial {line.port.path} 2400 8N1 address 1234FFFFFFFFFFFF: bad answer to "
                "select (SND_UD CI=52): 1 stray bytes after the frame")
        finally:
            await master.close()


@pytest.mark.parametrize(("unit", "energy"), [
    ("kWh", 12345.0), ("Wh", 12345.0), ("MJ", 12345.0),
    ("GJ", 12333.33),  # 12345 kWh = 44.442 GJ, shown as 44.4 GJ in 0.1 GJ steps
])
async def test_energy_units(bus: Bus, unit: EnergyUnit, energy: float) -> None:
    async with bus([EmulatedMeter(primary=1, energy_unit=unit)]) as line:
        meter = MbusMeter("heat", link(line), address=1, timeout=0.5)
        try:
            assert values(await meter.read())["heatmeter.energy"] == energy
        finally:
            await meter.close()


async def test_faults_retries_and_transitions(bus: Bus, logs: LogEvents) -> None:
    async with bus([EmulatedMeter(primary=5)]) as line:
        meter = MbusMeter("heat", link(line), address=5, timeout=0.1, retries=2)
        where = f"serial {line.port.path} 2400 8N1 address 5"
        try:
            line.corrupt = 1  # one bad checksum: the retry gets a good answer
            assert values(await meter.read()) == CURRENT
            line.corrupt = 3  # three in a row: every attempt fails
            readings = await meter.read()
            assert {r.quality for r in readings} == {Quality.UNAVAILABLE}
            assert {r.quantity for r in readings} == set(CURRENT)
            assert readings[0].detail is not None
            assert readings[0].detail.startswith(f"{where}: bad answer to ")
            assert "checksum" in readings[0].detail
            assert readings[0].detail.endswith("(3 attempts)")
            line.silent = True
            readings = await meter.read()
            assert readings[0].detail == (f"{where}: no answer to SND_NKE within 0.1 s "
                                          "(3 attempts)")
            line.silent = False
            assert values(await meter.read()) == CURRENT
            assert len(events(logs, "source.unavailable")) == 1
            assert len(events(logs, "source.recovered")) == 1
        finally:
            await meter.close()


async def test_meter_status(bus: Bus, logs: LogEvents) -> None:
    water = EmulatedMeter(primary=5, medium=0x07)
    async with bus([water]) as line:
        meter = MbusMeter("heat", link(line), address=5, timeout=0.5)
        try:
            water.status = 0x04  # power low: values still good
            assert values(await meter.read()) == CURRENT
            assert values(await meter.read()) == CURRENT
            water.status = 0x08  # permanent error
            readings = await meter.read()
            assert {r.quality for r in readings} == {Quality.DEVICE_ERROR}
            assert readings[0].detail == (f"serial {line.port.path} 2400 8N1 address 5: meter "
                                          "reports permanent error")
            assert [e["meaning"] for e in events(logs, "mbus.status")] == [
                "power low", "permanent error"]
            assert len(events(logs, "mbus.not_a_heat_meter")) == 1
        finally:
            await meter.close()


async def test_a_missing_port_is_unavailable_naming_it() -> None:
    meter = MbusMeter("heat", SerialLink("/dev/ttyNOSUCH", 2400, "E"), address=3)
    readings = await meter.read()
    assert {r.quality for r in readings} == {Quality.UNAVAILABLE}
    assert (readings[0].detail or "").startswith("cannot open serial /dev/ttyNOSUCH 2400 8E1")


async def test_a_meter_fed_by_the_heat_pump_model(bus: Bus) -> None:
    model = default_model()  # a January morning: the heat pump runs
    model.step(2 * 3600.0)
    async with bus([EmulatedMeter(primary=2, values=heatpump_values(model))]) as line:
        meter = MbusMeter("heat", link(line), address=2, timeout=0.5)
        try:
            before = values(await meter.read())
            model.step(3600.0)
            after = values(await meter.read())
        finally:
            await meter.close()
    # Registers show whole kWh and hundredths of m³, rounded down, as a meter's display does.
    assert after["heatmeter.energy"] == math.floor(model.heat_energy_kwh)
    assert after["heatmeter.energy"] > before["heatmeter.energy"]
    assert after["heatmeter.volume"] == math.floor(model.flow * 60 / 1000 * 100) / 100
    assert after["heatmeter.supply_temp"] == pytest.approx(model.supply_temp, abs=0.005)
    assert after["heatmeter.flow"] == pytest.approx(model.flow, abs=1 / 120)  # whole l/h
    assert after["heatmeter.power"] == pytest.approx(max(model.heat_power, 0.0), abs=50.0)


def test_driver_options_are_checked() -> None:
    port = SerialLink("/dev/ttyUSB0", 2400, "E")
    with pytest.raises(ValueError, match="exactly one of address and secondary"):
        MbusMeter("heat", port)
    with pytest.raises(ValueError, match="heat: primary address 251 is outside"):
        MbusMeter("heat", port, address=251)


# -- scanning -------------------------------------------------------------------------------------


async def test_primary_scan_finds_meters_and_collisions(bus: Bus) -> None:
    meters = [EmulatedMeter(primary=3), EmulatedMeter(primary=7, ident=77777777),
              EmulatedMeter(primary=9, ident=11111111), EmulatedMeter(primary=9, ident=22222222)]
    async with bus(meters) as line:
        master = MbusMaster(link(line), timeout=0.02, retries=0)
        try:
            steps = [s async for s in scan_primary(master, range(12))]
        finally:
            await master.close()
    assert [s.done for s in steps] == list(range(1, 13))
    assert {s.total for s in steps} == {12}
    found = {s.found.primary: s.found.secondary for s in steps if s.found}
    assert found == {3: "123456782D2C0804", 7: "777777772D2C0804"}
    assert [s.probe for s in steps if s.collision] == ["9"]


async def test_secondary_scan_finds_every_meter(bus: Bus) -> None:
    idents = [12345678, 12345600, 12349999, 55550000]
    async with bus([EmulatedMeter(primary=0, ident=i) for i in idents]) as line:
        master = MbusMaster(link(line), timeout=0.02, retries=0)
        try:
            steps = [s async for s in scan_secondary(master)]
        finally:
            await master.close()
    found = sorted(s.found.secondary or "?" for s in steps if s.found is not None)
    assert found == sorted(f"{i}2D2C0804" for i in idents)
    assert [s.done for s in steps] == list(range(1, len(steps) + 1))
    assert "123456FFFFFFFFFF" in [s.probe for s in steps if s.collision]


def _response(ident: str) -> Response:
    return Response(address=0xFD, ident=ident, manufacturer="KAM", manufacturer_code=0x2C2D,
                    version=1, medium=4, access=0, status=0, records=())


@given(st.sets(st.integers(0, 99_999_999).map(lambda i: f"{i:08d}"), max_size=8))
@settings(max_examples=60, deadline=None)
def test_secondary_search_finds_exactly_the_meters(idents: set[str]) -> None:
    async def probe(mask: str) -> tuple[Probe, Response | None]:
        hits = [i for i in idents if matches(_response(i).secondary_address, mask)]
        if not hits:
            return Probe.NOTHING, None
        if len(hits) > 1:
            return Probe.COLLISION, None
        return Probe.SINGLE, _response(hits[0])

    async def run() -> list[ScanStep]:
        return [s async for s in secondary_search(probe)]

    steps = asyncio.run(run())
    found = [s.found.secondary or "?" for s in steps if s.found]
    assert sorted(found) == sorted(_response(i).secondary_address for i in idents)


# -- the technician's commands --------------------------------------------------------------------


async def test_read_command_shows_every_record(bus: Bus,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    meters = [EmulatedMeter(primary=5), EmulatedMeter(primary=0, ident=22220000,
                                                      energy_unit="GJ")]
    async with bus(meters) as line:
        port = line.port.path
        code = await asyncio.to_thread(inspect_mbus.read, port, "5", 2400, False, parity="N")
        out = capsys.readouterr().out
        assert code == 0
        assert "meter      KAM 12345678 version 8 (heat (outlet))" in out
        assert "secondary  123456782D2C0804" in out
        assert "-> heatmeter.energy = 12345.0 kWh" in out
        assert "-> heatmeter.flow = 15.0 l/min" in out
        for note in ("maximum value", "tariff 1", "historic value (storage 1)"):
            assert f"ignored: {note}" in out
        code = await asyncio.to_thread(inspect_mbus.read, port, "22220000ffffffff", 2400, True,
                                       parity="N")
        report = json.loads(capsys.readouterr().out)
        assert code == 0
        assert report["ident"] == "22220000"
        assert report["values"]["heatmeter.energy"] == 12333.33
        energy = next(r for r in report["records"] if r["quantity"] == "heatmeter.energy")
        assert (energy["vib"], energy["value"], energy["unit"]) == ("FB 08", "44.4", "GJ")
        code = await asyncio.to_thread(inspect_mbus.read, port, "9", 2400, False, parity="N",
                                       timeout=0.05)
        assert code == 1
        assert f"serial {port} 2400 8N1 address 9: no answer to SND_NKE" in \
               capsys.readouterr().err


def test_read_command_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert inspect_mbus.read("/dev/ttyUSB0", "300", 2400, False) == 2
    assert "--address: primary address 300 is outside 0..250" in capsys.readouterr().err
    assert inspect_mbus.read("/dev/ttyNOSUCH", "5", 2400, False) == 1
    assert "cannot open serial /dev/ttyNOSUCH 2400 8E1" in capsys.readouterr().err
    assert inspect_mbus.scan("/dev/ttyNOSUCH", 2400, False, False) == 1
    assert "cannot open serial /dev/ttyNOSUCH 2400 8E1" in capsys.readouterr().err


async def test_scan_command(bus: Bus, capsys: pytest.CaptureFixture[str]) -> None:
    meters = [EmulatedMeter(primary=3), EmulatedMeter(primary=0, ident=55550000),
              EmulatedMeter(primary=0, ident=55551111)]
    async with bus(meters) as line:
        port = line.port.path
        code = await asyncio.to_thread(inspect_mbus.scan, port, 2400, True, False, parity="N",
                                       timeout=0.01)
        captured = capsys.readouterr()
        assert code == 0
        assert "primary scan: found primary 3, secondary 123456782D2C0804" in captured.err
        assert "primary scan: several meters answer at address 0" in captured.err
        assert "primary scan: probe 251/251 (250)" in captured.err  # plain lines, not a TTY
        table = captured.out.splitlines()
        assert table[0].split() == ["primary", "secondary", "maker", "ident", "medium"]
        assert any(line.split()[:2] == ["3", "123456782D2C0804"] for line in table)
        assert any(line.split()[:1] == ["555500002D2C0804"] for line in table)
        assert any(line.split()[:1] == ["555511112D2C0804"] for line in table)
        assert table[-1].startswith("several meters answer at primary address 0")
        code = await asyncio.to_thread(inspect_mbus.scan, port, 2400, False, True, parity="N",
                                       timeout=0.01)
        report = json.loads(capsys.readouterr().out)
        assert code == 0
        assert report["meters"] == [{"primary": 3, "secondary": "123456782D2C0804",
                                     "manufacturer": "KAM", "ident": "12345678",
                                     "medium": "heat (outlet)"}]
        assert report["collisions"] == ["0"]
