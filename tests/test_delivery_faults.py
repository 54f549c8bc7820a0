"""Nothing promised is lost: real processes, a real mosquitto, and faults.

The agent killed with SIGKILL fifty times while it samples and publishes to two recipients; a
broker away for a week; a full disk; a TLS certificate the broker rejects; a fault inside one
recipient's publisher. After each, every committed sample reaches every entitled recipient, in
chains without gaps, and the agent says clearly what happened and keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.outbox import Pending
from agent.delivery.store import Store
from agent.sample import ClockState, Sample
from agent.trust.keys import init_key
from drivers.reading import Reading
from hil.broker import Mosquitto
from hil.heatpump_server import SimulatedHeatPump
from hil.pki import BenchCA
from hil.season import heatpump_course
from tests.support import (
    GRANT_ALL,
    LogEvents,
    Recipient,
    RunningAgent,
    agent_config,
    events,
    recipient,
)
from tests.test_daemon import Daemon

KILLS = 50
PERFORMANCE = {"name": "guarantee", "streams": ["samples", "status"], "fields": ["performance"],
               "purpose": "the guarantee"}


def config_text(state: Path, hp_port: int, broker_port: int, *, commit_interval: float = 0.2,
                devices: bool = True, since: str | None = None) -> str:
    grants = [dict(GRANT_ALL), dict(PERFORMANCE)]
    if since is not None:
        for g in grants:
            g["from"] = since
    device = (f"  - {{kind: modbus, name: heatpump, profile: hpagent_bench_heatpump, "
              f"tcp: {{host: 127.0.0.1, port: {hp_port}}}, interval: 0.1, timeout: 0.5, "
              "retries: 0}\n") if devices else ""
    return (f"device_id: gw-faults\nstate_dir: {state}\nlog: {{level: info, format: json}}\n"
            f"devices:\n{device or '  []'}\n"
            f"storage: {{commit_interval: {commit_interval}}}\n"
            "recipients:\n"
            f"  - {json.dumps(recipient('resident', broker_port, grants=[grants[0]]))}\n"
            f"  - {json.dumps(recipient('installer', broker_port, grants=[grants[1]]))}\n")


def committed(state: Path) -> list[tuple[str, str, set[str]]]:
    """(source, time, quantities) of every sample in the agent's database."""
    store = Store(state / "hpagent.db")
    try:
        from drivers.timestamps import rfc3339

        return [(s.source, rfc3339(s.t), set(s.values)) for s in store.samples(0, 10**7)]
    finally:
        store.close()


def received(reader: Recipient) -> set[tuple[str, str]]:
    return {(s["source"], s["ts"]) for s in reader.samples}


async def until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Until ``check`` holds: it looks at another process's database, which sends no event."""
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def readers(port: int, key: Any) -> tuple[Recipient, Recipient]:
    return (Recipient(port, key, audience="resident", client_id="resident",
                      topic="hpagent/v1/gw-faults/resident/#"),
            Recipient(port, key, audience="installer", client_id="installer",
                      topic="hpagent/v1/gw-faults/installer/#"))


async def test_killed_fifty_times_every_committed_sample_arrives(
        tmp_path: Path, mosquitto: Mosquitto, heatpump: SimulatedHeatPump) -> None:
    state = tmp_path / "state"
    key = init_key(state / "gateway.key")
    config = tmp_path / "hpagent.yaml"
    config.write_text(config_text(state, heatpump.port, mosquitto.port))
    resident, installer = readers(mosquitto.port, key.public_key())
    await resident.start()
    await installer.start()
    rng = random.Random(20261204)
    try:
        for _ in range(KILLS):
            before = len(committed(state)) if (state / "hpagent.db").exists() else 0

            def more(before: int = before) -> bool:
                return (state / "hpagent.db").exists() and len(committed(state)) > before

            async with Daemon(config) as daemon:
                await until(more)
                await asyncio.sleep(rng.uniform(0.0, 0.6))  # a random moment to die at
                await daemon.stop(signal.SIGKILL)
        async with Daemon(config) as daemon:  # once more, to deliver what is left
            await daemon.wait_for("agent.started")
            await until(lambda: len(committed(state)) > before)
            samples = committed(state)
            await resident.until(lambda: received(resident) >= {s[:2] for s in samples}, 60)
            await installer.until(lambda: received(installer) >= {
                s[:2] for s in samples if s[2] & {"hp.heat_energy", "hp.outdoor_temp"}}, 60)
            assert await daemon.stop() == 0
    finally:
        await resident.stop()
        await installer.stop()
    for reader in (resident, installer):
        report = reader.verifier.report
        assert report.bad == 0, report.problems[:5]  # a duplicate has the same seq and bytes
        assert report.missing == 0 and report.restarts == 0
    assert len(samples) > KILLS


async def test_a_week_without_the_broker_arrives_in_order(tmp_path: Path,
                                                          mosquitto: Mosquitto) -> None:
    """Samples of a week stored while the broker was away, then drained in a few seconds."""
    state = tmp_path / "state"
    key = init_key(state / "gateway.key")
    now = time.time()
    n = 7 * 8640
    store = Store(state / "hpagent.db")
    with store.transaction():
        for t, values in heatpump_course(now - n * 10.0, 10.0, n):
            store.add_sample(Sample("heatpump", t, ClockState.SYNCED,
                                    tuple(Reading(q, v) for q, v in values.items())))
    store.close()
    config = tmp_path / "hpagent.yaml"
    since = time.strftime("%Y-%m-%d", time.gmtime(now - 9 * 86400))
    config.write_text(config_text(state, 1, mosquitto.port, devices=False, since=since))
    resident, installer = readers(mosquitto.port, key.public_key())
    await resident.start()
    await installer.start()
    try:
        async with Daemon(config) as daemon:
            await resident.until(lambda: len(resident.samples) >= n, 120)
            await installer.until(lambda: len(installer.samples) >= n, 120)
            assert await daemon.stop() == 0
    finally:
        await resident.stop()
        await installer.stop()
    for reader in (resident, installer):
        assert reader.verifier.report.ok
        times = [s["ts"] for s in reader.samples]
        assert len(times) == n and times == sorted(times), "everything, in order"
        assert len(reader.stream("samples")) < n / 100, "in large messages"
    assert set().union(*(s["quantities"] for s in installer.samples)) <= {
        "hp.heat_energy", "hp.electric_energy", "hp.heat_power", "hp.mode", "hp.outdoor_temp",
        "hp.heat_energy_heating", "hp.heat_energy_dhw", "hp.electric_energy_heating",
        "hp.electric_energy_dhw", "hp.backup_heater_energy"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 3 MB tmpfs: a disk the test can fill."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte."""
    ballast = disk / "ballast"
    with ballast.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return ballast


async def test_a_full_disk_is_reported_and_nothing_is_lost(
        tmp_path: Path, small_disk: Path, mosquitto: Mosquitto,
        heatpump: SimulatedHeatPump) -> None:
    state = small_disk / "state"
    key = init_key(state / "gateway.key")
    config = tmp_path / "hpagent.yaml"
    config.write_text(config_text(state, heatpump.port, mosquitto.port))
    resident, _ = readers(mosquitto.port, key.public_key())
    await resident.start()
    try:
        async with Daemon(config) as daemon:
            await resident.until(lambda: len(resident.samples) >= 3)
            ballast = fill(small_disk)
            await daemon.wait_for("store.write_failed", timeout=30)
            full_at = time.time()
            await asyncio.sleep(1.0)  # polls go on while the disk is full
            assert daemon.process is not None and daemon.process.returncode is None
            ballast.unlink()
            await daemon.wait_for("store.write_recovered", timeout=30)
            # what was polled while the disk was full was kept in memory, and now arrives
            await resident.until(lambda: any(
                full_at <= parse(s["ts"]) <= full_at + 1.0 for s in resident.samples), 30)
            assert await daemon.stop() == 0
    finally:
        await resident.stop()
    failed = events(daemon.logs, "store.write_failed")
    assert len(failed) == 1 and "full" in failed[0]["error"]
    assert resident.verifier.report.ok


def parse(ts: str) -> float:
    from drivers.timestamps import parse_rfc3339

    return parse_rfc3339(ts)


async def test_a_rejected_certificate_is_named_and_the_other_recipient_is_served(
        tmp_path: Path, mosquitto: Mosquitto, heatpump: SimulatedHeatPump,
        logs: LogEvents) -> None:
    pki, stranger = BenchCA(tmp_path / "pki"), BenchCA(tmp_path / "other-pki")
    server = pki.issue("broker", "localhost", server=True)
    secure = Mosquitto(tmp_path / "secure", ca_file=pki.cert_file, cert_file=server.cert,
                       key_file=server.key)
    await secure.start()
    try:
        config = agent_config(tmp_path / "state", heatpump.port, [
            recipient("installer", secure.port, tls={"ca_file": str(stranger.cert_file)}),
            recipient("resident", mosquitto.port)])
        running = RunningAgent(config)
        resident = Recipient(mosquitto.port, running.public_key, audience="resident",
                             topic="hpagent/v1/gw-test/resident/#")
        await resident.start()
        async with running as agent:
            await running.polls(4)
            await resident.wait_for(3)
            assert not agent.publishers[0].connection.connected
        await resident.stop()
    finally:
        await secure.stop()
    down = [e for e in events(logs, "broker.unavailable") if e["client_id"].endswith("installer")]
    assert len(down) == 1 and "TLS certificate rejected" in down[0]["reason"]
    assert resident.verifier.report.ok


async def test_a_fault_in_one_publisher_is_logged_retried_and_harms_no_other(
        tmp_path: Path, mosquitto: Mosquitto, heatpump: SimulatedHeatPump,
        logs: LogEvents) -> None:
    config = agent_config(tmp_path / "state", heatpump.port, [
        recipient("installer", mosquitto.port), recipient("resident", mosquitto.port)])
    running = RunningAgent(config)
    agent = running.agent
    faulty = agent.publishers[0]
    real = faulty.refill
    faults = {"left": 3}

    def refill(room: int) -> list[Pending]:
        if faults["left"]:
            faults["left"] -= 1
            raise sqlite3.OperationalError("disk I/O error (injected)")
        return real(room)

    faulty.refill = refill
    installer, resident = (Recipient(mosquitto.port, running.public_key, audience=name,
                                     client_id=name, topic=f"hpagent/v1/gw-test/{name}/#")
                           for name in ("installer", "resident"))
    await installer.start()
    await resident.start()
    async with running:
        await running.polls(4)
        await resident.wait_for(3)
        await installer.until(lambda: len(installer.samples) >= agent.ingest.committed, 30)
    await installer.wait_for(agent.ingest.committed)
    await resident.wait_for(agent.ingest.committed)
    await installer.stop()
    await resident.stop()
    assert len(events(logs, "publisher.failed")) == 1
    assert "injected" in events(logs, "publisher.failed")[0]["error"]
    assert events(logs, "publisher.recovered")
    assert installer.verifier.report.ok and resident.verifier.report.ok
