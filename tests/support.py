"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
from agent.delivery.outbox import Outbox
from agent.delivery.store import Store
from agent.diagnosis.thresholds import DiagnosisConfig
from agent.figures.installation import Installation
from agent.sample import Sample
from agent.service.config import Config
from agent.service.daemon import DATABASE, Agent
from agent.trust.jws import b64url_decode
from agent.trust.keys import init_key, load_private_key
from agent.trust.verify import Verifier

REPO = Path(__file__).resolve().parent.parent
CASES = Path(__file__).resolve().parent / "cases"

# The bench's hybrid installation as an installer would configure it (its truth's params), and
# the design its diagnosis holds it against: the healthy bench's curve (the defaults), its
# bivalent point and the heat pump's rated output.
BENCH = Installation.model_validate({
    "heat_pump": {"heat_by_mode": {"heating": "hp.heat_energy_heating",
                                   "dhw": "hp.heat_energy_dhw"}},
    "boiler": {"efficiency": 0.88, "efficiency_basis": "upper", "modulation": "of_max_input"}})
BENCH_DESIGN = DiagnosisConfig.model_validate(
    {"design": {"bivalent_temp": -2.0, "heat_pump_output_w": 4000.0}})

LogEvents = list[structlog.typing.EventDict]


def events(captured: LogEvents, name: str) -> LogEvents:
    """The captured log events called ``name``."""
    return [e for e in captured if e.get("event") == name]


def payload(token: str) -> dict[str, Any]:
    """The JSON body of a compact JWS, unverified."""
    body: dict[str, Any] = json.loads(b64url_decode(token.split(".")[1]))
    return body


def _command(args: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "agent", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1"}


def hpagent(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``hpagent ARGS`` in a child process, its output captured as text."""
    return subprocess.run(_command(args), capture_output=True, text=True, check=False, cwd=cwd,
                          env=_env())


async def hpagent_async(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """``hpagent ARGS`` in a child process without blocking the loop: (code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(*_command(args), cwd=cwd, env=_env(),
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


class Recipient:
    """A party that subscribes and verifies, as an installer's or a resident's system would."""

    def __init__(self, port: int, key: Ed25519PublicKey, *, topic: str = "hpagent/v1/#",
                 client_id: str = "recipient", tls: dict[str, Path] | None = None,
                 session_expiry: int | None = 3600, username: str | None = None,
                 password: str | None = None, audience: str | None = None) -> None:
        self.verifier = Verifier(key, audience)
        self.bodies: list[dict[str, Any]] = []
        self.presence: list[bytes] = []
        self._arrived = asyncio.Event()
        tls = tls or {}
        settings = BrokerSettings(
            host="127.0.0.1", port=port, client_id=client_id, session_expiry=session_expiry,
            tls=bool(tls), ca_file=tls.get("ca"), cert_file=tls.get("cert"),
            key_file=tls.get("key"), username=username, password=password)
        self.connection = MqttConnection(settings, Callbacks(message=self._on_message,
                                                             subscriptions=[topic]))
        self._task: asyncio.Task[None] | None = None

    def _on_message(self, topic: str, data: bytes) -> None:
        if topic.endswith("/presence"):
            self.presence.append(data)
        else:
            token = data.decode()
            if self.verifier.check(token, topic):
                self.bodies.append(payload(token))
        self._arrived.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self.connection.run())
        async with asyncio.timeout(10):
            await self.connection.wait_connected()

    def stream(self, name: str) -> list[dict[str, Any]]:
        """The verified messages of one stream, in arrival order."""
        return [b for b in self.bodies if b["stream"] == name]

    @property
    def samples(self) -> list[dict[str, Any]]:
        """The samples in verified raw ``samples`` messages, in arrival order."""
        return [item for b in self.stream("samples") for item in b.get("samples", [])]

    async def until(self, done: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_for(self, samples: int, timeout: float = 15.0) -> None:
        """Until ``samples`` samples have arrived in verified messages."""
        await self.until(lambda: len(self.samples) >= samples, timeout)

    async def wait_presence(self, timeout: float = 5.0) -> None:
        await self.until(lambda: bool(self.presence), timeout)

    async def stop(self) -> None:
        await self.connection.close()
        if self._task is not None:
            await self._task


GRANT_ALL: Final = {"name": "all", "streams": ["samples", "hourly", "daily", "status"],
                    "fields": ["all"], "purpose": "the test sees everything"}


def recipient(name: str, port: int, *, grants: list[dict[str, Any]] | None = None,
              **broker: Any) -> dict[str, Any]:
    """A recipient's config on a loopback broker, granted everything unless told otherwise."""
    return {"name": name, "role": "other", "broker": {"host": "127.0.0.1", "port": port, **broker},
            "grants": [GRANT_ALL] if grants is None else grants}


def agent_config(state_dir: Path, hp_port: int, recipients: list[dict[str, Any]], *,
                 device_id: str = "gw-test", interval: float = 0.5,
                 commit_interval: float = 0.0) -> Config:
    return Config.model_validate({
        "device_id": device_id, "state_dir": str(state_dir),
        "devices": [{"kind": "modbus", "name": "heatpump", "profile": "hpagent_bench_heatpump",
                     "tcp": {"host": "127.0.0.1", "port": hp_port}, "interval": interval,
                     "timeout": 0.5, "retries": 0}],
        "recipients": recipients, "storage": {"commit_interval": commit_interval}})


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

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key a recipient verifies this agent's messages with."""
        return load_private_key(self.agent.config.signing_key).public_key()

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


def stored(state_dir: Path) -> tuple[int, int]:
    """(samples, outbox backlog) in the agent's database, opened afresh as after a restart."""
    store = Store(state_dir / DATABASE)
    try:
        return store.sample_count(), Outbox(store).backlog()
    finally:
        store.close()
