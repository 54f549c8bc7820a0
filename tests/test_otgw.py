"""The OTGW monitor against the bench's gateway emulator, over a pty and over TCP.

The emulator reports a boiler model's state; the driver must read exactly that state, keep the
model's burner timeline, never write to a gateway it was not allowed to command, survive a
pulled cable, and turn silence into UNAVAILABLE. The technician's view is checked on the same
rig.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.commands import inspect_otgw
from drivers.links import SerialLink, TcpLink
from drivers.opentherm import DATA_IDS, QUANTITY_SIDES
from drivers.otgw import OtgwMonitor
from drivers.reading import Quality, Reading, Value
from hil.boiler_model import BoilerModel
from hil.otgw import Faults, OtgwEmulator
from hil.ptys import VirtualSerialPort
from hil.weather import OutdoorCourse
from tests.support import LogEvents, events

START = datetime(2026, 1, 15, 6, tzinfo=UTC)  # the morning shower is at 06:30
F88 = {d.quantity for d in DATA_IDS.values() if d.quantity and d.type == "f88"}


def boiler(temp: float = 8.0) -> BoilerModel:
    model = BoilerModel(start=START, outdoor=OutdoorCourse.constant(temp).at_posix, seed=1)
    model.step(900.0)
    return model


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait for ``condition``; fail naming ``what`` if it never holds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.01)  # the driver's task makes progress meanwhile
    except TimeoutError:
        raise AssertionError(f"never happened within {timeout:g} s: {what}") from None


async def deliver(emu: OtgwEmulator, drv: OtgwMonitor, lines: list[str]) -> None:
    """Report ``lines`` and wait until the driver has consumed every one."""
    target = drv.monitor.counts.lines + len(lines)
    emu.write_lines(lines)
    await until(lambda: drv.monitor.counts.lines >= target, f"{len(lines)} lines consumed")


def by_quantity(readings: list[Reading]) -> dict[str, Reading]:
    return {r.quantity: r for r in readings}


def assert_matches_model(readings: list[Reading], expected: dict[str, Value]) -> None:
    got = by_quantity(readings)
    assert set(got) == set(expected)
    for quantity, reading in got.items():
        assert reading.quality is Quality.GOOD, reading
        if quantity in F88:  # f8.8 carries 1/256 steps
            assert reading.value == pytest.approx(expected[quantity], abs=1 / 512)
        else:
            assert reading.value == expected[quantity]
            assert type(reading.value) is type(expected[quantity])


@dataclass
class Rig:
    path: Path
    port: VirtualSerialPort
    model: BoilerModel
    emu: OtgwEmulator
    drivers: list[OtgwMonitor]

    async def monitor(self, *, allow_commands: bool = False, alternatives: tuple[int, ...] = (),
                      silence: float = 60.0) -> OtgwMonitor:
        drv = OtgwMonitor("boiler", SerialLink(str(self.path)), allow_commands=allow_commands,
                          alternatives=alternatives, silence=silence)
        self.drivers.append(drv)
        await drv.open()
        await until(lambda: drv.connected, "connected")
        return drv


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    path = tmp_path / "ttyOTGW"
    port = VirtualSerialPort(path)
    model = boiler()
    emu = OtgwEmulator(model, serial=port)
    await emu.start()
    rig = Rig(path, port, model, emu, [])
    yield rig
    for drv in rig.drivers:
        await drv.close()
    await emu.stop()
    port.close()


# -- values ---------------------------------------------------------------------------------------


async def test_passive_monitor_reads_the_model_and_never_writes(rig: Rig) -> None:
    drv = await rig.monitor()
    await deliver(rig.emu, drv, rig.emu.cycle())
    expected = rig.model.snapshot()
    # The thermostat never polls the return temperature (id 28); passively it stays unknown.
    del expected["boiler.return_temp"]
    assert_matches_model(await drv.read(), expected)
    assert rig.model.flame or rig.model.ch_active  # the rig is in an interesting state
    assert drv.monitor.unsupported == {33}
    assert rig.emu.received == b""


async def test_allowed_commands_identify_the_firmware_and_add_an_alternative(rig: Rig) -> None:
    drv = await rig.monitor(allow_commands=True, alternatives=(28,))
    await until(lambda: rig.emu.alternatives == [28] and drv.firmware is not None, "replies")
    await deliver(rig.emu, drv, rig.emu.cycle())
    assert rig.emu.commands == ["PR=A", "AA=28"]
    assert b"PS" not in rig.emu.received
    assert drv.firmware == "OpenTherm Gateway 5.1"
    assert_matches_model(await drv.read(), rig.model.snapshot())  # return temp via R/B lines
    assert drv.describe()["firmware"] == "OpenTherm Gateway 5.1"


async def test_tcp_gateway_and_a_dropped_connection(port: int) -> None:
    model = boiler()
    emu = OtgwEmulator(model, tcp_port=port)
    await emu.start()
    drv = OtgwMonitor("boiler", TcpLink("127.0.0.1", port))
    try:
        await drv.open()
        await until(lambda: drv.connected and emu.clients == 1, "connected")
        await deliver(emu, drv, emu.cycle())
        expected = model.snapshot()
        del expected["boiler.return_temp"]
        assert_matches_model(await drv.read(), expected)
        emu.disconnect_clients()  # the network gateway reboots
        await until(lambda: not drv.connected, "disconnect seen")
        await until(lambda: drv.connected and emu.clients == 1, "reconnected")
        model.step(600.0)
        await deliver(emu, drv, emu.cycle())
        expected = model.snapshot()
        del expected["boiler.return_temp"]
        assert_matches_model(await drv.read(), expected)
        assert emu.received == b""
    finally:
        await drv.close()
        await emu.stop()


# -- the timeline ---------------------------------------------------------------------------------


def model_state_at(model: BoilerModel, t: float) -> dict[str, bool]:
    """The flags as the model's own timeline says they were at Unix time ``t``."""
    state: dict[str, bool] = {}
    for at, quantity, value in model.timeline:
        if at > t:
            break
        state[quantity] = value
    return state


async def test_timeline_follows_the_model_through_cycling_and_a_shower(rig: Rig) -> None:
    drv = await rig.monitor()
    model, emu = rig.model, rig.emu
    expected: list[tuple[str, Value]] = []
    last: dict[str, Value] = {}
    lines: list[str] = []
    for _ in range(360):  # two simulated hours, one status and modulation exchange per 20 s
        model.step(20.0)
        lines += emu.exchange(0) + emu.exchange(17)
        state: dict[str, Value] = {
            "boiler.ch_active": model.ch_active, "boiler.dhw_active": model.dhw_active,
            "boiler.flame": model.flame, "boiler.modulation": round(model.modulation * 256) / 256}
        flags = model_state_at(model, model.now.timestamp())
        assert {q: state[q] for q in flags} == flags  # the emulator shows the model's timeline
        expected += [(q, v) for q, v in state.items() if last.get(q) != v]
        last = state
        if len(lines) >= 100:  # a pty holds a few kB: let the driver keep up
            await deliver(emu, drv, lines)
            lines = []
    await deliver(emu, drv, lines)
    timeline = drv.take_events()
    assert [(e.quantity, e.value) for e in timeline] == expected
    assert [e.at for e in timeline] == sorted(e.at for e in timeline)
    flames = [e.value for e in timeline if e.quantity == "boiler.flame"]
    assert flames.count(True) >= 3  # heating cycles and the shower
    assert (True in [e.value for e in timeline if e.quantity == "boiler.dhw_active"])
    assert drv.take_events() == []


# -- outages --------------------------------------------------------------------------------------


async def test_cable_pulled_and_plugged_back(rig: Rig, logs: LogEvents) -> None:
    drv = await rig.monitor()
    await deliver(rig.emu, drv, rig.emu.cycle())
    assert all(r.good for r in await drv.read())
    rig.port.unplug()
    await until(lambda: not drv.connected, "cable pull noticed")
    for _ in range(3):
        readings = await drv.read()
        assert readings
        assert {r.quality for r in readings} == {Quality.UNAVAILABLE}
        assert all(str(rig.path) in (r.detail or "") for r in readings)
    rig.port.plug()
    await until(lambda: drv.connected, "reopened after the cable is back", timeout=15.0)
    assert await drv.read() == []  # open again, but no frame yet: neither down nor up
    assert events(logs, "source.recovered") == []
    rig.model.step(60.0)
    await deliver(rig.emu, drv, rig.emu.cycle())
    readings = await drv.read()
    assert readings
    assert all(r.good for r in readings)
    assert len(events(logs, "source.unavailable")) == 1
    assert len(events(logs, "source.recovered")) == 1


async def test_silence_turns_every_value_unavailable(rig: Rig) -> None:
    drv = await rig.monitor(silence=0.3)
    await deliver(rig.emu, drv, rig.emu.cycle())
    assert all(r.good for r in await drv.read())
    await asyncio.sleep(0.5)
    readings = await drv.read()
    assert {r.quality for r in readings} == {Quality.UNAVAILABLE}
    assert {r.detail for r in readings} == {
        f"serial {rig.path} 9600 8N1: no OpenTherm frame for 0.3 s"}
    await deliver(rig.emu, drv, rig.emu.cycle())
    assert all(r.good for r in await drv.read())


async def test_a_silent_boiler_turns_only_its_values_unavailable(rig: Rig) -> None:
    drv = await rig.monitor(silence=0.3)
    await deliver(rig.emu, drv, rig.emu.cycle())
    thermostat_only = [line for line in rig.emu.cycle() if line.startswith("T")]
    for _ in range(8):  # the thermostat keeps asking, nobody answers
        await deliver(rig.emu, drv, thermostat_only[:4])
        await asyncio.sleep(0.06)
    readings = by_quantity(await drv.read())
    for quantity, reading in readings.items():
        if QUANTITY_SIDES[quantity] == "slave":
            assert reading.quality is Quality.UNAVAILABLE
            assert reading.detail == (f"serial {rig.path} 9600 8N1: no OpenTherm frame from the "
                                      "boiler for 0.3 s")
        else:
            assert reading.good, reading
    assert "boiler.flame" in readings
    assert "room.setpoint" in readings


async def test_line_faults_are_counted_never_read_and_logged_once(rig: Rig,
                                                                  logs: LogEvents) -> None:
    drv = await rig.monitor()
    rig.emu.faults = Faults(parity=1.0, bus_error=1.0, garbage=1.0)
    lines = rig.emu.cycle()
    await deliver(rig.emu, drv, lines)
    assert {QUANTITY_SIDES[q] for q in drv.monitor.values} == {"master"}
    counts = drv.monitor.counts
    assert counts.parity_errors == len(rig.emu.poll) * 2  # every boiler answer
    assert counts.bus_errors == counts.garbage == len(rig.emu.poll) * 2
    await drv.read()
    await deliver(rig.emu, drv, rig.emu.cycle())
    await drv.read()
    assert len(events(logs, "otgw.parity_errors")) == 1
    assert len(events(logs, "otgw.bus_errors")) == 1
    rig.emu.faults = Faults()
    garbage = counts.garbage
    rig.emu.inject(b"\x00\xff noise\r\n")  # a burst of noise on the line
    await until(lambda: drv.monitor.counts.garbage == garbage + 1, "noise counted")
    await deliver(rig.emu, drv, rig.emu.cycle())
    await drv.read()
    assert any(r.quantity == "boiler.flame" and r.good for r in await drv.read())
    assert len(events(logs, "otgw.parity_errors_stopped")) == 1


def test_the_emulated_firmware_answers_commands() -> None:
    emu = OtgwEmulator(boiler(), tcp_port=1)
    assert emu.answer("PR=A") == "PR: A=OpenTherm Gateway 5.1"
    assert emu.answer("AA=28") == "AA: 28"
    assert emu.answer("DA=28") == "DA: 28"
    assert emu.answer("DA=28") == "NF"
    assert emu.answer("AA=300") == "BV"
    assert emu.answer("GW=1") == "NG"
    assert emu.answer("PS") == "SE"
    assert emu.answer("PS=1") == "PS: 1"
    assert not emu.reporting  # summary mode: the gateway stops reporting frames
    emu.write_lines(emu.cycle())
    assert emu.lines_written == 0
    assert emu.answer("PS=0") == "PS: 0"
    assert emu.reporting


def test_options_are_checked() -> None:
    link = SerialLink("/dev/ttyUSB0")
    with pytest.raises(ValueError, match="need allow_commands"):
        OtgwMonitor("boiler", link, alternatives=(28,))
    with pytest.raises(ValueError, match=r"1\.\.255"):
        OtgwMonitor("boiler", link, allow_commands=True, alternatives=(0,))
    with pytest.raises(ValueError, match="silence"):
        OtgwMonitor("boiler", link, silence=0)


async def test_a_missing_port_is_unavailable_naming_it(tmp_path: Path) -> None:
    drv = OtgwMonitor("boiler", SerialLink(str(tmp_path / "nothing")))
    await drv.open()
    try:
        readings = await drv.read()
        async with asyncio.timeout(10):
            while "cannot open" not in (readings[0].detail or ""):
                await asyncio.sleep(0.01)
                readings = await drv.read()
        assert {r.quantity for r in readings} == set(QUANTITY_SIDES)
        assert all(r.quality is Quality.UNAVAILABLE for r in readings)
        assert all(f"cannot open serial {tmp_path / 'nothing'}" in (r.detail or "")
                   for r in readings)
    finally:
        await drv.close()


# -- the technician's view ------------------------------------------------------------------------


async def test_inspect_prints_decoded_lines(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig.emu.run(interval=0.01, speed=60.0)
    code = await asyncio.to_thread(inspect_otgw.main, str(rig.path), None, False, 0.8)
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split() == ["time", "src", "type", "id", "name", "value", "parity"]
    status = [line for line in out if " status " in line and "READ-ACK" in line]
    assert status
    assert any("boiler_water_temp" in line for line in out)
    assert out[-1].startswith(f"{len(out) - 2} lines: ")  # every line shown, then counted
    assert rig.emu.received == b""


async def test_inspect_json_lines(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    rig.emu.run(interval=0.01)
    code = await asyncio.to_thread(inspect_otgw.main, str(rig.path), None, True, 0.5)
    assert code == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(o["kind"] == "frame" and o["time"].endswith("Z") for o in objects)
    request = next(o for o in objects if o["line"].startswith("T") and o["data_id"] == 0)
    assert request == {"time": request["time"], "kind": "frame", "line": request["line"],
                       "source": "T", "from": "thermostat", "type": "READ-DATA", "data_id": 0,
                       "name": "status", "value": request["value"], "parity_ok": True}
    assert request["value"]["hb"] == {"ch_enable": True, "dhw_enable": True,
                                      "cooling_enable": False, "otc_active": False,
                                      "ch2_enable": False}
    temp = next(o for o in objects if o["name"] == "boiler_water_temp" and o["source"] == "B")
    assert temp["type"] == "READ-ACK"
    assert isinstance(temp["value"], float)
    asked = next(o for o in objects if o["name"] == "boiler_water_temp" and o["source"] == "T")
    assert asked["value"] is None  # a READ-DATA carries no value


async def test_inspect_over_tcp(port: int, capsys: pytest.CaptureFixture[str]) -> None:
    emu = OtgwEmulator(boiler(), tcp_port=port)
    await emu.start()
    emu.run(interval=0.01)
    try:
        code = await asyncio.to_thread(inspect_otgw.main, None, f"127.0.0.1:{port}", True, 0.5)
    finally:
        await emu.stop()
    assert code == 0
    assert capsys.readouterr().out.count('"kind": "frame"') > 5


async def test_inspect_errors_name_the_port(rig: Rig, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "ttyNONE"
    assert await asyncio.to_thread(inspect_otgw.main, str(missing), None, False, 0.2) == 1
    assert f"cannot open serial {missing}" in capsys.readouterr().err
    # The port opens, but the gateway says nothing.
    assert await asyncio.to_thread(inspect_otgw.main, str(rig.path), None, False, 0.3) == 1
    err = capsys.readouterr().err
    assert f"nothing arrived from serial {rig.path} 9600 8N1 within 0.3 s" in err
    assert inspect_otgw.main(None, None, False, 1.0) == 2
    assert inspect_otgw.main(None, "nohost", False, 1.0) == 2
    assert "--tcp" in capsys.readouterr().err
