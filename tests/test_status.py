"""``hpagent status``, ``watch`` and ``diagnose`` against a running daemon with the bench's
devices, one of them unplugged: each names that device and what to do."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.trust.keys import init_key
from hil.broker import Mosquitto, free_port
from hil.heatpump_server import SimulatedHeatPump
from tests.support import GRANT_ALL, hpagent_async, recipient
from tests.test_daemon import Daemon


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for the socket: a Unix socket's path holds at most 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="hps-") as d:
        os.chmod(d, 0o700)
        yield Path(d)


def write_config(tmp_path: Path, socket: Path, hp_port: int, broker_port: int) -> Path:
    state = tmp_path / "state"
    init_key(state / "gateway.key")
    config = tmp_path / "hpagent.yaml"
    unplugged = free_port()
    config.write_text(f"""\
device_id: gw-status
state_dir: {state}
status_socket: {socket}
log: {{level: info, format: json}}
storage: {{commit_interval: 0}}
devices:
  - {{kind: modbus, name: heatpump, profile: hpagent_bench_heatpump,
      tcp: {{host: 127.0.0.1, port: {hp_port}}}, interval: 0.3, timeout: 0.3, retries: 0}}
  - {{kind: modbus, name: submeter, profile: eastron_sdm120,
      tcp: {{host: 127.0.0.1, port: {unplugged}}}, interval: 0.3, timeout: 0.3, retries: 0}}
recipients:
  - {json.dumps(recipient("installer", broker_port, grants=[GRANT_ALL]))}
""")
    return config


async def test_status_watch_and_diagnose_name_the_unplugged_device(
        tmp_path: Path, socket_dir: Path, mosquitto: Mosquitto,
        heatpump: SimulatedHeatPump) -> None:
    socket = socket_dir / "status.sock"
    config = write_config(tmp_path, socket, heatpump.port, mosquitto.port)
    async with Daemon(config) as daemon:
        await daemon.wait_for("source.unavailable")
        await daemon.wait_for("broker.connected")
        code, out, err = await hpagent_async("status", "--json", "--config", str(config))
        assert code == 0, err
        status = json.loads(out)
        devices = {d["name"]: d for d in status["devices"]}
        assert devices["heatpump"]["state"] == "ok"
        assert "hp.supply_temp" in devices["heatpump"]["values"]
        assert devices["heatpump"]["age_s"] >= 0
        assert devices["submeter"]["state"] == "down"
        assert any("127.0.0.1" in p for p in devices["submeter"]["problems"].values())
        installer = status["recipients"][0]
        assert installer["connected"] and installer["grants"]
        assert status["key_id"] and status["clock"] in ("synced", "unsynced")
        assert status["uptime_s"] >= 0 and status["version"]

        code, out, _ = await hpagent_async("status", "--config", str(config))
        assert code == 0 and "submeter" in out and "down" in out

        code, out, err = await hpagent_async("diagnose", "--json", "--config", str(config))
        assert code == 1, "a device that cannot be read fails the diagnosis"
        checks = {c["name"]: c for c in json.loads(out)}
        assert checks["device submeter"]["result"] == "fail"
        assert "modbus read" in checks["device submeter"]["hint"]
        assert checks["device heatpump"]["result"] == "pass"
        assert checks["broker installer"]["result"] == "pass"
        assert checks["daemon"]["result"] == "pass" and checks["key"]["result"] == "pass"
        assert checks["grants installer"]["result"] == "pass"

        code, out, _ = await hpagent_async("watch", "--seconds", "1", "--every", "0.5",
                                           "--config", str(config))
        assert code == 0 and "submeter" in out

        socket.chmod(0o666)
        code, _, err = await hpagent_async("status", "--config", str(config))
        assert code == 1 and "open to others" in err
        assert await daemon.stop() == 0
    code, _, err = await hpagent_async("status", "--config", str(config))
    assert code == 1 and "is it running?" in err


async def test_diagnose_without_the_daemon_reads_the_devices_itself(
        tmp_path: Path, socket_dir: Path, heatpump: SimulatedHeatPump) -> None:
    config = write_config(tmp_path, socket_dir / "status.sock", heatpump.port, free_port())
    code, out, _ = await hpagent_async("diagnose", "--json", "--config", str(config))
    assert code == 1
    checks = {c["name"]: c for c in json.loads(out)}
    assert checks["daemon"]["result"] == "warn"
    assert checks["device heatpump"]["result"] == "pass"
    assert checks["device submeter"]["result"] == "fail"
    assert checks["broker installer"]["result"] == "fail"
    assert "check the host name" in checks["broker installer"]["hint"]
