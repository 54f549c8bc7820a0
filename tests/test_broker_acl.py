"""The broker-side example (config/mosquitto/acl) in a real mosquitto: each recipient reads only
its own topics, and a gateway writes only its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
from hil.broker import Mosquitto
from tests.support import REPO

USERS = {"gw-0001": "gw secret", "installer": "installer secret", "resident": "resident secret"}


class Client:
    """One user's connection: what it received, and the broker's answers to what it sent."""

    def __init__(self, port: int, user: str, subscribe: str | None = None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.refused: dict[int, str | None] = {}
        self._event = asyncio.Event()
        self.connection = MqttConnection(
            BrokerSettings("127.0.0.1", port, f"test-{user}", username=user,
                           password=USERS[user], protocol="5"),
            Callbacks(message=self._message, acked=self._acked,
                      subscriptions=[subscribe] if subscribe else []))
        self._task: asyncio.Task[None] | None = None

    def _message(self, topic: str, payload: bytes) -> None:
        self.received.append((topic, payload))
        self._event.set()

    def _acked(self, mid: int, refusal: str | None) -> None:
        self.refused[mid] = refusal
        self._event.set()

    async def until(self, done: object) -> None:
        async with asyncio.timeout(10):
            while not done():  # type: ignore[operator]
                self._event.clear()
                await self._event.wait()

    async def __aenter__(self) -> Client:
        self._task = asyncio.create_task(self.connection.run())
        async with asyncio.timeout(10):
            await self.connection.wait_connected()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()
        assert self._task is not None
        await self._task


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    acl = (REPO / "config" / "mosquitto" / "acl").read_text()
    server = Mosquitto(tmp_path / "mosquitto", users=USERS, acl=acl)
    await server.start()
    yield server
    await server.stop()


async def test_a_recipient_reads_only_its_own_topics(broker: Mosquitto) -> None:
    async with Client(broker.port, "installer", "hpagent/v1/+/installer/#") as installer, \
            Client(broker.port, "resident", "hpagent/v1/#") as spy, \
            Client(broker.port, "gw-0001") as gateway:
        gateway.connection.publish("hpagent/v1/gw-0001/installer/samples", b"for the installer")
        # then the resident's own: had the installer's message reached the resident, it would
        # have come first (one publisher, one subscriber: in order)
        gateway.connection.publish("hpagent/v1/gw-0001/resident/daily", b"for the resident")
        await installer.until(lambda: installer.received)
        await spy.until(lambda: spy.received)
    assert installer.received == [("hpagent/v1/gw-0001/installer/samples", b"for the installer")]
    assert spy.received == [("hpagent/v1/gw-0001/resident/daily", b"for the resident")]


async def test_a_gateway_writes_only_its_own_topics(broker: Mosquitto) -> None:
    async with Client(broker.port, "installer", "hpagent/v1/#") as installer, \
            Client(broker.port, "gw-0001") as gateway:
        other = gateway.connection.publish("hpagent/v1/gw-0002/installer/samples", b"forged")
        own = gateway.connection.publish("hpagent/v1/gw-0001/installer/samples", b"genuine")
        await gateway.until(lambda: {other, own} <= set(gateway.refused))
        await installer.until(lambda: installer.received)
        recipient = installer.connection.publish("hpagent/v1/gw-0001/installer/samples", b"x")
        await installer.until(lambda: recipient in installer.refused)
    assert gateway.refused[own] is None
    assert "authori" in (gateway.refused[other] or "").lower()  # MQTT 5: 135 not authorised
    assert "authori" in (installer.refused[recipient] or "").lower()
    assert installer.received == [("hpagent/v1/gw-0001/installer/samples", b"genuine")]
