"""A P1 meter in the config: its quantities reach samples, the store and verified messages."""

from __future__ import annotations

from pathlib import Path

from agent.delivery.store import Store
from agent.service.config import Config
from hil.broker import Mosquitto
from hil.p1_meter import SimulatedP1Meter
from hil.ptys import VirtualSerialPort
from tests.support import Recipient, RunningAgent


async def test_p1_meter_through_the_whole_pipeline(tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = VirtualSerialPort(tmp_path / "ttyP1")
    meter = SimulatedP1Meter("5", port=port, speed=10)
    await meter.start()
    config = Config.model_validate({
        "device_id": "gw-p1", "state_dir": str(tmp_path / "state"),
        "devices": [{"kind": "p1", "name": "p1", "serial": {"port": port.path},
                     "interval": 0.5}],
        "destinations": [{"name": "local", "host": "127.0.0.1", "port": mosquitto.port}]})
    running = RunningAgent(config)
    recipient = Recipient(mosquitto.port, running.public_key)
    await recipient.start()
    try:
        async with running as agent:
            await running.polls(6)
        await recipient.wait_for(agent.ingest.committed)
    finally:
        await recipient.stop()
        await meter.stop()
        port.close()
    assert recipient.verifier.report.ok
    published = [b for b in recipient.bodies if "grid.import_energy" in b["quantities"]]
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
