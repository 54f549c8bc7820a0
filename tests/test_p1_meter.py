"""The P1 driver against the bench meter: real ptys and real TCP on 127.0.0.1.

Covers detection (spec, line), values as the bench meter wrote them, fault injection with its
counters and once-per-transition logs, silence, a cable pulled and plugged back, a TCP dongle
that hangs up, and the technician command (``hpagent p1``). Waiting is always on the driver's
own progress (``wait_until``), bounded by a generous guard, never on the wall clock.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.commands.inspect_p1 import main
from drivers.links import SerialLink, TcpLink
from drivers.p1 import P1Meter
from drivers.p1_telegram import P1Decoder, P1Telegram
from drivers.reading import Quality
from hil.broker import free_port
from hil.p1_meter import GARBAGE, SentTelegram, SimulatedP1Meter
from hil.ptys import VirtualSerialPort
from tests.support import LogEvents, events

SPEED = {"2.2": 200.0, "4": 200.0, "5": 20.0, "5B": 20.0}  # a telegram every 50 ms
GUARD = 10.0  # s: only to fail instead of hanging; no test relies on timing


@pytest.fixture
def vport(tmp_path: Path) -> Iterator[VirtualSerialPort]:
    port = VirtualSerialPort(tmp_path / "ttyP1")  # a stable symlink, like /dev/serial/by-id/
    yield port
    port.close()


@asynccontextmanager
async def running(emulator: SimulatedP1Meter, meter: P1Meter) -> AsyncIterator[None]:
    await emulator.start()
    await meter.open()
    try:
        yield
    finally:
        await meter.close()
        await emulator.stop()


async def until(meter: P1Meter, predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(GUARD):
        await meter.wait_until(predicate)


async def next_telegram(meter: P1Meter) -> P1Telegram:
    async with asyncio.timeout(GUARD):
        return await meter.next_telegram()


def sent_as(emulator: SimulatedP1Meter, telegram: P1Telegram) -> SentTelegram:
    """The telegram the bench meter wrote that the driver decoded as ``telegram``."""
    if telegram.meter_time is not None:
        [sent] = [s for s in emulator.sent if s.meter_time == telegram.meter_time]
    else:  # DSMR 2.2 has no meter clock: the values identify it
        sent = next(s for s in emulator.sent if s.values == dict(telegram.values))
    assert sent.fault is None
    return sent


@pytest.mark.parametrize("version", ["2.2", "4", "5", "5B"])
async def test_detects_the_meter_and_reads_what_it_wrote(
        version: str, vport: VirtualSerialPort, logs: LogEvents) -> None:
    emulator = SimulatedP1Meter(version, port=vport, speed=SPEED[version],
                                heat_pump=lambda: 1800.0,
                                water_use=(lambda: 0.3) if version == "5B" else None)
    meter = P1Meter("p1", SerialLink(vport.path))
    async with running(emulator, meter):
        for _ in range(3):
            telegram = await next_telegram(meter)
            sent = sent_as(emulator, telegram)
            assert dict(telegram.values) == sent.values
            assert dict(telegram.measured_at) == sent.measured_at
        readings = await meter.read()
    assert {r.quantity: r.value for r in readings} == dict(telegram.values)
    assert all(r.quality is Quality.GOOD for r in readings)
    assert "gas.volume" in telegram.values
    assert ("water.volume" in telegram.values) == (version == "5B")
    info = meter.describe()
    assert (info["spec"], info["line"], info["line_setting"]) == (version, "115200 8N1", "detect")
    [detected] = events(logs, "p1.detected")
    assert (detected["spec"], detected["line"]) == (version, "115200 8N1")
    assert not [e for e in logs if e["log_level"] == "warning"]


async def test_line_settings_the_port_refuses_are_skipped(
        vport: VirtualSerialPort, logs: LogEvents) -> None:
    """A pty refuses parity (EINVAL): 7E1 settings are passed over, 8N1 is found."""
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"])
    meter = P1Meter("p1", SerialLink(vport.path),
                    detect_lines=[(9600, 7, "E"), (115200, 7, "E"), (115200, 8, "N")])
    async with running(emulator, meter):
        await next_telegram(meter)
    assert meter.line == (115200, 8, "N")
    assert [e["line"] for e in events(logs, "p1.line_refused")] == ["9600 7E1", "115200 7E1"]
    assert [e["line"] for e in events(logs, "p1.detected")] == ["115200 8N1"]


async def test_pinned_spec_and_line(vport: VirtualSerialPort, logs: LogEvents) -> None:
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"])
    meter = P1Meter("p1", SerialLink(vport.path), spec="4", line=(115200, 8, "N"))
    async with running(emulator, meter):
        telegram = await next_telegram(meter)
    # dsmr-parser's DSMR 4 specification has no voltage lines; everything else is read
    assert dict(telegram.values) == {q: v for q, v in sent_as(emulator, telegram).values.items()
                                     if not q.startswith("grid.voltage")}
    assert not events(logs, "p1.line_refused")
    info = meter.describe()
    assert (info["spec"], info["spec_setting"], info["line_setting"]) == ("4", "4", "pinned")
    [detected] = events(logs, "p1.detected")
    assert detected["pinned_spec"] and detected["pinned_line"]


async def test_a_missing_port_is_retried_and_reported_with_its_name(
        tmp_path: Path, logs: LogEvents) -> None:
    path = str(tmp_path / "ttyUSB-not-plugged")
    meter = P1Meter("p1", SerialLink(path))
    await meter.open()
    try:
        await until(meter, lambda: meter.counters.open_failures >= 3)
        readings = await meter.read()
    finally:
        await meter.close()
    assert {r.quantity for r in readings} == {"grid.import_energy", "grid.export_energy",
                                              "grid.power"}
    assert all(r.quality is Quality.UNAVAILABLE for r in readings)
    assert f"serial {path}: no valid telegram yet; cannot open serial {path}" in (
        readings[0].detail or "")
    [unavailable] = events(logs, "p1.unavailable")  # once, however many attempts
    assert path in unavailable["reason"]


async def test_a_wrong_pinned_spec_never_yields_values(
        vport: VirtualSerialPort, logs: LogEvents) -> None:
    """A DSMR 2.2 meter (no CRC) read as DSMR 5: every telegram is refused, logged once."""
    emulator = SimulatedP1Meter("2.2", port=vport, speed=SPEED["2.2"])
    meter = P1Meter("p1", SerialLink(vport.path), spec="5", silence=0.5)
    async with running(emulator, meter):
        await until(meter, lambda: meter.counters.parse_errors >= 3)
        await until(meter, lambda: meter.counters.silences >= 1)
        readings = await meter.read()
    assert meter.counters.telegrams == 0
    assert all(r.quality is Quality.UNAVAILABLE for r in readings)
    assert "unparseable" in (readings[0].detail or "")
    assert len(events(logs, "p1.parse_errors")) == 1
    assert len(events(logs, "p1.silent")) == 1


async def test_faults_are_counted_and_logged_once_per_transition(
        vport: VirtualSerialPort, logs: LogEvents) -> None:
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"])
    meter = P1Meter("p1", SerialLink(vport.path))  # recover_after 60 s: faults stay "on"
    c = meter.counters
    async with running(emulator, meter):
        await next_telegram(meter)
        for n in range(1, 4):  # a flaky line: bad telegrams between good ones
            emulator.corrupt_crc()
            emulator.truncate()
            emulator.garbage()

            def faulted(n: int = n) -> bool:
                return c.crc_errors == n and c.parse_errors == n

            await until(meter, faulted)
            await next_telegram(meter)
    assert c.garbage_bytes == 3 * len(GARBAGE)
    assert c.telegrams >= 4
    for kind in ("p1.crc_errors", "p1.parse_errors", "p1.garbage"):
        assert len(events(logs, kind)) == 1, kind
    assert not events(logs, "p1.recovered")
    [crc] = events(logs, "p1.crc_errors")
    assert "CRC" in crc["reason"]


async def test_good_telegrams_after_faults_log_recovered(
        vport: VirtualSerialPort, logs: LogEvents) -> None:
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"])
    meter = P1Meter("p1", SerialLink(vport.path), recover_after=0.0)
    async with running(emulator, meter):
        await next_telegram(meter)
        emulator.corrupt_crc(3)
        await until(meter, lambda: meter.counters.crc_errors == 3)
        telegram = await next_telegram(meter)
        assert dict(telegram.values) == sent_as(emulator, telegram).values
    [started] = events(logs, "p1.crc_errors")
    [recovered] = events(logs, "p1.recovered")
    assert recovered["faults"] == ["crc_errors"]
    assert logs.index(started) < logs.index(recovered)


async def test_silence_makes_every_reading_unavailable_until_telegrams_resume(
        vport: VirtualSerialPort, logs: LogEvents) -> None:
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"])
    meter = P1Meter("p1", SerialLink(vport.path), silence=0.3)
    async with running(emulator, meter):
        first = await next_telegram(meter)
        emulator.silence(10 * 24 * 3600)
        await until(meter, lambda: meter.counters.silences == 1)
        silent = await meter.read()
        emulator.silence(0)
        await next_telegram(meter)
        back = await meter.read()
    assert [r.quantity for r in silent] == list(first.values)
    assert all(r.quality is Quality.UNAVAILABLE and r.value is None for r in silent)
    assert re.search(rf"serial {re.escape(vport.path)}: no valid telegram for \d",
                     silent[0].detail or "")
    assert all(r.quality is Quality.GOOD for r in back)
    assert len(events(logs, "p1.silent")) == 1
    assert events(logs, "p1.recovered")[-1]["faults"] == ["silent"]


async def test_a_cable_pulled_and_plugged_back_resumes_by_itself(
        vport: VirtualSerialPort, logs: LogEvents) -> None:
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"])
    meter = P1Meter("p1", SerialLink(vport.path))
    c = meter.counters
    async with running(emulator, meter):
        await next_telegram(meter)
        vport.unplug()  # the node vanishes mid-stream
        await until(meter, lambda: c.open_failures >= 2)  # retried, with back-off
        during = await meter.read()  # the latest telegram is recent: still served
        vport.plug()
        telegram = await next_telegram(meter)
        after = await meter.read()
    assert all(r.quality is Quality.GOOD for r in during)
    assert c.reopens == 1
    assert {r.quantity: r.value for r in after} == sent_as(emulator, telegram).values
    [unavailable] = events(logs, "p1.unavailable")  # once, however many retries
    assert vport.path in unavailable["reason"]
    assert events(logs, "p1.recovered")[-1]["faults"] == ["unavailable"]
    assert len(events(logs, "p1.detected")) == 1  # the same meter: not announced again


async def test_a_tcp_dongle_is_read_and_reconnected_after_it_hangs_up(logs: LogEvents) -> None:
    port = free_port()
    emulator = SimulatedP1Meter("5B", tcp_port=port, speed=SPEED["5B"], water_use=lambda: 0.2)
    meter = P1Meter("p1", TcpLink("127.0.0.1", port))
    async with running(emulator, meter):
        telegram = await next_telegram(meter)
        assert dict(telegram.values) == sent_as(emulator, telegram).values
        await emulator.stop()  # the dongle restarts: connection closed, then refused
        await until(meter, lambda: meter.counters.open_failures >= 1)
        await emulator.start()
        telegram = await next_telegram(meter)
        assert dict(telegram.measured_at) == sent_as(emulator, telegram).measured_at
    assert meter.counters.reopens == 1
    info = meter.describe()
    assert (info["link"], info["line"], info["spec"]) == (f"tcp 127.0.0.1:{port}", None, "5B")
    [unavailable] = events(logs, "p1.unavailable")
    assert f"127.0.0.1:{port}" in unavailable["reason"]


async def test_gas_is_reported_in_every_sample_with_its_capture_time(
        vport: VirtualSerialPort) -> None:
    """The same capture (DSMR 5: every 5 min) arrives in many telegrams with the same
    measured_at; the ledger deduplicates on it."""
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"])
    meter = P1Meter("p1", SerialLink(vport.path))
    async with running(emulator, meter):
        gas = []
        for _ in range(2):
            await next_telegram(meter)
            [reading] = [r for r in await meter.read() if r.quantity == "gas.volume"]
            gas.append((reading.value, reading.measured_at))
    assert gas[0] == gas[1]
    assert gas[0][1] == datetime(2026, 1, 15, 5, 55, tzinfo=UTC)  # 06:55 CET, the last capture


@pytest.mark.parametrize(("version", "period"), [("5", 300), ("5B", 300), ("4", 3600),
                                                 ("2.2", 3600)])
def test_the_bench_meter_captures_gas_at_the_spec_cadence(version: str, period: int) -> None:
    # from 06:59:50 CET, over the 07:00 shower of the default gas use
    emulator = SimulatedP1Meter(version, start=datetime(2026, 1, 15, 5, 59, 50, tzinfo=UTC))
    decoder = P1Decoder()
    captures: dict[datetime, float] = {}
    for _ in range(int(2.5 * period / emulator.interval)):
        [telegram] = decoder.feed(emulator.step().data)
        assert isinstance(telegram, P1Telegram)
        at, value = telegram.measured_at["gas.volume"], telegram.values["gas.volume"]
        assert captures.setdefault(at, value) == value  # one capture time, one value
        assert at.timestamp() % period == 0
    values = list(captures.values())
    assert len(values) == 4  # the one before the start, and one per boundary passed
    assert values == sorted(values)
    assert values[-1] > values[0]  # the shower


def test_the_bench_meter_shows_a_gas_index_at_its_capture_time() -> None:
    """``gas_index`` (m³ burnt so far, e.g. a boiler model's) is shown exactly, to the litre,
    as it stood at each 5-minute capture."""
    burnt = [0.0]
    emulator = SimulatedP1Meter("5", gas_index=lambda: burnt[0], gas_m3=100.0,
                                start=datetime(2026, 1, 15, 6, 4, 50, tzinfo=UTC))
    decoder = P1Decoder()
    shown = {}
    for step in range(20):  # 06:04:50 .. 06:05:09
        burnt[0] = 0.0125 * step
        [telegram] = decoder.feed(emulator.step().data)
        assert isinstance(telegram, P1Telegram)
        shown[telegram.measured_at["gas.volume"]] = telegram.values["gas.volume"]
    assert shown == {datetime(2026, 1, 15, 6, 0, tzinfo=UTC): 100.0,  # before any gas
                     datetime(2026, 1, 15, 6, 5, tzinfo=UTC): 100.125}  # step 10: 0.125 m³


async def test_read_before_any_telegram_is_unavailable(vport: VirtualSerialPort) -> None:
    meter = P1Meter("p1", SerialLink(vport.path))
    readings = await meter.read()  # not even opened: still no exception
    assert [r.quality for r in readings] == [Quality.UNAVAILABLE] * 3
    assert meter.describe()["counters"] == {
        "telegrams": 0, "crc_errors": 0, "parse_errors": 0, "garbage_bytes": 0, "silences": 0,
        "reopens": 0, "open_failures": 0}


def test_bad_settings_are_refused_at_construction(vport: VirtualSerialPort) -> None:
    with pytest.raises(ValueError, match="unknown DSMR specification '6'"):
        P1Meter("p1", SerialLink(vport.path), spec="6")
    with pytest.raises(ValueError, match="serial port only"):
        P1Meter("p1", TcpLink("127.0.0.1", 8088), line=(115200, 8, "N"))


# The technician command -----------------------------------------------------------------------


async def test_cli_once_json_prints_one_telegram(
        vport: VirtualSerialPort, capsys: pytest.CaptureFixture[str], logs: LogEvents) -> None:
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"], water_use=lambda: 0.1)
    await emulator.start()
    try:
        code = await asyncio.to_thread(main, vport.path, None, "auto", True, True, GUARD)
    finally:
        await emulator.stop()
    out = capsys.readouterr().out
    assert code == 0
    [line] = out.splitlines()
    shown = json.loads(line)
    assert set(shown) == {"spec", "meter_time", "quantities", "measured_at"}
    assert shown["spec"] == "5"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", shown["meter_time"])
    meter_time = datetime.fromisoformat(shown["meter_time"].replace("Z", "+00:00"))
    [sent] = [s for s in emulator.sent if s.meter_time == meter_time]
    assert shown["quantities"] == sent.values
    assert shown["measured_at"] == {"gas.volume": "2026-01-15T05:55:00.000Z",
                                    "water.volume": "2026-01-15T05:55:00.000Z"}


async def test_cli_table_over_tcp(capsys: pytest.CaptureFixture[str], logs: LogEvents) -> None:
    port = free_port()
    emulator = SimulatedP1Meter("4", tcp_port=port, speed=SPEED["4"])
    await emulator.start()
    try:
        code = await asyncio.to_thread(main, None, f"127.0.0.1:{port}", "4", True, False, GUARD)
    finally:
        await emulator.stop()
    out = capsys.readouterr().out
    assert code == 0
    assert "DSMR 4" in out
    assert re.search(r"^gas\.volume +1500 +m³ +2026-01-15T05:00:00\.000Z$", out, re.MULTILINE)
    assert re.search(r"^grid\.import_energy_t1 +\d+(\.\d+)? +kWh$", out, re.MULTILINE)


def test_cli_timeout_names_the_port(vport: VirtualSerialPort,
                                    capsys: pytest.CaptureFixture[str], logs: LogEvents) -> None:
    code = main(vport.path, None, "auto", True, True, 0.3)
    err = capsys.readouterr().err
    assert code == 1
    assert f"no valid P1 telegram from serial {vport.path} within 0.3 s" in err


async def test_cli_reports_crc_failures_in_its_timeout(
        vport: VirtualSerialPort, capsys: pytest.CaptureFixture[str], logs: LogEvents) -> None:
    emulator = SimulatedP1Meter("5", port=vport, speed=SPEED["5"])
    emulator.corrupt_crc(10**6)
    await emulator.start()
    try:
        code = await asyncio.to_thread(main, vport.path, None, "5", True, True, 0.5)
    finally:
        await emulator.stop()
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert re.search(rf"serial {re.escape(vport.path)} within 0.5 s \([1-9]\d* CRC errors",
                     captured.err)
    assert len(events(logs, "p1.crc_errors")) == 1


@pytest.mark.parametrize(("port", "tcp", "spec", "message", "code"), [
    (None, None, "auto", "give --port PATH or --tcp HOST:PORT", 2),
    ("/dev/ttyP1", "localhost:8088", "auto", "give --port PATH or --tcp HOST:PORT", 2),
    (None, "localhost", "auto", "--tcp: 'localhost' is not HOST:PORT", 2),
    (None, "localhost:8088", "7", "unknown --spec '7'", 2),
    ("/nonexistent/ttyUSB9", None, "auto", "serial port /nonexistent/ttyUSB9 does not exist", 1),
])
def test_cli_refuses_bad_arguments(port: str | None, tcp: str | None, spec: str, message: str,
                                   code: int, capsys: pytest.CaptureFixture[str],
                                   logs: LogEvents) -> None:
    assert main(port, tcp, spec, True, True, 1.0) == code
    assert message in capsys.readouterr().err
