"""Recordings in and out: ``hpagent record`` from live devices, ``hpagent replay`` through the
whole pipeline to a file or a broker, verified as a recipient would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers import recording
from hil.broker import Mosquitto
from hil.heatpump_server import SimulatedHeatPump
from tests.support import CASES, hpagent_async, payload

CASE = CASES / "report" / "counter_reset" / "recording.jsonl"


async def test_replay_to_a_file_verifies_and_reports_like_the_recording(tmp_path: Path) -> None:
    out = tmp_path / "messages.txt"
    code, stdout, err = await hpagent_async("replay", str(CASE), "--out", str(out), "--json",
                                            "--config", str(tmp_path / "none.yaml"))
    assert code == 0, err
    replayed = json.loads(stdout)
    code, direct, _ = await hpagent_async("report", "--recording", str(CASE), "--json",
                                          "--config", str(tmp_path / "none.yaml"))
    reported = json.loads(direct)
    for key in ("heat_kwh", "electricity_kwh", "spf", "degree_days", "reference_gas_m3"):
        assert replayed[key] == pytest.approx(reported[key]), key
    code, verdict, _ = await hpagent_async("verify", "--file", str(out), "--key", f"{out}.jwk",
                                           "--json")
    assert code == 0
    streams = {s["stream"]: s for s in json.loads(verdict)["streams"]}
    assert streams["hourly"]["good"] == 48
    assert streams["daily"]["good"] == 2
    bodies = [payload(line.split()[1]) for line in out.read_text().splitlines()]
    assert sum(len(b["samples"]) for b in bodies if b["stream"] == "samples") == 289
    assert bodies[0]["stream"] == "consent" and bodies[0]["kind"] == "granted"


async def test_replay_to_a_broker(tmp_path: Path, mosquitto: Mosquitto) -> None:
    from agent.trust.keys import init_key
    from tests.support import Recipient

    config = tmp_path / "hpagent.yaml"
    config.write_text(f"device_id: bench\nstate_dir: {tmp_path / 'state'}\ndevices: []\n")
    key = init_key(tmp_path / "state" / "gateway.key")
    recipient = Recipient(mosquitto.port, key.public_key())
    await recipient.start()
    code, _, err = await hpagent_async("replay", str(CASE), "--broker",
                                       f"127.0.0.1:{mosquitto.port}", "--config", str(config))
    assert code == 0, err
    await recipient.until(lambda: len(recipient.samples) == 289 and len(
        recipient.stream("hourly")) == 48 and len(recipient.stream("daily")) == 2, timeout=20)
    await recipient.stop()
    assert recipient.verifier.report.ok
    assert {b["stream"] for b in recipient.bodies} == {"consent", "samples", "hourly", "daily",
                                                       "findings"}


async def test_record_writes_live_samples(tmp_path: Path, heatpump: SimulatedHeatPump) -> None:
    config = tmp_path / "hpagent.yaml"
    config.write_text(f"""device_id: rec
state_dir: {tmp_path / 'state'}
log: {{level: warning}}
devices:
  - {{kind: modbus, name: heatpump, profile: hpagent_bench_heatpump,
      tcp: {{host: 127.0.0.1, port: {heatpump.port}}}, interval: 0.5}}
""")
    out = tmp_path / "live.jsonl"
    code, _, err = await hpagent_async("record", str(out), "--seconds", "2.2", "--config",
                                       str(config))
    assert code == 0, err
    records = list(recording.read(out))
    assert len(records) >= 3
    assert records[0].src == "heatpump"
    assert {"hp.supply_temp", "hp.heat_energy", "hp.mode"} <= set(records[-1].q)
    assert [r.t for r in records] == sorted(r.t for r in records)
