"""``hpagent replay``: the whole pipeline on a recording, with the recording's own timestamps.

Every line becomes a sample (taken as clock-synchronised: the recording's times are its truth),
is stored, signed and queued exactly as live, under one grant of every field to one recipient
(``file`` or ``broker``), feeds the ledger, whose hours and days are published on the hourly and
daily streams; at the end every hour is closed and the period's report printed. Messages go to
a file (``topic token`` per line, what ``hpagent verify --file`` reads, with the public key
beside it as ``<file>.jwk``) or to an MQTT broker.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands.progress import Progress
from agent.commands.report import render
from agent.consent.audit import LOG_NAME, AuditLog
from agent.consent.dispatch import Dispatcher, Recipient
from agent.consent.grants import Grant
from agent.delivery.ingest import Ingest
from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
from agent.delivery.outbox import Outbox, Pending
from agent.delivery.publisher import Publisher
from agent.delivery.store import Store
from agent.figures.installation import Installation
from agent.figures.ledger import HOUR
from agent.figures.metrics import compute, span, spec_for
from agent.sample import ClockState, Sample
from agent.service.config import Config
from agent.service.ledger_service import LedgerService, ledger_from_store
from agent.trust.jws import Signer, public_jwk
from agent.trust.keys import init_key, load_private_key
from drivers import recording
from drivers.links import parse_tcp
from drivers.reading import Event, Reading

STREAMS = ("samples", "hourly", "daily", "findings")
GROUP = 500  # samples per commit: a replay needs no fsync per sample


def to_sample(record: recording.Record) -> Sample:
    readings = tuple(
        Reading(q, v, measured_at=datetime.fromtimestamp(record.at[q], UTC)
                if q in record.at else None) for q, v in record.q.items())
    events = tuple(Event(q, v, datetime.fromtimestamp(t, UTC)) for t, q, v in record.e)
    return Sample(record.src or "replay", record.t, ClockState.SYNCED, readings, events=events)


class _FileOutlet:
    """Messages into a file as they are made, each acknowledged at once."""

    def __init__(self, outbox: Outbox, out: Path) -> None:
        self.outbox = outbox
        self.file: IO[str] = out.open("w", encoding="ascii")

    @property
    def live(self) -> bool:
        return True

    def offer(self, message: Pending) -> None:
        self.file.write(f"{message.topic} {message.token}\n")
        self.outbox.acknowledged(message.id)

    def kick(self) -> None:
        pass


class _Sink:
    """Where the messages go: a file (acknowledged at once) or a broker (via a publisher)."""

    def __init__(self, dispatcher: Dispatcher, out: Path | None, broker: str | None,
                 key: Ed25519PrivateKey) -> None:
        self.outbox = dispatcher.outbox
        self.publisher: Publisher | None = None
        self.file: _FileOutlet | None = None
        if out is not None:
            self.name = "file"
            self.file = _FileOutlet(self.outbox, out)
            out.with_name(out.name + ".jwk").write_text(json.dumps(public_jwk(key.public_key())))
            dispatcher.outlets[self.name] = self.file
        else:
            assert broker is not None
            self.name = "broker"
            link = parse_tcp(broker)
            self.publisher = Publisher(self.name, self.outbox, MqttConnection(
                BrokerSettings(link.host, link.port, f"{dispatcher.device_id}-replay"),
                Callbacks()), max_inflight=100)
            self.publisher.refill = lambda room: dispatcher.refill(self.name, room)
            self.publisher.allowed = dispatcher.allowed
            self.publisher.remake = dispatcher.remake
            dispatcher.outlets[self.name] = self.publisher
        self._running: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.publisher is not None:
            self._running = asyncio.create_task(self.publisher.run())
            await self.publisher.connection.wait_connected()

    async def finish(self) -> None:
        await asyncio.sleep(0)  # the last offers
        if self.publisher is not None and self._running is not None:
            while self.outbox.backlog(self.name) > self.outbox.unflushed \
                    and self.publisher.connection.connected:
                self.publisher.kick()
                await self.publisher.drain(timeout=5.0)
                await asyncio.sleep(0.05)
            await self.publisher.close()
            await self._running
        if self.file is not None:
            self.file.file.close()


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
            name = "file" if out is not None else "broker"
            audit = AuditLog(state / LOG_NAME, key, device_id)
            dispatcher = Dispatcher(store, outbox, Signer(key), audit, device_id,
                                    [Recipient(name)], spec_for(installation), time.time)
            sink = _Sink(dispatcher, out, broker, key)
            dispatcher.reconcile([Grant("g-replay", name, STREAMS, ("all",), "raw",
                                        f"replay of {path.name}", 0.0, None, "config")])
            ingest = Ingest(store, outbox, commit_interval=3600.0)
            ingest.then = dispatcher.on_commit
            ledger = LedgerService(store, dispatcher, installation,
                                   config.diagnosis if config is not None else None)
            ingest.on_commit = ledger.add_all
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
        ingest.add(to_sample(record))
        lines += 1
        first = record.t if first is None else first
        last = record.t
        if lines % GROUP == 0:
            ingest.flush()
            await asyncio.sleep(0)  # let the publisher send and take acknowledgements
            progress.update(f"replayed {lines} samples")
    ingest.flush()
    if first is None or last is None:
        progress.done(f"{path} holds no samples")
        return None
    ledger.close_until(int(last // HOUR) + int(ledger.grace // HOUR) + 2)
    progress.done(f"replayed {lines} samples, {ledger.closed} hours closed")
    return first, last
