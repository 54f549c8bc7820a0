"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.config import Config
from agent.daemon import DATABASE, Agent
from agent.jws import b64url_decode
from agent.keys import init_key
from agent.mqtt import BrokerSettings, Callbacks, MqttConnection
from agent.outbox import Outbox
from agent.sample import Sample
from agent.store import Store
from agent.verify import Verifier

REPO = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "cases"

LogEvents = list[structlog.typing.EventDict]


def events(captured: LogEvents, name: str) -> LogEvents:
    """The captured log events called ``name``."""
    return [e for e in captured if e.get("event") == name]


class Recipient:
    """A party that subscribes and verifies, as an installer's or a resident's system would."""

    def __init__(self, port: int, key: Ed25519PublicKey, *, topic: str = "hpagent/v1/#",
                 client_id: str = "recipient", tls: dict[str, Path] | None = None,
                 session_expiry: int | None = 3600, username: str | None = None,
                 password: str | None = None) -> None:
        self.verifier = Verifier(key)
        self.bodies: list[dict[str, Any]] = []
        self.status: list[bytes] = []
        self._arrived = asyncio.Event()
        tls = tls or {}
        settings = BrokerSettings(
            host="127.0.0.1", port=port, client_id=client_id, session_expiry=session_expiry,
            tls=bool(tls), ca_file=tls.get("ca"), cert_file=tls.get("cert"),
            key_file=tls.get("key"), username=username, password=password)
        self.connection = MqttConnection(settings, Callbacks(message=self._on_message,
                                                             subscriptions=[topic]))
        self._task: asyncio.Task[None] | None = None

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/status"):
            self.status.append(payload)
        else:
            token = payload.decode()
            if self.verifier.check(token, topic):
                self.bodies.append(json.loads(b64url_decode(token.split(".")[1])))
        self._arrived.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self.connection.run())
        async with asyncio.timeout(10):
            await self.connection.wait_connected()

    async def wait_for(self, good: int, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while self.verifier.report.good < good:
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_status(self, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not self.status:
                self._arrived.clear()
                await self._arrived.wait()

    async def stop(self) -> None:
        await self.connection.close()
        if self._task is not None:
            await self._task


def agent_config(state_dir: Path, hp_port: int, destinations: list[dict[str, Any]], *,
                 device_id: str = "gw-test", interval: float = 0.5) -> Config:
    return Config.model_validate({
        "device_id": device_id, "state_dir": str(state_dir),
        "devices": [{"kind": "modbus", "name": "heatpump", "profile": "hpagent_bench_heatpump",
                     "tcp": {"host": "127.0.0.1", "port": hp_port}, "interval": interval,
                     "timeout": 0.5, "retries": 0}],
        "destinations": destinations})


class RunningAgent:
    """An Agent in this process, started and stopped by a test."""

    def __init__(self, config: Config) -> None:
        if not config.signing_key.exists():
            init_key(config.signing_key)
        self.agent = Agent(config)
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._polled = asyncio.Event()
        deliver = self.agent.sampler.deliver

        def delivered(sample: Sample) -> object:
            result = deliver(sample)
            self._polled.set()
            return result

        self.agent.sampler.deliver = delivered

    async def __aenter__(self) -> Agent:
        self._task = asyncio.create_task(self.agent.run(self._stop))
        return self.agent

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def polls(self, n: int, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while self.agent.sampler.polls < n:
                self._polled.clear()
                await self._polled.wait()


def stored(config: Config) -> tuple[int, int]:
    """(samples, outbox backlog) in the agent's database, opened afresh as after a restart."""
    store = Store(config.state_dir / DATABASE)
    try:
        return store.sample_count(), Outbox(store).backlog()
    finally:
        store.close()
