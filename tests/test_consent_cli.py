"""``hpagent consent`` as the resident uses it, and a revocation against a running daemon: the
signed notice comes, and nothing more under that grant, not even what was queued."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.trust.keys import init_key, load_private_key
from hil.broker import Mosquitto
from hil.heatpump_server import SimulatedHeatPump
from tests.support import GRANT_ALL, Recipient, hpagent, hpagent_async, recipient
from tests.test_daemon import Daemon


def set_up(tmp_path: Path, broker_port: int, hp_port: int = 1,
           grants: list[dict[str, Any]] | None = None) -> Path:
    state = tmp_path / "state"
    init_key(state / "gateway.key")
    config = tmp_path / "hpagent.yaml"
    devices = ("  - {kind: modbus, name: heatpump, profile: hpagent_bench_heatpump, "
               f"tcp: {{host: 127.0.0.1, port: {hp_port}}}, interval: 0.2, timeout: 0.5}}")
    config.write_text(
        f"device_id: gw-consent\nstate_dir: {state}\nlog: {{level: info, format: json}}\n"
        f"devices:\n{devices}\nstorage: {{commit_interval: 0}}\nrecipients:\n"
        f"  - {json.dumps(recipient('installer', broker_port, grants=grants or []))}\n"
        f"  - {json.dumps(recipient('resident', broker_port, grants=[GRANT_ALL]))}\n")
    return config


def test_grant_list_show_revoke_and_audit(tmp_path: Path) -> None:
    config = set_up(tmp_path, 1883)
    made = hpagent("consent", "grant", "--config", str(config), "--recipient", "installer",
                   "--streams", "samples,daily", "--fields", "performance,room.temp",
                   "--resolution", "15min", "--purpose", "checking the guarantee",
                   "--days", "365", "--json")
    assert made.returncode == 0, made.stderr
    terms = json.loads(made.stdout)
    grant = terms["id"]
    assert terms["resolution"] == "15min" and "room.temp" in terms["fields"]
    assert "grid.power" not in terms["fields"]
    listed = json.loads(hpagent("consent", "list", "--config", str(config), "--json").stdout)
    states = {g["id"]: g["state"] for g in listed}
    assert states[grant] == "active"
    assert any(g["recipient"] == "resident" and g["source"] == "config" for g in listed)
    shown = hpagent("consent", "show", grant, "--config", str(config))
    assert "checking the guarantee" in shown.stdout and "history" in shown.stdout
    revoked = hpagent("consent", "revoke", grant, "--config", str(config), "--reason",
                      "moved house")
    assert revoked.returncode == 0, revoked.stderr
    again = hpagent("consent", "revoke", grant, "--config", str(config))
    assert again.returncode == 0 and "already revoked" in again.stdout
    history = json.loads(hpagent("consent", "show", grant, "--config", str(config),
                                 "--json").stdout)["history"]
    assert [h["action"] for h in history] == ["grant", "revoke"]
    assert history[1]["reason"] == "moved house"
    export = tmp_path / "audit.log"
    audit = hpagent("consent", "audit", "--config", str(config), "--export", str(export))
    assert audit.returncode == 0 and "OK: 3 of 3 entries verified" in audit.stdout
    checked = hpagent("consent", "audit", "--verify", str(export), "--key", f"{export}.jwk")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = export.read_text().splitlines()
    export.write_text("\n".join([lines[0], lines[2]]) + "\n")  # an entry taken out
    tampered = hpagent("consent", "audit", "--verify", str(export), "--key", f"{export}.jwk")
    assert tampered.returncode == 1 and "entry 2: seq is 3" in tampered.stdout


def test_bad_grants_are_refused_with_the_term_named(tmp_path: Path) -> None:
    config = set_up(tmp_path, 1883)

    def grant(*args: str) -> str:
        done = hpagent("consent", "grant", "--config", str(config), "--purpose", "x", *args)
        assert done.returncode == 2, done.stdout
        return done.stderr

    assert "recipient 'nobody' is not in the configuration (recipients: installer, resident)" \
        in grant("--recipient", "nobody", "--streams", "samples", "--fields", "all")
    assert "fields: 'hp.made_up'" in grant("--recipient", "installer", "--streams", "samples",
                                          "--fields", "hp.made_up")
    assert "the hourly stream is finer than the granted resolution 'daily'" in grant(
        "--recipient", "installer", "--streams", "hourly", "--fields", "all",
        "--resolution", "daily")
    assert "no grant 'g-nope'" in hpagent("consent", "revoke", "g-nope", "--config",
                                          str(config)).stderr


async def test_a_revocation_stops_the_next_message(tmp_path: Path, mosquitto: Mosquitto,
                                                   heatpump: SimulatedHeatPump) -> None:
    config = set_up(tmp_path, mosquitto.port, heatpump.port, grants=[
        {"name": "live", "streams": ["samples"], "fields": ["performance"],
         "purpose": "the installer's check"}])
    public = load_private_key(tmp_path / "state" / "gateway.key").public_key()
    installer = Recipient(mosquitto.port, public, audience="installer", client_id="installer",
                          topic="hpagent/v1/gw-consent/installer/#")
    resident = Recipient(mosquitto.port, public, audience="resident", client_id="resident",
                         topic="hpagent/v1/gw-consent/resident/#")
    await installer.start()
    await resident.start()
    try:
        async with Daemon(config) as daemon:
            await installer.wait_for(3)
            grant = installer.stream("samples")[0]["grant"]
            code, _, err = await hpagent_async("consent", "revoke", grant, "--config",
                                               str(config), "--reason", "the contract ended")
            assert code == 0, err
            await installer.until(lambda: any(b.get("kind") == "revoked"
                                              for b in installer.stream("consent")))
            at_notice = len(installer.bodies)
            seen = len(resident.samples)
            await resident.wait_for(seen + 5)  # the agent goes on, for the resident
            assert await daemon.stop() == 0
    finally:
        await installer.stop()
        await resident.stop()
    assert len(installer.bodies) == at_notice, "nothing after the revoked notice"
    notice = installer.stream("consent")[-1]
    assert notice["grant"] == grant and notice["reason"] == "the contract ended"
    assert installer.verifier.report.ok and resident.verifier.report.ok
