"""From a sample to stored rows and signed outbox messages, in one transaction.

For each destination that takes the ``samples`` stream, the sample becomes a payload with the
next sequence number and the previous message's hash, is signed, and is queued. Either the
sample and all its messages are committed, or none of them is. The ledger's ``hourly`` and
``daily`` figures go the same way, with the rows they come from. Chain heads are cached in
memory and reloaded from the database if a commit fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from agent.delivery.messages import ChainState, payload, sample_content
from agent.delivery.outbox import Outbox, Pending
from agent.delivery.store import Store
from agent.sample import Sample
from agent.trust.jws import Signer, chain_hash

log = structlog.get_logger("hpagent.ingest")

SAMPLES = "samples"


@dataclass(frozen=True, slots=True)
class Route:
    """A destination that receives one stream."""

    destination: str
    stream: str
    topic: str
    offer: Callable[[Pending], None]  # hands a committed message to the destination's publisher


class Ingest:
    def __init__(self, store: Store, outbox: Outbox, signer: Signer, device_id: str,
                 routes: Sequence[Route]) -> None:
        self.store = store
        self.outbox = outbox
        self.signer = signer
        self.device_id = device_id
        self.routes = list(routes)
        self._chains: dict[tuple[str, str], ChainState] = {}
        self.committed = 0
        self.failed = 0
        self._failing = False

    def _chain(self, destination: str, stream: str) -> ChainState:
        chain = self._chains.get((destination, stream))
        if chain is None:
            chain = self._chains[(destination, stream)] = self.outbox.chain(destination, stream)
        return chain

    def commit(self, sample: Sample) -> bool:
        """Store ``sample`` and queue its messages; False (logged once) if the disk refuses."""
        ok = self._transact(SAMPLES, lambda: sample_content(sample),
                            lambda: self.store.add_sample(sample), sample.source)
        if ok:
            self.committed += 1
        return ok

    def publish(self, stream: str, content: dict[str, Any], write: Callable[[], object]) -> bool:
        """Write (``write``, e.g. ledger rows) and queue ``content`` on ``stream``, together."""
        return self._transact(stream, lambda: content, write, stream)

    def _transact(self, stream: str, content: Callable[[], dict[str, Any]],
                  write: Callable[[], object], what: str) -> bool:
        """``content`` is made only if a destination takes the stream."""
        routes = [r for r in self.routes if r.stream == stream]
        body = content() if routes else {}
        queued: list[tuple[Route, Pending]] = []
        heads: dict[tuple[str, str], ChainState] = {}
        try:
            with self.store.transaction():
                deleted = self.outbox.delete_acknowledged()
                write()
                for route in routes:
                    chain = self._chain(route.destination, stream)
                    seq = chain.seq + 1
                    token = self.signer.sign(
                        payload(self.device_id, stream, seq, chain.hash, body))
                    head = ChainState(seq, chain_hash(token))
                    row = self.outbox.enqueue(route.destination, stream, seq, route.topic, token,
                                              head.hash or "")
                    heads[(route.destination, stream)] = head
                    queued.append((route, Pending(row, route.topic, token)))
        except sqlite3.Error as exc:
            self._chains.clear()
            self.failed += 1
            if not self._failing:
                log.error("store.write_failed", error=str(exc), what=what)
                self._failing = True
            return False
        if self._failing:
            log.info("store.write_recovered", lost=self.failed)
            self._failing = False
        self.outbox.forget(deleted)
        self._chains.update(heads)
        for route, message in queued:
            route.offer(message)
        return True
