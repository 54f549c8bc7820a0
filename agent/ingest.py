"""From a sample to stored rows and signed outbox messages, in one transaction.

For each destination that takes the ``samples`` stream, the sample becomes a payload with the
next sequence number and the previous message's hash, is signed, and is queued. Either the
sample and all its messages are committed, or none of them is. Chain heads are cached in memory
and reloaded from the database if a commit fails.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from agent.jws import Signer, chain_hash
from agent.messages import ChainState, sample_payload, topic
from agent.outbox import Outbox, Pending
from agent.sample import Sample
from agent.store import Store

log = structlog.get_logger("hpagent.ingest")

SAMPLES = "samples"


@dataclass(frozen=True, slots=True)
class Route:
    """A destination that receives the ``samples`` stream."""

    destination: str
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
        self._chains: dict[str, ChainState] = {}
        self.committed = 0
        self.failed = 0
        self._failing = False

    def _chain(self, destination: str) -> ChainState:
        chain = self._chains.get(destination)
        if chain is None:
            chain = self._chains[destination] = self.outbox.chain(destination, SAMPLES)
        return chain

    def commit(self, sample: Sample) -> bool:
        """Store ``sample`` and queue its messages; False (logged once) if the disk refuses."""
        queued: list[tuple[Route, Pending]] = []
        heads: dict[str, ChainState] = {}
        try:
            with self.store.transaction():
                deleted = self.outbox.delete_acknowledged()
                self.store.add_sample(sample)
                for route in self.routes:
                    chain = self._chain(route.destination)
                    seq = chain.seq + 1
                    token = self.signer.sign(
                        sample_payload(self.device_id, SAMPLES, seq, chain.hash, sample))
                    head = ChainState(seq, chain_hash(token))
                    row = self.outbox.enqueue(route.destination, SAMPLES, seq, route.topic, token,
                                              head.hash or "")
                    heads[route.destination] = head
                    queued.append((route, Pending(row, route.topic, token)))
        except sqlite3.Error as exc:
            self._chains.clear()
            self.failed += 1
            if not self._failing:
                log.error("store.write_failed", error=str(exc), source=sample.source)
                self._failing = True
            return False
        if self._failing:
            log.info("store.write_recovered", lost_samples=self.failed)
            self._failing = False
        self.outbox.forget(deleted)
        self._chains.update(heads)
        self.committed += 1
        for route, message in queued:
            route.offer(message)
        return True


def sample_topic(prefix: str, device_id: str) -> str:
    return topic(prefix, device_id, SAMPLES)
