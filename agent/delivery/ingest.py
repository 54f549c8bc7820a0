"""Samples into the store, a group of them per transaction, with the messages made from them.

A gateway's SD card wears with every page it writes, and SQLite writes each page a commit
touches whole: committing every sample on its own writes many times the data. So samples wait
in memory for at most ``commit_interval`` seconds and then commit together, in one transaction
with whatever the ``then`` hook makes of them (the messages for recipients that are caught up).
A sample is *stored* once that commit returns; a power cut before it loses at most
``commit_interval`` seconds of raw samples, and counters make the energy of that time whole
again in the next interval.

When the disk refuses a commit (full, read-only, failing), the samples stay in memory (at most
``max_buffered``; beyond that the oldest are dropped and counted), the failure is logged once,
``on_failure`` gets a chance to make room (retention), and the next commit tries again.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable
from typing import Final

import structlog

from agent.delivery.outbox import Outbox
from agent.delivery.store import Store
from agent.sample import Sample

log = structlog.get_logger("hpagent.ingest")

MAX_BUFFERED: Final = 100_000  # samples held while the disk refuses them (~a day of 5 devices)

Then = Callable[[list[int]], Callable[[], None]]  # inside the transaction -> after the commit


def _nothing(ids: list[int]) -> Callable[[], None]:
    return lambda: None


class Ingest:
    def __init__(self, store: Store, outbox: Outbox, *, commit_interval: float = 0.0,
                 max_buffered: int = MAX_BUFFERED) -> None:
        self.store = store
        self.outbox = outbox
        self.commit_interval = commit_interval
        self.then: Then = _nothing
        self.on_failure: Callable[[sqlite3.Error], object] = lambda exc: None
        self.on_commit: Callable[[list[Sample]], None] = lambda samples: None
        self.committed = 0  # samples stored
        self.dropped = 0  # samples lost because the disk refused them for too long
        self._buffer: deque[Sample] = deque(maxlen=max_buffered)
        self._timer: asyncio.TimerHandle | None = None
        self._failing = False
        self._failures = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def add(self, sample: Sample) -> None:
        """Take a poll's sample; it is committed within ``commit_interval`` seconds."""
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(sample)
        if self.commit_interval <= 0:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.commit_interval,
                                                                 self._due)

    def _due(self) -> None:
        self._timer = None
        if not self.flush() and self._buffer:  # the disk refused: try again later
            self._timer = asyncio.get_running_loop().call_later(
                max(self.commit_interval, 1.0), self._due)

    def flush(self) -> bool:
        """Commit what is buffered now; False (logged once) if the disk refuses."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer:
            return True
        samples = list(self._buffer)
        try:
            with self.outbox.writing():
                ids = [self.store.add_sample(s) for s in samples]
                after = self.then(ids)
        except sqlite3.Error as exc:
            self._failures += 1
            if not self._failing:
                log.error("store.write_failed", error=str(exc), buffered=len(samples))
                self._failing = True
            self.on_failure(exc)
            return False
        if self._failing:
            log.info("store.write_recovered", failed_commits=self._failures,
                     dropped=self.dropped)
            self._failing = False
            self._failures = 0
        self._buffer.clear()
        self.committed += len(samples)
        after()
        self.on_commit(samples)
        return True
