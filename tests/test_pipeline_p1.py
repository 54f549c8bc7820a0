"""A P1 meter in the config: its quantities reach samples, the store and verified messages."""

from __future__ import annotations

from pathlib import Path

from agent.delivery.store import Store
from agent.service.config import Config
from hil.broker import Mosquitto
from hil.p1_meter import SimulatedP1Meter
from hil.ptys import VirtualSerialPort
from tests.support import Recipient, RunningAgent, recipient


async def test_p1_meter_through_the_whole_pipeline(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = VirtualSerialPort(tmp_path / "ttyP1")
    meter = SimulatedP1Meter("5", port=port, speed=10)
    await meter.start()
    config = Config.model_validate({
        "device_id": "gw-p1", "state_dir": str(tmp_path / "state"),
        "devices": [{"kind": "p1", "name": "p1", "serial": {"port": port.path},
                     "interval": 0.5}],
        "recipients": [recipient("local", mosquitto.port), recipient(
            "installer", mosquitto.port, grants=[{"name": "guarantee", "streams": ["samples"],
                                                  "fields": ["performance"],
                                                  "purpose": "the guarantee"}])],
        "storage": {"commit_interval": 0}})
    running = RunningAgent(config)
    local = Recipient(mosquitto.port, running.public_key, audience="local",
                      topic="hpagent/v1/gw-p1/local/#")
    installer = Recipient(mosquitto.port, running.public_key, audience="installer",
                          topic="hpagent/v1/gw-p1/installer/#", client_id="installer")
    await local.start()
    await installer.start()
    try:
        async with running as agent:
            await running.polls(6)
        await local.wait_for(agent.ingest.committed)
        await installer.until(lambda: any("gas.volume" in s["quantities"]
                                          for s in installer.samples))
    finally:
        await local.stop()
        await installer.stop()
        await meter.stop()
        port.close()
    assert local.verifier.report.ok and installer.verifier.report.ok
    published = [s for s in local.samples if "grid.import_energy" in s["quantities"]]
    assert published, "samples after the first telegram carry the meter's values"
    last = published[-1]
    assert last["source"] == "p1"
    assert {"grid.import_energy", "grid.export_energy", "grid.power",
            "gas.volume"} <= set(last["quantities"])
    assert "gas.volume" in last["measured_at"], "gas carries its capture time"
    written = {round(t.values["grid.import_energy"], 3) for t in meter.sent}
    assert last["quantities"]["grid.import_energy"] in written
    store = Store(config.state_dir / "hpagent.db")
    stored = store.samples(limit=1000)
    store.close()
    assert any("gas.volume" in s.measured_at for s in stored)
    # the installer's grant holds the gas (performance) but not the household's electricity
    assert all(set(s["quantities"]) <= {"gas.volume"} for s in installer.samples)
