"""The daemon: wires devices, sampler, store, ledger, signer, outbox and publishers.

``Agent`` is what ``hpagent run`` runs and what the demo and the tests start in-process. It
keeps running through device and broker faults; on stop it finishes the poll in progress, gives
the publishers a moment to get acknowledgements, says 'offline' and closes the database.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import structlog

from agent.delivery.ingest import Ingest, Route
from agent.delivery.messages import topic
from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import Publisher
from agent.delivery.store import Store
from agent.sample import Sample
from agent.service import systemd
from agent.service.clock import SystemClock
from agent.service.config import Config, Destination
from agent.service.devices import build_schedules
from agent.service.ledger_service import LedgerService
from agent.service.sampler import Clock, Sampler, Schedule
from agent.trust.jws import Signer
from agent.trust.keys import load_private_key

log = structlog.get_logger("hpagent.daemon")

DATABASE = "hpagent.db"


def broker_settings(dest: Destination, device_id: str) -> BrokerSettings:
    password = None
    if dest.password_file is not None:
        password = dest.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    tls = dest.tls
    return BrokerSettings(
        host=dest.host, port=dest.effective_port,
        client_id=dest.client_id or f"{device_id}-{dest.name}", keepalive=dest.keepalive,
        protocol=dest.protocol, username=dest.username, password=password,
        tls=tls is not None, ca_file=tls.ca_file if tls else None,
        cert_file=tls.cert_file if tls else None, key_file=tls.key_file if tls else None,
        will_topic=topic(dest.topic_prefix, device_id, "status"),
        connect_timeout=dest.connect_timeout)


class Agent:
    def __init__(self, config: Config, clock: Clock | None = None,
                 schedules: list[Schedule] | None = None) -> None:
        self.config = config
        self.signer = Signer(load_private_key(config.signing_key))
        self.store = Store(Path(config.state_dir) / DATABASE)
        self.outbox = Outbox(self.store)
        self.publishers = [
            Publisher(d.name, self.outbox,
                      MqttConnection(broker_settings(d, config.device_id), Callbacks()),
                      d.max_inflight, d.retry_refused)
            for d in config.destinations]
        routes = [Route(d.name, stream, topic(d.topic_prefix, config.device_id, stream), p.offer)
                  for d, p in zip(config.destinations, self.publishers, strict=True)
                  for stream in d.streams]
        self.ingest = Ingest(self.store, self.outbox, self.signer, config.device_id, routes)
        self.ledger = LedgerService(self.store, self.ingest, config.installation)
        self._ledger_failed = False
        self.sampler = Sampler(schedules if schedules is not None else build_schedules(config),
                               clock or SystemClock(), self.deliver)

    def deliver(self, sample: Sample) -> None:
        """A poll's sample: stored and queued, then into the live ledger.

        The sample is safe once committed; a fault in the ledger is logged (once) and must not
        stop the polling: the ledger is rebuilt from the stored samples at the next start.
        """
        if not self.ingest.commit(sample):
            return
        try:
            self.ledger.add(sample)
        except Exception:
            if not self._ledger_failed:
                log.exception("ledger.failed", source=sample.source)
                self._ledger_failed = True
        else:
            self._ledger_failed = False

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down in order."""
        log.info("agent.started", device_id=self.config.device_id,
                 devices=[s.driver.describe() for s in self.sampler.schedules],
                 destinations=[p.name for p in self.publishers], key_id=self.signer.kid,
                 backlog=self.outbox.backlog())
        publishing = [asyncio.create_task(p.run(), name=f"publish:{p.name}")
                      for p in self.publishers]
        sampling = asyncio.create_task(self.sampler.run(), name="sampler")
        systemd.notify("READY=1")
        systemd.start_watchdog(asyncio.get_running_loop())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([sampling, stopped], return_when=asyncio.FIRST_COMPLETED)
        systemd.notify("STOPPING=1")
        self.sampler.stop()
        await sampling
        for p in self.publishers:
            await p.drain(timeout=5.0)
            await p.close()
        await asyncio.gather(*publishing, return_exceptions=True)
        stopped.cancel()
        log.info("agent.stopped", samples=self.ingest.committed, backlog=self.outbox.backlog())
        self.store.close()


async def run_until_signalled(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Agent(config).run(stop)
