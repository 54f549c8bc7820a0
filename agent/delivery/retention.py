"""How long raw samples stay on the gateway: bounded by age and by size, oldest first.

The ledger's closed hours (``ledger_hours``, gaps, anomalies), which the hourly and daily figures
and every report are made of, are never removed; nor are the samples of the hours still open,
which the ledger is rebuilt from after a restart. Raw samples go, oldest first, when they are
older than ``max_age``, when the database holds more than ``max_size`` (down to 90 % of it, so
that eviction does not run at every commit), and when the disk refuses a write (5 % at a time:
freed pages are reused, so the file stops growing). Every eviction is recorded in the
``evictions`` table, logged, and counted per recipient that had not received those samples yet,
for the status stream.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import structlog

from agent.delivery.outbox import Outbox
from drivers.timestamps import rfc3339

log = structlog.get_logger("hpagent.retention")

CHUNK: Final = 10_000  # samples deleted per transaction
LOW_WATER: Final = 0.9  # evicting for size stops at this fraction of max_size


@dataclass(frozen=True)
class Eviction:
    samples: int
    first: float
    last: float
    reason: str  # "age", "size" or "disk full"
    undelivered: dict[str, int]  # recipient -> samples it had not received


class Retention:
    def __init__(self, outbox: Outbox, max_age: float, max_size: int,
                 keep_from: Callable[[], float], now: Callable[[], float]) -> None:
        """``keep_from``: samples at or after this time are still needed (the ledger's open
        hours)."""
        self.outbox = outbox
        self.store = outbox.store
        self.max_age = max_age
        self.max_size = max_size
        self.keep_from = keep_from
        self.now = now

    def used_bytes(self) -> int:
        db = self.store.db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * db.execute("PRAGMA page_size").fetchone()[0])

    def enforce(self) -> list[Eviction]:
        """Remove what age and size call for; what was removed, for the log and status."""
        self.outbox.flush()  # what was acknowledged no longer holds its samples
        done = []
        cutoff = self._bounded(self.now() - self.max_age)
        ids = self.store.db.execute("SELECT max(id) FROM samples WHERE t < ?",
                                    (cutoff,)).fetchone()[0]
        if ids is not None:
            done.append(self._evict(int(ids), "age"))
        while self.used_bytes() > self.max_size:
            target = self.used_bytes() - self.max_size * LOW_WATER
            eviction = self._evict_share(target / max(self.used_bytes(), 1), "size")
            if eviction is None or not eviction.samples:
                break
            done.append(eviction)
        return [e for e in done if e.samples]

    def disk_full(self) -> Eviction | None:
        """The disk refused a write: shrink the WAL and free 5 % of the samples' pages."""
        try:
            self.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return self._evict_share(0.05, "disk full")
        except sqlite3.Error as exc:
            log.error("retention.failed", error=str(exc), reason="disk full")
            return None

    def _bounded(self, t: float) -> float:
        return min(t, self.keep_from())

    def _evict_share(self, share: float, reason: str) -> Eviction | None:
        """Evict the oldest ``share`` of the samples the ledger no longer needs."""
        db = self.store.db
        count = db.execute("SELECT count(*) FROM samples").fetchone()[0]
        n = max(int(count * min(share, 1.0)), 1)
        row = db.execute("SELECT id FROM samples WHERE t < ? ORDER BY id LIMIT 1 OFFSET ?",
                         (self._bounded(float("inf")), n - 1)).fetchone()
        if row is None:
            row = db.execute("SELECT max(id) FROM samples WHERE t < ?",
                             (self._bounded(float("inf")),)).fetchone()
            if row is None or row[0] is None:
                return None
        return self._evict(int(row[0]), reason)

    def _evict(self, up_to: int, reason: str) -> Eviction:
        """Delete samples with id <= ``up_to`` (not needed by the ledger, nor by a queued
        message that is made again from them), in chunks."""
        db = self.store.db
        keep = self.keep_from()
        queued = self.outbox.oldest_recipe()
        if queued is not None:
            up_to = min(up_to, queued - 1)
        first, last, total = float("inf"), float("-inf"), 0
        undelivered = self._undelivered(up_to)
        while True:
            with self.store.transaction():
                span = db.execute(
                    "SELECT min(t), max(t), count(*), max(id) FROM (SELECT id, t FROM samples "
                    "WHERE id <= ? AND t < ? ORDER BY id LIMIT ?)",
                    (up_to, keep, CHUNK)).fetchone()
                if not span[2]:
                    break
                db.execute("DELETE FROM samples WHERE id <= ? AND t < ?", (span[3], keep))
                first, last, total = min(first, span[0]), max(last, span[1]), total + span[2]
        eviction = Eviction(total, first, last, reason, undelivered)
        if total:
            with self.store.transaction():
                db.execute("INSERT INTO evictions VALUES (?, ?, ?, ?, ?)",
                           (self.now(), total, first, last, reason))
            event = log.warning if any(undelivered.values()) else log.info
            event("retention.evicted", samples=total, reason=reason, first=rfc3339(first),
                  last=rfc3339(last), undelivered=undelivered)
        return eviction

    def _undelivered(self, up_to: int) -> dict[str, int]:
        """Per recipient, how many samples up to ``up_to`` its raw streams had not yet made."""
        out: dict[str, int] = {}
        for recipient, position in self.store.db.execute(
                "SELECT recipient, min(position) FROM cursors WHERE stream='samples' "
                "GROUP BY recipient"):
            missed = self.store.db.execute("SELECT count(*) FROM samples WHERE id > ? AND id <= ?",
                                           (position, up_to)).fetchone()[0]
            if missed:
                out[recipient] = int(missed)
        return out

    def summary(self) -> dict[str, Any]:
        """What the status stream says about evictions: totals and the latest one."""
        row = self.store.db.execute("SELECT count(*), coalesce(sum(samples), 0) FROM "
                                    "evictions").fetchone()
        out: dict[str, Any] = {"evictions": int(row[0]), "samples": int(row[1])}
        last = self.store.db.execute("SELECT t, samples, first, last, reason FROM evictions "
                                     "ORDER BY rowid DESC LIMIT 1").fetchone()
        if last is not None:
            out["last"] = {"at": rfc3339(last[0]), "samples": last[1], "from": rfc3339(last[2]),
                           "to": rfc3339(last[3]), "reason": last[4]}
        return out
