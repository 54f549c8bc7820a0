"""``hpagent run`` as systemd runs it: a separate process, JSON logs, signals.

A bad config stops it before it starts; an unreachable device or broker does not stop it, and
what it stored is kept; SIGTERM flushes and exits 0; a killed agent leaves its retained
'offline' will on the presence topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

from agent.delivery.store import Store
from agent.service.defaults import EX_CONFIG
from agent.trust.keys import init_key, load_private_key
from hil.broker import Mosquitto, free_port
from hil.heatpump_server import SimulatedHeatPump
from tests.support import LogEvents, Recipient, events, hpagent_async, stored


def config_text(state: Path, hp_port: int, broker_port: int) -> str:
    return f"""\
device_id: gw-daemon
state_dir: {state}
log: {{level: info, format: json}}
devices:
  - kind: modbus
    name: heatpump
    profile: hpagent_bench_heatpump
    tcp: {{host: 127.0.0.1, port: {hp_port}}}
    interval: 0.5
    timeout: 0.3
    retries: 0
recipients:
  - name: local
    role: resident
    broker: {{host: 127.0.0.1, port: {broker_port}}}
    grants:
      - {{name: all, streams: [samples, status], fields: [all], purpose: the test's view}}
storage: {{commit_interval: 0.5}}
"""


def set_up(tmp_path: Path, hp_port: int, broker_port: int) -> tuple[Path, Path]:
    """A state dir with a signing key and a config for it: (config file, state dir)."""
    state = tmp_path / "state"
    init_key(state / "gateway.key")
    config = tmp_path / "hpagent.yaml"
    config.write_text(config_text(state, hp_port, broker_port))
    return config, state


async def wait_for_samples(state: Path, n: int, timeout: float = 30.0) -> None:
    """Until the running agent has stored at least ``n`` samples (one a poll)."""
    async with asyncio.timeout(timeout):
        # the count is in another process's database: no event to wait on, so look again
        while stored(state)[0] < n:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


class Daemon:
    """``hpagent run`` in a child process, its JSON log lines collected as they come."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.logs: LogEvents = []
        self.other: list[str] = []
        self._seen = asyncio.Event()
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Daemon:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--config", str(self.config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").strip()
            try:
                self.logs.append(json.loads(line))
            except json.JSONDecodeError:
                self.other.append(line)
            self._seen.set()

    def count(self, event: str) -> int:
        return len(events(self.logs, event))

    async def wait_for(self, event: str, n: int = 1, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while self.count(event) < n:
                self._seen.clear()
                await self._seen.wait()

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), 20)
        if self._reader is not None:
            await self._reader
        return code

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def test_bad_config_exits_78_and_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "hpagent.yaml"
    bad.write_text("device_id: gw\ndevices:\n  - kind: modbus\n    name: hp\n")
    code, _, err = await hpagent_async("run", "--config", str(bad))
    assert code == EX_CONFIG
    assert f"{bad}:3: devices[0].profile: required key is missing" in err


async def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "hpagent.yaml"
    config.write_text(config_text(tmp_path / "state", 1, 1))
    code, _, err = await hpagent_async("run", "--config", str(config))
    assert code == 1
    assert "run 'hpagent key init' first" in err


async def test_unreachable_device_then_recovery_then_sigterm(tmp_path: Path,
                                                           mosquitto: Mosquitto) -> None:
    hp_port = free_port()
    config, state = set_up(tmp_path, hp_port, mosquitto.port)
    heatpump = SimulatedHeatPump(port=hp_port, speed=60, tick=0.25)  # started partway through
    async with Daemon(config) as daemon:
        await daemon.wait_for("source.unavailable")
        await wait_for_samples(state, 4)  # several polls of a dead device
        await heatpump.start()
        try:
            await daemon.wait_for("source.recovered", timeout=30)
            await asyncio.sleep(1.0)
            assert await daemon.stop() == 0
        finally:
            await heatpump.stop()
    assert daemon.count("source.unavailable") == 1, "logged once when it goes"
    assert daemon.count("source.recovered") == 1, "and once when it is back"
    assert daemon.count("agent.stopped") == 1
    store = Store(state / "hpagent.db")
    samples = store.samples(limit=10_000)
    store.close()
    assert samples[0].values == {}
    assert samples[0].qualities["hp.supply_temp"] == "unavailable"
    assert "hp.supply_temp" in samples[-1].values
    stopped = events(daemon.logs, "agent.stopped")[0]
    assert stopped["samples"] == len(samples)
    assert stopped["backlog"] == 0, "SIGTERM flushes the outbox before exit"


async def test_unreachable_broker_keeps_every_sample(tmp_path: Path,
                                                    heatpump: SimulatedHeatPump) -> None:
    config, state = set_up(tmp_path, heatpump.port, free_port())
    async with Daemon(config) as daemon:
        await daemon.wait_for("broker.unavailable")
        await wait_for_samples(state, 3)
        assert await daemon.stop(signal.SIGINT) == 0
    assert daemon.count("broker.unavailable") == 1
    samples, backlog = stored(state)
    assert samples >= 3
    assert backlog == 2, "the samples wait in the store; only the notice and a heartbeat are made"


async def test_a_killed_agent_leaves_its_will(tmp_path: Path, mosquitto: Mosquitto,
                                              heatpump: SimulatedHeatPump) -> None:
    config, state = set_up(tmp_path, heatpump.port, mosquitto.port)
    async with Daemon(config) as daemon:
        await daemon.wait_for("broker.connected")
        await daemon.stop(signal.SIGKILL)
    key = load_private_key(state / "gateway.key").public_key()
    watcher = Recipient(mosquitto.port, key, topic="hpagent/v1/gw-daemon/local/presence",
                        client_id="w", session_expiry=None)
    await watcher.start()
    with contextlib.suppress(TimeoutError):
        await watcher.wait_presence()
    await watcher.stop()
    assert watcher.presence == [b"offline"], "the broker published the retained will"
