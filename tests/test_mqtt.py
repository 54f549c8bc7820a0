"""Publishing against a real mosquitto: TLS with client certificates and an ACL, passwords,
outages on either side, and the MQTT 3.1.1 fallback. Nothing stored is ever lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.delivery.outbox import Outbox
from hil.broker import EmbeddedBroker, Mosquitto, free_port
from hil.heatpump_server import SimulatedHeatPump
from hil.pki import BenchCA
from tests.support import (
    LogEvents,
    Recipient,
    RunningAgent,
    agent_config,
    events,
    recipient,
    stored,
)


def seqs(reader: Recipient, stream: str = "samples") -> list[int]:
    return [int(b["seq"]) for b in reader.stream(stream)]


def in_order(reader: Recipient) -> bool:
    times = [s["ts"] for s in reader.samples]
    return times == sorted(times)


async def test_plain_mqtt_every_poll_arrives_verified(tmp_path: Path, mosquitto: Mosquitto,
                                                      heatpump: SimulatedHeatPump) -> None:
    config = agent_config(tmp_path / "state", heatpump.port, [recipient("local", mosquitto.port)])
    running = RunningAgent(config)
    reader = Recipient(mosquitto.port, running.public_key, audience="local")
    await reader.start()
    async with running as agent:
        await running.polls(4)
    await reader.wait_for(agent.ingest.committed)
    await reader.stop()
    assert reader.verifier.report.ok
    assert len(reader.samples) == agent.ingest.committed and in_order(reader)
    assert stored(config.state_dir) == (agent.ingest.committed, 0)
    body = reader.stream("samples")[-1]
    assert body["device_id"] == "gw-test" and body["aud"] == "local"
    assert body["grant"].startswith("cfg-local-all-")
    item = body["samples"][-1]
    assert item["source"] == "heatpump"
    assert set(item["quantities"]) >= {"hp.supply_temp", "hp.heat_energy", "hp.mode"}
    assert item["clock"] in ("synced", "unsynced")
    assert reader.stream("consent")[0]["kind"] == "granted"  # before anything under the grant
    assert reader.bodies.index(reader.stream("consent")[0]) == 0
    assert reader.presence[0] == b"online"
    assert heatpump.reads == 3 * agent.sampler.polls  # the planner's minimum, every poll


@pytest.fixture
def pki(tmp_path: Path) -> BenchCA:
    return BenchCA(tmp_path / "pki")


ACL = """\
user gw-test
topic write hpagent/v1/gw-test/#
user recipient
topic read hpagent/v1/+/installer/#
"""


@pytest.fixture
async def tls_broker(tmp_path: Path, pki: BenchCA) -> AsyncIterator[Mosquitto]:
    server = pki.issue("broker", "localhost", server=True)
    broker = Mosquitto(tmp_path / "mosquitto", ca_file=pki.cert_file, cert_file=server.cert,
                       key_file=server.key, require_certificate=True, acl=ACL)
    await broker.start()
    yield broker
    await broker.stop()


async def test_tls_with_client_certificates_and_an_acl(
        tmp_path: Path, pki: BenchCA, tls_broker: Mosquitto, heatpump: SimulatedHeatPump) -> None:
    gateway = pki.issue("gw-test", "gw-test", server=False)
    reader = pki.issue("recipient", "recipient", server=False)
    config = agent_config(tmp_path / "state", heatpump.port, [recipient(
        "installer", tls_broker.port, tls={"ca_file": str(pki.cert_file),
                                           "cert_file": str(gateway.cert),
                                           "key_file": str(gateway.key)})])
    running = RunningAgent(config)
    installer = Recipient(tls_broker.port, running.public_key,
                          tls={"ca": pki.cert_file, "cert": reader.cert, "key": reader.key})
    await installer.start()
    async with running as agent:
        await running.polls(3)
    await installer.wait_for(agent.ingest.committed)
    assert installer.verifier.report.ok
    assert seqs(installer) == list(range(1, len(seqs(installer)) + 1))
    assert len(installer.samples) == agent.ingest.committed
    assert installer.presence[-1] == b"offline"  # said on a clean stop
    await installer.stop()


async def test_a_broker_that_refuses_by_acl_keeps_the_messages(
        tmp_path: Path, pki: BenchCA, tls_broker: Mosquitto, heatpump: SimulatedHeatPump,
        logs: LogEvents) -> None:
    """The certificate says gw-test, the topics say gw-other: MQTT 5 PUBACK 135, nothing lost."""
    gateway = pki.issue("gw-test", "gw-test", server=False)
    config = agent_config(tmp_path / "state", heatpump.port, [recipient(
        "installer", tls_broker.port, tls={"ca_file": str(pki.cert_file),
                                           "cert_file": str(gateway.cert),
                                           "key_file": str(gateway.key)})], device_id="gw-other")
    running = RunningAgent(config)
    async with running as agent:
        await running.polls(3)
        assert agent.publishers[0].connection.connected
    publisher = agent.publishers[0]
    assert len(events(logs, "broker.refused")) == 1
    assert "authori" in events(logs, "broker.refused")[0]["reason"].lower()
    assert publisher.stats.acked == 0 and publisher.stats.sent >= 3
    assert stored(config.state_dir) == (agent.ingest.committed, publisher.stats.sent)
    assert agent.ingest.committed >= 3


async def test_password_from_a_file_and_a_wrong_one(tmp_path: Path,
                                                    heatpump: SimulatedHeatPump,
                                                    logs: LogEvents) -> None:
    broker = Mosquitto(tmp_path / "mosquitto", users={"gw": "correct horse"})
    await broker.start()
    try:
        for attempt, password in (("wrong", "battery staple"), ("right", "correct horse")):
            secret = tmp_path / f"{attempt}.password"
            secret.write_text(password + "\n")
            secret.chmod(0o600)
            config = agent_config(tmp_path / attempt, heatpump.port, [recipient(
                "home", broker.port, username="gw", password_file=str(secret))])
            running = RunningAgent(config)
            async with running as agent:
                await running.polls(3)
            if attempt == "wrong":
                down = events(logs, "broker.unavailable")
                assert len(down) == 1
                # mosquitto answers a wrong password with "not authorised" (MQTT 5 code 135)
                assert "broker refused the connection: not authorised" in down[0]["reason"]
                # samples kept; none made into messages yet (the notice and a heartbeat wait)
                assert stored(config.state_dir) == (agent.ingest.committed, 2)
            else:
                assert agent.publishers[0].stats.acked >= agent.ingest.committed
    finally:
        await broker.stop()


async def test_broker_down_at_start_then_up_drains_the_backlog_in_order(
        tmp_path: Path, heatpump: SimulatedHeatPump, logs: LogEvents) -> None:
    port = free_port()
    config = agent_config(tmp_path / "state", heatpump.port, [recipient("local", port)])
    running = RunningAgent(config)
    broker = Mosquitto(tmp_path / "mosquitto", port=port)
    reader = Recipient(port, running.public_key)
    try:
        async with running as agent:
            await running.polls(4)
            assert Outbox(agent.store).backlog() == 2  # a notice and a heartbeat: no samples
            assert len(events(logs, "broker.unavailable")) == 1
            await broker.start()
            await reader.start()
            await reader.wait_for(8, timeout=20)
        await reader.wait_for(agent.ingest.committed)
    finally:
        await reader.stop()
        await broker.stop()  # a failed test leaves no broker behind
    assert reader.verifier.report.ok
    assert in_order(reader), "the backlog drains in order"
    assert len(reader.samples) == agent.ingest.committed
    assert len(seqs(reader)) < agent.ingest.committed, "a backlog goes in fewer messages"
    assert [e["client_id"] for e in events(logs, "broker.connected")
            ].count("gw-test-local") == 1


async def test_broker_restart_mid_stream_loses_nothing(tmp_path: Path,
                                                      heatpump: SimulatedHeatPump) -> None:
    broker = Mosquitto(tmp_path / "mosquitto", persistence=True)
    await broker.start()
    config = agent_config(tmp_path / "state", heatpump.port, [recipient("local", broker.port)])
    running = RunningAgent(config)
    reader = Recipient(broker.port, running.public_key)
    await reader.start()
    try:
        async with running as agent:
            await running.polls(3)
            await broker.stop()
            await running.polls(agent.sampler.polls + 3)
            await broker.start()
            await reader.wait_for(agent.ingest.committed, timeout=30)
        await reader.wait_for(agent.ingest.committed)
    finally:
        await reader.stop()
        await broker.stop()
    assert reader.verifier.report.ok
    assert len({s["ts"] for s in reader.samples}) == agent.ingest.committed  # duplicates may be


async def test_a_broker_without_mqtt5_gets_311(tmp_path: Path, heatpump: SimulatedHeatPump,
                                               logs: LogEvents) -> None:
    broker = EmbeddedBroker()
    await broker.start()
    try:
        config = agent_config(tmp_path / "state", heatpump.port, [recipient(
            "old", broker.port, connect_timeout=1)])
        running = RunningAgent(config)
        reader = Recipient(broker.port, running.public_key, session_expiry=None)
        await reader.start()
        async with running as agent:
            await running.polls(3)
            await reader.wait_for(2)
        await reader.stop()
    finally:
        await broker.stop()
    fallbacks = events(logs, "broker.protocol_fallback")
    assert fallbacks
    assert all(e["protocol"] == "3.1.1" for e in fallbacks)
    assert agent.publishers[0].connection.protocol.value == 4  # MQTT 3.1.1
    assert reader.verifier.report.bad == 0
