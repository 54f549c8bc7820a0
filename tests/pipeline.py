"""The agent's delivery path without devices or brokers: store, consent, dispatcher, ingest.

Recipients are :class:`Collector` outlets that take every message offered to them (and ack it,
as a broker would) and ask for more when told to, as a publisher does; a test sets ``live`` to
play a connected or a disconnected recipient. Time is a variable the test moves.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.consent.audit import LOG_NAME, AuditLog
from agent.consent.dispatch import Dispatcher, Recipient
from agent.consent.grants import Grant, new_id
from agent.delivery.ingest import Ingest
from agent.delivery.outbox import Outbox, Pending
from agent.delivery.store import Store
from agent.figures.installation import Installation
from agent.figures.metrics import spec_for
from agent.sample import Sample
from agent.service.ledger_service import LedgerService
from agent.trust.jws import Signer
from tests.support import payload

DEVICE = "gw"


class Collector:
    """A recipient's outlet: what it received, in order; acknowledges everything at once."""

    def __init__(self, name: str, outbox: Outbox, dispatcher: Dispatcher) -> None:
        self.name = name
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.live = True
        self.received: list[Pending] = []
        self.arrived: list[float] = []  # the dispatcher's time when each message arrived

    def offer(self, message: Pending) -> None:
        if self.live and self.dispatcher.allowed(message):  # as a publisher asks before sending
            self._take(message)

    def kick(self) -> None:
        pass

    def drain(self) -> None:
        """Take the backlog as a reconnected publisher does: outbox first, then refills."""
        last = max((m.id for m in self.received), default=0)
        for message in self.outbox.pending(self.name, last, 10**9):
            token = message.token or self.dispatcher.remake(message)
            if token is not None and self.dispatcher.allowed(message):
                self._take(replace(message, token=token))
        while batch := self.dispatcher.refill(self.name, 20):
            for message in batch:
                if self.dispatcher.allowed(message):
                    self._take(message)

    def _take(self, message: Pending) -> None:
        self.received.append(message)
        self.arrived.append(self.dispatcher.now())
        self.outbox.acknowledged(message.id)

    def tokens(self, stream: str | None = None) -> list[str]:
        """What arrived, as the recipient holds it (every message it takes is whole)."""
        return [m.token or "" for m in self.received if stream is None or m.stream == stream]

    def bodies(self, stream: str | None = None) -> list[dict[str, Any]]:
        return [payload(t) for t in self.tokens(stream)]

    def samples(self) -> list[dict[str, Any]]:
        return [s for b in self.bodies("samples") for s in b.get("samples", [])]


class Pipeline:
    def __init__(self, state: Path, recipients: tuple[str, ...] = ("a", "b"), *,
                 key: Ed25519PrivateKey | None = None, now: float = 1_767_222_000.0,
                 installation: Installation | None = None) -> None:
        self.state = state
        self.key = key or Ed25519PrivateKey.generate()
        self.now = now
        self.store = Store(state / "hpagent.db", durable=False)  # tests need no fsync
        self.outbox = Outbox(self.store)
        self.audit = AuditLog(state / LOG_NAME, self.key, DEVICE)
        installation = installation or Installation()
        self.dispatcher = Dispatcher(self.store, self.outbox, Signer(self.key), self.audit,
                                     DEVICE, [Recipient(r) for r in recipients],
                                     spec_for(installation), lambda: self.now)
        self.outlets = {r: Collector(r, self.outbox, self.dispatcher) for r in recipients}
        self.dispatcher.outlets.update(self.outlets)
        self.ingest = Ingest(self.store, self.outbox, commit_interval=3600.0)  # add() commits
        self.ingest.then = self.dispatcher.on_commit
        self.ledger = LedgerService(self.store, self.dispatcher, installation)
        self.ingest.on_commit = self.ledger.add_all
        self.dispatcher.reconcile([])

    def grant(self, recipient: str, streams: tuple[str, ...] = ("samples",),
              fields: tuple[str, ...] = ("all",), resolution: str = "raw",
              start: float | None = None, until: float | None = None) -> Grant:
        g = Grant(new_id(), recipient, streams, fields, resolution, "a test",
                  self.now if start is None else start, until, "cli")
        self.audit.append("grant", self.now, grant=g.terms(), by="resident")
        self.dispatcher.refresh()
        return g

    def revoke(self, grant: Grant, reason: str = "a test") -> None:
        self.audit.append("revoke", self.now, grant_id=grant.id, by="resident", reason=reason)

    def add(self, *samples: Sample) -> None:
        """Commit ``samples`` together, as the daemon commits a group."""
        for s in samples:
            self.ingest.add(s)
        self.ingest.flush()

    async def settle(self) -> None:
        """Let the offers the loop was handed run."""
        for _ in range(3):
            await asyncio.sleep(0)

    def close(self) -> None:
        self.store.close()
