"""``hpagent replay``: the whole pipeline on a recording, with the recording's own timestamps.

Every line becomes a sample (taken as clock-synchronised: the recording's times are its truth),
is stored, signed and queued exactly as live, feeds the ledger, whose hours and days are
published on the hourly and daily streams; at the end every hour is closed and the period's
report printed. Messages go to a file (``topic token`` per line, what ``hpagent verify --file``
reads, with the public key beside it as ``<file>.jwk``) or to an MQTT broker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands.progress import Progress
from agent.commands.report import render
from agent.delivery.ingest import Ingest, Route
from agent.delivery.messages import topic
from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
from agent.delivery.outbox import Outbox, Pending
from agent.delivery.publisher import Publisher
from agent.delivery.store import Store
from agent.figures.installation import Installation
from agent.figures.ledger import HOUR
from agent.figures.metrics import compute, span
from agent.sample import ClockState, Sample
from agent.service.config import Config
from agent.service.ledger_service import LedgerService, ledger_from_store
from agent.trust.jws import Signer, public_jwk
from agent.trust.keys import init_key, load_private_key
from drivers import recording
from drivers.links import parse_tcp
from drivers.reading import Event, Reading

STREAMS = ("samples", "hourly", "daily")


def to_sample(record: recording.Record) -> Sample:
    readings = tuple(
        Reading(q, v, measured_at=datetime.fromtimestamp(record.at[q], UTC)
                if q in record.at else None) for q, v in record.q.items())
    events = tuple(Event(q, v, datetime.fromtimestamp(t, UTC)) for t, q, v in record.e)
    return Sample(record.src or "replay", record.t, ClockState.SYNCED, readings, events=events)


class _Sink:
    """Where the messages go: a file (acknowledged at once) or a broker (via a publisher)."""

    def __init__(self, outbox: Outbox, device_id: str, out: Path | None, broker: str | None,
                 key: Ed25519PrivateKey) -> None:
        self.outbox = outbox
        self.file: IO[str] | None = None
        self.publisher: Publisher | None = None
        if out is not None:
            self.file = out.open("w", encoding="ascii")
            out.with_name(out.name + ".jwk").write_text(json.dumps(public_jwk(key.public_key())))
            offer = self._write
        else:
            assert broker is not None
            link = parse_tcp(broker)
            self.publisher = Publisher("broker", outbox, MqttConnection(
                BrokerSettings(link.host, link.port, f"{device_id}-replay"), Callbacks()),
                max_inflight=100)
            offer = self.publisher.offer
        name = "file" if out is not None else "broker"
        self.routes = [Route(name, s, topic("hpagent/v1", device_id, s), offer) for s in STREAMS]
        self._running: asyncio.Task[None] | None = None

    def _write(self, message: Pending) -> None:
        assert self.file is not None
        self.file.write(f"{message.topic} {message.token}\n")
        self.outbox.acknowledged(message.id)

    async def start(self) -> None:
        if self.publisher is not None:
            self._running = asyncio.create_task(self.publisher.run())
            await self.publisher.connection.wait_connected()

    async def finish(self) -> None:
        if self.publisher is not None and self._running is not None:
            while self.outbox.backlog("broker") > self.outbox.unflushed \
                    and self.publisher.connection.connected:
                await self.publisher.drain(timeout=5.0)
                await asyncio.sleep(0.05)
            await self.publisher.close()
            await self._running
        if self.file is not None:
            self.file.close()


async def replay(path: Path, config: Config | None, out: Path | None, broker: str | None,
                 state_dir: Path | None, as_json: bool) -> int:
    if (out is None) == (broker is None):
        print("hpagent: give --out FILE or --broker HOST:PORT", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="hpagent-replay-") as temp:
        state = state_dir or Path(temp)
        device_id = config.device_id if config is not None else "replay"
        installation = config.installation if config is not None else Installation()
        key_file = config.signing_key if config is not None and config.signing_key.exists() \
            else state / "replay.key"
        key = load_private_key(key_file) if key_file.exists() else init_key(key_file)
        store = Store(state / "hpagent.db", durable=False)  # a replay can always be run again
        try:
            outbox = Outbox(store)
            sink = _Sink(outbox, device_id, out, broker, key)
            ingest = Ingest(store, outbox, Signer(key), device_id, sink.routes)
            ledger = LedgerService(store, ingest, installation)
            await sink.start()
            try:
                times = await _feed(path, ingest, ledger)
            finally:
                await sink.finish()
            if times is None:
                return 1
            period = span(times)
            result = compute(ledger_from_store(store, ledger.spec, period), installation, period)
        except recording.RecordingError as exc:
            print(f"hpagent: {exc}", file=sys.stderr)
            return 1
        finally:
            store.close()
    print(json.dumps(result, indent=2, ensure_ascii=False) if as_json else render(result))
    return 0


async def _feed(path: Path, ingest: Ingest, ledger: LedgerService
                ) -> tuple[float, float] | None:
    """Every line through the pipeline; then every hour closed. Returns the first/last time."""
    progress = Progress()
    lines = 0
    first = last = None
    for record in recording.read(path):
        sample = to_sample(record)
        if ingest.commit(sample):
            ledger.add(sample)
        lines += 1
        first = record.t if first is None else first
        last = record.t
        if lines % 500 == 0:
            await asyncio.sleep(0)  # let the publisher send and take acknowledgements
            progress.update(f"replayed {lines} samples")
    if first is None or last is None:
        progress.done(f"{path} holds no samples")
        return None
    ledger.close_until(int(last // HOUR) + int(ledger.grace // HOUR) + 2)
    progress.done(f"replayed {lines} samples, {ledger.closed} hours closed, key id "
                  f"{ingest.signer.kid}")
    return first, last
