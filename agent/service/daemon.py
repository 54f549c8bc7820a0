"""The daemon: wires devices, sampler, store, ledger, consent, signer, outbox and publishers.

``Agent`` is what ``hpagent run`` runs and what the demo and the tests start in-process. It
keeps running through device and broker faults, a full disk and a publisher's fault; on stop it
finishes the poll in progress, commits what it holds, gives the publishers a moment to get
acknowledgements, says 'offline' and closes the database.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import structlog

from agent.consent.audit import LOG_NAME, AuditLog
from agent.consent.dispatch import Dispatcher, Recipient
from agent.delivery.ingest import Ingest
from agent.delivery.messages import topic
from agent.delivery.mqtt import BrokerSettings, Callbacks, MqttConnection
from agent.delivery.outbox import Outbox
from agent.delivery.publisher import Publisher
from agent.delivery.retention import Retention
from agent.delivery.store import Store
from agent.figures.metrics import spec_for
from agent.sample import Sample
from agent.service import systemd
from agent.service.clock import SystemClock
from agent.service.config import Config, RecipientConfig
from agent.service.devices import build_schedules
from agent.service.ledger_service import LedgerService
from agent.service.sampler import Clock, Sampler, Schedule
from agent.service.status import StatusServer, device_report
from agent.trust.jws import Signer
from agent.trust.keys import load_private_key
from drivers.timestamps import rfc3339

log = structlog.get_logger("hpagent.daemon")

DATABASE: Final = "hpagent.db"
PRESENCE: Final = "presence"  # retained online/offline, and the last will
RETENTION_EVERY: Final = 3600.0
RESTART_PUBLISHER: Final = 10.0


def broker_settings(recipient: RecipientConfig, device_id: str) -> BrokerSettings:
    b = recipient.broker
    password = None
    if b.password_file is not None:
        password = b.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    tls = b.tls_files
    return BrokerSettings(
        host=b.host, port=b.effective_port,
        client_id=b.client_id or f"{device_id}-{recipient.name}", keepalive=b.keepalive,
        protocol=b.protocol, username=b.username, password=password, tls=b.tls_enabled,
        ca_file=tls.ca_file, cert_file=tls.cert_file, key_file=tls.key_file,
        will_topic=topic(b.topic_prefix, device_id, recipient.name, PRESENCE),
        connect_timeout=b.connect_timeout)


def _version() -> str:
    try:
        return version("hpagent")
    except PackageNotFoundError:
        return "unknown"


class Agent:
    def __init__(self, config: Config, clock: Clock | None = None,
                 schedules: list[Schedule] | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.started = time.monotonic()
        key = load_private_key(config.signing_key)
        self.signer = Signer(key)
        self.store = Store(Path(config.state_dir) / DATABASE, check=True)
        self.outbox = Outbox(self.store)
        self.audit = AuditLog(Path(config.state_dir) / LOG_NAME, key, config.device_id)
        spec = spec_for(config.installation)
        self.dispatcher = Dispatcher(
            self.store, self.outbox, self.signer, self.audit, config.device_id,
            [Recipient(r.name, r.broker.topic_prefix) for r in config.recipients], spec,
            self.clock.now)
        self.dispatcher.status = self._status
        self.publishers = [
            Publisher(r.name, self.outbox,
                      MqttConnection(broker_settings(r, config.device_id), Callbacks()),
                      r.broker.max_inflight, r.broker.retry_refused)
            for r in config.recipients]
        for p in self.publishers:
            p.refill = self._refill_for(p.name)
            p.allowed = self.dispatcher.allowed
            p.remake = self.dispatcher.remake
            self.dispatcher.outlets[p.name] = p
        self.ingest = Ingest(self.store, self.outbox,
                             commit_interval=config.storage.commit_interval)
        self.ledger = LedgerService(self.store, self.dispatcher, config.installation,
                                    config.diagnosis)
        self.retention = Retention(self.outbox, config.storage.max_age,
                                   config.storage.max_size, self.ledger.keep_from,
                                   self.clock.now)
        self.ingest.then = self.dispatcher.on_commit
        self.ingest.on_commit = self._into_ledger
        self.ingest.on_failure = lambda exc: self.retention.disk_full()
        self._ledger_failed = False
        self.sampler = Sampler(schedules if schedules is not None else build_schedules(config),
                               self.clock, self.deliver)
        self.latest: dict[str, Sample] = {}  # each device's last sample, for the status
        self.status_server = StatusServer(config.status_socket, self.report)
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def _refill_for(self, name: str) -> Callable[[int], list[Any]]:
        return lambda room: self.dispatcher.refill(name, room)

    def deliver(self, sample: Sample) -> None:
        """A poll's sample: committed with the next group (``storage.commit_interval``)."""
        self.latest[sample.source] = sample
        self.ingest.add(sample)

    def _into_ledger(self, samples: list[Sample]) -> None:
        """Committed samples into the live ledger. A fault there is logged (once) and must not
        stop the polling: the ledger is rebuilt from the stored samples at the next start."""
        try:
            self.ledger.add_all(samples)
        except Exception:
            if not self._ledger_failed:
                log.exception("ledger.failed")
                self._ledger_failed = True
        else:
            self._ledger_failed = False

    def _status(self) -> dict[str, Any]:
        """What every heartbeat says about the gateway itself."""
        out: dict[str, Any] = {"version": _version(), "clock": self.clock.state().value,
                               "uptime_s": round(time.monotonic() - self.started),
                               "retention": self.retention.summary()}
        if self.ingest.dropped:
            out["samples_dropped"] = self.ingest.dropped
        replaced = self.store.meta("replaced")
        if replaced is not None:
            out["store_replaced"] = replaced
        return out

    def report(self) -> dict[str, Any]:
        """What ``hpagent status`` shows: devices, recipients, store, clock, key, uptime."""
        now = self.clock.now()
        devices = [device_report(s.driver.describe(), s.interval,
                                 self.latest.get(s.driver.name), now)
                   for s in self.sampler.schedules]
        recipients = []
        for p in self.publishers:
            r = next(c for c in self.config.recipients if c.name == p.name)
            recipients.append({
                "name": p.name, "broker": p.connection.settings.label,
                "connected": p.connection.connected, "problem": p.connection.problem,
                "outbox": self.outbox.backlog(p.name), "sent": p.stats.sent,
                "acked": p.stats.acked, "refused": p.stats.refused,
                "withheld": p.stats.withheld, "fault": p.fault,
                "grants": [g.grant.id for g in self.dispatcher.states.values()
                           if g.grant.recipient == r.name and g.active(now)]})
        return {"device_id": self.config.device_id, "polls": self.sampler.polls,
                "now": rfc3339(now), "key_id": self.signer.kid, "devices": devices,
                "recipients": recipients,
                "store": {"committed": self.ingest.committed, "buffered": self.ingest.buffered,
                          "dropped": self.ingest.dropped, "path": str(self.store.path)},
                **self._status()}

    # -- timers ----------------------------------------------------------------------------------

    def _every(self, period: float, action: Callable[[], object], name: str) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            try:
                action()
            except Exception as exc:
                log.exception(f"{name}.failed", error=str(exc))
            self._timers[name] = loop.call_later(period, tick)

        self._timers[name] = loop.call_later(period, tick)

    def _watch_expiry(self) -> None:
        """Wake when the next grant ends, so it ends on time, not at the next message."""
        loop = asyncio.get_running_loop()
        due = self.dispatcher.next_expiry()
        if due is None:
            return

        def expire() -> None:
            try:
                self.dispatcher.settle()
            except Exception as exc:
                log.exception("consent.failed", error=str(exc))
            self._watch_expiry()

        delay = max(due - self.clock.now(), 0.0) + 0.001
        self._timers["expiry"] = loop.call_later(min(delay, 86400.0), expire)

    def _enforce_retention(self) -> None:
        if self.retention.enforce():
            self.dispatcher.heartbeat()

    async def _publish(self, publisher: Publisher) -> None:
        """A recipient's connection, restarted should it ever fail."""
        while True:
            try:
                await publisher.run()
                return
            except Exception as exc:
                log.exception("publisher.crashed", recipient=publisher.name, error=str(exc),
                              restart_in_s=RESTART_PUBLISHER)
                await asyncio.sleep(RESTART_PUBLISHER)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down in order."""
        for r in self.config.recipients:
            if not r.broker.tls_enabled and r.broker.insecure:
                log.warning("recipient.insecure", recipient=r.name, broker=r.broker.host,
                            reason="plain MQTT off loopback: data and password in the clear")
        self.dispatcher.reconcile([g.grant(r.name, self.clock.now())
                                   for r in self.config.recipients for g in r.grants])
        self._enforce_retention()
        self.dispatcher.heartbeat()
        log.info("agent.started", device_id=self.config.device_id,
                 devices=[s.driver.describe() for s in self.sampler.schedules],
                 recipients=[p.name for p in self.publishers], key_id=self.signer.kid,
                 backlog=self.outbox.backlog(),
                 grants=sorted(g for g, s in self.dispatcher.states.items() if s.ended is None))
        publishing = [asyncio.create_task(self._publish(p), name=f"publish:{p.name}")
                      for p in self.publishers]
        sampling = asyncio.create_task(self.sampler.run(), name="sampler")
        self._every(self.config.heartbeat, self.dispatcher.heartbeat, "heartbeat")
        self._every(RETENTION_EVERY, self._enforce_retention, "retention")
        self._watch_expiry()
        await self.status_server.start()
        systemd.notify("READY=1")
        keep_alive = systemd.KeepAlive(asyncio.get_running_loop(), self.status)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([sampling, stopped], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set() and sampling.exception() is None:
            await stopped  # nothing to poll (no devices): still a gateway that publishes
        keep_alive.stopping("stopping: last poll, waiting for acknowledgements")
        self.sampler.stop()
        await sampling
        for timer in self._timers.values():
            timer.cancel()
        self.ingest.flush()
        await asyncio.sleep(0)  # the publishers take what that commit made
        for p in self.publishers:
            await p.drain(timeout=5.0)
            await p.close()
        await asyncio.gather(*publishing, return_exceptions=True)
        await self.status_server.stop()
        stopped.cancel()
        log.info("agent.stopped", samples=self.ingest.committed, backlog=self.outbox.backlog())
        keep_alive.stop()
        self.store.close()

    def status(self) -> str:
        """One line for ``systemctl status``: what is polled and what waits to be sent."""
        devices = len(self.sampler.schedules)
        return (f"polling {devices} device{'' if devices == 1 else 's'}, "
                f"backlog {self.outbox.backlog()}")


async def run_until_signalled(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Agent(config).run(stop)
